#!/usr/bin/env bash
# Corruption: a byte flipped inside a stored chunk. Reading that checkpoint is
# DATA_LOSS; `ckptctl get` without @SEQ falls back to the previous sequence and
# says so; scrub and `ckpt-nas --check` report it; an agent's restore (a
# failover here) falls back too and reports the sequence it really used.
. "$(dirname "$0")/lib.sh"
CORRUPT_BIN="$CKPT_BUILD/tests/integration/ckpt-corrupt"

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port)
MGR_URL="tcp://127.0.0.1:$MGR_PORT"
NAS_URL="tcp://127.0.0.1:$NAS_PORT"
NAS_DATA="$T_DIR/nas-data"
start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
start_manager manager "$MGR_PORT" "$EV_PORT" "$NAS_URL" --heartbeat-ms 100 --down-after 3s ||
	{ echo "manager did not start"; exit 1; }
nctl() { "$CTL_BIN" --nas "$NAS_URL" "$@"; }

# Two versions of n/c: random (stored raw) and compressible (stored as zstd).
head -c 300000 /dev/urandom >"$T_DIR/a"
{ head -c 100000 /dev/urandom; head -c 200000 /dev/zero; } >"$T_DIR/b"
nctl put n/c -i "$T_DIR/a" >/dev/null
nctl put n/c -i "$T_DIR/b" >/dev/null
check "the checkpoints are stored" [ "$(nctl --json ls n/c | jq length)" -eq 2 ]
check "scrub of an intact store is clean" sh -c "$CTL_BIN --nas $NAS_URL scrub >$T_DIR/scrub0.txt"
check "the corruption hook flips a byte of n/c@2" sh -c "$CORRUPT_BIN $NAS_DATA n c 2 >/dev/null"

check "get n/c@2: exit 1" sh -c "! $CTL_BIN --nas $NAS_URL get n/c@2 -o $T_DIR/x 2>$T_DIR/err2.txt"
check "get n/c@2: DATA_LOSS" grep -q DATA_LOSS "$T_DIR/err2.txt"
check "get n/c@2: no output file" [ ! -e "$T_DIR/x" ]
nctl get n/c -o "$T_DIR/got" 2>"$T_DIR/warn.txt"
check "get n/c (latest) falls back: exit 0" [ $? -eq 0 ]
check "it returns the previous sequence byte for byte" cmp -s "$T_DIR/a" "$T_DIR/got"
check "one warning line names the corrupt seq and the one used" sh -c \
	"[ \$(wc -l <$T_DIR/warn.txt) -eq 1 ] && grep -q 'c@2 is corrupt' $T_DIR/warn.txt && grep -q 'n/c@1 instead' $T_DIR/warn.txt"
nctl get n/c >"$T_DIR/got.stdout" 2>/dev/null
check "get to a redirected stdout falls back too" cmp -s "$T_DIR/a" "$T_DIR/got.stdout"
check "scrub reports the corrupt chunk: exit 1" sh -c \
	"! $CTL_BIN --nas $NAS_URL scrub >$T_DIR/scrub.txt 2>&1"
check "scrub names it" grep -q "is corrupt" "$T_DIR/scrub.txt"
check "the NAS logged the scrub's finding" log_has nas "scrub: chunk"

# A checkpoint of many batches (14 MB: 256 KiB, 512 KiB, 1 MiB, then 2 MiB
# each; `ckptctl get` keeps four in flight): its middle chunk (6.7 MiB in), in the sixth
# batch, fails while the batches around it are out or verified. No older
# sequence to fall back to: DATA_LOSS, and the reader stops cleanly.
head -c 14000000 /dev/urandom >"$T_DIR/big"
nctl put n/big -i "$T_DIR/big" >/dev/null
check "get of 14 MB (four batches in flight) reads back byte for byte" sh -c \
	"$CTL_BIN --nas $NAS_URL get n/big | cmp -s - $T_DIR/big"
check "the corruption hook flips a byte of n/big@1" sh -c "$CORRUPT_BIN $NAS_DATA n big 1 >/dev/null"
check "get n/big@1 -o: exit 1" sh -c "! $CTL_BIN --nas $NAS_URL get n/big@1 -o $T_DIR/xbig 2>$T_DIR/errbig.txt"
check "get n/big@1 -o: DATA_LOSS" grep -q DATA_LOSS "$T_DIR/errbig.txt"
check "get n/big@1 -o: no output file" [ ! -e "$T_DIR/xbig" ]
check "get n/big to stdout: exit 1, DATA_LOSS" sh -c \
	"! $CTL_BIN --nas $NAS_URL get n/big >/dev/null 2>$T_DIR/errbig2.txt && grep -q DATA_LOSS $T_DIR/errbig2.txt"

# The agent's restore: a component whose newest checkpoint is corrupt fails over.
agent() { # NAME ARGS...
	local name=$1; shift
	start "$name" "$AGENT_BIN" --node "$name" --manager "$MGR_URL" \
		--listen "tcp://127.0.0.1:$(free_port)" --interval-ms 200 "$@"
}
agent a1 --demo demo_1:256K
a1_up() { [ "$(ctl --json nodes | jq '[.[] | select(.state == "up")] | length')" -eq 1 ]; }
check "a1 attaches" wait_for 30 a1_up
# Ten checkpoints, two seconds of ticks (4 bytes each 100 ms): the newest then
# differs from the oldest in its middle chunk, which the corruption below hits
# (with three, a fast store could leave that chunk shared by every sequence,
# and no older one would read back).
stored_10() { [ "$(ctl --json ls a1/demo_1 | jq length)" -ge 10 ]; }
check "a1 checkpoints demo_1" wait_for 60 stored_10
# a1 dies alone: its failover waits for a node (no other node is up), so no
# restore can start before the corruption below is in place, however long a
# busy machine takes; and once a1 is down and its failover waits, no store of
# a1 is still on its way to the NAS: the newest checkpoint is the last one.
kill -KILL "$PID_a1"
waits() {
	ctl --json nodes | jq -e '.[] | select(.id == "a1") | select(.state == "down") |
		.pending[] | select(.component == "demo_1" and .attempts >= 1)' >/dev/null
}
check "a1 is down and demo_1 waits for a node" wait_for 30 waits
ctl --json ls a1/demo_1 >"$T_DIR/a1.json"
last=$(jq -r 'max_by(.seq) | .seq' "$T_DIR/a1.json")
check "the newest demo_1 checkpoint is corrupted" sh -c \
	"$CORRUPT_BIN $NAS_DATA a1 demo_1 $last >/dev/null"
# The corrupt chunk may be shared with older sequences (chunks are deduplicated,
# and a demo that did not change between two checkpoints stores the same
# chunks): the restore falls back to the newest sequence that reads back.
intact=
for seq in $(jq -r "[.[] | select(.seq < $last) | .seq] | sort | reverse | .[]" "$T_DIR/a1.json"); do
	if nctl get "a1/demo_1@$seq" -o "$T_DIR/intact" 2>/dev/null; then intact=$seq; break; fi
	rm -f "$T_DIR/intact"
done
check "an older demo_1 checkpoint reads back intact" [ -n "$intact" ]
prev=$(jq -c "map(select(.seq == ${intact:-0}))[0]" "$T_DIR/a1.json")
agent a2
restored() {
	ctl --json nodes | jq -e '.[] | select(.id == "a2") | .components[] |
		select(.name == "demo_1" and .restored_from != null)' >/dev/null
}
check "demo_1 fails over to a2 when it attaches" wait_for 30 restored
comp=$(ctl --json nodes | jq -c '.[] | select(.id == "a2") | .components[] | select(.name == "demo_1")')
check "a2 restored the newest intact sequence (restored_from says which)" \
	[ "$(jq -r .restored_from.seq <<<"$comp")" = "$(jq -r .seq <<<"$prev")" ]
check "its state digest is that checkpoint's" \
	[ "$(jq -r .state_digest <<<"$comp")" = "$(jq -r .digest <<<"$prev")" ]
check "a2 logged the fallback" wait_for 10 log_has a2 "is corrupt"
# The manager logs it after it recorded the move, which the check above saw.
check "the manager logged that an older checkpoint was used" \
	wait_for 10 log_has manager "an older checkpoint was used"
check "and not that the digests differ" sh -c "! grep -q 'reports restored state' $T_DIR/manager.log"

stop nas
check "ckpt-nas --check reports the corruption: exit 1" sh -c \
	"! $NAS_BIN --check --data $NAS_DATA >$T_DIR/check.txt 2>&1"
check "--check prints a report" grep -q "CORRUPT" "$T_DIR/check.txt"
finish
