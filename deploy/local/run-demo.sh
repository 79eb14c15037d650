#!/usr/bin/env bash
# The seed scenario on a local cluster, the embedded default: loopback, LMDB
# under a local folder. Installs what is missing, builds, then starts a NAS, a
# manager and two agents dummy_1 and dummy_2, each running one demo component.
# They attach and checkpoint; after 3 s each calls for its own migration and
# the two swap. The script then proves it: the digest of each restored state
# equals the digest of the stored checkpoint it came from.
#
#   bash deploy/local/run-demo.sh [--keep-running]
#
# Settings (environment): CKPT_RUN_DIR (default ./run), CKPT_BASE_PORT (7400:
# NAS +10, manager +20, events +21, agents +31 and +32), CKPT_DEMO_BYTES (1M).
# Ctrl-C stops everything cleanly.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
keep=0
[ "${1:-}" = "--keep-running" ] && keep=1

bash "$top/deploy/local/deps.sh"
[ -f "$top/build/build.ninja" ] || meson setup "$top/build" "$top" >/dev/null
meson compile -C "$top/build" >/dev/null

B="$top/build"
RUN=${CKPT_RUN_DIR:-$top/run}
base=${CKPT_BASE_PORT:-7400}
bytes=${CKPT_DEMO_BYTES:-1M}
NAS_URL="tcp://127.0.0.1:$((base + 10))"
MGR_URL="tcp://127.0.0.1:$((base + 20))"
EV_URL="tcp://127.0.0.1:$((base + 21))"
rm -rf "$RUN/nas"
mkdir -p "$RUN"

pids=()
cleanup() {
	trap - EXIT INT TERM
	echo "== stopping the cluster"
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ctl() { "$B/clients/ckptctl/ckptctl" --manager "$MGR_URL" "$@"; }
wait_until() { # SECONDS COMMAND...
	local n=$(($1 * 10)); shift
	until "$@" >/dev/null 2>&1; do n=$((n - 1)); [ $n -gt 0 ] || return 1; sleep 0.1; done
}

echo "== NAS on $NAS_URL, data in $RUN/nas"
"$B/services/nas/ckpt-nas" --listen "$NAS_URL" --data "$RUN/nas" &
pids+=($!)
echo "== manager on $MGR_URL, events on $EV_URL"
"$B/services/manager/ckpt-manager" --listen "$MGR_URL" --events "$EV_URL" --nas "$NAS_URL" &
pids+=($!)
wait_until 10 ctl info || { echo "the manager did not come up" >&2; exit 1; }
for i in 1 2; do
	"$B/services/agent/ckpt-agent" --node "dummy_$i" --manager "$MGR_URL" \
		--listen "tcp://127.0.0.1:$((base + 30 + i))" --demo "demo_$i:$bytes" \
		--interval-ms 1000 --migrate-after 3s &
	pids+=($!)
done

swapped() {
	ctl --json nodes | jq -e '
		(map(select(.id == "dummy_1"))[0].components | map(.name) == ["demo_2"]) and
		(map(select(.id == "dummy_2"))[0].components | map(.name) == ["demo_1"])'
}
if ! wait_until 30 swapped; then
	echo "== FAILED: the components did not swap within 30 s" >&2
	ctl nodes >&2 || true
	exit 1
fi
sleep 0.3
echo "== the swap is done; checking digests"
nodes=$(ctl --json nodes)
listing=$(ctl --json ls)
ok=1
for pair in "dummy_1 demo_2" "dummy_2 demo_1"; do
	set -- $pair
	c=$(jq -c --arg n "$1" --arg c "$2" 'map(select(.id == $n))[0].components[] | select(.name == $c)' <<<"$nodes")
	src=$(jq -r .restored_from.node <<<"$c")
	seq=$(jq -r .restored_from.seq <<<"$c")
	restored=$(jq -r .state_sha256 <<<"$c")
	stored=$(jq -r --arg n "$src" --arg c "$2" --argjson s "$seq" \
		'map(select(.node == $n and .component == $c and .seq == $s))[0].sha256' <<<"$listing")
	if [ "$restored" = "$stored" ]; then verdict=match; else verdict=MISMATCH; ok=0; fi
	printf '== %s now runs %s, restored from %s/%s@%s\n   stored checkpoint sha256 %s\n   restored state    sha256 %s  -> %s\n' \
		"$1" "$2" "$src" "$2" "$seq" "$stored" "$restored" "$verdict"
done
ctl nodes
[ $ok -eq 1 ] || { echo "== FAILED: digest mismatch" >&2; exit 1; }
echo "== seed scenario: migration successful on both nodes, digests match"
if [ $keep -eq 1 ]; then
	echo "== cluster keeps running; try: $B/clients/ckptctl/ckptctl --manager $MGR_URL ls   (Ctrl-C to stop)"
	wait "${pids[0]}"
fi
