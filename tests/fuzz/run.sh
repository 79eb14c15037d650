#!/usr/bin/env bash
# Fuzzes the decoders (libFuzzer, ASan+UBSan, clang) in build-fuzz/:
#   bash tests/fuzz/run.sh            5 s per target (tests/run.sh runs this)
#   bash tests/fuzz/run.sh 600        10 minutes per target
# Corpora grow in build-fuzz/tests/fuzz/corpus-*; a crash leaves its input
# (crash-*) in build-fuzz/ (meson runs tests there) and fails the run.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
command -v clang >/dev/null || { echo "tests/fuzz/run.sh: clang is not installed" >&2; exit 1; }
dir=build-fuzz
if [ ! -f "$dir/build.ninja" ]; then
	CC=clang meson setup "$dir" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args=-fsanitize=fuzzer-no-link >/dev/null
fi
targets=(chunk chunklist zchunk key pbv nas spec spec_ini auth ranges auth_role manager agent)
ninja -C "$dir" build.ninja >/dev/null # regenerates after a meson.build change
meson compile -C "$dir" "${targets[@]/#/tests/fuzz/fuzz_}"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export CKPT_FUZZ_SECONDS=${1:-5}
meson test -C "$dir" --no-rebuild --suite fuzz --print-errorlogs --num-processes 2 \
	--timeout-multiplier $(( CKPT_FUZZ_SECONDS / 600 + 1 ))
