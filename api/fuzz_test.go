package api

import (
	"bytes"
	"net/netip"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/roamnet/roam/api/roampb"
)

// roundTrip checks the API's JSON encoding on outside input: whatever JSON
// decodes into a message must encode, decode back to an equal message, and
// encode to the same bytes again.
func roundTrip[M proto.Message](t *testing.T, data []byte, newMsg func() M) {
	m1 := newMsg()
	if err := unmarshalOptions.Unmarshal(data, m1); err != nil {
		return // not a valid message: nothing to check
	}
	b1, err := marshalJSON(m1)
	if err != nil {
		// Decoding validated strings, durations and timestamps, so any
		// decoded message must encode.
		t.Fatalf("marshal after a successful unmarshal of %q: %v", data, err)
	}
	m2 := newMsg()
	if err := unmarshalOptions.Unmarshal(b1, m2); err != nil {
		t.Fatalf("unmarshal of our own output %s: %v", b1, err)
	}
	if !proto.Equal(m1, m2) {
		t.Fatalf("round trip changed the message:\n%v\n%v", m1, m2)
	}
	b2, err := marshalJSON(m2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1, b2) {
		t.Fatalf("encoding is not stable:\n%s\n%s", b1, b2)
	}
}

func FuzzStatusJSON(f *testing.F) {
	f.Add([]byte(`{"node":"a","uptime":"90.5s","public_key":"YDRwZ0pdIj9YhlxIQ4e7vJO6e8AJ8Ac3V2PbEGIjvE0=",` +
		`"overlay_addresses":["100.64.0.1/32"],"listen_port":51820,"started":"2026-03-01T12:00:00.123Z"}`))
	f.Add([]byte(`{"listenPort":1,"tunnelMode":"kernel"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		roundTrip(t, data, func() *roampb.Status { return &roampb.Status{} })
	})
}

func FuzzPeersJSON(f *testing.F) {
	f.Add([]byte(`{"peers":[{"name":"b","endpoint":"[2001:db8::1]:51820","last_handshake":"2026-03-01T11:59:48+01:00",` +
		`"rx_bytes":"1234","tx_bytes":5242880,"allowed_ips":["100.64.0.2/32"],"persistent_keepalive":"25s"}]}`))
	f.Add([]byte(`{"peers":[{"rxBytes":"-9223372036854775808","persistentKeepalive":"-315576000000s"},{}]}`))
	f.Add([]byte(`{"peers":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		roundTrip(t, data, func() *roampb.ListPeersResponse { return &roampb.ListPeersResponse{} })
	})
}

func FuzzErrorJSON(f *testing.F) {
	f.Add([]byte(`{"code":404,"message":"no such endpoint: GET \"/v1/x\""}`))
	f.Add([]byte(`{"code":"413","message":"\ud83d\ude00"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		roundTrip(t, data, func() *roampb.Error { return &roampb.Error{} })
	})
}

func FuzzNeighborsJSON(f *testing.F) {
	f.Add([]byte(`{"neighbors":[{"address":"100.64.0.2","asn":4200000002,"description":"b","kind":"roam",` +
		`"state":"established","uptime":"3723s","received":"2","accepted":"1","advertised":"3"}]}`))
	f.Add([]byte(`{"neighbors":[{"asn":4294967295,"received":"18446744073709551615","uptime":"0.5s"},{}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		roundTrip(t, data, func() *roampb.ListBgpNeighborsResponse { return &roampb.ListBgpNeighborsResponse{} })
	})
}

func FuzzRoutesJSON(f *testing.F) {
	f.Add([]byte(`{"originated":[{"prefix":"10.244.1.0/24","next_hop":"100.64.0.1","local_pref":100,"best":true}],` +
		`"learned":[{"prefix":"198.51.100.0/24","next_hop":"192.0.2.1","as_path":[64512,64496],"med":10,` +
		`"from":"192.0.2.1","from_name":"edge router","stale":true}],` +
		`"installed":[{"prefix":"10.244.2.0/24","device":"roam0","peer":"b","table":254,"stale":true}]}`))
	f.Add([]byte(`{"learned":[{"asPath":["1",2],"localPref":"7","fromName":""}],"installed":[{}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		roundTrip(t, data, func() *roampb.ListRoutesResponse { return &roampb.ListRoutesResponse{} })
	})
}

func FuzzLinksJSON(f *testing.F) {
	f.Add([]byte(`{"links":[{"name":"b","public_key":"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=","address":"100.64.0.2",` +
		`"profile":"default","interval":"1s","state":"up","since":"2026-03-01T11:55:00Z","flaps":"2","transitions":"5",` +
		`"rtt":"0.012345s","rttvar":"0.001500s","jitter":"0.000800s","loss":0.015,"loss_forward":0.01,` +
		`"loss_backward":0.005,"loss_directions":true,"cost":300,"local_pref":200,"probes_sent":"4000",` +
		`"replies":"3940","down_after":3,"hold_down":"2s"}]}`))
	f.Add([]byte(`{"links":[{"loss":"NaN","lossForward":"-Infinity","lossBackward":1e308,"cost":"65535","holdDown":"0.000000001s"},{}]}`))
	f.Add([]byte(`{"links":[{"loss":-0,"flaps":"18446744073709551615","misses":4294967295,"since":"1970-01-01T00:00:00Z"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		roundTrip(t, data, func() *roampb.ListLinksResponse { return &roampb.ListLinksResponse{} })
	})
}

// FuzzServiceRequest checks the parser of POST /v1/services bodies, which
// come from outside: whatever it accepts is a canonical service prefix that
// survives the way back (the Service JSON the API answers with, the path of
// DELETE /v1/services/{prefix}); whatever it refuses gets a message.
func FuzzServiceRequest(f *testing.F) {
	for _, s := range []string{
		`{"prefix":"10.96.0.0/24"}`,
		`{"prefix":"fd00:96::/64"}`,
		`{"prefix":"10.96.0.1/24"}`,
		`{"prefix":"::ffff:10.96.0.0/120"}`,
		`{"prefix":"0.0.0.0/0"}`,
		`{"prefx":"10.96.0.0/24"}`,
		`{}`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := parseServiceRequest(body)
		if err != nil {
			if err.Error() == "" || p.IsValid() {
				t.Fatalf("refusing %q: error %q with prefix %v", body, err, p)
			}
			return
		}
		if !p.IsValid() || p != p.Masked() || p.Bits() == 0 || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			t.Fatalf("accepted %q as %v: not a canonical service prefix", body, p)
		}
		// The body was a valid Service whose prefix netip reads the same.
		var svc roampb.Service
		if err := unmarshalOptions.Unmarshal(body, &svc); err != nil {
			t.Fatalf("accepted %q, which is not a Service: %v", body, err)
		}
		if q, err := netip.ParsePrefix(svc.GetPrefix()); err != nil || q != p {
			t.Fatalf("accepted %q as %v; netip reads %v, %v", body, p, q, err)
		}
		roundTrip(t, body, func() *roampb.Service { return &roampb.Service{} })
		// The answer's JSON, and the prefix in a DELETE path, parse back.
		b, err := marshalJSON(&roampb.Service{Prefix: p.String()})
		if err != nil {
			t.Fatal(err)
		}
		if q, err := parseServiceRequest(b); err != nil || q != p {
			t.Fatalf("%s from %q parses to %v, %v; want %v", b, body, q, err, p)
		}
		if q, err := parseServicePrefix(p.String()); err != nil || q != p {
			t.Fatalf("path prefix %s parses to %v, %v", p, q, err)
		}
	})
}
