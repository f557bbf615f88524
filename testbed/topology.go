package testbed

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Kinds roamlab deploys.
const (
	KindLinux  = "linux"
	KindBridge = "bridge"
)

// Topology is a parsed, validated containerlab topology file with defaults and
// kinds already applied to every node.
type Topology struct {
	Name  string  // lab name; namespaces are clab-<Name>-<node>
	File  string  // absolute path of the file it came from ("" when parsed from bytes)
	Nodes []*Node // in file order
	Links []Link  // in file order
}

// Node is one lab node after defaults and kinds are merged into it.
type Node struct {
	Name   string
	Kind   string            // KindLinux or KindBridge
	Image  string            // recorded for containerlab; roamlab runs the host's programs
	Exec   []string          // shell command lines run after all links exist
	Cmd    string            // long-running process started after exec
	Env    map[string]string // environment of exec and cmd
	Binds  []Bind            // host paths made visible inside the node
	Labels map[string]string // free-form, shown by inspect
}

// Bind makes Host visible at Target inside a node's mount namespace.
type Bind struct {
	Host     string // absolute path on the host
	Target   string // absolute path inside the node
	ReadOnly bool
}

// Endpoint is one end of a link: an interface of a node.
type Endpoint struct {
	Node  string
	Iface string
}

func (e Endpoint) String() string { return e.Node + ":" + e.Iface }

// Link is a veth pair between two endpoints.
type Link struct {
	A, B Endpoint
	MTU  int // 0 = kernel default
}

// Node returns the named node or nil.
func (t *Topology) Node(name string) *Node {
	for _, n := range t.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Interfaces returns the link interfaces of node, in link order.
func (t *Topology) Interfaces(node string) []string {
	var out []string
	for _, l := range t.Links {
		for _, e := range []Endpoint{l.A, l.B} {
			if e.Node == node {
				out = append(out, e.Iface)
			}
		}
	}
	return out
}

// LoadTopology reads and validates a topology file.
func LoadTopology(path string) (*Topology, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("testbed: topology %s: %w", path, err)
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("testbed: read topology: %w", err)
	}
	t, err := ParseTopology(data, filepath.Dir(abs))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t.File = abs
	return t, nil
}

// Fields of the containerlab format, by section. A field containerlab knows but
// roamlab does not implement is an error, never silently ignored.
var (
	topLevelFields = []string{"name", "topology"}
	topologyFields = []string{"nodes", "links", "defaults", "kinds"}
	nodeFields     = []string{"kind", "image", "exec", "cmd", "env", "binds", "labels", "network-mode"}
	linkFields     = []string{"endpoints", "mtu"}
)

var (
	nameRe  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)
	ifaceRe = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,15}$`)
)

// ParseTopology parses a topology from YAML. Relative bind paths are resolved
// against dir, as containerlab resolves them against the file's directory.
func ParseTopology(data []byte, dir string) (*Topology, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("testbed: bad YAML: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil, errors.New("testbed: topology is empty")
	}
	var more yaml.Node
	if err := dec.Decode(&more); err == nil {
		return nil, fmt.Errorf("testbed: line %d: a second YAML document; a topology file holds one", more.Line)
	}
	root := doc.Content[0]
	if err := checkFields(root, "", topLevelFields); err != nil {
		return nil, err
	}
	t := &Topology{}
	if err := decodeField(root, "name", "name", &t.Name); err != nil {
		return nil, err
	}
	if t.Name == "" {
		return nil, errors.New("testbed: name: missing lab name")
	}
	if !nameRe.MatchString(t.Name) {
		return nil, fmt.Errorf("testbed: name: %q is not a valid lab name (letters, digits, '-', '_')", t.Name)
	}
	topo := field(root, "topology")
	if topo == nil {
		return nil, errors.New("testbed: topology: missing section")
	}
	if err := checkFields(topo, "topology", topologyFields); err != nil {
		return nil, err
	}
	var defaults nodeDef
	if d := field(topo, "defaults"); d != nil {
		if err := parseNodeDef(d, "topology.defaults", &defaults); err != nil {
			return nil, err
		}
	}
	kinds := map[string]nodeDef{}
	if k := field(topo, "kinds"); k != nil {
		if k.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("testbed: topology.kinds (line %d): must be a mapping", k.Line)
		}
		for i := 0; i < len(k.Content); i += 2 {
			name := k.Content[i].Value
			var d nodeDef
			if err := parseNodeDef(k.Content[i+1], "topology.kinds."+name, &d); err != nil {
				return nil, err
			}
			if err := checkKind(name, "topology.kinds."+name, k.Content[i].Line); err != nil {
				return nil, err
			}
			kinds[name] = d
		}
	}
	nodes := field(topo, "nodes")
	if nodes == nil || nodes.Kind != yaml.MappingNode || len(nodes.Content) == 0 {
		return nil, errors.New("testbed: topology.nodes: a lab needs at least one node")
	}
	for i := 0; i < len(nodes.Content); i += 2 {
		name, line := nodes.Content[i].Value, nodes.Content[i].Line
		where := "topology.nodes." + name
		if !nameRe.MatchString(name) {
			return nil, fmt.Errorf("testbed: %s (line %d): %q is not a valid node name (letters, digits, '-', '_')", where, line, name)
		}
		if t.Node(name) != nil {
			return nil, fmt.Errorf("testbed: %s (line %d): duplicate node %q", where, line, name)
		}
		var d nodeDef
		if err := parseNodeDef(nodes.Content[i+1], where, &d); err != nil {
			return nil, err
		}
		n, err := buildNode(name, where, line, d, kinds, defaults, dir)
		if err != nil {
			return nil, err
		}
		t.Nodes = append(t.Nodes, n)
	}
	if links := field(topo, "links"); links != nil {
		if err := t.parseLinks(links); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// nodeDef is a node, a kind or the defaults as written in the file.
type nodeDef struct {
	Kind        string            `yaml:"kind"`
	Image       string            `yaml:"image"`
	Exec        []string          `yaml:"exec"`
	Cmd         string            `yaml:"cmd"`
	Env         map[string]string `yaml:"env"`
	Binds       []string          `yaml:"binds"`
	Labels      map[string]string `yaml:"labels"`
	NetworkMode string            `yaml:"network-mode"`
}

func parseNodeDef(n *yaml.Node, where string, d *nodeDef) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil // "node: {}" written as "node:"
	}
	if err := checkFields(n, where, nodeFields); err != nil {
		return err
	}
	if err := n.Decode(d); err != nil {
		return fmt.Errorf("testbed: %s: %w", where, cleanYAMLError(err))
	}
	if d.NetworkMode != "" {
		return fmt.Errorf("testbed: %s.network-mode: %q is refused: every lab node needs its own network namespace (roamlab never runs a node in the host's)", where, d.NetworkMode)
	}
	return nil
}

func checkKind(kind, where string, line int) error {
	switch kind {
	case KindLinux, KindBridge:
		return nil
	case "":
		return fmt.Errorf("testbed: %s (line %d): missing kind (set it on the node, or in topology.defaults)", where, line)
	}
	return fmt.Errorf("testbed: %s (line %d): kind %q is not supported by roamlab (supported: linux, bridge)", where, line, kind)
}

// buildNode merges node > kinds[kind] > defaults, as containerlab does: scalars
// and lists come from the most specific level that sets them, env and labels
// are merged key by key, binds are merged by target path.
func buildNode(name, where string, line int, d nodeDef, kinds map[string]nodeDef, defaults nodeDef, dir string) (*Node, error) {
	kind := firstNonEmpty(d.Kind, defaults.Kind)
	if err := checkKind(kind, where, line); err != nil {
		return nil, err
	}
	k := kinds[kind]
	levels := []nodeDef{d, k, defaults} // most specific first
	n := &Node{Name: name, Kind: kind, Env: map[string]string{}, Labels: map[string]string{}}
	for i := len(levels) - 1; i >= 0; i-- {
		l := levels[i]
		if l.Image != "" {
			n.Image = l.Image
		}
		if l.Exec != nil {
			n.Exec = l.Exec
		}
		if l.Cmd != "" {
			n.Cmd = l.Cmd
		}
		for key, v := range l.Env {
			n.Env[key] = v
		}
		for key, v := range l.Labels {
			n.Labels[key] = v
		}
	}
	seen := map[string]bool{}
	for _, l := range levels {
		for _, b := range l.Binds {
			bind, err := parseBind(b, dir)
			if err != nil {
				return nil, fmt.Errorf("testbed: %s.binds: %w", where, err)
			}
			if !seen[bind.Target] {
				seen[bind.Target] = true
				n.Binds = append(n.Binds, bind)
			}
		}
	}
	sort.Slice(n.Binds, func(i, j int) bool { return n.Binds[i].Target < n.Binds[j].Target })
	for key := range n.Env {
		if key == "" || strings.ContainsAny(key, "=\x00") {
			return nil, fmt.Errorf("testbed: %s.env: %q is not a valid variable name", where, key)
		}
	}
	if kind == KindBridge {
		if !ifaceRe.MatchString(name) {
			return nil, fmt.Errorf("testbed: %s: bridge name %q must be a valid interface name (at most 15 characters)", where, name)
		}
		if len(d.Exec) > 0 || d.Cmd != "" || len(d.Binds) > 0 {
			return nil, fmt.Errorf("testbed: %s: exec, cmd and binds are not supported on kind bridge", where)
		}
		if len(k.Exec) > 0 || k.Cmd != "" || len(k.Binds) > 0 {
			return nil, fmt.Errorf("testbed: topology.kinds.bridge: exec, cmd and binds are not supported on kind bridge")
		}
		n.Exec, n.Cmd, n.Binds = nil, "", nil
	}
	return n, nil
}

// parseBind parses containerlab's "host:target[:ro|:rw]".
func parseBind(s, dir string) (Bind, error) {
	parts := strings.Split(s, ":")
	var b Bind
	switch len(parts) {
	case 2:
	case 3:
		switch parts[2] {
		case "ro":
			b.ReadOnly = true
		case "rw":
		default:
			return b, fmt.Errorf("%q: mode %q is not supported (ro or rw)", s, parts[2])
		}
	default:
		return b, fmt.Errorf("%q: want host-path:node-path[:ro]", s)
	}
	b.Host, b.Target = parts[0], parts[1]
	if b.Host == "" || b.Target == "" {
		return b, fmt.Errorf("%q: want host-path:node-path[:ro]", s)
	}
	if !filepath.IsAbs(b.Host) {
		b.Host = filepath.Join(dir, b.Host)
	}
	if !filepath.IsAbs(b.Target) {
		return b, fmt.Errorf("%q: node path %q must be absolute", s, b.Target)
	}
	b.Host, b.Target = filepath.Clean(b.Host), filepath.Clean(b.Target)
	if b.Target == "/" {
		return b, fmt.Errorf("%q: cannot bind over the node's /", s)
	}
	return b, nil
}

func (t *Topology) parseLinks(links *yaml.Node) error {
	if links.Kind != yaml.SequenceNode {
		return fmt.Errorf("testbed: topology.links (line %d): must be a list", links.Line)
	}
	used := map[Endpoint]int{} // endpoint -> line that used it
	for i, ln := range links.Content {
		where := fmt.Sprintf("topology.links[%d]", i)
		if err := checkFields(ln, where, linkFields); err != nil {
			return err
		}
		var raw struct {
			Endpoints []string `yaml:"endpoints"`
			MTU       int      `yaml:"mtu"`
		}
		if err := ln.Decode(&raw); err != nil {
			return fmt.Errorf("testbed: %s: %w", where, cleanYAMLError(err))
		}
		if len(raw.Endpoints) != 2 {
			return fmt.Errorf("testbed: %s (line %d): endpoints: want exactly 2 of \"node:interface\", got %d", where, ln.Line, len(raw.Endpoints))
		}
		if raw.MTU != 0 && (raw.MTU < 68 || raw.MTU > 65535) {
			return fmt.Errorf("testbed: %s (line %d): mtu %d out of range 68..65535", where, ln.Line, raw.MTU)
		}
		var eps [2]Endpoint
		for j, s := range raw.Endpoints {
			e, err := t.parseEndpoint(s)
			if err != nil {
				return fmt.Errorf("testbed: %s (line %d): %w", where, ln.Line, err)
			}
			if prev, ok := used[e]; ok {
				return fmt.Errorf("testbed: %s (line %d): interface %s is already used by the link at line %d", where, ln.Line, e, prev)
			}
			used[e] = ln.Line
			eps[j] = e
		}
		t.Links = append(t.Links, Link{A: eps[0], B: eps[1], MTU: raw.MTU})
	}
	return nil
}

func (t *Topology) parseEndpoint(s string) (Endpoint, error) {
	node, iface, ok := strings.Cut(s, ":")
	if !ok || node == "" || iface == "" {
		return Endpoint{}, fmt.Errorf("endpoint %q: want \"node:interface\"", s)
	}
	n := t.Node(node)
	if n == nil {
		return Endpoint{}, fmt.Errorf("endpoint %q: unknown node %q", s, node)
	}
	if !ifaceRe.MatchString(iface) {
		return Endpoint{}, fmt.Errorf("endpoint %q: %q is not a valid interface name (at most 15 of letters, digits, '-', '_', '.')", s, iface)
	}
	switch {
	case iface == "lo":
		return Endpoint{}, fmt.Errorf("endpoint %q: lo is the node's loopback", s)
	case n.Kind == KindLinux && iface == "eth0":
		return Endpoint{}, fmt.Errorf("endpoint %q: eth0 is containerlab's management interface; use eth1 and up", s)
	case n.Kind == KindBridge && iface == n.Name:
		return Endpoint{}, fmt.Errorf("endpoint %q: the port cannot have the bridge's own name", s)
	}
	return Endpoint{Node: node, Iface: iface}, nil
}

// checkFields rejects any key of mapping n that is not in allowed.
func checkFields(n *yaml.Node, where string, allowed []string) error {
	if n.Kind != yaml.MappingNode {
		if where == "" {
			return fmt.Errorf("testbed: line %d: the topology must be a mapping", n.Line)
		}
		return fmt.Errorf("testbed: %s (line %d): must be a mapping", where, n.Line)
	}
	for i := 0; i < len(n.Content); i += 2 {
		k := n.Content[i]
		ok := false
		for _, a := range allowed {
			ok = ok || k.Value == a
		}
		if !ok {
			name := k.Value
			if where != "" {
				name = where + "." + k.Value
			}
			return fmt.Errorf("testbed: %s (line %d): field not supported by roamlab (supported here: %s)", name, k.Line, strings.Join(allowed, ", "))
		}
	}
	return nil
}

func field(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func decodeField(n *yaml.Node, key, where string, out any) error {
	v := field(n, key)
	if v == nil {
		return nil
	}
	if err := v.Decode(out); err != nil {
		return fmt.Errorf("testbed: %s: %w", where, cleanYAMLError(err))
	}
	return nil
}

// cleanYAMLError drops yaml.v3's "yaml: unmarshal errors:" preamble.
func cleanYAMLError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return errors.New(strings.Join(te.Errors, "; "))
	}
	return err
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
