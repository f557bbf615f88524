package bgp

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestCloseSessions: the socket with the given endpoints is shut down (its
// peer reads EOF, no bytes), another connection is left alone.
func TestCloseSessions(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dial := func() (client, server net.Conn) {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(); s.Close() })
		return c, s
	}
	c1, s1 := dial()
	c2, s2 := dial()
	ap := func(a net.Addr) netip.AddrPort { return a.(*net.TCPAddr).AddrPort() }
	// Close c1 as the speaker would: its own end, local then remote.
	n, err := closeSessions([]session{{local: ap(c1.LocalAddr()), remote: ap(c1.RemoteAddr())}})
	if err != nil || n != 1 {
		t.Fatalf("closeSessions = %d, %v; want 1 socket", n, err)
	}
	s1.SetReadDeadline(time.Now().Add(5 * time.Second))
	if k, err := s1.Read(make([]byte, 1)); k != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("far end of the closed session read %d, %v; want EOF", k, err)
	}
	if _, err := c1.Write([]byte("x")); err == nil {
		t.Error("write on the closed session succeeded")
	}
	// The other connection still works both ways.
	if _, err := c2.Write([]byte("y")); err != nil {
		t.Fatalf("other connection: %v", err)
	}
	s2.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 1)
	if _, err := io.ReadFull(s2, b); err != nil || b[0] != 'y' {
		t.Errorf("other connection read %q, %v", b, err)
	}
	if n, err := closeSessions(nil); n != 0 || err != nil {
		t.Errorf("closeSessions(nil) = %d, %v", n, err)
	}
}
