#!/usr/bin/env bash
# ckptctl apply -f FILE / delete COMPONENT: a spec is stored on the NAS and
# placed by the manager. n1 and n2 allow the exec driver and /bin/sh and
# /bin/cat; n3 allows nothing but the demo. A demo spec and an exec spec
# (a counter in a state file) are placed and run; the counter's node is
# SIGKILLed and the counter fails over with its spec to the other exec node,
# which counts on; after a manager restart the spec is still known (the next
# failover starts the same program); delete stops it and keeps its
# checkpoints. A spec no node allows fails at apply time naming every node
# and its reason; a malformed file gives FILE:LINE: field: reason.
. "$(dirname "$0")/lib.sh"
jqe() { jq -e "$@" >/dev/null; }

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port)
MGR_URL="tcp://127.0.0.1:$MGR_PORT"
NAS_URL="tcp://127.0.0.1:$NAS_PORT"
start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
manager() { start_manager manager "$MGR_PORT" "$EV_PORT" "$NAS_URL" --heartbeat-ms 100 --down-after 1s; }
manager || { echo "manager did not start"; exit 1; }

C="$T_DIR/comps"
mkdir -p "$C"
for n in n1 n2 n3; do
	port=$(free_port)
	{
		printf '[agent]\nnode = %s\nmanager = %s\nlisten = tcp://127.0.0.1:%s\n' "$n" "$MGR_URL" "$port"
		[ "$n" = n3 ] || printf '[allow]\ndrivers = exec\nprograms = /bin/sh /bin/cat /nonexistent/\nfolders = %s\n' "$C"
	} >"$T_DIR/$n.ini"
done
agent() { start "$1" "$AGENT_BIN" --config "$T_DIR/$1.ini" --interval-ms 200; }
up() { ctl --json nodes | jq -e --arg n "$1" '.[] | select(.id == $n and .state == "up")' >/dev/null; }
agent n1; agent n2; agent n3
check "three nodes attach" wait_for 10 sh -c "$(declare -f up ctl); MGR_URL=$MGR_URL CTL_BIN=$CTL_BIN; up n1 && up n2 && up n3"

# ---- bad files: FILE:LINE: field: reason, nothing sent
printf '[component x]\ndriver = exec\nfolder = %s/x\nrun = sh -c true\ndump = /bin/cat state\n' "$C" >"$T_DIR/rel.ini"
ctl apply -f "$T_DIR/rel.ini" 2>"$T_DIR/rel.err"; rc=$?
check "a relative program: exit 1" [ "$rc" -eq 1 ]
check "... naming FILE:LINE: run: ($(cat "$T_DIR/rel.err"))" grep -q "rel.ini:4: run: " "$T_DIR/rel.err"
printf '[component y]\ndriver = demo\nbytes = 4096\nintervl = 5s\n' >"$T_DIR/typo.ini"
ctl apply -f "$T_DIR/typo.ini" 2>"$T_DIR/typo.err"; rc=$?
check "a mistyped key: FILE:LINE: key ($(cat "$T_DIR/typo.err"))" sh -c \
	"[ $rc -eq 1 ] && grep -q 'typo.ini:4: intervl: ' $T_DIR/typo.err"
printf '[allow]\ndrivers = exec\n' >"$T_DIR/allow.ini"
ctl apply -f "$T_DIR/allow.ini" 2>"$T_DIR/allow.err"; rc=$?
check "an [allow] section is no part of a spec file" sh -c \
	"[ $rc -eq 1 ] && grep -q 'allow.ini:1: section: ' $T_DIR/allow.err"
check "... and nothing was stored" sh -c "! $CTL_BIN --manager $MGR_URL delete x 2>/dev/null"

# ---- a demo spec: started fresh on some node
printf '[component d1]\ndriver = demo\nbytes = 4096\n' >"$T_DIR/d1.ini"
ctl --json apply -f "$T_DIR/d1.ini" >"$T_DIR/d1.json"; rc=$?
check "apply of a demo spec succeeds" [ "$rc" -eq 0 ]
d1node=$(jq -r '.applied[0].node' "$T_DIR/d1.json")
check "... placed, fresh, on a node ($d1node)" jqe '.applied[0] | .placed and .fresh and (.node | test("^n[123]$"))' "$T_DIR/d1.json"
check "... and nodes shows it running there" wait_for 10 sh -c \
	"$CTL_BIN --manager $MGR_URL --json nodes | jq -e '.[] | select(.id == \"$d1node\") | .components[] | select(.name == \"d1\" and .kind == \"demo\")'"

# ---- an exec spec: a counter whose state is one number in a file
cat >"$T_DIR/counter.ini" <<INI
[component counter]
driver  = exec
folder  = $C/counter
run     = /bin/sh -c "n=\$(cat state 2>/dev/null || echo 0);while :;do n=\$((n+1));echo \$n >s.tmp;mv s.tmp state;sleep 0.1;done"
dump    = /bin/cat state
restore = /bin/sh -c "cat >state"
limit   = 1M
INI
ctl --json apply -f "$T_DIR/counter.ini" >"$T_DIR/counter.json" 2>"$T_DIR/counter.err"; rc=$?
check "apply of an exec spec succeeds ($(cat "$T_DIR/counter.err"))" [ "$rc" -eq 0 ]
first=$(jq -r '.applied[0].node' "$T_DIR/counter.json")
check "... on a node that allows it ($first)" sh -c "[ '$first' = n1 ] || [ '$first' = n2 ]"
check "... a refusal, if any, is n3's, with its reason" jqe \
	'.applied[0].refused | all(.node == "n3" and (.reason | test("not allowed")))' "$T_DIR/counter.json"
# The counter's value; a restore in progress (its `cat >state` truncates the
# file first) reads as empty for a moment: read again then.
value() {
	local v
	for _ in $(seq 100); do
		v=$(cat "$C/counter/state" 2>/dev/null) || { echo 0; return; }
		[ -n "$v" ] && { echo "$v"; return; }
		sleep 0.05
	done
	echo 0
}
ctl --json specs >"$T_DIR/specs.json"
check "specs lists the stored exec spec with its program" jqe \
	'any(.[]; .component == "counter" and .driver == "exec" and (.run | length) > 0 and (.folder | length) > 0)' "$T_DIR/specs.json"
check "... and as a table" sh -c "$CTL_BIN --manager $MGR_URL specs | grep -q '^counter *exec'"
check "the counter counts" wait_for 15 sh -c "[ \$(cat $C/counter/state 2>/dev/null || echo 0) -ge 10 ]"
runs_on() { # NODE COMPONENT KIND
	"$CTL_BIN" --manager "$MGR_URL" --json nodes | jq -e --arg n "$1" --arg c "$2" --arg k "$3" \
		'.[] | select(.id == $n and .state == "up") | .components[] | select(.name == $c and .kind == $k)' >/dev/null
}
check "nodes shows counter as an exec component on $first" runs_on "$first" counter exec
check "it is checkpointed" wait_for 10 sh -c \
	"[ \$($CTL_BIN --manager $MGR_URL --json ls $first/counter | jq length) -ge 3 ]"

other=n1; [ "$first" = n1 ] && other=n2

# ---- its process is killed: its node's supervisor restarts it by the spec it came with
pid=$(ctl --json nodes | jq -r --arg n "$first" '.[] | select(.id == $n) | .components[] | select(.name == "counter") | .pid')
before=$(value)
kill -KILL "$pid"
check "the killed counter is restarted on $first from the applied spec (1 restart)" wait_for 20 sh -c \
	"$CTL_BIN --manager $MGR_URL --json nodes | jq -e '.[] | select(.id == \"$first\") | .components[] | select(.name == \"counter\" and .restarts == 1 and .state == \"running\" and .pid != $pid)' >/dev/null"
check "... and counts on" wait_for 10 sh -c "[ \$(cat $C/counter/state) -gt $before ]"

# ---- applied again while it runs: the new spec is stored, the component stays
ctl --json apply -f "$T_DIR/counter.ini" >"$T_DIR/again.json"
check "applying it again while it runs: stored (replaced), not moved" jqe --arg n "$first" \
	'.applied[0] | (.placed | not) and .replaced and .node == $n' "$T_DIR/again.json"

# ---- migrate: the spec goes along (n3, if placement offers it, refuses it)
before=$(value)
ctl --json migrate counter >"$T_DIR/mig.json" 2>"$T_DIR/mig.err"
check "ckptctl migrate moves it to $other ($(cat "$T_DIR/mig.err"))" jqe --arg n "$other" '.target == $n' "$T_DIR/mig.json"
check "... where it runs as an exec component and counts on from $before" wait_for 10 sh -c \
	"[ \$(cat $C/counter/state) -gt $before ] && $CTL_BIN --manager $MGR_URL --json nodes | jq -e '.[] | select(.id == \"$other\") | .components[] | select(.name == \"counter\" and .kind == \"exec\")' >/dev/null"
first=$other; other=n1; [ "$first" = n1 ] && other=n2

# ---- failover: the node dies with its program; the other exec node takes it with its spec
stop "$first" KILL
kill_under "$C"
before=$(value)
check "the counter fails over to $other (n3 refuses it)" wait_for 20 runs_on "$other" counter exec
check "... and counts on from $before, not from zero" wait_for 10 sh -c "[ \$(cat $C/counter/state) -gt $before ]"
check "... restored from a checkpoint (not fresh)" sh -c \
	"$CTL_BIN --manager $MGR_URL --json nodes | jq -e '.[] | select(.id == \"$other\") | .components[] | select(.name == \"counter\" and .restored_from != null)' >/dev/null"

# ---- the manager starts again: the spec is still known (it is on the NAS)
agent "$first"
check "$first comes back" wait_for 10 up "$first"
stop manager TERM
mv "$T_DIR/manager.log" "$T_DIR/manager-first.log"
manager
check "the manager is back and every node attached" wait_for 15 sh -c \
	"$(declare -f up ctl); MGR_URL=$MGR_URL CTL_BIN=$CTL_BIN; up n1 && up n2 && up n3 && ctl --json nodes | jq -e '.[] | .components[] | select(.name == \"counter\")'"
stop "$other" KILL
kill_under "$C"
before=$(value)
check "after the restart, counter fails over to $first with its spec" wait_for 20 runs_on "$first" counter exec
check "... and counts on from $before" wait_for 10 sh -c "[ \$(cat $C/counter/state) -gt $before ]"
check "the manager read the spec from the NAS (with its spec)" log_has manager "counter from $other to $first done: restored .* (with its spec)"

# ---- delete: stopped after a final checkpoint, spec gone, checkpoints kept
ctl --json delete counter >"$T_DIR/del.json"; rc=$?
check "delete succeeds" [ "$rc" -eq 0 ]
check "... stopped on $first with a final checkpoint, spec deleted" jqe \
	--arg n "$first" '.node == $n and .had_spec and .checkpoint.seq > 0' "$T_DIR/del.json"
not() { ! "$@"; }
check "... nodes no longer lists it" not runs_on "$first" counter exec
check "... the program stopped" sh -c "v=\$(cat $C/counter/state); sleep 0.5; [ \"\$(cat $C/counter/state)\" = \"\$v\" ]"
check "... specs no longer lists it" sh -c "! $CTL_BIN --manager $MGR_URL --json specs | jq -e 'any(.[]; .component == \"counter\")'"
check "... its checkpoints are kept" sh -c "[ \$($CTL_BIN --manager $MGR_URL --json ls --latest | jq '[.[] | select(.component == \"counter\")] | length') -ge 1 ]"
ctl delete counter 2>"$T_DIR/del2.err"; rc=$?
check "a second delete: exit 1, nothing to delete ($(cat "$T_DIR/del2.err"))" sh -c \
	"[ $rc -eq 1 ] && grep -q 'no spec of counter' $T_DIR/del2.err"
sleep 1.5
check "nothing restarts it" sh -c "! $CTL_BIN --manager $MGR_URL --json nodes | jq -e '.[] | .components[] | select(.name == \"counter\")'"
ctl --json apply -f "$T_DIR/counter.ini" >"$T_DIR/reapply.json" 2>"$T_DIR/reapply.err"
check "applied again after the delete, it resumes from its final checkpoint ($(cat "$T_DIR/reapply.err"))" \
	jqe --argjson s "$(jq .checkpoint.seq "$T_DIR/del.json")" \
	'.applied[0] | .placed and (.fresh | not) and (.replaced | not) and .restored_from.seq == $s' "$T_DIR/reapply.json"
ctl delete counter >/dev/null

# ---- refused by every node: the error names each node and why
agent "$other"
check "$other comes back" wait_for 10 up "$other"
cat >"$T_DIR/env.ini" <<INI
[component e1]
driver = exec
folder = $C/e1
run     = /usr/bin/env sleep 100
dump    = /bin/cat state
restore = /bin/sh -c "cat >state"
INI
ctl apply -f "$T_DIR/env.ini" 2>"$T_DIR/env.err"; rc=$?
check "a program no node allows: exit 1 ($(cat "$T_DIR/env.err"))" [ "$rc" -eq 1 ]
for n in n1 n2 n3; do
	check "... naming $n and its reason" grep -q "node $n refuses the spec of e1: \(run: /usr/bin/env\|driver: driver 'exec'\) is not allowed on this node" "$T_DIR/env.err"
done
check "... and its spec is not kept" sh -c "! $CTL_BIN --manager $MGR_URL delete e1 2>/dev/null"
check "... the refusals are published and logged" log_has manager "node n3 refuses its spec"
sed -e 's|/usr/bin/env|/nonexistent/prog|' -e 's|e1|e2|g' "$T_DIR/env.ini" >"$T_DIR/missing.ini"
ctl apply -f "$T_DIR/missing.ini" 2>"$T_DIR/missing.err"; rc=$?
check "an allowed program that is not installed: exit 1 ($(cat "$T_DIR/missing.err"))" sh -c \
	"[ $rc -eq 1 ] && grep -q 'node n1 refuses the spec of e2: run: /nonexistent/prog is not installed' $T_DIR/missing.err && grep -q 'node n2 refuses the spec of e2: run: /nonexistent/prog is not installed' $T_DIR/missing.err"
check "d1 still runs (it failed over with its node)" sh -c \
	"$CTL_BIN --manager $MGR_URL --json nodes | jq -e '[.[] | select(.state == \"up\") | .components[] | select(.name == \"d1\" and .kind == \"demo\")] | length == 1' >/dev/null"

# ---- a running component's spec replaced by one no node takes, then migrated:
# every target refuses it, and so would the source; the source gets it back
# with the spec it ran, not stopped
d1node=$(ctl --json nodes | jq -r '.[] | select(.state == "up") | select(any(.components[]; .name == "d1")) | .id')
sed -e 's|e1|d1|g' "$T_DIR/env.ini" >"$T_DIR/d1bad.ini"
ctl --json apply -f "$T_DIR/d1bad.ini" >"$T_DIR/d1bad.json" 2>"$T_DIR/d1bad.err"
check "a refused spec for running d1 is stored, d1 stays on $d1node ($(cat "$T_DIR/d1bad.err"))" jqe \
	--arg n "$d1node" '.applied[0] | (.placed | not) and .replaced and .node == $n' "$T_DIR/d1bad.json"
ctl migrate d1 2>"$T_DIR/d1mig.err"; rc=$?
check "migrating d1 fails: no node takes its spec ($(cat "$T_DIR/d1mig.err"))" sh -c \
	"[ $rc -eq 1 ] && grep -q 'restored back on $d1node' $T_DIR/d1mig.err"
check "... and d1 runs again on $d1node as the demo it was" wait_for 10 runs_on "$d1node" d1 demo
check "... the manager said why it used the spec d1 ran" log_has manager "restoring it back with the spec it ran"
finish
