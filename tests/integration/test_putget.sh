#!/usr/bin/env bash
# put/get round trips of 0 B, 1 B, 1 MiB and 256 MiB compared byte for byte;
# a NAS restarted (SIGTERM, then SIGKILL) between put and get still returns the data.
. "$(dirname "$0")/lib.sh"

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port)
MGR_URL="tcp://127.0.0.1:$MGR_PORT"
NAS_URL="tcp://127.0.0.1:$NAS_PORT"
start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
start_manager manager "$MGR_PORT" "$EV_PORT" "$NAS_URL" || { echo "manager did not start"; exit 1; }

ms() { echo $(( $(date +%s%N) / 1000000 )); }
for spec in "zero 0" "one 1" "mib 1048576" "big 268435456"; do
	set -- $spec
	name=$1 size=$2
	head -c "$size" /dev/urandom >"$T_DIR/$name.in"
	t0=$(ms)
	ctl --json put "node_a/$name" -i "$T_DIR/$name.in" >"$T_DIR/$name.put.json"
	rc=$?
	t1=$(ms)
	check "put of $size bytes succeeds" [ "$rc" -eq 0 ]
	ctl get "node_a/$name" -o "$T_DIR/$name.out"
	rc=$?
	t2=$(ms)
	check "get of $size bytes succeeds" [ "$rc" -eq 0 ]
	check "$size bytes come back byte for byte" cmp -s "$T_DIR/$name.in" "$T_DIR/$name.out"
	want=$(sha256sum "$T_DIR/$name.in" | cut -d' ' -f1)
	# The record's digest is the one of its chunk list; ckptctl digest computes it locally.
	check "put reports the digest of $size bytes (ckptctl digest)" \
		[ "$(jq -r .digest "$T_DIR/$name.put.json")" = \
		  "$(ctl digest "$T_DIR/$name.in" --like "node_a/$name" | cut -d' ' -f1)" ]
	check "put reports no plain sha256 (the writer reads the bytes once)" \
		[ "$(jq -r .sha256 "$T_DIR/$name.put.json")" = null ]
	check "verify: the input file is node_a/$name" ctl verify "$T_DIR/$name.in" "node_a/$name"
	check "get --sha256 prints the plain SHA-256 of what it wrote, as sha256sum does" \
		[ "$(ctl get "node_a/$name" -o "$T_DIR/$name.out2" --sha256)" = "$want  $T_DIR/$name.out2" ]
	check "get --sha256 --json: the same in its sha256 field" \
		[ "$(ctl --json get "node_a/$name" -o "$T_DIR/$name.out2" --sha256 | jq -r .sha256)" = "$want" ]
	rm -f "$T_DIR/$name.out2"
	echo "# $size bytes: put $((t1 - t0)) ms, get $((t2 - t1)) ms"
	rm -f "$T_DIR/$name.out"
	[ "$name" = big ] || continue
	rm -f "$T_DIR/$name.in"
	echo "$want" >"$T_DIR/big.sha"
done

# A file one byte off is not the checkpoint: verify exits 1 and says so.
cp "$T_DIR/mib.in" "$T_DIR/mib.bad"
printf 'X' | dd of="$T_DIR/mib.bad" bs=1 seek=100000 conv=notrunc 2>/dev/null
ctl verify "$T_DIR/mib.bad" node_a/mib 2>"$T_DIR/verify.err"
check "verify: a file one byte off is not node_a/mib (exit 1)" [ $? -eq 1 ]
check "verify: says it is not" grep -q "is not node_a/mib@1" "$T_DIR/verify.err"
check "digest: another file has another digest" \
	[ "$(ctl digest "$T_DIR/mib.bad" | cut -d' ' -f1)" != "$(jq -r .digest "$T_DIR/mib.put.json")" ]
check "digest --like with smaller chunks than put's: another digest (the cuts differ)" \
	[ "$(ctl --chunk-min 1K --chunk-avg 2K --chunk-max 8K digest "$T_DIR/mib.in" | cut -d' ' -f1)" != \
	  "$(jq -r .digest "$T_DIR/mib.put.json")" ]
rm -f "$T_DIR/mib.bad"

# A memory image (half zero pages: holes) and its next checkpoint (1% of the
# pages rewritten), from ../shared/bench/workloads.py at 1/8 scale: both read
# back byte for byte, and the second sends a small part of the image.
wl="$(cd "$(dirname "$0")/../.." && pwd)/../shared/bench/workloads.py"
if [ -f "$wl" ] && python3 "$wl" "$T_DIR/wl" --scale 8 >/dev/null; then
	ctl --json put node_a/image -i "$T_DIR/wl/W2" >"$T_DIR/w2.json"
	check "memory image: put succeeds" [ $? -eq 0 ]
	ctl --json put node_a/image -i "$T_DIR/wl/W3" >"$T_DIR/w3.json"
	check "next memory image: put succeeds" [ $? -eq 0 ]
	size=$(stat -c %s "$T_DIR/wl/W3")
	sent=$(jq .sent_bytes "$T_DIR/w3.json")
	echo "# next memory image: $sent bytes sent of $size"
	check "next memory image: less than 10% of it sent" [ "$sent" -lt $((size / 10)) ]
	ctl get node_a/image@1 -o "$T_DIR/w2.out"
	check "memory image reads back byte for byte" cmp -s "$T_DIR/wl/W2" "$T_DIR/w2.out"
	ctl get node_a/image@2 -o "$T_DIR/w3.out"
	check "next memory image reads back byte for byte" cmp -s "$T_DIR/wl/W3" "$T_DIR/w3.out"
	# The same bytes from a pipe (read window by window): the same digest, nothing new sent.
	ctl --json put node_a/image <"$T_DIR/wl/W3" >"$T_DIR/w3pipe.json"
	check "memory image from stdin: the same digest as from the file" \
		[ "$(jq -r .digest "$T_DIR/w3pipe.json")" = "$(jq -r .digest "$T_DIR/w3.json")" ]
	# A file that differs in one byte is not that checkpoint (exit 1), and says why.
	cp "$T_DIR/wl/W3" "$T_DIR/w3.bad"
	printf 'X' | dd of="$T_DIR/w3.bad" bs=1 seek=4096 conv=notrunc 2>/dev/null
	ctl verify "$T_DIR/w3.bad" node_a/image@2 2>"$T_DIR/verify.err"
	check "verify: a file one byte off is not node_a/image@2 (exit 1)" [ $? -eq 1 ]
	check "verify: says it is not" grep -q "is not node_a/image@2" "$T_DIR/verify.err"
	check "verify: the right file is node_a/image@2 (exit 0)" ctl verify "$T_DIR/wl/W3" node_a/image@2
	check "digest --like: the record's digest" \
		[ "$(ctl digest "$T_DIR/wl/W3" --like node_a/image@2 | cut -d' ' -f1)" = \
		  "$(jq -r .digest "$T_DIR/w3.json")" ]
	rm -f "$T_DIR/w3.bad"
	check "memory image from stdin: no chunk sent again" \
		[ "$(jq .sent_chunks "$T_DIR/w3pipe.json")" = 0 ]
	rm -rf "$T_DIR/wl" "$T_DIR"/w*.out
else
	echo "# SKIP memory image: $wl not found"
fi

# get to stdout, and a specific seq
printf 'first' | ctl put node_a/seqs >/dev/null
printf 'second' | ctl put node_a/seqs >/dev/null
check "get NODE/COMP@1 returns the first version" [ "$(ctl get node_a/seqs@1)" = "first" ]
check "get NODE/COMP returns the latest" [ "$(ctl get node_a/seqs)" = "second" ]
check "ls --json lists both sequences" \
	[ "$(ctl --json ls node_a/seqs | jq -c 'map(.seq)')" = "[1,2]" ]

# A small checkpoint (an ECU's 4 KiB state), from a file and from a pipe: one
# Store carrying its chunks, one NAS commit, and it reads back byte for byte.
head -c 4096 /dev/urandom >"$T_DIR/ecu.in"
nas_writes() { ctl --json stat | jq .writes; }
w0=$(nas_writes)
ctl put node_a/ecu -i "$T_DIR/ecu.in" >/dev/null
check "small put from a file: one NAS write (chunks inline in the Store)" [ $(( $(nas_writes) - w0 )) -eq 1 ]
w0=$(nas_writes)
head -c 3000 "$T_DIR/ecu.in" >"$T_DIR/ecu2.in"
cat "$T_DIR/ecu2.in" | ctl put node_a/ecu2 >/dev/null
check "small put from a pipe: one NAS write" [ $(( $(nas_writes) - w0 )) -eq 1 ]
check "small checkpoint comes back byte for byte" sh -c \
	"$CTL_BIN --manager $MGR_URL get node_a/ecu | cmp -s - $T_DIR/ecu.in"
check "small checkpoint from a pipe comes back byte for byte" sh -c \
	"$CTL_BIN --manager $MGR_URL get node_a/ecu2 | cmp -s - $T_DIR/ecu2.in"
check "small checkpoint: verify says the file is it" ctl verify "$T_DIR/ecu.in" node_a/ecu

for sig in TERM KILL; do
	stop nas "$sig"
	mv "$T_DIR/nas.log" "$T_DIR/nas-before-sig$sig.log"
	start_nas nas "$NAS_PORT"
	check "NAS restarts after SIG$sig" [ $? -eq 0 ]
	check "1 MiB checkpoint survives the NAS restart (SIG$sig)" sh -c \
		"$CTL_BIN --manager $MGR_URL get node_a/mib -o $T_DIR/mib.after && cmp -s $T_DIR/mib.in $T_DIR/mib.after"
	check "256 MiB checkpoint survives the NAS restart (SIG$sig)" sh -c \
		"[ \"\$($CTL_BIN --manager $MGR_URL get node_a/big | sha256sum | cut -d' ' -f1)\" = \"$(cat "$T_DIR/big.sha")\" ]"
done

check "missing checkpoint: exit 1" sh -c "! $CTL_BIN --manager $MGR_URL get node_a/nothing -o $T_DIR/x 2>$T_DIR/err.txt"
check "missing checkpoint: one-line NOT_FOUND error" sh -c \
	"[ \$(wc -l <$T_DIR/err.txt) -eq 1 ] && grep -q NOT_FOUND $T_DIR/err.txt"
check "missing checkpoint: no output file left" [ ! -e "$T_DIR/x" ]
finish
