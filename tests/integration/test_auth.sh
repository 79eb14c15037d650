#!/usr/bin/env bash
# Identities and roles on real TLS sockets (tls+tcp:// on loopback): the seed
# scenario with TLS and authentication on (two nodes swap their components),
# then what each role may not do: an agent claiming another node's id, a node
# reading or deleting another node's checkpoint, ckptctl without the operator
# role migrating. Each refusal is PERMISSION_DENIED, logged once with the
# peer's identity and counted in /metrics; the operator's own migration works.
# Certificates: deploy/certs.sh (ckpt:node:n1, ckpt:node:n2, ckpt:nas,
# ckpt:manager, ckpt:operator under one CA), as a deployment makes them.
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || { echo "# SKIP: curl is not installed (it scrapes /metrics)"; exit 77; }

C="$T_DIR/certs"
bash "$(dirname "$0")/../../deploy/certs.sh" -o "$C" n1 n2 >"$T_DIR/certs.log" 2>&1 ||
	{ echo "deploy/certs.sh failed"; cat "$T_DIR/certs.log"; exit 1; }
tlsf() { echo "--tls-ca $C/ca.crt --tls-cert $C/$1.crt --tls-key $C/$1.key"; }

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port)
A1_PORT=$(free_port); A2_PORT=$(free_port); A3_PORT=$(free_port)
NAS_HTTP=$(free_port); MGR_HTTP=$(free_port)
MGR_URL="tls+tcp://127.0.0.1:$MGR_PORT"
NAS_URL="tls+tcp://127.0.0.1:$NAS_PORT"

start nas "$NAS_BIN" --listen "$NAS_URL" --data "$T_DIR/nas-data" --keep 1000000 \
	--http "http://127.0.0.1:$NAS_HTTP" $(tlsf nas)
wait_for 10 log_has nas "listening" || { echo "nas did not start"; cat "$T_DIR/nas.log"; exit 1; }
start manager "$MGR_BIN" --listen "$MGR_URL" --events "tls+tcp://127.0.0.1:$EV_PORT" \
	--nas "$NAS_URL" --http "http://127.0.0.1:$MGR_HTTP" $(tlsf manager)
wait_for 10 log_has manager "listening" || { echo "manager did not start"; cat "$T_DIR/manager.log"; exit 1; }
# as ROLE ckptctl-args...: ckptctl with ROLE's certificate.
as() { local who=$1; shift; "$CTL_BIN" --manager "$MGR_URL" $(tlsf "$who") "$@"; }

# The seed scenario: each node calls for the migration of its own component.
for i in 1 2; do
	eval "port=\$A${i}_PORT"
	start "n$i" "$AGENT_BIN" --node "n$i" --manager "$MGR_URL" \
		--listen "tls+tcp://127.0.0.1:$port" --demo "demo_$i:256K" --interval-ms 500 \
		--migrate-after 3s $(tlsf "node-n$i")
done
swapped() {
	as operator --json nodes | jq -e '
		(map(select(.id == "n1"))[0].components | map(.name) == ["demo_2"]) and
		(map(select(.id == "n2"))[0].components | map(.name) == ["demo_1"])'
}
check "both agents attach over TLS with their identities" \
	wait_for 20 sh -c "[ \$($CTL_BIN --manager $MGR_URL $(tlsf operator) --json nodes | jq length) -eq 2 ]"
check "seed scenario: the two components swap nodes (each node migrates its own)" wait_for 40 swapped
as operator --json nodes >"$T_DIR/nodes.json"
for pair in "n1 demo_2 n2" "n2 demo_1 n1"; do
	set -- $pair
	c=$(jq -c --arg n "$1" --arg c "$2" \
		'map(select(.id == $n))[0].components[] | select(.name == $c)' "$T_DIR/nodes.json")
	check "$2 on $1 was restored from $3's checkpoint (granted by the manager)" \
		[ "$(jq -r .restored_from.node <<<"$c")" = "$3" ]
	check "$2 on $1: restored state digest equals the checkpoint's" \
		[ "$(jq -r .state_digest <<<"$c")" = "$(jq -r .restored_from.digest <<<"$c")" ]
done
check "the NAS logged the grants" log_has nas "read of demo_1's checkpoints granted to node n2"
# n2 now runs demo_1 and stores it under its own name.
check "n2 stores demo_1 after the swap" \
	wait_for 20 sh -c "$CTL_BIN --manager $MGR_URL $(tlsf operator) --json ls n2/demo_1 | jq -e 'length > 0'"

# An agent with n1's certificate that says it is n3: refused at attach.
start liar "$AGENT_BIN" --node n3 --manager "$MGR_URL" --listen "tls+tcp://127.0.0.1:$A3_PORT" \
	--demo "demo_3:64K" --interval-ms 500 $(tlsf node-n1)
check "an agent claiming another node's id is refused (PERMISSION_DENIED)" \
	wait_for 20 log_has liar "PERMISSION_DENIED"
check "the manager logged it with the peer's identity" \
	wait_for 5 log_has manager "refused: PERMISSION_DENIED Manager.Attach from node:n1 at 127.0.0.1:"
check "n3 never appears among the nodes" \
	sh -c "! $CTL_BIN --manager $MGR_URL $(tlsf operator) --json nodes | jq -e 'map(.id) | index(\"n3\")'"
stop liar KILL

# n1 reads and deletes what is not its own.
out=$(as node-n1 get n2/demo_1 -o "$T_DIR/stolen" 2>&1)
check "node n1 cannot read n2's checkpoint of demo_1 (forbidden)" \
	grep -q "PERMISSION_DENIED" <<<"$out"
check "nothing was written" [ ! -e "$T_DIR/stolen" ]
out=$(as node-n1 rm n2/demo_1 2>&1)
check "node n1 cannot delete n2's checkpoints" grep -q "PERMISSION_DENIED" <<<"$out"
check "n2's checkpoints are all there" \
	sh -c "$CTL_BIN --manager $MGR_URL $(tlsf operator) --json ls n2/demo_1 | jq -e 'length > 0'"
out=$(as node-n1 get n1/demo_1 -o "$T_DIR/own" 2>&1)
check "node n1 reads its own old checkpoint of demo_1" [ -s "$T_DIR/own" ]

# Stores: the operator anywhere, a node only under its own name.
echo "notes of the operator" >"$T_DIR/notes"
check "the operator puts n1/notes" as operator put n1/notes -i "$T_DIR/notes"
check "and gets it back" sh -c "$CTL_BIN --manager $MGR_URL $(tlsf operator) get n1/notes -o $T_DIR/notes.back && cmp -s $T_DIR/notes $T_DIR/notes.back"
check "node n1 puts under its own name" as node-n1 put n1/mine -i "$T_DIR/notes"
out=$(as node-n1 put n2/theirs -i "$T_DIR/notes" 2>&1)
check "node n1 cannot put under n2's name" grep -q "PERMISSION_DENIED" <<<"$out"
check "nothing of n2/theirs was stored" 	sh -c "! $CTL_BIN --manager $MGR_URL $(tlsf operator) --json ls n2/theirs | jq -e 'length > 0'"

# ckptctl with a node's certificate, not an operator's: no migration.
out=$(as node-n2 migrate demo_2 --to n2 2>&1)
check "ckptctl without the operator role cannot migrate" grep -q "PERMISSION_DENIED" <<<"$out"
check "the refusal names the rule" grep -q "forbidden\|may migrate only a component it runs" <<<"$out"
check "the manager logged the refused migration once, with node:n2" \
	[ "$(grep -c 'refused: PERMISSION_DENIED Manager.Migrate from node:n2' "$T_DIR/manager.log")" -eq 1 ]
check "the NAS logged the refused read with node:n1" \
	log_has nas "refused: PERMISSION_DENIED Nas.Retrieve from node:n1"

metric() { curl -sf "http://127.0.0.1:$1/metrics" | grep -F "$2" | awk '{print $2}'; }
check "NAS /metrics counts the refused read" \
	[ "$(metric "$NAS_HTTP" 'ckpt_rpc_refused_total{service="Nas",method="Retrieve",reason="forbidden"}')" -ge 1 ]
check "NAS /metrics counts the refused delete" \
	[ "$(metric "$NAS_HTTP" 'ckpt_rpc_refused_total{service="Nas",method="Delete",reason="forbidden"}')" -ge 1 ]
check "manager /metrics counts the refused attach" \
	[ "$(metric "$MGR_HTTP" 'ckpt_rpc_refused_total{service="Manager",method="Attach",reason="forbidden"}')" -ge 1 ]
check "manager /metrics counts the refused migration" \
	[ "$(metric "$MGR_HTTP" 'ckpt_rpc_refused_total{service="Manager",method="Migrate",reason="forbidden"}')" -ge 1 ]
check "every connection proved itself: handshakes counted ok on the NAS" \
	[ "$(metric "$NAS_HTTP" 'ckpt_rpc_auth_handshakes_total{service="Nas",result="ok"}')" -ge 3 ]

# A node CA (deploy/certs.sh --node-ca: an intermediate with SAN URI
# ckpt:node-ca, its key in every agent pod's init container on Kubernetes)
# issues node identities only: what it issues for ckpt:manager or
# ckpt:operator is refused by every service, logged and counted; its
# ckpt:node:n1 and ckpt:node:n4 work (an agent n4 attaches with one).
N="$T_DIR/nodeca"
mkdir -p "$N"
cp "$C/ca.crt" "$C/ca.key" "$N/"
for who in node:n1 node:n4 manager operator; do
	bash "$(dirname "$0")/../../deploy/certs.sh" -o "$N" --via-node-ca --only "$who" \
		>>"$T_DIR/certs.log" 2>&1 || { echo "deploy/certs.sh --via-node-ca failed"; cat "$T_DIR/certs.log"; exit 1; }
done
check "the node CA is a CA of path length 0 whose SAN URI is ckpt:node-ca" sh -c \
	"openssl x509 -in $N/node-ca.crt -noout -ext basicConstraints,subjectAltName |
	 grep -q 'CA:TRUE, pathlen:0' && openssl x509 -in $N/node-ca.crt -noout -ext subjectAltName |
	 grep -q 'URI:ckpt:node-ca'"
nca() { echo "--tls-ca $N/ca.crt --tls-cert $N/$1.crt --tls-key $N/$1.key"; }
before=$(metric "$MGR_HTTP" 'ckpt_rpc_refused_total{service="Manager",method="Auth.Prove",reason="unauthenticated"}')
out=$("$CTL_BIN" --manager "$MGR_URL" $(nca manager) nodes 2>&1)
check "a node-CA certificate claiming ckpt:manager is refused by the manager (UNAUTHENTICATED)" \
	grep -q "UNAUTHENTICATED" <<<"$out"
echo "$out" | head -2
out=$("$CTL_BIN" --manager "$MGR_URL" $(nca operator) migrate demo_2 --to n1 2>&1)
check "a node-CA certificate claiming ckpt:operator cannot migrate (UNAUTHENTICATED)" \
	grep -q "UNAUTHENTICATED" <<<"$out"
out=$("$CTL_BIN" --nas "$NAS_URL" $(nca operator) rm n2/demo_1 2>&1)
check "... nor delete on the NAS" grep -q "UNAUTHENTICATED" <<<"$out"
check "n2's checkpoints of demo_1 are still there" \
	sh -c "$CTL_BIN --manager $MGR_URL $(tlsf operator) --json ls n2/demo_1 | jq -e 'length > 0'"
check "the manager logged why" log_has manager \
	"refused: UNAUTHENTICATED Manager.Auth.Prove from (no identity) at 127.0.0.1:.*issued by a node CA"
check "the NAS logged why" log_has nas "refused: UNAUTHENTICATED Nas.Auth.Prove .*issued by a node CA"
after=$(metric "$MGR_HTTP" 'ckpt_rpc_refused_total{service="Manager",method="Auth.Prove",reason="unauthenticated"}')
check "the manager counted the refused proofs (${before:-0} -> ${after:-0})" \
	[ "${after:-0}" -ge $(( ${before:-0} + 2 )) ]
check "a node-CA certificate of ckpt:node:n1 reads n1's checkpoints" \
	sh -c "$CTL_BIN --nas $NAS_URL $(nca node-n1) --json ls n1/demo_1 | jq -e 'length > 0'"
check "... and not n2's (still a node)" \
	sh -c "$CTL_BIN --nas $NAS_URL $(nca node-n1) get n2/demo_1 -o $T_DIR/stolen2 2>&1 | grep -q PERMISSION_DENIED"
start n4 "$AGENT_BIN" --node n4 --manager "$MGR_URL" --listen "tls+tcp://127.0.0.1:$A3_PORT" \
	--interval-ms 500 $(nca node-n4)
check "an agent with a node-CA certificate of ckpt:node:n4 attaches as n4" wait_for 20 sh -c \
	"$CTL_BIN --manager $MGR_URL $(tlsf operator) --json nodes | jq -e 'map(.id) | index(\"n4\")'"
check "n4 exits 0 on SIGTERM" stop n4 TERM

# The operator may: demo_2 moves back to n2.
check "the operator migrates demo_2 back to n2" as operator migrate demo_2 --to n2
check "n2 runs demo_2 again" sh -c "$CTL_BIN --manager $MGR_URL $(tlsf operator) --json nodes | \
	jq -e 'map(select(.id == \"n2\"))[0].components | map(.name) | index(\"demo_2\")'"

for s in n1 n2 manager nas; do
	check "$s exits 0 on SIGTERM" stop "$s" TERM
done
finish
