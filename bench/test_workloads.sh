#!/usr/bin/env bash
# bench/workloads.py makes byte-identical W1-W4 to the shared generator the
# benchmarks used before it (../shared/bench/workloads.py, or
# CKPT_SHARED_WORKLOADS): both run at --scale 32 (2 MiB images, 31 small
# checkpoints: a few seconds) and every output file's sha256 is compared.
# Skipped (exit 77) when the shared generator is not there.
set -u
top=${CKPT_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
shared=${CKPT_SHARED_WORKLOADS:-$top/../shared/bench/workloads.py}
if [ ! -f "$shared" ]; then
	echo "SKIP: $shared not found (set CKPT_SHARED_WORKLOADS to compare with it)"
	exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/ckpt-wl.XXXXXX")
trap 'rm -rf "$work"' EXIT
python3 "$top/bench/workloads.py" "$work/ours" --scale 32 || { echo "not ok - bench/workloads.py failed"; exit 1; }
python3 "$shared" "$work/shared" --scale 32 || { echo "not ok - $shared failed"; exit 1; }
digests() { (cd "$1" && find . -type f | LC_ALL=C sort | xargs sha256sum); }
digests "$work/ours" >"$work/ours.sum"
digests "$work/shared" >"$work/shared.sum"
n=$(wc -l <"$work/shared.sum")
if [ "$n" -lt 36 ] || ! diff -u "$work/shared.sum" "$work/ours.sum"; then
	echo "not ok - bench/workloads.py and $shared differ ($n files)"
	exit 1
fi
echo "ok - bench/workloads.py makes the same $n files as $shared (W1 W2 W3 W3.dirty W4.cat W4/*)"
