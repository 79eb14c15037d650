#!/usr/bin/env bash
# Defect 10 (issue 14): a dead NAS is known at once. With the NAS killed,
# `ckptctl migrate a1 --to n2` fails quickly with UNAVAILABLE naming the NAS
# and saying the component stayed where it was (before: after 40 s,
# "Agent.Restore: DEADLINE_EXCEEDED"); a1 still runs on n1. `ckptctl get`
# with the NAS down fails fast the same way. When the NAS is back, the same
# migration succeeds (clients reconnect as before).
. "$(dirname "$0")/lib.sh"

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port)
MGR_URL="tcp://127.0.0.1:$MGR_PORT"
NAS_URL="tcp://127.0.0.1:$NAS_PORT"

start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
start_manager manager "$MGR_PORT" "$EV_PORT" "$NAS_URL" || { echo "manager did not start"; exit 1; }
agent() { # NAME ARGS...
	local name=$1; shift
	start "$name" "$AGENT_BIN" --node "$name" --manager "$MGR_URL" \
		--listen "tcp://127.0.0.1:$(free_port)" --interval-ms 200 "$@"
}
agent n1 --demo a1:64K
agent n2

nodes_up() { [ "$(ctl --json nodes | jq '[.[] | select(.state == "up")] | length')" -eq 2 ]; }
check "two agents attach" wait_for 20 nodes_up
stored() { [ "$(ctl --json ls n1/a1 | jq length)" -ge 2 ]; }
check "n1 checkpoints a1" wait_for 20 stored
runs_on() { # COMPONENT: the up node that runs it
	ctl --json nodes | jq -r --arg c "$1" \
		'.[] | select(.state == "up") | select(any(.components[]; .name == $c)) | .id'
}

stop nas KILL
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

t0=$(now_ms)
out=$(ctl --timeout 90s migrate a1 --to n2 2>&1); rc=$?
t1=$(now_ms)
echo "# migrate with the NAS down: rc $rc after $((t1 - t0)) ms: $out"
check "migrate fails" [ "$rc" -ne 0 ]
check "it says UNAVAILABLE (not a deadline)" \
	bash -c "grep -q UNAVAILABLE <<<\"\$1\" && ! grep -q DEADLINE_EXCEEDED <<<\"\$1\"" _ "$out"
check "it names the NAS" grep -qF "$NAS_URL" <<<"$out"
check "it says the component stayed where it was" grep -qi "a1 stays on n1\|stayed on n1" <<<"$out"
check "a1 still runs on n1" [ "$(runs_on a1)" = n1 ]
check "n2 runs nothing" [ "$(ctl --json nodes | jq '.[] | select(.id == "n2") | .components | length')" -eq 0 ]

t0=$(now_ms)
out=$(ctl --timeout 90s get n1/a1 -o "$T_DIR/a1.bin" 2>&1); rc=$?
t1=$(now_ms)
echo "# get with the NAS down: rc $rc after $((t1 - t0)) ms: $out"
check "get fails" [ "$rc" -ne 0 ]
check "get says UNAVAILABLE and names the NAS" \
	bash -c "grep -q UNAVAILABLE <<<\"\$1\" && grep -qF \"\$2\" <<<\"\$1\"" _ "$out" "$NAS_URL"

# Back up (same data, same port): clients reconnect, the migration goes through.
start_nas nas "$NAS_PORT" || { echo "nas did not restart"; exit 1; }
mig_ok() { ctl migrate a1 --to n2 >/dev/null 2>&1; }
check "with the NAS back, a1 migrates to n2" wait_for 60 mig_ok
check "a1 runs on n2" [ "$(runs_on a1)" = n2 ]
finish
