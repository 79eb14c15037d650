#!/usr/bin/env bash
# ckpt-agent --config FILE: the [agent] section gives its settings (flags
# override them), [allow] what may run, [component NAME] its components. An
# exec component declared there runs, is checkpointed, and when its node
# comes back after a SIGKILL (agent and program dead) it resumes from its
# latest checkpoint, not from zero. A bad file is refused with FILE:LINE.
. "$(dirname "$0")/lib.sh"

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port); N1_PORT=$(free_port)
MGR_URL="tcp://127.0.0.1:$MGR_PORT"
start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
start_manager manager "$MGR_PORT" "$EV_PORT" "tcp://127.0.0.1:$NAS_PORT" \
	--heartbeat-ms 100 --down-after 1s || { echo "manager did not start"; exit 1; }

C="$T_DIR/comps"
mkdir -p "$C"
# The counter's state is one number in a file, replaced atomically each 0.1 s.
cat >"$T_DIR/n1.ini" <<INI
# node n1
[agent]
node        = n1
manager     = $MGR_URL
listen      = tcp://127.0.0.1:$N1_PORT
interval-ms = 5000   ; the flag below overrides it

[allow]
drivers  = exec
programs = /bin/sh /bin/cat
folders  = $C

[component counter]
driver  = exec
folder  = $C/counter
run     = /bin/sh -c "n=\$(cat state 2>/dev/null || echo 0);while :;do n=\$((n+1));echo \$n >s.tmp;mv s.tmp state;sleep 0.1;done"
dump    = /bin/cat state
restore = /bin/sh -c "cat >state"
limit   = 1M

[component slow]        # a demo checkpointed every 2 s, not every round
driver   = demo
bytes    = 4096
interval = 2s
INI
agent() { start n1 "$AGENT_BIN" --config "$T_DIR/n1.ini" --interval-ms 200; }
value() { cat "$C/counter/state" 2>/dev/null || echo 0; }
newest() { ctl --json ls n1/counter | jq -c 'max_by(.seq)'; }
comp() { ctl --json nodes | jq -c '.[] | select(.id == "n1" and .state == "up") | .components[] | select(.name == "counter")'; }

agent
check "the agent reads its settings from the file and attaches" wait_for 10 sh -c \
	"$CTL_BIN --manager $MGR_URL --json nodes | jq -e '.[] | select(.id == \"n1\" and .state == \"up\")'"
check "the exec component starts fresh (no checkpoint yet) and counts" wait_for 15 sh -c \
	"[ \$(cat $C/counter/state 2>/dev/null || echo 0) -ge 5 ]"
check "it is checkpointed every 200 ms (the flag overrides the file's 5000)" wait_for 10 sh -c \
	"[ \$($CTL_BIN --manager $MGR_URL --json ls n1/counter | jq length) -ge 4 ]"
count() { ctl --json ls "n1/$1" | jq length; }
wait_for 20 sh -c "[ \$($CTL_BIN --manager $MGR_URL --json ls n1/counter | jq length) -ge 20 ]"
check "a component with its own interval (2s) is checkpointed less often (counter $(count counter), slow $(count slow))" \
	sh -c "[ $(count slow) -ge 1 ] && [ \$(( $(count slow) * 3 )) -lt $(count counter) ]"
check "nodes shows it as an exec component" [ "$(comp | jq -r .kind)" = exec ]
check "a checkpoint holds the counter's value" sh -c \
	"$CTL_BIN --manager $MGR_URL get n1/counter -o $T_DIR/ck && grep -qE '^[0-9]+\$' $T_DIR/ck"

wait_for 20 sh -c "[ \$(cat $C/counter/state) -ge 30 ]"
stop n1 KILL
kill_under "$C"
last=$(newest)
ctl get "n1/counter@$(jq .seq <<<"$last")" -o "$T_DIR/last"
lastv=$(cat "$T_DIR/last")
check "the node died with its program (nothing counts any more)" sh -c \
	"v=\$(cat $C/counter/state); sleep 0.5; [ \"\$(cat $C/counter/state)\" = \"\$v\" ]"
agent
check "after the node comes back, the counter is restored from its newest checkpoint" \
	wait_for 20 sh -c "$CTL_BIN --manager $MGR_URL --json nodes | jq -e '.[] | select(.id == \"n1\") | .components[] | select(.name == \"counter\" and .restored_from.seq == $(jq .seq <<<"$last"))'"
check "... and counts on from its value ${lastv:-?} (at least 20), not from zero" wait_for 10 sh -c \
	"[ ${lastv:-0} -ge 20 ] && [ \$(cat $C/counter/state) -gt ${lastv:-0} ]"
check "... and it did not start fresh" sh -c "! grep -q 'component counter started fresh' $T_DIR/n1.log"
# Only the agent dies (an OOM kill, say): its program runs on, unsupervised.
# The agent that starts next stops that leftover before it resumes the
# component, so it never runs twice on one folder.
shells() { # the shells running in the counter's folder
	local p n=0
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/cwd" 2>/dev/null)" = "$C/counter" ] &&
			grep -q '^/bin/sh' "$p/cmdline" 2>/dev/null && n=$((n + 1))
	done
	echo "$n"
}
check "one program runs" [ "$(shells)" -eq 1 ]
stop n1 KILL
check "the agent is dead and its program runs on" sh -c \
	"v=\$(cat $C/counter/state); sleep 0.5; [ \"\$(cat $C/counter/state)\" != \"\$v\" ]"
mv "$T_DIR/n1.log" "$T_DIR/n1-first.log"
agent
check "the next agent stops the leftover program" wait_for 20 log_has n1 "still runs: killing its process group"
check "... and resumes the counter" wait_for 20 sh -c "$CTL_BIN --manager $MGR_URL --json nodes | jq -e '.[] | select(.id == \"n1\" and .state == \"up\") | .components[] | select(.name == \"counter\" and .restored_from != null)'"
sleep 1
check "... which runs once" [ "$(shells)" -eq 1 ]
stop n1 TERM
check "a stopped agent stops its program too" sh -c \
	"v=\$(cat $C/counter/state); sleep 0.5; [ \"\$(cat $C/counter/state)\" = \"\$v\" ]"

# Mistakes: each refused at start with the file, the line and the field.
bad() { # NAME: runs the agent on $T_DIR/NAME.ini; its stderr in $T_DIR/NAME.err
	"$AGENT_BIN" --config "$T_DIR/$1.ini" >"$T_DIR/$1.err" 2>&1
}
printf '[agent]\nnode = n9\nmanager = %s\nlisten = tcp://127.0.0.1:1\nintervl-ms = 5\n' \
	"$MGR_URL" >"$T_DIR/typo.ini"
bad typo; rc=$?
check "a mistyped [agent] key: exit 2" [ "$rc" -eq 2 ]
check "... naming file, line and key" grep -q "typo.ini:5: intervl-ms" "$T_DIR/typo.err"
printf '[agent]\nnode = n9\nmanager = %s\nlisten = tcp://127.0.0.1:1\ninterval-ms = soon\n' \
	"$MGR_URL" >"$T_DIR/value.ini"
bad value; rc=$?
check "a bad [agent] value: exit 2, with file and line" sh -c \
	"[ $rc -eq 2 ] && grep -q 'value.ini:5: ' $T_DIR/value.err"
sed -e 's|^programs = .*|programs = /bin/cat|' "$T_DIR/n1.ini" >"$T_DIR/deny.ini"
bad deny; rc=$?
check "a program the [allow] list does not name is refused at start" sh -c \
	"[ $rc -ne 0 ] && grep -q 'deny.ini' $T_DIR/deny.err && grep -q '/bin/sh' $T_DIR/deny.err"
check "... and never ran" [ ! -e "$C/deny" ]
"$AGENT_BIN" --config "$T_DIR/missing.ini" >"$T_DIR/missing.err" 2>&1; rc=$?
check "a missing config file is an error naming it" sh -c \
	"[ $rc -ne 0 ] && grep -q 'missing.ini' $T_DIR/missing.err"
finish
