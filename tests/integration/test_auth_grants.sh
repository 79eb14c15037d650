#!/usr/bin/env bash
# Grants outlive a NAS restart (issue 12), on real TLS sockets with
# authentication: the manager grants node n2 the reading of n1's component
# (a migration from n1 to n2); the NAS is SIGKILLed and started again on the
# same data; n2 still reads n1's checkpoint of it, a node it was not granted
# to (n3) still cannot, nor can n1 read n2's since the grant moved away.
. "$(dirname "$0")/lib.sh"

C="$T_DIR/certs"
bash "$(dirname "$0")/../../deploy/certs.sh" -o "$C" n1 n2 n3 >"$T_DIR/certs.log" 2>&1 ||
	{ echo "deploy/certs.sh failed"; cat "$T_DIR/certs.log"; exit 1; }
tlsf() { echo "--tls-ca $C/ca.crt --tls-cert $C/$1.crt --tls-key $C/$1.key"; }

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port)
A1_PORT=$(free_port); A2_PORT=$(free_port)
MGR_URL="tls+tcp://127.0.0.1:$MGR_PORT"
NAS_URL="tls+tcp://127.0.0.1:$NAS_PORT"
# nas NAME: the NAS on its one data folder and port.
nas() { start "$1" "$NAS_BIN" --listen "$NAS_URL" --data "$T_DIR/nas-data" --keep 1000000 $(tlsf nas); }

nas nas
wait_for 10 log_has nas "listening" || { echo "nas did not start"; cat "$T_DIR/nas.log"; exit 1; }
start manager "$MGR_BIN" --listen "$MGR_URL" --events "tls+tcp://127.0.0.1:$EV_PORT" \
	--nas "$NAS_URL" $(tlsf manager)
wait_for 10 log_has manager "listening" || { echo "manager did not start"; cat "$T_DIR/manager.log"; exit 1; }
# as ROLE ckptctl-args...: ckptctl with ROLE's certificate.
as() { local who=$1; shift; "$CTL_BIN" --manager "$MGR_URL" $(tlsf "$who") "$@"; }

start n1 "$AGENT_BIN" --node n1 --manager "$MGR_URL" --listen "tls+tcp://127.0.0.1:$A1_PORT" \
	--demo "demo_1:64K" --interval-ms 300 $(tlsf node-n1)
start n2 "$AGENT_BIN" --node n2 --manager "$MGR_URL" --listen "tls+tcp://127.0.0.1:$A2_PORT" \
	--interval-ms 300 $(tlsf node-n2)
check "both agents attach over TLS" \
	wait_for 20 sh -c "[ \$($CTL_BIN --manager $MGR_URL $(tlsf operator) --json nodes | jq length) -eq 2 ]"
check "n1 checkpoints demo_1" \
	wait_for 20 sh -c "$CTL_BIN --manager $MGR_URL $(tlsf operator) --json ls n1/demo_1 | jq -e 'length > 0'"
out=$(as node-n2 get n1/demo_1 -o "$T_DIR/early" 2>&1)
check "before any grant, n2 cannot read n1's demo_1" grep -q "PERMISSION_DENIED" <<<"$out"

check "the operator migrates demo_1 to n2" as operator migrate demo_1 --to n2
check "the manager granted n2 the reading of demo_1" \
	wait_for 10 log_has nas "read of demo_1's checkpoints granted to node n2"
check "n2 stores demo_1 after the migration" \
	wait_for 20 sh -c "$CTL_BIN --manager $MGR_URL $(tlsf operator) --json ls n2/demo_1 | jq -e 'length > 0'"
as operator --json ls n1/demo_1 >"$T_DIR/n1.json"
seq1=$(jq -r '.[-1].seq' "$T_DIR/n1.json")

stop nas KILL
nas nas2
wait_for 10 log_has nas2 "listening" || { echo "nas did not restart"; cat "$T_DIR/nas2.log"; exit 1; }
check "the restarted NAS loaded the grant from its store" \
	log_has nas2 "grants: 1 loaded from the store"

# n2 reads n1's checkpoint of demo_1, granted before the NAS restarted.
check "after the restart, n2 still reads n1's checkpoint of demo_1" \
	wait_for 20 sh -c "$CTL_BIN --manager $MGR_URL $(tlsf node-n2) get n1/demo_1@$seq1 -o $T_DIR/n2.bin"
check "and gets its bytes" [ -s "$T_DIR/n2.bin" ]
as operator get "n1/demo_1@$seq1" -o "$T_DIR/op.bin"
check "the same bytes the operator gets" cmp -s "$T_DIR/n2.bin" "$T_DIR/op.bin"
out=$(as node-n2 --json ls n1/demo_1 2>&1)
check "n2 lists n1's checkpoints of demo_1 (the granted component)" \
	jq -e --argjson s "$seq1" 'map(.seq) | index($s)' <<<"$out"

out=$(as node-n3 get "n1/demo_1@$seq1" -o "$T_DIR/n3.bin" 2>&1)
check "an ungranted node (n3) cannot read it (PERMISSION_DENIED)" grep -q "PERMISSION_DENIED" <<<"$out"
check "nothing was written for n3" [ ! -e "$T_DIR/n3.bin" ]
out=$(as node-n1 get n2/demo_1 -o "$T_DIR/n1.bin" 2>&1)
check "n1 cannot read n2's demo_1 (the grant is n2's)" grep -q "PERMISSION_DENIED" <<<"$out"
check "the restarted NAS logged the refusal with node:n3" \
	log_has nas2 "refused: PERMISSION_DENIED Nas.Retrieve from node:n3"

for s in n1 n2 manager nas2; do
	check "$s exits 0 on SIGTERM" stop "$s" TERM
done
finish
