#!/usr/bin/env bash
# Defect 7 (issue 14): a node checkpointing large components is never
# declared dead. Components of 256 MiB and 1 GiB checkpoint back to back for
# 30 s while CPU hogs keep both cores busy, with --down-after 1s and the
# default heartbeat: no node is marked down, no failover starts, and the
# checkpoints go on. (Before the fix, the heartbeat waited for the component
# table's lock while a state was copied: nodes were marked down within
# seconds and their components failed over.)
. "$(dirname "$0")/lib.sh"

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port)
MGR_URL="tcp://127.0.0.1:$MGR_PORT"
LOAD_S=${CKPT_HEAVY_SECONDS:-30}

start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
start_manager manager "$MGR_PORT" "$EV_PORT" "tcp://127.0.0.1:$NAS_PORT" \
	--down-after 1s || { echo "manager did not start"; exit 1; }
start watch "$CTL_BIN" --manager "$MGR_URL" --json watch
start n1 "$AGENT_BIN" --node n1 --manager "$MGR_URL" --listen "tcp://127.0.0.1:$(free_port)" \
	--interval-ms 100 --demo big:256M --demo huge:1G
start n2 "$AGENT_BIN" --node n2 --manager "$MGR_URL" --listen "tcp://127.0.0.1:$(free_port)" \
	--interval-ms 100

nodes_up() { [ "$(ctl --json nodes | jq '[.[] | select(.state == "up")] | length')" -eq 2 ]; }
check "two agents attach" wait_for 300 nodes_up
stored() { [ "$(ctl --json ls "n1/$1" | jq length)" -ge "$2" ]; }
check "n1 stores a first checkpoint of huge (1 GiB)" wait_for 300 stored huge 1

# Other work keeps both cores busy (lib.sh's clean-up stops the hogs too).
ncpu=$(nproc)
for i in $(seq "$ncpu"); do start "hog$i" bash -c 'while :; do :; done'; done
huge0=$(ctl --json ls n1/huge | jq length)
big0=$(ctl --json ls n1/big | jq length)
echo "# loading $ncpu cores for $LOAD_S s while n1 checkpoints big (256 MiB) and huge (1 GiB)"
sleep "$LOAD_S"
huge1=$(ctl --json ls n1/huge | jq length)
big1=$(ctl --json ls n1/big | jq length)
for i in $(seq "$ncpu"); do stop "hog$i" KILL; done
echo "# checkpoints stored under load: big $((big1 - big0)), huge $((huge1 - huge0))"

# The checkpoints went on (on a shared machine one may end only after the load).
check "checkpoints of big go on" wait_for 400 stored big $((big0 + 1))
check "checkpoints of huge go on" wait_for 400 stored huge $((huge0 + 1))
check "no node was marked down (events)" \
	[ "$(jq -s '[.[] | select(.kind == "node.down")] | length' "$T_DIR/watch.log")" -eq 0 ]
check "no failover started (events)" \
	[ "$(jq -s '[.[] | select(.kind | startswith("failover."))] | length' "$T_DIR/watch.log")" -eq 0 ]
check "the manager logged no node down" bash -c "! grep -q 'is down' '$T_DIR/manager.log'"
check "the manager logged no failover" bash -c "! grep -qi 'failover' '$T_DIR/manager.log'"
check "both nodes are up" nodes_up
check "n1 still runs big and huge" bash -c "ctl() { \"$CTL_BIN\" --manager $MGR_URL \"\$@\"; }; \
	[ \"\$(ctl --json nodes | jq '[.[] | select(.id == \"n1\") | .components[].name] | sort | join(\",\")' -r)\" = big,huge ]"
check "the watch saw events (it was connected)" [ -s "$T_DIR/watch.log" ]
finish
