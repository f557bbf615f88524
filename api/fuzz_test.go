package api

import (
	"bytes"
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
