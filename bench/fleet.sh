#!/usr/bin/env bash
# Many agents, one NAS: K writers (threads, each with its own connection)
# store the 1000 small checkpoints of workload W4 (4 KiB each) as separate
# components, every store durable before it is acknowledged. Prints
# checkpoints/s per number of writers, the ratio against the first row
# (measured in the same run), and the NAS's write transactions per
# checkpoint: 2 (PutChunks, Store) when each commits alone, less when
# concurrent writes share a commit (group commit). Not a test.
#
#   bash bench/fleet.sh [WRITERS...]        (default: 1 4 16)
#
# Environment: CKPT_BUILD (default build-bench, a release build made here),
# CKPT_NAS (another ckpt-nas binary to measure, an older build say),
# CKPT_WORKLOADS (default bench/workloads.py), CKPT_BENCH_DIR (the
# folder whose disk is measured; default a new folder under /var/tmp).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${CKPT_BUILD:-build-bench}
[ -f "$build/build.ninja" ] || meson setup "$build" --buildtype=release >/dev/null
ninja -C "$build" services/nas/ckpt-nas bench/fleet >/dev/null
nas=${CKPT_NAS:-$build/services/nas/ckpt-nas}
work=${CKPT_BENCH_DIR:-$(mktemp -d /var/tmp/ckpt-fleet.XXXXXX)}
mkdir -p "$work"
nas_pid=""
cleanup() {
	[ -z "$nas_pid" ] || { kill "$nas_pid" 2>/dev/null; wait "$nas_pid" 2>/dev/null || true; }
	[ -n "${CKPT_BENCH_DIR:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
python3 "${CKPT_WORKLOADS:-$top/bench/workloads.py}" "$work/w" >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
url="tcp://127.0.0.1:$port"
"$nas" --listen "$url" --data "$work/nas" --map-size 1G --log-level warn 2>>"$work/nas.log" &
nas_pid=$!
for _ in $(seq 100); do
	"$build/clients/ckptctl/ckptctl" --nas "$url" stat >/dev/null 2>&1 && break
	kill -0 "$nas_pid" 2>/dev/null || { cat "$work/nas.log" >&2; exit 1; }
	sleep 0.05
done
echo "ckpt fleet benchmark ($(date -u +%F), $(nproc) CPUs, NAS $nas, work folder $work)"
"$build/bench/fleet" "$url" "$work/w/W4" "$@"
