#!/usr/bin/env bash
# The demo gives hints (the pages its ticks changed) and the agent stores
# from them: most chunks of each record come from the previous list. Every
# record read back is byte for byte the demo's state at its counter,
# recomputed here from the demo's definition (services/agent/demo.h); a node
# killed and started again resumes from a hinted record, and stores from
# hints again once it has stored one whole.
. "$(dirname "$0")/lib.sh"

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port); N1_PORT=$(free_port)
MGR_URL="tcp://127.0.0.1:$MGR_PORT"
NAS_URL="tcp://127.0.0.1:$NAS_PORT"

start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
start_manager manager "$MGR_PORT" "$EV_PORT" "$NAS_URL" --heartbeat-ms 100 --down-after 1s ||
	{ echo "manager did not start"; exit 1; }
agent() {
	start n1 "$AGENT_BIN" --node n1 --manager "$MGR_URL" --listen "tcp://127.0.0.1:$N1_PORT" \
		--interval-ms 300 --demo h1:2M
}
hinted() { [ "$(grep -c "n1/h1@[0-9]* .* from hints" "$T_DIR/n1.log")" -ge "$1" ]; }
hinted_seqs() { grep -o "n1/h1@[0-9]* .* from hints" "$T_DIR/n1.log" | sed 's/^n1\/h1@\([0-9]*\) .*/\1/'; }

# demo_ok FILE: FILE is the state of demo h1 (2 MiB) at the counter its header holds.
demo_ok() {
	python3 - "$1" <<'EOF'
import struct, sys
M = (1 << 64) - 1
def mix(x):
    x = (x + 0x9e3779b97f4a7c15) & M
    x = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & M
    x = ((x ^ (x >> 27)) * 0x94d049bb133111eb) & M
    return x ^ (x >> 31)
data = open(sys.argv[1], "rb").read()
name, size = b"h1", 2 << 20
counter = struct.unpack_from("<Q", data, 8)[0]
seed = 0xcbf29ce484222325
for c in name:
    seed = ((seed ^ c) * 0x100000001b3) & M
words = []
for _ in range(size // 8):
    seed ^= seed >> 12
    seed ^= (seed << 25) & M
    seed ^= seed >> 27
    words.append((seed * 0x2545f4914f6cdd1d) & M)
buf = bytearray(struct.pack("<%dQ" % len(words), *words))
for n in range(1, counter + 1):
    h = n
    for _ in range(4):
        h = mix(h)
        buf[h % size] ^= ((h >> 56) | 1) & 0xff
want = b"CKDEMO1\0" + struct.pack("<QI", counter, len(name)) + name + struct.pack("<Q", size) + buf
sys.exit(0 if data == bytes(want) else 1)
EOF
}

# every_record_ok: each of the last records read back is the demo's state; at least
# three of them were stored from hints.
every_record_ok() {
	local seq ok=0 from_hints=0 hs
	hs=" $(hinted_seqs | tr '\n' ' ') "
	for seq in $(ctl --json ls n1/h1 | jq -r 'map(.seq) | sort | .[-8:][]'); do
		ctl --timeout 30s get "n1/h1@$seq" -o "$T_DIR/h1.$seq" || { echo "get @$seq failed"; return 1; }
		demo_ok "$T_DIR/h1.$seq" || { echo "record @$seq is not the demo's state"; return 1; }
		ok=$((ok + 1))
		case $hs in *" $seq "*) from_hints=$((from_hints + 1)) ;; esac
		rm -f "$T_DIR/h1.$seq"
	done
	echo "$ok records read back, $from_hints from hints"
	[ "$ok" -ge 4 ] && [ "$from_hints" -ge 3 ]
}

agent
check "the agent stores from the demo's hints" wait_for 60 hinted 5
# most_reused: in every hinted store, more than half the chunks came from the previous list.
most_reused() {
	grep -o "from hints: [0-9]* of [0-9]* chunks" "$T_DIR/n1.log" |
		awk '{ n++; if (2 * $3 <= $5) bad++ } END { exit !(n > 0 && bad == 0) }'
}
check "... reusing most chunks of the previous list" most_reused
check "every record read back is the demo's state at its counter" every_record_ok

# SIGKILL and start again: it resumes from the newest record (hinted), digest equal.
stop n1 KILL
last=$(ctl --json ls n1/h1 | jq -c 'max_by(.seq)')
agent
resumed() {
	local c
	c=$(ctl --json nodes | jq -c '.[] | select(.id == "n1" and .state == "up") |
		.components[] | select(.name == "h1")')
	[ -n "$c" ] && [ "$(jq -r .restored_from.seq <<<"$c")" = "$(jq -r .seq <<<"$last")" ] &&
		[ "$(jq -r .state_sha256 <<<"$c")" = "$(jq -r .sha256 <<<"$last")" ]
}
check "after SIGKILL, h1 resumes from its newest (hinted) record, digest equal" \
	wait_for 30 resumed
check "... and stores from hints again" wait_for 60 hinted 3
check "... records still the demo's state" every_record_ok

finish
