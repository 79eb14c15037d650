#!/usr/bin/env bash
# More components than the NAS keeps series for (--metrics-series-max 3):
# nothing is silent. Each Store of a component past the maximum counts in
# ckpt_metrics_series_dropped_total{family="ckpt_nas_checkpoints_stored_total"},
# the NAS logs one warning for that family (not one per Store), the first
# three components go on counting, and promtool accepts the scrape. The
# manager's --metrics-series-max 1 with two nodes attached: its metrics by
# node drop the second, counted and logged once per metric.
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || { echo "# SKIP: curl is not installed (it scrapes the --http endpoints)"; exit 77; }
read -r NAS_PORT HTTP_PORT MGR_PORT EV_PORT MGR_HTTP_PORT A1_PORT A2_PORT < <(free_ports 7)
NAS_URL="tcp://127.0.0.1:$NAS_PORT"
NAS_HTTP=http://127.0.0.1:$HTTP_PORT
metric() { curl -s --max-time 5 "$NAS_HTTP/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
STORED=ckpt_nas_checkpoints_stored_total
DROPPED="ckpt_metrics_series_dropped_total{family=\"$STORED\"}"

start_nas nas "$NAS_PORT" --http "$NAS_HTTP" --metrics-series-max 3 || { echo "nas did not start"; exit 1; }
head -c 5000 /dev/urandom >"$T_DIR/state"
put() { "$CTL_BIN" --nas "$NAS_URL" put "n/$1" -i "$T_DIR/state" >/dev/null; }

for c in c1 c2 c3; do
	check "$c is stored" put "$c"
done
check "3 components: nothing dropped, no such family rendered" \
	sh -c "! curl -s --max-time 5 $NAS_HTTP/metrics | grep -q ckpt_metrics_series_dropped_total"
check "no warning yet" sh -c "! grep -q 'has its 3 series' $T_DIR/nas.log"
for c in c4 c5 c4; do
	check "$c is stored (past the maximum: stored, not counted)" put "$c"
done
check "c1 c2 c3 counted" sh -c "[ \"\$(curl -s $NAS_HTTP/metrics | grep -c '^$STORED{component=\"c[123]\"} 1\$')\" = 3 ]"
check "c4, c5 not counted" sh -c "! curl -s $NAS_HTTP/metrics | grep -q 'component=\"c[45]\"'"
check "the 3 Stores past the maximum are counted as dropped" [ "$(metric "$DROPPED")" = 3 ]
check "one warning for the family, naming it and the flag" \
	[ "$(grep -c "metrics: $STORED has its 3 series; new ones are not counted.*--metrics-series-max" "$T_DIR/nas.log")" = 1 ]
check "a counted component goes on counting" put c1
check "c1 counted twice" [ "$(metric "$STORED{component=\"c1\"}")" = 2 ]
check "the drop counter is a counter" sh -c "curl -s $NAS_HTTP/metrics | grep -q '^# TYPE ckpt_metrics_series_dropped_total counter\$'"
if command -v promtool >/dev/null; then
	check "promtool check metrics accepts the scrape" sh -c "curl -s $NAS_HTTP/metrics | promtool check metrics"
else
	echo "# SKIP promtool check metrics: promtool not installed (Debian package prometheus)"
fi
# The manager: two nodes, one series kept per metric by node.
MGR_URL="tcp://127.0.0.1:$MGR_PORT"
MGR_HTTP=http://127.0.0.1:$MGR_HTTP_PORT
start_manager manager "$MGR_PORT" "$EV_PORT" "$NAS_URL" --http "$MGR_HTTP" --metrics-series-max 1 ||
	{ echo "manager did not start"; exit 1; }
for a in "dummy_1 $A1_PORT" "dummy_2 $A2_PORT"; do
	set -- $a
	start "$1" "$AGENT_BIN" --node "$1" --manager "$MGR_URL" --listen "tcp://127.0.0.1:$2"
done
mgr_metric() { curl -s --max-time 5 "$MGR_HTTP/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
both_up() { [ "$(mgr_metric 'ckpt_manager_nodes{state="up"}')" = 2 ]; }
check "both nodes attached" wait_for 15 both_up
QUEUED=ckpt_manager_node_queued_checkpoints
mgr_dropped() { local v; v=$(mgr_metric "ckpt_metrics_series_dropped_total{family=\"$QUEUED\"}"); [ -n "$v" ] && [ "$v" -ge 1 ]; }
check "the manager counts the second node's series of $QUEUED as dropped" wait_for 5 mgr_dropped
check "one node's series of $QUEUED kept" \
	[ "$(curl -s --max-time 5 "$MGR_HTTP/metrics" | grep -c "^$QUEUED{node=")" = 1 ]
check "one manager warning for $QUEUED" \
	[ "$(grep -c "metrics: $QUEUED has its 1 series; new ones are not counted" "$T_DIR/manager.log")" = 1 ]
check "nodes by state are not capped (2 up)" both_up
for s in dummy_1 dummy_2 manager; do
	check "$s exits 0 on SIGTERM" stop "$s" TERM
done

check "--metrics-series-max 0 is refused" sh -c "! $NAS_BIN --listen tcp://127.0.0.1:1 --data $T_DIR/x --metrics-series-max 0 2>/dev/null"
check "nas exits 0 on SIGTERM" stop nas TERM
finish
