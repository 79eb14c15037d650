#!/usr/bin/env bash
# Checkpoints deleted behind the manager's back (ckptctl --nas URL rm, as
# retention or any other deletion the manager is not told of) must not wedge
# a restore: a failover, a drain and a migrate whose catalogue entry points at
# a deleted sequence restore the newest one that exists, and the catalogue
# follows. ckptctl rm through the manager updates the catalogue at once.
. "$(dirname "$0")/lib.sh"

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port)
MGR_URL="tcp://127.0.0.1:$MGR_PORT"
nas_rm() { CKPT_MANAGER= "$CTL_BIN" --nas "tcp://127.0.0.1:$NAS_PORT" rm "$@"; } # the manager is not told

start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
# A long down-after: a killed node stays "up" long enough to drain or migrate
# its component from the catalogue (its Stop fails).
start_manager manager "$MGR_PORT" "$EV_PORT" "tcp://127.0.0.1:$NAS_PORT" \
	--heartbeat-ms 100 --down-after 8s || { echo "manager did not start"; exit 1; }
agent() { # NAME ARGS...
	local name=$1; shift
	start "$name" "$AGENT_BIN" --node "$name" --manager "$MGR_URL" \
		--listen "tcp://127.0.0.1:$(free_port)" --interval-ms 200 "$@"
}
runs_on() { # COMPONENT: the up node that runs it
	ctl --json nodes | jq -r --arg c "$1" \
		'.[] | select(.state == "up") | select(any(.components[]; .name == $c)) | .id'
}
stored() { [ "$(ctl --json ls "$1/a1" | jq length)" -ge "$2" ]; }
# rm_newest NODE: deletes the two newest sequences of NODE/a1 and prints the
# newest that is left as JSON.
rm_newest() {
	local seqs
	seqs=$(ctl --json ls "$1/a1" | jq -r '[.[].seq] | sort | reverse | .[0:2][]')
	for s in $seqs; do nas_rm "$1/a1@$s" >/dev/null || return 1; done
	ctl --json ls "$1/a1" | jq -c 'max_by(.seq)'
}
comp_on() { # NODE: a1's entry in NODE's component list
	ctl --json nodes | jq -c --arg n "$1" '.[] | select(.id == $n) | .components[] | select(.name == "a1")'
}
# restored_from NODE LEFT: a1 runs on NODE, restored from LEFT, its digest LEFT's.
restored_from() {
	local comp
	comp=$(comp_on "$1")
	[ -n "$comp" ] &&
		[ "$(jq -r .restored_from.node <<<"$comp")" = "$(jq -r .node <<<"$2")" ] &&
		[ "$(jq -r .restored_from.seq <<<"$comp")" = "$(jq -r .seq <<<"$2")" ] &&
		[ "$(jq -r .state_digest <<<"$comp")" = "$(jq -r .digest <<<"$2")" ]
}

# 1. Failover: a1 (needs zone=b) waits for a node after n1 dies; its newest
# checkpoints are deleted meanwhile; a node with zone=b attaches.
agent n1 --demo 'a1:64K@zone=b'
check "n1 checkpoints a1" wait_for 15 stored n1 4
stop n1 KILL
left=$(rm_newest n1)
check "the two newest checkpoints of n1/a1 are deleted" [ -n "$left" ]
agent n2 --label zone=b
check "a1 fails over to n2" wait_for 40 sh -c "[ \"\$(\"$CTL_BIN\" --manager $MGR_URL --json nodes | jq -r '.[] | select(.state == \"up\") | select(any(.components[]; .name == \"a1\")) | .id')\" = n2 ]"
check "... restored from the newest checkpoint left, digest equal" restored_from n2 "$left"
check "the manager logged that the catalogue's one is gone" log_has manager "deleted"

# 2. Drain of a node that died (within down-after) after its newest
# checkpoints were deleted.
agent n3 --label zone=b
check "n2 stores a1" wait_for 15 stored n2 4
stop n2 KILL
left=$(rm_newest n2)
ctl --json drain n2 >"$T_DIR/drain.json" 2>"$T_DIR/drain.err"
check "drain of n2 succeeds" [ "$(jq '.moved | length' "$T_DIR/drain.json" 2>/dev/null)" = 1 ]
check "... a1 restored on n3 from the newest checkpoint left" restored_from n3 "$left"

# 3. Migrate, the same way.
agent n4 --label zone=b
check "n3 stores a1" wait_for 15 stored n3 4
stop n3 KILL
left=$(rm_newest n3)
check "migrate a1 succeeds" ctl migrate a1 --to n4
check "... restored on n4 from the newest checkpoint left" restored_from n4 "$left"
check "a1 keeps being checkpointed on n4" wait_for 15 stored n4 2

# 4. Every checkpoint of a component deleted: a migrate says so at once.
agent n5 --label zone=b
check "n5 attaches" wait_for 10 sh -c "$CTL_BIN --manager $MGR_URL --json nodes | jq -e '.[] | select(.id == \"n5\" and .state == \"up\")' >/dev/null"
stop n4 KILL
cat_seq() { ctl --json catalog | jq -r '.[] | select(.component == "a1") | "\(.node)@\(.seq)"'; }
before=$(cat_seq)
ctl rm "n4/a1" >/dev/null
check "ckptctl rm through the manager: the catalogue leaves the deleted checkpoint" \
	[ -n "$before" ] && [ "$(cat_seq)" != "$before" ] && [ "${before%@*}" = n4 ]
check "... and points at the newest one left" \
	[ "$(cat_seq)" = "$(ctl --json ls | jq -r '[.[] | select(.component == "a1")] | max_by(.seq) | "\(.node)@\(.seq)"')" ]
for n in n1 n2 n3; do ctl rm "$n/a1" >/dev/null 2>&1; done
check "with every checkpoint deleted, the catalogue has no entry of a1" [ -z "$(cat_seq)" ]
check "migrate of a component without any checkpoint fails" sh -c "! $CTL_BIN --manager $MGR_URL migrate a1 --to n5 2>$T_DIR/err.txt"
check "... saying that no checkpoint of it exists" grep -q "no checkpoint of a1 exists" "$T_DIR/err.txt"

for s in manager nas; do
	check "$s exits 0 on SIGTERM" stop "$s" TERM
done
finish
