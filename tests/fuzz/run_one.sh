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
# The targets that run a cluster in process (fz_cluster.c) skip libFuzzer's
# leak check after each input: it scans while the services' threads run and
# reports what only they still hold (a supervisor's table, a node's client
# reference) as leaked (two such reports in the first long runs, neither of
# which replays alone; docs/fuzzing.md). ASan's other checks stay on.
opts=()
case "$(basename "$exe")" in
fuzz_manager | fuzz_agent) opts=(-detect_leaks=0) ;;
esac
mkdir -p "$corpus"
exec "$exe" "${opts[@]}" -max_total_time="${CKPT_FUZZ_SECONDS:-5}" -max_len=262144 -rss_limit_mb=2048 \
	-print_final_stats=1 -error_exitcode=1 "$corpus" "${seeds[@]}"
