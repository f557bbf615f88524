package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/roamnet/roam/api"
	"github.com/roamnet/roam/bgp"
)

// servicesFile keeps the service prefixes added through the API, in
// data_dir, so a restart announces them again.
const servicesFile = "services.json"

// services are prefixes announced at run time (POST /v1/services), beside
// the configured bgp.prefixes.
type services struct {
	path       string
	speaker    *bgp.Speaker
	configured map[netip.Prefix]bool
	nextHop    func(netip.Prefix) netip.Addr // overlay address of the family; invalid if none

	mu   sync.Mutex
	list []netip.Prefix // sorted
}

func newServices(dataDir string, s *bgp.Speaker, configured []netip.Prefix, nextHop func(netip.Prefix) netip.Addr) *services {
	sv := &services{path: filepath.Join(dataDir, servicesFile), speaker: s, nextHop: nextHop, configured: map[netip.Prefix]bool{}}
	for _, p := range configured {
		sv.configured[p] = true
	}
	return sv
}

// load reads the saved services and announces them.
func (sv *services) load(ctx context.Context) error {
	b, err := os.ReadFile(sv.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("services: %w", err)
	}
	var saved []string
	if err := json.Unmarshal(b, &saved); err != nil {
		return fmt.Errorf("services: %s: %w", sv.path, err)
	}
	for _, s := range saved {
		p, err := netip.ParsePrefix(s)
		if err != nil || p != p.Masked() {
			return fmt.Errorf("services: %s: %q is not a prefix", sv.path, s)
		}
		if _, err := sv.Add(ctx, p); err != nil && !errors.Is(err, api.ErrConflict) {
			return err
		}
	}
	return nil
}

// Add announces p. Adding one that is announced already is not an error.
func (sv *services) Add(ctx context.Context, p netip.Prefix) (bool, error) {
	if sv.configured[p] {
		return false, fmt.Errorf("%s is in bgp.prefixes of the configuration already: %w", p, api.ErrConflict)
	}
	nh := sv.nextHop(p)
	if !nh.IsValid() {
		return false, fmt.Errorf("%s: this node has no overlay address of that family to announce it with: %w", p, api.ErrConflict)
	}
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if _, found := slices.BinarySearchFunc(sv.list, p, comparePrefix); found {
		return false, nil
	}
	if err := sv.speaker.Announce(ctx, p, nh); err != nil {
		return false, err
	}
	i, _ := slices.BinarySearchFunc(sv.list, p, comparePrefix)
	sv.list = slices.Insert(sv.list, i, p)
	return true, sv.saveLocked()
}

// Delete withdraws p; api.ErrNotFound if it is not a service.
func (sv *services) Delete(ctx context.Context, p netip.Prefix) error {
	if sv.configured[p] {
		return fmt.Errorf("%s is in bgp.prefixes of the configuration; remove it there: %w", p, api.ErrConflict)
	}
	sv.mu.Lock()
	defer sv.mu.Unlock()
	i, found := slices.BinarySearchFunc(sv.list, p, comparePrefix)
	if !found {
		return fmt.Errorf("%s is not a service prefix: %w", p, api.ErrNotFound)
	}
	if err := sv.speaker.Withdraw(ctx, p); err != nil && !errors.Is(err, bgp.ErrNotAnnounced) {
		return err
	}
	sv.list = slices.Delete(sv.list, i, i+1)
	return sv.saveLocked()
}

// List returns the service prefixes, sorted.
func (sv *services) List() []netip.Prefix {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	return slices.Clone(sv.list)
}

func (sv *services) saveLocked() error {
	out := make([]string, len(sv.list))
	for i, p := range sv.list {
		out[i] = p.String()
	}
	b, _ := json.Marshal(out)
	tmp := sv.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("services: save: %w", err)
	}
	if err := os.Rename(tmp, sv.path); err != nil {
		return fmt.Errorf("services: save: %w", err)
	}
	return nil
}
