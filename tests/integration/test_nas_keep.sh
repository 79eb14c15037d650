#!/usr/bin/env bash
# `ckptctl keep COMPONENT N` (issue 14, item 12): retention is per component,
# so a component the NAS has never stored (a typo) is NOT_FOUND with a hint,
# not a silent success; a component with checkpoints, or with a setting of
# its own left after its checkpoints were removed, is served.
. "$(dirname "$0")/lib.sh"

NAS_PORT=$(free_port)
NAS_URL="tcp://127.0.0.1:$NAS_PORT"
start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
nctl() { "$CTL_BIN" --nas "$NAS_URL" "$@"; }

for i in 1 2 3; do head -c 5000 /dev/urandom | nctl put n/c >/dev/null; done
check "keep of a stored component works" sh -c "$CTL_BIN --nas $NAS_URL keep c 2 >$T_DIR/keep.txt"
check "and applies at once (1 deleted)" grep -q "1 deleted" "$T_DIR/keep.txt"
nctl keep cc 2 >"$T_DIR/out.txt" 2>"$T_DIR/err.txt"; rc=$?
check "keep of a component the NAS never stored fails (exit $rc)" [ "$rc" -ne 0 ]
check "with NOT_FOUND, in one line" sh -c \
	"[ \$(wc -l <$T_DIR/err.txt) -eq 1 ] && grep -q NOT_FOUND $T_DIR/err.txt"
check "naming the component and saying it has no checkpoint" \
	grep -q "cc.*no checkpoint" "$T_DIR/err.txt"
check "the refusal set nothing: a put of cc keeps the default" sh -c \
	"head -c 100 /dev/urandom | $CTL_BIN --nas $NAS_URL put n/cc >/dev/null && $CTL_BIN --nas $NAS_URL keep cc 0 >/dev/null"
check "rm of every checkpoint of c" sh -c "$CTL_BIN --nas $NAS_URL rm n/c >/dev/null"
check "its own setting can still be reset (keep c 0)" sh -c "$CTL_BIN --nas $NAS_URL keep c 0 >/dev/null"
nctl keep c 5 >/dev/null 2>"$T_DIR/err2.txt"; rc=$?
check "after which keep c fails (exit $rc) with NOT_FOUND" sh -c \
	"[ $rc -ne 0 ] && grep -q NOT_FOUND $T_DIR/err2.txt"
finish
