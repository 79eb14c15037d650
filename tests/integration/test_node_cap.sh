#!/usr/bin/env bash
# --max-node-components on the manager is a cap placement keeps: a failover
# leaves out a node that runs that many components (the rest wait, saying
# why) and an explicit migration onto one is refused. A node counts what it
# runs and what is on its way there (declared at attach, moves placed toward
# it), so moves at once and a node that just attached do not go over it.
# Heartbeats are never refused for it: that would mark a live node down.
. "$(dirname "$0")/lib.sh"

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port)
MGR_URL="tcp://127.0.0.1:$MGR_PORT"
DOWN_MS=1500

start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
start_manager manager "$MGR_PORT" "$EV_PORT" "tcp://127.0.0.1:$NAS_PORT" \
	--heartbeat-ms 100 --down-after ${DOWN_MS}ms --max-node-components 2 ||
	{ echo "manager did not start"; exit 1; }
agent() { # NAME ARGS...
	local name=$1; shift
	start "$name" "$AGENT_BIN" --node "$name" --manager "$MGR_URL" \
		--listen "tcp://127.0.0.1:$(free_port)" --interval-ms 200 "$@"
}
agent n1 --demo a1:64K
agent n2 --demo b1:64K --demo b2:64K
agent n3 --demo c1:64K --demo c2:64K
nodes_up() { [ "$(ctl --json nodes | jq '[.[] | select(.state == "up")] | length')" -eq "$1" ]; }
check "three agents attach (n2 and n3 at the cap of 2)" wait_for 30 nodes_up 3
stored() { [ "$(ctl --json ls n2/b2 | jq length)" -ge 2 ] && [ "$(ctl --json ls n2/b1 | jq length)" -ge 2 ]; }
check "n2 checkpoints b1 and b2" wait_for 30 stored
# Placement counts the components a node reports running: wait for n3's two.
runs_two() { [ "$(ctl --json nodes | jq --arg n "$1" '.[] | select(.id == $n) | [.components[] | select(.state == "running")] | length')" -eq 2 ]; }
check "the manager counts n3's two components" wait_for 30 runs_two n3

out=$(ctl migrate a1 --to n3 2>&1); rc=$?
check "a migration onto a full node is refused (exit $rc)" [ "$rc" -ne 0 ]
check "... saying why" grep -q "target node n3 runs 2 components, the most a node takes" <<<"$out"
runs_on() { # COMPONENT: the up node that runs it
	ctl --json nodes | jq -r --arg c "$1" \
		'.[] | select(.state == "up") | select(any(.components[]; .name == $c)) | .id'
}
check "... and a1 still runs on n1" [ "$(runs_on a1)" = n1 ]

# n2 dies: n1 (1 component) has room for one of b1, b2; n3 has none.
stop n2 KILL
placed_or_waiting() { # every one of b1, b2 runs on n1 or waits with a reason
	local c r p
	for c in b1 b2; do
		r=$(runs_on "$c")
		p=$(ctl --json nodes | jq -r --arg c "$c" '[.[] | .pending[]? | select(.component == $c)] | length')
		[ "$r" = n1 ] || [ "$p" -ge 1 ] || return 1
	done
}
check "b1 and b2 each run on n1 or wait" wait_for 30 placed_or_waiting
one_on_n1() { [ "$(runs_on b1)" = n1 ] || [ "$(runs_on b2)" = n1 ]; }
check "one of them runs on n1" wait_for 10 one_on_n1
check "nothing went to n3 (full)" [ "$(runs_on b1)" != n3 -a "$(runs_on b2)" != n3 ]
n1_count=$(ctl --json nodes | jq '.[] | select(.id == "n1") | .components | length')
echo "# n1 runs $n1_count components after the failover"
check "n1 is not over the cap (the move placed there counted before it landed)" [ "$n1_count" -le 2 ]
waiting=$(ctl --json nodes | jq -r '[.[] | .pending[]?] | .[0].reason // ""')
check "the one left waits, saying the nodes are full" grep -q "full" <<<"$waiting"
# Three times the down-after: n1 is never marked down, whatever its count.
sleep $(( 3 * DOWN_MS / 1000 + 1 ))
check "n1 stays up" [ "$(ctl --json nodes | jq -r '.[] | select(.id == "n1") | .state')" = up ]
check "the manager never marked n1 down" sh -c "! grep -q 'node n1 is down' '$T_DIR/manager.log'"
check "no component was lost: a1, b1, b2, c1, c2 run or wait" sh -c '
	for c in a1 b1 b2 c1 c2; do
		r=$('"$CTL_BIN"' --manager '"$MGR_URL"' --json nodes | jq -r --arg c "$c" \
			"[.[] | select(.state == \"up\") | .components[] | select(.name == \$c)] | length")
		p=$('"$CTL_BIN"' --manager '"$MGR_URL"' --json nodes | jq -r --arg c "$c" \
			"[.[] | .pending[]? | select(.component == \$c)] | length")
		[ $((r + p)) -ge 1 ] || exit 1
	done'

# A node that attaches with more than the cap is still refused (the attach is the limit).
agent n4 --demo d1:64K --demo d2:64K --demo d3:64K
check "an attach over the cap is refused" wait_for 15 log_has n4 "node_components"
check "the first manager never saw a node over the cap" \
	sh -c "! grep -q 'over --max-node-components' '$T_DIR/manager.log'"

# ---- Without waiting for heartbeats: a second cluster (its own NAS and manager). ----
# Placement counts what a node declared at attach and the moves placed toward it
# before its heartbeats report them, so nothing here waits for a report first.
NAS2_PORT=$(free_port); MGR2_PORT=$(free_port); EV2_PORT=$(free_port)
MGR2_URL="tcp://127.0.0.1:$MGR2_PORT"
start_nas nas2 "$NAS2_PORT" || { echo "nas2 did not start"; exit 1; }
start_manager manager2 "$MGR2_PORT" "$EV2_PORT" "tcp://127.0.0.1:$NAS2_PORT" \
	--heartbeat-ms 100 --down-after ${DOWN_MS}ms --max-node-components 2 ||
	{ echo "manager2 did not start"; exit 1; }
ctl2() { "$CTL_BIN" --manager "$MGR2_URL" "$@"; }
agent2() { # NAME ARGS...
	local name=$1; shift
	start "$name" "$AGENT_BIN" --node "$name" --manager "$MGR2_URL" \
		--listen "tcp://127.0.0.1:$(free_port)" --interval-ms 200 "$@"
}
is_up2() { [ "$(ctl2 --json nodes | jq -r --arg n "$1" '.[] | select(.id == $n) | .state')" = up ]; }
runs_on2() { # COMPONENT: the up nodes that list it, one per line
	ctl2 --json nodes | jq -r --arg c "$1" \
		'.[] | select(.state == "up") | select(any(.components[]; .name == $c)) | .id'
}
agent2 p1 --demo q1:64K
q1_on_p1() { [ "$(runs_on2 q1)" = p1 ]; }
check "p1 attaches and runs q1" wait_for 30 q1_on_p1
# p3 declares s1 and s2 when it attaches and runs neither yet: it is full from
# its attach on. A migration onto it right away is refused.
agent2 p3 --demo s1:64K --demo s2:64K
check "p3 attaches" wait_for 30 is_up2 p3
out=$(ctl2 migrate q1 --to p3 2>&1); rc=$?
reported=$(ctl2 --json nodes | jq '.[] | select(.id == "p3") | .components | length')
echo "# p3 reported $reported component(s) when q1 was migrated onto it: $out"
check "a migration onto a node that just attached with 2 declared is refused (exit $rc)" [ "$rc" -ne 0 ]
check "... saying it is full" grep -q "the most a node takes" <<<"$out"
check "... and q1 still runs on p1" q1_on_p1

# Room for exactly the moves made below: p1 and p2 one each, p3 one once s1 left it.
agent2 p2 --demo r1:64K
# t1 and t2 carry 16M each: their restores take a while, so the migration
# below is placed while a failover is still under way.
agent2 p4 --demo t1:16M --demo t2:16M
all_stored() {
	local c
	for c in q1:p1 r1:p2 s1:p3 s2:p3 t1:p4 t2:p4; do
		[ "$(runs_on2 "${c%%:*}")" = "${c#*:}" ] || return 1
		[ "$(ctl2 --json ls "${c#*:}/${c%%:*}" | jq length)" -ge 1 ] || return 1
	done
}
check "p1 to p4 run their components, each checkpointed" wait_for 60 all_stored
# p4 dies (t1, t2 fail over) and, the moment it is found down, s1 is migrated
# off p3 by placement: a failover and a migration under way at once.
stop p4 KILL
down_seen() { # polls every 10 ms, up to 30 s
	local i
	for i in $(seq 3000); do
		log_has manager2 "node p4 is down" && return 0
		sleep 0.01
	done
	return 1
}
check "p4 is found down" down_seen
out=$(ctl2 migrate s1 2>&1); rc=$?
echo "# migrate s1 (exit $rc): $out"
migrated=no
{ [ "$rc" -eq 0 ] || grep -q "full" <<<"$out"; } && migrated=yes
check "the migration of s1 is done or refused for room" [ "$migrated" = yes ]
seen_max=0
all_run_once() { # from one snapshot: the most on one up node, and each runs on one
	local nodes c m
	nodes=$(ctl2 --json nodes) || return 1
	m=$(jq '[.[] | select(.state == "up") | .components | length] | max // 0' <<<"$nodes")
	[ "$m" -gt "$seen_max" ] && seen_max=$m
	for c in q1 r1 s1 s2 t1 t2; do
		[ "$(jq --arg c "$c" '[.[] | select(.state == "up") | .components[] |
			select(.name == $c)] | length' <<<"$nodes")" -eq 1 ] || return 1
	done
}
# A failover that found every place held waits, and is tried again when a place
# frees (a move it waited behind ends) or after --failover-retry (5 s) at most.
check "q1, r1, s1, s2, t1 and t2 each run on exactly one node" wait_for 60 all_run_once
echo "# most components seen on one node: $seen_max"
check "no node was seen over the cap" [ "$seen_max" -le 2 ]
counts2() { ctl2 --json nodes | jq -c '[.[] | select(.state == "up") | .components | length]'; }
check "p1, p2 and p3 run 2 each" [ "$(counts2)" = "[2,2,2]" ]
check "no heartbeat of any node went over the cap" \
	sh -c "! grep -q 'over --max-node-components' '$T_DIR/manager2.log'"
# What overlapped (the order of the moves differs from run to run).
grep -E "(failover|migration) of (s1|t1|t2) .*(started|done)|failover of t.* waits" \
	"$T_DIR/manager2.log" | sed 's/^/# /'
finish
