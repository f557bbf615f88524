package testbed

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Deployed returns the topologies of the labs deployed under root, read back
// from their state, sorted by name.
func Deployed(root string) ([]*Topology, error) {
	if root == "" {
		root = DefaultRoot
	}
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	var out []*Topology
	for _, e := range entries {
		file := filepath.Join(root, e.Name(), "topology.clab.yml")
		data, err := os.ReadFile(file)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("testbed: %w", err)
		}
		src := file
		if first, _, ok := bytes.Cut(data, []byte("\n")); ok {
			if p, ok := strings.CutPrefix(string(first), "# roamlab-source: "); ok {
				src = p
			}
		}
		t, err := ParseTopology(data, filepath.Dir(src))
		if err != nil {
			return nil, fmt.Errorf("testbed: state of lab %s: %w", e.Name(), err)
		}
		t.File = src
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// FindNode picks the lab and node a command is about. With a topology file,
// node is a node of that lab, by short name or namespace name. Without one,
// node is either the namespace name clab-<lab>-<node> of a deployed lab's node
// or, when exactly one lab is deployed, a short node name of that lab.
func FindNode(root, file, node string) (*Topology, string, error) {
	if node == "" {
		return nil, "", errors.New("testbed: no node given")
	}
	if file != "" {
		t, err := LoadTopology(file)
		if err != nil {
			return nil, "", err
		}
		// A deployed lab is what its deploy made, even if the file changed since.
		if labs, err := Deployed(root); err == nil {
			for _, d := range labs {
				if d.Name == t.Name {
					t = d
				}
			}
		}
		name, err := nodeOf(t, node)
		return t, name, err
	}
	labs, err := Deployed(root)
	if err != nil {
		return nil, "", err
	}
	for _, t := range labs {
		if short, ok := strings.CutPrefix(node, "clab-"+t.Name+"-"); ok && t.Node(short) != nil {
			return t, short, nil
		}
	}
	switch len(labs) {
	case 0:
		return nil, "", fmt.Errorf("testbed: node %q: no lab is deployed", node)
	case 1:
		name, err := nodeOf(labs[0], node)
		return labs[0], name, err
	}
	var names []string
	for _, t := range labs {
		names = append(names, t.Name)
	}
	return nil, "", fmt.Errorf("testbed: node %q: %d labs are deployed (%s): give the topology file or the full name clab-<lab>-<node>", node, len(labs), strings.Join(names, ", "))
}

func nodeOf(t *Topology, node string) (string, error) {
	node = strings.TrimPrefix(node, "clab-"+t.Name+"-")
	if t.Node(node) == nil {
		var names []string
		for _, n := range t.Nodes {
			names = append(names, n.Name)
		}
		return "", fmt.Errorf("testbed: lab %s has no node %q (nodes: %s)", t.Name, node, strings.Join(names, ", "))
	}
	return node, nil
}
