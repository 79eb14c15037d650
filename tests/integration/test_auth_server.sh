#!/usr/bin/env bash
# The server proves who it is too (proto/ckpt/v1/auth.proto, step 1b), on
# real TLS sockets. TLS alone only says that a server's certificate chains
# to the CA: any member of the deployment could pose as the NAS or the
# manager where a client is made to dial it. Here:
#  - a "NAS" started with a node certificate (ckpt:node:n9, signed by the
#    real CA) is refused by an agent (which logs it once, counts it in
#    /metrics and stores nothing there) and by ckptctl expecting "nas";
#    a manager that names it as its NAS refuses it too; ckptctl pointed at
#    it as the manager refuses it as well;
#  - the manager refuses an agent whose address proves another node: n1
#    announces the address of n9's agent, and a migration to n1 fails
#    there, nothing restored.
# Certificates: deploy/certs.sh, as a deployment makes them.
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || { echo "# SKIP: curl is not installed (it scrapes /metrics)"; exit 77; }

C="$T_DIR/certs"
bash "$(dirname "$0")/../../deploy/certs.sh" -o "$C" n1 n9 >"$T_DIR/certs.log" 2>&1 ||
	{ echo "deploy/certs.sh failed"; cat "$T_DIR/certs.log"; exit 1; }
tlsf() { echo "--tls-ca $C/ca.crt --tls-cert $C/$1.crt --tls-key $C/$1.key"; }
# metric PORT NAME: the value of the sample NAME (with its labels) of /metrics.
metric() { curl -sf "http://127.0.0.1:$1/metrics" | awk -v n="$2" 'index($0, n " ") == 1 {print $2}'; }

ROGUE_PORT=$(free_port); ROGUE_HTTP=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port)
A1_PORT=$(free_port); A1_HTTP=$(free_port)
ROGUE_URL="tls+tcp://127.0.0.1:$ROGUE_PORT"
MGR_URL="tls+tcp://127.0.0.1:$MGR_PORT"

# ---- A NAS with node n9's certificate ----
start rogue "$NAS_BIN" --listen "$ROGUE_URL" --data "$T_DIR/rogue-data" --keep 1000000 \
	--http "http://127.0.0.1:$ROGUE_HTTP" $(tlsf node-n9)
wait_for 10 log_has rogue "listening" || { echo "rogue nas did not start"; cat "$T_DIR/rogue.log"; exit 1; }
start manager "$MGR_BIN" --listen "$MGR_URL" --events "tls+tcp://127.0.0.1:$EV_PORT" \
	--nas "$ROGUE_URL" $(tlsf manager)
wait_for 10 log_has manager "listening" || { echo "manager did not start"; cat "$T_DIR/manager.log"; exit 1; }
start n1 "$AGENT_BIN" --node n1 --manager "$MGR_URL" --listen "tls+tcp://127.0.0.1:$A1_PORT" \
	--http "http://127.0.0.1:$A1_HTTP" --demo "demo_1:64K" --fresh --interval-ms 300 \
	$(tlsf node-n1)

want="proved identity node:n9, expected nas"
check "the agent refuses the NAS that proves node:n9 (logged)" \
	wait_for 20 log_has n1 "refused server: server at $ROGUE_URL $want"
check "the agent counts the refusals (ckpt_auth_server_refused_total >= 3)" \
	wait_for 10 sh -c "[ \"\$(curl -sf http://127.0.0.1:$A1_HTTP/metrics |
		awk '/^ckpt_auth_server_refused_total /{print \$2}')\" -ge 3 ]"
check "... logged once for its connection" [ "$(grep -c "refused server: .*$want" "$T_DIR/n1.log")" -eq 1 ]
check "the agent stored no checkpoint of demo_1" \
	[ -z "$(metric "$A1_HTTP" 'ckpt_agent_checkpoints_stored_total{component="demo_1"}')" ]
check "the manager refuses it as its NAS too" \
	wait_for 10 log_has manager "refused server: server at $ROGUE_URL $want"
check "the agent still attached to the (real) manager" \
	sh -c "$CTL_BIN --manager $MGR_URL $(tlsf operator) --json nodes | jq -e 'map(.id) | index(\"n1\")'"
out=$("$CTL_BIN" --nas "$ROGUE_URL" $(tlsf operator) ls n1/demo_1 2>&1); rc=$?
check "ckptctl expecting nas refuses it (exit $rc)" [ "$rc" -ne 0 ]
check "... naming the cause" grep -q "$want" <<<"$out"
echo "$out" | head -2
out=$("$CTL_BIN" --manager "$ROGUE_URL" $(tlsf operator) nodes 2>&1); rc=$?
check "ckptctl expecting the manager there refuses it too (exit $rc)" [ "$rc" -ne 0 ]
check "... naming the cause" grep -q "proved identity node:n9, expected manager" <<<"$out"
check "no client ever proved itself to it: nothing was stored there" \
	[ -z "$(metric "$ROGUE_HTTP" 'ckpt_rpc_auth_handshakes_total{service="Nas",result="ok"}')" ]
check "... and its store is empty" \
	[ "$(metric "$ROGUE_HTTP" 'ckpt_nas_store_bytes')" = "0" ]
check "the agent's /metrics name the count" \
	[ "$(metric "$A1_HTTP" 'ckpt_auth_server_refused_total')" -ge 3 ]
check "n1 exits 0 on SIGTERM" stop n1 TERM
check "the manager exits 0 on SIGTERM" stop manager TERM
check "the node-certificate NAS exits 0 on SIGTERM" stop rogue TERM

# ---- An agent address that proves another node ----
NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port); A9_PORT=$(free_port)
A1_PORT=$(free_port); MGR_HTTP=$(free_port)
NAS_URL="tls+tcp://127.0.0.1:$NAS_PORT"
MGR_URL="tls+tcp://127.0.0.1:$MGR_PORT"
A9_URL="tls+tcp://127.0.0.1:$A9_PORT"
start nas "$NAS_BIN" --listen "$NAS_URL" --data "$T_DIR/nas-data" --keep 1000000 $(tlsf nas)
wait_for 10 log_has nas "listening" || { echo "nas did not start"; cat "$T_DIR/nas.log"; exit 1; }
start manager2 "$MGR_BIN" --listen "$MGR_URL" --events "tls+tcp://127.0.0.1:$EV_PORT" \
	--nas "$NAS_URL" --http "http://127.0.0.1:$MGR_HTTP" $(tlsf manager)
wait_for 10 log_has manager2 "listening" || { echo "manager did not start"; cat "$T_DIR/manager2.log"; exit 1; }
start n9 "$AGENT_BIN" --node n9 --manager "$MGR_URL" --listen "$A9_URL" \
	--demo "demo_9:64K" --interval-ms 300 $(tlsf node-n9)
# n1 announces n9's address as its own.
start n1b "$AGENT_BIN" --node n1 --manager "$MGR_URL" --listen "tls+tcp://127.0.0.1:$A1_PORT" \
	--advertise "$A9_URL" --interval-ms 300 $(tlsf node-n1)
check "both agents attach" wait_for 20 sh -c \
	"[ \$($CTL_BIN --manager $MGR_URL $(tlsf operator) --json nodes | jq length) -eq 2 ]"
check "n9 stores demo_9" wait_for 20 sh -c \
	"$CTL_BIN --manager $MGR_URL $(tlsf operator) --json ls n9/demo_9 | jq -e 'length > 0'"
# Migrated only once n9 reports it: before, the manager refuses ("n9 is starting it").
check "n9 reports demo_9" wait_for 20 sh -c "$CTL_BIN --manager $MGR_URL $(tlsf operator) --json nodes | \
	jq -e 'map(select(.id == \"n9\"))[0].components | map(.name) | index(\"demo_9\")'"
out=$("$CTL_BIN" --manager "$MGR_URL" $(tlsf operator) migrate demo_9 --to n1 2>&1); rc=$?
echo "$out" | head -2
check "a migration to n1 fails (exit $rc)" [ "$rc" -ne 0 ]
check "the manager refused n1's address: it proves node:n9" \
	wait_for 5 log_has manager2 "refused server: server at $A9_URL proved identity node:n9, expected node:n1"
check "... and counts it (ckpt_auth_server_refused_total >= 1)" \
	[ "$(metric "$MGR_HTTP" 'ckpt_auth_server_refused_total')" -ge 1 ]
check "demo_9 still runs on n9" sh -c "$CTL_BIN --manager $MGR_URL $(tlsf operator) --json nodes | \
	jq -e 'map(select(.id == \"n9\"))[0].components | map(.name) | index(\"demo_9\")'"
for s in n1b n9 manager2 nas; do
	check "$s exits 0 on SIGTERM" stop "$s" TERM
done
finish
