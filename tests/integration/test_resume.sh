#!/usr/bin/env bash
# A node that starts again resumes the components it declares from their
# latest checkpoint (restored and verified, restored_from set, an event says
# so), whether it was down for less or more than down-after; when another
# node took a component over meanwhile, that node keeps it and the restarted
# one does not start a second copy; --fresh starts fresh on purpose; a
# manager that starts again (catalogue from the NAS) does not change that.
. "$(dirname "$0")/lib.sh"

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port)
MGR_URL="tcp://127.0.0.1:$MGR_PORT"
NAS_URL="tcp://127.0.0.1:$NAS_PORT"

start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
manager() {
	start_manager manager "$MGR_PORT" "$EV_PORT" "$NAS_URL" --heartbeat-ms 100 --down-after 1s
}
manager || { echo "manager did not start"; exit 1; }
start watch "$CTL_BIN" --manager "$MGR_URL" --json watch
N1_PORT=$(free_port)
agent() { # NAME PORT ARGS...
	local name=$1 port=$2; shift 2
	start "$name" "$AGENT_BIN" --node "$name" --manager "$MGR_URL" \
		--listen "tcp://127.0.0.1:$port" --interval-ms 200 "$@"
}
stored() { [ "$(ctl --json ls "$1/$2" | jq length)" -ge "$3" ]; }
newest() { ctl --json ls | jq -c --arg c "$1" '[.[] | select(.component == $c)] | max_by(.seq)'; }
comp_on() { # NODE COMPONENT: its entry in NODE's component list
	ctl --json nodes | jq -c --arg n "$1" --arg c "$2" \
		'.[] | select(.id == $n and .state == "up") | .components[] | select(.name == $c)'
}
runs_on() { # COMPONENT: the up nodes that run it, one line each
	ctl --json nodes | jq -r --arg c "$1" \
		'.[] | select(.state == "up") | select(any(.components[]; .name == $c)) | .id'
}
# resumed NODE COMPONENT LAST: runs on NODE, restored from LAST, the digest
# of the state restored is LAST's, and its epoch is newer.
resumed() {
	local c
	c=$(comp_on "$1" "$2")
	[ -n "$c" ] &&
		[ "$(jq -r .restored_from.node <<<"$c")" = "$(jq -r .node <<<"$3")" ] &&
		[ "$(jq -r .restored_from.seq <<<"$c")" = "$(jq -r .seq <<<"$3")" ] &&
		[ "$(jq -r .state_digest <<<"$c")" = "$(jq -r .digest <<<"$3")" ] &&
		[ "$(jq -r .epoch <<<"$c")" -gt "$(jq -r .epoch <<<"$3")" ]
}
node_state() { ctl --json nodes | jq -r --arg n "$1" '.[] | select(.id == $n) | .state'; }

# (a) A fresh cluster: nothing to resume, a1 starts fresh once the manager found no checkpoint.
agent n1 "$N1_PORT" --demo a1:256K
check "a1 starts fresh on a new cluster (no checkpoint exists)" wait_for 15 stored n1 a1 3
check "... n1 says why" log_has n1 "component a1 started fresh: no checkpoint of it exists"
check "... and it was not restored" [ "$(comp_on n1 a1 | jq -r '.restored_from // "none"')" = none ]

# (a1) SIGKILL, started again at once (before down-after).
stop n1 KILL
last=$(newest a1)
agent n1 "$N1_PORT" --demo a1:256K
check "after a restart at once, a1 resumes on n1 from its newest checkpoint, digest equal" \
	wait_for 15 resumed n1 a1 "$last"
check "a resume.done event names a1 and n1" wait_for 5 sh -c \
	"jq -r 'select(.kind == \"resume.done\" and .component == \"a1\") | .target' $T_DIR/watch.log | grep -qx n1"
check "the restarted n1 did not start a1 fresh" sh -c "! grep -q 'component a1 started fresh' $T_DIR/n1.log"
check "n1 stores a1 again after the resume" wait_for 10 sh -c \
	"[ \$($CTL_BIN --manager $MGR_URL --json ls n1/a1 | jq 'max_by(.seq).seq') -gt $(jq .seq <<<"$last") ]"

# (a2) SIGKILL, started again after the manager marked n1 down (no other node: a1 waits).
stop n1 KILL
check "the manager marks n1 down" wait_for 15 sh -c "[ \"\$($CTL_BIN --manager $MGR_URL --json nodes | jq -r '.[] | select(.id == \"n1\") | .state')\" = down ]"
last=$(newest a1)
agent n1 "$N1_PORT" --demo a1:256K
check "after a restart past down-after, a1 resumes on n1 from its newest checkpoint, digest equal" \
	wait_for 20 resumed n1 a1 "$last"
check "a1 runs once" [ "$(runs_on a1 | wc -l)" -eq 1 ]

# (b) n1 dies, a1 fails over to n2 and is checkpointed there; n1 starts
# again declaring a1: n2 keeps it, n1 does not run a second copy.
agent n2 "$(free_port)"
check "n2 attaches" wait_for 10 sh -c "[ \"\$($CTL_BIN --manager $MGR_URL --json nodes | jq -r '.[] | select(.id == \"n2\") | .state')\" = up ]"
stop n1 KILL
check "a1 fails over to n2" wait_for 20 sh -c "[ \"\$($CTL_BIN --manager $MGR_URL --json nodes | jq -r '.[] | select(.state == \"up\") | select(any(.components[]; .name == \"a1\")) | .id')\" = n2 ]"
check "n2 checkpoints a1" wait_for 10 stored n2 a1 2
n1_before=$(ctl --json ls n1/a1 | jq 'max_by(.seq).seq')
epoch_n2=$(comp_on n2 a1 | jq .epoch)
agent n1 "$N1_PORT" --demo a1:256K
check "n1 is told that another node runs a1" wait_for 15 log_has n1 "component a1 not started on node n1: another node runs it"
check "n1 is up" [ "$(node_state n1)" = up ]
check "a1 runs on n2 only" [ "$(runs_on a1 | tr '\n' ' ')" = "n2 " ]
check "n2 keeps its epoch" [ "$(comp_on n2 a1 | jq .epoch)" = "$epoch_n2" ]
check "n2 keeps checkpointing a1" wait_for 10 sh -c \
	"[ \$($CTL_BIN --manager $MGR_URL --json ls n2/a1 | jq length) -ge 4 ]"
check "n1 stored no checkpoint of a1 since it started again" \
	[ "$(ctl --json ls n1/a1 | jq 'max_by(.seq).seq')" = "$n1_before" ]
check "n1 reported no stale-epoch loss (it never ran a1)" sh -c "! grep -q 'component a1 stopped' $T_DIR/n1.log"

# (c) --fresh: a fresh state is stored, nothing restored. b1 needs zone=c,
# which no node has: however long n3 takes to start again, b1 waits for it.
N3_PORT=$(free_port)
agent n3 "$N3_PORT" --demo 'b1:64K@zone=c'
check "n3 checkpoints b1" wait_for 15 stored n3 b1 3
stop n3 KILL
last_b=$(newest b1)
agent n3 "$N3_PORT" --fresh --demo 'b1:64K@zone=c'
fresh_stored() {
	local c
	c=$(comp_on n3 b1)
	[ -n "$c" ] && [ "$(jq -r '.restored_from // "none"' <<<"$c")" = none ] &&
		[ "$(jq -r .last_seq <<<"$c")" -gt "$(jq .seq <<<"$last_b")" ]
}
check "with --fresh, b1 runs on n3 not restored and stores a new state" wait_for 15 fresh_stored
check "... n3 logged the fresh start" log_has n3 "start fresh (--fresh)"

# (d) The manager starts again (catalogue from the NAS), n3 and n1 restart
# at the same time: b1 resumes from its newest checkpoint on n3; n2, which
# runs a1 and attaches again after n1 (its heartbeats must fail first),
# keeps a1 and n1 does not start it.
stop n3 KILL
stop n1 KILL
last_b=$(newest b1)
epoch_n2=$(comp_on n2 a1 | jq .epoch)
stop manager KILL
manager || { echo "manager did not start again"; exit 1; }
agent n1 "$N1_PORT" --demo a1:256K
agent n3 "$N3_PORT" --demo 'b1:64K@zone=c'
check "after a manager restart, b1 resumes on n3 from its newest checkpoint" wait_for 20 resumed n3 b1 "$last_b"
check "n1 is told again that another node runs a1" wait_for 20 log_has n1 "component a1 not started on node n1: another node runs it"
check "a1 still runs on n2 only" wait_for 10 sh -c "[ \"\$($CTL_BIN --manager $MGR_URL --json nodes | jq -r '[.[] | select(.state == \"up\") | select(any(.components[]; .name == \"a1\")) | .id] | join(\" \")')\" = n2 ]"
check "... with the same epoch" [ "$(comp_on n2 a1 | jq .epoch)" = "$epoch_n2" ]
check "n2 never lost a1" sh -c "! grep -q 'component a1 stopped' $T_DIR/n2.log"
twice() { ctl --json nodes | jq -e '[.[] | select(.state == "up") | .components[].name] | group_by(.) | all(length == 1)' >/dev/null; }
check "no component runs on two nodes" twice

for s in n1 n2 n3 manager nas; do
	check "$s exits 0 on SIGTERM" stop "$s" TERM
done
finish
