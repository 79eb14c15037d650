#!/usr/bin/env bash
# A --nas list names one store (issue 14, defect 11): every NAS has a store id
# (Nas.Stat, `ckptctl stat`); a manager given two independent NAS refuses to
# start, naming both; the same NAS under two URLs is accepted; with one of
# the NAS down at start the manager starts, and refuses the list (as does an
# agent that learned it) once the other answers with a different id.
. "$(dirname "$0")/lib.sh"

PA=$(free_port); PB=$(free_port); PC=$(free_port)
A="tcp://127.0.0.1:$PA"; B="tcp://127.0.0.1:$PB"; C="tcp://127.0.0.1:$PC"
start_nas nasa "$PA" || { echo "nas A did not start"; exit 1; }
start_nas nasb "$PB" || { echo "nas B did not start"; exit 1; }
sid() { "$CTL_BIN" --nas "$1" --json stat | jq -r .store_id; }

ida=$(sid "$A"); idb=$(sid "$B")
check "ckptctl --json stat shows a store_id of 32 hex digits ($ida)" \
	sh -c "printf %s '$ida' | grep -Eqx '[0-9a-f]{32}'"
check "two data folders, two store ids" [ "$ida" != "$idb" ]
check "the same NAS by another name answers the same id" \
	[ "$(sid "tcp://localhost:$PA")" = "$ida" ]
check "ckptctl stat prints it" sh -c "$CTL_BIN --nas $A stat | grep -Eq '^store_id +$ida\$'"

# Two independent stores: refused at start.
MP=$(free_port); EP=$(free_port)
start m1 "$MGR_BIN" --listen "tcp://127.0.0.1:$MP" --events "tcp://127.0.0.1:$EP" --nas "$A,$B"
wait_for 15 sh -c "! kill -0 $PID_m1 2>/dev/null || grep -q listening $T_DIR/m1.log"
check "a manager given two stores does not start" sh -c "! kill -0 $PID_m1 2>/dev/null"
kill -0 "$PID_m1" 2>/dev/null && kill -KILL "$PID_m1" # the defect: it runs
wait "$PID_m1" 2>/dev/null; rc=$?
check "it exits non-zero (got $rc)" [ "$rc" -ne 0 ]
check "its message says different stores are refused" log_has m1 "different stores are refused"
check "and names both NAS and their ids" sh -c \
	"grep -q -- '$A is store $ida' $T_DIR/m1.log && grep -q -- '$B is store $idb' $T_DIR/m1.log"

# One store under two URLs: accepted.
MP=$(free_port); EP=$(free_port)
check "a manager given one NAS under two URLs starts" start_manager m2 "$MP" "$EP" \
	"$A,tcp://localhost:$PA"
MGR_URL="tcp://127.0.0.1:$MP"
check "it serves" ctl nodes
check "it refused nothing" sh -c "! grep -q refused $T_DIR/m2.log"
stop m2

# C down at start: the manager starts; when C answers as another store, it is refused.
MP=$(free_port); EP=$(free_port)
check "a manager whose second NAS is down starts" start_manager m3 "$MP" "$EP" "$A,$C"
MGR_URL="tcp://127.0.0.1:$MP"
check "it says it cannot check yet" log_has m3 "cannot check yet"
start a1 "$AGENT_BIN" --node a1 --manager "$MGR_URL" --listen "tcp://127.0.0.1:$(free_port)" \
	--interval-ms 500 --demo d1:64K
check "an agent attaches meanwhile" wait_for 20 log_has a1 "cannot check yet"
start_nas nasc "$PC" || { echo "nas C did not start"; exit 1; }
check "once C answers, the manager refuses the list" wait_for 20 log_has m3 "refused:.*different stores"
check "so does the agent" wait_for 20 log_has a1 "NAS list refused:.*different stores"
check "the manager is not wedged" ctl nodes
finish
