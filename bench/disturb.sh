#!/usr/bin/env bash
# Checkpoints that do not disturb (issue 13): a real-time-like task (bench_latency:
# a thread woken every 1 ms at absolute times, recording how late each wake-up
# is) runs for CKPT_BENCH_SECONDS while an agent checkpoints a 64 MiB demo
# component every second, in these cases, each after a baseline in the same run:
#
#   baseline      NAS and manager up, no agent
#   nice          the agent as shipped (checkpoint thread at nice +10)
#   batch         --ckpt-sched batch
#   idle          --ckpt-sched idle
#   idle+rate     --ckpt-sched idle --upload-rate 16M
#
# For each: the task's p50/p99/max wake-up latency and their ratios to the
# baseline; the checkpoint jitter, p50/p99 of the time between stored
# checkpoints of the component (ckptctl ls --json created_unix_ms) against
# the 1000 ms interval. The task runs SCHED_OTHER unless CKPT_BENCH_FIFO=1
# (SCHED_FIFO 50, needs CAP_SYS_NICE). Not a test: it asserts nothing.
#
#   bash bench/disturb.sh
#
# Environment: CKPT_BUILD (default build-bench, a release build made here),
# CKPT_BENCH_SECONDS (default 15), CKPT_BENCH_BYTES (default 64M), CKPT_BENCH_FIFO.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${CKPT_BUILD:-build-bench}
[ -f "$build/build.ninja" ] || meson setup "$build" --buildtype=release >/dev/null
ninja -C "$build" services/nas/ckpt-nas services/manager/ckpt-manager \
	services/agent/ckpt-agent clients/ckptctl/ckptctl bench/bench_latency >/dev/null
secs=${CKPT_BENCH_SECONDS:-15}
bytes=${CKPT_BENCH_BYTES:-64M}
fifo=""
[ "${CKPT_BENCH_FIFO:-0}" = 1 ] && fifo=fifo
work=$(mktemp -d /var/tmp/ckpt-disturb.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
nas="tcp://127.0.0.1:$(port)"; mgr="tcp://127.0.0.1:$(port)"
"$build/services/nas/ckpt-nas" --listen "$nas" --data "$work/nas" --map-size 4G --keep 100 \
	--log-level warn 2>>"$work/nas.log" &
pids+=($!)
"$build/services/manager/ckpt-manager" --listen "$mgr" --events "tcp://127.0.0.1:$(port)" \
	--nas "$nas" --log-level warn 2>>"$work/mgr.log" &
pids+=($!)
ctl() { "$build/clients/ckptctl/ckptctl" --manager "$mgr" "$@"; }
for _ in $(seq 100); do ctl nodes >/dev/null 2>&1 && break; sleep 0.1; done

lat() { "$build/bench/bench_latency" "$secs" 1000 $fifo; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
echo "# $(nproc) CPUs, $(uname -r); task: 1 ms period, ${secs} s per case${fifo:+, SCHED_FIFO}; component $bytes every 1000 ms"
printf '%-10s %9s %9s %9s %7s %7s %9s %9s %6s\n' case p50_us p99_us max_us p99_x max_x \
	gap_p50 gap_p99 ckpts
base=$(lat)
b99=$(echo "$base" | field p99_us); bmax=$(echo "$base" | field max_us)
printf '%-10s %9s %9s %9s %7s %7s %9s %9s %6s\n' baseline "$(echo "$base" | field p50_us)" \
	"$b99" "$bmax" 1.00 1.00 - - -

run_case() {
	local name=$1 node; shift
	node="n-$name"; node=${node//+/-}
	"$build/services/agent/ckpt-agent" --node "$node" --manager "$mgr" \
		--listen "tcp://127.0.0.1:$(port)" --demo "big:$bytes" --fresh --interval-ms 1000 \
		--log-level warn "$@" 2>>"$work/$node.log" &
	local apid=$!
	pids+=("$apid")
	# The first checkpoint uploads everything: measure from the second on.
	for _ in $(seq 600); do
		[ "$(ctl --json ls "$node/big" 2>/dev/null | jq length)" -ge 2 ] && break
		sleep 0.1
	done
	local t0 t1 r
	t0=$(date +%s%3N)
	r=$(lat)
	t1=$(date +%s%3N)
	kill "$apid"; wait "$apid" 2>/dev/null || true
	ctl --json ls "$node/big" | jq -r --argjson a "$t0" --argjson b "$t1" \
		'[.[] | select(.created_unix_ms >= $a and .created_unix_ms <= $b) | .created_unix_ms] | sort | .[]' \
		>"$work/$node.times"
	local gaps
	gaps=$(awk 'NR > 1 { print $1 - p } { p = $1 }' "$work/$node.times" | sort -n |
		awk '{ a[NR] = $1 } END { if (NR == 0) print "- -"; else printf "%d %d\n", a[int((NR + 1) / 2)], a[int(NR * 0.99 + 0.999)] }')
	local p99 mx
	p99=$(echo "$r" | field p99_us); mx=$(echo "$r" | field max_us)
	printf '%-10s %9s %9s %9s %7.2f %7.2f %9s %9s %6s\n' "$name" "$(echo "$r" | field p50_us)" \
		"$p99" "$mx" "$(awk -v a="$p99" -v b="$b99" 'BEGIN { print a / b }')" \
		"$(awk -v a="$mx" -v b="$bmax" 'BEGIN { print a / b }')" $gaps \
		"$(wc -l <"$work/$node.times")"
}
run_case nice
run_case batch --ckpt-sched batch
run_case idle --ckpt-sched idle
run_case idle+rate --ckpt-sched idle --upload-rate 16M
base=$(lat)
printf '%-10s %9s %9s %9s %7.2f %7.2f %9s %9s %6s\n' baseline2 "$(echo "$base" | field p50_us)" \
	"$(echo "$base" | field p99_us)" "$(echo "$base" | field max_us)" \
	"$(awk -v a="$(echo "$base" | field p99_us)" -v b="$b99" 'BEGIN { print a / b }')" \
	"$(awk -v a="$(echo "$base" | field max_us)" -v b="$bmax" 'BEGIN { print a / b }')" - - -
echo "# gap_*: ms between stored checkpoints of the component (interval 1000 ms); x: against the first baseline"
