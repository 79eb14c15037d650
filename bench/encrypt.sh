#!/usr/bin/env bash
# The cost of encryption at rest (ckpt-nas --encrypt-key): full durable store
# and restore of W1 (64 MiB random) and W2 (64 MiB memory image) to a NAS
# without and with a key, in the same run on the same disk, alternating which
# goes first; prints medians and the ratio (with / without). Each store goes
# to a fresh data folder; restores read the warm store and are checked byte
# for byte. Not a test: it asserts nothing but the bytes read back.
#
#   bash bench/encrypt.sh
#
# Environment: CKPT_BUILD (default build-bench, a release build made here),
# CKPT_BENCH_RUNS (default 5), CKPT_WORKLOADS (default bench/workloads.py),
# CKPT_BENCH_DIR (work folder on the disk to measure; default under /var/tmp).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${CKPT_BUILD:-build-bench}
[ -f "$build/build.ninja" ] || meson setup "$build" --buildtype=release >/dev/null
ninja -C "$build" services/nas/ckpt-nas clients/ckptctl/ckptctl >/dev/null
NAS_BIN="$build/services/nas/ckpt-nas"
CTL_BIN="$build/clients/ckptctl/ckptctl"
runs=${CKPT_BENCH_RUNS:-5}
work=${CKPT_BENCH_DIR:-$(mktemp -d /var/tmp/ckpt-encrypt.XXXXXX)}
mkdir -p "$work"
nas_pid=""
cleanup() {
	[ -z "$nas_pid" ] || { kill "$nas_pid" 2>/dev/null; wait "$nas_pid" 2>/dev/null || true; }
	[ -n "${CKPT_BENCH_DIR:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
python3 "${CKPT_WORKLOADS:-$top/bench/workloads.py}" "$work/w" >/dev/null
(umask 077; openssl rand -hex 32 >"$work/key")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
url="tcp://127.0.0.1:$port"
now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mbps() { awk -v b="$1" -v ns="$2" 'BEGIN {printf "%.0f", b / 1048576 / (ns / 1e9)}'; }
ms() { awk -v ns="$1" 'BEGIN {printf "%.0f", ns / 1e6}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
start_nas() { # DIR [ARGS...]
	local d=$1; shift
	"$NAS_BIN" --listen "$url" --data "$d" --map-size 1G --keep 100 --log-level warn "$@" \
		2>>"$work/nas.log" &
	nas_pid=$!
	for _ in $(seq 100); do "$CTL_BIN" --nas "$url" stat >/dev/null 2>&1 && return; sleep 0.05; done
	echo "ckpt-nas did not start" >&2; exit 1
}
stop_nas() { kill "$nas_pid"; wait "$nas_pid" 2>/dev/null || true; nas_pid=""; }
# CPU time (user + system) of the NAS so far, in ms: steadier than wall time
# on a loaded machine.
nas_cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%d", ($14 + $15) * 1000 / hz}' "/proc/$nas_pid/stat"; }
# One round for a mode: a full store into a fresh folder, then a timed restore.
round() { # MODE FILE -> "put_ns get_ns put_cpu_ms get_cpu_ms"
	local mode=$1 f=$2 d="$work/nas-$RANDOM" t0 t1 t2 t3 c0 c1 c2 c3 args=()
	[ "$mode" = plain ] || args=(--encrypt-key "$work/key")
	start_nas "$d" "${args[@]}"; sync
	c0=$(nas_cpu)
	t0=$(now); "$CTL_BIN" --nas "$url" put n/c -i "$f" >/dev/null; t1=$(now)
	c1=$(nas_cpu)
	"$CTL_BIN" --nas "$url" get n/c -o "$work/back"
	cmp -s "$f" "$work/back" || { echo "the $mode restore differs" >&2; exit 1; }
	c2=$(nas_cpu)
	t2=$(now); "$CTL_BIN" --nas "$url" get n/c >/dev/null; t3=$(now)
	c3=$(nas_cpu)
	stop_nas; rm -rf "$d" "$work/back"
	echo "$((t1 - t0)) $((t3 - t2)) $((c1 - c0)) $((c3 - c2))"
}
declare -A R
for w in W1 W2; do
	: >"$work/plain.$w"; : >"$work/sealed.$w"
	for i in $(seq "$runs"); do
		if [ $((i % 2)) -eq 1 ]; then order="plain sealed"; else order="sealed plain"; fi
		for m in $order; do round "$m" "$work/w/$w" >>"$work/$m.$w"; done
	done
	for m in plain sealed; do
		R[$m.$w.put]=$(awk '{print $1}' "$work/$m.$w" | median)
		R[$m.$w.get]=$(awk '{print $2}' "$work/$m.$w" | median)
		R[$m.$w.putcpu]=$(awk '{print $3}' "$work/$m.$w" | median)
		R[$m.$w.getcpu]=$(awk '{print $4}' "$work/$m.$w" | median)
	done
done
S=$(stat -c %s "$work/w/W1")
echo
echo "ckpt encryption at rest ($(date -u +%F), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $runs runs, median)"
echo
printf '%-28s %16s %16s %8s\n' "measure" "without key" "with key" "ratio"
for w in W1 W2; do
	for op in put get; do
		printf '%-28s %8s ms %4s MB/s %6s ms %4s MB/s %8s\n' "$w $([ $op = put ] && echo "store (durable)" || echo "restore (verified)")" \
			"$(ms "${R[plain.$w.$op]}")" "$(mbps "$S" "${R[plain.$w.$op]}")" \
			"$(ms "${R[sealed.$w.$op]}")" "$(mbps "$S" "${R[sealed.$w.$op]}")" \
			"$(ratio "${R[sealed.$w.$op]}" "${R[plain.$w.$op]}")"
		printf '%-28s %11s ms %14s ms %8s\n' "  ckpt-nas CPU" "${R[plain.$w.${op}cpu]}" \
			"${R[sealed.$w.${op}cpu]}" "$(ratio "${R[sealed.$w.${op}cpu]}" "${R[plain.$w.${op}cpu]}")"
	done
done
echo
echo "AES-256-GCM on this machine (openssl speed, 16 KiB blocks, one core):"
openssl speed -evp aes-256-gcm -bytes 16384 -seconds 1 2>/dev/null | tail -1
