//go:build !linux

package mobility

import (
	"errors"
	"log/slog"
)

// openUnderlay fails: the underlay is watched through rtnetlink, on Linux
// only.
func openUnderlay(*slog.Logger) (underlay, error) {
	return nil, errors.New("mobility: watching the underlay needs Linux (rtnetlink)")
}
