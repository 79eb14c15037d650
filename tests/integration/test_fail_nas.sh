#!/usr/bin/env bash
# NAS killed and restarted: agents keep their checkpoints in the local queue,
# store them in order when the NAS is back, and every acknowledged checkpoint
# ("checkpoint stored on NAS" in an agent's log) is on the NAS with its
# digest. A small --queue-max drops the oldest and counts the drops.
. "$(dirname "$0")/lib.sh"

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port)
MGR_URL="tcp://127.0.0.1:$MGR_PORT"

start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
start_manager manager "$MGR_PORT" "$EV_PORT" "tcp://127.0.0.1:$NAS_PORT" \
	--heartbeat-ms 100 --down-after 3s || { echo "manager did not start"; exit 1; }
start a1 "$AGENT_BIN" --node a1 --manager "$MGR_URL" --listen "tcp://127.0.0.1:$(free_port)" \
	--interval-ms 200 --demo demo_1:256K --demo demo_2:64K
start a2 "$AGENT_BIN" --node a2 --manager "$MGR_URL" --listen "tcp://127.0.0.1:$(free_port)" \
	--interval-ms 200 --demo demo_3:256K --queue-max 600K

stored() { [ "$(ctl --json ls | jq "[.[] | select(.component == \"$1\")] | length")" -ge 2 ]; }
check "agents store checkpoints" wait_for 10 stored demo_3

stop nas KILL
queued() { ctl --json nodes | jq -e --arg n "$1" '.[] | select(.id == $n) | .queued > 0' >/dev/null; }
check "a1 queues checkpoints while the NAS is down" wait_for 15 queued a1
check "a1 logged the NAS unavailable" log_has a1 "NAS unavailable"
dropped() { ctl --json nodes | jq -e '.[] | select(.id == "a2") | .queue_dropped > 0' >/dev/null; }
check "a2's small queue drops the oldest and counts it" wait_for 15 dropped
check "a2 logged the drop" log_has a2 "dropped the oldest"
check "the agents keep running their components" sh -c \
	"$CTL_BIN --manager $MGR_URL --json nodes | jq -e '[.[].components[].name] | sort == [\"demo_1\",\"demo_2\",\"demo_3\"]' >/dev/null"

sleep 1.5 # a few more checkpoints wait
start_nas nas "$NAS_PORT" || { echo "nas did not restart"; exit 1; }
drained() { ctl --json nodes | jq -e 'all(.[]; .queued == 0)' >/dev/null; }
check "the queues drain once the NAS is back" wait_for 20 drained
check "a1 stored checkpoints from its queue" log_has a1 "from the queue"
sleep 0.5

# Every acknowledged checkpoint is on the NAS, with its digest.
acked() {
	grep -ho 'checkpoint stored on NAS: [^ ]* size=[0-9]* ([^)]*) sha256=[0-9a-f]*' "$T_DIR"/a1.log "$T_DIR"/a2.log |
		sed 's/checkpoint stored on NAS: \([^/]*\)\/\([^@]*\)@\([0-9]*\) size=[0-9]* ([^)]*) sha256=\(.*\)/\1 \2 \3 \4/'
}
acked >"$T_DIR/acked.txt"   # first: checkpoints go on meanwhile
ctl --json ls >"$T_DIR/ls.json"
missing=0
while read -r node comp seq sha; do
	jq -e --arg n "$node" --arg c "$comp" --argjson s "$seq" --arg h "$sha" \
		'any(.[]; .node == $n and .component == $c and .seq == $s and .sha256 == $h)' \
		"$T_DIR/ls.json" >/dev/null || { missing=$((missing + 1)); echo "# missing: $node/$comp@$seq"; }
done <"$T_DIR/acked.txt"
echo "# $(wc -l <"$T_DIR/acked.txt") acknowledged checkpoints"
check "the agents' logs list acknowledged checkpoints" [ "$(wc -l <"$T_DIR/acked.txt")" -ge 5 ]
check "every acknowledged checkpoint is on the NAS" [ "$missing" -eq 0 ]
check "checkpoints acknowledged after the restart too" [ "$(grep -c 'from the queue' "$T_DIR/a1.log")" -ge 1 ]
order() { # seqs of demo_1 on the NAS count up without going back in time
	jq -e '[.[] | select(.component == "demo_1")] | sort_by(.seq) | [.[].created_unix_ms] as $t |
		($t | length) > 3' "$T_DIR/ls.json" >/dev/null
}
check "demo_1 has its checkpoints from before, during and after the outage" order

for s in a1 a2 manager nas; do
	check "$s exits 0 on SIGTERM" stop "$s" TERM
done
finish
