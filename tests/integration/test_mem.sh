#!/usr/bin/env bash
# Memory bounds of the data path (issue 10, "Memory"): peaks read from the
# kernel's high-water mark of the real processes (VmHWM of /proc/PID/status;
# for ckptctl, which exits, its ru_maxrss from wait4(), the same counter).
#  - an agent checkpointing a demo component of STATE bytes peaks at most
#    STATE + 64 MiB (the state is read where it lies, not copied);
#  - the agent it migrates to, restoring it, peaks at most STATE + 64 MiB
#    (the bytes are written into the component's own buffer);
#  - ckptctl put of a STATE-byte file and get of it back stay under 64 MiB.
# Bounds, never timings. CKPT_MEM_BYTES sets STATE (default 256M; the 'mem'
# suite runs it with 1G: meson test -C build --suite mem).
. "$(dirname "$0")/lib.sh"

SIZE=${CKPT_MEM_BYTES:-256M}
case "$SIZE" in
*G) STATE=$(( ${SIZE%G} << 30 )) ;;
*M) STATE=$(( ${SIZE%M} << 20 )) ;;
*) STATE=$SIZE ;;
esac
SLACK=$((64 << 20))
# Under AddressSanitizer freed memory waits in its quarantine (256 MiB by
# default), resident: every process here runs without one, so that a peak
# is what the process holds (an option a build without ASan ignores).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0"
NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port)
MGR_URL="tcp://127.0.0.1:$MGR_PORT"
NAS_URL="tcp://127.0.0.1:$NAS_PORT"

# hwm PID: the process's peak resident set, in bytes.
hwm() { echo $(( $(awk '$1 == "VmHWM:" {print $2}' "/proc/$1/status") * 1024 )); }
# maxrss COMMAND...: runs it (stdin and stdout as given) and prints its peak
# resident set in bytes on fd 3; returns its exit status.
maxrss() {
	python3 -c '
import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, ru = os.wait4(pid, 0)
os.write(3, b"%d\n" % (ru.ru_maxrss * 1024))
sys.exit(os.waitstatus_to_exitcode(status))' "$@"
}
# under N BOUND: 0 < N < BOUND.
under() { [ "$1" -gt 0 ] && [ "$1" -lt "$2" ]; }
mib() { echo "$(( $1 >> 20 )) MiB"; }

start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
start_manager manager "$MGR_PORT" "$EV_PORT" "$NAS_URL" || { echo "manager did not start"; exit 1; }
start n1 "$AGENT_BIN" --node n1 --manager "$MGR_URL" --listen "tcp://127.0.0.1:$(free_port)" \
	--interval-ms 1000 --demo "big:$SIZE"
start n2 "$AGENT_BIN" --node n2 --manager "$MGR_URL" --listen "tcp://127.0.0.1:$(free_port)" \
	--interval-ms 1000

nodes_up() { [ "$(ctl --json nodes | jq '[.[] | select(.state == "up")] | length')" -eq 2 ]; }
check "two agents attach" wait_for 120 nodes_up
stored() { [ "$(ctl --json ls "$1/big" | jq length)" -ge "$2" ]; }
# The first checkpoint reads the state whole, the next ones from hints.
check "n1 stores three checkpoints of big ($SIZE)" wait_for 600 stored n1 3
h1=$(hwm "$PID_n1")
echo "# n1 (checkpointing $SIZE): VmHWM $(mib "$h1"), bound $(mib $((STATE + SLACK)))"
check "n1's peak while checkpointing <= state + 64 MiB" [ "$h1" -le $((STATE + SLACK)) ]

h2=$(hwm "$PID_n2")
echo "# n2 before the restore: VmHWM $(mib "$h2")"
check "big migrates to n2" ctl --timeout 600s migrate big --to n2
on_n2() { [ "$(ctl --json nodes | jq -r '.[] | select(.id == "n2") | .components[].name')" = big ]; }
check "n2 runs big" wait_for 120 on_n2
h2=$(hwm "$PID_n2")
echo "# n2 (restoring $SIZE): VmHWM $(mib "$h2"), bound $(mib $((STATE + SLACK)))"
check "n2's peak while restoring <= state + 64 MiB" [ "$h2" -le $((STATE + SLACK)) ]
check "n2 stores checkpoints of the restored big" wait_for 600 stored n2 2
h2=$(hwm "$PID_n2")
echo "# n2 (restored, then checkpointing): VmHWM $(mib "$h2")"
check "n2's peak after checkpointing the restored state <= state + 64 MiB" \
	[ "$h2" -le $((STATE + SLACK)) ]

# ckptctl put and get of a STATE-byte file (random: nothing to deduplicate).
head -c "$STATE" /dev/urandom >"$T_DIR/in.bin"
p=$(maxrss "$CTL_BIN" --nas "$NAS_URL" --timeout 600s put x/file -i "$T_DIR/in.bin" 3>&1 >/dev/null)
echo "# ckptctl put -i ($SIZE file): peak $(mib "$p")"
check "ckptctl put -i FILE stays under 64 MiB" under "$p" "$SLACK"
p=$(cat "$T_DIR/in.bin" | maxrss "$CTL_BIN" --nas "$NAS_URL" --timeout 600s put x/pipe 3>&1 >/dev/null)
echo "# ckptctl put (a pipe, $SIZE): peak $(mib "$p")"
check "ckptctl put from a pipe stays under 64 MiB" under "$p" "$SLACK"
p=$(maxrss "$CTL_BIN" --nas "$NAS_URL" --timeout 600s get x/file -o "$T_DIR/out.bin" 3>&1 >/dev/null)
echo "# ckptctl get -o ($SIZE file): peak $(mib "$p")"
check "ckptctl get -o FILE stays under 64 MiB" under "$p" "$SLACK"
check "the file came back byte for byte" cmp -s "$T_DIR/in.bin" "$T_DIR/out.bin"
p=$(maxrss "$CTL_BIN" --nas "$NAS_URL" --timeout 600s get x/pipe 3>&1 >"$T_DIR/out2.bin")
echo "# ckptctl get (stdout, $SIZE): peak $(mib "$p")"
check "ckptctl get to stdout stays under 64 MiB" under "$p" "$SLACK"
check "the piped file came back byte for byte" cmp -s "$T_DIR/in.bin" "$T_DIR/out2.bin"
finish
