#!/usr/bin/env bash
# A failover hands the component's spec to the next node, and a node that
# refuses it is passed over with its reason visible. n1 and n2 allow the
# exec driver, n3 only the demo; all carry role=worker, which the spec
# requires. n2 is cordoned, so the counter goes to n1 (n3 refuses it if it
# is offered first). n1 is SIGKILLed: n3 alone may take it and refuses, so
# the failover waits and says why (nodes pending[], failover.pending and
# spec.refused events, the log). n2 is uncordoned: the counter moves there
# and counts on. A spec whose labels no node carries is refused at apply.
. "$(dirname "$0")/lib.sh"
jqe() { jq -e "$@" >/dev/null; }

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port)
MGR_URL="tcp://127.0.0.1:$MGR_PORT"
start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
start_manager manager "$MGR_PORT" "$EV_PORT" "tcp://127.0.0.1:$NAS_PORT" \
	--heartbeat-ms 100 --down-after 1500ms || { echo "manager did not start"; exit 1; }
start watch "$CTL_BIN" --manager "$MGR_URL" --json watch

C="$T_DIR/comps"
mkdir -p "$C"
for n in n1 n2 n3; do
	{
		printf '[agent]\nnode = %s\nmanager = %s\nlisten = tcp://127.0.0.1:%s\n' "$n" "$MGR_URL" "$(free_port)"
		[ "$n" = n3 ] || printf '[allow]\ndrivers = exec\nprograms = /bin/sh /bin/cat\nfolders = %s\n' "$C"
	} >"$T_DIR/$n.ini"
done
agent() { start "$1" "$AGENT_BIN" --config "$T_DIR/$1.ini" --interval-ms 200 --label role=worker; }
agent n1; agent n2; agent n3
nodes_up() { [ "$(ctl --json nodes | jq '[.[] | select(.state == "up")] | length')" -eq "$1" ]; }
check "three agents attach" wait_for 30 nodes_up 3
ctl cordon n2 >/dev/null

cat >"$T_DIR/counter.ini" <<INI
[component counter]
driver   = exec
requires = role=worker
folder   = $C/counter
run      = /bin/sh -c "n=\$(cat state 2>/dev/null || echo 0);while :;do n=\$((n+1));echo \$n >s.tmp;mv s.tmp state;sleep 0.1;done"
dump     = /bin/cat state
restore  = /bin/sh -c "cat >state"
INI
ctl --json apply -f "$T_DIR/counter.ini" >"$T_DIR/apply.json" 2>"$T_DIR/apply.err"
check "the counter is placed on n1 ($(cat "$T_DIR/apply.err"))" jqe '.applied[0].node == "n1"' "$T_DIR/apply.json"
runs_on() { # COMPONENT: the up node that runs it
	ctl --json nodes | jq -r --arg c "$1" \
		'.[] | select(.state == "up") | select(any(.components[]; .name == $c)) | .id'
}
check "it runs and is checkpointed" wait_for 15 sh -c \
	"[ \$($CTL_BIN --manager $MGR_URL --json ls n1/counter | jq length) -ge 3 ]"

stop n1 KILL
kill_under "$C"
last=$(cat "$C/counter/state")
pending_why() {
	ctl --json nodes | jq -e '.[] | select(.id == "n1") | .pending[] |
		select(.component == "counter") | .reason | test("node n3 refuses the spec of counter: driver")' >/dev/null
}
check "with n2 cordoned, only n3 is offered it: it refuses, the failover waits and nodes says why" \
	wait_for 30 pending_why
check "a failover.pending event names n3's reason" wait_for 10 sh -c \
	"jq -r 'select(.kind == \"failover.pending\" and .component == \"counter\") | .message' $T_DIR/watch.log | grep -q 'node n3 refuses'"
event() { jq -c "select($1)" "$T_DIR/watch.log" | grep -q .; }
check "a spec.refused event from n3" wait_for 10 event \
	'.kind == "spec.refused" and .node == "n3" and .component == "counter"'
check "the manager logged the refusal" log_has manager "failover of counter: node n3 refuses its spec"
check "n3 runs nothing of it" sh -c "[ -z \"\$($(declare -f runs_on ctl); MGR_URL=$MGR_URL CTL_BIN=$CTL_BIN; runs_on counter)\" ]"

ctl uncordon n2 >/dev/null
check "uncordoned, n2 takes the counter with its spec" wait_for 30 sh -c \
	"[ \"\$($(declare -f runs_on ctl); MGR_URL=$MGR_URL CTL_BIN=$CTL_BIN; runs_on counter)\" = n2 ]"
check "... as an exec component" sh -c "$CTL_BIN --manager $MGR_URL --json nodes | jq -e '.[] | select(.id == \"n2\") | .components[] | select(.name == \"counter\" and .kind == \"exec\")' >/dev/null"
check "... and counts on from ${last:-?}" wait_for 10 sh -c "[ \$(cat $C/counter/state) -gt ${last:-0} ]"
check "a failover.done event" wait_for 10 event \
	'.kind == "failover.done" and .component == "counter" and .target == "n2"'

sed -e 's/counter/gpu_job/g' -e 's/role=worker/gpu=yes/' "$T_DIR/counter.ini" >"$T_DIR/gpu.ini"
ctl apply -f "$T_DIR/gpu.ini" 2>"$T_DIR/gpu.err"; rc=$?
check "a spec whose labels no node carries is refused at apply ($(cat "$T_DIR/gpu.err"))" sh -c \
	"[ $rc -eq 1 ] && grep -q 'without a required label (gpu=yes)' $T_DIR/gpu.err"
check "... and not kept" sh -c "! $CTL_BIN --manager $MGR_URL delete gpu_job 2>/dev/null"
ctl --json delete counter >"$T_DIR/del.json"
check "delete stops it" sh -c "[ -z \"\$($(declare -f runs_on ctl); MGR_URL=$MGR_URL CTL_BIN=$CTL_BIN; runs_on counter)\" ]"

# Every checkpoint deleted and the manager started again: nothing remembers
# the counter's epoch but the NAS. Applied again, it starts fresh above it,
# so the NAS takes its checkpoints.
old_epoch=$(jq .checkpoint.epoch "$T_DIR/del.json")
ctl rm n1/counter >/dev/null 2>&1
ctl rm n2/counter >/dev/null 2>&1
check "its checkpoints are gone" sh -c "[ \$($CTL_BIN --manager $MGR_URL --json ls | jq '[.[] | select(.component == \"counter\")] | length') -eq 0 ]"
stop manager TERM
mv "$T_DIR/manager.log" "$T_DIR/manager-first.log"
start_manager manager "$MGR_PORT" "$EV_PORT" "tcp://127.0.0.1:$NAS_PORT" \
	--heartbeat-ms 100 --down-after 1500ms || { echo "manager did not start again"; exit 1; }
check "the nodes attach to the new manager" wait_for 20 nodes_up 2
ctl --json apply -f "$T_DIR/counter.ini" >"$T_DIR/fresh.json" 2>"$T_DIR/fresh.err"
check "applied again, it starts fresh above epoch $old_epoch ($(cat "$T_DIR/fresh.err"))" \
	jqe --argjson e "$old_epoch" '.applied[0] | .fresh and .epoch > $e' "$T_DIR/fresh.json"
node=$(jq -r '.applied[0].node' "$T_DIR/fresh.json")
check "... and the NAS takes its checkpoints" wait_for 15 sh -c \
	"[ \$($CTL_BIN --manager $MGR_URL --json ls $node/counter | jq length) -ge 2 ]"
finish
