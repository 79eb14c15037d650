#!/usr/bin/env bash
# The sweep after open on a full map with no room kept for deletes
# (--disk-reserve 0 at --map-max 2M): orphan chunks (a put refused for a
# stale epoch after its chunks went up), then the map filled until small
# stores are refused, then a restart. The sweep cannot delete the orphans
# (the map is full, and a delete fails there too: no reserve). It must stop
# with one clear warning, the counts marked not final (stat: counting) and
# the NAS serving; before, it retried for ever (1 s, 2 s, ... a minute) and
# never said it had given up. A start with a larger --map-max sweeps them.
. "$(dirname "$0")/lib.sh"

NAS_PORT=$(free_port)
NAS_URL="$T_TCP://127.0.0.1:$NAS_PORT"
nas() { start_nas nas "$NAS_PORT" --map-size 1M --map-max "$1" --disk-reserve 0; }
nctl() { "$CTL_BIN" --nas "$NAS_URL" "$@"; }
nas 2M || { echo "nas did not start"; exit 1; }

head -c 200000 /dev/urandom >"$T_DIR/first"
check "a checkpoint at epoch 5" sh -c "$CTL_BIN --nas $NAS_URL put n/e --epoch 5 -i $T_DIR/first >/dev/null"
head -c 600000 /dev/urandom >"$T_DIR/orph"
nctl put n/e --epoch 1 -i "$T_DIR/orph" >/dev/null 2>"$T_DIR/stale.err"
check "one at epoch 1 is refused after its chunks went up (orphans)" grep -q "stale epoch" "$T_DIR/stale.err"
for size in 300000 1000; do
	tiny=$(put_until_refused "$NAS_URL" n/fill "$size")
	echo "# store $tiny of $size bytes refused: $(cat "$T_DIR/err.txt")"
done
check "the map is full: small stores are refused" sh -c \
	"[ $tiny -gt 0 ] && grep -q 'RESOURCE_EXHAUSTED.*NAS storage full' $T_DIR/err.txt"
stop nas
mv "$T_DIR/nas.log" "$T_DIR/nas-1.log"

nas 2M || echo "# nas did not restart"
check "the NAS starts again at map-max" log_has nas "listening"
check "the sweep stops, saying why" wait_for 10 log_has nas "sweep after open stopped: NAS storage full"
grep "sweep after open" "$T_DIR/nas.log" | sed 's/^/# /'
check "... and that the counts are not final" log_has nas "byte counts not final"
check "no retry was announced" sh -c "! grep -q 'sweep after open: .*again in' $T_DIR/nas.log"
check "ckptctl stat: counting" sh -c "$CTL_BIN --nas $NAS_URL --json stat | jq -e '.counting == true' >/dev/null"
nctl get n/e -o "$T_DIR/first.out"
check "the NAS serves" cmp -s "$T_DIR/first" "$T_DIR/first.out"
stop nas
mv "$T_DIR/nas.log" "$T_DIR/nas-2.log"

nas 4M || echo "# nas did not restart"
check "with a larger --map-max the sweep ends" wait_for 10 log_has nas "sweep after open done"
grep "sweep after open" "$T_DIR/nas.log" | sed 's/^/# /'
check "... deleting the orphans" sh -c \
	"grep 'sweep after open done' $T_DIR/nas.log | grep -Eq ' [1-9][0-9]* orphan chunks deleted'"
check "ckptctl stat: counting over" sh -c "$CTL_BIN --nas $NAS_URL --json stat | jq -e '.counting == false' >/dev/null"
stop nas
check "--check is clean at the end" sh -c "$NAS_BIN --check --data $T_DIR/nas-data >$T_DIR/check.txt 2>&1"
finish
