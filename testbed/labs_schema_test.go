package testbed_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// schemaFile is containerlab's topology schema, copied byte for byte (see
// schema/README.md). schemaID is its "$id"; the compiler gets the document
// under that URL, so nothing is fetched: its only other reference, the
// draft-07 metaschema, is built into the library.
const (
	schemaFile = "schema/clab.schema.json"
	schemaID   = "https://containerlab.dev/clab.schema.json"
)

// shippedLabs are the labs other code and the README rely on; the glob over
// labs/ must find at least these, so an empty or renamed directory fails.
var shippedLabs = []string{
	"labs/ice.clab.yml",
	"labs/mobile.clab.yml",
	"labs/nat-symmetric.clab.yml",
	"labs/nat.clab.yml",
	"labs/pair.clab.yml",
	"labs/quality.clab.yml",
}

func TestLabsSchema(t *testing.T) {
	sch := compileSchema(t)
	files := labFiles(t)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := validateYAML(sch, data); err != nil {
				t.Errorf("%s does not match containerlab's schema: %v", file, err)
			}
		})
	}
}

// TestSchemaRejectsBadTopology proves the validator in TestLabsSchema can
// fail: each topology breaks the schema in one place, and the error must
// point there.
func TestSchemaRejectsBadTopology(t *testing.T) {
	sch := compileSchema(t)
	tests := []struct {
		name string
		yaml string
		want string // part of the error: the location of the problem
	}{
		{
			name: "unknown kind",
			yaml: "name: x\ntopology:\n  nodes:\n    r1:\n      kind: docker-host\n",
			want: "/topology/nodes/r1/kind",
		},
		{
			name: "misspelled top-level key",
			yaml: "name: x\ntopolgy:\n  nodes:\n    r1:\n      kind: linux\n",
			want: "topolgy",
		},
		{
			name: "exec is a string, not a list",
			yaml: "name: x\ntopology:\n  nodes:\n    r1:\n      kind: linux\n      exec: ip link\n",
			want: "/topology/nodes/r1/exec",
		},
		{
			name: "lab name with a space",
			yaml: "name: my lab\ntopology:\n  nodes:\n    r1:\n      kind: linux\n",
			want: "/name",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateYAML(sch, []byte(tt.yaml))
			if err == nil {
				t.Fatalf("schema accepted an invalid topology:\n%s", tt.yaml)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error does not mention %q:\n%v", tt.want, err)
			}
		})
	}
}

// allowedPrefixes are the only ranges a lab may use (DESIGN.md, testbed
// safety rules): documentation and test ranges that never leave the lab.
var allowedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("10.244.0.0/16"),
}

var ipv4Literal = regexp.MustCompile(`\b\d{1,3}(\.\d{1,3}){3}(/\d{1,2})?\b`)

// TestLabsAddresses checks every IPv4 address or prefix written in a lab
// file, commands and comments alike, against the allowed ranges.
func TestLabsAddresses(t *testing.T) {
	for _, file := range labFiles(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			found := 0
			for i, line := range strings.Split(string(data), "\n") {
				for _, lit := range ipv4Literal.FindAllString(line, -1) {
					found++
					if err := checkAllowed(lit); err != nil {
						t.Errorf("%s:%d: %v", file, i+1, err)
					}
				}
			}
			if found == 0 {
				t.Errorf("%s: no IPv4 address found; the check saw nothing", file)
			}
		})
	}
}

func TestCheckAllowed(t *testing.T) {
	tests := []struct {
		name string
		lit  string
		ok   bool
	}{
		{name: "address in 203.0.113.0/24", lit: "203.0.113.1", ok: true},
		{name: "prefix in 192.0.2.0/24", lit: "192.0.2.64/26", ok: true},
		{name: "whole 100.64.0.0/10", lit: "100.64.0.0/10", ok: true},
		{name: "private address", lit: "10.0.0.1", ok: false},
		{name: "public address", lit: "8.8.8.8", ok: false},
		{name: "prefix wider than its range", lit: "192.0.2.0/23", ok: false},
		{name: "not an address", lit: "300.1.1.1", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkAllowed(tt.lit)
			if ok := err == nil; ok != tt.ok {
				t.Errorf("checkAllowed(%q) = %v, want ok=%v", tt.lit, err, tt.ok)
			}
		})
	}
}

func checkAllowed(lit string) error {
	p, err := netip.ParsePrefix(lit)
	if err != nil {
		a, aerr := netip.ParseAddr(lit)
		if aerr != nil {
			return fmt.Errorf("%q is not an IPv4 address or prefix", lit)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	for _, allowed := range allowedPrefixes {
		if p.Bits() >= allowed.Bits() && allowed.Contains(p.Addr()) {
			return nil
		}
	}
	return fmt.Errorf("%s is outside the lab ranges %v", lit, allowedPrefixes)
}

func labFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("labs/*.clab.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range shippedLabs {
		if !slices.Contains(files, want) {
			t.Errorf("lab %s is missing (found %v)", want, files)
		}
	}
	return files
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	data, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parse %s: %v", schemaFile, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schemaID, doc); err != nil {
		t.Fatalf("add %s: %v", schemaFile, err)
	}
	sch, err := c.Compile(schemaID)
	if err != nil {
		t.Fatalf("compile %s: %v", schemaFile, err)
	}
	return sch
}

// validateYAML decodes one YAML document into JSON values (string map keys,
// json.Number numbers, as the validator expects) and validates it.
func validateYAML(sch *jsonschema.Schema, data []byte) error {
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("yaml: %w", err)
	}
	js, err := json.Marshal(jsonValue(v))
	if err != nil {
		return fmt.Errorf("yaml to json: %w", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

// jsonValue turns the maps yaml.v3 may produce with non-string keys
// (map[any]any) into map[string]any, recursively.
func jsonValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = jsonValue(e)
		}
		return m
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[fmt.Sprint(k)] = jsonValue(e)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, e := range v {
			s[i] = jsonValue(e)
		}
		return s
	default:
		return v
	}
}
