#!/usr/bin/env bash
# A --demo component (no spec) whose node died waits for a failover (no other
# node up). ckptctl delete drops that failover: it succeeds (before the fix
# it was refused, "no spec of pc1 is stored and no node runs it", and the
# failover went on), and a node that attaches afterwards, which kicks every
# waiting failover, is not given pc1 (before the fix it was restored there:
# a component deleted by the operator running again).
. "$(dirname "$0")/lib.sh"

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port)
MGR_URL="$T_TCP://127.0.0.1:$MGR_PORT"

start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
start_manager manager "$MGR_PORT" "$EV_PORT" "$T_TCP://127.0.0.1:$NAS_PORT" --heartbeat-ms 100 \
	--down-after 2s || { echo "manager did not start"; exit 1; }
start n1 "$AGENT_BIN" --node n1 --manager "$MGR_URL" --listen "tcp://127.0.0.1:$(free_port)" \
	--interval-ms 300 --demo pc1:64K
on() { # NODE COMPONENT: the node is up and lists it
	ctl --json nodes | jq -e --arg n "$1" --arg c "$2" \
		'.[] | select(.id == $n and .state == "up") | any(.components[]; .name == $c)' >/dev/null
}
check "n1 runs pc1" wait_for 30 on n1 pc1
check "a checkpoint of pc1 is catalogued" wait_for 30 log_has manager "checkpoint stored on NAS: n1/pc1@"

stop n1 KILL
check "n1 is found down" wait_for 20 log_has manager "node n1 is down"
check "the failover of pc1 waits (no node to take it)" \
	wait_for 20 log_has manager "failover of pc1 waits"
pending_pc1() { ctl --json nodes | jq '[.[] | .pending[]? | select(.component == "pc1")] | length'; }
check "pc1 is pending failover" [ "$(pending_pc1)" -eq 1 ]

out=$(ctl --json delete pc1 2>&1); rc=$?
echo "# delete pc1 (exit $rc): $out"
check "ckptctl delete pc1 succeeds while its failover waits" [ "$rc" -eq 0 ]
check "the manager drops its failover" \
	wait_for 10 log_has manager "component pc1 deleted: no spec, its failover, resume or fresh start dropped"
check "pc1 is not pending any more" [ "$(pending_pc1)" -eq 0 ]

# A node attaches (every waiting failover is due again): pc1 is not given to it.
start n2 "$AGENT_BIN" --node n2 --manager "$MGR_URL" --listen "tcp://127.0.0.1:$(free_port)" \
	--interval-ms 300
up() { ctl --json nodes | jq -e --arg n "$1" '.[] | select(.id == $n and .state == "up")' >/dev/null; }
check "n2 is up" wait_for 30 up n2
sleep 2
no_pc1() { ctl --json nodes | jq -e 'all(.[].components[]; .name != "pc1")' >/dev/null; }
check "no node runs pc1" no_pc1
check "pc1 was not restored on n2" sh -c "! grep -q 'pc1' '$T_DIR/n2.log'"
finish
