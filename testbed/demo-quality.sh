#!/usr/bin/env bash
# Link quality (make demo, after demo.sh): deploys the quality lab (a and b
# with a direct link and tunnels to a hub, all probed every 100 ms), shows
# roamctl links while it degrades and cuts the direct path, and the traffic
# between the pods moving to the hub and back. Destroys the lab on exit, also
# when a step fails or on Ctrl-C. Needs root.
#
# ROAMLAB selects the roamlab binary (default: bin/roamlab, as built by make).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROAMLAB=${ROAMLAB:-bin/roamlab}
TOPO=testbed/labs/quality.clab.yml

# shellcheck source=testbed/demo-lib.sh
source testbed/demo-lib.sh

# ttl: pod1 pings pod2 five times and prints the summary and the TTL.
ttl() {
	on pod1 ping -c 5 -i 0.1 10.244.2.2 | grep -E 'ttl=|packets' | tail -2
}

if [[ $(id -u) -ne 0 ]]; then
	echo "demo: needs root (network namespaces); run: sudo make demo" >&2
	exit 1
fi

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	step "Destroying the quality lab"
	if ! run destroy -t "$TOPO"; then
		echo "demo: destroy failed; run: $ROAMLAB destroy -t $TOPO" >&2
		rc=1
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "Deploying $TOPO: a and b with a direct link and tunnels to a hub; every roamd probes its peers every 100 ms (STAMP, port 862, inside the tunnels)"
run deploy -t "$TOPO"
wait_via a 10.244.2.0/24 b 30
wait_via b 10.244.1.0/24 a 10

step "a's links: both up, sub-millisecond RTT, no loss, cost 256 (perfect), local-pref 100"
on a /run/roam/bin/roamctl links
step "pod1 -> pod2 takes the direct tunnel (ttl 62: a, b)"
ttl

step "Impairing the direct path from a to b: 40 ms delay, 5 ms jitter, 10 % loss"
run tools netem set -t "$TOPO" -n a -i eth2 --delay 40ms --jitter 5ms --loss 10
sleep 15
step "15 s later, a's link to b: RTT about 40 ms, jitter about 3 ms, loss about 10 % (all of it on the way out), a higher cost and a lower local-pref"
on a /run/roam/bin/roamctl links
step "The hub path (local-pref 100) now beats the direct one: pod1 -> pod2 crosses the hub (ttl 61)"
wait_via a 10.244.2.0/24 hub 10
on a /run/roam/bin/roamctl routes
ttl

step "Clearing the impairment: once the better cost has held, the traffic goes back to the direct path"
run tools netem set -t "$TOPO" -n a -i eth2
wait_via a 10.244.2.0/24 b 60
wait_via b 10.244.1.0/24 a 30
ttl

step "Cutting the direct path (frames dropped both ways) while pod1 pings pod2 every 10 ms for 3 s"
on pod1 ping -q -c 300 -i 0.01 -W 1 10.244.2.2 &
ping_pid=$!
sleep 1
run link set -t "$TOPO" -n a -i eth2 --down --mode drop
wait "$ping_pid" || true
echo "(each lost ping is 10 ms without traffic: the probes declared b down, its session was shut and the routes moved to the hub)"
on a /run/roam/bin/roamctl links
ttl

step "Repairing the direct path: b is used again only after it has answered steadily for the hold-down"
run link set -t "$TOPO" -n a -i eth2 --up --mode drop
wait_via a 10.244.2.0/24 b 30
on a /run/roam/bin/roamctl links
ttl

step "A slow direct path (200 ms round trip) against 10 ms through the hub: the traffic moves to the hub"
run tools netem set -t "$TOPO" -n a -i eth2 --delay 100ms
run tools netem set -t "$TOPO" -n b -i eth2 --delay 100ms
wait_via a 10.244.2.0/24 hub 20
sleep 3 # the smoothed RTT is still climbing towards 200 ms
on a /run/roam/bin/roamctl links
ttl

step "Done"
