package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// loadOrCreateKey returns the private key in path. A missing file is created
// with a new key, mode 0600; a file that group or others can read is refused,
// as wg(8) warns about it: the key is the node's identity.
func loadOrCreateKey(path string) (key wgtypes.Key, created bool, err error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		key, err = createKey(path)
		return key, err == nil, err
	}
	if err != nil {
		return key, false, fmt.Errorf("key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return key, false, fmt.Errorf("key: %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return key, false, fmt.Errorf("key: %s is readable by others (mode %04o); run: chmod 600 %s", path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return key, false, fmt.Errorf("key: %w", err)
	}
	key, err = wgtypes.ParseKey(strings.TrimSpace(string(data)))
	if err != nil {
		return key, false, fmt.Errorf("key: %s does not hold a WireGuard private key (44 characters of base64)", path)
	}
	return key, false, nil
}

// createKey writes a new private key atomically: a partly written key file
// would change the node's identity on the next start.
func createKey(path string) (wgtypes.Key, error) {
	key, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		return key, fmt.Errorf("key: generate: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return key, fmt.Errorf("key: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".private.key-*") // mode 0600
	if err != nil {
		return key, fmt.Errorf("key: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(key.String() + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// Link, not rename: never replace a key that another start just made.
		err = os.Link(tmp.Name(), path)
	}
	if err != nil {
		return key, fmt.Errorf("key: write %s: %w", path, err)
	}
	return key, nil
}
