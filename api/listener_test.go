package api

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/roamnet/roam/api/apitest"
	"github.com/roamnet/roam/api/roampb"
)

// runServer starts s.Run on 127.0.0.1:0 and returns its base URL; the
// cleanup cancels Run and checks that it returned nil.
func runServer(t *testing.T, s interface {
	Listen() error
	Addr() string
	Run(context.Context) error
}) string {
	t.Helper()
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after cancel, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return within 10s of cancel")
		}
	})
	return "http://" + s.Addr()
}

// get fetches url with a client of its own, closed afterwards.
func get(t *testing.T, method, url string) (*http.Response, string) {
	t.Helper()
	resp, body, err := fetch(method, url)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func fetch(method, url string) (*http.Response, string, error) {
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func TestServerRun(t *testing.T) {
	apitest.CheckGoroutines(t)
	s := newTestServer(t, Config{Addr: "127.0.0.1:0"}, testSrc())
	if a := s.Addr(); a != "" {
		t.Errorf("Addr before Listen = %q, want empty", a)
	}
	base := runServer(t, s)
	if strings.HasSuffix(base, ":0") {
		t.Fatalf("Addr %q still has port 0", base)
	}
	resp, body := get(t, "GET", base+"/v1/status")
	if resp.StatusCode != 200 || !strings.Contains(body, `"node":"a"`) {
		t.Errorf("GET /v1/status: %d %s", resp.StatusCode, body)
	}
	// HEAD is served by the GET route, without a body.
	resp, body = get(t, "HEAD", base+"/v1/peers")
	if resp.StatusCode != 200 || body != "" || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("HEAD /v1/peers: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	resp, body = get(t, "GET", base+"/v1/nope")
	checkJSONError(t, resp, body, 404, "no such endpoint")
}

// TestServerRunWithoutListen lets Run bind by itself; Addr then appears
// once it has.
func TestServerRunWithoutListen(t *testing.T) {
	apitest.CheckGoroutines(t)
	s := newTestServer(t, Config{Addr: "127.0.0.1:0"}, testSrc())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	for s.Addr() == "" {
		select {
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	resp, _ := get(t, "GET", "http://"+s.Addr()+"/v1/peers")
	if resp.StatusCode != 200 {
		t.Errorf("GET /v1/peers: %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// A Run whose context is already done releases a socket bound by Listen.
func TestServerRunCancelled(t *testing.T) {
	apitest.CheckGoroutines(t)
	s := newTestServer(t, Config{Addr: "127.0.0.1:0"}, testSrc())
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("address %s still in use after Run: %v", addr, err)
	}
	ln.Close()
	if err := s.Run(context.Background()); err == nil || err.Error() != "api: REST API: Run called twice" {
		t.Errorf("second Run: %v, want an error", err)
	}
	if err := s.Listen(); err == nil || err.Error() != "api: REST API: Listen after Run" {
		t.Errorf("Listen after Run: %v, want an error", err)
	}
}

func TestServerAddrInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := newTestServer(t, Config{Addr: ln.Addr().String()}, testSrc())
	err = s.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "api: REST API: listen tcp "+ln.Addr().String()) ||
		!strings.Contains(err.Error(), "address already in use") {
		t.Errorf("Run on a used address: %v", err)
	}
}

// blockingSource blocks in Peers until its context is done, like a stuck
// daemon.
type blockingSource struct {
	apitest.Source
	called chan struct{}
}

func (b *blockingSource) Peers(ctx context.Context) (*roampb.ListPeersResponse, error) {
	close(b.called)
	<-ctx.Done()
	return nil, ctx.Err()
}

// Cancelling Run cancels requests in flight: Run returns promptly, and the
// client gets its answer.
func TestServerShutdownCancelsRequests(t *testing.T) {
	apitest.CheckGoroutines(t)
	src := &blockingSource{called: make(chan struct{})}
	s := newTestServer(t, Config{Addr: "127.0.0.1:0"}, src)
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	type result struct {
		resp *http.Response
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, body, err := fetch("GET", "http://"+s.Addr()+"/v1/peers")
		got <- result{resp, body, err}
	}()
	<-src.called
	start := time.Now()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if d := time.Since(start); d > shutdownTimeout/2 {
		t.Errorf("Run took %v to return", d)
	}
	r := <-got
	if r.err != nil {
		t.Fatal(r.err)
	}
	checkJSONError(t, r.resp, r.body, 503, "reading peers: context canceled")
}
