// Package api owns roamd's interfaces to the outside: the wire format (the
// protobuf messages of roam.proto, generated into api/roampb), the REST API
// that serves them as JSON, and the Prometheus /metrics endpoint.
//
// # REST
//
// Server serves, by default on 127.0.0.1:7470:
//
//	GET    /v1/status                 roampb.Status
//	GET    /v1/peers                  roampb.ListPeersResponse
//	GET    /v1/links                  roampb.ListLinksResponse
//	GET    /v1/events?after=N&wait=D  roampb.ListEventsResponse (see Source.WaitEvents)
//	GET    /v1/paths                  roampb.ListPathsResponse
//	GET    /v1/bgp/neighbors          roampb.ListBgpNeighborsResponse
//	GET    /v1/routes                 roampb.ListRoutesResponse
//	GET    /v1/services               roampb.ListServicesResponse
//	POST   /v1/services               body roampb.Service; 201 and the Service
//	DELETE /v1/services/{prefix}      204, no body
//
// POST and DELETE change the daemon and need the bearer token (see below).
// The prefix of a service, in the POST body ({"prefix":"10.96.0.0/24"}) or
// in the DELETE path (/v1/services/10.96.0.0/24, or with the slash escaped,
// /v1/services/10.96.0.0%2F24), is IPv4 or IPv6 without host bits, not /0
// and not IPv4-mapped IPv6; the API checks it before the daemon sees it.
//
// Bodies are JSON made by protojson from those messages, with these rules,
// which are part of the API's contract:
//   - field names are the proto field names (snake_case: "public_key",
//     "last_handshake"), never the lowerCamelCase JSON names;
//   - fields at their zero value, and unset messages, are left out: a peer
//     without "last_handshake" has never completed a handshake, one without
//     "rx_bytes" has received nothing;
//   - 64-bit integers are JSON strings ("rx_bytes": "1234"), Durations are
//     strings in seconds ("25s", "1.5s") and Timestamps are RFC 3339 strings
//     in UTC;
//   - the body is compact JSON followed by a newline.
//
// Clients should ignore fields they do not know: later versions add fields.
//
// Request bodies are strict: JSON of the named message, with proto or
// lowerCamelCase field names; an unknown field is an error.
//
// Every error is a roampb.Error body ({"code": 404, "message": "..."}) whose
// code is the HTTP status:
//   - 400 for a request body or path the API cannot use: not JSON, an
//     unknown field, a missing or malformed prefix (the message says what is
//     wrong, e.g. "prefix \"10.96.0.1/24\" has host bits set: did you mean
//     10.96.0.0/24?");
//   - 401 with WWW-Authenticate for a mutating call without the right bearer
//     token, 403 for a mutating call when no token is configured;
//   - 404 for an unknown path, or a service that does not exist
//     (ErrNotFound);
//   - 405 with an Allow header for a method the path does not serve;
//   - 409 when the change contradicts the daemon's state (ErrConflict), or
//     the part of the daemon the request needs is not enabled on this node
//     (ErrDisabled; the message says which: BGP for /v1/bgp/neighbors,
//     /v1/routes and /v1/services, link probing for /v1/links);
//   - 413 for a request body over 64 KiB;
//   - 503 when the daemon cannot answer yet (ErrUnavailable);
//   - 500 for other failures.
//
// Requests refused with 400, 401, 403 or 413 are logged at Warn with method,
// path and reason; failed Source calls at Warn with the error.
//
// # Metrics
//
// Metrics serves /metrics, by default on 127.0.0.1:9474: the Go and process
// collectors and, read from Source at scrape time:
//   - roam_tunnel_peers, roam_peer_rx_bytes_total, roam_peer_tx_bytes_total
//     and roam_peer_last_handshake_seconds (label peer);
//   - the probed link to each peer: roam_link_rtt_seconds and
//     roam_link_jitter_seconds (left out until the first reply),
//     roam_link_loss_ratio (label direction: round_trip, and forward and
//     backward when the peer's reflector counts its own), roam_link_up (1 or
//     0), roam_link_cost and roam_link_transitions_total (label to: "down"
//     counts the flaps, "up" the recoveries), all with label peer. A node
//     without link probing has none of them.
//
// The label peer is the peer's name, or its public key if it has none. The
// daemon adds its own collectors with Metrics.Register: GoBGP's collector
// (the bgp_* series; the bgp package builds it, since api must not import
// GoBGP) and gauges of its own, named roam_*. A scrape during which any
// collector fails is answered with 500, so Prometheus marks the target down
// instead of silently missing series (link probing being off is no
// failure).
//
// # Boundaries
//
// The package sees the daemon only through Source, which cmd/roamd implements;
// it must not import or reach into the daemon's internals (tunnel, bgp, probe,
// mobility, ipam). Its constructors validate and allocate and start nothing;
// Run serves until its context is cancelled.
package api
