#!/usr/bin/env bash
# An agent started with --demo fz1 declares it at attach; no checkpoint of it
# exists, so the manager tells it (in a heartbeat reply) to start it fresh.
# ckptctl delete fz1 comes after the agent started it and before the manager
# read a heartbeat listing it: the delete succeeds (fz1 was declared, a node
# is starting it) and stops nothing, and the agent's first report of fz1 is
# revoked, so the agent stops it; n1 dying then fails nothing over. Before
# the fix the delete was refused ("no spec of fz1 is stored and no node runs
# it": the registry answered -ENOENT, no owner, no checkpoint) and the first
# report made n1 its owner.
#
# Deterministic through a proxy between the agent and the manager: while
# $T_DIR/hold exists, from the second message the agent sends that names fz1
# (the first is the attach that declares it; then the Notify of the first
# checkpoint it stores once started, or its first heartbeat listing it) on,
# every message it sends is kept, and sent in order once the file is
# removed. The manager's calls to the agent do not go through the proxy.
. "$(dirname "$0")/lib.sh"

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port); PROXY_PORT=$(free_port)
MGR_URL="tcp://127.0.0.1:$MGR_PORT"
[ "$T_TCP" = tcp ] || { echo "# the proxy reads plain SP over tcp only"; exit 77; }

start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
start_manager manager "$MGR_PORT" "$EV_PORT" "tcp://127.0.0.1:$NAS_PORT" --heartbeat-ms 100 \
	--down-after 4s || { echo "manager did not start"; exit 1; }
start proxy python3 "$(dirname "$0")/spproxy.py" "$PROXY_PORT" "$MGR_PORT" "$T_DIR/hold" "$T_DIR/proxy.out" fz1
wait_for 10 grep -q listening "$T_DIR/proxy.out" || { echo "proxy did not start"; exit 1; }
touch "$T_DIR/hold"
start n1 "$AGENT_BIN" --node n1 --manager "tcp://127.0.0.1:$PROXY_PORT" \
	--listen "tcp://127.0.0.1:$(free_port)" --interval-ms 600000 --demo fz1:64K
up() { ctl --json nodes | jq -e --arg n "$1" '.[] | select(.id == $n and .state == "up")' >/dev/null; }
check "n1 attaches (through the proxy)" wait_for 30 up n1
check "the manager tells n1 to start fz1 fresh" \
	wait_for 30 log_has manager "resume of fz1: no checkpoint of it exists; node n1 starts it fresh"
check "n1 starts fz1 fresh" wait_for 30 log_has n1 "component fz1 started fresh"
check "n1's first messages naming fz1 are held" wait_for 10 grep -q held "$T_DIR/proxy.out"
no_fz1() { ctl --json nodes | jq -e 'all(.[].components[]; .name != "fz1")' >/dev/null; }
check "no node lists fz1 yet" no_fz1

out=$(ctl --json delete fz1 2>&1); rc=$?
echo "# delete fz1 (exit $rc): $out"
check "ckptctl delete fz1 succeeds while n1 starts it" [ "$rc" -eq 0 ]
check "... stopping it on no node (none reported it)" \
	jq -e '(.node // "") == ""' <<<"$out"
check "the manager drops its fresh start" \
	wait_for 10 log_has manager "component fz1 deleted: no spec, its failover, resume or fresh start dropped"
rm -f "$T_DIR/hold"
check "the held messages reach the manager" wait_for 10 grep -q released "$T_DIR/proxy.out"
check "the manager revokes fz1 from n1's first report" \
	wait_for 10 log_has manager "node n1 runs fz1"
check "n1 stops fz1" wait_for 10 log_has n1 "component fz1 stopped: node n1 lost its ownership"
sleep 1
check "no node lists fz1" no_fz1

# n1 dies: nothing of fz1 is failed over (it was deleted).
stop n1 KILL
check "n1 is found down" wait_for 20 log_has manager "node n1 is down"
sleep 2
pending_fz1() { ctl --json nodes | jq '[.[] | .pending[]? | select(.component == "fz1")] | length'; }
check "fz1 is not pending failover" [ "$(pending_fz1)" -eq 0 ]
check "the manager started no failover of fz1" sh -c "! grep -q 'failover of fz1' '$T_DIR/manager.log'"
finish
