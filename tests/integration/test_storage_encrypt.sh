#!/usr/bin/env bash
# Encryption at rest (ckpt-nas --encrypt-key, --decrypt-keys): the LMDB file
# holds no plaintext of a checkpoint (a marker grepped for; present without
# encryption, the control) nor its digest; restores are byte-exact; equal
# chunks still deduplicate; a wrong, missing or exposed key fails at start;
# rotation keeps old checkpoints readable with the old key, --check counts
# chunks per key, a missing old key makes those checkpoints fail clearly, and
# once they are gone the old key is forgotten;
# a tampered chunk is DATA_LOSS and `get` falls back; a store without keys
# given one seals what comes next.
. "$(dirname "$0")/lib.sh"
CORRUPT_BIN="$CKPT_BUILD/tests/integration/ckpt-corrupt"

PORT=$(free_port)
URL="tcp://127.0.0.1:$PORT"
nctl() { "$CTL_BIN" --nas "$URL" "$@"; }
MARK=CKPT-SECRET-MARKER-5f1e
# Random bytes with the marker every 4 KiB: incompressible, so stored raw and
# the marker lies in the file as it is unless sealed.
mkfile() { # FILE BLOCKS MARKER
	for i in $(seq 1 "$2"); do head -c 4000 /dev/urandom; printf '%s-%06d\n' "$3" "$i"; done >"$1"
}
has_bytes() { # HEX FILE: the bytes are somewhere in the file
	python3 -c 'import sys; sys.exit(0 if bytes.fromhex(sys.argv[1]) in open(sys.argv[2], "rb").read() else 1)' "$1" "$2"
}
lacks_bytes() { ! has_bytes "$@"; }
digest_of() { nctl --json ls "$1" | jq -r '.[0].digest' | sed 's/.*://'; }
mkfile "$T_DIR/f1" 256 "$MARK"
mkfile "$T_DIR/f2" 128 "$MARK-TWO"
mkfile "$T_DIR/f3" 128 "$MARK-THREE"
mkfile "$T_DIR/f4" 128 "$MARK-FOUR"
mkfile "$T_DIR/f5" 64 "$MARK-FIVE"
(umask 077; openssl rand -hex 32 >"$T_DIR/ka"; openssl rand 32 >"$T_DIR/kb"; openssl rand -hex 32 >"$T_DIR/kc")
cp "$T_DIR/ka" "$T_DIR/kopen"; chmod 644 "$T_DIR/kopen"

# The control: without encryption the marker and the digest are in the file.
start_nas plain "$PORT" || { echo "nas did not start"; exit 1; }
nctl put n/c -i "$T_DIR/f1" >/dev/null
check "control: the marker is in data.mdb of a store without encryption" \
	grep -qa "$MARK" "$T_DIR/plain-data/data.mdb"
check "control: so is the checkpoint's digest" has_bytes "$(digest_of n/c)" "$T_DIR/plain-data/data.mdb"
stop plain

# A store without keys given one: what it held stays readable, what comes is sealed.
start_nas plain "$PORT" --encrypt-key "$T_DIR/ka" || { echo "nas did not start with a key"; exit 1; }
nctl put n/five -i "$T_DIR/f5" >/dev/null
nctl get n/c -o "$T_DIR/plain.got"
check "a plain store given a key: its old checkpoint reads back byte for byte" cmp -s "$T_DIR/f1" "$T_DIR/plain.got"
nctl get n/five -o "$T_DIR/five.got"
check "and the new one too" cmp -s "$T_DIR/f5" "$T_DIR/five.got"
check "the new one's marker is not in data.mdb" sh -c "! grep -qa $MARK-FIVE $T_DIR/plain-data/data.mdb"
stop plain
check "from then on it refuses to start without a key" sh -c \
	"! $NAS_BIN --listen $URL --data $T_DIR/plain-data >$T_DIR/plain-nokey.log 2>&1"
check "saying it is encrypted" grep -q "the store is encrypted" "$T_DIR/plain-nokey.log"

# Encrypted from the start.
start_nas enc "$PORT" --encrypt-key "$T_DIR/ka" || { echo "nas did not start"; exit 1; }
KA=$(sed -n 's/.*sealed under key id \([0-9a-f]*\).*/\1/p' "$T_DIR/enc.log" | head -1)
check "the NAS logs the key id it seals under" [ -n "$KA" ]
nctl put n/c -i "$T_DIR/f1" >/dev/null
chunks1=$(nctl --json stat | jq .chunks)
nctl put n/d -i "$T_DIR/f1" >/dev/null
chunks2=$(nctl --json stat | jq .chunks)
check "dedup: the same file under a second component adds no chunk ($chunks1 -> $chunks2)" \
	[ "$chunks1" -gt 0 ] && [ "$chunks1" = "$chunks2" ]
nctl put n/c -i "$T_DIR/f2" >/dev/null
nctl get n/c@1 -o "$T_DIR/c1.got"
check "restore of n/c@1 is byte-exact" cmp -s "$T_DIR/f1" "$T_DIR/c1.got"
nctl get n/d -o "$T_DIR/d.got"
check "restore of n/d is byte-exact" cmp -s "$T_DIR/f1" "$T_DIR/d.got"
check "the marker is not in data.mdb" sh -c "! grep -qa $MARK $T_DIR/enc-data/data.mdb"
check "nor the checkpoint's digest" lacks_bytes "$(digest_of n/d)" "$T_DIR/enc-data/data.mdb"
stop enc

# Wrong, missing, exposed keys: a clear error at start, nothing served.
check "a wrong key: exit 1" sh -c "! $NAS_BIN --listen $URL --data $T_DIR/enc-data --encrypt-key $T_DIR/kb >$T_DIR/wrong.log 2>&1"
check "a wrong key: the message says so and names the store's key id" \
	sh -c "grep -q 'wrong key' $T_DIR/wrong.log && grep -q $KA $T_DIR/wrong.log"
check "no key: exit 1" sh -c "! $NAS_BIN --listen $URL --data $T_DIR/enc-data >$T_DIR/nokey.log 2>&1"
check "no key: the message names --encrypt-key" grep -q -- "--encrypt-key" "$T_DIR/nokey.log"
check "a key file others may read: exit 1" sh -c "! $NAS_BIN --listen $URL --data $T_DIR/enc-data --encrypt-key $T_DIR/kopen >$T_DIR/open.log 2>&1"
check "a key file others may read: the message says chmod 600" grep -q "chmod 600" "$T_DIR/open.log"
check "CKPT_ENCRYPT_KEY works as the flag does (wrong key refused)" sh -c \
	"! CKPT_ENCRYPT_KEY=$T_DIR/kc $NAS_BIN --listen $URL --data $T_DIR/enc-data >$T_DIR/env.log 2>&1 && grep -q 'wrong key' $T_DIR/env.log"

# Rotation: new key B, old key A to read.
start_nas enc "$PORT" --encrypt-key "$T_DIR/kb" --decrypt-keys "$T_DIR/ka" ||
	{ echo "nas did not start with the new key"; exit 1; }
KB=$(sed -n 's/.*new values are sealed under key id \([0-9a-f]*\).*/\1/p' "$T_DIR/enc.log" | tail -1)
check "rotation: a new key id ($KB) besides $KA" [ -n "$KB" ] && [ "$KB" != "$KA" ]
nctl put n/e -i "$T_DIR/f3" >/dev/null
nctl put n/e -i "$T_DIR/f4" >/dev/null
nctl get n/c@1 -o "$T_DIR/c1.rot"
check "rotation: a checkpoint sealed under the old key reads back" cmp -s "$T_DIR/f1" "$T_DIR/c1.rot"
nctl get n/e@1 -o "$T_DIR/e1.got"
check "rotation: one sealed under the new key reads back" cmp -s "$T_DIR/f3" "$T_DIR/e1.got"
stop enc
"$NAS_BIN" --check --data "$T_DIR/enc-data" --encrypt-key "$T_DIR/kb" --decrypt-keys "$T_DIR/ka" \
	>"$T_DIR/check2.txt" 2>&1
check "--check with both keys: clean" grep -q ": clean" "$T_DIR/check2.txt"
check "--check counts chunks under key A" grep -Eq "^key $KA: [1-9][0-9]* chunks, 3 records" "$T_DIR/check2.txt"
check "--check counts chunks under key B" grep -Eq "^key $KB: [1-9][0-9]* chunks, 2 records" "$T_DIR/check2.txt"

# The old key missing: its checkpoints fail clearly, the others work.
start_nas enc "$PORT" --encrypt-key "$T_DIR/kb" || { echo "nas did not start with B alone"; exit 1; }
check "B alone: the NAS warns that key A was not given" log_has enc "key id $KA was not given"
check "B alone: n/c@1 (key A) fails" sh -c "! $CTL_BIN --nas $URL get n/c@1 -o $T_DIR/x 2>$T_DIR/nokeyget.txt"
check "B alone: naming key A and --decrypt-keys" \
	sh -c "grep -q 'sealed under key id $KA' $T_DIR/nokeyget.txt && grep -q -- '--decrypt-keys' $T_DIR/nokeyget.txt"
check "B alone: nothing was written" [ ! -e "$T_DIR/x" ]
nctl get n/e@1 -o "$T_DIR/e1.b"
check "B alone: n/e@1 (key B) reads back" cmp -s "$T_DIR/f3" "$T_DIR/e1.b"
check "B alone: ls still lists the checkpoints under key A" [ "$(nctl --json ls | jq length)" -eq 5 ]
stop enc
check "--check without key A: exit 1" sh -c \
	"! $NAS_BIN --check --data $T_DIR/enc-data --encrypt-key $T_DIR/kb >$T_DIR/check3.txt 2>&1"
check "--check without key A: INCOMPLETE, key A not given" \
	sh -c "grep -q INCOMPLETE $T_DIR/check3.txt && grep -q '^key $KA: .*KEY NOT GIVEN' $T_DIR/check3.txt"

# Tampering: a flipped byte of ciphertext is DATA_LOSS and get falls back.
check "the corruption hook flips a byte of n/e@2's sealed chunk" \
	sh -c "$CORRUPT_BIN $T_DIR/enc-data n e 2 $T_DIR/kb >/dev/null"
start_nas enc "$PORT" --encrypt-key "$T_DIR/kb" --decrypt-keys "$T_DIR/ka" || { echo "nas did not start"; exit 1; }
check "get n/e@2: exit 1" sh -c "! $CTL_BIN --nas $URL get n/e@2 -o $T_DIR/y 2>$T_DIR/tamper.txt"
check "get n/e@2: DATA_LOSS" grep -q DATA_LOSS "$T_DIR/tamper.txt"
check "get n/e@2: the NAS says the chunk fails its tag" log_has enc "fails its authentication tag"
nctl get n/e -o "$T_DIR/e.fallback" 2>"$T_DIR/warn.txt"
check "get n/e falls back to n/e@1 byte for byte" cmp -s "$T_DIR/f3" "$T_DIR/e.fallback"
check "and says so" grep -q "n/e@1 instead" "$T_DIR/warn.txt"
check "scrub reports the tampered chunk" sh -c "! $CTL_BIN --nas $URL scrub >$T_DIR/scrub.txt 2>&1"

# The end of a rotation: once the checkpoints under key A are gone, B alone
# starts without a warning and the store forgets A.
nctl rm n/c >/dev/null
nctl rm n/d >/dev/null
nctl rm n/e@2 >/dev/null
stop enc
start_nas enc "$PORT" --encrypt-key "$T_DIR/kb" || { echo "nas did not start with B alone"; exit 1; }
check "rotation done: key A is forgotten" log_has enc "key id $KA seals nothing any more: forgotten"
check "rotation done: no warning about key A" sh -c "! grep -q 'was not given' $T_DIR/enc.log"
nctl get n/e@1 -o "$T_DIR/e1.end"
check "rotation done: n/e@1 reads back" cmp -s "$T_DIR/f3" "$T_DIR/e1.end"
stop enc
"$NAS_BIN" --check --data "$T_DIR/enc-data" --encrypt-key "$T_DIR/kb" >"$T_DIR/check4.txt" 2>&1
check "rotation done: --check is clean with key B alone" grep -q ": clean" "$T_DIR/check4.txt"
check "rotation done: --check lists key B only" sh -c \
	"[ \$(grep -c '^key [0-9a-f]' $T_DIR/check4.txt) -eq 1 ] && grep -q '^key $KB: ' $T_DIR/check4.txt"
finish
