#!/usr/bin/env bash
# Health and metrics (--http) of every service: NAS, manager and two agents,
# one of them started before the manager. /readyz answers 503 until that
# agent attaches and 200 after; /metrics counts the checkpoints and the
# migration and a failover; the checkpoint-age gauge grows while the NAS is
# frozen and falls once it answers again; promtool accepts every scrape.
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || { echo "# SKIP: curl is not installed (it scrapes the --http endpoints)"; exit 77; }
BAD_BIN="$CKPT_BUILD/tests/integration/ckpt-badinput"
# Nine ports, all different (free_port alone may hand out one twice).
PORTS=()
while [ ${#PORTS[@]} -lt 9 ]; do
	p=$(free_port)
	case " ${PORTS[*]} " in *" $p "*) ;; *) PORTS+=("$p") ;; esac
done
NAS_PORT=${PORTS[0]}; MGR_PORT=${PORTS[1]}; EV_PORT=${PORTS[2]}
A1_PORT=${PORTS[3]}; A2_PORT=${PORTS[4]}
NAS_HTTP=http://127.0.0.1:${PORTS[5]}; MGR_HTTP=http://127.0.0.1:${PORTS[6]}
A1_HTTP=http://127.0.0.1:${PORTS[7]}; A2_HTTP=http://127.0.0.1:${PORTS[8]}
echo "# ports: ${PORTS[*]}"
MGR_URL="tcp://127.0.0.1:$MGR_PORT"

# status URL: the HTTP status code of a GET.
status() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1"; }
# body URL: the body of a GET.
body() { curl -s --max-time 5 "$1"; }
# metric HTTP_URL SAMPLE: the value of one sample ("name{labels}" as rendered), or "".
metric() { curl -s --max-time 5 "$1/metrics" | awk -v k="$2" '$1 == k { print $2 }'; }
# metric_is HTTP_URL SAMPLE VALUE: the sample has exactly VALUE.
metric_is() { [ "$(metric "$1" "$2")" = "$3" ]; }
# metric_ge HTTP_URL SAMPLE MIN: the sample exists and is >= MIN.
metric_ge() { local v; v=$(metric "$1" "$2"); [ -n "$v" ] && awk -v v="$v" -v m="$3" 'BEGIN { exit !(v >= m) }'; }
# age COMPONENT: the manager's checkpoint age of COMPONENT (any node).
age() {
	curl -s --max-time 5 "$MGR_HTTP/metrics" |
		awk -v c="ckpt_manager_checkpoint_age_seconds{component=\"$1\"," 'index($1, c) == 1 { print $2 }'
}
gt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

start_nas nas "$NAS_PORT" --http "$NAS_HTTP" || { echo "nas did not start"; exit 1; }
check "nas logs its HTTP endpoint" log_has nas "health and metrics on $NAS_HTTP"
check "nas /healthz answers 200" [ "$(status "$NAS_HTTP/healthz")" = 200 ]
check "nas /readyz answers 200 (store open, not full)" wait_for 5 sh -c "[ \$(curl -s -o /dev/null -w '%{http_code}' $NAS_HTTP/readyz) = 200 ]"
check "an unknown path is 404" [ "$(status "$NAS_HTTP/nope")" = 404 ]

# dummy_1 before the manager: alive, not ready.
start dummy_1 "$AGENT_BIN" --node dummy_1 --manager "$MGR_URL" --listen "tcp://127.0.0.1:$A1_PORT" \
	--demo demo_1:256K --interval-ms 300 --http "$A1_HTTP"
check "agent serves /healthz before it attached" wait_for 10 sh -c "[ \$(curl -s -o /dev/null -w '%{http_code}' $A1_HTTP/healthz) = 200 ]"
not_attached() { [ "$(status "$A1_HTTP/readyz")" = 503 ] && body "$A1_HTTP/readyz" | grep -q "not attached"; }
check "agent /readyz answers 503 'not attached' before the manager is up" wait_for 5 not_attached
check "... and says it never attached yet" sh -c \
	"curl -s --max-time 5 $A1_HTTP/readyz | grep -q 'not attached to the manager $MGR_URL yet'"
check "agent reports ckpt_agent_attached 0" [ "$(metric "$A1_HTTP" ckpt_agent_attached)" = 0 ]

start_manager manager "$MGR_PORT" "$EV_PORT" "tcp://127.0.0.1:$NAS_PORT" --http "$MGR_HTTP" ||
	{ echo "manager did not start"; exit 1; }
start dummy_2 "$AGENT_BIN" --node dummy_2 --manager "$MGR_URL" --listen "tcp://127.0.0.1:$A2_PORT" \
	--demo demo_2:256K --interval-ms 300 --http "$A2_HTTP"
check "agent /readyz answers 200 once attached" wait_for 15 sh -c "[ \$(curl -s -o /dev/null -w '%{http_code}' $A1_HTTP/readyz) = 200 ]"
check "agent reports ckpt_agent_attached 1" [ "$(metric "$A1_HTTP" ckpt_agent_attached)" = 1 ]
check "manager /readyz answers 200 (the NAS answers)" wait_for 5 sh -c "[ \$(curl -s -o /dev/null -w '%{http_code}' $MGR_HTTP/readyz) = 200 ]"
check "second agent ready" wait_for 15 sh -c "[ \$(curl -s -o /dev/null -w '%{http_code}' $A2_HTTP/readyz) = 200 ]"
check "manager counts both nodes up" wait_for 5 metric_is "$MGR_HTTP" 'ckpt_manager_nodes{state="up"}' 2

check "manager counts both components running" wait_for 10 metric_is "$MGR_HTTP" 'ckpt_manager_components{state="running"}' 2
check "manager reports demo_1 without restarts" [ "$(metric "$MGR_HTTP" 'ckpt_manager_component_restarts_total{component="demo_1",node="dummy_1"}')" = 0 ]

# After checkpoints.
check "nas counts demo_1's checkpoints" wait_for 10 metric_ge "$NAS_HTTP" 'ckpt_nas_checkpoints_stored_total{component="demo_1"}' 2
check "nas counts Store requests answered OK" metric_ge "$NAS_HTTP" 'ckpt_rpc_requests_total{service="Nas",method="Store",code="OK"}' 2
check "nas counts Store latencies" metric_ge "$NAS_HTTP" 'ckpt_rpc_request_duration_seconds_count{service="Nas",method="Store"}' 2
check "nas counts bytes received" metric_ge "$NAS_HTTP" ckpt_nas_received_bytes_total 1
check "agent counts bytes hashed (the first 256K at least)" metric_ge "$A1_HTTP" ckpt_agent_hashed_bytes_total 262144
check "agent counts chunks reused unchanged (the demo's hints)" wait_for 10 metric_ge "$A1_HTTP" ckpt_agent_reused_chunks_total 1
check "agent exports its stores made again (none here)" \
	metric_is "$A1_HTTP" ckpt_agent_store_retries_total 0
check "nas counts logical checkpoint bytes (>= 2 x 256K)" metric_ge "$NAS_HTTP" ckpt_nas_checkpoint_bytes_total 524288
check "nas reports a dedup ratio above 1 (unchanged demo states)" sh -c "v=\$(curl -s $NAS_HTTP/metrics | awk '\$1 == \"ckpt_nas_dedup_ratio\" { print \$2 }'); awk -v v=\"\$v\" 'BEGIN { exit !(v > 1) }'"
check "nas reports map use against map-max" metric_ge "$NAS_HTTP" ckpt_nas_map_max_bytes 1048576
check "nas reports its disk reserve, 16M by default" \
	metric_ge "$NAS_HTTP" ckpt_nas_disk_reserve_bytes 16777216
check "whole: the disk is not full" metric_is "$NAS_HTTP" ckpt_nas_disk_reserve_short 0
check "nas counts write commits" metric_ge "$NAS_HTTP" ckpt_nas_write_commits_total 1
check "manager counts notified checkpoints" wait_for 5 metric_ge "$MGR_HTTP" 'ckpt_manager_checkpoints_notified_total{component="demo_1"}' 1
check "manager counts Heartbeat requests" metric_ge "$MGR_HTTP" 'ckpt_rpc_requests_total{service="Manager",method="Heartbeat",code="OK"}' 1
check "agent counts its stored checkpoints" metric_ge "$A1_HTTP" 'ckpt_agent_checkpoints_stored_total{component="demo_1"}' 1
check "agent reports demo_1's interval (0.3 s)" [ "$(metric "$A1_HTTP" 'ckpt_agent_checkpoint_interval_seconds{component="demo_1"}')" = 0.3 ]
check "agent reports its queue limit" metric_ge "$A1_HTTP" ckpt_agent_queue_max_bytes 1
a1=$(age demo_1)
check "manager reports demo_1's checkpoint age" [ -n "$a1" ]

# The NAS frozen: no checkpoint is stored, the age grows; the manager is not ready.
kill -STOP "$PID_nas"
sleep 1
age_grew() { local a; a=$(age demo_1); [ -n "$a" ] && gt "$a" "$a1" && gt "$a" 1; }
check "checkpoint age grows while the NAS does not answer" wait_for 15 age_grew
a2=$(age demo_1)
no_nas() { [ "$(status "$MGR_HTTP/readyz")" = 503 ] && body "$MGR_HTTP/readyz" | grep -q "no NAS answers"; }
check "manager /readyz answers 503 'no NAS answers' while the NAS is frozen" wait_for 10 no_nas
kill -CONT "$PID_nas"
age_fell() { local a; a=$(age demo_1); [ -n "$a" ] && lt "$a" "$a2"; }
check "checkpoint age falls once the NAS answers again" wait_for 20 age_fell
check "manager ready again" wait_for 10 sh -c "[ \$(curl -s -o /dev/null -w '%{http_code}' $MGR_HTTP/readyz) = 200 ]"

# A migration.
check "ckptctl migrate demo_1 to dummy_2" ctl migrate demo_1 --to dummy_2
check "manager counts one migration ok" [ "$(metric "$MGR_HTTP" 'ckpt_manager_migrations_total{kind="migration",result="ok"}')" = 1 ]
check "manager's migration histogram has one observation" [ "$(metric "$MGR_HTTP" 'ckpt_manager_migration_duration_seconds_count{kind="migration"}')" = 1 ]
check "manager counts Migrate answered OK" [ "$(metric "$MGR_HTTP" 'ckpt_rpc_requests_total{service="Manager",method="Migrate",code="OK"}')" = 1 ]
check "target agent counts the Restore" metric_ge "$A2_HTTP" 'ckpt_rpc_requests_total{service="Agent",method="Restore",code="OK"}' 1
check "source agent counts the Stop" metric_ge "$A1_HTTP" 'ckpt_rpc_requests_total{service="Agent",method="Stop",code="OK"}' 1
check "nas counts bytes sent for the restore" metric_ge "$NAS_HTTP" ckpt_nas_sent_bytes_total 1
check "target agent counts bytes read from the NAS" metric_ge "$A2_HTTP" ckpt_agent_received_bytes_total 1
check "demo_1 goes on checkpointing on dummy_2" wait_for 10 metric_ge "$A2_HTTP" 'ckpt_agent_checkpoints_stored_total{component="demo_1"}' 1
check "source agent stops reporting demo_1's interval" sh -c "! curl -s $A1_HTTP/metrics | grep -q 'ckpt_agent_checkpoint_interval_seconds{component=\"demo_1\"}'"

# Bad requests are counted by the RPC layer, per service.
"$BAD_BIN" "tcp://127.0.0.1:$NAS_PORT" nas >"$T_DIR/bad.txt" 2>&1
check "nas counts bad requests" metric_ge "$NAS_HTTP" 'ckpt_rpc_bad_requests_total{service="Nas"}' 1
check "manager's bad requests start at 0" [ "$(metric "$MGR_HTTP" 'ckpt_rpc_bad_requests_total{service="Manager"}')" = 0 ]

# The exposition format, as Prometheus reads it.
for s in "nas $NAS_HTTP" "manager $MGR_HTTP" "dummy_1 $A1_HTTP" "dummy_2 $A2_HTTP"; do
	set -- $s
	curl -s -D "$T_DIR/$1.headers" -o "$T_DIR/$1.metrics" "$2/metrics"
	check "$1 /metrics has the 0.0.4 text content type" grep -qi '^Content-Type: text/plain; version=0.0.4' "$T_DIR/$1.headers"
	check "$1 /metrics: every sample has a TYPE" sh -c "awk '/^# TYPE/ { t[\$3] = 1 } !/^#/ { n = \$1; sub(/[{].*/, \"\", n); b = n; sub(/_(bucket|sum|count)\$/, \"\", b); if (!(n in t) && !(b in t)) bad = 1 } END { exit bad }' $T_DIR/$1.metrics"
	if command -v promtool >/dev/null; then
		check "promtool check metrics accepts $1's" sh -c "promtool check metrics <$T_DIR/$1.metrics"
	else
		echo "# SKIP promtool check metrics of $1: promtool not installed (Debian package prometheus)"
	fi
done

# A failover: dummy_2 (running both components now) killed, dummy_1 takes them.
stop dummy_2 KILL
check "manager counts dummy_2 down" wait_for 10 metric_is "$MGR_HTTP" 'ckpt_manager_nodes{state="down"}' 1
check "manager counts the failovers ok" wait_for 20 metric_ge "$MGR_HTTP" 'ckpt_manager_migrations_total{kind="failover",result="ok"}' 2
check "manager's failover histogram has them" metric_ge "$MGR_HTTP" 'ckpt_manager_migration_duration_seconds_count{kind="failover"}' 2
check "no component is left pending" wait_for 10 metric_is "$MGR_HTTP" ckpt_manager_pending_components 0
check "dummy_1 runs both components" wait_for 10 metric_is "$A1_HTTP" ckpt_agent_components_running 2

for s in dummy_1 manager nas; do
	check "$s exits 0 on SIGTERM" stop "$s" TERM
done
finish
