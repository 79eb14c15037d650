#!/usr/bin/env bash
# Manager killed (SIGKILL) and restarted while agents checkpoint: the agents
# keep running their components and storing checkpoints, attach again, the
# manager rebuilds its catalogue from the NAS and the ownership from the
# agents; no checkpoint is lost and no component runs twice.
. "$(dirname "$0")/lib.sh"

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port)
MGR_URL="tcp://127.0.0.1:$MGR_PORT"
NAS_URL="tcp://127.0.0.1:$NAS_PORT"

start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
# No step waits for a node to be marked down: a down-after that a busy machine
# does not miss (heartbeats every 100 ms).
start_manager manager "$MGR_PORT" "$EV_PORT" "$NAS_URL" --heartbeat-ms 100 --down-after 3s ||
	{ echo "manager did not start"; exit 1; }
for i in 1 2; do
	start "a$i" "$AGENT_BIN" --node "a$i" --manager "$MGR_URL" \
		--listen "tcp://127.0.0.1:$(free_port)" --interval-ms 200 --demo "demo_$i:128K"
done
nodes_up() { [ "$(ctl --json nodes | jq '[.[] | select(.state == "up")] | length')" -eq 2 ]; }
check "both agents attach" wait_for 10 nodes_up
# A migration first, so epochs differ from their start. Once the manager
# counts demo_1 on a1 (a heartbeat reports it): before that it migrates it
# "from (nowhere)", a1 is not told to stop, and a1's next store of it meets
# a2's newer epoch ("lost its ownership": seen once under load).
on_a1() {
	ctl --json nodes | jq -e '.[] | select(.id == "a1") | [.components[].name] | index("demo_1") != null' \
		>/dev/null
}
check "the manager counts demo_1 on a1" wait_for 10 on_a1
check "demo_1 migrates to a2" ctl migrate demo_1 --to a2
stores_before=$(grep -c 'checkpoint stored on NAS' "$T_DIR/a2.log")

stop manager KILL
stored_more() { [ "$(grep -c 'checkpoint stored on NAS' "$T_DIR/a2.log")" -gt $((stores_before + 5)) ]; }
check "a2 keeps storing checkpoints while the manager is away" wait_for 30 stored_more
mv "$T_DIR/manager.log" "$T_DIR/manager-1.log"
start_manager manager "$MGR_PORT" "$EV_PORT" "$NAS_URL" --heartbeat-ms 100 --down-after 3s ||
	{ echo "manager did not restart"; exit 1; }
check "the new manager seeds its catalogue from the NAS" \
	wait_for 30 log_has manager "catalogue seeded from the NAS"
check "both agents attach again" wait_for 30 nodes_up
owners() {
	ctl --json nodes | jq -e '
		([.[].components[].name] | sort == ["demo_1", "demo_2"]) and
		(.[] | select(.id == "a2") | [.components[].name] | sort == ["demo_1", "demo_2"])' >/dev/null
}
check "ownership rebuilt: a2 runs demo_1 and demo_2, each once" wait_for 30 owners
check "the manager knows demo_1's raised epoch" sh -c \
	"$CTL_BIN --manager $MGR_URL --json nodes | jq -e '.[].components[] | select(.name == \"demo_1\") | .epoch >= 1' >/dev/null"
check "no agent lost a component" sh -c "! grep -q 'lost its ownership' $T_DIR/a1.log $T_DIR/a2.log"
check "the catalogue has both components" sh -c \
	"[ \$($CTL_BIN --manager $MGR_URL --json catalog | jq length) -ge 2 ]"
sleep 0.5

# No checkpoint lost: every acknowledged one is on the NAS.
grep -ho 'checkpoint stored on NAS: [^ ]* size=[0-9]* ([^)]*) digest=[0-9a-f]*' "$T_DIR"/a1.log "$T_DIR"/a2.log |
	sed 's/checkpoint stored on NAS: \([^/]*\)\/\([^@]*\)@\([0-9]*\) size=[0-9]* ([^)]*) digest=\(.*\)/\1 \2 \3 \4/' \
	>"$T_DIR/acked.txt"   # first: checkpoints go on meanwhile
ctl --json ls >"$T_DIR/ls.json"
missing=0 total=0
while read -r node comp seq sha; do
	total=$((total + 1))
	jq -e --arg n "$node" --arg c "$comp" --argjson s "$seq" --arg h "$sha" \
		'any(.[]; .node == $n and .component == $c and .seq == $s and .digest == "ckpt-chunks-sha256:" + $h)' \
		"$T_DIR/ls.json" >/dev/null || missing=$((missing + 1))
done <"$T_DIR/acked.txt"
echo "# $total acknowledged checkpoints, $missing missing"
check "the agents' logs list acknowledged checkpoints ($total)" [ "$total" -ge 5 ]
check "every acknowledged checkpoint is on the NAS" [ "$missing" -eq 0 ]
check "a migration still works after the restart" ctl migrate demo_2 --to a1

# A third agent started with a component that already runs: it does not start it.
start a3 "$AGENT_BIN" --node a3 --manager "$MGR_URL" --listen "tcp://127.0.0.1:$(free_port)" \
	--interval-ms 200 --demo demo_1:128K
check "a3 is told demo_1 runs elsewhere and does not start it" wait_for 10 log_has a3 \
	"component demo_1 not started on node a3: another node runs it"
check "a3 stored nothing of demo_1" sh -c "! grep -q 'checkpoint stored on NAS: a3/' $T_DIR/a3.log"
once() { ctl --json nodes | jq -e '[.[].components[] | select(.name == "demo_1")] | length == 1' >/dev/null; }
check "demo_1 runs once" once

for s in a1 a2 a3 manager nas; do
	check "$s exits 0 on SIGTERM" stop "$s" TERM
done
finish
