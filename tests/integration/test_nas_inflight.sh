#!/usr/bin/env bash
# The memory of Stores waiting for their group commit is bounded: 64
# clients over 2 connections send a Store of 4 MiB of inline chunks each,
# all at once (ckpt-storeflood), to a NAS with its default 4 workers. A
# worker defers each Store to its commit and goes back to receiving; the
# NAS defers at most workers x 4 MiB of request bytes (nas.c,
# NAS_DEFER_PER_WORKER), and past that a worker waits for its Store's
# commit and receives nothing meanwhile. Its peak (VmHWM) must grow by
# less than 48 x 4 MiB (192 MiB): what it holds itself is about 18 x 4 MiB
# (each worker's Store, message and decoded copy: 8; the budget's, twice:
# 8; nng's one request read ahead per connection: 2), the rest is room for
# the allocator and LMDB. Without the budget every Store received was
# deferred, its request and its copy held: the peak grew by 380-500 MiB
# (main at 6dae31c, 4 runs, load 4-5). Every Store is answered OK and
# every checkpoint reads back byte for byte. INFLIGHT_N, INFLIGHT_K change
# the numbers.
. "$(dirname "$0")/lib.sh"

FLOOD_BIN="$CKPT_BUILD/tests/integration/ckpt-storeflood"
N=${INFLIGHT_N:-64}
K=${INFLIGHT_K:-2}
BYTES=$((4 << 20))
BOUND=$((48 * BYTES))
NAS_PORT=$(free_port)
NAS_URL="$T_TCP://127.0.0.1:$NAS_PORT"

# hwm PID: the process's peak resident set, in bytes.
hwm() { echo $(( $(awk '$1 == "VmHWM:" {print $2}' "/proc/$1/status") * 1024 )); }
mib() { echo "$(( $1 >> 20 )) MiB"; }

# Under AddressSanitizer freed memory waits in its quarantine (256 MiB by
# default), resident: the NAS runs without one, so that its peak is what it
# holds (an option a build without ASan ignores).
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0" \
	start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
h0=$(hwm "$PID_nas")
"$FLOOD_BIN" "$NAS_URL" "$N" "$BYTES" "$K" >"$T_DIR/flood.out"
rc=$?
check "$N Stores of 4 MiB inline, all at once over $K connections, all answered OK" [ "$rc" -eq 0 ]
tail -1 "$T_DIR/flood.out"
grep '^failed' "$T_DIR/flood.out" | head -3
h1=$(hwm "$PID_nas")
echo "# nas VmHWM: $(mib "$h0") before, $(mib "$h1") after (grew $(mib $((h1 - h0))), bound $(mib "$BOUND"); load $(cut -d' ' -f1-3 /proc/loadavg))"
check "the NAS's peak grew by less than 48 x 4 MiB" [ $((h1 - h0)) -lt "$BOUND" ]
check "one line per Store, each ok" [ "$(grep -c '^ok ' "$T_DIR/flood.out")" -eq "$N" ]

nctl() { "$CTL_BIN" --nas "$NAS_URL" "$@"; }
bad=0
while read -r _ name sum; do
	nctl get "$name@1" -o "$T_DIR/got" >/dev/null 2>"$T_DIR/get.err" || { bad=$((bad + 1)); cat "$T_DIR/get.err"; continue; }
	[ "$(sha256sum <"$T_DIR/got" | cut -d' ' -f1)" = "$sum" ] || { bad=$((bad + 1)); echo "# $name differs"; }
done < <(grep '^ok ' "$T_DIR/flood.out")
check "every checkpoint reads back byte for byte" [ "$bad" -eq 0 ]
check "nas stops cleanly" stop nas
finish
