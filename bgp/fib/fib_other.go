//go:build !linux

package fib

import (
	"errors"
	"fmt"
	"log/slog"
)

// New validates cfg and fails: kernel routes are installed on Linux only.
func New(cfg Config, log *slog.Logger) (*FIB, error) {
	if _, err := cfg.validate(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("fib: kernel routes are installed on Linux only: %w", errors.ErrUnsupported)
}
