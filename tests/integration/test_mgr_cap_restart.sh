#!/usr/bin/env bash
# A manager started again with a lower --max-node-components than a node
# runs: the node attaches again with what it runs (it ran them under the old
# manager; the new one knows it from the catalogue it seeds from the NAS,
# which says the node stored their newest checkpoints). Refusing it, as
# before, kept the agent retrying for ever and everything it ran unowned. A
# new node over the cap is still refused.
. "$(dirname "$0")/lib.sh"

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port)
MGR_URL="tcp://127.0.0.1:$MGR_PORT"
NAS_URL="tcp://127.0.0.1:$NAS_PORT"

start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
start_manager manager "$MGR_PORT" "$EV_PORT" "$NAS_URL" --heartbeat-ms 100 --down-after 3s \
	--max-node-components 3 || { echo "manager did not start"; exit 1; }
agent() { # NAME ARGS...
	local name=$1; shift
	start "$name" "$AGENT_BIN" --node "$name" --manager "$MGR_URL" \
		--listen "tcp://127.0.0.1:$(free_port)" --interval-ms 200 "$@"
}
agent n1 --demo c1:64K --demo c2:64K --demo c3:64K
runs_three() { # n1 up, listing c1, c2 and c3 running
	ctl --json nodes | jq -e '.[] | select(.id == "n1" and .state == "up") |
		[.components[] | select(.state == "running") | .name] | sort == ["c1", "c2", "c3"]' >/dev/null
}
check "n1 runs c1, c2 and c3 (the cap is 3)" wait_for 30 runs_three
stored() { local c; for c in c1 c2 c3; do [ "$(ctl --json ls "n1/$c" | jq length)" -ge 1 ] || return 1; done; }
check "n1 stored a checkpoint of each" wait_for 30 stored

stop manager KILL
mv "$T_DIR/manager.log" "$T_DIR/manager-1.log"
start_manager manager "$MGR_PORT" "$EV_PORT" "$NAS_URL" --heartbeat-ms 100 --down-after 3s \
	--max-node-components 2 || { echo "manager did not restart"; exit 1; }
check "the new manager seeds its catalogue from the NAS" \
	wait_for 30 log_has manager "catalogue seeded from the NAS"
check "n1 attaches again to the manager with the cap of 2, with its 3" wait_for 30 runs_three
check "... its attach was never refused" sh -c "! grep -q 'node_components' '$T_DIR/n1.log'"
check "... the manager says it runs over the cap" \
	wait_for 10 log_has manager "node n1 runs 3 components, over --max-node-components 2"
pending() { ctl --json nodes | jq '[.[] | .pending[]?] | length'; }
check "nothing is pending failover" [ "$(pending)" -eq 0 ]
# Three heartbeats' worth of down-after later: n1 is still up with its 3, nothing moved.
sleep 4
check "n1 stays up with c1, c2 and c3" runs_three
check "the new manager never marked n1 down" sh -c "! grep -q 'node n1 is down' '$T_DIR/manager.log'"
check "no component of n1 was stopped" sh -c "! grep -q 'lost its ownership' '$T_DIR/n1.log'"

# A new node over the cap is refused.
agent n2 --demo d1:64K --demo d2:64K --demo d3:64K
check "a new node over the cap is refused" wait_for 15 log_has n2 "node_components"
n2_unknown() { ctl --json nodes | jq -e 'all(.[]; .id != "n2")' >/dev/null; }
check "... and not registered" n2_unknown
finish
