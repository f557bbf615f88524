package api

import (
	"fmt"
	"net"
	"strconv"
)

// Default listen addresses.
const (
	DefaultAddr        = "127.0.0.1:7470"
	DefaultMetricsAddr = "127.0.0.1:9474"
)

// Config configures the REST API server.
type Config struct {
	// Addr is the TCP listen address, host:port; "" means DefaultAddr.
	// Port 0 picks a free port (see Server.Addr).
	Addr string
	// TokenFile holds the bearer token that mutating calls must present.
	// "" refuses every mutating call. The file is read once by NewServer and
	// must not be accessible by group or others (mode 0600 or stricter).
	TokenFile string
}

// validate checks cfg and fills defaults.
func (cfg *Config) validate() error {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if err := validateAddr(cfg.Addr); err != nil {
		return fmt.Errorf("api: addr %q: %w", cfg.Addr, err)
	}
	return nil
}

// MetricsConfig configures the Prometheus metrics server.
type MetricsConfig struct {
	// Addr is the TCP listen address, host:port; "" means DefaultMetricsAddr.
	// Port 0 picks a free port (see Metrics.Addr).
	Addr string
}

// validate checks cfg and fills defaults.
func (cfg *MetricsConfig) validate() error {
	if cfg.Addr == "" {
		cfg.Addr = DefaultMetricsAddr
	}
	if err := validateAddr(cfg.Addr); err != nil {
		return fmt.Errorf("api: metrics addr %q: %w", cfg.Addr, err)
	}
	return nil
}

// validateAddr accepts host:port with a numeric port in 0-65535.
func validateAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port: %w", err)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || strconv.FormatUint(n, 10) != port {
		return fmt.Errorf("port %q is not a number in 0-65535", port)
	}
	return nil
}
