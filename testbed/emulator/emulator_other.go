//go:build !linux

package emulator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// Apply needs Linux: network namespaces, tc, TAP.
func Apply(ctx context.Context, netnsPath, iface string, imp Impairment, stateDir, exe string) error {
	return fmt.Errorf("emulator: apply: %w", errors.ErrUnsupported)
}

// Serve needs Linux: network namespaces, tc, TAP.
func Serve(ctx context.Context, configPath string, log *slog.Logger) error {
	return fmt.Errorf("emulator: serve: %w", errors.ErrUnsupported)
}

func alive(pid int, configPath string) bool { return false }
