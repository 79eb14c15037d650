#!/usr/bin/env bash
# The test suite on a busy machine, as CI machines are shared: runs
# tests/run.sh beside CPU hogs this script starts (busy loops at nice 0) and
# always kills them when it exits, however it exits.
#   bash tests/load.sh [--hogs N] [--runs N] [--sanitize|--clang]
#     --hogs N   busy loops beside the suite (default 3; the machine has
#                `nproc` cores, so 3 on 2 cores keeps every core contended)
#     --runs N   runs of the suite in a row (default 1)
#     --sanitize, --clang: passed to tests/run.sh (build-asan/, build-clang/)
# Each run's meson log is kept as BUILD/meson-logs/load-RUN.txt; the last
# lines count the runs, the failed runs and every failing test by name.
# Exit status: 0 when every run passed.
set -euo pipefail
# (All in main(), read whole before it runs: editing this file during a
# long run does not change the run.)
main() {
	top=$(cd "$(dirname "$0")/.." && pwd)
	hogs=3 runs=1 mode=() dir=build
	while [ $# -gt 0 ]; do
		case "$1" in
		--hogs) hogs=${2:?--hogs needs a number}; shift 2 ;;
		--runs) runs=${2:?--runs needs a number}; shift 2 ;;
		--sanitize) mode=(--sanitize); dir=build-asan; shift ;;
		--clang) mode=(--clang); dir=build-clang; shift ;;
		*) echo "usage: tests/load.sh [--hogs N] [--runs N] [--sanitize|--clang]" >&2; exit 2 ;;
		esac
	done
	case "$hogs$runs" in *[!0-9]*) echo "tests/load.sh: --hogs and --runs take numbers" >&2; exit 2 ;; esac

	hog_pids=()
	stop_hogs() {
		local pid
		for pid in "${hog_pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
		for pid in "${hog_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
		hog_pids=()
	}
	trap stop_hogs EXIT
	trap 'exit 130' INT TERM
	for _ in $(seq "$hogs"); do
		nice -n 0 bash -c 'while :; do :; done' &
		hog_pids+=("$!")
	done
	echo "tests/load.sh: $hogs CPU hog(s) running (pids ${hog_pids[*]:-none}), $runs run(s)"

	failed_runs=0
	failures=()
	for run in $(seq "$runs"); do
		echo "tests/load.sh: run $run of $runs"
		if bash "$top/tests/run.sh" "${mode[@]}"; then
			rc=0
		else
			rc=$?
			failed_runs=$((failed_runs + 1))
		fi
		log="$top/$dir/meson-logs/testlog.txt"
		if [ -f "$log" ]; then
			cp "$log" "$top/$dir/meson-logs/load-$run.txt"
			# meson's summary: "NUM/TOTAL PROJECT:SUITE / NAME  FAIL|TIMEOUT  TIME ...".
			while read -r name; do
				failures+=("run $run: $name")
			done < <(sed -n 's/^ *[0-9]*\/[0-9]* .* \/ \([^ ]*\) *\(FAIL\|TIMEOUT\|ERROR\) .*/\1 \2/p' \
				"$log" | sort -u)
		fi
		[ "$rc" -eq 0 ] || echo "tests/load.sh: run $run failed (exit $rc)"
	done
	stop_hogs
	echo "tests/load.sh: $runs run(s), $failed_runs failed, beside $hogs CPU hog(s)"
	for f in "${failures[@]}"; do echo "tests/load.sh: $f"; done
	echo "tests/load.sh: meson logs in $dir/meson-logs/load-*.txt"
	[ "$failed_runs" -eq 0 ]
}
main "$@"
exit
