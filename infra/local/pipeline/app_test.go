package pipeline

import (
	"os"
	"testing"

	"github.com/slackrelay/slackrelay/infra/local/localaws/localawstest"
)

func TestMain(m *testing.M) { os.Exit(localawstest.Run(m)) }
