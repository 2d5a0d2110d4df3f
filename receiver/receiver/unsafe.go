package receiver

import "unsafe"

// bytesToString views b as a string without copying. The handler uses it only for the
// envelope body, which is read (encoded) before Handle returns and never retained.
func bytesToString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
