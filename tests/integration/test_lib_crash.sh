#!/usr/bin/env bash
# A lib program that crashes right after handing a checkpoint to its agent,
# before the agent's next checkpoint takes it: the supervisor stores that
# checkpoint first, and the restart continues from it (it used to be dropped
# with the crashed instance: the restart took an older one, or started over).
. "$(dirname "$0")/lib.sh"

COUNTER="$CKPT_BUILD/clients/libckpt/ckpt-counter"
[ -x "$COUNTER" ] || { echo "no $COUNTER: build clients/libckpt first"; exit 1; }
NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port); N1_PORT=$(free_port)
MGR_URL="tcp://127.0.0.1:$MGR_PORT"
start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
start_manager manager "$MGR_PORT" "$EV_PORT" "tcp://127.0.0.1:$NAS_PORT" ||
	{ echo "manager did not start"; exit 1; }
C="$T_DIR/comps"
mkdir -p "$C/n1"
# The agent's own checkpoints come every 10 minutes: none in this test's time.
cat >"$T_DIR/n1.ini" <<INI
[agent]
node        = n1
manager     = $MGR_URL
listen      = tcp://127.0.0.1:$N1_PORT
interval-ms = 600000
local-dir   = $T_DIR/n1-local

[allow]
drivers  = lib
programs = $COUNTER
folders  = $C/n1

[component counter]
driver      = lib
run         = $COUNTER --until 100000000 --every 20 --sleep-ms 10
folder      = $C/n1
log-path    = $C/n1/counter.out
limit       = 1M
backoff     = 100ms
INI
start n1 "$AGENT_BIN" --config "$T_DIR/n1.ini"
check "n1 starts the counter fresh" wait_for 20 sh -c "grep -q 'start fresh' $C/n1/counter.out"
check "the counter hands over checkpoints" wait_for 20 sh -c \
	"[ \$(grep -c '^checkpoint seq=' $C/n1/counter.out) -ge 3 ]"
# The agent stores a fresh component's first state once; nothing after it (10 minutes).
check "... none of which the agent stored (it holds its first state at most)" \
	[ "$(ctl --json ls n1/counter | jq '[.[] | select(.size > 16)] | length')" -eq 0 ]
pid=$(for p in /proc/[0-9]*; do [ "$(readlink "$p/cwd" 2>/dev/null)" = "$C/n1" ] && echo "${p#/proc/}"; done | head -n 1)
check "the counter's process is found" [ -n "$pid" ]
kill -STOP "$pid"
last=$(sed -n 's/^checkpoint seq=[0-9]* counter=\([0-9]*\)$/\1/p' "$C/n1/counter.out" | tail -n 1)
kill -KILL "$pid"
check "the agent stores the handed-over checkpoint before the restart" \
	wait_for 20 log_has n1 "the checkpoint its program had handed over is stored"
check "the counter restarts" wait_for 20 sh -c "grep -q '^restored counter=' $C/n1/counter.out"
got=$(sed -n 's/^restored counter=\([0-9]*\)$/\1/p' "$C/n1/counter.out" | head -n 1)
check "... from the count it handed over last ($got = $last), not from 0" [ "${got:-0}" = "$last" ]
check "... and only one start was fresh" [ "$(grep -c 'start fresh' "$C/n1/counter.out")" -eq 1 ]
check "n1 stored it" [ "$(ctl --json ls n1/counter | jq '[.[] | select(.size > 16)] | length')" -ge 1 ]
check "n1 exits 0 on SIGTERM" stop n1 TERM
kill_under "$C/n1"
finish
