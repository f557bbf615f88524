package main

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
)

func TestHumanBytes(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{10188, "9.9 KiB"},
		{10189, "10 KiB"},
		{1023 << 10, "1023 KiB"},
		{10240, "10 KiB"},
		{1<<20 - 1, "1.0 MiB"},
		{5 << 20, "5.0 MiB"},
		{123 << 30, "123 GiB"},
		{1 << 40, "1.0 TiB"},
		{1 << 62, "4096 PiB"},
		{-5, "-5 B"},
	} {
		if got := humanBytes(tc.n); got != tc.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"},
		{0, "0s"},
		{999 * time.Millisecond, "0s"},
		{12 * time.Second, "12s"},
		{time.Minute, "1m0s"},
		{3*time.Minute + 4*time.Second, "3m4s"},
		{2*time.Hour + 5*time.Minute + 59*time.Second, "2h5m"},
		{3*24*time.Hour + 4*time.Hour + 59*time.Minute, "3d4h"},
	} {
		if got := humanDuration(tc.d); got != tc.want {
			t.Errorf("humanDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestShortKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"short", "short"},
		{"123456789", "123456789"},
		{"YDRwZ0pdIj9YhlxIQ4e7vJO6e8AJ8Ac3V2PbEGIjvE0=", "YDRwZ0pd…"},
	} {
		if got := shortKey(tc.in); got != tc.want {
			t.Errorf("shortKey(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMilliseconds(t *testing.T) {
	for _, tc := range []struct {
		d    *durationpb.Duration
		want string
	}{
		{nil, "-"},
		{durationpb.New(0), "0.0ms"},
		{durationpb.New(49 * time.Microsecond), "0.0ms"},
		{durationpb.New(50 * time.Microsecond), "0.1ms"},
		{durationpb.New(12345 * time.Microsecond), "12.3ms"},
		{durationpb.New(1500 * time.Millisecond), "1500.0ms"},
	} {
		if got := milliseconds(tc.d); got != tc.want {
			t.Errorf("milliseconds(%v) = %q, want %q", tc.d.AsDuration(), got, tc.want)
		}
	}
}

func TestPercent(t *testing.T) {
	for _, tc := range []struct {
		f    float64
		want string
	}{
		{0, "0.0%"},
		{0.0004, "0.0%"},
		{0.015, "1.5%"},
		{0.2, "20.0%"},
		{1, "100.0%"},
	} {
		if got := percent(tc.f); got != tc.want {
			t.Errorf("percent(%v) = %q, want %q", tc.f, got, tc.want)
		}
	}
}
