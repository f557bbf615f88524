#!/usr/bin/env bash
# A tour of the testbed (make demo): deploys the NAT lab, pings through it
# with and without an impaired link, cuts and repairs a link, and destroys the
# lab on exit, also when a step fails or on Ctrl-C. Needs root.
#
# ROAMLAB selects the roamlab binary (default: bin/roamlab, as built by make).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROAMLAB=${ROAMLAB:-bin/roamlab}
TOPO=testbed/labs/nat.clab.yml
HUB=203.0.113.1 # the hub's address on the "internet" bridge

step() { printf '\n==> %s\n' "$*"; }

# run prints a roamlab command line, then runs it.
run() {
	printf '$ roamlab %s\n' "$*"
	"$ROAMLAB" "$@"
}

if [[ $(id -u) -ne 0 ]]; then
	echo "demo: needs root (network namespaces); run: sudo make demo" >&2
	exit 1
fi
if [[ ! -x $ROAMLAB ]]; then
	echo "demo: $ROAMLAB not found; run: make build" >&2
	exit 1
fi

capture=$(mktemp)
dump_pid=
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ -n $dump_pid ]]; then
		kill "$dump_pid" 2>/dev/null || true
	fi
	step "Destroying the lab (namespaces, links and processes)"
	if ! run destroy -t "$TOPO"; then
		echo "demo: destroy failed; run: $ROAMLAB destroy -t $TOPO" >&2
		rc=1
	fi
	rm -f "$capture"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "Deploying $TOPO: a hub on an \"internet\" bridge, host1 and host2 each behind its own NAT, a pod behind each host"
run deploy -t "$TOPO"

step "The lab's nodes, their interfaces and addresses"
run inspect -t "$TOPO"

step "host1 (192.0.2.2) pings the hub ($HUB) through nat1; the hub captures what arrives"
# The hub listens for the echo requests of others (its own replies are left out).
"$ROAMLAB" exec -t "$TOPO" -n hub -- timeout 10 tcpdump -n -l -c 3 -i eth1 \
	icmp and not src host "$HUB" >"$capture" 2>&1 &
dump_pid=$!
sleep 1
run exec -t "$TOPO" -n host1 -- ping -c 5 -i 0.2 "$HUB"

step "What the hub saw: the source is nat1's public address 203.0.113.11, not host1's 192.0.2.2"
wait "$dump_pid" || true
dump_pid=
grep ' IP ' "$capture" || cat "$capture"

step "roamd runs on the hub and both hosts: the hub's WireGuard peers, as roamctl shows them"
# The hosts call the hub as soon as roamd starts; give the handshakes a moment.
for host in host1 host2; do
	for _ in $(seq 50); do
		"$ROAMLAB" exec -t "$TOPO" -n "$host" -- ping -c 1 -W 1 100.64.0.254 >/dev/null 2>&1 && break
		sleep 0.1
	done
done
run exec -t "$TOPO" -n hub -- /run/roam/bin/roamctl status
run exec -t "$TOPO" -n hub -- /run/roam/bin/roamctl peers

step "host1 pings host2's overlay address 100.64.0.2: both are behind NATs, the hub forwards (ttl 63)"
run exec -t "$TOPO" -n host1 -- ping -c 5 -i 0.2 100.64.0.2

step "BGP over the overlay: each host announces its pod prefix, the hub is transit"
# Wait (bounded) until host1 has pod2's prefix installed.
for _ in $(seq 100); do
	"$ROAMLAB" exec -t "$TOPO" -n host1 -- /run/roam/bin/roamctl routes 2>/dev/null | grep -q '10.244.2.0/24.*hub' && break
	sleep 0.2
done
for n in hub host1 host2; do
	run exec -t "$TOPO" -n "$n" -- /run/roam/bin/roamctl neighbors
	run exec -t "$TOPO" -n "$n" -- /run/roam/bin/roamctl routes
done
step "What roamd installed on host1: pod2's prefix in the hub's WireGuard AllowedIPs, and the kernel route"
run exec -t "$TOPO" -n host1 -- wg show roam0 allowed-ips
run exec -t "$TOPO" -n host1 -- ip route show proto 114

step "pod1 (10.244.1.2, behind host1) pings pod2 (10.244.2.2, behind host2) through the hub (ttl 61)"
run exec -t "$TOPO" -n pod1 -- ping -c 5 -i 0.2 10.244.2.2

step "A direct tunnel between host1 and host2 (nat2 forwards WireGuard's port to host2); SIGHUP reloads"
run exec -t "$TOPO" -n nat2 -- nft 'add chain ip nat prerouting { type nat hook prerouting priority -100; }'
run exec -t "$TOPO" -n nat2 -- nft add rule ip nat prerouting iifname eth1 udp dport 51820 dnat to 192.0.2.66
add_peer() { # node, peer line
	printf '%s: appending to /run/roam/roamd.yaml: %s\n%s: SIGHUP to its roamd\n' "$1" "$2" "$1"
	"$ROAMLAB" exec -t "$TOPO" -n "$1" -- sh -c "echo '$2' >> /run/roam/roamd.yaml"
	# Lab nodes share the PID namespace: signal the roamd of this node's network namespace only.
	local ns pid
	ns=$(ip netns exec "clab-nat-$1" readlink /proc/self/ns/net)
	for pid in $(pgrep -x roamd); do
		if [[ $(readlink "/proc/$pid/ns/net") == "$ns" ]]; then
			kill -HUP "$pid"
		fi
	done
}
add_peer host1 '  - {name: host2, public_key: qNLbZwHPhSeQYe4JovEWIUv1BcLP1yQ1YoppKtM1B00=, endpoint: 203.0.113.12:51820, addresses: [100.64.0.2/32], persistent_keepalive: 5s}'
add_peer host2 '  - {name: host1, public_key: VZDMSbOH8qpwjG9OrwmKPMbhagOXoI5dKRJZJXGjI3U=, addresses: [100.64.0.1/32]}'
for _ in $(seq 150); do
	"$ROAMLAB" exec -t "$TOPO" -n host1 -- /run/roam/bin/roamctl routes 2>/dev/null | grep -q '10.244.2.0/24.*host2' && break
	sleep 0.2
done
step "The best path to pod2 moved to the direct tunnel (AS path one hop shorter); pod1 -> pod2 no longer crosses the hub (ttl 62)"
run exec -t "$TOPO" -n host1 -- /run/roam/bin/roamctl routes
run exec -t "$TOPO" -n pod1 -- ping -c 5 -i 0.2 10.244.2.2

step "The stock gobgp CLI against roamd's gRPC API on host1"
run exec -t "$TOPO" -n host1 -- /run/roam/bin/gobgp neighbor
run exec -t "$TOPO" -n host1 -- /run/roam/bin/gobgp global rib

step "Impairing nat1's uplink (egress of nat1:eth1): 50 ms delay, 5 ms jitter, 10 % loss"
run tools netem set -t "$TOPO" -n nat1 -i eth1 --delay 50ms --jitter 5ms --loss 10
run tools netem show -t "$TOPO" -n nat1

step "host1 pings the hub again, 20 pings 0.1 s apart: RTT about 50 ms higher, some loss"
run exec -t "$TOPO" -n host1 -- ping -c 20 -i 0.1 "$HUB"

step "Clearing the impairment (netem set without impairment flags)"
run tools netem set -t "$TOPO" -n nat1 -i eth1
run tools netem show -t "$TOPO" -n nat1

step "Cutting nat1's uplink: host1's pings get no reply"
run link set -t "$TOPO" -n nat1 -i eth1 --down
if run exec -t "$TOPO" -n host1 -- ping -c 3 -i 0.2 -w 2 "$HUB"; then
	echo "demo: a ping got through the cut link" >&2
	exit 1
fi
echo "(no replies: the link is cut, as expected)"

step "Repairing the link: host1 reaches the hub again"
run link set -t "$TOPO" -n nat1 -i eth1 --up
run exec -t "$TOPO" -n host1 -- ping -c 5 -i 0.2 "$HUB"

step "Done"
