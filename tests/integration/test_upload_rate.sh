#!/usr/bin/env bash
# ckpt-agent --upload-rate and --ckpt-sched (issue 13, "Checkpoints that do
# not disturb"): an agent whose uploads are capped far below the size of its
# checkpoints, its checkpoint thread under SCHED_IDLE, still stores every
# component, and what it stored reads back whole. The same settings are
# taken from [agent] of a config file; bad values are refused. Correctness
# only: nothing here depends on how long the uploads take.
. "$(dirname "$0")/lib.sh"

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port)
A1_PORT=$(free_port); A2_PORT=$(free_port); A1_HTTP=http://127.0.0.1:$(free_port)
MGR_URL="tcp://127.0.0.1:$MGR_PORT"
start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
start_manager manager "$MGR_PORT" "$EV_PORT" "tcp://127.0.0.1:$NAS_PORT" \
	--heartbeat-ms 100 --down-after 2s || { echo "manager did not start"; exit 1; }

# Two components of 1 MiB and 512 KiB through one bucket of 256 KiB/s.
start a1 "$AGENT_BIN" --node a1 --manager "$MGR_URL" --listen "tcp://127.0.0.1:$A1_PORT" \
	--demo big:1M --demo small:512K --fresh --interval-ms 300 --upload-rate 256K \
	--ckpt-sched idle --http "$A1_HTTP"
check "the agent says its cap and policy" wait_for 10 log_has a1 "uploads capped at 262144 B/s.*policy idle"
count() { ctl --json ls "a1/$1" 2>/dev/null | jq length; }
check "the capped agent stores the 1 MiB component (3 checkpoints)" wait_for 90 sh -c \
	"[ \"\$($CTL_BIN --manager $MGR_URL --json ls a1/big | jq length)\" -ge 3 ]"
check "and the 512 KiB one, through the same bucket (3 checkpoints)" wait_for 90 sh -c \
	"[ \"\$($CTL_BIN --manager $MGR_URL --json ls a1/small | jq length)\" -ge 3 ]"
# The cap held the uploads back: 1.5 MiB at 256 KiB/s cannot go without waiting.
waited() { curl -s --max-time 5 "$A1_HTTP/metrics" |
	awk '$1 == "ckpt_agent_upload_rate_wait_seconds_total" && $2 > 0 { ok = 1 } END { exit !ok }'; }
if command -v curl >/dev/null; then
	check "/metrics counts the time uploads waited for the cap" waited
fi
a1_pid=$PID_a1
# ps -L: one line per thread, CLS IDL for SCHED_IDLE.
check "one thread of the agent runs under SCHED_IDLE" sh -c \
	"ps -L -o cls= -p $a1_pid | grep -q IDL"
check "its other threads keep the normal policy" sh -c \
	"ps -L -o cls= -p $a1_pid | grep -q TS"
seq=$(ctl --json ls a1/big | jq 'map(.seq) | max')
check "the newest capped checkpoint reads back whole (digest verified)" \
	ctl get "a1/big@$seq" -o "$T_DIR/big.ckpt"
check "its size is the component's (1 MiB and the demo header)" sh -c \
	"[ \$(stat -c %s '$T_DIR/big.ckpt') -ge 1048576 ]"
check "a capped agent stops on SIGTERM with status 0" stop a1

# The same settings from a config file's [agent] section.
cat >"$T_DIR/a2.ini" <<INI
[agent]
node        = a2
manager     = $MGR_URL
listen      = tcp://127.0.0.1:$A2_PORT
demo        = c2:256K
fresh       = true
interval-ms = 300
upload-rate = 64K
ckpt-sched  = batch
INI
start a2 "$AGENT_BIN" --config "$T_DIR/a2.ini"
check "the config file's upload-rate and ckpt-sched are taken" wait_for 10 \
	log_has a2 "uploads capped at 65536 B/s.*policy batch"
check "the agent capped at 64 KiB/s stores its 256 KiB component (2 checkpoints)" wait_for 90 sh -c \
	"[ \"\$($CTL_BIN --manager $MGR_URL --json ls a2/c2 | jq length)\" -ge 2 ]"
check "one thread of it runs under SCHED_BATCH" sh -c "ps -L -o cls= -p $PID_a2 | grep -q B"
check "it stops on SIGTERM with status 0" stop a2

# A stop is not held up by the cap: at 1 KiB/s the first 1 MiB checkpoint owes
# about 17 minutes, and SIGTERM still ends the agent (the wait is cut short).
A3_PORT=$(free_port)
start a3 "$AGENT_BIN" --node a3 --manager "$MGR_URL" --listen "tcp://127.0.0.1:$A3_PORT" \
	--demo slow:1M --fresh --upload-rate 1K --log-level debug
check "the agent capped at 1 KiB/s attaches" wait_for 10 log_has a3 "uploads capped at 1024 B/s"
check "its first checkpoint is not stored yet (it waits for the cap)" sh -c \
	"sleep 2; [ \"\$($CTL_BIN --manager $MGR_URL --json ls a3/slow 2>/dev/null | jq length)\" = 0 ]"
kill -TERM "$PID_a3"
a3_gone() { ! kill -0 "$PID_a3" 2>/dev/null; }
check "SIGTERM ends it while it waits for the cap (not after the debt is paid)" wait_for 60 a3_gone
check "it logs that it stopped" wait_for 5 log_has a3 "stopped"

# Bad values: refused before anything starts (exit 2, the flag named).
bad() {
	"$AGENT_BIN" --node b --manager "$MGR_URL" --listen tcp://127.0.0.1:1 "$@" \
		>"$T_DIR/bad.out" 2>&1
	[ $? -eq 2 ]
}
check "--upload-rate above 4G is refused" bad --upload-rate 5G
check "--upload-rate that is not a size is refused" bad --upload-rate fast
check "--ckpt-sched other than nice|batch|idle is refused" bad --ckpt-sched fifo
check "the refusal names the flag" grep -q -- "--ckpt-sched" "$T_DIR/bad.out"
check "--help lists both" sh -c "'$AGENT_BIN' --help | grep -q -- --upload-rate && \
	'$AGENT_BIN' --help | grep -q -- --ckpt-sched"
finish
