package probe

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// startReflector runs a Reflector on 127.0.0.1 port 0 until the test ends,
// checking that Run returns nil and leaves no goroutine behind.
func startReflector(t *testing.T) *Reflector {
	t.Helper()
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
	r, err := NewReflector(ReflectorConfig{Addr: netip.MustParseAddrPort("127.0.0.1:0")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v after cancel, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	select {
	case <-r.Ready():
	case err := <-done:
		t.Fatalf("Run = %v before listening", err)
	}
	return r
}

// dial returns a plain UDP client of r.
func dial(t *testing.T, r *Reflector) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(r.LocalAddr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, c *net.UDPConn, b []byte) {
	t.Helper()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

// readReply reads the next reply on c and the time it came.
func readReply(t *testing.T, c *net.UDPConn) (ReflectorPacket, int, time.Time) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	t4 := time.Now()
	if err != nil {
		t.Fatalf("no reply: %v", err)
	}
	p, err := ParseReflectorPacket(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	return p, n, t4
}

// waitStats waits for r's counters to reach want: a reply can arrive before
// the reflector has counted it.
func waitStats(t *testing.T, r *Reflector, want ReflectorStats) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for r.Stats() != want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := r.Stats(); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

func TestReflectorAnswersEachProbe(t *testing.T) {
	r := startReflector(t)
	c := dial(t, r)
	ee := NewErrorEstimate(true, false, 2*time.Millisecond)
	for i := range 5 {
		t1 := time.Now()
		sp := SenderPacket{Seq: uint32(100 + i), Timestamp: NTPTimestamp(t1), ErrorEstimate: ee, SSID: 7}
		b, _ := sp.MarshalBinary()
		if i == 3 {
			b = append(b, 1, 0, 0, 4, 9, 9, 9, 9) // a TLV: ignored
		}
		send(t, c, b)
		p, n, t4 := readReply(t, c)
		if n != PacketLen {
			t.Errorf("reply %d is %d bytes, want %d", i, n, PacketLen)
		}
		if p.Seq != uint32(i) || p.SenderSeq != sp.Seq || p.SenderTimestamp != sp.Timestamp ||
			p.SenderErrorEstimate != ee || p.SSID != 7 || p.SenderTTL != 255 || p.ErrorEstimate.PTP() {
			t.Errorf("reply %d to %+v = %+v", i, sp, p)
		}
		t2, t3 := p.ErrorEstimate.Time(p.ReceiveTimestamp), p.ErrorEstimate.Time(p.Timestamp)
		if t2.Before(t1) || t3.Before(t2) || t4.Before(t3) {
			t.Errorf("reply %d: T1 %v T2 %v T3 %v T4 %v out of order", i, t1, t2, t3, t4)
		}
		if rtt := p.RTT(t4); rtt < 0 || rtt > t4.Sub(t1) {
			t.Errorf("reply %d: RTT %v outside 0..%v", i, rtt, t4.Sub(t1))
		}
	}
	// Another session (another source port) has its own counter.
	sp := SenderPacket{Seq: 1, Timestamp: NTPTimestamp(time.Now())}
	b, _ := sp.MarshalBinary()
	other := dial(t, r)
	send(t, other, b)
	if p, _, _ := readReply(t, other); p.Seq != 0 || p.SenderSeq != 1 {
		t.Errorf("first reply in a new session = %+v, want Seq 0", p)
	}
	waitStats(t, r, ReflectorStats{Received: 6, Reflected: 6})
}

func TestReflectorDropsMalformed(t *testing.T) {
	r := startReflector(t)
	c := dial(t, r)
	send(t, c, nil)
	send(t, c, []byte("not a STAMP packet"))
	send(t, c, make([]byte, PacketLen-1))
	sp := SenderPacket{Seq: 42, Timestamp: NTPTimestamp(time.Now())}
	b, _ := sp.MarshalBinary()
	send(t, c, b)
	// The first reply is the valid probe's: nothing answered the others.
	if p, _, _ := readReply(t, c); p.SenderSeq != 42 || p.Seq != 0 {
		t.Errorf("first reply = %+v, want the one to Seq 42", p)
	}
	waitStats(t, r, ReflectorStats{Received: 4, Reflected: 1, Malformed: 3})
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := c.Read(make([]byte, 100)); err == nil {
		t.Errorf("a second reply of %d bytes", n)
	}
}

func TestForeignSource(t *testing.T) {
	tests := []struct {
		from string
		want bool
	}{
		{"127.0.0.1:5000", false},
		{"[fd00::1]:862", false},
		{"[::ffff:10.0.0.1]:862", false},
		{"10.0.0.1:0", true},
		{"0.0.0.0:862", true},
		{"[::]:862", true},
		{"224.0.0.1:862", true},
		{"[ff02::1]:862", true},
		{"255.255.255.255:862", true},
		{"[::ffff:255.255.255.255]:862", true},
	}
	for _, tt := range tests {
		t.Run(tt.from, func(t *testing.T) {
			if got := foreignSource(netip.MustParseAddrPort(tt.from)); got != tt.want {
				t.Errorf("foreignSource(%s) = %v, want %v", tt.from, got, tt.want)
			}
		})
	}
}

func TestReflectorConfig(t *testing.T) {
	if _, err := NewReflector(ReflectorConfig{}, nil); err == nil || !strings.Contains(err.Error(), "probe: reflector Addr") {
		t.Errorf("NewReflector of no address: %v", err)
	}
	r := startReflector(t)
	if err := r.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("second Run = %v", err)
	}
	// Another reflector on the same port cannot listen and says why.
	r2, err := NewReflector(ReflectorConfig{Addr: r.LocalAddr()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "probe: reflector: listen on "+r.LocalAddr().String()) {
		t.Errorf("Run on a taken port = %v", err)
	}
}
