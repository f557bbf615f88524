package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

const keyB = "hDnJkzX0M4bT5vV0yA9Jf6f9aHn2Lr1Y3wQ2eE8sVmE="
const keyC = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="

const goodConfig = `
node: a
addresses: [100.64.0.1/32, "fd00:64::1/128"]
peers:
  - name: b
    public_key: ` + keyB + `
    endpoint: 192.0.2.2:51820
    addresses: [100.64.0.2/32]
    persistent_keepalive: 25s
    routes: [10.244.2.0/24]
`

func TestParseConfigDefaults(t *testing.T) {
	c, err := parseConfig([]byte(goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	if c.ListenPort != 51820 || c.Role != "node" || c.DataDir != "/var/lib/roam" ||
		c.PrivateKeyFile != "/var/lib/roam/private.key" || c.Tunnel.Device != "roam0" || c.Tunnel.Mode != "auto" ||
		c.Tunnel.MTU != 1420 || c.API.Listen != "127.0.0.1:7470" || c.Metrics.Listen != "127.0.0.1:9474" ||
		c.Log.Level != "info" || c.Log.Format != "text" {
		t.Errorf("defaults not filled: %+v", c)
	}
	if len(c.peers) != 1 || c.peers[0].keepalive.Seconds() != 25 || c.peers[0].routes[0].String() != "10.244.2.0/24" {
		t.Errorf("peer: %+v", c.peers)
	}
}

func TestParseConfigErrors(t *testing.T) {
	base := "node: a\naddresses: [100.64.0.1/32]\n"
	peer := func(fields string) string {
		return base + "peers:\n  - {name: b, public_key: " + keyB + ", addresses: [100.64.0.2/32]" + fields + "}\n"
	}
	tests := []struct{ name, yaml, want string }{
		{"empty", "", "config: file is empty"},
		{"bad yaml", "node: [a", "config: "},
		{"unknown field", base + "colour: blue\n", "field colour not found"},
		{"unknown nested field", base + "tunnel: {dev: x}\n", "field dev not found"},
		{"no node", "addresses: [100.64.0.1/32]\n", "node: missing"},
		{"bad node", "node: 'a b'\naddresses: [100.64.0.1/32]\n", `node: "a b" is not a valid name`},
		{"no addresses", "node: a\n", "addresses: missing"},
		{"address not host", "node: a\naddresses: [100.64.0.0/10]\n", `addresses[0]: "100.64.0.0/10" is not an overlay address`},
		{"address garbage", "node: a\naddresses: [banana]\n", `addresses[0]: "banana" is not an overlay address`},
		{"two ipv4", "node: a\naddresses: [100.64.0.1/32, 100.64.0.9/32]\n", "only one IPv4 and one IPv6"},
		{"port high", base + "listen_port: 70000\n", "listen_port: 70000 out of range 1..65535"},
		{"port negative", base + "listen_port: -1\n", "listen_port: -1 out of range"},
		{"role", base + "role: router\n", `role: "router": want node or hub`},
		{"relative data dir", base + "data_dir: var/roam\n", `data_dir: "var/roam" must be an absolute path`},
		{"tunnel mode", base + "tunnel: {mode: fast}\n", `tunnel.mode: "fast"`},
		{"tunnel device", base + "tunnel: {device: averyveryverylongname}\n", "tunnel.device"},
		{"mtu", base + "tunnel: {mtu: 100}\n", "tunnel.mtu: 100 out of range"},
		{"api listen", base + "api: {listen: 'nowhere'}\n", `api.listen: "nowhere" is not a listen address`},
		{"metrics host", base + "metrics: {listen: 'example.com:9474'}\n", `metrics.listen: "example.com:9474"`},
		{"same listen", base + "metrics: {listen: '127.0.0.1:7470'}\n", "is also api.listen"},
		{"log level", base + "log: {level: loud}\n", `log.level: "loud"`},
		{"log format", base + "log: {format: xml}\n", `log.format: "xml"`},
		{"peer key", base + "peers:\n  - {name: b, public_key: nokey, addresses: [100.64.0.2/32]}\n", `peers[0].public_key: "nokey" is not a WireGuard key`},
		{"peer name", base + "peers:\n  - {name: '', public_key: " + keyB + ", addresses: [100.64.0.2/32]}\n", "peers[0].name"},
		{"duplicate peer name", peer("") + "  - {name: b, public_key: " + keyC + ", addresses: [100.64.0.3/32]}\n", `peers[1].name: "b" is also peers[0]`},
		{"duplicate key", peer("") + "  - {name: c, public_key: " + keyB + ", addresses: [100.64.0.3/32]}\n", "is also the key of peers[0]"},
		{"duplicate address", peer("") + "  - {name: c, public_key: " + keyC + ", addresses: [100.64.0.2/32]}\n", "peers[1]: 100.64.0.2/32 is also in peers[0]"},
		{"peer has our address", base + "peers:\n  - {name: b, public_key: " + keyB + ", addresses: [100.64.0.1/32]}\n", "100.64.0.1/32 is also in addresses"},
		{"peer without address", base + "peers:\n  - {name: b, public_key: " + keyB + "}\n", "peers[0].addresses: missing"},
		{"endpoint", peer(", endpoint: 192.0.2.2"), `peers[0].endpoint: "192.0.2.2": want host:port`},
		{"endpoint port", peer(", endpoint: '192.0.2.2:0'"), `port "0" out of range`},
		{"route not network", peer(", routes: [10.244.2.1/24]"), `peers[0].routes[0]: "10.244.2.1/24" is not a network prefix`},
		{"keepalive", peer(", persistent_keepalive: 1.5s"), `persistent_keepalive: "1.5s": want whole seconds`},
		{"bgp prefix host bits", base + "bgp: {asn: 4200000001, prefixes: [10.244.1.1/24]}\n", `bgp.prefixes[0]: "10.244.1.1/24" has host bits set; did you mean 10.244.1.0/24?`},
		{"bgp prefix garbage", base + "bgp: {prefixes: [pods]}\n", `bgp.prefixes[0]: "pods" is not a network prefix`},
		{"bgp asn not derivable", "node: a\naddresses: [10.1.0.1/32]\nbgp: {}\n", "bgp.asn: missing, and the overlay address 10.1.0.1 is outside 100.64.0.0/10"},
		{"peer asn without bgp", peer(", asn: 4200000002"), "peers[0].asn: set, but there is no bgp section"},
		{"peer asn with bgp false", base + "bgp: {}\npeers:\n  - {name: b, public_key: " + keyB + ", addresses: [100.64.0.2/32], bgp: false, asn: 5}\n", "peers[0].asn: set, but the peer has bgp: false"},
		{"bgp v6 prefix without v6 overlay", base + "bgp: {prefixes: ['fd10::/64']}\n", "bgp.prefixes[0]: fd10::/64 is IPv6 but this node has no IPv6 overlay address"},
		{"bgp internal", base + "bgp: {internal_prefixes: [10.244.0.1/16]}\n", `bgp.internal_prefixes[0]: "10.244.0.1/16" has host bits set`},
		{"bgp hold", base + "bgp: {hold_time: 2s}\n", `bgp.hold_time: "2s": want whole seconds, at least 3s`},
		{"bgp keepalive", base + "bgp: {hold_time: 6s, keepalive: 6s}\n", "bgp.keepalive: 6s is not below bgp.hold_time 6s"},
		{"bgp table", base + "bgp: {table: 255}\n", "bgp.table: 255 is not a routing table"},
		{"bgp router id", base + "bgp: {router_id: 'fd00::1'}\n", `bgp.router_id: "fd00::1" is not an IPv4 address`},
		{"neighbor address", base + "bgp: {neighbors: [{address: router, asn: 65001}]}\n", `bgp.neighbors[0].address: "router" is not a neighbour address`},
		{"neighbor asn", base + "bgp: {neighbors: [{address: 198.51.100.2}]}\n", "bgp.neighbors[0].asn: missing (neighbour 198.51.100.2)"},
		{"neighbor twice", base + "bgp: {neighbors: [{address: 198.51.100.2, asn: 1}, {address: 198.51.100.2, asn: 2}]}\n", "bgp.neighbors[1].address: 198.51.100.2 is also bgp.neighbors[0]"},
		{"neighbor is a peer", base + "bgp: {neighbors: [{address: 100.64.0.2, asn: 1}]}\npeers:\n  - {name: b, public_key: " + keyB + ", addresses: [100.64.0.2/32]}\n", "bgp.neighbors[0].address: 100.64.0.2 is also peers[0]"},
		{"neighbor port", base + "bgp: {neighbors: [{address: 198.51.100.2, asn: 1, port: 70000}]}\n", "bgp.neighbors[0].port: 70000 out of range"},
		{"bgp grpc", base + "bgp: {asn: 4200000001, grpc_listen: nowhere}\n", `bgp.grpc_listen: "nowhere"`},
		{"bgp without ipv4", "node: a\naddresses: ['fd00::1/128']\nbgp: {asn: 4200000001}\n", "bgp: needs an IPv4 overlay address"},
		{"keepalive big", peer(", persistent_keepalive: 70000s"), "persistent_keepalive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(goodConfig))
	f.Add([]byte("node: a\naddresses: [100.64.0.1]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseConfig(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "config: ") {
				t.Fatalf("error without the config: prefix: %v", err)
			}
			return
		}
		// What is accepted is complete: defaults filled, every peer parsed.
		if c.ListenPort < 1 || c.ListenPort > 65535 || len(c.addrs) == 0 || len(c.peers) != len(c.Peers) {
			t.Fatalf("accepted an incomplete config: %+v", c)
		}
		for _, p := range c.peers {
			if len(p.addrs) == 0 {
				t.Fatalf("peer %s without addresses", p.name)
			}
		}
	})
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "private.key")
	k1, created, err := loadOrCreateKey(path)
	if err != nil || !created {
		t.Fatalf("first start: created %v, err %v", created, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	k2, created, err := loadOrCreateKey(path)
	if err != nil || created || k1 != k2 {
		t.Fatalf("second start: same key %v, created %v, err %v", k1 == k2, created, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadOrCreateKey(path); err == nil || !strings.Contains(err.Error(), "readable by others (mode 0644)") {
		t.Errorf("world-readable key: %v", err)
	}
	bad := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(bad, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadOrCreateKey(bad); err == nil || !strings.Contains(err.Error(), "does not hold a WireGuard private key") {
		t.Errorf("garbage key: %v", err)
	}
	// A key written by wg genkey is accepted as it is.
	k, _ := wgtypes.GeneratePrivateKey()
	wgkey := filepath.Join(dir, "wg.key")
	if err := os.WriteFile(wgkey, []byte(k.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _, err := loadOrCreateKey(wgkey); err != nil || got != k {
		t.Errorf("wg genkey file: %v", err)
	}
}

func TestParseConfigBGPDefaults(t *testing.T) {
	c, err := parseConfig([]byte("node: a\naddresses: [100.64.1.2/32]\nrole: hub\nbgp: {}\npeers:\n" +
		"  - {name: b, public_key: " + keyB + ", addresses: [100.64.0.2/32]}\n" +
		"  - {name: c, public_key: " + keyC + ", addresses: [100.64.0.3/32], bgp: false}\n"))
	if err != nil {
		t.Fatal(err)
	}
	b := c.BGP
	if b.asn != 4200000258 || b.routerID.String() != "100.64.1.2" || b.GRPCListen != "127.0.0.1:50051" ||
		b.ListenPort != 179 || b.hold.Seconds() != 9 || b.keepalive.Seconds() != 3 || b.Table != 254 ||
		b.MaxPrefixes != 1000 || !*b.Transit || !*b.GracefulRestart {
		t.Errorf("bgp defaults: %+v", b)
	}
	if c.peers[0].asn != 4200000002 || c.peers[1].asn != 0 {
		t.Errorf("peer ASNs: %d (want derived 4200000002), %d (want 0: bgp: false)", c.peers[0].asn, c.peers[1].asn)
	}
	bc := bgpConfig(c, false)
	if len(bc.Neighbors) != 1 || bc.Neighbors[0].Address.String() != "100.64.0.2" || len(bc.ListenAddresses) != 1 {
		t.Errorf("speaker config: %+v", bc)
	}
}

func TestDerivedASN(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want uint32
	}{
		{"100.64.0.0", 4200000000},
		{"100.64.0.1", 4200000001},
		{"100.64.1.0", 4200000256},
		{"100.127.255.255", 4204194303},
		{"100.128.0.0", 0},
		{"10.0.0.1", 0},
		{"fd00::1", 0},
	} {
		if got := derivedASN(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("derivedASN(%s) = %d, want %d", tc.addr, got, tc.want)
		}
	}
}
