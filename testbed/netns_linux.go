package testbed

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Named network namespaces are made and removed with iproute2, which keeps
// /run/netns a shared mount so that removals propagate to every mount namespace.

func createNetns(name string) error {
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Errorf("testbed: create network namespace %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func deleteNetns(name string) error {
	if !netnsExists(name) {
		return nil
	}
	if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
		return fmt.Errorf("testbed: delete network namespace %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func netnsExists(name string) bool {
	_, err := os.Stat(filepath.Join(netnsDir, name))
	return err == nil
}

// nsHandle opens a netlink handle inside the named network namespace, without
// moving the calling thread into it.
func nsHandle(name string) (*netlink.Handle, error) {
	ns, err := netns.GetFromPath(filepath.Join(netnsDir, name))
	if err != nil {
		return nil, fmt.Errorf("testbed: open network namespace %s: %w", name, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("testbed: netlink in %s: %w", name, err)
	}
	return h, nil
}
