//go:build !linux

package main

import "errors"

func enableForwarding() error { return errors.New("enable forwarding: only on Linux") }
