#!/usr/bin/env bash
# Issue 14, defect 1: a node id held by a live agent is not taken by another
# process. A second `ckpt-agent --node n1` is refused with ALREADY_EXISTS
# (it exits non-zero saying so, the manager logs it) and n1 keeps its
# address and components; an agent restarted after SIGKILL, faster than
# down-after (its old instance still "up"), takes its node back, on another
# port or on the same one.
. "$(dirname "$0")/lib.sh"

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port)
MGR_URL="tcp://127.0.0.1:$MGR_PORT"
P1=$(free_port); P2=$(free_port); P3=$(free_port)

start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
start_manager manager "$MGR_PORT" "$EV_PORT" "tcp://127.0.0.1:$NAS_PORT" \
	--heartbeat-ms 100 --down-after 5s || { echo "manager did not start"; exit 1; }
agent() { # LOGNAME PORT ARGS...
	local name=$1 port=$2; shift 2
	start "$name" "$AGENT_BIN" --node n1 --manager "$MGR_URL" \
		--listen "tcp://127.0.0.1:$port" --interval-ms 200 "$@"
}
n1_is() { # ADDRESS_PORT: n1 up at that port
	ctl --json nodes | jq -e --arg a "tcp://127.0.0.1:$1" \
		'.[] | select(.id == "n1") | .state == "up" and .address == $a' >/dev/null
}
n1_runs_a1() {
	ctl --json nodes | jq -e '.[] | select(.id == "n1") | any(.components[]; .name == "a1")' >/dev/null
}
exited() { eval "! kill -0 \${PID_$1}" 2>/dev/null; }

agent n1 "$P1" --demo a1:64K
check "n1 attaches from its port" wait_for 10 n1_is "$P1"
check "n1 runs a1" wait_for 10 n1_runs_a1

# A second agent claims n1 from another port.
agent dup "$P2"
check "the second n1 exits" wait_for 20 exited dup
stop dup; rc=$?
check "it exits non-zero ($rc)" [ "$rc" -ne 0 ]
check "it says ALREADY_EXISTS" log_has dup "ALREADY_EXISTS"
check "it says n1 is held by a live agent" log_has dup "held by a live agent"
check "the manager logged the refusal" log_has manager "refused"
check "n1 keeps its address" n1_is "$P1"
check "n1 keeps a1" n1_runs_a1
sleep 1 # heartbeats of the real n1 go on: still there, still its address
check "n1 still at its own address after a second" n1_is "$P1"
check "n1 was never marked down" sh -c "! grep -q 'node n1 is down' $T_DIR/manager.log"

# SIGKILL and an immediate restart on another port: accepted.
stop n1 KILL
agent n1b "$P3" --demo a1:64K
check "a restarted n1 (another port) is accepted before down-after" wait_for 10 n1_is "$P3"
check "its agent logged the attach" wait_for 5 log_has n1b "attached to manager"
check "the manager logged the takeover" log_has manager "takes over node n1"

# SIGKILL and an immediate restart on the same port: accepted too.
stop n1b KILL
agent n1c "$P3" --demo a1:64K
check "a restarted n1 (same port) is accepted" wait_for 10 log_has n1c "attached to manager"
check "n1 is up at that port" wait_for 10 n1_is "$P3"
check "n1 runs a1 again" wait_for 10 n1_runs_a1
check "n1 was never marked down (restarts within down-after)" \
	sh -c "! grep -q 'node n1 is down' $T_DIR/manager.log"
check "n1 exits 0 on SIGTERM" stop n1c TERM
finish
