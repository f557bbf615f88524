package tunnel

import (
	"fmt"
	"strings"
)

// Modes of a Device.
const (
	ModeAuto      = "auto"      // kernel WireGuard if the module works, else userspace
	ModeKernel    = "kernel"    // kernel WireGuard through netlink; fails without the module
	ModeUserspace = "userspace" // embedded wireguard-go on a TUN device
)

// Defaults of Config.
const (
	DefaultName = "roam0"
	DefaultMTU  = 1420
)

// Config of the device itself (not its peers, which are in State).
type Config struct {
	// Name is the interface name: at most 15 bytes, no '/', ':' or
	// whitespace. Default "roam0".
	Name string
	// Mode is "auto" (default: kernel if the wireguard module works, else
	// userspace), "kernel" or "userspace".
	Mode string
	// MTU of the device, 1280..9000. Default 1420.
	MTU int
	// Keep makes Close leave a kernel device, its addresses and routes in
	// place (for a restart). A userspace device lives in this process and
	// always goes away with Close.
	Keep bool
	// Table is the kernel routing table of the device's routes (one per
	// allowed IP, protocol RouteProtocol): 0 means main (254). With another
	// table, the operator adds the ip rule that uses it.
	Table int
}

// validate fills defaults and rejects bad values, naming the field.
func (c *Config) validate() error {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if len(c.Name) > 15 || c.Name == "." || c.Name == ".." ||
		strings.ContainsAny(c.Name, "/: \t\n\x00") {
		return fmt.Errorf("tunnel: config: name: %q is not a valid interface name (at most 15 bytes, no '/', ':' or spaces)", c.Name)
	}
	switch c.Mode {
	case "":
		c.Mode = ModeAuto
	case ModeAuto, ModeKernel, ModeUserspace:
	default:
		return fmt.Errorf("tunnel: config: mode: %q: want auto, kernel or userspace", c.Mode)
	}
	if c.MTU == 0 {
		c.MTU = DefaultMTU
	}
	if c.MTU < 1280 || c.MTU > 9000 {
		return fmt.Errorf("tunnel: config: mtu: %d out of range 1280..9000", c.MTU)
	}
	if c.Table == 0 {
		c.Table = 254
	}
	if c.Table < 1 || c.Table == 253 || c.Table == 255 || int64(c.Table) > 0xffffffff {
		return fmt.Errorf("tunnel: config: table: %d is not a routing table for routes (1..2^32-1, not 253 default or 255 local)", c.Table)
	}
	return nil
}
