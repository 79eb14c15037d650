#!/usr/bin/env bash
# ckptctl delete stops a component on its node and releases it. A heartbeat
# the agent made before it stopped it, read by the manager after the
# release, lists it: the manager revokes it, and does not make that node its
# owner again (before the fix it did: listed, counted against the cap, and
# restored elsewhere when the node died).
#
# The race is made deterministic by a proxy between the agent and the
# manager that holds one heartbeat: the next message the agent sends once
# $T_DIR/hold exists (nothing else flows: no periodic checkpoints) is kept
# until the file is removed, while the messages after it go through (the
# final checkpoint's Notify). The manager's calls to the agent (Stop) do not
# go through the proxy.
. "$(dirname "$0")/lib.sh"

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port); PROXY_PORT=$(free_port)
MGR_URL="tcp://127.0.0.1:$MGR_PORT"
[ "$T_TCP" = tcp ] || { echo "# the proxy reads plain SP over tcp only"; exit 77; }

start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
start_manager manager "$MGR_PORT" "$EV_PORT" "tcp://127.0.0.1:$NAS_PORT" --heartbeat-ms 100 \
	--down-after 4s || { echo "manager did not start"; exit 1; }
start proxy python3 "$(dirname "$0")/spproxy.py" "$PROXY_PORT" "$MGR_PORT" "$T_DIR/hold" "$T_DIR/proxy.out"
wait_for 10 grep -q listening "$T_DIR/proxy.out" || { echo "proxy did not start"; exit 1; }
start n1 "$AGENT_BIN" --node n1 --manager "tcp://127.0.0.1:$PROXY_PORT" \
	--listen "tcp://127.0.0.1:$(free_port)" --interval-ms 600000 --demo c1:64K
start n2 "$AGENT_BIN" --node n2 --manager "$MGR_URL" --listen "tcp://127.0.0.1:$(free_port)" \
	--interval-ms 600000
on() { # NODE COMPONENT: the node is up and lists it
	ctl --json nodes | jq -e --arg n "$1" --arg c "$2" \
		'.[] | select(.id == $n and .state == "up") | any(.components[]; .name == $c)' >/dev/null
}
up() { ctl --json nodes | jq -e --arg n "$1" '.[] | select(.id == $n and .state == "up")' >/dev/null; }
check "n1 runs c1 (through the proxy)" wait_for 30 on n1 c1
check "n2 is up" wait_for 30 up n2

touch "$T_DIR/hold"
check "a heartbeat of n1 listing c1 is held" wait_for 10 grep -q held "$T_DIR/proxy.out"
out=$(ctl delete c1 2>&1); rc=$?
echo "# delete c1 (exit $rc): $out"
check "ckptctl delete c1 stops it on n1" [ "$rc" -eq 0 ]
check "... on n1" grep -q "n1" <<<"$out"
rm -f "$T_DIR/hold"
check "the held heartbeat reaches the manager" wait_for 10 grep -q released "$T_DIR/proxy.out"
check "the manager revokes c1 from n1's stale heartbeat" \
	wait_for 10 log_has manager "node n1 runs c1"
no_c1() { ctl --json nodes | jq -e 'all(.[].components[]; .name != "c1")' >/dev/null; }
check "no node lists c1" no_c1

# n1 dies: nothing of c1 is failed over (it was deleted).
stop n1 KILL
check "n1 is found down" wait_for 20 log_has manager "node n1 is down"
sleep 2
pending_c1() { ctl --json nodes | jq '[.[] | .pending[]? | select(.component == "c1")] | length'; }
check "c1 is not pending failover" [ "$(pending_c1)" -eq 0 ]
check "c1 runs nowhere" no_c1
check "the manager started no failover of c1" sh -c "! grep -q 'failover of c1' '$T_DIR/manager.log'"
finish
