package testbed

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
)

// Command returns a command that runs argv inside a node: in its network
// namespace and, for linux nodes, its mount namespace, with the node's env.
func (l *Lab) Command(node string, argv ...string) (*exec.Cmd, error) {
	return l.CommandContext(context.Background(), node, argv...)
}

// CommandContext is Command, killed when ctx is done.
func (l *Lab) CommandContext(ctx context.Context, node string, argv ...string) (*exec.Cmd, error) {
	n := l.Topo.Node(node)
	if n == nil {
		return nil, fmt.Errorf("testbed: lab %s has no node %q (nodes: %s)", l.Topo.Name, node, strings.Join(l.nodeNames(), ", "))
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("testbed: no command to run in %s", node)
	}
	if err := l.checkOwned(node); err != nil {
		return nil, err
	}
	args := []string{"--net=" + l.NetnsPath(node)}
	if n.Kind == KindLinux {
		args = append(args, "--mount="+l.MountnsPath(node), "--wd="+nodeWorkDir())
	}
	args = append(append(args, "--"), argv...)
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	cmd.Env = os.Environ()
	keys := make([]string, 0, len(n.Env))
	for k := range n.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+n.Env[k])
	}
	return cmd, nil
}

// nodeWorkDir is the caller's working directory when a node sees it too (it
// is not below the node's private /run or /tmp), else /.
func nodeWorkDir() string {
	wd, err := os.Getwd()
	if err != nil {
		return "/"
	}
	for _, d := range privateDirs {
		if strings.HasPrefix(wd+"/", d) {
			return "/"
		}
	}
	return wd
}

func (l *Lab) nodeNames() []string {
	var names []string
	for _, n := range l.Topo.Nodes {
		names = append(names, n.Name)
	}
	return names
}
