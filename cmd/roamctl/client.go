package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/roamnet/roam/api/roampb"
)

const (
	// requestTimeout bounds one API call.
	requestTimeout = 15 * time.Second
	// maxResponseBytes bounds a response body.
	maxResponseBytes = 64 << 20
)

// unmarshalOptions ignores fields this roamctl does not know, so it works
// with a newer roamd.
var unmarshalOptions = protojson.UnmarshalOptions{DiscardUnknown: true}

// client calls roamd's REST API.
type client struct {
	base  *url.URL
	hc    *http.Client
	token string // bearer token for mutating calls; "" sends none
}

// newClient checks the API URL.
func newClient(apiURL, token string) (*client, error) {
	u, err := url.Parse(apiURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--api %q: want a URL like %s", apiURL, defaultAPI)
	}
	return &client{base: u, hc: &http.Client{Timeout: requestTimeout}, token: token}, nil
}

// status fetches GET /v1/status; it returns the raw body too.
func (c *client) status(ctx context.Context) (*roampb.Status, []byte, error) {
	st := &roampb.Status{}
	body, err := c.get(ctx, st, "status")
	return st, body, err
}

// peers fetches GET /v1/peers; it returns the raw body too.
func (c *client) peers(ctx context.Context) (*roampb.ListPeersResponse, []byte, error) {
	resp := &roampb.ListPeersResponse{}
	body, err := c.get(ctx, resp, "peers")
	return resp, body, err
}

// links fetches GET /v1/links; it returns the raw body too.
func (c *client) links(ctx context.Context) (*roampb.ListLinksResponse, []byte, error) {
	resp := &roampb.ListLinksResponse{}
	body, err := c.get(ctx, resp, "links")
	return resp, body, err
}

// neighbors fetches GET /v1/bgp/neighbors; it returns the raw body too.
func (c *client) neighbors(ctx context.Context) (*roampb.ListBgpNeighborsResponse, []byte, error) {
	resp := &roampb.ListBgpNeighborsResponse{}
	body, err := c.get(ctx, resp, "bgp", "neighbors")
	return resp, body, err
}

// routes fetches GET /v1/routes; it returns the raw body too.
func (c *client) routes(ctx context.Context) (*roampb.ListRoutesResponse, []byte, error) {
	resp := &roampb.ListRoutesResponse{}
	body, err := c.get(ctx, resp, "routes")
	return resp, body, err
}

// services fetches GET /v1/services; it returns the raw body too.
func (c *client) services(ctx context.Context) (*roampb.ListServicesResponse, []byte, error) {
	resp := &roampb.ListServicesResponse{}
	body, err := c.get(ctx, resp, "services")
	return resp, body, err
}

// addService calls POST /v1/services; it returns the raw body too.
func (c *client) addService(ctx context.Context, prefix netip.Prefix) (*roampb.Service, []byte, error) {
	req, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(&roampb.Service{Prefix: prefix.String()})
	if err != nil {
		return nil, nil, err
	}
	svc := &roampb.Service{}
	body, err := c.do(ctx, http.MethodPost, req, svc, "services")
	return svc, body, err
}

// deleteService calls DELETE /v1/services/{prefix}.
func (c *client) deleteService(ctx context.Context, prefix netip.Prefix) error {
	// A prefix has one slash and no dot segments: the path stays
	// /v1/services/10.96.0.0/24 as the API documents it.
	_, err := c.do(ctx, http.MethodDelete, nil, nil, "services", prefix.String())
	return err
}

// apiError is an error answer of the API.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.msg, e.code) }

// get fetches /v1/<path...> into m.
func (c *client) get(ctx context.Context, m proto.Message, path ...string) ([]byte, error) {
	return c.do(ctx, http.MethodGet, nil, m, path...)
}

// do sends a request to /v1/<path...> with body (nil: none) and decodes a
// 2xx answer into m (nil: the answer has no body). Mutating calls carry the
// bearer token, if there is one; reading calls never do.
func (c *client) do(ctx context.Context, method string, body []byte, m proto.Message, path ...string) ([]byte, error) {
	u := c.base.JoinPath(append([]string{"v1"}, path...)...)
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if method != http.MethodGet && c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("cannot reach roamd at %s: connection refused (is roamd running? point roamctl at its API with --api URL or ROAMCTL_API)", c.base.Redacted())
		}
		return nil, fmt.Errorf("cannot reach roamd at %s: %w", c.base.Redacted(), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("reading the answer of %s: %w", u.Redacted(), err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, errorFrom(resp, b)
	}
	if m == nil {
		return b, nil
	}
	if err := unmarshalOptions.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("%s answered something that is not the API's JSON: %v", u.Redacted(), err)
	}
	return b, nil
}

// errorFrom makes an apiError from a non-2xx answer: the API's own message
// if the body is a roampb.Error, else the HTTP status and the start of the
// body (from a proxy, or not roamd at all).
func errorFrom(resp *http.Response, body []byte) error {
	var e roampb.Error
	if err := unmarshalOptions.Unmarshal(body, &e); err == nil && e.GetMessage() != "" {
		return &apiError{code: resp.StatusCode, msg: e.GetMessage()}
	}
	msg := http.StatusText(resp.StatusCode)
	if msg == "" {
		msg = "unexpected answer"
	}
	if s := strings.TrimSpace(string(body)); s != "" {
		if len(s) > 200 {
			s = s[:200] + "..."
		}
		msg += ": " + strings.ToValidUTF8(s, "?")
	}
	return &apiError{code: resp.StatusCode, msg: msg}
}
