package bgp

import (
	"fmt"
	"net"
	"net/netip"
	"time"
)

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
)

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
	// DisableGracefulRestart turns graceful restart off; it is on by default.
	DisableGracefulRestart bool
	// Neighbors are the sessions to open.
	Neighbors []Neighbor
}

// Neighbor is one configured BGP session.
type Neighbor struct {
	// Address of the neighbour; required and unique within a Config.
	Address netip.Addr
	// Port is the neighbour's TCP port; 0 means 179.
	Port int
	// ASN of the neighbour; required.
	ASN uint32
	// Password enables TCP-MD5 (RFC 2385) when not empty.
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
	return nil
}
