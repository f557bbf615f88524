#!/usr/bin/env bash
# Mobility (make demo, after demo-quality.sh): deploys the mobile lab (a node
# with a Wi-Fi and an LTE uplink behind two NATs, a hub, a peer behind a third
# NAT, a BIRD router behind the hub, pods behind mobile and peer), shows the
# direct path ICE finds between mobile and peer, then moves mobile between its
# uplinks and to a new address while its pod is pinged every 10 ms from the
# peer's pod and from BIRD, and prints the handover times roamd recorded.
# Destroys the lab on exit, also when a step fails or on Ctrl-C. Needs root.
#
# ROAMLAB selects the roamlab binary (default: bin/roamlab, as built by make).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROAMLAB=${ROAMLAB:-bin/roamlab}
TOPO=testbed/labs/mobile.clab.yml

# shellcheck source=testbed/demo-lib.sh
source testbed/demo-lib.sh

# pings FROM: starts 10 ms pings of mpod (10.244.1.2) from FROM for 20 s in
# the background, output in $tmp/FROM.
pings() {
	"$ROAMLAB" exec -t "$TOPO" -n "$1" -- ping -D -i 0.01 -c 2000 -W 1 10.244.1.2 >"$tmp/$1" 2>&1 &
}

# longest_gap FILE: the longest time between two replies in a ping -D log.
longest_gap() {
	grep -o '^\[[0-9.]*\]' "$1" | tr -d '[]' |
		awk 'NR > 1 && $1 - prev > max { max = $1 - prev } { prev = $1 } END { printf "%d ms", max * 1000 }'
}

# move WHAT CMD...: runs a move (a roamlab command) during the pings, then
# reports.
move() {
	local what=$1
	shift
	step "$what, while ppod and bird ping mpod every 10 ms"
	pings ppod
	pings bird
	sleep 2
	run "$@"
	sleep 4
	"$ROAMLAB" exec -t "$TOPO" -n ppod -- pkill -INT ping || true
	"$ROAMLAB" exec -t "$TOPO" -n bird -- pkill -INT ping || true
	wait
	echo "replies: ppod $(grep -c 'bytes from' "$tmp/ppod" || true), bird $(grep -c 'bytes from' "$tmp/bird" || true);" \
		"longest gap: ppod $(longest_gap "$tmp/ppod"), bird $(longest_gap "$tmp/bird")"
}

if [[ $(id -u) -ne 0 ]]; then
	echo "demo: needs root (network namespaces); run: sudo make demo" >&2
	exit 1
fi

tmp=$(mktemp -d)
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	step "Destroying the mobile lab"
	if ! run destroy -t "$TOPO"; then
		echo "demo: destroy failed; run: $ROAMLAB destroy -t $TOPO" >&2
		rc=1
	fi
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "Deploying $TOPO: mobile (Wi-Fi eth1, LTE eth2, each behind a NAT), a hub, a peer behind a third NAT, BIRD behind the hub"
run deploy -t "$TOPO"
wait_via mobile 10.244.2.0/24 peer 30
wait_via peer 10.244.1.0/24 mobile 10

step "mobile's paths: the hub is configured; ICE found a direct path to peer through both NATs (WireGuard's endpoint is the selected pair)"
on mobile /run/roam/bin/roamctl paths
step "mobile's routes: peer's pod over the direct path, BIRD's site through the hub"
on mobile /run/roam/bin/roamctl routes

move "Wi-Fi lost (eth1 loses carrier): mobile's traffic moves to LTE" link set -t "$TOPO" -n mobile -i eth1 --down --mode carrier
move "Wi-Fi back: mobile moves back to it" link set -t "$TOPO" -n mobile -i eth1 --up --mode carrier
move "A new address on Wi-Fi (192.0.2.2 -> 192.0.2.3, as a new DHCP lease)" exec -t "$TOPO" -n mobile -- \
	sh -c 'ip addr del 192.0.2.2/26 dev eth1 && ip addr add 192.0.2.3/26 dev eth1 && ip route replace default via 192.0.2.1 dev eth1 metric 0'

step "The handovers mobile recorded: when the change was seen, and after how long the hub answered, the direct path to peer was back and the BGP sessions were up"
on mobile /run/roam/bin/roamctl events
step "mobile's paths now: the direct path follows the new address"
on mobile /run/roam/bin/roamctl paths
step "The same as Prometheus histograms"
on mobile sh -c 'curl -s 127.0.0.1:9474/metrics | grep -E "^roam_handover_duration_seconds_(sum|count)|^roam_path_type|^roam_ice_state.* 1$"'
