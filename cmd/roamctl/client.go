package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
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
	base *url.URL
	hc   *http.Client
}

// newClient checks the API URL.
func newClient(apiURL string) (*client, error) {
	u, err := url.Parse(apiURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--api %q: want a URL like %s", apiURL, defaultAPI)
	}
	return &client{base: u, hc: &http.Client{Timeout: requestTimeout}}, nil
}

// status fetches GET /v1/status; it returns the raw body too.
func (c *client) status(ctx context.Context) (*roampb.Status, []byte, error) {
	st := &roampb.Status{}
	body, err := c.get(ctx, "status", st)
	return st, body, err
}

// peers fetches GET /v1/peers; it returns the raw body too.
func (c *client) peers(ctx context.Context) (*roampb.ListPeersResponse, []byte, error) {
	resp := &roampb.ListPeersResponse{}
	body, err := c.get(ctx, "peers", resp)
	return resp, body, err
}

// apiError is an error answer of the API.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.msg, e.code) }

// get fetches /v1/<what> into m.
func (c *client) get(ctx context.Context, what string, m proto.Message) ([]byte, error) {
	u := c.base.JoinPath("v1", what)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("cannot reach roamd at %s: connection refused (is roamd running? point roamctl at its API with --api URL or ROAMCTL_API)", c.base.Redacted())
		}
		return nil, fmt.Errorf("cannot reach roamd at %s: %w", c.base.Redacted(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("reading the answer of %s: %w", u.Redacted(), err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, errorFrom(resp, body)
	}
	if err := unmarshalOptions.Unmarshal(body, m); err != nil {
		return nil, fmt.Errorf("%s answered something that is not the API's JSON: %v", u.Redacted(), err)
	}
	return body, nil
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
