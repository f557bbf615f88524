package fib

import (
	"fmt"
	"math"
)

// Kernel table numbers fib refuses or maps (linux/rtnetlink.h).
const (
	tableCompat  = 252 // RT_TABLE_COMPAT: an alias that dumps can report, not a table to fill
	tableDefault = 253 // RT_TABLE_DEFAULT: the last-resort table of the default rule
	tableMain    = 254 // RT_TABLE_MAIN
	tableLocal   = 255 // RT_TABLE_LOCAL: the kernel's local and broadcast routes
)

// maxIfName is the longest interface name the kernel accepts (IFNAMSIZ - 1).
const maxIfName = 15

// Config is what a FIB installs into.
type Config struct {
	// Table is the kernel routing table fib installs into; it owns the
	// Protocol routes in it. 0 means main (254). Tables 252 (compat), 253
	// (default) and 255 (local) are refused: routes there are either
	// unreachable by lookups or shadow the kernel's own, and a number that
	// small in a config is more likely a typo than a choice.
	Table int
	// Exclude names devices whose routes fib never touches, even with
	// Protocol in its table: the tunnel device (roam0), whose routes package
	// tunnel owns. A device that does not exist excludes nothing.
	Exclude []string
}

// validate returns c with its defaults filled in, or an error naming the
// field that is wrong.
func (c Config) validate() (Config, error) {
	switch {
	case c.Table == 0:
		c.Table = tableMain
	case c.Table < 0 || int64(c.Table) > math.MaxUint32:
		return Config{}, fmt.Errorf("fib: config: Table %d: want 1-%d (0 for main)", c.Table, uint32(math.MaxUint32))
	case c.Table == tableCompat || c.Table == tableDefault || c.Table == tableLocal:
		return Config{}, fmt.Errorf("fib: config: Table %d is reserved by the kernel (252 compat, 253 default, 255 local): choose another table or 0 for main", c.Table)
	}
	for i, name := range c.Exclude {
		if name == "" || len(name) > maxIfName {
			return Config{}, fmt.Errorf("fib: config: Exclude[%d] %q: want an interface name of 1-%d bytes", i, name, maxIfName)
		}
	}
	c.Exclude = append([]string(nil), c.Exclude...)
	return c, nil
}
