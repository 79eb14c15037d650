#!/usr/bin/env bash
# `ckptctl nodes` (text) stays readable when components wait for a failover
# with long reasons (issue 14, defect 12): each pending component gets its own
# line below the table, at most 200 characters, the reason cut with a pointer
# to --json, which has it whole.
. "$(dirname "$0")/lib.sh"
NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port); A1_PORT=$(free_port)
MGR_URL="tcp://127.0.0.1:$MGR_PORT"
start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
start_manager manager "$MGR_PORT" "$EV_PORT" "tcp://127.0.0.1:$NAS_PORT" ||
	{ echo "manager did not start"; exit 1; }
long=a_component_with_a_long_name_so_that_its_reason_is_long_too
start n1 "$AGENT_BIN" --node n1 --manager "$MGR_URL" --listen "tcp://127.0.0.1:$A1_PORT" \
	--demo "a1:4K,$long:4K" --interval-ms 200
stored() { ctl --json ls | jq -e 'map(.component) | unique | length == 2'; }
check "n1 checkpoints both components" wait_for 15 stored
stop n1 KILL
pending() { ctl --json nodes | jq -e '[.[].pending[]] | length == 2'; }
check "both components wait for a node once n1 is down" wait_for 15 pending
ctl nodes >"$T_DIR/nodes.txt"
ctl --json nodes >"$T_DIR/nodes.json"
cat "$T_DIR/nodes.txt"
check "no line of nodes passes 200 characters" \
	awk 'length > 200 { bad = 1 } END { exit bad }' "$T_DIR/nodes.txt"
check "the table marks the component pending" grep -q "$long(pending)" "$T_DIR/nodes.txt"
check "the table shows a pending component once" [ "$(grep -o "$long(" "$T_DIR/nodes.txt" | wc -l)" -eq 1 ]
check "a line says why a1 is pending" grep -q "^n1/a1 pending (.*): ." "$T_DIR/nodes.txt"
reason=$(jq -r --arg c "$long" '[.[].pending[] | select(.component == $c)][0].reason' "$T_DIR/nodes.json")
check "the long reason is cut and points to --json" grep -q "^n1/$long pending (.*\.\.\. (ckptctl --json nodes: in full)$" "$T_DIR/nodes.txt"
check "--json nodes has the whole reason" [ "${#reason}" -gt 60 ]
check "the cut reason is the start of the whole one" grep -qF "${reason:0:40}" "$T_DIR/nodes.txt"
for s in manager nas; do check "$s exits 0 on SIGTERM" stop "$s" TERM; done
finish
