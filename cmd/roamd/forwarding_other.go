//go:build !linux

package main

import "errors"

func enableForwarding(dev string) error { return errors.New("enable forwarding: only on Linux") }
