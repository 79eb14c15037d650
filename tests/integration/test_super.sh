#!/usr/bin/env bash
# Supervision (issue 9): an exec component whose process is killed (SIGKILL
# of the pid `ckptctl nodes --json` shows) is restarted on its node from its
# latest checkpoint and counts on, its restarts counted; one that keeps
# crashing is reported FAILED after its max-restarts and moved to another
# node, where it continues from its checkpoint. Without a NAS a restart
# waits (not counted as a failure) and then takes the checkpoints that waited
# in the agent's queue. Events
# ckpt.component.crashed|failed/<component> are published; `ckptctl nodes`
# and --json show kind, state, pid, restarts, last checkpoint seq and age.
. "$(dirname "$0")/lib.sh"

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port)
N1_PORT=$(free_port); N2_PORT=$(free_port)
MGR_URL="tcp://127.0.0.1:$MGR_PORT"
start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
start_manager manager "$MGR_PORT" "$EV_PORT" "tcp://127.0.0.1:$NAS_PORT" \
	--heartbeat-ms 100 --down-after 2s || { echo "manager did not start"; exit 1; }
start events "$CTL_BIN" --manager "$MGR_URL" watch --for 180s

# A counter whose state is one number in a file. With a file "poison" in its
# folder it exits 1 (the crasher's folder on n1 gets one; n2's never does).
RUN='/bin/sh -c "n=$(cat state 2>/dev/null || echo 0);while :;do [ -e poison ] && exit 1;n=$((n+1));echo $n >s.tmp;mv s.tmp state;sleep 0.1;done"'
config() { # NODE PORT COMPONENT...
	local node=$1 port=$2 c; shift 2
	mkdir -p "$T_DIR/$node"
	cat <<INI
[agent]
node        = $node
manager     = $MGR_URL
listen      = tcp://127.0.0.1:$port
interval-ms = 200

[allow]
drivers  = exec
programs = /bin/sh /bin/cat
folders  = $T_DIR/$node
INI
	for c in "$@"; do
		cat <<INI

[component $c]
driver       = exec
folder       = $T_DIR/$node/$c
run          = $RUN
dump         = /bin/cat state
restore      = /bin/sh -c "cat >state"
max-restarts = 2
backoff      = 200ms
INI
	done
}
config n1 "$N1_PORT" counter crasher >"$T_DIR/n1.ini"
config n2 "$N2_PORT" crasher >"$T_DIR/n2.ini"

comp() { # NODE COMPONENT: its entry in nodes --json
	ctl --json nodes | jq -c --arg n "$1" --arg c "$2" \
		'.[] | select(.id == $n and .state == "up") | .components[] | select(.name == $c)'
}
field() { comp "$1" "$2" | jq -r ".$3"; }
value() { cat "$T_DIR/$1/$2/state" 2>/dev/null || echo 0; }
newest() { ctl --json ls "$1/$2" | jq '[.[].seq] | max // 0'; }

start n1 "$AGENT_BIN" --config "$T_DIR/n1.ini"
check "n1 runs both components and checkpoints them" wait_for 20 sh -c \
	"[ \$($CTL_BIN --manager $MGR_URL --json ls n1/counter | jq length) -ge 3 ] &&
	 [ \$($CTL_BIN --manager $MGR_URL --json ls n1/crasher | jq length) -ge 3 ]"
# n2 declares the crasher too; n1 runs it, so n2 is told not to start it.
start n2 "$AGENT_BIN" --config "$T_DIR/n2.ini"
check "n2 attaches and leaves the crasher to n1" wait_for 20 log_has manager \
	"node n2 declares crasher, which another node runs"

# ---- nodes shows the new fields ----
check "nodes --json: kind exec, state running, a pid, 0 restarts, a seq and its age" \
	sh -c "$CTL_BIN --manager $MGR_URL --json nodes | jq -e '.[] | select(.id == \"n1\") | .components[]
	| select(.name == \"counter\") | .kind == \"exec\" and .state == \"running\" and .pid > 0
	  and .restarts == 0 and .last_seq > 0 and .last_unix_ms > 0 and .last_age_ms >= 0
	  and .last_age_ms < 60000 and has(\"epoch\") and has(\"state_bytes\") and has(\"restored_from\")
	  and has(\"reason\")' >/dev/null"
ctl nodes >"$T_DIR/nodes.txt"
cat "$T_DIR/nodes.txt"
check "nodes (text) has a component table with the new columns" \
	grep -qE '^COMPONENT +NODE +KIND +STATE +PID +RESTARTS +SEQ +AGE$' "$T_DIR/nodes.txt"
check "nodes (text): counter on n1, exec, running, its pid, 0 restarts, a seq, an age" \
	grep -qE "^counter +n1 +exec +running +$(field n1 counter pid) +0 +[0-9]+ +[0-9.]+s$" \
	"$T_DIR/nodes.txt"
check "nodes (text) keeps its node table" grep -qE '^n1 +up +tcp://.*counter\(running\)' \
	"$T_DIR/nodes.txt"

# ---- a killed process is restarted from its checkpoint ----
wait_for 20 sh -c "[ \$(cat $T_DIR/n1/counter/state) -ge 20 ]"
pid=$(field n1 counter pid)
check "the counter's pid is its program's (a shell in its folder)" \
	[ "$(readlink "/proc/$pid/cwd")" = "$T_DIR/n1/counter" ]
kill -KILL "$pid"
killed_at=$(value n1 counter)
check "the killed counter is restarted on n1 (1 restart, another pid, running)" wait_for 20 sh -c \
	"$CTL_BIN --manager $MGR_URL --json nodes | jq -e '.[] | select(.id == \"n1\") | .components[]
	| select(.name == \"counter\") | .restarts == 1 and .state == \"running\" and .pid > 0 and .pid != $pid'"
from=$(field n1 counter restored_from.seq)
check "... from its latest checkpoint (restored_from.seq $from)" \
	log_has n1 "component counter restarted from checkpoint n1/counter@$from "
ctl get "n1/counter@$from" -o "$T_DIR/from"
check "... and its state continues from that checkpoint's value ($(cat "$T_DIR/from"); killed at $killed_at)" \
	wait_for 10 sh -c "[ $(cat "$T_DIR/from") -ge 10 ] && [ \$(cat $T_DIR/n1/counter/state) -gt $(cat "$T_DIR/from") ]"
check "the restarted counter is checkpointed again" wait_for 10 sh -c \
	"[ \$($CTL_BIN --manager $MGR_URL --json ls n1/counter | jq '[.[].seq] | max') -gt $from ]"
check "the manager published ckpt.component.crashed/counter (seq 1: its first crash)" wait_for 10 \
	grep -q '^ckpt.component.crashed/counter seq=1 ' "$T_DIR/events.log"
# Checkpoints after $from are the restarted counter's: the crash comes first.
first_line() { grep -n -m1 -E "$1" "$T_DIR/events.log" | cut -d: -f1; }
crash_at=$(first_line '^ckpt.component.crashed/counter ')
restarted_at=$(awk -v from="$from" '/^ckpt.stored\/n1\/counter / {
	for (i = 2; i <= NF; i++) if ($i ~ /^seq=/ && substr($i, 5) + 0 > from) { print NR; exit } }' \
	"$T_DIR/events.log")
check "... before the first checkpoint of the restarted counter (event line $crash_at < $restarted_at)" \
	sh -c "[ -n '$crash_at' ] && [ -n '$restarted_at' ] && [ '$crash_at' -lt '$restarted_at' ]"
check "nodes --json counts the crash (crashes 1)" [ "$(field n1 counter crashes)" = 1 ]

# ---- one that keeps crashing is FAILED and moved ----
before=$(newest n1 crasher)
touch "$T_DIR/n1/crasher/poison"
check "the crasher is reported failed after 2 restarts, with the reason" wait_for 30 \
	grep -q '^ckpt.component.failed/crasher .*after 2 restarts.*3 failures in a row (max-restarts 2).*exited with status 1' \
	"$T_DIR/events.log"
check "n1 logged it FAILED" log_has n1 "component crasher FAILED"
check "the manager places it on n2" wait_for 30 sh -c \
	"$CTL_BIN --manager $MGR_URL --json nodes | jq -e '.[] | select(.id == \"n2\") | .components[]
	| select(.name == \"crasher\") | .state == \"running\" and .restored_from != null and .pid > 0'"
check "... from its checkpoint, where it counts on" wait_for 10 sh -c \
	"[ $before -gt 0 ] && [ \$(cat $T_DIR/n2/crasher/state 2>/dev/null || echo 0) -gt 10 ]"
check "n1 no longer lists it" wait_for 10 sh -c "[ -z \"\$($CTL_BIN --manager $MGR_URL --json nodes |
	jq -c '.[] | select(.id == \"n1\") | .components[] | select(.name == \"crasher\")')\" ]"
check "the failover was published (failover.done)" wait_for 10 \
	grep -q '^ckpt.failover.done/crasher ' "$T_DIR/events.log"
check "the crashes before the failure were published as crashed" \
	grep -q '^ckpt.component.crashed/crasher ' "$T_DIR/events.log"
# Each of its 3 crashes (seq 1, 2, 3), the last one too, then failed.
grep -E '^ckpt.component.(crashed|failed)/crasher ' "$T_DIR/events.log" |
	awk '{ print $1, $2 }' >"$T_DIR/crasher.events"
printf '%s\n' 'ckpt.component.crashed/crasher seq=1' 'ckpt.component.crashed/crasher seq=2' \
	'ckpt.component.crashed/crasher seq=3' 'ckpt.component.failed/crasher seq=2' \
	>"$T_DIR/crasher.want"
check "every crash of the crasher was published, the last one too, before failed" \
	diff "$T_DIR/crasher.want" "$T_DIR/crasher.events"
check "the counter on n1 was not disturbed (still 1 restart)" [ "$(field n1 counter restarts)" = 1 ]
grep -v '^ckpt.stored/' "$T_DIR/events.log"

# ---- without a NAS, a restart waits (not counted) and takes the newest checkpoint ----
stored=$(newest n1 counter)
stop nas KILL
sleep 0.6 # a few checkpoints of the counter wait in n1's queue
pid=$(field n1 counter pid)
kill -KILL "$pid"
check "without a NAS the killed counter waits for its restart" wait_for 10 sh -c \
	"[ \"\$($CTL_BIN --manager $MGR_URL --json nodes | jq -r '.[] | select(.id == \"n1\") | .components[] | select(.name == \"counter\") | .state')\" = restoring ]"
sleep 3 # 200 + 400 + 800 ms of back-off would have given it up by now
check "... past its max-restarts, without being given up (no NAS is not its failure)" \
	[ "$(field n1 counter state)" = restoring ]
check "... and n1 says why it waits" log_has n1 "component counter: its restart waits"
check "... its crash was published already, while its restart waits (crashed seq=2)" \
	grep -q '^ckpt.component.crashed/counter seq=2 .*1 restart so far' "$T_DIR/events.log"
start_nas nas "$NAS_PORT" || { echo "nas did not restart"; exit 1; }
check "once the NAS is back the counter is restarted (2 restarts)" wait_for 30 sh -c \
	"$CTL_BIN --manager $MGR_URL --json nodes | jq -e '.[] | select(.id == \"n1\") | .components[]
	| select(.name == \"counter\") | .restarts == 2 and .state == \"running\"' >/dev/null"
from=$(field n1 counter restored_from.seq)
check "... from a checkpoint that waited in its queue (seq $from; the NAS had $stored)" \
	sh -c "[ '$from' -gt '$stored' ] && grep -q 'component counter restarted from checkpoint n1/counter@$from ' $T_DIR/n1.log"

for s in n1 n2 manager nas; do check "$s exits 0 on SIGTERM" stop "$s" TERM; done
finish
