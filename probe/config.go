package probe

import (
	"fmt"
	"time"
)

// Config says how a Machine decides whether a peer is up.
type Config struct {
	// Interval is the time between probes before jitter (the profiles:
	// fast 100 ms, default 250 ms, metered 2 s). Required.
	Interval time.Duration
	// Window is the number of probes MissThreshold keeps a false down
	// unlikely in; the loss estimate covers 4 x Window (at most MaxWindow).
	// Default 100.
	Window int
	// Target is the chance of a false down per Window that MissThreshold
	// keeps below. Default 1e-6.
	Target float64
	// UpNeed and UpOf: the link is steady while at least UpNeed of the last
	// UpOf probes were answered. Default 4 of 5.
	UpNeed, UpOf int
	// HoldDown is how long a down link must stay steady before it is up
	// again, before any flap doubled it. Default 10 intervals.
	HoldDown time.Duration
	// MaxHoldDown caps the hold-down. Default 16 x HoldDown.
	MaxHoldDown time.Duration
	// FlapWindow: going down within FlapWindow of the previous down doubles
	// the hold-down; each FlapWindow without a down halves it again.
	// Default MaxHoldDown.
	FlapWindow time.Duration
}

// validate rejects bad values and fills defaults.
func (c Config) validate() (Config, error) {
	if c.Interval <= 0 {
		return c, fmt.Errorf("probe: Interval %q must be positive", c.Interval)
	}
	if c.Window == 0 {
		c.Window = 100
	}
	if c.Window < MinMisses || c.Window > MaxWindow {
		return c, fmt.Errorf("probe: Window %d outside %d..%d", c.Window, MinMisses, MaxWindow)
	}
	if c.Target == 0 {
		c.Target = 1e-6
	}
	if !(c.Target > 0 && c.Target < 1) {
		return c, fmt.Errorf("probe: Target %v outside (0, 1)", c.Target)
	}
	if c.UpNeed == 0 && c.UpOf == 0 {
		c.UpNeed, c.UpOf = 4, 5
	}
	if c.UpNeed < 1 || c.UpOf < c.UpNeed || c.UpOf > 64 {
		return c, fmt.Errorf("probe: UpNeed %d of UpOf %d: want 1 <= UpNeed <= UpOf <= 64", c.UpNeed, c.UpOf)
	}
	if c.HoldDown == 0 {
		c.HoldDown = 10 * c.Interval
	}
	if c.MaxHoldDown == 0 {
		c.MaxHoldDown = 16 * c.HoldDown
	}
	if c.FlapWindow == 0 {
		c.FlapWindow = c.MaxHoldDown
	}
	if c.HoldDown < 0 || c.MaxHoldDown < c.HoldDown || c.FlapWindow < 0 {
		return c, fmt.Errorf("probe: HoldDown %q, MaxHoldDown %q, FlapWindow %q: want 0 <= HoldDown <= MaxHoldDown and FlapWindow >= 0",
			c.HoldDown, c.MaxHoldDown, c.FlapWindow)
	}
	return c, nil
}
