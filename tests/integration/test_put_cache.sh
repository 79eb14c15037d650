#!/usr/bin/env bash
# ckptctl put --cache DIR (the base cache): two separate puts of a memory
# image and its next checkpoint, the second hashing only what changed, read
# back byte for byte with the digest a whole read gives; an insertion; and
# cache files that must be ignored (corrupt, of another component) or that
# name chunks the NAS does not hold (another store): the put is then whole
# and still right.
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
# whole DIGEST FILE: the digest a whole read of FILE gives (ckptctl digest).
whole() { nasctl digest "$1" | cut -d' ' -f1; }

nasctl --json put n/img -i "$W2" --cache "$C" >"$T_DIR/p1.json"
check "first put with --cache succeeds" [ $? -eq 0 ]
check "... finds no cache file" [ "$(jq -r .cache "$T_DIR/p1.json")" = missing ]
check "... and leaves one" [ -s "$C/n@img.bcache" ]
check "... hashes its data and reuses nothing" [ "$(jq .reused_bytes "$T_DIR/p1.json")" -eq 0 ]
check "... was made once (JSON retries: 0)" [ "$(jq .retries "$T_DIR/p1.json")" -eq 0 ]

nasctl --json put n/img -i "$W3" --cache "$C" >"$T_DIR/p2.json"
check "second put with --cache succeeds" [ $? -eq 0 ]
check "... uses the cache file" [ "$(jq -r .cache "$T_DIR/p2.json")" = used ]
echo "# second put: hashed $(jq .hashed_bytes "$T_DIR/p2.json"), reused $(jq .reused_bytes "$T_DIR/p2.json") of $size"
check "... hashes less than 10% of the image" [ "$(jq .hashed_bytes "$T_DIR/p2.json")" -lt $((size / 10)) ]
check "... takes more than 90% of it from the cache" \
	[ "$(jq .reused_bytes "$T_DIR/p2.json")" -gt $((size * 9 / 10)) ]
check "... records the digest a whole read gives" [ "$(jq -r .digest "$T_DIR/p2.json")" = "$(whole "$W3")" ]
nasctl --json put n/whole -i "$W3" >"$T_DIR/pw.json"
check "... the same digest as a put without a cache" \
	[ "$(jq -r .digest "$T_DIR/pw.json")" = "$(jq -r .digest "$T_DIR/p2.json")" ]
nasctl get n/img@2 -o "$T_DIR/out"
check "... reads back byte for byte" cmp -s "$W3" "$T_DIR/out"
nasctl get n/img@1 -o "$T_DIR/out"
check "the first reads back byte for byte" cmp -s "$W2" "$T_DIR/out"

# 1000 bytes inserted: the bytes after them moved, and are found again.
{ head -c 3000000 "$W3"; head -c 1000 /dev/urandom; tail -c +3000001 "$W3"; } >"$T_DIR/W4"
CKPT_CACHE_DIR="$C" nasctl --json put n/img -i "$T_DIR/W4" >"$T_DIR/p3.json"
check "an insertion: put with CKPT_CACHE_DIR succeeds and uses the cache" \
	[ "$(jq -r .cache "$T_DIR/p3.json")" = used ]
# Data chunks after it are found where they moved; holes that moved are cut again (a scan for zeros).
check "... hashes less than 10% of the image" [ "$(jq .hashed_bytes "$T_DIR/p3.json")" -lt $((size / 10)) ]
check "... takes more than half of it from the cache" \
	[ "$(jq .reused_bytes "$T_DIR/p3.json")" -gt $((size / 2)) ]
check "... the digest a whole read gives" [ "$(jq -r .digest "$T_DIR/p3.json")" = "$(whole "$T_DIR/W4")" ]
nasctl get n/img -o "$T_DIR/out"
check "... reads back byte for byte" cmp -s "$T_DIR/W4" "$T_DIR/out"

# A corrupt cache file (one byte changed in the middle): ignored, a whole put.
f="$C/n@img.bcache"
off=$(( $(stat -c %s "$f") / 2 ))
printf '\x5a' | dd of="$f" bs=1 seek="$off" conv=notrunc 2>/dev/null
nasctl --json put n/img -i "$W3" --cache "$C" >"$T_DIR/p4.json" 2>"$T_DIR/p4.err"
check "a corrupt cache file: the put succeeds" [ $? -eq 0 ]
check "... ignores the file and says why" grep -q "ignoring the base cache file.*corrupt" "$T_DIR/p4.err"
check "... JSON cache: ignored" [ "$(jq -r .cache "$T_DIR/p4.json")" = ignored ]
check "... reuses nothing from it" [ "$(jq .reused_bytes "$T_DIR/p4.json")" -eq 0 ]
check "... the digest a whole read gives" [ "$(jq -r .digest "$T_DIR/p4.json")" = "$(whole "$W3")" ]
nasctl get n/img -o "$T_DIR/out"
check "... reads back byte for byte" cmp -s "$W3" "$T_DIR/out"
nasctl --json put n/img -i "$W3" --cache "$C" >"$T_DIR/p5.json"
check "... and the rewritten file is used by the next put" [ "$(jq -r .cache "$T_DIR/p5.json")" = used ]

# Another component's file under this one's name: ignored.
cp "$C/n@img.bcache" "$C/n@other.bcache"
nasctl --json put n/other -i "$W3" --cache "$C" >"$T_DIR/p6.json" 2>"$T_DIR/p6.err"
check "a cache file of another component is ignored" [ "$(jq -r .cache "$T_DIR/p6.json")" = ignored ]
check "... and says so" grep -q "of another component" "$T_DIR/p6.err"

# Another store (a second NAS, empty): the cache names chunks it lacks; the
# Store is refused for them and the put is made whole, once.
NAS2_PORT=$(free_port)
start_nas nas2 "$NAS2_PORT" || { echo "nas2 did not start"; exit 1; }
"$CTL_BIN" --nas "$T_TCP://127.0.0.1:$NAS2_PORT" --json put n/img -i "$W3" --cache "$C" \
	>"$T_DIR/p7.json"
check "a cache of another store: the put succeeds" [ $? -eq 0 ]
check "... the digest a whole read gives" [ "$(jq -r .digest "$T_DIR/p7.json")" = "$(whole "$W3")" ]
check "... JSON cache: stale (it cost a whole put)" [ "$(jq -r .cache "$T_DIR/p7.json")" = stale ]
check "... JSON retries: 1 (made again whole)" [ "$(jq .retries "$T_DIR/p7.json")" -eq 1 ]
"$CTL_BIN" --nas "$T_TCP://127.0.0.1:$NAS2_PORT" get n/img -o "$T_DIR/out"
check "... reads back byte for byte" cmp -s "$W3" "$T_DIR/out"

finish
