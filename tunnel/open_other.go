//go:build !linux

package tunnel

import (
	"fmt"
	"log/slog"
	"runtime"
)

// openOS: devices are implemented for Linux only.
func openOS(cfg Config, _ *slog.Logger) (*Device, error) {
	return nil, fmt.Errorf("tunnel: open %s: not supported on %s", cfg.Name, runtime.GOOS)
}
