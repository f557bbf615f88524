package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/roamnet/roam/testbed/labtest"
)

// TestCommandLine runs the roamd binary as an operator would: a bad config
// exits 2 naming the field and starts nothing (not even a key file);
// --check-config and --version exit 0.
func TestCommandLine(t *testing.T) {
	labtest.BuildBinaries(t)
	roamd := filepath.Join(labtest.RepoRoot(), "bin", "roamd")
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "node: a\naddresses: [100.64.0.1/32]\ndata_dir: "+dir+"/data\n")
	bad := write("bad.yaml", "node: a\naddresses: [100.64.0.1/32]\ndata_dir: "+dir+"/data\nlisten_port: 99999\n")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad config", []string{"--config", bad}, 2, "listen_port: 99999 out of range 1..65535"},
		{"check bad config", []string{"--check-config", bad}, 2, "listen_port: 99999"},
		{"check good config", []string{"--check-config", good}, 0, "ok (node a, role node, 0 peers)"},
		{"missing config", []string{"--config", filepath.Join(dir, "none.yaml")}, 2, "no such file"},
		{"version", []string{"--version"}, 0, "roamd "},
		{"bad flag", []string{"--colour"}, 2, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := exec.Command(roamd, tt.args...).CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code || !strings.Contains(string(out), tt.want) {
				t.Errorf("roamd %v: exit %d, output %q; want %d and %q", tt.args, code, out, tt.code, tt.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); !os.IsNotExist(err) {
		t.Errorf("a rejected config still created the data directory (%v)", err)
	}
}
