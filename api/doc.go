// Package api owns roamd's interfaces to the outside: the wire format (the
// protobuf messages of roam.proto, generated into api/roampb), the REST API
// that serves them as JSON, and the Prometheus /metrics endpoint.
//
// # REST
//
// Server serves, by default on 127.0.0.1:7470:
//
//	GET /v1/status  roampb.Status
//	GET /v1/peers   roampb.ListPeersResponse
//
// Bodies are JSON made by protojson from those messages, with these rules,
// which are part of the API's contract:
//   - field names are the proto field names (snake_case: "public_key",
//     "last_handshake"), never the lowerCamelCase JSON names;
//   - fields at their zero value, and unset messages, are left out: a peer
//     without "last_handshake" has never completed a handshake, one without
//     "rx_bytes" has received nothing;
//   - int64 values are JSON strings ("rx_bytes": "1234"), Durations are
//     strings in seconds ("25s", "1.5s") and Timestamps are RFC 3339 strings
//     in UTC;
//   - the body is compact JSON followed by a newline.
//
// Clients should ignore fields they do not know: later versions add fields.
//
// Every error is a roampb.Error body ({"code": 404, "message": "..."}) whose
// code is the HTTP status: 404 for an unknown path, 405 with an Allow header
// for a method the path does not serve, 413 for a request body over 64 KiB,
// 401 with WWW-Authenticate for a mutating call without the right bearer
// token, 403 for a mutating call when no token is configured, 503 when the
// daemon cannot answer yet (ErrUnavailable) and 500 for other failures.
//
// # Metrics
//
// Metrics serves /metrics, by default on 127.0.0.1:9474: the Go and process
// collectors and roam_tunnel_peers, roam_peer_rx_bytes_total,
// roam_peer_tx_bytes_total and roam_peer_last_handshake_seconds (label peer),
// read from Source at scrape time. Other packages register their collectors
// on Metrics.Registry.
//
// # Boundaries
//
// The package sees the daemon only through Source, which cmd/roamd implements;
// it must not import or reach into the daemon's internals (tunnel, bgp, probe,
// mobility, ipam). Its constructors validate and allocate and start nothing;
// Run serves until its context is cancelled.
package api
