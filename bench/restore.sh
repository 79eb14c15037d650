#!/usr/bin/env bash
# Restore throughput alone (the last three lines of bench/storage.sh, in seconds
# instead of minutes): starts ckpt-nas on a free port, stores W1, W2 and W3,
# then times `ckptctl get REF >/dev/null` from the warm store (median of runs).
# Not a test: it asserts nothing but that the bytes read back are the bytes stored.
#
#   bash bench/restore.sh
#
# Environment: CKPT_BUILD (default build-bench, a release build made here),
# CKPT_BENCH_RUNS (default 5), CKPT_WORKLOADS (default bench/workloads.py).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${CKPT_BUILD:-build-bench}
[ -f "$build/build.ninja" ] || meson setup "$build" --buildtype=release >/dev/null
ninja -C "$build" services/nas/ckpt-nas clients/ckptctl/ckptctl >/dev/null
runs=${CKPT_BENCH_RUNS:-5}
work=$(mktemp -d /var/tmp/ckpt-restore.XXXXXX)
nas_pid=""
cleanup() {
	[ -z "$nas_pid" ] || { kill "$nas_pid" 2>/dev/null; wait "$nas_pid" 2>/dev/null || true; }
	rm -rf "$work"
}
trap cleanup EXIT
python3 "${CKPT_WORKLOADS:-$top/bench/workloads.py}" "$work/w" >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
url="tcp://127.0.0.1:$port"
"$build/services/nas/ckpt-nas" --listen "$url" --data "$work/nas" --map-size 1G --keep 100 \
	--log-level warn 2>>"$work/nas.log" &
nas_pid=$!
ctl() { "$build/clients/ckptctl/ckptctl" --nas "$url" "$@"; }
for _ in $(seq 100); do ctl stat >/dev/null 2>&1 && break; sleep 0.05; done
ctl put n/w1 -i "$work/w/W1" >/dev/null
ctl put n/mem -i "$work/w/W2" >/dev/null
ctl put n/mem -i "$work/w/W3" >/dev/null
for pair in n/w1@1:W1 n/mem@1:W2 n/mem@2:W3; do
	ref=${pair%:*} w=${pair#*:}
	ctl get "$ref" | cmp -s - "$work/w/$w" || { echo "$ref: bytes differ from $w" >&2; exit 1; }
	for _ in $(seq "$runs"); do
		t0=$(date +%s%N); ctl get "$ref" >/dev/null; t1=$(date +%s%N); echo $((t1 - t0))
	done | sort -n | awk -v w="$w" -v s="$(stat -c %s "$work/w/$w")" '{a[NR] = $1} END {
		m = a[int((NR + 1) / 2)]
		printf "restore %s (warm store, verified) %6.0f MiB/s  (median %.1f ms of %d)\n", w,
		    s / 1048576 / (m / 1e9), m / 1e6, NR }'
done
