#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs `meson test`
# (unit, integration, k8s and systemd suites; not the container and mem suites) and
# prints meson's summary.
#   bash tests/run.sh               gcc build in build/
#   bash tests/run.sh --sanitize    ASan+UBSan build in build-asan/
#   bash tests/run.sh --clang       clang build in build-clang/
# The default run ends with 5 s of fuzzing per decoder (tests/fuzz/run.sh,
# clang, in build-fuzz/).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/deploy/local/deps.sh"
dir=build opts=() mult=2
case "${1:-}" in
--sanitize) dir=build-asan opts=(-Db_sanitize=address,undefined -Db_lundef=false) mult=4 ;;
--clang) dir=build-clang; export CC=clang ;;
"") ;;
*) echo "usage: tests/run.sh [--sanitize|--clang]" >&2; exit 2 ;;
esac
cd "$top"
if [ ! -f "$dir/build.ninja" ]; then
	meson setup "$dir" "${opts[@]}"
fi
meson compile -C "$dir"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Timeouts (meson's per test, Check's per test case) catch hangs, not slowness:
# a shared, busy machine runs the suite a few times slower, and ASan+UBSan
# about three times slower again. CKPT_TIMEOUT_MULTIPLIER overrides.
mult=${CKPT_TIMEOUT_MULTIPLIER:-$mult}
export CK_TIMEOUT_MULTIPLIER=$mult
rc=0 frc=0
# The container suite (podman builds the image, minutes) runs only when asked:
# meson test -C build --suite container; the 1 GiB memory bounds likewise:
# meson test -C build --suite mem.
meson test -C "$dir" --print-errorlogs --num-processes 2 --timeout-multiplier "$mult" \
	--no-suite container --no-suite mem || rc=$?
if [ -z "${1:-}" ]; then
	bash "$top/tests/fuzz/run.sh" 5 || frc=$?
fi
# Where to look: the last lines of every run.
echo
echo "== tests ($dir): $([ $rc -eq 0 ] && echo passed || echo "FAILED (meson test exit $rc)")"
echo "   summary and every test's output: $top/$dir/meson-logs/testlog.txt"
echo "   an integration test that fails prints its services' logs (and keeps them in /tmp/ckpt-it.*)"
if [ -z "${1:-}" ]; then
	echo "== fuzzing (build-fuzz): $([ $frc -eq 0 ] && echo passed || echo "FAILED (exit $frc)")"
	echo "   summary and fuzzers' output: $top/build-fuzz/meson-logs/testlog.txt"
	echo "   corpora: $top/build-fuzz/tests/fuzz/corpus-*; a crashing input is saved as $top/build-fuzz/crash-*"
fi
[ $rc -eq 0 ] && [ $frc -eq 0 ]
