#!/usr/bin/env bash
# Issue 14, defect 2: `ckptctl put NODE/COMP --epoch N` with N above the
# epoch of COMP's live owner would fence it. Without --force it is refused,
# naming the owner, and nothing is stored; with --force it is stored, the
# manager sees the owner fenced and restores COMP from that checkpoint: on
# its old node when that node is healthy, else where placement says (here:
# the old node is cordoned). Events and `nodes` say so; nothing is lost.
. "$(dirname "$0")/lib.sh"

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port)
MGR_URL="tcp://127.0.0.1:$MGR_PORT"

start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
start_manager manager "$MGR_PORT" "$EV_PORT" "tcp://127.0.0.1:$NAS_PORT" \
	--heartbeat-ms 100 --down-after 2s || { echo "manager did not start"; exit 1; }
start watch "$CTL_BIN" --manager "$MGR_URL" --json watch
agent() { # NAME ARGS...
	local name=$1; shift
	start "$name" "$AGENT_BIN" --node "$name" --manager "$MGR_URL" \
		--listen "tcp://127.0.0.1:$(free_port)" --interval-ms 200 "$@"
}
agent n1 --demo a1:64K
agent n2
nodes_up() { [ "$(ctl --json nodes | jq '[.[] | select(.state == "up")] | length')" -eq "$1" ]; }
check "two agents attach" wait_for 10 nodes_up 2
comp_on() { # COMPONENT: the component as its up node reports it, with "node" added
	ctl --json nodes | jq -c --arg c "$1" '[.[] | select(.state == "up") | .id as $n |
		.components[] | select(.name == $c) | . + {node: $n}] | if length == 1 then .[0] else empty end'
}
stored() { [ "$(ctl --json ls n1/a1 | jq length)" -ge 2 ]; }
check "n1 checkpoints a1" wait_for 10 stored
epoch=$(comp_on a1 | jq -r .epoch)
fence=$((epoch + 5))
take_state() { # a valid state of a1: its latest checkpoint, as an operator would re-push it
	local s
	s=$(ctl --json ls n1/a1 | jq 'map(.seq) | max')
	ctl get "n1/a1@$s" -o "$T_DIR/blob" && blob_sha=$(ctl digest "$T_DIR/blob" | cut -d' ' -f1)
}
take_state

# Without --force: refused, naming the owner; nothing stored at that epoch.
ctl put n1/a1 --kind demo --epoch "$fence" -i "$T_DIR/blob" >"$T_DIR/put1.out" 2>&1; rc=$?
check "put --epoch above the live owner's is refused ($rc)" [ "$rc" -ne 0 ]
check "the error names the owner and --force" \
	sh -c "grep -q 'a1 runs on n1' $T_DIR/put1.out && grep -q -- '--force' $T_DIR/put1.out"
check "nothing was stored at epoch $fence" \
	sh -c "! $CTL_BIN --manager $MGR_URL --json ls n1/a1 | jq -e 'any(.[]; .epoch == $fence)' >/dev/null"
seq_before=$(ctl --json ls n1/a1 | jq 'map(.seq) | max')
goes_on() { [ "$(ctl --json ls n1/a1 | jq 'map(.seq) | max')" -gt "$seq_before" ]; }
check "a1 goes on checkpointing on n1" wait_for 10 goes_on

# With --force: stored, and a1 runs again from that checkpoint, on n1.
ctl --json put n1/a1 --kind demo --epoch "$fence" --force -i "$T_DIR/blob" >"$T_DIR/put2.json" 2>"$T_DIR/put2.err"; rc=$?
check "put --force succeeds ($rc)" [ "$rc" -eq 0 ]
fseq=$(jq -r .seq "$T_DIR/put2.json")
restored_from_forced() { # NODE
	comp_on a1 | jq -e --arg n "$1" --argjson s "$fseq" --arg sha "$blob_sha" --argjson e "$fence" \
		'.node == $n and .state == "running" and .restored_from.seq == $s and .restored_from.digest == $sha and
		 .state_digest == $sha and .epoch > $e' >/dev/null
}
check "a1 runs again on n1, restored from the forced checkpoint, at a higher epoch" \
	wait_for 15 restored_from_forced n1
check "the manager logged the fencing" log_has manager "fenced"
check "a failover event says a1 was restored" wait_for 5 sh -c \
	"jq -e -s 'any(.[]; .kind == \"failover.done\" and .component == \"a1\")' $T_DIR/watch.log"
check "a failover.pending event said why" sh -c \
	"jq -r 'select(.kind == \"failover.pending\") | .message' $T_DIR/watch.log | grep -q fenced"
seq_now=$(ctl --json ls n1/a1 | jq 'map(.seq) | max')
newer() { [ "$(ctl --json ls n1/a1 | jq 'map(.seq) | max')" -gt "$seq_now" ]; }
check "a1 checkpoints again after the restore" wait_for 10 newer

# Old node cordoned: a forced write puts a1 where placement says (n2).
ctl cordon n1 >/dev/null
epoch=$(comp_on a1 | jq -r .epoch)
fence=$((epoch + 5))
take_state
ctl --json put n1/a1 --kind demo --epoch "$fence" --force -i "$T_DIR/blob" >"$T_DIR/put3.json"
fseq=$(jq -r .seq "$T_DIR/put3.json")
check "with n1 cordoned, a1 is restored on n2 from the forced checkpoint" \
	wait_for 15 restored_from_forced n2
once() { ctl --json nodes | jq -e '[.[] | .components[] | select(.name == "a1")] | length == 1' >/dev/null; }
check "a1 runs on one node only" wait_for 10 once
check "the manager exits 0 on SIGTERM" stop manager TERM
finish
