package testbed

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
)

// DefaultRoot is where roamlab keeps the state of deployed labs.
const DefaultRoot = "/run/roamlab"

// netnsDir is where iproute2 keeps named network namespaces.
const netnsDir = "/run/netns"

// ErrNotDeployed is returned for operations on a lab that is not deployed.
var ErrNotDeployed = errors.New("not deployed")

// Lab is a topology bound to the place its state lives.
type Lab struct {
	Topo *Topology
	Root string       // state root; "" = DefaultRoot
	Exe  string       // the roamlab executable (runs nsinit and the emulator); "" = os.Executable
	Log  *slog.Logger // nil = discard
}

// NewLab validates the options and fills defaults. It starts nothing.
func NewLab(topo *Topology, root, exe string, log *slog.Logger) (*Lab, error) {
	if topo == nil {
		return nil, errors.New("testbed: no topology")
	}
	if root == "" {
		root = DefaultRoot
	}
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("testbed: find own executable: %w", err)
		}
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Lab{Topo: topo, Root: root, Exe: exe, Log: log.With("lab", topo.Name)}, nil
}

// NetnsName is the network namespace of a lab node, named as containerlab
// names the node's container.
func NetnsName(lab, node string) string { return "clab-" + lab + "-" + node }

// Dir is the lab's state directory.
func (l *Lab) Dir() string { return filepath.Join(l.Root, l.Topo.Name) }

// NodeDir is a node's state directory: its mount namespace, logs, emulator state.
func (l *Lab) NodeDir(node string) string { return filepath.Join(l.Dir(), node) }

// NetnsPath is the file that holds a node's network namespace.
func (l *Lab) NetnsPath(node string) string {
	return filepath.Join(netnsDir, NetnsName(l.Topo.Name, node))
}

// MountnsPath is the file that holds a linux node's mount namespace.
func (l *Lab) MountnsPath(node string) string { return filepath.Join(l.NodeDir(node), "mnt") }

// CmdLog is where a node's cmd writes its output.
func (l *Lab) CmdLog(node string) string { return filepath.Join(l.NodeDir(node), "cmd.log") }

func (l *Lab) stateFile() string { return filepath.Join(l.Dir(), "topology.clab.yml") }
