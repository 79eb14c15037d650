#!/usr/bin/env bash
# deploy/local/run-demo.sh (defect 8 of issue 14): a cluster left running with
# --keep-running owns its run folder and ports. A second run on the same folder
# is refused, says what is running and how to stop it, and leaves the first
# cluster's data and services alone; a run from another folder on the same
# ports is refused before it starts anything; --stop stops the kept cluster.
# The demo uses the binaries of CKPT_BUILD (no install, no build). --tls runs
# the scenario on mutual TLS.
. "$(dirname "$0")/lib.sh"
DEMO="$(cd "$(dirname "$0")/../.." && pwd)/deploy/local/run-demo.sh"

# A base port whose five demo ports (+10, +20, +21, +31, +32) are all free (lib.sh).
BASE=$(free_ports_at 10 20 21 31 32)
RUN="$T_DIR/run"
MGR_URL="tcp://127.0.0.1:$((BASE + 20))"
demo() { CKPT_RUN_DIR="$1" CKPT_BASE_PORT="$BASE" CKPT_DEMO_BYTES=256K bash "$DEMO" "${@:2}"; }

start demo1 env CKPT_RUN_DIR="$RUN" CKPT_BASE_PORT="$BASE" CKPT_DEMO_BYTES=256K \
	bash "$DEMO" --keep-running
check "the kept demo runs the seed scenario" wait_for 90 log_has demo1 "the cluster keeps running"
check "the demo's digests match" log_has demo1 "digests match"
check "the demo says what it uses instead of building" log_has demo1 "using the binaries in $CKPT_BUILD"
check "the demo tells how to watch the cluster" log_has demo1 "ckptctl --manager $MGR_URL watch"
check "the demo tells how to stop the cluster" log_has demo1 "run-demo.sh --stop"

# Logs speak human (issue 14, defect 12): sizes with units, singulars.
check "the NAS logs sizes with units" log_has demo1 "checkpoint stored: dummy_1/demo_1@1 size=262178 (256.0 KiB)"
check "the agents log sizes with units" log_has demo1 "checkpoint stored on NAS: .* size=262178 (256.0 KiB)"
check "retention logs one checkpoint in the singular" log_has demo1 "retention: deleted 1 older checkpoint of"
check "no log says '1 ... checkpoints'" sh -c "! grep -E ' 1 (older )?checkpoints' '$T_DIR/demo1.log'"
check "the manager logs a declaration of 1 component" log_has demo1 "node dummy_1 declares 1 component it"

ctl --json ls >"$T_DIR/ls-before.json"
ctl --json nodes >"$T_DIR/nodes-before.json"
nas_pid=$(awk '$1 == "ckpt-nas" {print $2}' "$RUN/cluster")
mgr_pid=$(awk '$1 == "ckpt-manager" {print $2}' "$RUN/cluster")
n_before=$(jq length "$T_DIR/ls-before.json")
check "the first cluster stored checkpoints" [ "$n_before" -gt 0 ]

# The same folder again: refused, nothing deleted, nothing started.
demo "$RUN" >"$T_DIR/demo2.out" 2>"$T_DIR/demo2.err"
rc=$?
check "a second run on the same folder is refused (exit 1)" [ "$rc" -eq 1 ]
check "the refusal says a cluster is running there" grep -q "already running in $RUN" "$T_DIR/demo2.err"
check "the refusal names the running pids" grep -q "ckpt-nas (pid $nas_pid" "$T_DIR/demo2.err"
check "the refusal names the manager's address" grep -q "ckpt-manager (pid $mgr_pid, $MGR_URL)" "$T_DIR/demo2.err"
check "the refusal says how to stop it" grep -q -- "--stop" "$T_DIR/demo2.err"
check "the refusal is one line" [ "$(wc -l <"$T_DIR/demo2.err")" -eq 1 ]
check "the refused run started nothing" [ ! -s "$T_DIR/demo2.out" ]
check "the first NAS still runs" kill -0 "$nas_pid"
check "the first manager still runs" kill -0 "$mgr_pid"
check "the first cluster's data folder is intact" [ -f "$RUN/nas/data.mdb" ]
has_all_before() {
	ctl --json ls >"$T_DIR/ls-after.json" &&
	jq -e --slurpfile b "$T_DIR/ls-before.json" \
		'[.[] | .node + "/" + .component] | unique | . == ($b[0] | [.[] | .node + "/" + .component] | unique)' \
		"$T_DIR/ls-after.json"
}
check "the first cluster still serves its checkpoints" has_all_before
both_up() { ctl --json nodes | jq -e 'length == 2 and all(.state == "up")'; }
check "both agents of the first cluster are still up" both_up

# Another folder, same ports: refused by the port check before anything is deleted.
mkdir -p "$T_DIR/other/nas" && touch "$T_DIR/other/nas/keepme"
demo "$T_DIR/other" >/dev/null 2>"$T_DIR/demo3.err"
rc=$?
check "a run on ports in use is refused (exit 1)" [ "$rc" -eq 1 ]
check "the refusal names the busy port" grep -q "port $((BASE + 10)) (NAS" "$T_DIR/demo3.err"
check "the refusal says to pick CKPT_BASE_PORT" grep -q "CKPT_BASE_PORT" "$T_DIR/demo3.err"
check "the refused run deleted nothing" [ -f "$T_DIR/other/nas/keepme" ]
check "the first manager still runs after that" kill -0 "$mgr_pid"

# --stop stops the kept cluster, every process of it.
demo "$RUN" --stop >"$T_DIR/stop.out" 2>&1
check "--stop exits 0" [ $? -eq 0 ]
check "--stop says it stopped the cluster" grep -q "stopped" "$T_DIR/stop.out"
demo_gone() { ! kill -0 "$PID_demo1" 2>/dev/null; }
check "the kept demo's script exits" wait_for 30 demo_gone
gone() { ! kill -0 "$nas_pid" 2>/dev/null && ! kill -0 "$mgr_pid" 2>/dev/null; }
check "the cluster's services are gone" wait_for 10 gone
check "the lock is free again" flock -n "$RUN/lock" true
demo "$RUN" --stop >"$T_DIR/stop2.out" 2>&1
check "--stop with nothing running exits 0 and says so" sh -c \
	"[ $? -eq 0 ] && grep -q 'no demo cluster is running' '$T_DIR/stop2.out'"

# --tls: the same scenario with every connection on mutual TLS (issue 12).
demo "$T_DIR/tls" --tls >"$T_DIR/demo-tls.out" 2>&1
rc=$?
check "run-demo.sh --tls: the seed scenario passes (exit $rc)" sh -c \
	"[ $rc -eq 0 ] && grep -q 'digests match, every connection on mutual TLS' '$T_DIR/demo-tls.out'"
check "run-demo.sh --tls: the services listened on tls+tcp://" \
	grep -q "NAS on tls+tcp://127.0.0.1:$((BASE + 10))" "$T_DIR/demo-tls.out"
check "run-demo.sh --tls: the certificates are in RUN/certs" \
	test -s "$T_DIR/tls/certs/node-dummy_2.crt"
finish
