package testbed

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// A lab owns exactly the namespaces its deploy created. Deploy records each
// one, with the inode that identifies it, in nodes.json as soon as it exists;
// destroy, exec, cut and netem act only on namespaces recorded there whose
// inode still matches. A namespace that merely has a lab-like name (another
// lab's node "a-b" is clab-x-a-b for lab "x" and node "a-b", and for lab "x-a"
// and node "b"; containerlab itself names its containers' namespaces so) is
// never touched.

// ownedNode is one node's entry in nodes.json.
type ownedNode struct {
	Node  string `json:"node"`
	Kind  string `json:"kind"`
	Netns string `json:"netns"`
	Inode uint64 `json:"inode"`
}

func (l *Lab) ownedFile() string { return filepath.Join(l.Dir(), "nodes.json") }

func (l *Lab) readOwned() ([]ownedNode, error) {
	data, err := os.ReadFile(l.ownedFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	var nodes []ownedNode
	if err := json.Unmarshal(data, &nodes); err != nil {
		return nil, fmt.Errorf("testbed: %s: %w", l.ownedFile(), err)
	}
	return nodes, nil
}

// recordOwned adds a node whose namespace deploy just created.
func (l *Lab) recordOwned(n *Node) error {
	nodes, err := l.readOwned()
	if err != nil {
		return err
	}
	name := NetnsName(l.Topo.Name, n.Name)
	ino, err := nsInode(filepath.Join(netnsDir, name))
	if err != nil {
		return err
	}
	nodes = append(nodes, ownedNode{Node: n.Name, Kind: n.Kind, Netns: name, Inode: ino})
	data, _ := json.MarshalIndent(nodes, "", "  ")
	tmp := l.ownedFile() + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	if err := os.Rename(tmp, l.ownedFile()); err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	return nil
}

// isOwned reports whether the namespace of entry o is still the one this
// lab created.
func isOwned(o ownedNode) bool {
	ino, err := nsInode(filepath.Join(netnsDir, o.Netns))
	return err == nil && ino == o.Inode
}

// checkOwned returns nil when node is deployed by this lab, and a clear
// error (wrapping ErrNotDeployed) otherwise.
func (l *Lab) checkOwned(node string) error {
	nodes, err := l.readOwned()
	if err != nil {
		return err
	}
	for _, o := range nodes {
		if o.Node == node {
			if isOwned(o) {
				return nil
			}
			return fmt.Errorf("testbed: node %s of lab %s: namespace %s is gone or was replaced: %w", node, l.Topo.Name, o.Netns, ErrNotDeployed)
		}
	}
	return fmt.Errorf("testbed: node %s of lab %s: %w", node, l.Topo.Name, ErrNotDeployed)
}

func nsInode(file string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(file, &st); err != nil {
		return 0, fmt.Errorf("testbed: %w", err)
	}
	return st.Ino, nil
}
