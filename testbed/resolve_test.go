package testbed

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeState(t *testing.T, root, lab, nodes string) {
	t.Helper()
	dir := filepath.Join(root, lab)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	yaml := "# roamlab-source: /labs/" + lab + ".clab.yml\nname: " + lab + "\ntopology:\n  nodes:\n"
	for _, n := range strings.Fields(nodes) {
		yaml += "    " + n + ": {kind: linux}\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "topology.clab.yml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFindNode(t *testing.T) {
	one, two, none := t.TempDir(), t.TempDir(), t.TempDir()
	writeState(t, one, "nat", "hub host1")
	writeState(t, two, "nat", "hub host1")
	writeState(t, two, "mobile", "hub mobile")
	tests := []struct {
		name, root, node string
		lab, short, err  string
	}{
		{name: "short name, one lab", root: one, node: "host1", lab: "nat", short: "host1"},
		{name: "full name, one lab", root: one, node: "clab-nat-hub", lab: "nat", short: "hub"},
		{name: "full name, two labs", root: two, node: "clab-mobile-hub", lab: "mobile", short: "hub"},
		{name: "short name, two labs", root: two, node: "hub", err: `2 labs are deployed (mobile, nat)`},
		{name: "unknown node", root: one, node: "host9", err: `lab nat has no node "host9" (nodes: hub, host1)`},
		{name: "no lab", root: none, node: "hub", err: "no lab is deployed"},
		{name: "no node", root: one, node: "", err: "no node given"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topo, short, err := FindNode(tt.root, "", tt.node)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if topo.Name != tt.lab || short != tt.short || topo.File != "/labs/"+tt.lab+".clab.yml" {
				t.Errorf("got lab %s node %s file %s; want %s %s", topo.Name, short, topo.File, tt.lab, tt.short)
			}
		})
	}
}
