package api

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestGeneratedCodeIsCurrent regenerates api/roampb the way `make proto` does
// and fails if the committed code differs. Without protoc it skips, except
// under CI=true, where `make deps` installs protoc.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("protoc not found (CI=true, so this is a failure; make deps installs protobuf-compiler): %v", err)
		}
		t.Skipf("protoc not found (apt-get install protobuf-compiler): %v", err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not found: %v", err)
	}
	plugin, err := exec.Command(goBin, "tool", "-n", "protoc-gen-go").Output()
	if err != nil {
		t.Fatalf("go tool -n protoc-gen-go: %v", err)
	}
	// The include directory of protoc's well-known types, next to its bin/.
	include := filepath.Join(filepath.Dir(filepath.Dir(protoc)), "include")
	protos, err := filepath.Glob("*.proto")
	if err != nil || len(protos) == 0 {
		t.Fatalf("no .proto files in api/: %v", err)
	}
	out := t.TempDir()
	args := append([]string{
		"-I", ".", "-I", include,
		"--plugin=protoc-gen-go=" + strings.TrimSpace(string(plugin)),
		"--go_out=" + out, "--go_opt=paths=source_relative",
	}, protos...)
	if b, err := exec.Command(protoc, args...).CombinedOutput(); err != nil {
		t.Fatalf("protoc %s: %v\n%s", strings.Join(args, " "), err, b)
	}

	generated, _ := filepath.Glob(filepath.Join(out, "*.pb.go"))
	committed, _ := filepath.Glob(filepath.Join("roampb", "*.pb.go"))
	if len(generated) != len(committed) {
		t.Errorf("protoc generates %d files, api/roampb has %d: run make proto", len(generated), len(committed))
	}
	for _, g := range generated {
		name := filepath.Base(g)
		want, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("roampb", name))
		if err != nil {
			t.Errorf("api/roampb/%s: %v: run make proto", name, err)
			continue
		}
		if !bytes.Equal(normalizeGenerated(got), normalizeGenerated(want)) {
			t.Errorf("api/roampb/%s is stale: run make proto", name)
		}
	}
}

// protocVersionLine is the header line naming the protoc version; it is the
// only part of the output that may differ between equally good protocs.
var protocVersionLine = regexp.MustCompile(`(?m)^//\s+protoc\s+v\S+$`)

func normalizeGenerated(b []byte) []byte {
	return protocVersionLine.ReplaceAll(b, []byte("// protoc (any)"))
}
