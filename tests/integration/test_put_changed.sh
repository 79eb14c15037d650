#!/usr/bin/env bash
# ckptctl put --cache DIR --changed RANGES: a put that reads only the pages a
# list names as changed since the put that wrote the cache. Each such put
# records the digest a whole read gives and reads back byte for byte: the
# workload's own dirty list, pages edited by hand in the three forms of the
# list (N, N-M, OFF+LEN), growth and truncation, and a plain --cache put
# after a hinted one (the fingerprints are carried). Then the mistakes: no
# cache, no file, a bad list, a cache file that is missing or stale (a whole
# put, said), and a change left out of the list (stored wrong, which
# `ckptctl verify` tells).
. "$(dirname "$0")/lib.sh"

NAS_PORT=$(free_port)
NAS_URL="$T_TCP://127.0.0.1:$NAS_PORT"
start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
nasctl() { "$CTL_BIN" --nas "$NAS_URL" "$@"; }
C="$T_DIR/cache"

top="$(cd "$(dirname "$0")/../.." && pwd)"
python3 "$top/bench/workloads.py" "$T_DIR/wl" --scale 8 >/dev/null || { echo "no workloads"; exit 1; }
W2="$T_DIR/wl/W2" W3="$T_DIR/wl/W3"
size=$(stat -c %s "$W3")
whole() { nasctl digest "$1" | cut -d' ' -f1; }
# readback REF FILE: the checkpoint reads back as FILE, byte for byte.
readback() { nasctl get "$1" -o "$T_DIR/out" && cmp -s "$2" "$T_DIR/out"; }
# edit FILE PAGE: page PAGE (4 KiB) of FILE rewritten with random bytes.
edit() { head -c 4096 /dev/urandom | dd of="$1" bs=4096 seek="$2" conv=notrunc status=none; }

nasctl put n/img -i "$W2" --cache "$C" >/dev/null
check "a first put with --cache" [ -s "$C/n@img.bcache" ]

commits() { nasctl --json stat | jq .write_commits; }
c0=$(commits)
nasctl --json put n/img -i "$W3" --cache "$C" --changed "$T_DIR/wl/W3.dirty" >"$T_DIR/p1.json"
check "put --changed with the workload's dirty pages succeeds" [ $? -eq 0 ]
check "... JSON changed: used" [ "$(jq -r .changed "$T_DIR/p1.json")" = used ]
check "... its new chunks inline in the Store (JSON inline: true)" \
	[ "$(jq -r .inline "$T_DIR/p1.json")" = true ] && [ "$(jq .sent_chunks "$T_DIR/p1.json")" -gt 0 ]
check "... one NAS commit (no PutChunks commit before the Store's)" [ $(( $(commits) - c0 )) -eq 1 ]
echo "# hinted put: hashed $(jq .hashed_bytes "$T_DIR/p1.json"), reused $(jq .reused_bytes "$T_DIR/p1.json") of $size"
check "... hashes less than 10% of the image" [ "$(jq .hashed_bytes "$T_DIR/p1.json")" -lt $((size / 10)) ]
check "... reuses more than 90% of it" [ "$(jq .reused_bytes "$T_DIR/p1.json")" -gt $((size * 9 / 10)) ]
check "... records the digest a whole read gives" [ "$(jq -r .digest "$T_DIR/p1.json")" = "$(whole "$W3")" ]
check "... reads back byte for byte" readback n/img@2 "$W3"

# More new chunks than a Store carries inline (LIMIT_STORE_INLINE_MAX, 4 MiB): sent by PutChunks.
cp "$W3" "$T_DIR/W4"
big=$(( size - 8192 < 5 * 1048576 ? size - 8192 : 5 * 1048576 ))
head -c "$big" /dev/urandom | dd of="$T_DIR/W4" bs=4096 seek=1 conv=notrunc status=none
printf '4096+%d\n' "$big" >"$T_DIR/r4"
nasctl --json put n/img -i "$T_DIR/W4" --cache "$C" --changed "$T_DIR/r4" >"$T_DIR/p0.json"
check "a hinted put of $big new bytes succeeds, its ranges used" \
	[ "$(jq -r .changed "$T_DIR/p0.json")" = used ]
if [ "$big" -gt $((4 << 20)) ]; then
	check "... its chunks by PutChunks, not inline (JSON inline: false)" \
		[ "$(jq -r .inline "$T_DIR/p0.json")" = false ]
fi
check "... the digest a whole read gives" [ "$(jq -r .digest "$T_DIR/p0.json")" = "$(whole "$T_DIR/W4")" ]
check "... reads back byte for byte" readback "n/img@$(jq .seq "$T_DIR/p0.json")" "$T_DIR/W4"
# Back to W3 (the base of the edits below): a hinted put of what W4 changed.
nasctl put n/img -i "$W3" --cache "$C" --changed "$T_DIR/r4" >/dev/null
check "W3 again from W4's ranges" [ $? -eq 0 ]

# Pages edited by hand, listed in the three forms, with a comment and commas.
cp "$W3" "$T_DIR/W5"
for p in 3 4 5 100 700 1500; do edit "$T_DIR/W5" "$p"; done
printf '# pages edited\n3-5, 100\n%d+4096 0x%x\n' $((700 * 4096)) 1500 >"$T_DIR/r5"
nasctl --json put n/img -i "$T_DIR/W5" --cache "$C" --changed "$T_DIR/r5" >"$T_DIR/p2.json"
check "a second hinted put (N-M, N, OFF+LEN, hex) succeeds" [ $? -eq 0 ]
check "... uses its ranges" [ "$(jq -r .changed "$T_DIR/p2.json")" = used ]
check "... the digest a whole read gives" [ "$(jq -r .digest "$T_DIR/p2.json")" = "$(whole "$T_DIR/W5")" ]
check "... reads back byte for byte" readback "n/img@$(jq .seq "$T_DIR/p2.json")" "$T_DIR/W5"

# After a hinted put, a put without ranges walks the fingerprints it left.
nasctl --json put n/img -i "$T_DIR/W5" --cache "$C" >"$T_DIR/p3.json"
check "a plain --cache put after a hinted one reuses more than 90%" \
	[ "$(jq .reused_bytes "$T_DIR/p3.json")" -gt $((size * 9 / 10)) ]
check "... and hashes nothing" [ "$(jq .hashed_bytes "$T_DIR/p3.json")" -eq 0 ]
check "... and records the digest a whole read gives" [ "$(jq -r .digest "$T_DIR/p3.json")" = "$(whole "$T_DIR/W5")" ]

# Growth: 100 KB appended, listed as a byte range; then a truncation (nothing below the new end changed).
cp "$T_DIR/W5" "$T_DIR/W6"
head -c 100000 /dev/urandom >>"$T_DIR/W6"
echo "$size+100000" >"$T_DIR/r6"
nasctl --json put n/img -i "$T_DIR/W6" --cache "$C" --changed "$T_DIR/r6" >"$T_DIR/p4.json"
check "growth listed as OFF+LEN: the digest a whole read gives" \
	[ "$(jq -r .digest "$T_DIR/p4.json")" = "$(whole "$T_DIR/W6")" ]
check "... reads back byte for byte" readback n/img "$T_DIR/W6"
head -c $((size / 2 + 1234)) "$T_DIR/W6" >"$T_DIR/W7"
: >"$T_DIR/r7"
nasctl --json put n/img -i "$T_DIR/W7" --cache "$C" --changed "$T_DIR/r7" >"$T_DIR/p5.json"
check "truncation with an empty list: the digest a whole read gives" \
	[ "$(jq -r .digest "$T_DIR/p5.json")" = "$(whole "$T_DIR/W7")" ]
check "... reads back byte for byte" readback n/img "$T_DIR/W7"
# The list from stdin.
cp "$T_DIR/W7" "$T_DIR/W8"
edit "$T_DIR/W8" 9
echo 9 | nasctl --json put n/img -i "$T_DIR/W8" --cache "$C" --changed - >"$T_DIR/p6.json"
check "the list from stdin (--changed -)" [ "$(jq -r .digest "$T_DIR/p6.json")" = "$(whole "$T_DIR/W8")" ]

# Mistakes.
nasctl put n/img -i "$T_DIR/W8" --changed "$T_DIR/r7" 2>"$T_DIR/e1"
check "--changed without --cache: a usage error (exit 2)" [ $? -eq 2 ]
check "... that says what it needs" grep -q -- "--changed needs --cache" "$T_DIR/e1"
nasctl put n/img --cache "$C" --changed "$T_DIR/r7" <"$T_DIR/W8" 2>"$T_DIR/e2"
check "--changed with the state on stdin: exit 2" [ $? -eq 2 ]
check "... that says it needs -i FILE" grep -q -- "needs -i FILE" "$T_DIR/e2"
printf '1 2\n3-1\n' >"$T_DIR/rbad"
nasctl put n/img -i "$T_DIR/W8" --cache "$C" --changed "$T_DIR/rbad" 2>"$T_DIR/e3"
check "a bad range: exit 2" [ $? -eq 2 ]
check "... naming its line and token" grep -q "line 2: '3-1'" "$T_DIR/e3"
nasctl put n/img -i "$T_DIR/W8" --cache "$C" --changed "$T_DIR/none" 2>"$T_DIR/e4"
check "a missing list file: exit 1" [ $? -eq 1 ]
nasctl put n/img -i "$T_DIR/W8" --cache "$C" --changed "$T_DIR/r7" --page-size 1000 2>"$T_DIR/e5"
check "--page-size not a power of two: exit 2" [ $? -eq 2 ]
nasctl put n/img -i "$T_DIR/W8" --page-size 8192 2>"$T_DIR/e6"
check "--page-size without --changed: exit 2" [ $? -eq 2 ]
n_before=$(nasctl --json ls n | jq '[.[] | select(.component == "img")] | length')
check "... and none of the mistakes stored anything" [ "$n_before" -eq 9 ]

nasctl --json put n/img -i "$T_DIR/W8" --cache "$T_DIR/empty" --changed "$T_DIR/r7" \
	>"$T_DIR/p7.json" 2>"$T_DIR/e7"
check "a missing cache file: the put is whole" [ "$(jq -r .changed "$T_DIR/p7.json")" = unused ]
check "... says so on stderr" grep -q -- "--changed not used" "$T_DIR/e7"
check "... the digest a whole read gives" [ "$(jq -r .digest "$T_DIR/p7.json")" = "$(whole "$T_DIR/W8")" ]

# A cache of another store (a second NAS, empty): stale, the put is made whole and right.
NAS2_PORT=$(free_port)
start_nas nas2 "$NAS2_PORT" || { echo "nas2 did not start"; exit 1; }
cp "$T_DIR/W8" "$T_DIR/W9"
edit "$T_DIR/W9" 20
echo 20 >"$T_DIR/r9"
"$CTL_BIN" --nas "$T_TCP://127.0.0.1:$NAS2_PORT" --json put n/img -i "$T_DIR/W9" --cache "$C" \
	--changed "$T_DIR/r9" >"$T_DIR/p8.json"
check "a stale cache with --changed: the put succeeds" [ $? -eq 0 ]
check "... JSON cache: stale" [ "$(jq -r .cache "$T_DIR/p8.json")" = stale ]
check "... JSON changed: unused (the put stored was whole)" [ "$(jq -r .changed "$T_DIR/p8.json")" = unused ]
check "... the digest a whole read gives" [ "$(jq -r .digest "$T_DIR/p8.json")" = "$(whole "$T_DIR/W9")" ]

# A hinted put that fails once under way (here: a NAS whose store is too
# small for the chunks) leaves no cache file: the next --changed, written as
# if the failed one had been stored, is a whole put and records the file's
# own digest, not a base missing the first change.
NAS3_PORT=$(free_port)
start_nas nas3 "$NAS3_PORT" --map-size 1M --map-max 1M || { echo "nas3 did not start"; exit 1; }
cp "$T_DIR/W9" "$T_DIR/W11"
nasctl put n/img -i "$T_DIR/W11" --cache "$C" >/dev/null
edit "$T_DIR/W11" 40
echo 40 >"$T_DIR/r11"
"$CTL_BIN" --nas "$T_TCP://127.0.0.1:$NAS3_PORT" put n/img -i "$T_DIR/W11" --cache "$C" \
	--changed "$T_DIR/r11" >/dev/null 2>"$T_DIR/e11"
check "a hinted put that fails under way (the NAS's store is full) exits 1" [ $? -eq 1 ]
check "... and leaves no cache file behind" [ ! -e "$C/n@img.bcache" ]
edit "$T_DIR/W11" 700
echo 700 >"$T_DIR/r12"
nasctl --json put n/img -i "$T_DIR/W11" --cache "$C" --changed "$T_DIR/r12" >"$T_DIR/p10.json" \
	2>/dev/null
check "... so the next --changed is a whole put" [ "$(jq -r .changed "$T_DIR/p10.json")" = unused ]
check "... that records the file's digest, both changes in" \
	[ "$(jq -r .digest "$T_DIR/p10.json")" = "$(whole "$T_DIR/W11")" ]

# A change left out of the list is stored wrong: the user's promise. verify tells.
cp "$T_DIR/W9" "$T_DIR/W10"
edit "$T_DIR/W10" 30
edit "$T_DIR/W10" 900
echo 30 >"$T_DIR/r10"
nasctl put n/img -i "$T_DIR/W9" --cache "$C" >/dev/null
nasctl --json put n/img -i "$T_DIR/W10" --cache "$C" --changed "$T_DIR/r10" >"$T_DIR/p9.json"
ref="n/img@$(jq .seq "$T_DIR/p9.json")"
check "a change left out: the record is not the file's" \
	[ "$(jq -r .digest "$T_DIR/p9.json")" != "$(whole "$T_DIR/W10")" ]
nasctl verify "$T_DIR/W10" "$ref" >/dev/null 2>&1
check "... ckptctl verify says so (exit 1)" [ $? -eq 1 ]
nasctl get "$ref" -o "$T_DIR/out"
check "... and it still reads back whole (what was promised)" [ $? -eq 0 ]

finish
