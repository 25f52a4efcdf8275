//go:build !linux

package daemon

import "errors"

// releaseStartupPages is Linux only (MADV_PAGEOUT).
func releaseStartupPages() (int64, error) {
	return 0, errors.New("releasing start-up pages needs Linux")
}
