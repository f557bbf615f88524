package emulator

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// maxDelay bounds Delay and Jitter; anything longer is a typo, not a link.
const maxDelay = time.Minute

// Impairment is what one interface's egress suffers. The zero value means none.
type Impairment struct {
	Delay    time.Duration // added one-way delay
	Jitter   time.Duration // random variation around Delay, uniform in [Delay-Jitter, Delay+Jitter)
	Loss     float64       // percent of frames dropped at random, 0..100
	RateKbps uint64        // serialisation rate in kbit/s (1000 bit/s), 0 = unlimited
	Corrupt  float64       // percent of frames with one bit flipped, 0..100
}

// IsZero reports whether i impairs nothing.
func (i Impairment) IsZero() bool { return i == Impairment{} }

// Validate rejects values the emulator cannot apply, naming the field and value.
func (i Impairment) Validate() error {
	if err := checkDuration("delay", i.Delay); err != nil {
		return err
	}
	if err := checkDuration("jitter", i.Jitter); err != nil {
		return err
	}
	if err := checkPercent("loss", i.Loss); err != nil {
		return err
	}
	return checkPercent("corrupt", i.Corrupt)
}

func checkDuration(field string, d time.Duration) error {
	if d < 0 || d > maxDelay {
		return fmt.Errorf("emulator: %s %v out of range 0..%v", field, d, maxDelay)
	}
	return nil
}

func checkPercent(field string, v float64) error {
	if math.IsNaN(v) || v < 0 || v > 100 {
		return fmt.Errorf("emulator: %s %s out of range 0..100", field, formatPercent(v))
	}
	return nil
}

// String lists the fields that are set, e.g.
// "delay 50ms jitter 5ms loss 10% rate 1000kbit corrupt 0.5%", or "none".
func (i Impairment) String() string {
	if i.IsZero() {
		return "none"
	}
	var parts []string
	if i.Delay != 0 {
		parts = append(parts, "delay "+i.Delay.String())
	}
	if i.Jitter != 0 {
		parts = append(parts, "jitter "+i.Jitter.String())
	}
	if i.Loss != 0 {
		parts = append(parts, "loss "+formatPercent(i.Loss)+"%")
	}
	if i.RateKbps != 0 {
		parts = append(parts, "rate "+strconv.FormatUint(i.RateKbps, 10)+"kbit")
	}
	if i.Corrupt != 0 {
		parts = append(parts, "corrupt "+formatPercent(i.Corrupt)+"%")
	}
	return strings.Join(parts, " ")
}

func formatPercent(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
