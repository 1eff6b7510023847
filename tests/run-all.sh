#!/bin/sh
# The whole test suite, from a clean clone on Debian 12:
#   1. install the build and test dependencies (tests/install-deps.sh);
#   2. build with -Wall -Wextra -Werror and run `make check` (unit tests,
#      integration tests with the real binary, stages and media);
#   3. build again with AddressSanitizer + UndefinedBehaviorSanitizer and
#      run `make check` there too.
# Both are test builds: --enable-crash-points compiles in the kill -9 hooks
# of the crash matrix (t0450), which a release build never has.
#   4. fuzz each libFuzzer harness (tests/fuzz/run.sh: clang, ASan, UBSan)
#      for $FUZZ_SECONDS (default 60) seconds, $(nproc) at a time; a crash
#      fails the run (the inputs are in _build-fuzz/crashes/).
# Build trees: _build/, _build-asan/ and _build-fuzz/ (re-used when present).
# LADDERD_SKIP_ASAN=1 skips step 3, LADDERD_SKIP_FUZZ=1 step 4 (quick
# local runs).
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
sh tests/install-deps.sh
[ -x configure ] && [ configure -nt configure.ac ] && [ configure -nt Makefile.am ] ||
	autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
jobs=$(nproc 2>/dev/null || echo 2)

build_and_check() { # dir configure-args...
	dir=$1
	shift
	mkdir -p "$dir"
	(cd "$dir" &&
		{ [ -f Makefile ] || "$top/configure" -q "$@"; } &&
		make -j"$jobs" >/dev/null &&
		make -j"$jobs" check) || {
		for f in $(find "$dir/tests" -name '*.log' 2>/dev/null); do
			grep -q '^not ok\|^ERROR\|FAIL' "$f" 2>/dev/null &&
				{ echo "==== $f"; tail -n 60 "$f"; }
		done
		return 1
	}
}

echo "== build with -Werror and run the suite"
build_and_check _build --enable-werror --enable-crash-points
if [ "${LADDERD_SKIP_ASAN:-0}" != 1 ]; then
	echo "== AddressSanitizer + UndefinedBehaviorSanitizer build and suite"
	# Keep stage code mapped at exit so leak reports can be symbolised.
	# intercept_tls_get_addr=0: GCC 12's runtime takes a dynamic TLS block
	# whose address happens to be 16 past a page for glibc 2.19's layout
	# and reads a bogus range from before it; LeakSanitizer's tracer then
	# dies at exit ("Tracer caught signal 11", exit 1) in ~1 run in 25
	# here (google/sanitizers#1322; fixed after GCC 13 / LLVM 16).
	LADDERD_NO_DLCLOSE=1 \
	ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:handle_segv=0:handle_abort=0:intercept_tls_get_addr=0 \
	LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp" \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	LADDERD_TEST_TIMEOUT_MULT=3 LADDERD_PLAYBACK=0 LADDERD_VALGRIND=0 \
		build_and_check _build-asan --enable-werror --enable-sanitizers \
		--enable-crash-points
fi
if [ "${LADDERD_SKIP_FUZZ:-0}" != 1 ]; then
	echo "== fuzz each harness ${FUZZ_SECONDS:-60} s"
	sh tests/fuzz/run.sh -t "${FUZZ_SECONDS:-60}" -j "$jobs" || {
		rc=$?
		[ "$rc" = 77 ] || exit "$rc"
		echo "fuzzing skipped: clang not installed"
	}
fi
# One plain summary line over both passes (automake's own summaries above).
logs=$(ls _build/test-suite.log _build-asan/test-suite.log 2>/dev/null || true)
passed=$(awk '/^# (PASS|XFAIL):/ { s += $3 } END { print s + 0 }' $logs)
failed=$(awk '/^# (FAIL|XPASS|ERROR):/ { s += $3 } END { print s + 0 }' $logs)
skipped=$(awk '/^# SKIP:/ { s += $3 } END { print s + 0 }' $logs)
echo "all test suites passed"
echo "$passed passed, $failed failed, $skipped skipped"
