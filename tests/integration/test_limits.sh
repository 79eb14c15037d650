#!/usr/bin/env bash
# Issue 12, limits on peers: each limit exceeded on the real services. A hit
# is RESOURCE_EXHAUSTED with Reply.reason "limit:<name>", the name in the
# message, a WARN line in the service's log and a count in /metrics
# (ckpt_rpc_limit_hits_total{service,limit}); ckptctl --json prints the
# reason in {"error": ...}.
. "$(dirname "$0")/lib.sh"

LIM_BIN="$CKPT_BUILD/tests/integration/ckpt-limits"
# Every port at once: one python start-up instead of one per port (seconds on a busy machine).
read -r -a PORTS <<<"$(free_ports 21)"
hits() { # HTTP_PORT SERVICE LIMIT: the counter's value
	curl -s "http://127.0.0.1:$1/metrics" |
		awk -v s="service=\"$2\"" -v l="limit=\"$3\"" \
			'$1 ~ /^ckpt_rpc_limit_hits_total\{/ && index($1, s) && index($1, l) { print $2 }'
}
counted() { local n; n=$(hits "$@"); [ -n "$n" ] && [ "${n%.*}" -ge 1 ]; }
reason_is() { # FILE REASON: ckpt-limits printed that reason
	grep -q "reason=$2\$" "$1"
}

# NAS a: connections and requests per second.
A_PORT=${PORTS[0]}; A_HTTP=${PORTS[1]}
start_nas nasa "$A_PORT" --http "http://127.0.0.1:$A_HTTP" --max-conns 2 --max-rps 5 ||
	{ echo "nas a did not start"; exit 1; }
A_URL="tcp://127.0.0.1:$A_PORT"
# Connections on a NAS of their own on ipc://, where no other process on the
# machine can take a slot (in the full suite, served=1 was seen twice on TCP
# and never reproduced alone; the cause is not known). Up to three rounds, so
# that one stray connection does not fail it; a NAS that serves more or fewer
# than its limit fails all three.
K_URL="ipc://$T_DIR/conns.ipc" K_HTTP=${PORTS[20]}
start nasconn "$NAS_BIN" --listen "$K_URL" --data "$T_DIR/nasconn-data" --max-conns 2 \
	--http "http://127.0.0.1:$K_HTTP"
wait_for 10 log_has nasconn "listening" || { echo "nas conns did not start"; exit 1; }
for _ in 1 2 3; do
	"$LIM_BIN" "$K_URL" conns 4 >"$T_DIR/conns.out" 2>&1
	grep -q "^served=2 " "$T_DIR/conns.out" && break
	cat "$T_DIR/conns.out" >>"$T_DIR/conns.all"
	sleep 0.5
done
check "4 connections to --max-conns 2: 2 served ($(cat "$T_DIR/conns.all" 2>/dev/null | tr '\n' ' ')$(tail -1 "$T_DIR/conns.out"))" \
	grep -q "^served=2 " "$T_DIR/conns.out"
check "connections hit counted" wait_for 10 counted "$K_HTTP" Nas connections
check "connections hit logged" log_has nasconn "limit connections hit"
"$LIM_BIN" "$A_URL" rps 100 >"$T_DIR/rps.out" 2>&1
check "100 back-to-back requests at --max-rps 5: refused" \
	reason_is "$T_DIR/rps.out" limit:requests_per_second
check "the message names the limit" grep -q "requests_per_second" "$T_DIR/rps.out"
check "requests_per_second hits counted" counted "$A_HTTP" Nas requests_per_second
check "requests_per_second hit logged" log_has nasa "limit requests_per_second hit"
# Once idle for a second, the connection's bucket is full again.
sleep 1.2
"$LIM_BIN" "$A_URL" rps 3 >"$T_DIR/rps2.out" 2>&1
check "3 requests after a pause: served" grep -q "^refused=0 " "$T_DIR/rps2.out"

# Loopback: each plain connection is its own peer (local processes share the address).
"$LIM_BIN" "$A_URL" rps 8 2 >"$T_DIR/rps3.out" 2>&1
check "8 requests over 2 loopback connections at --max-rps 5: served (per connection)" \
	grep -q "^refused=0 " "$T_DIR/rps3.out"

# NAS c on TLS: limits count per identity, over all its connections.
C_PORT=${PORTS[10]}; C_HTTP=${PORTS[17]}
T_TCP=tls+tcp tls_make nas operator
T_TCP=tls+tcp start_nas nasc "$C_PORT" --http "http://127.0.0.1:$C_HTTP" --max-rps 5 ||
	{ echo "nas c did not start"; exit 1; }
# NAS d: uploads alone (the uploaders' requests must not meet --max-rps first).
D_PORT=${PORTS[18]}; D_HTTP=${PORTS[19]}
T_TCP=tls+tcp start_nas nasd "$D_PORT" --http "http://127.0.0.1:$D_HTTP" --workers 8 \
	--max-uploads 1 || { echo "nas d did not start"; exit 1; }
C_URL="tls+tcp://127.0.0.1:$C_PORT"
D_URL="tls+tcp://127.0.0.1:$D_PORT"
as_operator() {
	CKPT_TLS_CA="$T_CERTS/ca.crt" CKPT_TLS_CERT="$T_CERTS/operator.crt" \
		CKPT_TLS_KEY="$T_CERTS/operator.key" "$@"
}
# 5 per connection, within each one's burst; 40 together are 35 over the
# identity's (whatever the refill, unless the 40 took over 7 s).
as_operator "$LIM_BIN" "$C_URL" rps 40 8 >"$T_DIR/rpsid.out" 2>&1
check "40 requests of one identity over 8 connections at --max-rps 5: refused ($(tail -1 "$T_DIR/rpsid.out"))" \
	reason_is "$T_DIR/rpsid.out" limit:requests_per_second
check "the message names the identity" grep -q "from operator, all its connections" "$T_DIR/rpsid.out"
as_operator "$LIM_BIN" "$D_URL" uploads 2 2 >"$T_DIR/upid.out" 2>&1
check "2 uploaders of one identity on 2 connections at --max-uploads 1: refused ($(tail -1 "$T_DIR/upid.out"))" \
	reason_is "$T_DIR/upid.out" limit:uploads
check "the message names the identity" grep -q "PutChunks of operator are in progress" "$T_DIR/upid.out"
check "both hits counted" sh -c "curl -s http://127.0.0.1:$C_HTTP/metrics |
	grep -q '^ckpt_rpc_limit_hits_total{service=\"Nas\",limit=\"requests_per_second\"} [1-9]' &&
	curl -s http://127.0.0.1:$D_HTTP/metrics |
	grep -q '^ckpt_rpc_limit_hits_total{service=\"Nas\",limit=\"uploads\"} [1-9]'"
check "nas c exits 0 on SIGTERM" stop nasc TERM
check "nas d exits 0 on SIGTERM" stop nasd TERM

# NAS b: uploads, lengths, message size, quota.
B_PORT=${PORTS[2]}; B_HTTP=${PORTS[3]}
start_nas nasb "$B_PORT" --http "http://127.0.0.1:$B_HTTP" --workers 8 --max-uploads 1 \
	--max-string 4096 --max-list 65536 --recv-max 5M --node-quota 300K ||
	{ echo "nas b did not start"; exit 1; }
B_URL="tcp://127.0.0.1:$B_PORT"
"$LIM_BIN" "$B_URL" uploads 4 >"$T_DIR/up.out" 2>&1
check "4 uploaders on one connection at --max-uploads 1: refused ($(tail -1 "$T_DIR/up.out"))" \
	reason_is "$T_DIR/up.out" limit:uploads
check "uploads hit counted" counted "$B_HTTP" Nas uploads
"$LIM_BIN" "$B_URL" string >"$T_DIR/str.out" 2>&1
check "a 9000-byte string at --max-string 4096: refused" reason_is "$T_DIR/str.out" limit:string_length
check "the message names the field" grep -q "field node" "$T_DIR/str.out"
"$LIM_BIN" "$B_URL" list 65537 >"$T_DIR/list.out" 2>&1
check "65537 hashes at --max-list 65536: refused" reason_is "$T_DIR/list.out" limit:list_length
"$LIM_BIN" "$B_URL" list 65536 >"$T_DIR/list2.out" 2>&1
check "65536 hashes: served" grep -q "^refused=0 " "$T_DIR/list2.out"
"$LIM_BIN" "$B_URL" msgsize $((5 * 1048576 + 300000)) >"$T_DIR/msg.out" 2>&1
check "a request 300 KB over --recv-max 5M: refused" reason_is "$T_DIR/msg.out" limit:message_size
check "message_size hit counted" counted "$B_HTTP" Nas message_size
check "string_length hit counted" counted "$B_HTTP" Nas string_length
check "list_length hit counted" counted "$B_HTTP" Nas list_length

# Quota: 300K of checkpoints per node, logical bytes after retention.
head -c 200000 /dev/urandom >"$T_DIR/s1"
head -c 200000 /dev/urandom >"$T_DIR/s2"
bctl() { "$CTL_BIN" --nas "$B_URL" "$@"; }
check "n9 stores 200 KB" bctl put n9/c1 -i "$T_DIR/s1"
bctl --json put n9/c2 -i "$T_DIR/s2" >"$T_DIR/q.json" 2>"$T_DIR/q.err"; rc=$?
check "n9 storing 200 KB more over --node-quota 300K fails ($rc)" [ "$rc" -eq 1 ]
check "ckptctl --json gives the reason" jq -e '.error.reason == "limit:node_bytes" and
	.error.code == "RESOURCE_EXHAUSTED"' "$T_DIR/q.json"
check "the message names the limit" grep -q "node_bytes" "$T_DIR/q.err"
check "nothing of it is visible" sh -c "[ \"\$($CTL_BIN --nas $B_URL --json ls n9 | jq length)\" -eq 1 ]"
check "n8 stores the same 200 KB (its own quota; dedup does not matter)" bctl put n8/c2 -i "$T_DIR/s2"
check "n9 stores it once its first is deleted" sh -c "$CTL_BIN --nas $B_URL rm n9/c1 >/dev/null &&
	$CTL_BIN --nas $B_URL put n9/c2 -i $T_DIR/s2"
check "node_bytes hit counted" counted "$B_HTTP" Nas node_bytes
check "node_bytes hit logged" log_has nasb "limit node_bytes hit"

# Manager: nodes and components per node.
M_PORT=${PORTS[4]}; M_EV=${PORTS[5]}; M_HTTP=${PORTS[6]}
start_manager mgr "$M_PORT" "$M_EV" "$B_URL" --heartbeat-ms 100 --down-after 2s \
	--http "http://127.0.0.1:$M_HTTP" --max-nodes 1 --max-node-components 1 ||
	{ echo "manager did not start"; exit 1; }
MGR_URL="tcp://127.0.0.1:$M_PORT"
agent() { # NAME PORT ARGS...
	local name=$1 port=$2; shift 2
	start "$name" "$AGENT_BIN" --node "$name" --manager "$MGR_URL" \
		--listen "tcp://127.0.0.1:$port" --interval-ms 500 "$@"
}
agent n1 "${PORTS[7]}" --demo a1:64K --demo a2:64K
check "a node with 2 components at --max-node-components 1 is refused" \
	wait_for 15 log_has n1 "node_components"
check "node_components hit counted" counted "$M_HTTP" Manager node_components
stop n1
agent n2 "${PORTS[8]}" --demo b1:64K
nodes_up() { [ "$(ctl --json nodes | jq '[.[] | select(.state == "up")] | length')" -eq 1 ]; }
check "a node with 1 component attaches" wait_for 15 nodes_up
agent n3 "${PORTS[9]}"
check "a second node at --max-nodes 1 is refused" wait_for 15 log_has n3 "limit nodes"
check "nodes hit counted" counted "$M_HTTP" Manager nodes
check "nodes hit logged" log_has mgr "limit nodes hit"
stop n3

# Agent: its own components, restored ones included (a manager without node limits).
M2_PORT=${PORTS[11]}; M2_EV=${PORTS[12]}; N6_HTTP=${PORTS[13]}
start_manager mgr2 "$M2_PORT" "$M2_EV" "$B_URL" --heartbeat-ms 100 --down-after 2s ||
	{ echo "manager 2 did not start"; exit 1; }
MGR_URL="tcp://127.0.0.1:$M2_PORT"
agent n5 "${PORTS[14]}" --demo x1:64K
agent n6 "${PORTS[15]}" --demo y1:64K --max-components 1 --http "http://127.0.0.1:$N6_HTTP"
both_up() { [ "$(ctl --json nodes | jq '[.[] | select(.state == "up")] | length')" -eq 2 ]; }
check "n5 and n6 attach" wait_for 15 both_up
x1_stored() { [ "$("$CTL_BIN" --nas "$B_URL" --json ls n5/x1 | jq length)" -ge 1 ]; }
check "x1 is checkpointed" wait_for 15 x1_stored
ctl migrate x1 --to n6 >"$T_DIR/mig.out" 2>&1; rc=$?
check "migrating x1 to n6, full at --max-components 1, fails ($rc)" [ "$rc" -ne 0 ]
check "the error names the limit" grep -q "node_components" "$T_DIR/mig.out"
check "n6 counts it" counted "$N6_HTTP" Agent node_components
check "n6 logs it" log_has n6 "limit node_components hit"

# Agent: its own components at start.
"$AGENT_BIN" --node n4 --manager "$MGR_URL" --listen "tcp://127.0.0.1:${PORTS[16]}" \
	--max-components 1 --demo c1:64K --demo c2:64K >"$T_DIR/n4.out" 2>&1; rc=$?
check "an agent given 2 components at --max-components 1 refuses to start ($rc)" [ "$rc" -ne 0 ]
check "it names the limit" grep -q "node_components" "$T_DIR/n4.out"

finish
