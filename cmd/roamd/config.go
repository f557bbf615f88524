package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
	"gopkg.in/yaml.v3"
)

// Config is roamd's configuration file.
type Config struct {
	Node           string         `yaml:"node"`             // this node's name
	DataDir        string         `yaml:"data_dir"`         // state directory; default /var/lib/roam
	PrivateKeyFile string         `yaml:"private_key_file"` // default <data_dir>/private.key; created 0600 if missing
	ListenPort     int            `yaml:"listen_port"`      // WireGuard UDP port; default 51820
	Role           string         `yaml:"role"`             // node (default) or hub
	Addresses      []string       `yaml:"addresses"`        // overlay addresses: one IPv4 /32 and/or one IPv6 /128
	Tunnel         TunnelConfig   `yaml:"tunnel"`
	Peers          []PeerConfig   `yaml:"peers"`
	API            APIConfig      `yaml:"api"`
	Metrics        MetricsConfig  `yaml:"metrics"`
	Log            LogConfig      `yaml:"log"`
	BGP            *BGPConfig     `yaml:"bgp"` // nil: BGP off
	Probe          ProbeConfig    `yaml:"probe"`
	Mobility       MobilityConfig `yaml:"mobility"`

	// Parsed forms, filled by validate.
	addrs []netip.Prefix
	peers []peer
}

// TunnelConfig is the WireGuard device.
type TunnelConfig struct {
	Device string `yaml:"device"` // default roam0
	Mode   string `yaml:"mode"`   // auto (default), kernel or userspace
	MTU    int    `yaml:"mtu"`    // default 1420
	Keep   bool   `yaml:"keep"`   // leave the device in place on shutdown
}

// PeerConfig is one WireGuard peer as written in the file.
type PeerConfig struct {
	Name                string   `yaml:"name"`
	PublicKey           string   `yaml:"public_key"`
	Endpoint            string   `yaml:"endpoint"`             // optional host:port
	Addresses           []string `yaml:"addresses"`            // the peer's overlay /32 and/or /128
	PersistentKeepalive string   `yaml:"persistent_keepalive"` // optional duration, whole seconds, e.g. 25s
	Routes              []string `yaml:"routes"`               // extra prefixes routed to the peer
	ASN                 uint32   `yaml:"asn"`                  // the peer's AS; default derived from its overlay IPv4 like bgp.asn
	BGP                 *bool    `yaml:"bgp"`                  // a BGP session with this peer when BGP is on; default true
	Probe               string   `yaml:"probe"`                // probe profile for this peer: fast, default, metered or off; default probe.profile
	Hub                 bool     `yaml:"hub"`                  // the peer is a hub: it answers STUN on its endpoint, relays signalling and lists the other nodes
}

// BGPConfig turns on the embedded BGP speaker (present in the file: on).
// Every peer gets a session over the overlay unless it says bgp: false;
// external routers on the underlay are listed under neighbors.
type BGPConfig struct {
	ASN              uint32           `yaml:"asn"`               // this node's AS; default 4200000000 + the overlay IPv4's offset in 100.64.0.0/10
	RouterID         string           `yaml:"router_id"`         // default: the overlay IPv4 address
	Prefixes         []string         `yaml:"prefixes"`          // prefixes this node originates (pod and service CIDRs)
	GRPCListen       string           `yaml:"grpc_listen"`       // GoBGP's gRPC API for the gobgp CLI; default 127.0.0.1:50051
	ListenPort       int              `yaml:"listen_port"`       // default 179
	HoldTime         string           `yaml:"hold_time"`         // default 9s
	Keepalive        string           `yaml:"keepalive"`         // default 3s
	GracefulRestart  *bool            `yaml:"graceful_restart"`  // default true
	Table            int              `yaml:"table"`             // kernel table of every route roamd installs (tunnel and learned); default 254 (main)
	MaxPrefixes      uint32           `yaml:"max_prefixes"`      // per neighbour, default 1000; more tears the session down
	AcceptDefault    bool             `yaml:"accept_default"`    // accept a learned default route
	Transit          *bool            `yaml:"transit"`           // re-export learned routes (next-hop-self); default: on for hubs
	InternalPrefixes []string         `yaml:"internal_prefixes"` // only roam peers may announce routes inside these
	Neighbors        []NeighborConfig `yaml:"neighbors"`         // external routers on the underlay

	asn       uint32
	routerID  netip.Addr
	prefixes  []netip.Prefix
	internal  []netip.Prefix
	hold      time.Duration
	keepalive time.Duration
	neighbors []neighbor
}

// NeighborConfig is an external BGP router, reached over the underlay.
type NeighborConfig struct {
	Address     string `yaml:"address"`      // its address
	ASN         uint32 `yaml:"asn"`          // its AS
	Description string `yaml:"description"`  // a name shown by roamctl and gobgp
	Password    string `yaml:"password"`     // TCP-MD5 (RFC 2385); optional
	Multihop    uint8  `yaml:"multihop"`     // eBGP multihop TTL; 0: directly connected
	Passive     bool   `yaml:"passive"`      // wait for it to connect
	Port        int    `yaml:"port"`         // its TCP port; default 179
	MaxPrefixes uint32 `yaml:"max_prefixes"` // default bgp.max_prefixes
}

// neighbor is a validated external neighbour.
type neighbor struct {
	NeighborConfig
	addr netip.Addr
}

// APIConfig is the REST status API.
type APIConfig struct {
	Listen    string `yaml:"listen"`     // default 127.0.0.1:7470
	TokenFile string `yaml:"token_file"` // bearer token for mutating calls; none: they are refused
}

// MetricsConfig is the Prometheus endpoint.
type MetricsConfig struct {
	Listen string `yaml:"listen"` // default 127.0.0.1:9474; path /metrics
}

// LogConfig is how roamd logs.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info (default), warn, error
	Format string `yaml:"format"` // text (default) or json
}

// peer is a validated peer.
type peer struct {
	name      string
	key       wgtypes.Key
	endpoint  string // host:port as written, resolved when applied
	addrs     []netip.Prefix
	routes    []netip.Prefix
	keepalive time.Duration
	asn       uint32 // 0: no BGP session (BGP off, or bgp: false)
	bgp       bool   // bgp: as written (default true)
	probe     string // probe profile, "off" when not probed; set by validateProbe
	hub       bool   // hub: true as written
	direct    bool   // a direct path found by ICE, not in the file
}

var nodeNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// loadConfig reads and validates a config file.
func loadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return parseConfig(data)
}

// parseConfig parses and validates a config, filling defaults.
func parseConfig(data []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("config: file is empty")
		}
		return nil, fmt.Errorf("config: %s", strings.TrimPrefix(strings.ReplaceAll(err.Error(), "\n ", ""), "yaml: "))
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) validate() error {
	if c.Node == "" {
		return errors.New("config: node: missing (this node's name)")
	}
	if !nodeNameRe.MatchString(c.Node) {
		return fmt.Errorf("config: node: %q is not a valid name (letters, digits, '.', '-', '_'; at most 63)", c.Node)
	}
	if c.DataDir == "" {
		c.DataDir = "/var/lib/roam"
	}
	if !filepath.IsAbs(c.DataDir) {
		return fmt.Errorf("config: data_dir: %q must be an absolute path", c.DataDir)
	}
	if c.PrivateKeyFile == "" {
		c.PrivateKeyFile = filepath.Join(c.DataDir, "private.key")
	}
	if !filepath.IsAbs(c.PrivateKeyFile) {
		return fmt.Errorf("config: private_key_file: %q must be an absolute path", c.PrivateKeyFile)
	}
	if c.ListenPort == 0 {
		c.ListenPort = 51820
	}
	if c.ListenPort < 1 || c.ListenPort > 65535 {
		return fmt.Errorf("config: listen_port: %d out of range 1..65535", c.ListenPort)
	}
	switch c.Role {
	case "":
		c.Role = "node"
	case "node", "hub":
	default:
		return fmt.Errorf("config: role: %q: want node or hub", c.Role)
	}
	var err error
	if c.addrs, err = overlayAddrs("addresses", c.Addresses); err != nil {
		return err
	}
	if len(c.addrs) == 0 {
		return errors.New("config: addresses: missing (this node's overlay IPv4 /32 and/or IPv6 /128)")
	}
	if err := c.Tunnel.validate(); err != nil {
		return err
	}
	if err := c.validatePeers(); err != nil {
		return err
	}
	if c.API.Listen == "" {
		c.API.Listen = "127.0.0.1:7470"
	}
	if err := checkListen("api.listen", c.API.Listen); err != nil {
		return err
	}
	if c.API.TokenFile != "" && !filepath.IsAbs(c.API.TokenFile) {
		return fmt.Errorf("config: api.token_file: %q must be an absolute path", c.API.TokenFile)
	}
	if c.Metrics.Listen == "" {
		c.Metrics.Listen = "127.0.0.1:9474"
	}
	if err := checkListen("metrics.listen", c.Metrics.Listen); err != nil {
		return err
	}
	if c.API.Listen == c.Metrics.Listen {
		return fmt.Errorf("config: metrics.listen: %q is also api.listen", c.Metrics.Listen)
	}
	if err := c.Log.validate(); err != nil {
		return err
	}
	if err := c.validateProbe(); err != nil {
		return err
	}
	if err := c.validateMobility(); err != nil {
		return err
	}
	return c.validateBGP()
}

func (c *Config) validateBGP() error {
	b := c.BGP
	if b == nil {
		for i, p := range c.peers {
			if p.asn != 0 {
				return fmt.Errorf("config: peers[%d].asn: set, but there is no bgp section", i)
			}
		}
		return nil
	}
	self := overlayIPv4(c.addrs)
	if !self.IsValid() {
		return errors.New("config: bgp: needs an IPv4 overlay address (the session address)")
	}
	b.asn = b.ASN
	if b.asn == 0 {
		if b.asn = derivedASN(self); b.asn == 0 {
			return fmt.Errorf("config: bgp.asn: missing, and the overlay address %s is outside %s to derive it from", self, overlayPool)
		}
	}
	b.routerID = self
	if b.RouterID != "" {
		id, err := netip.ParseAddr(b.RouterID)
		if err != nil || !id.Is4() || id.IsUnspecified() {
			return fmt.Errorf("config: bgp.router_id: %q is not an IPv4 address", b.RouterID)
		}
		b.routerID = id
	}
	var err error
	if b.prefixes, err = prefixList("bgp.prefixes", b.Prefixes); err != nil {
		return err
	}
	for i, p := range b.prefixes {
		if p.Addr().Is6() && !hasIPv6(c.addrs) {
			return fmt.Errorf("config: bgp.prefixes[%d]: %s is IPv6 but this node has no IPv6 overlay address to announce it with", i, p)
		}
	}
	if b.internal, err = prefixList("bgp.internal_prefixes", b.InternalPrefixes); err != nil {
		return err
	}
	if b.GRPCListen == "" {
		b.GRPCListen = "127.0.0.1:50051"
	}
	if !strings.HasPrefix(b.GRPCListen, "unix:") {
		if err := checkListen("bgp.grpc_listen", b.GRPCListen); err != nil {
			return err
		}
	}
	if b.ListenPort == 0 {
		b.ListenPort = 179
	}
	if b.ListenPort < 1 || b.ListenPort > 65535 {
		return fmt.Errorf("config: bgp.listen_port: %d out of range 1..65535", b.ListenPort)
	}
	if b.hold, err = seconds("bgp.hold_time", b.HoldTime, 9*time.Second, 3*time.Second); err != nil {
		return err
	}
	if b.keepalive, err = seconds("bgp.keepalive", b.Keepalive, 3*time.Second, time.Second); err != nil {
		return err
	}
	if b.keepalive >= b.hold {
		return fmt.Errorf("config: bgp.keepalive: %s is not below bgp.hold_time %s", b.keepalive, b.hold)
	}
	if b.Table == 0 {
		b.Table = 254
	}
	if b.Table < 1 || b.Table == 253 || b.Table == 255 || int64(b.Table) > 0xffffffff {
		return fmt.Errorf("config: bgp.table: %d is not a routing table for routes (1..2^32-1, not 253 default or 255 local)", b.Table)
	}
	if b.MaxPrefixes == 0 {
		b.MaxPrefixes = 1000
	}
	if b.Transit == nil {
		t := c.Role == "hub"
		b.Transit = &t
	}
	if b.GracefulRestart == nil {
		gr := true
		b.GracefulRestart = &gr
	}
	sessions := map[netip.Addr]string{}
	for i := range c.peers {
		p := &c.peers[i]
		if !p.bgp {
			if p.asn != 0 {
				return fmt.Errorf("config: peers[%d].asn: set, but the peer has bgp: false", i)
			}
			continue
		}
		addr := overlayIPv4(p.addrs)
		if !addr.IsValid() {
			return fmt.Errorf("config: peers[%d]: the peer needs an IPv4 overlay address for its BGP session (or bgp: false)", i)
		}
		if p.asn == 0 {
			if p.asn = derivedASN(addr); p.asn == 0 {
				return fmt.Errorf("config: peers[%d].asn: missing, and the overlay address %s is outside %s to derive it from", i, addr, overlayPool)
			}
		}
		sessions[addr] = fmt.Sprintf("peers[%d]", i)
	}
	for i, nc := range b.Neighbors {
		where := fmt.Sprintf("bgp.neighbors[%d]", i)
		n := neighbor{NeighborConfig: nc}
		if n.addr, err = netip.ParseAddr(nc.Address); err != nil || n.addr.IsUnspecified() || n.addr.Zone() != "" {
			return fmt.Errorf("config: %s.address: %q is not a neighbour address", where, nc.Address)
		}
		n.addr = n.addr.Unmap()
		if prev, ok := sessions[n.addr]; ok {
			return fmt.Errorf("config: %s.address: %s is also %s", where, n.addr, prev)
		}
		sessions[n.addr] = where
		if nc.ASN == 0 {
			return fmt.Errorf("config: %s.asn: missing (neighbour %s)", where, n.addr)
		}
		if nc.Port < 0 || nc.Port > 65535 {
			return fmt.Errorf("config: %s.port: %d out of range 1..65535", where, nc.Port)
		}
		if nc.Description != "" && !nodeNameRe.MatchString(nc.Description) {
			return fmt.Errorf("config: %s.description: %q is not a valid name", where, nc.Description)
		}
		b.neighbors = append(b.neighbors, n)
	}
	return nil
}

// overlayPool is the default overlay address pool; ASNs are derived from it.
var overlayPool = netip.MustParsePrefix("100.64.0.0/10")

// derivedASN is the private 4-byte ASN of the node with overlay IPv4 a:
// 4200000000 plus a's offset in 100.64.0.0/10 (at most 4204194303, inside
// RFC 6996's range); 0 when a is outside the pool.
func derivedASN(a netip.Addr) uint32 {
	if !overlayPool.Contains(a) {
		return 0
	}
	b := a.As4()
	return 4200000000 + (uint32(b[1]&0x3f)<<16 | uint32(b[2])<<8 | uint32(b[3]))
}

// prefixList parses network prefixes with host bits clear.
func prefixList(field string, list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Zone() != "" {
			return nil, fmt.Errorf("config: %s[%d]: %q is not a network prefix such as 10.244.1.0/24", field, i, s)
		}
		if p != p.Masked() {
			return nil, fmt.Errorf("config: %s[%d]: %q has host bits set; did you mean %s?", field, i, s, p.Masked())
		}
		if p.Addr().Is4In6() {
			return nil, fmt.Errorf("config: %s[%d]: %q: write IPv4 prefixes in dotted form", field, i, s)
		}
		out = append(out, p)
	}
	return out, nil
}

// seconds parses a duration of whole seconds, at least min; "" is def.
func seconds(field, s string, def, min time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < min || d%time.Second != 0 {
		return 0, fmt.Errorf("config: %s: %q: want whole seconds, at least %s, e.g. %s", field, s, min, def)
	}
	return d, nil
}

func hasIPv6(addrs []netip.Prefix) bool {
	for _, a := range addrs {
		if a.Addr().Is6() {
			return true
		}
	}
	return false
}

// overlayIPv6 is the first IPv6 overlay address of addrs.
func overlayIPv6(addrs []netip.Prefix) netip.Addr {
	for _, a := range addrs {
		if a.Addr().Is6() {
			return a.Addr()
		}
	}
	return netip.Addr{}
}

// overlayIPv4 is the first IPv4 overlay address of addrs.
func overlayIPv4(addrs []netip.Prefix) netip.Addr {
	for _, a := range addrs {
		if a.Addr().Is4() {
			return a.Addr()
		}
	}
	return netip.Addr{}
}

func (t *TunnelConfig) validate() error {
	if t.Device == "" {
		t.Device = "roam0"
	}
	if len(t.Device) > 15 || strings.ContainsAny(t.Device, "/: \t") {
		return fmt.Errorf("config: tunnel.device: %q is not a valid interface name (at most 15 characters)", t.Device)
	}
	switch t.Mode {
	case "":
		t.Mode = "auto"
	case "auto", "kernel", "userspace":
	default:
		return fmt.Errorf("config: tunnel.mode: %q: want auto, kernel or userspace", t.Mode)
	}
	if t.MTU == 0 {
		t.MTU = 1420
	}
	if t.MTU < 1280 || t.MTU > 9000 {
		return fmt.Errorf("config: tunnel.mtu: %d out of range 1280..9000", t.MTU)
	}
	return nil
}

func (l *LogConfig) validate() error {
	switch l.Level {
	case "":
		l.Level = "info"
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("config: log.level: %q: want debug, info, warn or error", l.Level)
	}
	switch l.Format {
	case "":
		l.Format = "text"
	case "text", "json":
	default:
		return fmt.Errorf("config: log.format: %q: want text or json", l.Format)
	}
	return nil
}

func (c *Config) validatePeers() error {
	names, keys := map[string]int{}, map[wgtypes.Key]int{}
	owner := map[netip.Prefix]string{} // every overlay address and route, to find duplicates
	for _, a := range c.addrs {
		owner[a] = "addresses"
	}
	for i, pc := range c.Peers {
		where := fmt.Sprintf("peers[%d]", i)
		p := peer{name: pc.Name, endpoint: pc.Endpoint, asn: pc.ASN, bgp: pc.BGP == nil || *pc.BGP, hub: pc.Hub}
		if !nodeNameRe.MatchString(pc.Name) {
			return fmt.Errorf("config: %s.name: %q is not a valid name", where, pc.Name)
		}
		if j, ok := names[pc.Name]; ok {
			return fmt.Errorf("config: %s.name: %q is also peers[%d]", where, pc.Name, j)
		}
		names[pc.Name] = i
		key, err := wgtypes.ParseKey(pc.PublicKey)
		if err != nil {
			return fmt.Errorf("config: %s.public_key: %q is not a WireGuard key (44 characters of base64)", where, pc.PublicKey)
		}
		if j, ok := keys[key]; ok {
			return fmt.Errorf("config: %s.public_key: %q is also the key of peers[%d]", where, pc.PublicKey, j)
		}
		keys[key], p.key = i, key
		if pc.Endpoint != "" {
			if err := checkHostPort(pc.Endpoint); err != nil {
				return fmt.Errorf("config: %s.endpoint: %q: %v", where, pc.Endpoint, err)
			}
		}
		if p.addrs, err = overlayAddrs(where+".addresses", pc.Addresses); err != nil {
			return err
		}
		if len(p.addrs) == 0 {
			return fmt.Errorf("config: %s.addresses: missing (the peer's overlay /32 and/or /128)", where)
		}
		for j, s := range pc.Routes {
			r, err := netip.ParsePrefix(s)
			if err != nil || r != r.Masked() {
				return fmt.Errorf("config: %s.routes[%d]: %q is not a network prefix such as 10.244.1.0/24", where, j, s)
			}
			p.routes = append(p.routes, r)
		}
		for j, a := range append(append([]netip.Prefix{}, p.addrs...), p.routes...) {
			if prev, ok := owner[a]; ok {
				return fmt.Errorf("config: %s: %s is also in %s", where, a, prev)
			}
			owner[a] = fmt.Sprintf("%s (entry %d)", where, j)
		}
		if pc.PersistentKeepalive != "" {
			d, err := time.ParseDuration(pc.PersistentKeepalive)
			if err != nil || d < 0 || d > 65535*time.Second || d%time.Second != 0 {
				return fmt.Errorf("config: %s.persistent_keepalive: %q: want whole seconds up to 65535s, e.g. 25s", where, pc.PersistentKeepalive)
			}
			p.keepalive = d
		}
		c.peers = append(c.peers, p)
	}
	return nil
}

// overlayAddrs parses a list of overlay addresses: at most one IPv4 /32 and
// one IPv6 /128.
func overlayAddrs(field string, list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var v4, v6 bool
	for i, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			if a, aerr := netip.ParseAddr(s); aerr == nil {
				p, err = a.Prefix(a.BitLen())
			}
		}
		if err != nil || p.Bits() != p.Addr().BitLen() || p.Addr().Zone() != "" {
			return nil, fmt.Errorf("config: %s[%d]: %q is not an overlay address (an IPv4 /32 or IPv6 /128)", field, i, s)
		}
		if p.Addr().Is4In6() {
			return nil, fmt.Errorf("config: %s[%d]: %q: write IPv4 addresses in dotted form", field, i, s)
		}
		if (p.Addr().Is4() && v4) || (p.Addr().Is6() && v6) {
			return nil, fmt.Errorf("config: %s[%d]: %q: only one IPv4 and one IPv6 overlay address", field, i, s)
		}
		v4, v6 = v4 || p.Addr().Is4(), v6 || p.Addr().Is6()
		out = append(out, p)
	}
	return out, nil
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("want host:port")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q out of range 1..65535", port)
	}
	if host == "" {
		return errors.New("missing host")
	}
	return nil
}

func checkListen(field, s string) error {
	host, port, err := net.SplitHostPort(s)
	if err == nil {
		var n int
		if n, err = strconv.Atoi(port); err == nil && (n < 0 || n > 65535) {
			err = errors.New("out of range")
		}
	}
	if err == nil && host != "" {
		if _, aerr := netip.ParseAddr(host); aerr != nil && host != "localhost" {
			err = errors.New("not an IP address")
		}
	}
	if err != nil {
		return fmt.Errorf("config: %s: %q is not a listen address such as 127.0.0.1:7470", field, s)
	}
	return nil
}
