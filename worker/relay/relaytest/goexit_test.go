package relaytest_test

import (
	"fmt"
	"runtime"
)

func runtimeGoexit() { runtime.Goexit() }

func errString(args []any) string { return fmt.Sprint(args...) }
