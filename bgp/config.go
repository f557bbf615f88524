package bgp

import (
	"fmt"
	"net"
	"net/netip"
	"time"
)

// maxPasswordLen is the kernel's TCP_MD5SIG_MAXKEYLEN.
const maxPasswordLen = 80

// Private 4-byte ASN range (RFC 6996).
const (
	privateASNMin = 4200000000
	privateASNMax = 4294967294
)

// Defaults filled in by validate.
const (
	DefaultListenPort   = 179
	DefaultGRPCAddress  = "127.0.0.1:50051"
	defaultHoldTime     = 9 * time.Second
	defaultKeepalive    = 3 * time.Second
	defaultConnectRetry = 2 * time.Second
	defaultIdleHoldTime = 1 * time.Second
	// DefaultMaxPrefixes is the per-neighbour, per-family prefix limit when
	// neither Neighbor.MaxPrefixes nor Config.MaxPrefixes is set.
	DefaultMaxPrefixes = 1000
)

// DefaultOverlayPool is the overlay address range when Config.OverlayPool is
// empty (RFC 6598 shared address space).
var DefaultOverlayPool = netip.MustParsePrefix("100.64.0.0/10")

// Config configures a Speaker.
type Config struct {
	// ASN is this node's AS number; required, in the private 4-byte range
	// 4200000000-4294967294 unless AllowPublicASN is set.
	ASN uint32
	// AllowPublicASN permits an ASN outside the private range.
	AllowPublicASN bool
	// RouterID is the BGP identifier, an IPv4 address; required.
	RouterID netip.Addr
	// ListenPort is the TCP port to accept sessions on: 0 means 179, -1 means
	// do not listen (outgoing sessions only).
	ListenPort int
	// ListenAddresses restricts the listener; empty means all addresses.
	ListenAddresses []netip.Addr
	// GRPCAddress is where GoBGP's gRPC API listens (host:port, or
	// unix:///path); empty means 127.0.0.1:50051. The API has no
	// authentication: see GRPCIsLoopback.
	GRPCAddress string
	// HoldTime is proposed to every neighbour; 0 means 9s. At least 3s.
	HoldTime time.Duration
	// KeepaliveInterval; 0 means 3s. Below HoldTime.
	KeepaliveInterval time.Duration
	// ConnectRetry is the wait between outgoing connection attempts (and
	// GoBGP's dial timeout); 0 means 2s.
	ConnectRetry time.Duration
	// IdleHoldTime is the wait after a reset before reconnecting; 0 means 1s.
	IdleHoldTime time.Duration
	// DisableGracefulRestart turns graceful restart (RFC 4724) off; it is on
	// by default. With it on, Run ends its sessions without a NOTIFICATION so
	// that neighbours keep this node's routes (as stale) while it restarts.
	DisableGracefulRestart bool
	// Restarting says this speaker is coming back from a graceful restart: it
	// sets the Restart State (R) bit and the forwarding-state bits in its OPEN
	// and defers its updates until its neighbours' End-of-RIB (at most 360s).
	// Set it when the previous run stopped less than the restart time (120s)
	// ago: BIRD, as helper, flushes our stale routes at once when the new
	// OPEN lacks the forwarding-state bit, which GoBGP sets only when
	// restarting. Ignored when graceful restart is off, and for neighbours
	// SetNeighbors adds while Run is running.
	Restarting bool
	// Transit makes this speaker a hub: routes learned from roam neighbours
	// are exported to all neighbours, and routes learned from external
	// neighbours to roam neighbours, both with next-hop-self. A speaker
	// without Transit exports only what it originates.
	Transit bool
	// AcceptDefault accepts default routes (0.0.0.0/0, ::/0) from neighbours;
	// they are rejected otherwise.
	AcceptDefault bool
	// OverlayPool lists the overlay address ranges. Overlay addresses are
	// routed by the tunnel, never by BGP: routes inside them (or equal to
	// them) are rejected from every neighbour. Empty means 100.64.0.0/10.
	OverlayPool []netip.Prefix
	// InternalPrefixes are ranges that only roam neighbours may announce
	// (pod and service ranges, e.g. 10.244.0.0/16). A route inside one of
	// them from an external neighbour is rejected as a hijack.
	InternalPrefixes []netip.Prefix
	// MaxPrefixes is the default limit on prefixes a neighbour may send per
	// address family (counted before import policy); a neighbour that sends
	// more is torn down and stays down until re-enabled. 0 means 1000.
	MaxPrefixes uint32
	// Neighbors are the sessions to open; SetNeighbors changes them.
	Neighbors []Neighbor
}

// NeighborKind says what is at the other end of a session. The zero value is
// KindRoam.
type NeighborKind uint8

const (
	// KindRoam is another roamd; the session runs between overlay
	// addresses.
	KindRoam NeighborKind = iota
	// KindExternal is a router on the underlay (BIRD, FRR, gobgpd).
	KindExternal
)

func (k NeighborKind) String() string {
	switch k {
	case KindRoam:
		return "roam"
	case KindExternal:
		return "external"
	}
	return fmt.Sprintf("NeighborKind(%d)", uint8(k))
}

// ParseNeighborKind parses "roam" or "external".
func ParseNeighborKind(s string) (NeighborKind, error) {
	switch s {
	case "roam":
		return KindRoam, nil
	case "external":
		return KindExternal, nil
	}
	return 0, fmt.Errorf("bgp: neighbor kind %q is not roam or external", s)
}

// Neighbor is one configured BGP session.
type Neighbor struct {
	// Address of the neighbour; required and unique within a Config.
	Address netip.Addr
	// Port is the neighbour's TCP port; 0 means 179.
	Port int
	// ASN of the neighbour; required.
	ASN uint32
	// Kind is KindRoam (the zero value) or KindExternal; it decides what is
	// exported to the neighbour and what is accepted from it.
	Kind NeighborKind
	// LocalAddress is the source address of the session; invalid means the
	// kernel chooses. Same family as Address.
	LocalAddress netip.Addr
	// MaxPrefixes overrides Config.MaxPrefixes for this neighbour.
	MaxPrefixes uint32
	// Password enables TCP-MD5 (RFC 2385) when not empty, at most 80 bytes.
	// Run fails, naming the neighbour, if TCP-MD5 keys cannot be set (a
	// kernel without TCP-MD5, or an MPTCP listener: see the package doc).
	Password string
	// Multihop is the eBGP multihop TTL; 0 means directly connected.
	Multihop uint8
	// Passive waits for the neighbour to connect instead of dialling.
	Passive bool
	// Description is free text shown by the gobgp CLI.
	Description string
}

// GracefulRestart reports whether graceful restart is on.
func (c *Config) GracefulRestart() bool { return !c.DisableGracefulRestart }

// GRPCIsLoopback reports whether the gRPC API is reachable only from this
// host (loopback address or unix socket). Callers log a warning when not.
func (c *Config) GRPCIsLoopback() bool {
	addr := c.GRPCAddress
	if addr == "" {
		return true
	}
	if len(addr) > 5 && addr[:5] == "unix:" {
		return true
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// validate rejects bad values, naming the field and quoting the value, and
// fills defaults.
func (c *Config) validate() error {
	if c.ASN == 0 {
		return fmt.Errorf("bgp: config: ASN is required")
	}
	if !c.AllowPublicASN && (c.ASN < privateASNMin || c.ASN > privateASNMax) {
		return fmt.Errorf("bgp: config: ASN %d is not in the private range %d-%d", c.ASN, privateASNMin, privateASNMax)
	}
	if !c.RouterID.IsValid() {
		return fmt.Errorf("bgp: config: RouterID is required")
	}
	if !c.RouterID.Is4() || c.RouterID.IsUnspecified() {
		return fmt.Errorf("bgp: config: RouterID %q is not a non-zero IPv4 address", c.RouterID)
	}
	switch {
	case c.ListenPort == 0:
		c.ListenPort = DefaultListenPort
	case c.ListenPort == -1:
	case c.ListenPort < 1 || c.ListenPort > 65535:
		return fmt.Errorf("bgp: config: ListenPort %d is not a port, 0 (179) or -1 (do not listen)", c.ListenPort)
	}
	for _, a := range c.ListenAddresses {
		if !a.IsValid() {
			return fmt.Errorf("bgp: config: ListenAddresses contains an invalid address")
		}
	}
	if c.GRPCAddress == "" {
		c.GRPCAddress = DefaultGRPCAddress
	} else if len(c.GRPCAddress) < 5 || c.GRPCAddress[:5] != "unix:" {
		if _, _, err := net.SplitHostPort(c.GRPCAddress); err != nil {
			return fmt.Errorf("bgp: config: GRPCAddress %q: %w", c.GRPCAddress, err)
		}
	}
	if err := c.validateTimers(); err != nil {
		return err
	}
	if len(c.OverlayPool) == 0 {
		c.OverlayPool = []netip.Prefix{DefaultOverlayPool}
	}
	if err := validPrefixes("OverlayPool", c.OverlayPool); err != nil {
		return err
	}
	if err := validPrefixes("InternalPrefixes", c.InternalPrefixes); err != nil {
		return err
	}
	if c.MaxPrefixes == 0 {
		c.MaxPrefixes = DefaultMaxPrefixes
	}
	return c.validateNeighbors()
}

// validateNeighbors checks c.Neighbors and fills their defaults (port, and
// the prefix limit from c.MaxPrefixes, which must be filled already).
func (c *Config) validateNeighbors() error {
	seen := make(map[netip.Addr]bool, len(c.Neighbors))
	for i := range c.Neighbors {
		n := &c.Neighbors[i]
		if err := n.validate(i); err != nil {
			return err
		}
		if seen[n.Address] {
			return fmt.Errorf("bgp: config: Neighbors[%d]: Address %q is configured twice", i, n.Address)
		}
		seen[n.Address] = true
		if n.MaxPrefixes == 0 {
			n.MaxPrefixes = c.MaxPrefixes
		}
	}
	return nil
}

func validPrefixes(field string, ps []netip.Prefix) error {
	for i, p := range ps {
		if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			return fmt.Errorf("bgp: config: %s[%d] %q is not a network prefix with host bits clear", field, i, p)
		}
		if p.Bits() == 0 {
			return fmt.Errorf("bgp: config: %s[%d] %q covers every address", field, i, p)
		}
	}
	return nil
}

func (c *Config) validateTimers() error {
	fill := func(name string, d *time.Duration, def time.Duration) error {
		if *d == 0 {
			*d = def
		}
		if *d < time.Second || *d%time.Second != 0 {
			return fmt.Errorf("bgp: config: %s %q is not a whole number of seconds >= 1s", name, d.String())
		}
		return nil
	}
	if err := fill("HoldTime", &c.HoldTime, defaultHoldTime); err != nil {
		return err
	}
	if err := fill("KeepaliveInterval", &c.KeepaliveInterval, defaultKeepalive); err != nil {
		return err
	}
	if err := fill("ConnectRetry", &c.ConnectRetry, defaultConnectRetry); err != nil {
		return err
	}
	if err := fill("IdleHoldTime", &c.IdleHoldTime, defaultIdleHoldTime); err != nil {
		return err
	}
	if c.HoldTime < 3*time.Second {
		return fmt.Errorf("bgp: config: HoldTime %q is below 3s (RFC 4271)", c.HoldTime.String())
	}
	if c.KeepaliveInterval >= c.HoldTime {
		return fmt.Errorf("bgp: config: KeepaliveInterval %q is not below HoldTime %q", c.KeepaliveInterval.String(), c.HoldTime.String())
	}
	return nil
}

func (n *Neighbor) validate(i int) error {
	if !n.Address.IsValid() || n.Address.IsUnspecified() {
		return fmt.Errorf("bgp: config: Neighbors[%d].Address %q is not a neighbour address", i, n.Address)
	}
	if n.Address.Zone() != "" {
		return fmt.Errorf("bgp: config: Neighbors[%d].Address %q has a zone; link-local sessions are not supported", i, n.Address)
	}
	if n.ASN == 0 {
		return fmt.Errorf("bgp: config: Neighbors[%d].ASN is required (neighbour %s)", i, n.Address)
	}
	if n.Port < 0 || n.Port > 65535 {
		return fmt.Errorf("bgp: config: Neighbors[%d].Port %d is not a port", i, n.Port)
	}
	if n.Port == 0 {
		n.Port = DefaultListenPort
	}
	if len(n.Password) > maxPasswordLen {
		return fmt.Errorf("bgp: config: Neighbors[%d].Password is %d bytes, more than TCP-MD5's %d (neighbour %s)", i, len(n.Password), maxPasswordLen, n.Address)
	}
	if n.Kind != KindRoam && n.Kind != KindExternal {
		return fmt.Errorf("bgp: config: Neighbors[%d].Kind %d is not KindRoam or KindExternal (neighbour %s)", i, n.Kind, n.Address)
	}
	if n.LocalAddress.IsValid() && (n.LocalAddress.Is4() != n.Address.Is4() || n.LocalAddress.IsUnspecified() || n.LocalAddress.Zone() != "") {
		return fmt.Errorf("bgp: config: Neighbors[%d].LocalAddress %q is not an address of the family of %s", i, n.LocalAddress, n.Address)
	}
	return nil
}
