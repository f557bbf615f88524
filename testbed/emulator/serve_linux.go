package emulator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// Serve is the body of `roamlab emulate --config FILE`: it runs inside the
// node's network namespace, redirects the egress of the interface named in
// the config through itself and impairs it, reloads the config on SIGHUP and
// publishes its status next to the config. When ctx is cancelled it removes
// the filter, the clsact qdisc and the TAP and returns nil.
func Serve(ctx context.Context, configPath string, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// SIGHUP must be caught before the first status says we are ready:
	// its default action would kill us.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	cfg, err := readConfig(configPath)
	if err != nil {
		return err
	}
	if cfg.Backend != backendUserspace {
		return fmt.Errorf("emulator: %s: backend is %s, nothing to serve", configPath, cfg.Backend)
	}
	log = log.With("component", "emulator", "interface", cfg.Interface)
	dp, err := openDatapath(cfg.Interface)
	if err != nil {
		return err
	}
	log.Info("emulating", "impairment", cfg.Impairment.String(), "tap", dp.tapName, "generation", cfg.Generation)

	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	sched := newScheduler(cfg.Impairment, cfg.Generation, rng, dp.tx.send, log)
	sched.fine, sched.sleep = fineWait, newSleeper().sleep
	statusPath := filesOfConfig(configPath).status

	inner, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	frames := make(chan frame, 256)
	settings := make(chan setting)
	kick := make(chan struct{}, 1)
	kick <- struct{}{} // publish at once: Apply waits for it
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := readFrames(inner, dp.tap, frames); err != nil {
			cancel(fmt.Errorf("emulator: read %s: %w", dp.tapName, err))
		}
	})
	wg.Go(func() { sched.run(inner, frames, settings) })
	wg.Go(func() { publish(inner, statusPath, dp.tapName, sched.stats, kick, log) })

	for inner.Err() == nil {
		select {
		case <-hup:
			if err := reload(inner, configPath, cfg.Interface, settings, log); err != nil {
				log.Error("reload failed, keeping the impairment in force", "err", err)
				continue
			}
			select {
			case kick <- struct{}{}:
			default:
			}
		case <-inner.Done():
		}
	}

	err = dp.unhook()
	wg.Wait()
	err = errors.Join(err, dp.close())
	if rmErr := os.Remove(statusPath); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
		err = errors.Join(err, rmErr)
	}
	log.Info("stopped", "sent", sched.stats.sent.Load(), "lost", sched.stats.lost.Load(),
		"queue_drops", sched.stats.queueDrops.Load(), "corrupted", sched.stats.corrupted.Load())
	if ctx.Err() == nil { // stopped by a failure, not by our caller
		err = errors.Join(context.Cause(inner), err)
	}
	return err
}

// reload reads the config again and hands its impairment to the scheduler,
// returning once it is in force.
func reload(ctx context.Context, configPath, iface string, settings chan<- setting, log *slog.Logger) error {
	cfg, err := readConfig(configPath)
	if err != nil {
		return err
	}
	if cfg.Interface != iface {
		return fmt.Errorf("emulator: config names interface %s, this emulator serves %s", cfg.Interface, iface)
	}
	st := setting{imp: cfg.Impairment, generation: cfg.Generation, done: make(chan struct{})}
	select {
	case settings <- st:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-st.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	log.Debug("reloaded", "generation", cfg.Generation)
	return nil
}

// readFrames passes every frame read from tap to out, stamped with the time
// it was read. It returns nil once ctx is cancelled.
func readFrames(ctx context.Context, tap io.Reader, out chan<- frame) error {
	buf := make([]byte, 1<<16)
	for {
		n, err := tap.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		f := frame{data: bytes.Clone(buf[:n]), arrived: time.Now()}
		select {
		case out <- f:
		case <-ctx.Done():
			return nil
		}
	}
}

// publish writes the status file at once, every statusInterval and on kick.
func publish(ctx context.Context, path, tap string, c *counters, kick <-chan struct{}, log *slog.Logger) {
	tick := time.NewTicker(statusInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-kick:
		case <-ctx.Done():
			return
		}
		s := status{
			PID:        os.Getpid(),
			TAP:        tap,
			Generation: c.generation.Load(),
			Sent:       c.sent.Load(),
			Lost:       c.lost.Load(),
			QueueDrops: c.queueDrops.Load() + tapDrops(tap),
			Corrupted:  c.corrupted.Load(),
			SendErrors: c.sendErrors.Load(),
			Updated:    time.Now(),
		}
		if err := writeStatus(path, s); err != nil {
			log.Warn("publish status", "err", err)
		}
	}
}
