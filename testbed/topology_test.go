package testbed

import (
	"strings"
	"testing"
)

const goodTopology = `
name: demo
topology:
  defaults:
    env: {A: "1"}
    labels: {team: edge}
  kinds:
    linux:
      image: nicolaka/netshoot:v0.13
      env: {A: "2", B: "kind"}
  nodes:
    r1:
      kind: linux
      exec: ["ip addr add 192.0.2.1/24 dev eth1"]
      env: {B: node}
      binds: ["data:/opt/data:ro", "/etc/hostname:/etc/roam-hostname"]
    r2:
      kind: linux
      cmd: sleep 60
    sw:
      kind: bridge
  links:
    - endpoints: ["r1:eth1", "sw:p1"]
    - endpoints: ["r2:eth1", "sw:p2"]
      mtu: 1400
`

func TestParseTopology(t *testing.T) {
	topo, err := ParseTopology([]byte(goodTopology), "/labs")
	if err != nil {
		t.Fatal(err)
	}
	if topo.Name != "demo" || len(topo.Nodes) != 3 || len(topo.Links) != 2 {
		t.Fatalf("got name %q, %d nodes, %d links", topo.Name, len(topo.Nodes), len(topo.Links))
	}
	r1 := topo.Node("r1")
	if r1.Image != "nicolaka/netshoot:v0.13" {
		t.Errorf("image from kinds: got %q", r1.Image)
	}
	if r1.Env["A"] != "2" || r1.Env["B"] != "node" {
		t.Errorf("env merge node > kind > defaults: got %v", r1.Env)
	}
	if r1.Labels["team"] != "edge" {
		t.Errorf("labels from defaults: got %v", r1.Labels)
	}
	want := []Bind{{Host: "/etc/hostname", Target: "/etc/roam-hostname"}, {Host: "/labs/data", Target: "/opt/data", ReadOnly: true}}
	if len(r1.Binds) != 2 || r1.Binds[0] != want[0] || r1.Binds[1] != want[1] {
		t.Errorf("binds: got %+v, want %+v", r1.Binds, want)
	}
	if topo.Node("sw").Kind != KindBridge || topo.Node("sw").Image != "" {
		t.Errorf("bridge: got %+v", topo.Node("sw"))
	}
	if l := topo.Links[1]; l.A != (Endpoint{"r2", "eth1"}) || l.B != (Endpoint{"sw", "p2"}) || l.MTU != 1400 {
		t.Errorf("link: got %+v", l)
	}
	if got := topo.Interfaces("sw"); strings.Join(got, ",") != "p1,p2" {
		t.Errorf("Interfaces(sw) = %v", got)
	}
}

func TestParseTopologyErrors(t *testing.T) {
	node := func(extra string) string {
		return "name: x\ntopology:\n  nodes:\n    a:\n      kind: linux\n" + extra
	}
	tests := []struct {
		name, yaml, want string
	}{
		{"bad yaml", "name: x\ntopology: [nodes: {", "bad YAML"},
		{"empty", "", "topology is empty"},
		{"no name", "topology:\n  nodes:\n    a: {kind: linux}\n", "name: missing lab name"},
		{"bad lab name", "name: a/b\ntopology:\n  nodes:\n    a: {kind: linux}\n", `"a/b" is not a valid lab name`},
		{"no nodes", "name: x\ntopology:\n  links: []\n", "at least one node"},
		{"unknown top-level field", "name: x\nmgmt: {network: m}\ntopology:\n  nodes:\n    a: {kind: linux}\n", "mgmt (line 2): field not supported by roamlab"},
		{"unknown kind", "name: x\ntopology:\n  nodes:\n    a: {kind: srl}\n", `kind "srl" is not supported by roamlab`},
		{"missing kind", "name: x\ntopology:\n  nodes:\n    a: {image: x}\n", "topology.nodes.a (line 4): missing kind"},
		{"unsupported node field", node("      ports: [\"80:80\"]\n"), "topology.nodes.a.ports (line 6): field not supported"},
		{"host network mode", node("      network-mode: host\n"), "network-mode: \"host\" is refused"},
		{"bad bind", node("      binds: [\"/a\"]\n"), `topology.nodes.a.binds: "/a": want host-path:node-path`},
		{"bad bind mode", node("      binds: [\"/a:/b:z\"]\n"), `mode "z" is not supported`},
		{"exec not a list", node("      exec: ls\n"), "topology.nodes.a: line 6: cannot unmarshal"},
		{"link to unknown node", node("  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n"), `endpoint "b:eth1": unknown node "b"`},
		{"duplicate interface", node("    b: {kind: linux}\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n    - endpoints: [\"a:eth1\", \"b:eth2\"]\n"), "interface a:eth1 is already used by the link at line 8"},
		{"one endpoint", node("  links:\n    - endpoints: [\"a:eth1\"]\n"), "want exactly 2"},
		{"endpoint without iface", node("    b: {kind: linux}\n  links:\n    - endpoints: [\"a\", \"b:eth1\"]\n"), `endpoint "a": want "node:interface"`},
		{"long iface", node("    b: {kind: linux}\n  links:\n    - endpoints: [\"a:eth1234567890123\", \"b:eth1\"]\n"), "not a valid interface name"},
		{"eth0", node("    b: {kind: linux}\n  links:\n    - endpoints: [\"a:eth0\", \"b:eth1\"]\n"), "eth0 is containerlab's management interface"},
		{"link field", node("    b: {kind: linux}\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n      type: veth\n"), "topology.links[0].type (line 9): field not supported"},
		{"bad mtu", node("    b: {kind: linux}\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n      mtu: 20\n"), "mtu 20 out of range"},
		{"bridge exec", "name: x\ntopology:\n  nodes:\n    br: {kind: bridge, exec: [ls]}\n", "not supported on kind bridge"},
		{"bridge long name", "name: x\ntopology:\n  nodes:\n    bridgewithalongname: {kind: bridge}\n", "must be a valid interface name"},
		{"two documents", "name: x\ntopology:\n  nodes:\n    a: {kind: linux}\n---\nname: y\n", "line 5: a second YAML document"},
		{"bridge kind exec", "name: x\ntopology:\n  kinds:\n    bridge: {exec: [ls]}\n  nodes:\n    br: {kind: bridge}\n", "topology.kinds.bridge: exec, cmd and binds are not supported"},
		{"bad node name", "name: x\ntopology:\n  nodes:\n    \"a b\": {kind: linux}\n", `"a b" is not a valid node name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTopology([]byte(tt.yaml), "/labs")
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func FuzzParseTopology(f *testing.F) {
	f.Add([]byte(goodTopology))
	f.Add([]byte("name: x\ntopology:\n  nodes:\n    a: {kind: linux}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		topo, err := ParseTopology(data, "/labs")
		if err != nil {
			return
		}
		// Whatever parses must name valid nodes and links between them.
		for _, l := range topo.Links {
			if topo.Node(l.A.Node) == nil || topo.Node(l.B.Node) == nil {
				t.Fatalf("link %v-%v names an unknown node", l.A, l.B)
			}
		}
		if !nameRe.MatchString(topo.Name) {
			t.Fatalf("accepted lab name %q", topo.Name)
		}
	})
}
