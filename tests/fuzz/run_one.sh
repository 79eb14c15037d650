#!/usr/bin/env bash
# Runs one libFuzzer target for CKPT_FUZZ_SECONDS (default 5) from a corpus
# kept in the build folder, plus the seed folder given as second argument
# when it exists (read only: new inputs go to the first folder); libFuzzer
# exits non-zero on any crash, sanitizer report or failed check.
set -euo pipefail
exe=$1
corpus="$(dirname "$exe")/corpus-$(basename "$exe")"
seeds=()
[ -d "${2:-}" ] && seeds=("$2")
mkdir -p "$corpus"
exec "$exe" -max_total_time="${CKPT_FUZZ_SECONDS:-5}" -max_len=262144 -rss_limit_mb=2048 \
	-print_final_stats=1 -error_exitcode=1 "$corpus" "${seeds[@]}"
