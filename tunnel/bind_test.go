package tunnel

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
)

type stunGot struct {
	pkt  []byte
	from netip.AddrPort
}

// bindHarness is an open Bind with WireGuard's side played by goroutines
// that run its receive functions and pass on what WireGuard would get.
type bindHarness struct {
	b    *Bind
	port uint16
	wg   chan []byte  // packets left for WireGuard
	stun chan stunGot // packets given to the STUN handler
}

func openHarness(t *testing.T) *bindHarness {
	t.Helper()
	b := NewBind(nil)
	fns, port, err := b.Open(0)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	h := &bindHarness{b: b, port: port, wg: make(chan []byte, 1000), stun: make(chan stunGot, 1000)}
	b.SetSTUNHandler(func(pkt []byte, from netip.AddrPort) { h.stun <- stunGot{pkt, from} })
	var running sync.WaitGroup
	for _, fn := range fns {
		running.Add(1)
		go func() {
			defer running.Done()
			n := b.BatchSize()
			bufs, sizes, eps := make([][]byte, n), make([]int, n), make([]conn.Endpoint, n)
			for i := range bufs {
				bufs[i] = make([]byte, 1<<16)
			}
			for {
				count, err := fn(bufs, sizes, eps)
				if err != nil {
					return
				}
				for i := range count {
					if sizes[i] > 0 {
						h.wg <- bytes.Clone(bufs[i][:sizes[i]])
					}
				}
			}
		}()
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		running.Wait()
	})
	return h
}

func (h *bindHarness) addr() netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), h.port)
}

func client(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, c *net.UDPConn, to netip.AddrPort, pkts ...[]byte) {
	t.Helper()
	for _, p := range pkts {
		if _, err := c.WriteToUDPAddrPort(p, to); err != nil {
			t.Fatal(err)
		}
	}
}

func receive[T any](t *testing.T, ch <-chan T, n int) []T {
	t.Helper()
	var out []T
	timeout := time.After(5 * time.Second)
	for len(out) < n {
		select {
		case v := <-ch:
			out = append(out, v)
		case <-timeout:
			t.Fatalf("got %d of %d", len(out), n)
		}
	}
	return out
}

// quiet checks nothing more arrives on ch for a moment.
func quiet[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Errorf("unexpected %s: %v", what, v)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestBindDemux(t *testing.T) {
	checkGoroutines(t)
	h := openHarness(t)
	c := client(t)
	from := c.LocalAddr().(*net.UDPAddr).AddrPort()

	software := []byte{0x80, 0x22, 0x00, 0x04, 'r', 'o', 'a', 'm'}
	request := stunPacket(0x0001, software)
	collision := wgPacket(4, 64, cookieIndex)
	forWG := [][]byte{
		wgPacket(1, 148, 0),
		collision,
		[]byte{0x00, 0x01, 0x00}, // short junk: WireGuard drops it
		append(stunPacket(0x0001, nil), 0, 0, 0, 0, 0, 0), // STUN header, wrong length
		wgPacket(4, 1200, 42),
	}
	send(t, c, h.addr(), forWG[0], request, forWG[1], forWG[2], forWG[3], stunPacket(0x0100, nil), forWG[4])

	gotWG := receive(t, h.wg, len(forWG))
	for i := range forWG {
		if !bytes.Equal(gotWG[i], forWG[i]) {
			t.Errorf("WireGuard packet %d: got % x..., want % x...", i, head(gotWG[i]), head(forWG[i]))
		}
	}
	gotSTUN := receive(t, h.stun, 2)
	if !bytes.Equal(gotSTUN[0].pkt, request) || gotSTUN[0].from != from {
		t.Errorf("STUN 0: % x from %s, want the request from %s", gotSTUN[0].pkt, gotSTUN[0].from, from)
	}
	if !bytes.Equal(gotSTUN[1].pkt, stunPacket(0x0100, nil)) {
		t.Errorf("STUN 1: % x", gotSTUN[1].pkt)
	}
	quiet(t, h.wg, "packet for WireGuard")
	quiet(t, h.stun, "STUN packet")

	// Without a handler STUN is dropped, not passed to WireGuard; a
	// handler set again gets the next one.
	h.b.SetSTUNHandler(nil)
	send(t, c, h.addr(), request)
	quiet(t, h.wg, "packet for WireGuard")
	h.b.SetSTUNHandler(func(pkt []byte, from netip.AddrPort) { h.stun <- stunGot{pkt, from} })
	send(t, c, h.addr(), request)
	receive(t, h.stun, 1)
}

func head(b []byte) []byte { return b[:min(len(b), 8)] }

func TestBindSendsOnTheSamePort(t *testing.T) {
	checkGoroutines(t)
	h := openHarness(t)
	c := client(t)
	to := c.LocalAddr().(*net.UDPAddr).AddrPort()
	if h.b.Port() != h.port || h.port == 0 {
		t.Fatalf("Port() = %d, Open said %d", h.b.Port(), h.port)
	}

	response := stunPacket(0x0101, []byte{0x80, 0x22, 0x00, 0x04, 'r', 'o', 'a', 'm'})
	if err := h.b.SendSTUN(response, to); err != nil {
		t.Fatal(err)
	}
	data := wgPacket(4, 256, 9)
	if err := h.b.Send([][]byte{data, data}, &conn.StdNetEndpoint{AddrPort: to}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	for i, want := range [][]byte{response, data, data} {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, src, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[:n], want) {
			t.Errorf("datagram %d: % x...", i, head(buf[:n]))
		}
		if src.Port() != h.port {
			t.Errorf("datagram %d came from port %d, not the bind's %d", i, src.Port(), h.port)
		}
	}
}

func TestBindSendSTUNWhenClosed(t *testing.T) {
	b := NewBind(nil)
	to := netip.MustParseAddrPort("127.0.0.1:9")
	if err := b.SendSTUN(stunPacket(1, nil), to); !errors.Is(err, net.ErrClosed) {
		t.Errorf("SendSTUN before Open: %v", err)
	}
	if _, _, err := b.Open(0); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.SendSTUN(stunPacket(1, nil), to); !errors.Is(err, net.ErrClosed) {
		t.Errorf("SendSTUN after Close: %v", err)
	}
	if err := b.SendSTUN(stunPacket(1, nil), netip.AddrPort{}); err == nil {
		t.Error("SendSTUN to no address: no error")
	}
}

func BenchmarkClassify(b *testing.B) {
	pkt := wgPacket(4, 1452, cookieIndex)
	for b.Loop() {
		if classify(pkt) != kindWireGuard {
			b.Fatal("not wireguard")
		}
	}
}
