# Shell functions of the demos (testbed/demo-*.sh), which source this file
# after setting TOPO (the lab file) and ROAMLAB (the roamlab binary).

step() { printf '\n==> %s\n' "$*"; }

# run prints a roamlab command line, then runs it.
run() {
	printf '$ roamlab %s\n' "$*"
	"$ROAMLAB" "$@"
}

# on NODE CMD...: runs a command in a lab node, printed first.
on() {
	local n=$1
	shift
	run exec -t "$TOPO" -n "$n" -- "$@"
}

# via NODE PREFIX: the peer NODE's roamd installed PREFIX towards.
via() {
	"$ROAMLAB" exec -t "$TOPO" -n "$1" -- /run/roam/bin/roamctl routes -o json 2>/dev/null |
		tr -d ' \n' | grep -o '"installed":.*' | grep -o "{\"prefix\":\"$2\"[^}]*}" |
		grep -o '"peer":"[^"]*"' | cut -d'"' -f4 | head -1
}

# wait_via NODE PREFIX PEER SECONDS: waits (bounded) until PREFIX goes to PEER.
wait_via() {
	local i
	for i in $(seq $(($4 * 5))); do
		if [[ $(via "$1" "$2") == "$3" ]]; then
			echo "($1: $2 -> $3 after $((i / 5)).$((i % 5 * 2)) s)"
			return 0
		fi
		sleep 0.2
	done
	echo "demo: $1 does not route $2 to $3 after $4 s" >&2
	return 1
}
