package emulator

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pingSummary is what iputils ping prints at the end.
type pingSummary struct {
	sent, received int
	avg            time.Duration // mean RTT of the replies
}

var (
	pingCounts = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)
	pingRTT    = regexp.MustCompile(`rtt min/avg/max/mdev = [\d.]+/([\d.]+)/`)
	pingReply  = regexp.MustCompile(`icmp_seq=(\d+) .*time=([\d.]+) ms`)
)

// ping runs iputils ping from n to addr with args and parses its summary.
func ping(t testing.TB, n node, addr string, args ...string) pingSummary {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	// Exit status 1 means some probe got no reply: that is a result.
	out, err := exec.CommandContext(ctx, "ip", append(append([]string{"netns", "exec", n.name, "ping", "-n", "-q"}, args...), addr)...).CombinedOutput()
	if ee := (*exec.ExitError)(nil); err != nil && (!errors.As(err, &ee) || ee.ExitCode() != 1) {
		t.Fatalf("ping: %v\n%s", err, out)
	}
	m := pingCounts.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no ping summary in:\n%s", out)
	}
	var s pingSummary
	s.sent, _ = strconv.Atoi(string(m[1]))
	s.received, _ = strconv.Atoi(string(m[2]))
	if m := pingRTT.FindSubmatch(out); m != nil {
		s.avg = parseMs(string(m[1]))
	}
	return s
}

func parseMs(s string) time.Duration {
	f, _ := strconv.ParseFloat(s, 64)
	return time.Duration(f * float64(time.Millisecond))
}

// reply is one echo reply of a ping stream.
type reply struct {
	seq int
	rtt time.Duration
}

// pingStream runs ping from n to addr with args and calls each for every
// reply as it arrives, in the caller's goroutine. It returns every reply.
func pingStream(t testing.TB, n node, addr string, each func(reply), args ...string) []reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append(append([]string{"netns", "exec", n.name, "ping", "-n"}, args...), addr)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var replies []reply
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		m := pingReply.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		seq, _ := strconv.Atoi(m[1])
		r := reply{seq: seq, rtt: parseMs(m[2])}
		replies = append(replies, r)
		each(r)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ping: %v", err)
	}
	return replies
}

// udpRun is the outcome of sending UDP datagrams from one node to another.
type udpRun struct {
	sent     int
	elapsed  time.Duration   // sending time
	oneWay   []time.Duration // delay of each datagram received
	received int
}

func (r udpRun) lossPercent() float64 {
	return 100 * float64(r.sent-r.received) / float64(r.sent)
}

func (r udpRun) mean() time.Duration {
	var sum time.Duration
	for _, d := range r.oneWay {
		sum += d
	}
	return sum / time.Duration(max(len(r.oneWay), 1))
}

// percentile p (0..100) of the one-way delays.
func (r udpRun) percentile(p int) time.Duration {
	if len(r.oneWay) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(r.oneWay))
	return s[min(len(s)-1, len(s)*p/100)]
}

func (r udpRun) String() string {
	return fmt.Sprintf("%d sent in %v (%.0f/s), %d received, one-way mean %v p50 %v p99 %v",
		r.sent, r.elapsed.Round(time.Millisecond), float64(r.sent)/r.elapsed.Seconds(), r.received,
		r.mean().Round(time.Microsecond), r.percentile(50).Round(time.Microsecond), r.percentile(99).Round(time.Microsecond))
}

// sendUDP sends n datagrams from node from to node to at pps per second and
// measures each one's one-way delay: both sockets live in this process, so
// sender and receiver share one monotonic clock. Bounded by n and by time.
func sendUDP(t testing.TB, from, to node, n, pps int) udpRun {
	t.Helper()
	var rx, tx *net.UDPConn
	if err := inNetns(to, func() (err error) {
		rx, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(to.addr)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	if err := rx.SetReadBuffer(8 << 20); err != nil {
		t.Fatal(err)
	}
	if err := inNetns(from, func() (err error) {
		tx, err = net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer tx.Close()

	base := time.Now()
	result := make(chan udpRun, 1)
	go func() {
		var r udpRun
		buf := make([]byte, 64)
		for r.received < n {
			k, err := rx.Read(buf)
			if err != nil {
				break // deadline: the rest is lost
			}
			if k == 16 {
				r.oneWay = append(r.oneWay, time.Since(base)-time.Duration(binary.BigEndian.Uint64(buf[8:])))
				r.received++
			}
		}
		result <- r
	}()

	interval := time.Second / time.Duration(pps)
	limit := 2*time.Duration(n)*interval + time.Second
	msg := make([]byte, 16)
	sent := 0
	for sent < n && time.Since(base) < limit {
		for due := int(time.Since(base) / interval); sent < n && sent <= due; sent++ {
			binary.BigEndian.PutUint64(msg, uint64(sent))
			binary.BigEndian.PutUint64(msg[8:], uint64(time.Since(base)))
			if _, err := tx.Write(msg); err != nil && !errors.Is(err, net.ErrClosed) {
				t.Fatalf("send: %v", err)
			}
		}
		time.Sleep(interval)
	}
	elapsed := time.Since(base)
	rx.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	r := <-result
	r.sent, r.elapsed = sent, elapsed
	return r
}

// within reports whether got is want ± tol.
func within(got, want, tol time.Duration) bool { return (got - want).Abs() <= tol }

func joinReplies(rs []reply) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "%d:%v ", r.seq, r.rtt)
	}
	return b.String()
}
