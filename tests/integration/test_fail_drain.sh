#!/usr/bin/env bash
# ckptctl drain moves every component off a node and leaves it empty and
# cordoned; nothing is placed on a cordoned node (migrate --to, failover)
# until uncordon.
. "$(dirname "$0")/lib.sh"

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port)
MGR_URL="tcp://127.0.0.1:$MGR_PORT"

start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
start_manager manager "$MGR_PORT" "$EV_PORT" "tcp://127.0.0.1:$NAS_PORT" \
	--heartbeat-ms 100 --down-after 2s || { echo "manager did not start"; exit 1; }
agent() {
	local name=$1; shift
	start "$name" "$AGENT_BIN" --node "$name" --manager "$MGR_URL" \
		--listen "tcp://127.0.0.1:$(free_port)" --interval-ms 300 "$@"
}
agent a1 --demo demo_1:256K --demo demo_2:64K --demo demo_3:64K
agent a2
agent a3 --demo demo_4:64K
nodes_up() { [ "$(ctl --json nodes | jq '[.[] | select(.state == "up")] | length')" -eq "$1" ]; }
check "three agents attach" wait_for 30 nodes_up 3
# Drained once every node reports what it started (a component a node is
# still starting is in no heartbeat yet).
listed() { [ "$(ctl --json nodes | jq '[.[].components[].name] | length')" -eq 4 ]; }
check "the nodes report their four components" wait_for 30 listed

ctl --json drain a1 >"$T_DIR/drain.json"
check "drain exits 0" [ $? -eq 0 ]
check "drain moved three components" [ "$(jq '.moved | length' "$T_DIR/drain.json")" -eq 3 ]
check "each restored state equals its final checkpoint" \
	sh -c "jq -e 'all(.moved[]; .state_sha256 == .restored_from.sha256)' $T_DIR/drain.json >/dev/null"
node_json() { ctl --json nodes | jq -c --arg n "$1" '.[] | select(.id == $n)'; }
a1=$(node_json a1)
check "a1 is empty" [ "$(jq '.components | length' <<<"$a1")" -eq 0 ]
check "a1 is cordoned" [ "$(jq .cordoned <<<"$a1")" = true ]
check "ckptctl nodes shows the cordon" sh -c "$CTL_BIN --manager $MGR_URL nodes | grep a1 | grep -q cordoned"
check "a1 logged its components stopped" log_has a1 "component demo_3 stopped"
check "the components run on a2 and a3" wait_for 10 sh -c \
	"$CTL_BIN --manager $MGR_URL --json nodes | jq -e '[.[] | select(.id != \"a1\") | .components[].name] | sort == [\"demo_1\",\"demo_2\",\"demo_3\",\"demo_4\"]' >/dev/null"
check "migrate --to a cordoned node is refused" sh -c "! $CTL_BIN --manager $MGR_URL migrate demo_1 --to a1 2>$T_DIR/err.txt"
check "... saying it is cordoned" grep -q "cordoned" "$T_DIR/err.txt"

# a2 cordoned too, a3 killed: its components wait (no node can take them)...
check "cordon a2" ctl cordon a2
host3=$(ctl --json nodes | jq -r '[.[] | select(.id == "a3") | .components[].name] | length')
stop a3 KILL
pending() { ctl --json nodes | jq -e '.[] | select(.id == "a3") | .pending | length > 0' >/dev/null; }
check "a3's components wait while every other node is cordoned" wait_for 30 pending
check "the reason names the cordon" sh -c \
	"$CTL_BIN --manager $MGR_URL --json nodes | jq -r '.[] | select(.id == \"a3\") | .pending[0].reason' | grep -q cordoned"
# ... and go to a1 once it is uncordoned.
check "uncordon a1" ctl uncordon a1
on_a1() { [ "$(ctl --json nodes | jq '.[] | select(.id == "a1") | .components | length')" -eq "$host3" ]; }
check "a3's components fail over to a1 after uncordon" wait_for 30 on_a1
check "a2 (cordoned) took nothing new" [ "$(ctl --json nodes | jq '.[] | select(.id == "a2") | .components | length')" -le 3 ]

for s in a1 a2 manager nas; do
	check "$s exits 0 on SIGTERM" stop "$s" TERM
done
finish
