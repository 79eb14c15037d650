#!/usr/bin/env bash
# What TLS costs, measured against plain tcp:// in the same run (not a test:
# it asserts nothing, it prints a table).
#
#   bash bench/tls.sh
#
# Store and restore: ckptctl put and get of W1 (64 MiB random, from
# bench/workloads.py; CKPT_WORKLOADS=PATH for another generator) to a NAS on
# 127.0.0.1, plain tcp:// and tls+tcp:// (mutual, deploy/certs.sh
# certificates) alternating run by run; each put goes to an empty store (a
# fresh NAS), so every chunk travels; each get follows its put. Wall time of
# the ckptctl process, so its start (and with TLS the reading of its
# certificates) is included.
# Handshake: bench_handshake's new connection up to its first reply (open
# with an immediate dial, then one Nas.Stat), against each NAS.
# Medians of CKPT_BENCH_RUNS runs (default 5; handshakes: 20 per run).
# Environment: CKPT_BUILD (default build-bench, a release build made here),
# CKPT_BENCH_DIR (work folder, default a new one under /var/tmp).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

build=${CKPT_BUILD:-build-bench}
[ -f "$build/build.ninja" ] || meson setup "$build" --buildtype=release >/dev/null
ninja -C "$build" services/nas/ckpt-nas clients/ckptctl/ckptctl bench/bench_handshake >/dev/null
NAS_BIN="$build/services/nas/ckpt-nas"
CTL_BIN="$build/clients/ckptctl/ckptctl"
HS_BIN="$build/bench/bench_handshake"

work=${CKPT_BENCH_DIR:-$(mktemp -d /var/tmp/ckpt-bench-tls.XXXXXX)}
mkdir -p "$work"
nas_pid=""
cleanup() {
	[ -z "$nas_pid" ] || { kill "$nas_pid" 2>/dev/null; wait "$nas_pid" 2>/dev/null; } || true
	[ -n "${CKPT_BENCH_DIR:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
runs=${CKPT_BENCH_RUNS:-5}
wl=${CKPT_WORKLOADS:-$top/bench/workloads.py}
python3 "$wl" "$work/w" >/dev/null
W1="$work/w/W1"
bash deploy/certs.sh -o "$work/certs" >/dev/null
C="$work/certs"
now() { date +%s%N; }
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms() { awk -v ns="$1" 'BEGIN {printf "%.0f", ns / 1e6}'; }
mbps() { awk -v b="$1" -v ns="$2" 'BEGIN {printf "%.0f", b / 1048576 / (ns / 1e9)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

# flags MODE WHO: the TLS settings of WHO (nas, operator) in MODE (plain, tls).
flags() { [ "$1" = tls ] && echo "--tls-ca $C/ca.crt --tls-cert $C/$2.crt --tls-key $C/$2.key" || true; }

# start_nas MODE: a NAS with an empty store; sets URL.
start_nas() {
	local scheme=tcp port
	[ "$1" = tls ] && scheme=tls+tcp
	port=$(free_port)
	URL="$scheme://127.0.0.1:$port"
	rm -rf "$work/nas"
	# shellcheck disable=SC2046
	"$NAS_BIN" --listen "$URL" --data "$work/nas" --map-size 1G --log-level warn \
		$(flags "$1" nas) 2>>"$work/nas.log" &
	nas_pid=$!
	for _ in $(seq 200); do
		# shellcheck disable=SC2046
		"$CTL_BIN" $(flags "$1" operator) --nas "$URL" stat >/dev/null 2>&1 && return
		sleep 0.05
	done
	echo "bench/tls.sh: the NAS did not start (see $work/nas.log)" >&2
	exit 1
}
stop_nas() { kill "$nas_pid"; wait "$nas_pid" 2>/dev/null || true; nas_pid=""; }

# one MODE: a put and a get of W1 and the handshakes, appended to MODE.* files.
one() {
	local mode=$1 t0 t1 t2
	start_nas "$mode"
	# shellcheck disable=SC2046
	{
		t0=$(now)
		"$CTL_BIN" $(flags "$mode" operator) --nas "$URL" put bench/w1 -i "$W1" >/dev/null
		t1=$(now)
		"$CTL_BIN" $(flags "$mode" operator) --nas "$URL" get bench/w1 -o "$work/back"
		t2=$(now)
	}
	cmp -s "$W1" "$work/back" || { echo "bench/tls.sh: W1 came back different ($mode)" >&2; exit 1; }
	echo $((t1 - t0)) >>"$work/$mode.put"
	echo $((t2 - t1)) >>"$work/$mode.get"
	# shellcheck disable=SC2046
	"$HS_BIN" "$URL" 20 $([ "$mode" = tls ] && echo "$C/ca.crt $C/operator.crt $C/operator.key") \
		>>"$work/$mode.hs"
	stop_nas
}

echo "# bench/tls.sh: W1 ($(($(stat -c %s "$W1") >> 20)) MiB random), $runs runs each," \
	"plain and TLS alternating; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq "$runs"); do one plain; one tls; done
size=$(stat -c %s "$W1")
hs() { # MODE COLUMN: median microseconds
	awk -v c="$2" '{print $c}' "$work/$1.hs" | median
}
printf '%-34s %12s %12s %8s\n' "" "plain tcp" "TLS" "TLS/plain"
for op in put get; do
	p=$(median <"$work/plain.$op") t=$(median <"$work/tls.$op")
	what="store (ckptctl put), ms"; [ "$op" = get ] && what="restore (ckptctl get), ms"
	printf '%-34s %12s %12s %8s\n' "$what" "$(ms "$p")" "$(ms "$t")" "$(ratio "$t" "$p")"
	printf '%-34s %12s %12s\n' "  MiB/s" "$(mbps "$size" "$p")" "$(mbps "$size" "$t")"
done
printf '%-34s %12s %12s %8s\n' "connect (open, dial now), us" "$(hs plain 1)" "$(hs tls 1)" \
	"$(ratio "$(hs tls 1)" "$(hs plain 1)")"
printf '%-34s %12s %12s %8s\n' "connect + first reply, us" "$(hs plain 3)" "$(hs tls 3)" \
	"$(ratio "$(hs tls 3)" "$(hs plain 3)")"
echo "# medians; TLS is nng 1.5.2 over mbedTLS 2.28 (TLS 1.2, ECDHE-ECDSA P-256 certificates)"
