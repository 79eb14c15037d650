#!/usr/bin/env bash
# A full NAS: with a tiny --map-max, a store that does not fit is refused with
# RESOURCE_EXHAUSTED, the store stays consistent (--check clean) and earlier
# checkpoints stay readable; smaller stores still go through. Small stores
# until one is refused too (LMDB's free pages used up): a delete still goes
# through at --map-max (the room it may need is kept: docs/storage.md; it
# failed on MDB_MAP_FULL before), and a store fits again after it.
. "$(dirname "$0")/lib.sh"

NAS_PORT=$(free_port)
NAS_URL="tcp://127.0.0.1:$NAS_PORT"
start_nas nas "$NAS_PORT" --map-size 1M --map-max 4M || { echo "nas did not start"; exit 1; }
nctl() { "$CTL_BIN" --nas "$NAS_URL" "$@"; }

head -c 200000 /dev/urandom >"$T_DIR/small"
head -c 8388608 /dev/urandom >"$T_DIR/big"
check "a small checkpoint fits" sh -c "$CTL_BIN --nas $NAS_URL put n/small -i $T_DIR/small >/dev/null"
check "8 MiB into a 4 MiB map: exit 1" sh -c \
	"! $CTL_BIN --nas $NAS_URL put n/big -i $T_DIR/big 2>$T_DIR/err.txt"
check "the error is RESOURCE_EXHAUSTED, one line" sh -c \
	"[ \$(wc -l <$T_DIR/err.txt) -eq 1 ] && grep -q RESOURCE_EXHAUSTED $T_DIR/err.txt"
check "the NAS logged why" log_has nas "NAS storage full"
check "no record of the refused checkpoint" [ "$(nctl --json ls n/big | jq length)" -eq 0 ]
nctl get n/small -o "$T_DIR/small.out"
check "the earlier checkpoint still reads back" cmp -s "$T_DIR/small" "$T_DIR/small.out"
check "a small store still fits" sh -c "head -c 1000 /dev/urandom | $CTL_BIN --nas $NAS_URL put n/small >/dev/null"
# The map filled with 300 KB stores, then 1000-byte ones, each until refused.
for size in 300000 1000; do
	tiny=$(put_until_refused "$NAS_URL" n/fill "$size")
	echo "# store $tiny of $size bytes refused: $(cat "$T_DIR/err.txt")"
done
check "small stores are refused too at map-max" sh -c \
	"[ $tiny -gt 0 ] && grep -q 'RESOURCE_EXHAUSTED.*NAS storage full' $T_DIR/err.txt"
check "a delete goes through at map-max" sh -c "$CTL_BIN --nas $NAS_URL rm n/fill >/dev/null"
check "and a store fits again after it" \
	sh -c "head -c 1000 /dev/urandom | $CTL_BIN --nas $NAS_URL put n/after >/dev/null"
check "scrub finds no corruption" sh -c "$CTL_BIN --nas $NAS_URL scrub >/dev/null"
stop nas
mv "$T_DIR/nas.log" "$T_DIR/nas-1.log"
check "--check is clean after the refusal" sh -c "$NAS_BIN --check --data $T_DIR/nas-data >/dev/null"
start_nas nas "$NAS_PORT" --map-size 1M --map-max 4M
check "after a restart the data is there" sh -c \
	"$CTL_BIN --nas $NAS_URL get n/small@1 -o $T_DIR/small.2 && cmp -s $T_DIR/small $T_DIR/small.2"
finish
