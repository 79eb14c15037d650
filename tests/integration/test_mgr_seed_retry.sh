#!/usr/bin/env bash
# Issue 14, defect 5: a manager started while the NAS is down fills its
# catalogue once the NAS comes up (retry with back-off), without a restart,
# and says so.
. "$(dirname "$0")/lib.sh"

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port)
NAS_URL="tcp://127.0.0.1:$NAS_PORT"
MGR_URL="tcp://127.0.0.1:$MGR_PORT"

start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
head -c 100000 /dev/urandom >"$T_DIR/blob"
for c in c1 c2; do
	"$CTL_BIN" --nas "$NAS_URL" put "n0/$c" -i "$T_DIR/blob" >/dev/null ||
		{ echo "put of $c failed"; exit 1; }
done
check "the NAS stops" stop nas TERM

start_manager manager "$MGR_PORT" "$EV_PORT" "$NAS_URL" || { echo "manager did not start"; exit 1; }
check "the manager says the catalogue is not seeded" wait_for 20 log_has manager "not seeded"
catalog_n() { ctl --json catalog | jq length; }
check "its catalogue is empty while the NAS is down" [ "$(catalog_n)" = 0 ]

# The same NAS (same data) comes back on the same port.
start nas2 "$NAS_BIN" --listen "$NAS_URL" --data "$T_DIR/nas-data" --keep 1000000
check "the NAS is back" wait_for 10 log_has nas2 "listening"
filled() { [ "$(catalog_n)" = 2 ]; }
check "the catalogue fills without a manager restart" wait_for 20 filled
check "the manager logged when it was seeded" \
	log_has manager "catalogue seeded from the NAS: 2 components"
check "the manager retried (logged the attempts)" log_has manager "retrying"
check "the manager exits 0 on SIGTERM" stop manager TERM
finish
