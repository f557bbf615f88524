package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/roamnet/roam/api/roampb"
)

// handleServices serves GET /v1/services.
func (s *Server) handleServices(w http.ResponseWriter, r *http.Request) {
	resp, err := s.src.Services(r.Context())
	if err == nil && resp == nil {
		err = errors.New("no service list")
	}
	if err != nil {
		s.sourceError(w, r, "listing services", err)
		return
	}
	writeMessage(w, http.StatusOK, resp)
}

// handleAddService serves POST /v1/services: 201 and the Service, with its
// URL in Location.
func (s *Server) handleAddService(w http.ResponseWriter, r *http.Request) {
	b, ok := s.readBody(w, r)
	if !ok {
		return
	}
	prefix, err := parseServiceRequest(b)
	if err != nil {
		s.refuse(w, r, http.StatusBadRequest, "%v", err)
		return
	}
	svc, err := s.src.AddService(r.Context(), prefix)
	if err == nil && svc == nil {
		err = errors.New("no service")
	}
	if err != nil {
		s.sourceError(w, r, "adding service "+prefix.String(), err)
		return
	}
	w.Header().Set("Location", "/v1/services/"+prefix.String())
	writeMessage(w, http.StatusCreated, svc)
}

// handleDeleteService serves DELETE /v1/services/{prefix...}: 204. The
// prefix may be written with its slash as is (/v1/services/10.96.0.0/24) or
// escaped (/v1/services/10.96.0.0%2F24).
func (s *Server) handleDeleteService(w http.ResponseWriter, r *http.Request) {
	prefix, err := parseServicePrefix(r.PathValue("prefix"))
	if err != nil {
		s.refuse(w, r, http.StatusBadRequest, "%v", err)
		return
	}
	if err := s.src.DeleteService(r.Context(), prefix); err != nil {
		s.sourceError(w, r, "deleting service "+prefix.String(), err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// serviceExample is a valid Service body, for error messages.
const serviceExample = `{"prefix":"10.96.0.0/24"}`

// parseServiceRequest parses the body of POST /v1/services, a
// roampb.Service, and checks its prefix with parseServicePrefix. Its errors
// are messages for the API's client.
func parseServiceRequest(body []byte) (netip.Prefix, error) {
	var svc roampb.Service
	if err := unmarshalBody(body, &svc); err != nil {
		return netip.Prefix{}, fmt.Errorf("%w; want a Service like %s", err, serviceExample)
	}
	if svc.GetPrefix() == "" {
		return netip.Prefix{}, fmt.Errorf("missing prefix: want a Service like %s", serviceExample)
	}
	return parseServicePrefix(svc.GetPrefix())
}

// parseServicePrefix parses a service prefix and refuses what cannot be one:
// text that is not a prefix, a prefix with host bits set, a default route
// (/0) and an IPv4-mapped IPv6 prefix. Its errors are messages for the
// API's client and name the canonical prefix where one was likely meant.
func parseServicePrefix(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, errors.New("missing prefix: want one like 10.96.0.0/24 or fd00:96::/64")
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		// netip's error repeats the input: netip.ParsePrefix("x"): reason.
		reason := strings.TrimPrefix(err.Error(), fmt.Sprintf("netip.ParsePrefix(%q): ", s))
		return netip.Prefix{}, fmt.Errorf("prefix %q is not a prefix like 10.96.0.0/24 or fd00:96::/64: %s", s, reason)
	}
	if p.Bits() == 0 {
		return netip.Prefix{}, fmt.Errorf("prefix %q is a default route: a service prefix must be longer than /0", s)
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		msg := fmt.Sprintf("prefix %q is an IPv4-mapped IPv6 prefix: write it as IPv4", s)
		if p.Bits() > 96 {
			msg += ", " + netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96).Masked().String()
		}
		return netip.Prefix{}, errors.New(msg)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("prefix %q has host bits set: did you mean %s?", s, m)
	}
	return p, nil
}
