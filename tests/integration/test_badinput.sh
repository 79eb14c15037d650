#!/usr/bin/env bash
# Every service answers garbage, truncated protobuf, an unknown method, a wrong
# field type and an oversized message with an error reply (or drops it), logs
# it, counts it and goes on serving. Missing peers give a clear error with the
# address, never a hang. Usage errors exit 2.
. "$(dirname "$0")/lib.sh"
BAD_BIN="$CKPT_BUILD/tests/integration/ckpt-badinput"

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port); A_PORT=$(free_port)
DEAD_PORT=$(free_port)
MGR_URL="tcp://127.0.0.1:$MGR_PORT"

# An agent started before its manager: it retries and names the address.
start agent "$AGENT_BIN" --node n1 --manager "$MGR_URL" --listen "tcp://127.0.0.1:$A_PORT" \
	--demo c1:4K --interval-ms 200
check "agent without a manager logs the manager's address" wait_for 10 log_has agent "$MGR_URL"

start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
start_manager manager "$MGR_PORT" "$EV_PORT" "tcp://127.0.0.1:$NAS_PORT" ||
	{ echo "manager did not start"; exit 1; }
attached() { ctl --json nodes | jq -e 'length == 1 and .[0].state == "up"'; }
check "agent attaches once the manager is up" wait_for 15 attached

for svc in "nas $NAS_PORT" "manager $MGR_PORT" "agent $A_PORT"; do
	set -- $svc
	"$BAD_BIN" "tcp://127.0.0.1:$2" "$1" | tee "$T_DIR/bad-$1.txt"
	check "$1 survives every bad input" [ "${PIPESTATUS[0]}" -eq 0 ]
	check "$1 logged the bad requests" log_has "$1" "bad request"
done
check "NAS counts bad requests" sh -c "[ \$($CTL_BIN --manager $MGR_URL --json stat | jq .bad_requests) -ge 5 ]"

# Peers that are not there.
t0=$(date +%s)
"$CTL_BIN" --manager "tcp://127.0.0.1:$DEAD_PORT" nodes 2>"$T_DIR/dead.err"
rc=$?
t1=$(date +%s)
check "ckptctl to a dead manager exits 1" [ "$rc" -eq 1 ]
check "ckptctl to a dead manager names the address" grep -q "127.0.0.1:$DEAD_PORT" "$T_DIR/dead.err"
check "ckptctl to a dead manager does not hang" [ $((t1 - t0)) -le 5 ]
check "ckptctl error is one line" [ "$(wc -l <"$T_DIR/dead.err")" -eq 1 ]

# Issue 14, defect 12: small mistakes get a clear answer.
head -c 20000 /dev/urandom >"$T_DIR/blob"
ctl put n9/old -i "$T_DIR/blob" --seq 100 >/dev/null 2>"$T_DIR/put100.err"
check "put --seq 100 is stored" [ $? -eq 0 ]
ctl put n9/old -i "$T_DIR/blob" --seq 50 >/dev/null 2>"$T_DIR/put50.err"
check "put --seq 50 after 100 is stored (exit 0)" [ $? -eq 0 ]
check "put --seq 50 after 100 warns that @100 stays the newest" \
	grep -q "warning: n9/old@50 is older than the newest checkpoint of old, n9/old@100" "$T_DIR/put50.err"
check "put --seq 100 gave no warning" [ ! -s "$T_DIR/put100.err" ]
# `ls old` names a node: none is called so, a component is; it says how to list that.
ctl ls old >"$T_DIR/lsold.out" 2>"$T_DIR/lsold.err"
check "ls COMPONENT (taken as a node) exits 0 with nothing listed" [ $? -eq 0 ]
check "... and says how to list the component on every node" grep -q "ckptctl ls '\*/old'" "$T_DIR/lsold.err"
check "ls '*/old' lists it on every node" \
	[ "$(ctl --json ls '*/old' | jq '[.[] | select(.node == "n9" and .component == "old")] | length')" -eq 2 ]
check "catalog '*/old' names it too" \
	[ "$(ctl --json catalog '*/old' | jq '[.[] | select(.component == "old")] | length')" -eq 1 ]
ctl ls nosuch 2>"$T_DIR/lsno.err"
check "ls of a name that is neither says nothing more" [ ! -s "$T_DIR/lsno.err" ]
ctl ls '*/bad name' 2>/dev/null
check "ls '*/bad name' is a usage error (exit 2)" [ $? -eq 2 ]
script -qec "$CTL_BIN --manager $MGR_URL get n9/old@100" /dev/null >"$T_DIR/tty.out" 2>&1
rc=$?
check "get without -o on a terminal is a usage error (exit 2)" [ "$rc" -eq 2 ]
check "get without -o on a terminal says how to write the bytes" grep -q "refusing to write a binary checkpoint to a terminal.*-o -" "$T_DIR/tty.out"
check "get without -o on a terminal wrote no bytes" [ "$(wc -c <"$T_DIR/tty.out")" -lt 400 ]
script -qec "$CTL_BIN --manager $MGR_URL get n9/old@100 -o - | wc -c" /dev/null >"$T_DIR/tty2.out" 2>&1
check "get -o - into a pipe still writes the bytes" grep -q "^20000" "$T_DIR/tty2.out"
for bin in "$CTL_BIN --manager 127.0.0.1:$MGR_PORT nodes" "$CTL_BIN nodes --manager 127.0.0.1:$MGR_PORT" \
	"$MGR_BIN --listen 127.0.0.1:$MGR_PORT --events tcp://127.0.0.1:0 --nas tcp://127.0.0.1:1" \
	"$MGR_BIN --listen tcp://127.0.0.1:0 --events tcp://127.0.0.1:0 --nas tcp://127.0.0.1:1,127.0.0.1:$MGR_PORT" \
	"$NAS_BIN --listen 127.0.0.1:$MGR_PORT --data $T_DIR/nope" \
	"$AGENT_BIN --node n7 --manager 127.0.0.1:$MGR_PORT --listen tcp://127.0.0.1:0 --demo x"; do
	$bin >/dev/null 2>"$T_DIR/noscheme.err"
	rc=$?
	check "'${bin##*/}': an address without a scheme is a usage error (exit 2)" [ "$rc" -eq 2 ]
	check "'${bin##*/}': hints at tcp://127.0.0.1:$MGR_PORT" grep -q "did you mean tcp://127.0.0.1:$MGR_PORT?" "$T_DIR/noscheme.err"
done
# A port where something accepts and hangs up (what an unroutable address behind a
# proxy or firewall looks like): the error says what failed, not "Protocol error".
HUP_PORT=$(free_port)
python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
while True:
    c, _ = s.accept(); c.close()' "$HUP_PORT" &
T_PIDS+=($!)
wait_for 10 python3 -c "import socket; socket.create_connection(('127.0.0.1', $HUP_PORT))"
"$CTL_BIN" --manager "tcp://127.0.0.1:$HUP_PORT" nodes 2>"$T_DIR/hup.err"
check "ckptctl to a port that hangs up exits 1" [ $? -eq 1 ]
check "ckptctl to a port that hangs up says the connection was closed" \
	grep -q "cannot connect to tcp://127.0.0.1:$HUP_PORT: the connection was closed before the handshake" "$T_DIR/hup.err"
check "ckptctl to a port that hangs up does not say Protocol error" sh -c "! grep -q 'Protocol error' '$T_DIR/hup.err'"
"$CTL_BIN" --manager "$MGR_URL" --timeout 0 nodes 2>"$T_DIR/t0.err"
check "--timeout 0 is a usage error (exit 2)" [ $? -eq 2 ]
check "--timeout 0 names the unit of its bounds" grep -q "out of range \[1ms, 24h\]" "$T_DIR/t0.err"
for bin in "$NAS_BIN" "$MGR_BIN" "$AGENT_BIN"; do
	$bin >/dev/null 2>"$T_DIR/missing.err"
	check "${bin##*/} without options exits 2" [ $? -eq 2 ]
	check "${bin##*/}'s missing-option error says (see --help)" grep -q "missing required option .*(see --help)" "$T_DIR/missing.err"
done

stop nas TERM
"$CTL_BIN" --manager "$MGR_URL" --timeout 1s ls 2>"$T_DIR/nonas.err"
rc=$?
check "ls with the NAS down exits 1" [ "$rc" -eq 1 ]
check "ls with the NAS down names the NAS address" grep -q "127.0.0.1:$NAS_PORT" "$T_DIR/nonas.err"

# Usage errors exit 2.
for args in "" "bogus" "get" "get nonode" "get a/b@x" "put" "migrate" "--nope nodes"; do
	"$CTL_BIN" --manager "$MGR_URL" $args >/dev/null 2>&1
	check "ckptctl '$args' is a usage error (exit 2)" [ $? -eq 2 ]
done
"$NAS_BIN" --listen tcp://127.0.0.1:1 >/dev/null 2>"$T_DIR/nas-usage.err"
check "ckpt-nas without --data exits 2" [ $? -eq 2 ]
check "ckpt-nas names the missing option" grep -q -- "--data" "$T_DIR/nas-usage.err"
"$AGENT_BIN" --node "bad/name" --manager "$MGR_URL" --listen tcp://127.0.0.1:0 --demo x >/dev/null 2>&1
check "ckpt-agent with an invalid node id exits 2" [ $? -eq 2 ]
"$MGR_BIN" --listen "tcp://127.0.0.1:$MGR_PORT" --events "tcp://127.0.0.1:0" \
	--nas tcp://127.0.0.1:1 >/dev/null 2>"$T_DIR/mgr-busy.err"
check "a second manager on a busy port exits 1" [ $? -eq 1 ]
check "the busy-port error names the address" grep -q "127.0.0.1:$MGR_PORT" "$T_DIR/mgr-busy.err"
for s in agent manager; do check "$s exits 0 on SIGTERM" stop "$s" TERM; done
finish
