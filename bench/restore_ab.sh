#!/usr/bin/env bash
# Paired A/B of two ckptctl builds restoring W1, W2 and W3 from one warm NAS
# (build A's ckpt-nas): each pair runs A's and B's `ckptctl get REF >/dev/null`
# back to back, which goes first alternating, so that both see the same load
# on a shared machine. Prints, per workload, each build's median and the
# median of the per-pair ratios B/A (below 1: B is faster), and the load.
# Not a test: it asserts nothing but that both builds read back the bytes stored.
#
#   bash bench/restore_ab.sh BUILD_A BUILD_B     (release build folders)
#
# Environment: CKPT_BENCH_PAIRS (default 31), CKPT_WORKLOADS (default bench/workloads.py).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
[ $# -eq 2 ] || { echo "usage: $0 BUILD_A BUILD_B" >&2; exit 2; }
a=$(cd "$1" && pwd) b=$(cd "$2" && pwd)
for d in "$a" "$b"; do
	[ -x "$d/clients/ckptctl/ckptctl" ] || { echo "$d: no clients/ckptctl/ckptctl" >&2; exit 2; }
done
[ -x "$a/services/nas/ckpt-nas" ] || { echo "$a: no services/nas/ckpt-nas" >&2; exit 2; }
pairs=${CKPT_BENCH_PAIRS:-31}
work=$(mktemp -d /var/tmp/ckpt-restore-ab.XXXXXX)
nas_pid=""
cleanup() {
	[ -z "$nas_pid" ] || { kill "$nas_pid" 2>/dev/null; wait "$nas_pid" 2>/dev/null || true; }
	rm -rf "$work"
}
trap cleanup EXIT
python3 "${CKPT_WORKLOADS:-$top/bench/workloads.py}" "$work/w" >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
url="tcp://127.0.0.1:$port"
"$a/services/nas/ckpt-nas" --listen "$url" --data "$work/nas" --map-size 1G --keep 100 \
	--log-level warn 2>>"$work/nas.log" &
nas_pid=$!
ctl() { local d=$1; shift; "$d/clients/ckptctl/ckptctl" --nas "$url" "$@"; }
for _ in $(seq 100); do ctl "$a" stat >/dev/null 2>&1 && break; sleep 0.05; done
ctl "$a" put n/w1 -i "$work/w/W1" >/dev/null
ctl "$a" put n/mem -i "$work/w/W2" >/dev/null
ctl "$a" put n/mem -i "$work/w/W3" >/dev/null
# One get of REF by build d, in nanoseconds.
timed() { local t0 t1; t0=$(date +%s%N); ctl "$1" get "$2" >/dev/null; t1=$(date +%s%N); echo $((t1 - t0)); }
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for pair in n/w1@1:W1 n/mem@1:W2 n/mem@2:W3; do
	ref=${pair%:*} w=${pair#*:}
	for d in "$a" "$b"; do
		ctl "$d" get "$ref" | cmp -s - "$work/w/$w" || { echo "$d: $ref: bytes differ from $w" >&2; exit 1; }
	done
	for i in $(seq "$pairs"); do
		if [ $((i % 2)) = 0 ]; then ta=$(timed "$a" "$ref"); tb=$(timed "$b" "$ref")
		else tb=$(timed "$b" "$ref"); ta=$(timed "$a" "$ref"); fi
		echo "$ta $tb"
	done | awk -v w="$w" -v s="$(stat -c %s "$work/w/$w")" '{ a[NR] = $1; b[NR] = $2; r[NR] = $2 / $1 }
	END {
		n = asort(a); asort(b); asort(r); m = int((n + 1) / 2)
		printf "restore %s: A %4.0f MiB/s (median %.1f ms), B %4.0f MiB/s (median %.1f ms), " \
		    "B/A %.3f (median of %d pairs)\n", w, s / 1048576 / (a[m] / 1e9), a[m] / 1e6,
		    s / 1048576 / (b[m] / 1e9), b[m] / 1e6, r[m], n }'
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
