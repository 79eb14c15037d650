#!/usr/bin/env bash
# More components than the NAS keeps series for (--metrics-series-max 3):
# nothing is silent. Each Store of a component past the maximum counts in
# ckpt_metrics_series_dropped_total{family="ckpt_nas_checkpoints_stored_total"},
# the NAS logs one warning for that family (not one per Store), the first
# three components go on counting, and promtool accepts the scrape.
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || { echo "# SKIP: curl is not installed (it scrapes the --http endpoints)"; exit 77; }
read -r NAS_PORT HTTP_PORT < <(free_ports 2)
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
check "--metrics-series-max 0 is refused" sh -c "! $NAS_BIN --listen tcp://127.0.0.1:1 --data $T_DIR/x --metrics-series-max 0 2>/dev/null"
check "nas exits 0 on SIGTERM" stop nas TERM
finish
