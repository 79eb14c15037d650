#!/usr/bin/env bash
# A failover that found every node at --max-node-components waits, and is
# tried again the moment a place frees on a node, not at its next retry: here
# the retry is an hour (--failover-retry 1h), so every restore below comes
# from a place freed by the operator: a component deleted (ckptctl delete),
# a migration away from a full node. Attempts are counted (ckptctl nodes
# --json, pending[].attempts): with an hour between retries they go up only
# when something wakes the failover.
. "$(dirname "$0")/lib.sh"

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port)
MGR_URL="tcp://127.0.0.1:$MGR_PORT"

start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
start_manager manager "$MGR_PORT" "$EV_PORT" "tcp://127.0.0.1:$NAS_PORT" \
	--heartbeat-ms 100 --down-after 1500ms --max-node-components 2 --failover-retry 1h ||
	{ echo "manager did not start"; exit 1; }
agent() { # NAME ARGS...
	local name=$1; shift
	start "$name" "$AGENT_BIN" --node "$name" --manager "$MGR_URL" \
		--listen "tcp://127.0.0.1:$(free_port)" --interval-ms 200 "$@"
}
# c1 and c2 require zone=a: n1 and n2 can take them (when not full), n4 never.
agent n1 --label zone=a --demo a1:64K --demo a2:64K
agent n2 --label zone=a --demo b1:64K --demo b2:64K
agent n3 --label zone=a --demo 'c1:64K@zone=a' --demo 'c2:64K@zone=a'
runs_on() { # COMPONENT: the up node that runs it
	ctl --json nodes | jq -r --arg c "$1" \
		'.[] | select(.state == "up") | select(any(.components[]; .name == $c)) | .id'
}
all_run() {
	local c
	for c in a1:n1 a2:n1 b1:n2 b2:n2 c1:n3 c2:n3; do
		[ "$(runs_on "${c%%:*}")" = "${c#*:}" ] || return 1
	done
	[ "$(ctl --json ls n3/c1 | jq length)" -ge 1 ] && [ "$(ctl --json ls n3/c2 | jq length)" -ge 1 ]
}
check "n1, n2 and n3 run two components each (the cap), c1 and c2 checkpointed" wait_for 60 all_run

attempts() { # COMPONENT: its failover attempts, 0 when it does not wait
	ctl --json nodes | jq --arg c "$1" '[.[] | .pending[]? | select(.component == $c) | .attempts] | max // 0'
}
both_wait() { [ "$(attempts c1)" -ge 1 ] && [ "$(attempts c2)" -ge 1 ]; }
stop n3 KILL
check "n3 dies: the failovers of c1 and c2 find n1 and n2 full and wait" wait_for 30 both_wait
check "... saying so, and that a place that frees wakes them" \
	log_has manager "failover of c1 waits (attempt 1, next in .* ms or when a node attaches or a place frees): .*full"
before=$(( $(attempts c1) + $(attempts c2) ))
sleep 1
check "... and nothing tries them again while nothing changes ($before attempts)" \
	[ "$(( $(attempts c1) + $(attempts c2) ))" -eq "$before" ]

# ---- A component deleted on n1: one of c1, c2 takes its place there at once.
ctl delete a1 >"$T_DIR/del.out" 2>&1; rc=$?
check "ckptctl delete a1 (exit $rc: $(cat "$T_DIR/del.out"))" [ "$rc" -eq 0 ]
one_on_n1() { [ "$(runs_on c1)" = n1 ] || [ "$(runs_on c2)" = n1 ]; }
check "one of c1, c2 is restored on n1, long before the next retry" wait_for 30 one_on_n1
if [ "$(runs_on c1)" = n1 ]; then placed=c1 left=c2; else placed=c2 left=c1; fi
echo "# $placed restored on n1; $left waits"
check "... from its checkpoint" log_has manager "failover of $placed from n3 to n1 done: restored n3/$placed@"
check "... the other was tried again too, and waits (n1 and n2 full again)" \
	wait_for 10 sh -c "[ \$($CTL_BIN --manager $MGR_URL --json nodes | jq --arg c $left \
		'[.[] | .pending[]? | select(.component == \$c) | .attempts] | max // 0') -ge 2 ]"
check "... and runs nowhere" [ -z "$(runs_on "$left")" ]

# ---- A migration away from full n2 ends: the place it leaves is taken at once.
# n4 attaches (every waiting failover is tried: it lacks zone=a, so $left still waits).
agent n4 --label zone=b
n4_up() { ctl --json nodes | jq -e '.[] | select(.id == "n4" and .state == "up")'; }
check "n4 attaches" wait_for 30 n4_up
n_tried=$(attempts "$left")
left_retried() { [ "$(attempts "$left")" -gt "$n_tried" ] || [ "$(attempts "$left")" -ge 3 ]; }
check "... $left is tried on n4's attach and still waits (n4 lacks zone=a)" wait_for 10 left_retried
check "... runs nowhere" [ -z "$(runs_on "$left")" ]
out=$(ctl migrate b1 --to n4 2>&1); rc=$?
check "ckptctl migrate b1 --to n4 (exit $rc)" [ "$rc" -eq 0 ]
left_on_n2() { [ "$(runs_on "$left")" = n2 ]; }
check "$left is restored on n2, in the place b1 left, long before the next retry" wait_for 30 left_on_n2
check "... from its checkpoint" log_has manager "failover of $left from n3 to n2 done: restored n3/$left@"

counts() { ctl --json nodes | jq -c '[.[] | select(.state == "up") | {(.id): (.components | length)}] | add'; }
echo "# components per node: $(counts)"
check "n1, n2 and n4 run 2, 2 and 1" [ "$(counts)" = '{"n1":2,"n2":2,"n4":1}' ]
check "no heartbeat went over the cap" sh -c "! grep -q 'over --max-node-components' '$T_DIR/manager.log'"
check "nothing waits any more" [ "$(ctl --json nodes | jq '[.[] | .pending[]?] | length')" -eq 0 ]
finish
