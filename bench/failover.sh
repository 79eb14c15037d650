#!/usr/bin/env bash
# Failover time: SIGKILL of an agent -> its component restored on another node.
#
#   bash bench/failover.sh [TRIALS]      (default 20)
#
# CKPT_BUILD: the build to measure (default build-bench, a release build made
# and brought up to date here, as bench/storage.sh does).
#
# A NAS, a manager (heartbeat 100 ms, down-after 500 ms) and a standby agent
# run on 127.0.0.1. Each trial starts a victim agent with one demo component
# of 1 MiB state, waits until it has stored checkpoints, SIGKILLs it and
# measures from the kill to the manager's failover.done event of the
# component (Event.time_unix_ms, published once the target answered Restore
# with the restored state); the restored digest is checked against the
# checkpoint. Prints every sample, then p50, p99 (nearest rank) and max.
# Not part of `meson test`.
set -u
TRIALS=${1:-20}
HB_MS=100 DOWN_MS=500
cd "$(dirname "$0")/.."
: "${CKPT_BUILD:=build-bench}"
[ -f "$CKPT_BUILD/build.ninja" ] || meson setup "$CKPT_BUILD" --buildtype=release >/dev/null
ninja -C "$CKPT_BUILD" services/nas/ckpt-nas services/manager/ckpt-manager \
	services/agent/ckpt-agent clients/ckptctl/ckptctl >/dev/null || exit 2
NAS_BIN="$CKPT_BUILD/services/nas/ckpt-nas"
MGR_BIN="$CKPT_BUILD/services/manager/ckpt-manager"
AGENT_BIN="$CKPT_BUILD/services/agent/ckpt-agent"
CTL_BIN="$CKPT_BUILD/clients/ckptctl/ckptctl"
for b in "$NAS_BIN" "$MGR_BIN" "$AGENT_BIN" "$CTL_BIN"; do
	[ -x "$b" ] || { echo "missing $b (build first, or set CKPT_BUILD)" >&2; exit 2; }
done
DIR=$(mktemp -d "${TMPDIR:-/tmp}/ckpt-bench.XXXXXX")
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
bg() { local log=$1; shift; "$@" >"$DIR/$log.log" 2>&1 & PIDS+=($!); LAST=$!; }
waitfor() { # SECONDS COMMAND...
	local until=$(( $(now_ms) + $1 * 1000 )); shift
	until "$@" >/dev/null 2>&1; do [ "$(now_ms)" -ge "$until" ] && return 1; sleep 0.05; done
}

NAS_URL="tcp://127.0.0.1:$(port)" MGR_URL="tcp://127.0.0.1:$(port)" EV_URL="tcp://127.0.0.1:$(port)"
ctl() { "$CTL_BIN" --manager "$MGR_URL" "$@"; }
bg nas "$NAS_BIN" --listen "$NAS_URL" --data "$DIR/nas" --keep 5
bg manager "$MGR_BIN" --listen "$MGR_URL" --events "$EV_URL" --nas "$NAS_URL" \
	--heartbeat-ms $HB_MS --down-after ${DOWN_MS}ms --log-level warn
waitfor 10 ctl info || { echo "manager did not start" >&2; exit 1; }
bg standby "$AGENT_BIN" --node standby --manager "$MGR_URL" --listen "tcp://127.0.0.1:0" \
	--interval-ms 1000 --log-level warn
bg watch "$CTL_BIN" --manager "$MGR_URL" --json watch ckpt.failover.done/
sleep 0.5

echo "# failover benchmark: $TRIALS trials, heartbeat ${HB_MS} ms, down-after ${DOWN_MS} ms, 1 MiB state"
samples=()
for i in $(seq "$TRIALS"); do
	comp="bench_$i" node="victim_$i"
	bg "$node" "$AGENT_BIN" --node "$node" --manager "$MGR_URL" --listen "tcp://127.0.0.1:0" \
		--interval-ms 200 --demo "$comp:1M" --log-level warn
	victim=$LAST
	stored() { [ "$(ctl --json ls "$node/$comp" | jq length)" -ge 2 ]; }
	waitfor 10 stored || { echo "trial $i: $node did not store" >&2; exit 1; }
	# Land the kill anywhere within a heartbeat period.
	sleep "0.$(( RANDOM % 10 ))"
	t0=$(now_ms)
	kill -KILL "$victim"
	wait "$victim" 2>/dev/null
	done_ev() { grep -q "\"component\": *\"$comp\"" "$DIR/watch.log"; }
	waitfor 15 done_ev || { echo "trial $i: no failover.done for $comp" >&2; exit 1; }
	t1=$(grep "\"component\": *\"$comp\"" "$DIR/watch.log" | head -n1 | jq -r .time_unix_ms)
	ok=$(ctl --json nodes | jq -r --arg c "$comp" '[.[].components[] | select(.name == $c)][0] |
		(.state_sha256 == .restored_from.sha256)')
	ms=$(( t1 - t0 ))
	samples+=("$ms")
	printf 'trial %2d: %4d ms  (restored digest equals checkpoint: %s)\n' "$i" "$ms" "$ok"
done
sorted=$(printf '%s\n' "${samples[@]}" | sort -n)
rank() { # nearest-rank percentile P of the sorted samples
	local n=${#samples[@]} k
	k=$(( (n * $1 + 99) / 100 )); [ "$k" -lt 1 ] && k=1
	sed -n "${k}p" <<<"$sorted"
}
p50=$(rank 50) p99=$(rank 99) max=$(tail -n1 <<<"$sorted")
echo "p50 ${p50} ms  p99 ${p99} ms  max ${max} ms  (target p99 < $((DOWN_MS + 100)) ms)"
