package tunnel

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/pion/stun"
)

func stunMsg(t testing.TB, setters ...stun.Setter) []byte {
	t.Helper()
	m, err := stun.Build(append([]stun.Setter{stun.TransactionID}, setters...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

func TestSTUNAnswer(t *testing.T) {
	from := netip.MustParseAddrPort("203.0.113.11:40123")
	tests := []struct {
		name   string
		pkt    []byte
		from   netip.AddrPort
		answer bool
	}{
		{"binding request", stunMsg(t, stun.BindingRequest), from, true},
		{"binding request with fingerprint", stunMsg(t, stun.BindingRequest, stun.Fingerprint), from, true},
		{"ipv6 sender", stunMsg(t, stun.BindingRequest), netip.MustParseAddrPort("[2001:db8::1]:51820"), true},
		{"ipv4-mapped sender", stunMsg(t, stun.BindingRequest), netip.MustParseAddrPort("[::ffff:203.0.113.11]:40123"), true},
		{"ice check (username)", stunMsg(t, stun.BindingRequest, stun.NewUsername("abcd:efgh")), from, false},
		{"binding success", stunMsg(t, stun.BindingSuccess), from, false},
		{"binding indication", stunMsg(t, stun.NewType(stun.MethodBinding, stun.ClassIndication)), from, false},
		{"allocate request", stunMsg(t, stun.NewType(stun.MethodAllocate, stun.ClassRequest)), from, false},
		{"truncated", stunMsg(t, stun.BindingRequest)[:12], from, false},
		{"wireguard keepalive", append([]byte{4, 0, 0, 0}, make([]byte, 28)...), from, false},
		{"no sender", stunMsg(t, stun.BindingRequest), netip.AddrPort{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, ok := stunAnswer(tt.pkt, tt.from)
			if ok != tt.answer {
				t.Fatalf("answered %v, want %v", ok, tt.answer)
			}
			if !ok {
				return
			}
			checkAnswer(t, tt.pkt, resp, tt.from)
		})
	}
}

// checkAnswer checks that resp is the Binding success for req with the
// mapped address from.
func checkAnswer(t testing.TB, req, resp []byte, from netip.AddrPort) {
	t.Helper()
	var q, m stun.Message
	q.Raw, m.Raw = req, resp
	if err := q.Decode(); err != nil {
		t.Fatal(err)
	}
	if err := m.Decode(); err != nil {
		t.Fatalf("answer does not decode: %v", err)
	}
	if m.Type != stun.BindingSuccess || m.TransactionID != q.TransactionID {
		t.Fatalf("answer is %s with transaction %x, want binding success for %x", m.Type, m.TransactionID, q.TransactionID)
	}
	if err := stun.Fingerprint.Check(&m); err != nil {
		t.Errorf("fingerprint: %v", err)
	}
	var xa stun.XORMappedAddress
	if err := xa.GetFrom(&m); err != nil {
		t.Fatalf("no XOR-MAPPED-ADDRESS: %v", err)
	}
	got, _ := netip.AddrFromSlice(xa.IP)
	want := netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	if netip.AddrPortFrom(got.Unmap(), uint16(xa.Port)) != want {
		t.Errorf("mapped address %s:%d, want %s", got, xa.Port, want)
	}
}

// FuzzSTUNAnswer: no input panics; whatever is answered is a Binding
// request, and the answer decodes to the sender's address.
func FuzzSTUNAnswer(f *testing.F) {
	f.Add(stunMsg(f, stun.BindingRequest), []byte{203, 0, 113, 11}, uint16(40123))
	f.Add(stunMsg(f, stun.BindingRequest, stun.NewUsername("a:b")), []byte{192, 0, 2, 1}, uint16(1))
	f.Add([]byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42}, []byte{1, 2, 3, 4}, uint16(9))
	f.Fuzz(func(t *testing.T, pkt, ip []byte, port uint16) {
		a, ok := netip.AddrFromSlice(ip)
		if !ok || port == 0 {
			return
		}
		from := netip.AddrPortFrom(a, port)
		resp, answered := stunAnswer(pkt, from)
		if !answered {
			return
		}
		if !isSTUN(pkt) {
			t.Fatalf("answered a datagram the Bind would not classify as STUN: %x", pkt)
		}
		checkAnswer(t, pkt, resp, from)
	})
}

// TestSTUNConnServe: a hub's STUNConn answers a plain Binding request on
// WireGuard's own port with the address the client sent from, and passes
// other STUN messages to its reader.
func TestSTUNConnServe(t *testing.T) {
	checkGoroutines(t)
	h := openHarness(t)
	c := NewSTUNConn(h.b, true)
	defer c.Close()
	cl := client(t)
	req := stunMsg(t, stun.BindingRequest)
	if _, err := cl.WriteToUDPAddrPort(req, h.addr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	_ = cl.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := cl.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("no answer from the hub's port: %v", err)
	}
	checkAnswer(t, req, buf[:n], cl.LocalAddr().(*net.UDPAddr).AddrPort())
	// The counter moves after the send returns, which may be after the
	// client read the answer.
	for deadline := time.Now().Add(time.Second); c.Served() != 1 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if c.Served() != 1 {
		t.Errorf("served %d, want 1", c.Served())
	}

	// An ICE check is not answered by the server: it reaches the reader.
	check := stunMsg(t, stun.BindingRequest, stun.NewUsername("ufrag:other"))
	if _, err := cl.WriteToUDPAddrPort(check, h.addr()); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatalf("ReadFrom: %v", err)
	}
	if string(buf[:n]) != string(check) || from.(*net.UDPAddr).AddrPort() != cl.LocalAddr().(*net.UDPAddr).AddrPort() {
		t.Errorf("read %d bytes from %v, want the check from %v", n, from, cl.LocalAddr())
	}
}

// TestSTUNConnReadWrite: WriteTo sends from WireGuard's port; ReadFrom
// honours deadlines, and returns io.EOF after Close, which also hands the
// Bind's STUN messages back (dropped).
func TestSTUNConnReadWrite(t *testing.T) {
	checkGoroutines(t)
	h := openHarness(t)
	c := NewSTUNConn(h.b, false)
	cl := client(t)
	msg := stunMsg(t, stun.BindingRequest)
	if _, err := c.WriteTo(msg, cl.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	_ = cl.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, src, err := cl.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != string(msg) || src.Port() != h.port {
		t.Fatalf("client got %d bytes from %v (%v), want the message from port %d", n, src, err, h.port)
	}
	if _, err := c.WriteTo(msg, &net.TCPAddr{}); err == nil {
		t.Error("WriteTo a TCP address: no error")
	}
	if got := c.LocalAddr().(*net.UDPAddr).Port; got != int(h.port) {
		t.Errorf("LocalAddr port %d, want %d", got, h.port)
	}

	_ = c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if _, _, err := c.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("ReadFrom past the deadline: %v, want a timeout", err)
	}
	// A deadline moved while a reader waits takes effect at once.
	res := make(chan error, 1)
	_ = c.SetReadDeadline(time.Time{})
	go func() { _, _, err := c.ReadFrom(buf); res <- err }()
	time.Sleep(20 * time.Millisecond)
	_ = c.SetReadDeadline(time.Now())
	if err := <-res; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("ReadFrom after the deadline moved: %v, want a timeout", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	go func() { _, _, err := c.ReadFrom(buf); res <- err }()
	c.Close()
	if err := <-res; !errors.Is(err, io.EOF) {
		t.Errorf("ReadFrom after Close: %v, want io.EOF", err)
	}
	if _, err := c.WriteTo(msg, cl.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteTo after Close: %v, want net.ErrClosed", err)
	}
}
