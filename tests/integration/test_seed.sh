#!/usr/bin/env bash
# The seed scenario end to end: NAS, manager, dummy_1 and dummy_2 each running
# one demo component; after 3 s each calls for its own migration and the two
# swap. The restored states' digests must equal the stored checkpoints'.
# With CKPT_TEST_TLS=1 (integration_seed_tls) every connection is tls+tcp://,
# each process showing its own certificate (lib.sh).
. "$(dirname "$0")/lib.sh"

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port)
A1_PORT=$(free_port); A2_PORT=$(free_port)
MGR_URL="$T_TCP://127.0.0.1:$MGR_PORT"

start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
start_manager manager "$MGR_PORT" "$EV_PORT" "$T_TCP://127.0.0.1:$NAS_PORT" ||
	{ echo "manager did not start"; exit 1; }
start watch "$CTL_BIN" --manager "$MGR_URL" --json watch
for i in 1 2; do
	eval "port=\$A${i}_PORT"
	# shellcheck disable=SC2046
	start "dummy_$i" "$AGENT_BIN" --node "dummy_$i" --manager "$MGR_URL" \
		--listen "$T_TCP://127.0.0.1:$port" --demo "demo_$i:256K" --interval-ms 500 \
		--migrate-after 3s $(tls_node "dummy_$i")
done

swapped() {
	ctl --json nodes | jq -e '
		(map(select(.id == "dummy_1"))[0].components | map(.name) == ["demo_2"]) and
		(map(select(.id == "dummy_2"))[0].components | map(.name) == ["demo_1"])'
}
if [ "$T_TCP" = tls+tcp ]; then
	check "every service listens on tls+tcp://" sh -c \
		"grep -q 'listening on tls+tcp://' $T_DIR/nas.log &&
		 grep -q 'tls+tcp://' $T_DIR/manager.log && grep -q 'tls+tcp://' $T_DIR/dummy_1.log"
fi
check "both agents attach" wait_for 10 sh -c "[ \$($CTL_BIN --manager $MGR_URL --json nodes | jq length) -eq 2 ]"
check "the two components swap nodes" wait_for 30 swapped

ctl --json nodes >"$T_DIR/nodes.json"
ctl --json ls >"$T_DIR/ls.json"
for pair in "dummy_1 demo_2 dummy_2" "dummy_2 demo_1 dummy_1"; do
	set -- $pair
	node=$1 comp=$2 src=$3
	c=$(jq -c --arg n "$node" --arg c "$comp" \
		'map(select(.id == $n))[0].components[] | select(.name == $c)' "$T_DIR/nodes.json")
	rf_node=$(jq -r '.restored_from.node' <<<"$c")
	rf_seq=$(jq -r '.restored_from.seq' <<<"$c")
	rf_sha=$(jq -r '.restored_from.digest' <<<"$c")
	st_sha=$(jq -r '.state_digest' <<<"$c")
	check "$comp on $node was restored from $src" [ "$rf_node" = "$src" ]
	check "$comp restored state digest equals the checkpoint's" [ "$st_sha" = "$rf_sha" ]
	ls_sha=$(jq -r --arg n "$src" --arg c "$comp" --argjson s "$rf_seq" \
		'map(select(.node == $n and .component == $c and .seq == $s))[0].digest' "$T_DIR/ls.json")
	check "$comp restored from the stored checkpoint $src/$comp@$rf_seq" [ "$ls_sha" = "$rf_sha" ]
	ctl get "$src/$comp@$rf_seq" -o "$T_DIR/$comp.ckpt"
	got=$(ctl digest "$T_DIR/$comp.ckpt" --like "$src/$comp@$rf_seq" | cut -d' ' -f1)
	check "ckptctl get of $src/$comp@$rf_seq has the restored digest (ckptctl digest)" \
		[ "$got" = "$rf_sha" ]
	check "ckptctl verify: the file got is $src/$comp@$rf_seq" \
		ctl verify "$T_DIR/$comp.ckpt" "$src/$comp@$rf_seq"
	check "$node logged the successful migration" log_has "$node" "migration successful"
done
check "the NAS logged stores and retrievals" sh -c \
	"grep -q 'checkpoint stored' $T_DIR/nas.log && grep -q 'checkpoint retrieved' $T_DIR/nas.log"
check "the manager logged both migrations" sh -c "[ \$(grep -c 'migration of demo_. from' $T_DIR/manager.log) -ge 2 ]"
rseq=$(jq -r 'map(select(.id == "dummy_1"))[0].components[0].restored_from.seq' "$T_DIR/nodes.json")
newer_seq() { ctl --json ls dummy_1/demo_2 | jq -e --argjson s "$rseq" 'length > 0 and (map(.seq) | max) > $s'; }
check "a restored component goes on checkpointing with higher seqs" wait_for 10 newer_seq
check "watch saw migration.done events" grep -q 'migration.done' "$T_DIR/watch.log"

for s in dummy_1 dummy_2 watch manager nas; do
	check "$s exits 0 on SIGTERM" stop "$s" TERM
done
check "agents logged stopped" log_has dummy_1 "stopped"
finish
