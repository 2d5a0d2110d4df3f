package app

import (
	"os"
	"testing"

	"github.com/slackrelay/slackrelay/infra/local/localstack/localstacktest"
)

func TestMain(m *testing.M) { os.Exit(localstacktest.Run(m)) }
