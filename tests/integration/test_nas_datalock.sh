#!/usr/bin/env bash
# One NAS per data folder (issue 14, defect 4): a second ckpt-nas on a folder
# in use, and `ckpt-nas --check` on it, fail at start naming the folder and
# the holder's pid, and leave the running NAS and its data alone; the lock of
# a NAS killed with SIGKILL does not block the next one.
. "$(dirname "$0")/lib.sh"

NAS_PORT=$(free_port)
NAS_URL="tcp://127.0.0.1:$NAS_PORT"
DATA="$T_DIR/nas-data"
start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
nctl() { "$CTL_BIN" --nas "$NAS_URL" "$@"; }

head -c 300000 /dev/urandom >"$T_DIR/state"
check "a checkpoint is stored" sh -c "$CTL_BIN --nas $NAS_URL put n/c -i $T_DIR/state >/dev/null"

P2=$(free_port)
"$NAS_BIN" --listen "tcp://127.0.0.1:$P2" --data "$DATA" --keep 1000000 >"$T_DIR/nas2.log" 2>&1 &
pid2=$!
T_PIDS+=("$pid2")
# Either it exits at once (fixed) or it serves (the defect); wait for either.
wait_for 10 sh -c "! kill -0 $pid2 2>/dev/null || grep -q listening $T_DIR/nas2.log"
check "a second NAS on the same --data does not start" sh -c "! kill -0 $pid2 2>/dev/null"
kill -0 "$pid2" 2>/dev/null && kill -KILL "$pid2" # the defect: it runs
wait "$pid2" 2>/dev/null; rc2=$?
check "it exits non-zero (got $rc2)" [ "$rc2" -ne 0 ]
check "its message names the folder" grep -q -- "$DATA" "$T_DIR/nas2.log"
check "and the holder's pid ($PID_nas)" grep -q -- "pid $PID_nas" "$T_DIR/nas2.log"
check "it did not touch the data (no orphan sweep)" sh -c "! grep -q orphan $T_DIR/nas2.log"

"$NAS_BIN" --check --data "$DATA" >"$T_DIR/check-busy.txt" 2>&1; rc=$?
check "--check on a folder in use exits non-zero (got $rc)" [ "$rc" -ne 0 ]
check "--check names the folder and the holder's pid" sh -c \
	"grep -q -- '$DATA' $T_DIR/check-busy.txt && grep -q -- 'pid $PID_nas' $T_DIR/check-busy.txt"
check "--check says it is in use, in one line" sh -c \
	"[ \$(wc -l <$T_DIR/check-busy.txt) -eq 1 ] && grep -q 'in use' $T_DIR/check-busy.txt"

nctl get n/c -o "$T_DIR/state.out"
check "the first NAS still serves its checkpoint" cmp -s "$T_DIR/state" "$T_DIR/state.out"

stop nas KILL
mv "$T_DIR/nas.log" "$T_DIR/nas-1.log"
check "the lock file of the killed NAS is left behind" [ -e "$DATA/lock" ]
check "--check runs on the folder of a killed NAS (stale lock)" sh -c \
	"$NAS_BIN --check --data $DATA >$T_DIR/check-stale.txt 2>&1"
check "a new NAS starts on it" start_nas nas "$NAS_PORT"
check "and serves the checkpoint" sh -c \
	"$CTL_BIN --nas $NAS_URL get n/c -o $T_DIR/state.2 && cmp -s $T_DIR/state $T_DIR/state.2"
check "the lock file holds the new NAS's pid" grep -qx "$PID_nas" "$DATA/lock"
finish
