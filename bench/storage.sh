#!/usr/bin/env bash
# Storage benchmark of ckpt-nas, with every comparison measured in the same run
# on the same disk (not a test: it asserts nothing, it prints a table).
#
#   bash bench/storage.sh
#
# Workloads from bench/workloads.py (override: CKPT_WORKLOADS=PATH):
#   W1 64 MiB random, W2 64 MiB memory image (4 KiB pages, half zero),
#   W3 = W2 with 1% of its pages rewritten (the next checkpoint).
# Measures: full durable store of W1 and W2 (ckptctl put to a NAS on
# 127.0.0.1) against `dd bs=4M conv=fsync` of the same bytes to the same disk;
# the incremental store of W3 after W2 (bytes sent, time, disk growth as the
# end of the LMDB data and as its live pages, as fractions of W2's full
# store; both puts with --cache, the base cache; then again, on a NAS of its
# own, with the W3 put given the workload's dirty pages: --changed W3.dirty);
# restore throughput from a warm store; and
# rsync (daemon on 127.0.0.1, delta transfer, --fsync) and restic (local
# repository) on W2 then W3.
# CPU seconds per GiB of every store and restore, writer (ckptctl) and NAS
# apart (getrusage of ckptctl; utime + stime of ckpt-nas from /proc), and the
# 1-minute load average beside each figure: the machine may be shared.
# Every target of issue 10 is printed beside its baseline and whether it was
# met in this run.
# Environment: CKPT_BENCH_DIR (work folder on the disk to measure; default a
# new folder under /var/tmp), CKPT_BUILD (default build-bench, a release
# build made here), CKPT_BENCH_RUNS (default 3: each timing is the median).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

# ---- install (this script's own needs; not part of CI) ----
# CKPT_BENCH_OTHERS=0 leaves rsync and restic out (ckpt's own targets only).
others=${CKPT_BENCH_OTHERS:-1}
need=()
for p in jq python3; do command -v "$p" >/dev/null || need+=("$p"); done
command -v mdb_stat >/dev/null || need+=(lmdb-utils)
if [ "$others" = 1 ]; then
	for p in rsync restic; do command -v "$p" >/dev/null || need+=("$p"); done
fi
if [ ${#need[@]} -gt 0 ]; then
	sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get install -y "${need[@]}" >/dev/null
fi
bash deploy/local/deps.sh >/dev/null

# ---- build ----
build=${CKPT_BUILD:-build-bench}
[ -f "$build/build.ninja" ] || meson setup "$build" --buildtype=release >/dev/null
ninja -C "$build" services/nas/ckpt-nas clients/ckptctl/ckptctl bench/bench_hints >/dev/null
NAS_BIN="$build/services/nas/ckpt-nas"
CTL_BIN="$build/clients/ckptctl/ckptctl"

work=${CKPT_BENCH_DIR:-$(mktemp -d /var/tmp/ckpt-bench.XXXXXX)}
mkdir -p "$work"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ -n "${CKPT_BENCH_DIR:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
runs=${CKPT_BENCH_RUNS:-3}
wl=${CKPT_WORKLOADS:-$top/bench/workloads.py}
python3 "$wl" "$work/w" >/dev/null
MiB=$((1 << 20))
size() { stat -c %s "$1"; }
now() { date +%s%N; }
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mbps() { awk -v b="$1" -v ns="$2" 'BEGIN {printf "%.0f", b / 1048576 / (ns / 1e9)}'; }
ms() { awk -v ns="$1" 'BEGIN {printf "%.0f", ns / 1e6}'; }
frac() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f%%", 100 * a / b}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
load() { cut -d' ' -f1 /proc/loadavg; }
tck=$(getconf CLK_TCK)
# CPU ns (user + system) a process used so far.
cpu_ns() { awk -v t="$tck" '{printf "%.0f", ($14 + $15) * 1e9 / t}' "/proc/$1/stat"; }
# cpu_run FILE COMMAND...: runs it, its stdout as given; writes to FILE its CPU
# ns and its wall-clock ns, both measured around the command alone: python3
# may be a pyenv shim that takes 300 ms to start, which a timer outside this
# wrapper would count as ckpt's.
cpu_run() {
	local f=$1; shift
	python3 -c '
import os, sys, time
t0 = time.monotonic_ns()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, st, ru = os.wait4(pid, 0)
t1 = time.monotonic_ns()
open(sys.argv[1], "w").write("%d %d\n" % (int((ru.ru_utime + ru.ru_stime) * 1e9), t1 - t0))
sys.exit(os.waitstatus_to_exitcode(st))' "$f" "$@"
}
cpu_of() { cut -d' ' -f1 "$1"; }
wall_of() { cut -d' ' -f2 "$1"; }
# CPU seconds per GiB: ns of CPU for bytes.
spg() { awk -v ns="$1" -v b="$2" 'BEGIN {printf "%.2f", ns / 1e9 / (b / 1073741824)}'; }
# met VALUE OP LIMIT: "yes" or "NO".
met() { awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN {ok = op == "<=" ? v <= l : v >= l; print ok ? "yes" : "NO"}'; }

# ---- dd conv=fsync of the same bytes to the same disk ----
dd_ns() { # FILE
	local t0 t1
	rm -f "$work/dd.out"; sync
	t0=$(now); dd if="$1" of="$work/dd.out" bs=4M conv=fsync status=none; t1=$(now)
	rm -f "$work/dd.out"
	echo $((t1 - t0))
}

# ---- ckpt ----
nas_port=$(free_port)
NAS_URL="tcp://127.0.0.1:$nas_port"
start_nas() { # DIR
	"$NAS_BIN" --listen "$NAS_URL" --data "$1" --map-size 1G --keep 100 --log-level warn \
		2>>"$work/nas.log" &
	nas_pid=$!
	pids+=("$nas_pid")
	for _ in $(seq 100); do "$CTL_BIN" --nas "$NAS_URL" stat >/dev/null 2>&1 && return; sleep 0.05; done
	echo "ckpt-nas did not start" >&2; exit 1
}
stop_nas() { kill "$nas_pid"; wait "$nas_pid" 2>/dev/null || true; }
ctl() { "$CTL_BIN" --nas "$NAS_URL" "$@"; }
map_used() { ctl --json stat | jq .map_used; }
# Bytes of the LMDB pages in use in DIR less its free pages (mdb_stat, lmdb-utils):
# the live data. map_used is the end of the data, free pages inside it
# included: a commit that fills the pages earlier commits freed moves the end
# less than it adds live pages, so the end's growth depends on how many free
# pages the previous puts happened to leave (docs/benchmarks.md, growth).
live_used() { # DIR
	mdb_stat -ef "$1" | awk '/Page size/ {s = $3} /Number of pages used/ {u = $5}
		/Free pages/ {f = $3} END {print (u - f) * s}'
}
# Full store of FILE into a fresh NAS: prints ns, sent bytes, disk growth,
# writer CPU ns, NAS CPU ns, load.
ckpt_full() { # FILE NAME
	local d="$work/nas-$2-$RANDOM" t0 t1 u0 out n0 n1
	start_nas "$d"; sync
	u0=$(map_used)
	n0=$(cpu_ns "$nas_pid")
	out=$(cpu_run "$work/cpu" "$CTL_BIN" --nas "$NAS_URL" --json put "n/$2" -i "$1")
	n1=$(cpu_ns "$nas_pid")
	echo "$(wall_of "$work/cpu") $(jq .sent_bytes <<<"$out") $(( $(map_used) - u0 )) $(cpu_of "$work/cpu") $((n1 - n0)) $(load)"
	stop_nas; rm -rf "$d"
}

declare -A R
for w in W1 W2; do
	f="$work/w/$w"
	R[$w.size]=$(size "$f")
	R[$w.dd]=$(for _ in $(seq "$runs"); do dd_ns "$f"; done | median)
	for i in $(seq "$runs"); do ckpt_full "$f" "$(tr A-Z a-z <<<"$w")"; done >"$work/full.$w"
	R[$w.put]=$(awk '{print $1}' "$work/full.$w" | median)
	R[$w.put_sent]=$(awk 'NR==1 {print $2}' "$work/full.$w")
	R[$w.put_disk]=$(awk 'NR==1 {print $3}' "$work/full.$w")
	R[$w.put_wcpu]=$(awk '{print $4}' "$work/full.$w" | median)
	R[$w.put_ncpu]=$(awk '{print $5}' "$work/full.$w" | median)
	R[$w.put_load]=$(awk '{print $6}' "$work/full.$w" | median)
	R[$w.dd_load]=$(load)
done

# Incremental with change hints: W2 then W3 into a NAS of its own, the W3 put
# given the pages the workload rewrote (put --cache --changed W3.dirty): only
# the chunks around them are read, cut and hashed.
d="$work/nas-hint"
start_nas "$d"
ctl put n/mem -i "$work/w/W2" --cache "$work/bcache-hint" >/dev/null
u0=$(map_used); l0=$(live_used "$d")
n0=$(cpu_ns "$nas_pid")
out=$(cpu_run "$work/cpu" "$CTL_BIN" --nas "$NAS_URL" --json put n/mem -i "$work/w/W3" \
	--cache "$work/bcache-hint" --changed "$work/w/W3.dirty")
[ "$(jq -r .changed <<<"$out")" = used ] || echo "warning: the hinted put did not use its ranges" >&2
R[W3h.put_ncpu]=$(( $(cpu_ns "$nas_pid") - n0 ))
R[W3h.put_wcpu]=$(cpu_of "$work/cpu")
R[W3h.put_load]=$(load)
R[W3h.put]=$(wall_of "$work/cpu")
R[W3h.sent]=$(jq .sent_bytes <<<"$out")
R[W3h.hashed]=$(jq .hashed_bytes <<<"$out")
R[W3h.disk]=$(( $(map_used) - u0 ))
R[W3h.live]=$(( $(live_used "$d") - l0 ))
stop_nas; rm -rf "$d"

# Incremental: W2 then W3 into the same NAS; then restores from the warm store.
d="$work/nas-inc"
start_nas "$d"
ctl put n/w1 -i "$work/w/W1" >/dev/null
# W2 then W3 with a base cache (put --cache, a fresh folder): the W3 put
# fingerprints W2's list and cuts and hashes only around the changed pages.
# The full-store rows above run without one (a cold, whole store).
ctl put n/mem -i "$work/w/W2" --cache "$work/bcache" >/dev/null
u0=$(map_used); l0=$(live_used "$d"); c0=$(ctl --json stat | jq .chunk_bytes)
n0=$(cpu_ns "$nas_pid")
out=$(cpu_run "$work/cpu" "$CTL_BIN" --nas "$NAS_URL" --json put n/mem -i "$work/w/W3" \
	--cache "$work/bcache")
R[W3.reused]=$(jq .reused_bytes <<<"$out")
R[W3.hashed]=$(jq .hashed_bytes <<<"$out")
R[W3.put_ncpu]=$(( $(cpu_ns "$nas_pid") - n0 ))
R[W3.put_wcpu]=$(cpu_of "$work/cpu")
R[W3.put_load]=$(load)
R[W3.put]=$(wall_of "$work/cpu")
R[W3.sent]=$(jq .sent_bytes <<<"$out")
R[W3.disk]=$(( $(map_used) - u0 ))
R[W3.live]=$(( $(live_used "$d") - l0 ))
R[W3.chunks]=$(( $(ctl --json stat | jq .chunk_bytes) - c0 ))
# restore NAME REF: median ns, reader CPU ns and NAS CPU ns of the runs, in R.
restore() {
	local n0
	ctl get "$2" >/dev/null # warm
	for _ in $(seq "$runs"); do
		n0=$(cpu_ns "$nas_pid")
		cpu_run "$work/cpu" "$CTL_BIN" --nas "$NAS_URL" get "$2" >/dev/null
		echo "$(wall_of "$work/cpu") $(cpu_of "$work/cpu") $(( $(cpu_ns "$nas_pid") - n0 )) $(load)"
	done >"$work/get.$1"
	R[$1.get]=$(awk '{print $1}' "$work/get.$1" | median)
	R[$1.get_wcpu]=$(awk '{print $2}' "$work/get.$1" | median)
	R[$1.get_ncpu]=$(awk '{print $3}' "$work/get.$1" | median)
	R[$1.get_load]=$(awk '{print $4}' "$work/get.$1" | median)
}
restore W1 n/w1@1
restore W2 n/mem@1
restore W3 n/mem@2
# The restores' baseline: reading the same bytes from the page cache (warm).
cat_ns() { local t0 t1; t0=$(now); cat "$1" >/dev/null; t1=$(now); echo $((t1 - t0)); }
for w in W1 W2 W3; do
	cat "$work/w/$w" >/dev/null
	R[$w.cat]=$(for _ in $(seq "$runs"); do cat_ns "$work/w/$w"; done | median)
done
R[W3.size]=$(size "$work/w/W3")
stop_nas

# The same incremental in a long-lived writer, the agent's data path (the
# process is the writer and the NAS; no process start, no cache file): W2 in
# full, then W3 from W3.dirty's pages and without hints (fingerprints), on
# this disk. Its W3 section is printed below the table.
TMPDIR="$work" "$build/bench/bench_hints" "$work/w/W2" "$work/w/W3" "$work/w/W3.dirty" \
	>"$work/hints.out" 2>&1 || echo "warning: bench_hints failed: $(tail -1 "$work/hints.out")" >&2
R[hints.load]=$(load)

if [ "$others" = 1 ]; then
# ---- rsync: daemon on 127.0.0.1, delta transfer, durable (--fsync) ----
rs_port=$(free_port)
mkdir -p "$work/rsync/dst" "$work/rsync/src"
cat >"$work/rsync/rsyncd.conf" <<CONF
use chroot = no
uid = $(id -un)
gid = $(id -gn)
[m]
path = $work/rsync/dst
read only = no
CONF
rsync --daemon --no-detach --address=127.0.0.1 --port="$rs_port" \
	--config="$work/rsync/rsyncd.conf" --log-file="$work/rsync/log" &
pids+=("$!")
sleep 0.5
rsync_put() { # FILE: prints ns and bytes sent
	local t0 t1 out
	cp "$1" "$work/rsync/src/img"
	t0=$(now)
	out=$(rsync --fsync --ignore-times --no-whole-file --inplace --stats "$work/rsync/src/img" \
		"rsync://127.0.0.1:$rs_port/m/img")
	t1=$(now)
	echo "$((t1 - t0)) $(awk -F: '/Total bytes sent/ {gsub(/[ ,]/, "", $2); print $2}' <<<"$out")"
}
read -r R[rs.W2] R[rs.W2.sent] < <(rsync_put "$work/w/W2")
read -r R[rs.W3] R[rs.W3.sent] < <(rsync_put "$work/w/W3")
t0=$(now); rsync "rsync://127.0.0.1:$rs_port/m/img" "$work/rsync/back"; t1=$(now)
R[rs.get]=$((t1 - t0))

# ---- restic: local repository ----
export RESTIC_PASSWORD=bench RESTIC_REPOSITORY="$work/restic/repo"
mkdir -p "$work/restic/src"
restic init >/dev/null
restic_put() { # FILE: prints ns and bytes added
	local t0 t1 out
	cp "$1" "$work/restic/src/img"
	t0=$(now); out=$(restic backup --json "$work/restic/src" | jq -c 'select(.message_type == "summary")'); t1=$(now)
	echo "$((t1 - t0)) $(jq '.data_added' <<<"$out")"
}
read -r R[rc.W2] R[rc.W2.sent] < <(restic_put "$work/w/W2")
read -r R[rc.W3] R[rc.W3.sent] < <(restic_put "$work/w/W3")
t0=$(now); restic restore latest --target "$work/restic/back" >/dev/null; t1=$(now)
R[rc.get]=$((t1 - t0))

fi

# ---- table ----
S=${R[W2.size]}
echo
echo "ckpt storage benchmark ($(date -u +%F), $(nproc) CPUs, work folder $work)"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (load: the 1-minute average when each figure was taken)"
echo
row() { printf '%-44s %13s %13s %7s %10s %4s %5s\n' "$@"; }
row "measure" "ckpt" "baseline" "ratio" "target" "met" "load"
row "-------" "----" "--------" "-----" "------" "---" "----"
for w in W1 W2; do
	r=$(ratio "${R[$w.dd]}" "${R[$w.put]}")
	row "full durable store $w vs dd conv=fsync" "$(mbps "${R[$w.size]}" "${R[$w.put]}") MB/s" \
		"$(mbps "${R[$w.size]}" "${R[$w.dd]}") MB/s" "$r" ">= 0.50" "$(met "$r" ">=" 0.5)" \
		"${R[$w.put_load]}"
done
row "  W1 bytes sent / disk growth" "$(frac "${R[W1.put_sent]}" "${R[W1.size]}") / $(frac "${R[W1.put_disk]}" "${R[W1.size]}")"
row "  W2 bytes sent / disk growth" "$(frac "${R[W2.put_sent]}" "$S") / $(frac "${R[W2.put_disk]}" "$S")"
r=$(ratio "${R[W3.put]}" "${R[W2.put]}")
row "incremental W3 (fingerprints): time vs W2" "$(ms "${R[W3.put]}") ms" "$(ms "${R[W2.put]}") ms" \
	"$r" "<= 0.10" "$(met "$r" "<=" 0.1)" "${R[W3.put_load]}"
c3=$(( R[W3.put_wcpu] + R[W3.put_ncpu] )); c2=$(( R[W2.put_wcpu] + R[W2.put_ncpu] ))
r=$(ratio "$c3" "$c2")
row "  CPU, writer + NAS, vs full W2" "$(ms "$c3") ms" "$(ms "$c2") ms" "$r" "<= 0.10" \
	"$(met "$r" "<=" 0.1)" "${R[W3.put_load]}"
r=$(awk -v a="${R[W3.sent]}" -v b="$S" 'BEGIN {printf "%.4f", a / b}')
row "  bytes sent (of the image; baseline full W2)" "${R[W3.sent]}" "${R[W2.put_sent]}" \
	"$(frac "${R[W3.sent]}" "$S")" "<= 3%" "$(met "$r" "<=" 0.03)"
r=$(awk -v a="${R[W3.disk]}" -v b="$S" 'BEGIN {printf "%.4f", a / b}')
row "  disk growth: LMDB pages (of the image)" "${R[W3.disk]}" "${R[W2.put_disk]}" \
	"$(frac "${R[W3.disk]}" "$S")" "<= 3%" "$(met "$r" "<=" 0.03)"
row "  disk growth: live pages (used less free)" "${R[W3.live]}" "" "$(frac "${R[W3.live]}" "$S")"
row "  disk growth: chunk bytes (of the image)" "${R[W3.chunks]}" "" "$(frac "${R[W3.chunks]}" "$S")"
row "  SHA-256 hashed / reused by fingerprint" "${R[W3.hashed]}" "${R[W3.reused]}" "$(frac "${R[W3.hashed]}" "$S")"
r=$(ratio "${R[W3h.put]}" "${R[W2.put]}")
row "incremental W3 --changed W3.dirty: time" "$(ms "${R[W3h.put]}") ms" "$(ms "${R[W2.put]}") ms" \
	"$r" "<= 0.10" "$(met "$r" "<=" 0.1)" "${R[W3h.put_load]}"
c3=$(( R[W3h.put_wcpu] + R[W3h.put_ncpu] ))
r=$(ratio "$c3" "$c2")
row "  CPU, writer + NAS, vs full W2" "$(ms "$c3") ms" "$(ms "$c2") ms" "$r" "<= 0.10" \
	"$(met "$r" "<=" 0.1)" "${R[W3h.put_load]}"
r=$(awk -v a="${R[W3h.sent]}" -v b="$S" 'BEGIN {printf "%.4f", a / b}')
row "  bytes sent (of the image; baseline full W2)" "${R[W3h.sent]}" "${R[W2.put_sent]}" \
	"$(frac "${R[W3h.sent]}" "$S")" "<= 3%" "$(met "$r" "<=" 0.03)"
r=$(awk -v a="${R[W3h.disk]}" -v b="$S" 'BEGIN {printf "%.4f", a / b}')
row "  disk growth: LMDB pages (of the image)" "${R[W3h.disk]}" "${R[W2.put_disk]}" \
	"$(frac "${R[W3h.disk]}" "$S")" "<= 3%" "$(met "$r" "<=" 0.03)"
row "  disk growth: live pages (used less free)" "${R[W3h.live]}" "" "$(frac "${R[W3h.live]}" "$S")"
row "  SHA-256 hashed" "${R[W3h.hashed]}" "" "$(frac "${R[W3h.hashed]}" "$S")"
for w in W1 W2 W3; do
	z=${R[$w.size]}
	g=$(awk -v b="$z" -v ns="${R[$w.get]}" 'BEGIN {printf "%.2f", b / ns}')
	row "restore $w (warm store, verified)" "$(mbps "$z" "${R[$w.get]}") MB/s" \
		"$(mbps "$z" "${R[$w.cat]}") MB/s" "$(ratio "${R[$w.cat]}" "${R[$w.get]}")" \
		">= 1 GB/s" "$(met "$g" ">=" 1)" "${R[$w.get_load]}"
done
echo "  (restore baseline: cat of the same file from the page cache; MB/s are MiB/s, 1 GB/s = 954 MiB/s)"
echo
printf '%-44s %13s %13s %5s\n' "CPU seconds per GiB" "writer" "NAS" "load"
printf '%-44s %13s %13s %5s\n' "-------------------" "------" "---" "----"
for w in W1 W2; do
	printf '%-44s %13s %13s %5s\n' "full store $w" "$(spg "${R[$w.put_wcpu]}" "${R[$w.size]}")" \
		"$(spg "${R[$w.put_ncpu]}" "${R[$w.size]}")" "${R[$w.put_load]}"
done
printf '%-44s %13s %13s %5s\n' "incremental store W3 (per GiB of the image)" \
	"$(spg "${R[W3.put_wcpu]}" "$S")" "$(spg "${R[W3.put_ncpu]}" "$S")" "${R[W3.put_load]}"
printf '%-44s %13s %13s %5s\n' "incremental W3 --changed (per GiB of image)" \
	"$(spg "${R[W3h.put_wcpu]}" "$S")" "$(spg "${R[W3h.put_ncpu]}" "$S")" "${R[W3h.put_load]}"
for w in W1 W2 W3; do
	printf '%-44s %13s %13s %5s\n' "restore $w" "$(spg "${R[$w.get_wcpu]}" "${R[$w.size]}")" \
		"$(spg "${R[$w.get_ncpu]}" "${R[$w.size]}")" "${R[$w.get_load]}"
done
echo
echo "Incremental W3 after W2 in a long-lived writer (bench/hints.c: the agent's data path, the"
echo "NAS in the same process, so its CPU is writer + NAS; load ${R[hints.load]}):"
sed -n '/^W3 after W2/,$p' "$work/hints.out" | sed 's/^/  /'
[ "$others" = 1 ] || exit 0
echo
printf '%-42s %12s %12s %12s\n' "W2 then W3 side by side" "ckpt" "rsync" "restic"
printf '%-42s %12s %12s %12s\n' "-----------------------" "----" "-----" "------"
printf '%-42s %9s ms %9s ms %9s ms\n' "full W2: time" "$(ms "${R[W2.put]}")" "$(ms "${R[rs.W2]}")" "$(ms "${R[rc.W2]}")"
printf '%-42s %12s %12s %12s\n' "full W2: bytes sent / added" "${R[W2.put_sent]}" "${R[rs.W2.sent]}" "${R[rc.W2.sent]}"
printf '%-42s %9s ms %9s ms %9s ms\n' "incremental W3: time" "$(ms "${R[W3.put]}")" "$(ms "${R[rs.W3]}")" "$(ms "${R[rc.W3]}")"
printf '%-42s %12s %12s %12s\n' "incremental W3: bytes sent / added" "${R[W3.sent]}" "${R[rs.W3.sent]}" "${R[rc.W3.sent]}"
printf '%-42s %9s ms %9s ms %9s ms\n' "restore of the latest (W3)" "$(ms "${R[W3.get]}")" "$(ms "${R[rs.get]}")" "$(ms "${R[rc.get]}")"
