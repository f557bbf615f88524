package emulator

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"testing"
)

// TestMain lets the test binary be the emulator program: Apply starts it as
// `<test binary> emulate --config FILE`, which runs emulateMain, the same
// thing `roamlab emulate` does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "emulate" {
		os.Exit(emulateMain(os.Args[2:]))
	}
	os.Exit(m.Run())
}

func emulateMain(args []string) int {
	fs := flag.NewFlagSet("emulate", flag.ContinueOnError)
	configPath := fs.String("config", "", "emulator config file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := Serve(ctx, *configPath, log); err != nil {
		log.Error("emulate failed", "err", err)
		return 1
	}
	return 0
}
