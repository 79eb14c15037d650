#!/usr/bin/env bash
# Many agents, one NAS, against Redis on the same disk in the same run.
# K writers (threads, each with its own connection) store small checkpoints
# of workload W4 (4 KiB each) as separate components, every store durable
# before it is acknowledged; Redis (Debian's redis-server, appendonly yes,
# appendfsync always: every write fdatasync'ed before the reply) takes
# `redis-benchmark -t set -d 4096` from K clients. For each K it prints
# checkpoints/s with small checkpoints inline (one round trip, one commit),
# the same on the normal path (HaveChunks, PutChunks, Store: what main did),
# Redis's SETs/s and the ratio ckpt/Redis, with the NAS's write transactions
# per checkpoint and the CPU per inline checkpoint of the NAS (/proc, in 10 ms
# ticks) and of the writers (their process, getrusage). First, the sync floor of the disk (bench/syncfloor.c): one
# writer cannot go faster than one LMDB commit, two syncs, where Redis
# needs one. Not a test.
#
#   bash bench/fleet.sh [CLIENTS...]        (default: 1 16 64)
#
# Environment: CKPT_BUILD (default build-bench, a release build made here),
# CKPT_NAS (another ckpt-nas binary to measure), CKPT_WORKLOADS (default
# bench/workloads.py), CKPT_BENCH_DIR (the folder whose disk is measured;
# default a new folder under /var/tmp), CKPT_FLEET_COUNT (checkpoints per
# row, default 1000 for 1 writer and 4000 for more), CKPT_REDIS=0 to leave
# Redis out (no redis-server installed), CKPT_NAS_WORKERS (ckpt-nas --workers, default 4,
# the NAS's own: a Store no longer holds a worker while its group commits),
# CKPT_FLEET_HTTP=0 to run the NAS without --http (no metrics counted).
# The NAS runs as deployed (deploy/k8s, deploy/systemd): with --http on a free
# port, so every Store is counted in its metrics; the line after the header
# says which. Every checkpoint here is a new component (18,000 in a default
# run), so --metrics-series-max is raised to count them all, as a fleet that
# size would set it: the cost measured is counting, not dropping.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${CKPT_BUILD:-build-bench}
[ -f "$build/build.ninja" ] || meson setup "$build" --buildtype=release >/dev/null
ninja -C "$build" services/nas/ckpt-nas bench/fleet bench/syncfloor clients/ckptctl/ckptctl >/dev/null
nas=${CKPT_NAS:-$build/services/nas/ckpt-nas}
work=${CKPT_BENCH_DIR:-$(mktemp -d /var/tmp/ckpt-fleet.XXXXXX)}
mkdir -p "$work"
use_redis=${CKPT_REDIS:-1}
workers=${CKPT_NAS_WORKERS:-4}
use_http=${CKPT_FLEET_HTTP:-1}
if [ "$use_redis" = 1 ] && ! command -v redis-server >/dev/null; then
	echo "fleet: redis-server not found (apt-get install redis-server redis-tools, or CKPT_REDIS=0)" >&2
	exit 1
fi
nas_pid="" redis_pid=""
cleanup() {
	[ -z "$nas_pid" ] || { kill "$nas_pid" 2>/dev/null; wait "$nas_pid" 2>/dev/null || true; }
	[ -z "$redis_pid" ] || { kill "$redis_pid" 2>/dev/null; wait "$redis_pid" 2>/dev/null || true; }
	[ -n "${CKPT_BENCH_DIR:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
python3 "${CKPT_WORKLOADS:-$top/bench/workloads.py}" "$work/w" >/dev/null
# The workloads just written (about 400 MB) must not be flushed during the sync floor.
sync

port=$(free_port)
url="tcp://127.0.0.1:$port"
# The NAS as deployed (--workers 4): Stores wait for their group without holding a worker;
# metrics on (--http), as deploy/ runs it.
http_args=() nas_mode="NAS without --http (no metrics counted)"
if [ "$use_http" = 1 ]; then
	http_args=(--http "http://127.0.0.1:$(free_port)" --metrics-series-max 1048576)
	nas_mode="NAS with --http (metrics counted, as deployed; --metrics-series-max 1048576: every component)"
fi
"$nas" --listen "$url" --data "$work/nas" --map-size 1G --workers "$workers" --log-level warn \
	"${http_args[@]}" 2>>"$work/nas.log" &
nas_pid=$!
for _ in $(seq 100); do
	"$build/clients/ckptctl/ckptctl" --nas "$url" stat >/dev/null 2>&1 && break
	kill -0 "$nas_pid" 2>/dev/null || { cat "$work/nas.log" >&2; exit 1; }
	sleep 0.05
done

if [ "$use_redis" = 1 ]; then
	rport=$(free_port)
	mkdir -p "$work/redis"
	# Durable as the NAS is: every write in the append-only file, synced before the reply.
	redis-server --bind 127.0.0.1 --port "$rport" --dir "$work/redis" --appendonly yes \
		--appendfsync always --save '' --daemonize no --protected-mode yes \
		--logfile "$work/redis.log" &
	redis_pid=$!
	for _ in $(seq 100); do
		[ "$(redis-cli -h 127.0.0.1 -p "$rport" ping 2>/dev/null)" = PONG ] && break
		kill -0 "$redis_pid" 2>/dev/null || { cat "$work/redis.log" >&2; exit 1; }
		sleep 0.05
	done
fi

# SETs per second from K clients (redis-benchmark --csv: "SET","rps",...).
redis_rate() {
	local k=$1 n=$2
	redis-benchmark -h 127.0.0.1 -p "$rport" -t set -d 4096 -c "$k" -n "$n" --csv 2>/dev/null |
		awk -F'"' '$2 == "SET" { print $4 }'
}
# Checkpoints per second, NAS commits and writer CPU (us) per checkpoint from K writers (fleet's row).
fleet_row() {
	local k=$1 n=$2; shift 2
	"$build/bench/fleet" -n "$n" "$@" "$url" "$work/w/W4" "$k" | awk 'NR == 2 { print $2, $4, $5 }'
}
# The NAS's CPU so far, in clock ticks (user and system, every thread).
nas_ticks() {
	awk '{ print $14 + $15 }' "/proc/$nas_pid/stat"
}

echo "ckpt fleet benchmark ($(date -u +%F' '%H:%M), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), NAS $nas, work folder $work)"
echo "$nas_mode"
"$build/bench/syncfloor" "$work" 1
printf '%-8s %10s %10s %12s %10s %10s %14s %12s %14s\n' clients "ckpt/s" "normal/s" \
	"redis SET/s" "ckpt/redis" "ckpt/normal" "commits/ckpt" "NAS us/ckpt" "writer us/ckpt"
hz=$(getconf CLK_TCK)
for k in "${@:-1 16 64}"; do
	for kk in $k; do
		n=${CKPT_FLEET_COUNT:-$([ "$kk" -eq 1 ] && echo 1000 || echo 4000)}
		t0=$(nas_ticks)
		read -r fast fast_c fast_cpu < <(fleet_row "$kk" "$n")
		t1=$(nas_ticks)
		read -r normal _ < <(fleet_row "$kk" "$n" --normal)
		redis="-"
		[ "$use_redis" = 1 ] && redis=$(redis_rate "$kk" $((n * 4)))
		awk -v k="$kk" -v f="$fast" -v n="$normal" -v r="$redis" -v c="$fast_c" \
		    -v nas=$(((t1 - t0) * 1000000 / hz / n)) -v w="${fast_cpu:--}" 'BEGIN {
			printf "%-8s %10.0f %10.0f %12s %10s %10.2f %14s %12s %14s\n", k, f, n,
			    r == "-" ? "-" : sprintf("%.0f", r), r == "-" ? "-" : sprintf("%.2f", f / r),
			    f / n, c, nas, w }'
	done
done
