#!/usr/bin/env bash
# Issue 14, defect 6: migrations do not starve heartbeats. With two request
# workers (--workers 2), six migrations that hang (the NAS is frozen with
# SIGSTOP: the final checkpoints and the restores wait on it) run while
# other nodes heartbeat with a short down-after: no node is marked down, the
# manager keeps answering, and once the NAS is back every component runs on
# exactly one node.
. "$(dirname "$0")/lib.sh"

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port)
MGR_URL="tcp://127.0.0.1:$MGR_PORT"
COMPS="c1 c2 c3 c4 c5 c6"

start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
start_manager manager "$MGR_PORT" "$EV_PORT" "tcp://127.0.0.1:$NAS_PORT" \
	--workers 2 --heartbeat-ms 100 --down-after 2s || { echo "manager did not start"; exit 1; }
agent() { # NAME ARGS...
	local name=$1; shift
	start "$name" "$AGENT_BIN" --node "$name" --manager "$MGR_URL" \
		--listen "tcp://127.0.0.1:$(free_port)" --interval-ms 300 "$@"
}
demos=()
for c in $COMPS; do demos+=(--demo "$c:64K"); done
agent s1 "${demos[@]}"
agent t1
agent h1
agent h2
nodes_up() { [ "$(ctl --json nodes | jq '[.[] | select(.state == "up")] | length')" -eq "$1" ]; }
check "four agents attach" wait_for 20 nodes_up 4
all_stored() { [ "$(ctl --json catalog | jq length)" -ge 6 ]; }
check "s1 checkpoints its six components" wait_for 20 all_stored

stop_nas_pid=$PID_nas
kill -STOP "$stop_nas_pid"
mig_pids=()
for c in $COMPS; do
	"$CTL_BIN" --manager "$MGR_URL" --timeout 30s migrate "$c" --to t1 \
		>"$T_DIR/mig-$c.log" 2>&1 &
	mig_pids+=($!)
done
check "the migrations are under way" wait_for 10 log_has manager "migration of c. from s1 to t1 started"
# Watch for three times down-after while they hang (a wait, not an assertion on time).
for _ in $(seq 60); do
	grep -q "is down" "$T_DIR/manager.log" && break
	sleep 0.1
done
check "no node is marked down while migrations hang" sh -c "! grep -q 'is down' $T_DIR/manager.log"
check "the manager still answers: every node is up" nodes_up 4
kill -CONT "$stop_nas_pid"
for p in "${mig_pids[@]}"; do wait "$p"; done
check "no node was marked down at all" sh -c "! grep -q 'is down' $T_DIR/manager.log"
once() {
	ctl --json nodes | jq -e --arg cs "$COMPS" '[.[] | select(.state == "up") | .components[].name] as $n |
		($cs | split(" ")) | all(. as $c | ($n | map(select(. == $c)) | length) == 1)' >/dev/null
}
check "every component runs on exactly one node" wait_for 20 once
check "the manager exits 0 on SIGTERM" stop manager TERM
finish
