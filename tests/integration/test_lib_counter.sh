#!/usr/bin/env bash
# The libckpt example (clients/libckpt/examples/counter.c) as a lib component
# declared in two agents' config files: it runs on n1 and checkpoints itself;
# `ckptctl migrate` moves it to n2, where it goes on from its checkpointed
# count, never from 0; then n2 dies (SIGKILL, its program with it) and the
# manager fails it over to n1, where it goes on from n2's newest checkpoint.
. "$(dirname "$0")/lib.sh"

COUNTER="$CKPT_BUILD/clients/libckpt/ckpt-counter"
[ -x "$COUNTER" ] || { echo "no $COUNTER: build clients/libckpt first"; exit 1; }
NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port)
N1_PORT=$(free_port); N2_PORT=$(free_port)
MGR_URL="tcp://127.0.0.1:$MGR_PORT"
start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
start_manager manager "$MGR_PORT" "$EV_PORT" "tcp://127.0.0.1:$NAS_PORT" \
	--heartbeat-ms 100 --down-after 1s || { echo "manager did not start"; exit 1; }

C="$T_DIR/comps"
mkdir -p "$C"
# NODE PORT: its config file. The counter checkpoints every 20 counts of 10 ms.
conf() {
	cat >"$T_DIR/$1.ini" <<INI
[agent]
node        = $1
manager     = $MGR_URL
listen      = tcp://127.0.0.1:$2
interval-ms = 200
local-dir   = $T_DIR/$1-local

[allow]
drivers  = lib
programs = $COUNTER
folders  = $C/$1

[component counter]
driver   = lib
run      = $COUNTER --until 100000000 --every 20 --sleep-ms 10
folder   = $C/$1
log-path = $C/$1/counter.out
limit    = 1M
INI
}
conf n1 "$N1_PORT"
conf n2 "$N2_PORT"
agent() { start "$1" "$AGENT_BIN" --config "$T_DIR/$1.ini"; }
out() { cat "$C/$1/counter.out" 2>/dev/null; }
# The last count NODE's counter printed (checkpoint or restore line); 0 if none.
last_count() { out "$1" | sed -n 's/.*counter=\([0-9]*\)$/\1/p' | tail -n 1 | grep . || echo 0; }
counts_past() { [ "$(last_count "$1")" -gt "$2" ]; } # NODE N: its counter printed more than N
on_node() { # NODE: the counter's entry in `nodes` when NODE runs it
	"$CTL_BIN" --manager "$MGR_URL" --json nodes |
		jq -e --arg n "$1" '.[] | select(.id == $n and .state == "up") | .components[] |
			select(.name == "counter" and .kind == "lib")'
}

agent n1
check "n1 starts the counter, fresh, as a lib component" wait_for 20 sh -c \
	"grep -q 'start fresh' $C/n1/counter.out"
check "the counter checkpoints itself" wait_for 20 sh -c \
	"[ \$(grep -c '^checkpoint seq=' $C/n1/counter.out) -ge 5 ]"
check "the agent stores its checkpoints on the NAS" wait_for 20 sh -c \
	"[ \$($CTL_BIN --manager $MGR_URL --json ls n1/counter | jq length) -ge 4 ]"
check "nodes shows it on n1, kind lib" wait_for 10 on_node n1
check "n1's local socket is in its private folder" [ -S "$T_DIR/n1-local/local.sock" ]
agent n2
check "n2 attaches (it declares the counter too, which n1 runs)" wait_for 10 sh -c \
	"$CTL_BIN --manager $MGR_URL --json nodes | jq -e '.[] | select(.id == \"n2\" and .state == \"up\")'"
check "... and does not start it" sh -c "sleep 1; [ ! -s $C/n2/counter.out ]"
wait_for 20 sh -c "[ \$(grep -c '^checkpoint seq=' $C/n1/counter.out) -ge 10 ]"

ctl migrate counter --to n2 >"$T_DIR/migrate.out" 2>&1
rc=$?
check "ckptctl migrate counter --to n2 succeeds" [ "$rc" -eq 0 ]
before=$(last_count n1)
check "n1's counter is stopped by the migration" sh -c \
	"a=\$(wc -c <$C/n1/counter.out); sleep 0.5; [ \"\$(wc -c <$C/n1/counter.out)\" = \"\$a\" ]"
check "n2 restores it" wait_for 20 sh -c "grep -q '^restored counter=' $C/n2/counter.out"
restored=$(sed -n 's/^restored counter=\([0-9]*\)$/\1/p' "$C/n2/counter.out" | head -n 1)
check "... from a count n1's counter checkpointed, ${restored:-?} (it had printed ${before}), never from 0" \
	sh -c "[ ${restored:-0} -ge 200 ] && [ ${restored:-0} -le $before ] && \
		grep -q '^checkpoint seq=[0-9]* counter=${restored:-0}\$' $C/n1/counter.out"
check "... and it never started fresh there" sh -c "! grep -q 'start fresh' $C/n2/counter.out"
check "... and counts on from there on n2" wait_for 20 counts_past n2 "${restored:-0}"
check "nodes shows it on n2" wait_for 10 on_node n2
check "n2 stores its checkpoints with the new epoch" wait_for 20 sh -c \
	"[ \$($CTL_BIN --manager $MGR_URL --json ls n2/counter | jq length) -ge 3 ]"

# Failover: n2 dies with its program; n1 takes it from n2's newest checkpoint.
wait_for 20 sh -c "[ \$(grep -c '^checkpoint seq=' $C/n2/counter.out) -ge 10 ]"
stop n2 KILL
kill_under "$C/n2"
gone=$(last_count n2)
check "n1 restores the counter after n2's death" wait_for 30 sh -c \
	"[ \$(grep -c '^restored counter=' $C/n1/counter.out) -ge 1 ]"
again=$(sed -n 's/^restored counter=\([0-9]*\)$/\1/p' "$C/n1/counter.out" | tail -n 1)
check "... from a count n2's counter checkpointed (${again:-?} > ${restored:-?}, at most n2's last ${gone})" \
	sh -c "[ ${again:-0} -gt ${restored:-0} ] && [ ${again:-0} -le $gone ] && \
		grep -q '^checkpoint seq=[0-9]* counter=${again:-0}\$' $C/n2/counter.out"
check "... and counts on there" wait_for 20 counts_past n1 "${again:-0}"
check "nodes shows it on n1 again" wait_for 10 on_node n1

# Nothing new: a program that made no checkpoint since the last one stored
# (here: stopped with SIGSTOP) migrates from that one, its latest state.
pid=$(for p in /proc/[0-9]*; do [ "$(readlink "$p/cwd" 2>/dev/null)" = "$C/n1" ] && echo "${p#/proc/}"; done | head -n 1)
kill -STOP "$pid"
newest_count() { # the count in the newest stored checkpoint of n1/counter (region 1 after a 48-byte header)
	"$CTL_BIN" --manager "$MGR_URL" get n1/counter -o "$T_DIR/newest" >/dev/null 2>&1 &&
		od -An -t u8 -j 48 -N 8 "$T_DIR/newest" | tr -d ' '
}
# Stored and unchanged a second later: what reached the agent before the stop is stored.
settled() { local a b; a=$(newest_count) && sleep 1 && b=$(newest_count) && [ -n "$a" ] && [ "$a" = "$b" ]; }
check "a stopped counter's checkpoints are stored, then nothing new comes" wait_for 30 settled
held=$(newest_count)
check "... the newest stored one is one it printed ($held)" \
	grep -q "^checkpoint seq=[0-9]* counter=$held\$" "$C/n1/counter.out"
: >"$C/n2/counter.out"
# n2 comes back on another port (the manager's client of the old address may
# still be in its reconnect back-off after the SIGKILL; see the report).
conf n2 "$(free_port)"
agent n2
wait_for 10 sh -c "$CTL_BIN --manager $MGR_URL --json nodes | jq -e '.[] | select(.id == \"n2\" and .state == \"up\")'"
ctl migrate counter --to n2 >"$T_DIR/migrate2.out" 2>&1
rc=$?
check "it migrates to n2 (stopped programs are sent SIGCONT after SIGTERM)" [ "$rc" -eq 0 ]
check "... with its newest stored checkpoint as its final one (nothing new)" \
	log_has n1 "checkpoint of counter: nothing new since"
check "... and n2 goes on from exactly that count, $held" wait_for 20 sh -c \
	"grep -qx 'restored counter=$held' $C/n2/counter.out"

# A crash: the program dies (SIGKILL) on n2; supervision restarts it there
# from its newest checkpoint.
comp_field() { # NODE FIELD: that field of the counter's entry on NODE
	"$CTL_BIN" --manager "$MGR_URL" --json nodes |
		jq -r --arg n "$1" --arg f "$2" '.[] | select(.id == $n) | .components[] | select(.name == "counter") | .[$f]'
}
check "nodes shows the counter's pid on n2" wait_for 10 sh -c \
	"[ \"\$($CTL_BIN --manager $MGR_URL --json nodes | jq -r '.[] | select(.id == \"n2\") | .components[] | select(.name == \"counter\") | .pid')\" -gt 0 ]"
wait_for 20 counts_past n2 "$((held + 100))"
cpid=$(comp_field n2 pid)
kill -KILL "$cpid"
check "a counter killed on n2 is restarted there by supervision" wait_for 30 sh -c \
	"[ \$(grep -c '^restored counter=' $C/n2/counter.out) -ge 2 ]"
crash=$(sed -n 's/^restored counter=\([0-9]*\)$/\1/p' "$C/n2/counter.out" | tail -n 1)
check "... from a count it checkpointed (${crash:-?} > $held), never from 0" sh -c \
	"[ ${crash:-0} -gt $held ] && grep -q '^checkpoint seq=[0-9]* counter=${crash:-0}\$' $C/n2/counter.out"
check "... with a new pid and one restart in nodes" wait_for 10 sh -c \
	"[ \"\$($CTL_BIN --manager $MGR_URL --json nodes | jq -r '.[] | select(.id == \"n2\") | .components[] | select(.name == \"counter\") | \"\\(.restarts) \\(.pid != $cpid and .pid > 0)\"')\" = '1 true' ]"
stop n2 TERM
check "a stopped agent stops its program and removes its socket" sh -c \
	"a=\$(wc -c <$C/n2/counter.out); sleep 0.5; [ \"\$(wc -c <$C/n2/counter.out)\" = \"\$a\" ] && \
		[ ! -e $T_DIR/n2-local/local.sock ]"
stop n1 TERM
check "n1's agent stopped, its socket is removed too" \
	[ ! -e "$T_DIR/n1-local/local.sock" ]

# A lib component on an agent whose config does not allow the driver: refused at start.
sed -e 's|^drivers  = lib|drivers  = exec|' "$T_DIR/n1.ini" >"$T_DIR/deny.ini"
"$AGENT_BIN" --config "$T_DIR/deny.ini" >"$T_DIR/deny.err" 2>&1; rc=$?
check "a config that does not allow driver lib refuses a lib component, naming file and line" \
	sh -c "[ $rc -ne 0 ] && grep -q \"deny.ini:1[0-9]: driver: driver 'lib' is not allowed\" $T_DIR/deny.err"
finish
