#!/usr/bin/env bash
# A migration asked while the component's node is still starting it (it
# declared the component at attach; no heartbeat lists it yet) waits for the
# node's report and then moves it from that node: it does not restore it
# elsewhere "from (nowhere)" while it runs on its node (two copies, and the
# work since its last checkpoint lost). Heartbeats every 2 s leave that
# window open after the attach.
. "$(dirname "$0")/lib.sh"

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port)
MGR_URL="tcp://127.0.0.1:$MGR_PORT"
NAS_URL="tcp://127.0.0.1:$NAS_PORT"

start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
start_manager manager "$MGR_PORT" "$EV_PORT" "$NAS_URL" --heartbeat-ms 2000 --down-after 20s ||
	{ echo "manager did not start"; exit 1; }
agent() { # NAME ARGS...
	local name=$1; shift
	start "$name" "$AGENT_BIN" --node "$name" --manager "$MGR_URL" \
		--listen "tcp://127.0.0.1:$(free_port)" --interval-ms 200 "$@"
}
runs_on() { # COMPONENT: the up nodes that run it, one line each
	ctl --json nodes | jq -r --arg c "$1" \
		'.[] | select(.state == "up") | select(any(.components[]; .name == $c)) | .id'
}
agent n2
check "n2 attaches" wait_for 20 log_has n2 "attached to manager"
agent n1 --demo d1:64K
# As soon as n1 attached and stored its first checkpoint of d1: before its
# first heartbeat that lists d1 (2 s).
check "n1 attaches" wait_for 20 log_has n1 "attached to manager"
check "n1 stores d1" wait_for 20 log_has manager "checkpoint stored on NAS: n1/d1@"
listed=$(runs_on d1)
echo "# d1 listed on [${listed}] when migrated"
out=$(ctl migrate d1 --to n2 2>&1); rc=$?
echo "# $out"
check "the migration succeeds (exit $rc)" [ "$rc" -eq 0 ]
check "... from n1, not from nowhere" grep -q "from n1 to n2" <<<"$out"
check "the manager never moved it from nowhere" sh -c "! grep -q 'from (nowhere)' '$T_DIR/manager.log'"
one_copy() { [ "$(runs_on d1)" = n2 ]; }
check "d1 runs on n2 alone" wait_for 20 one_copy
check "n1 stopped d1 with a final checkpoint (no work lost)" \
	log_has n1 "component d1 stopped (final checkpoint"
for s in n1 n2 manager nas; do
	check "$s exits 0 on SIGTERM" stop "$s" TERM
done
finish
