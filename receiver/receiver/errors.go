package receiver

import "errors"

func errorf(msg string) error { return errors.New(msg) }
