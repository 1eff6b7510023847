#!/bin/sh
# tests/fuzz/run.sh - build the libFuzzer harnesses (tests/fuzz/fuzz_*.c)
# with clang -fsanitize=fuzzer,address,undefined and fuzz each one.
#
#   tests/fuzz/run.sh [-t SECONDS] [-j JOBS] [-b] [NAME...]
#
#   -t  seconds per harness (default $FUZZ_SECONDS or 60)
#   -j  harnesses fuzzed at once (default 1); each is one process
#   -b  build only
#   NAME  harnesses to run (default all: manifest conf verify_playlist
#         chunk_hls_playlist chunk_dash hls_info_codecs)
#
# Work folder: $FUZZ_OUT (default _build-fuzz/): binaries, the corpus each
# run grew (corpus/NAME, seeded from tests/fuzz/corpus/NAME, which is only
# read), crash inputs (crashes/NAME-*) and logs (NAME.log, with libFuzzer's
# final stats: executions, coverage). config.h comes from $LADDERD_BUILD
# (default _build/) when configured, else a configure run in the work folder.
# Exit 1 when a harness crashed, leaked, hit UB or timed out; the input
# that did it is in crashes/: fix the bug, add the input to the corpus.
# Leaks of libraries we cannot fix are listed in tests/fuzz/lsan.supp.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
secs=${FUZZ_SECONDS:-60}
jobs=1
build_only=0
while getopts t:j:b opt; do
	case $opt in
	t) secs=$OPTARG ;;
	j) jobs=$OPTARG ;;
	b) build_only=1 ;;
	*) sed -n '2,20p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
all="manifest conf verify_playlist chunk_hls_playlist chunk_dash hls_info_codecs"
names=${*:-$all}
out=${FUZZ_OUT:-$top/_build-fuzz}
build=${LADDERD_BUILD:-$top/_build}
CC=${FUZZ_CC:-clang}
command -v "$CC" >/dev/null 2>&1 || {
	echo "run.sh: $CC not found (Debian: clang libfuzzer-14-dev)" >&2
	exit 77
}
mkdir -p "$out/bin" "$out/crashes"
if [ ! -f "$build/config.h" ]; then
	build="$out/cfg"
	if [ ! -f "$build/config.h" ]; then
		mkdir -p "$build"
		(cd "$build" && "$top/configure" -q CC="$CC" >/dev/null)
	fi
fi

# The daemon modules the harnesses link: the list Makefile.am keeps.
daemon_srcs=$(sed -n '/^FUZZ_DAEMON_SOURCES =/,/[^\\]$/p' "$top/Makefile.am" |
	sed 's/^FUZZ_DAEMON_SOURCES =//; s/\\$//' | tr -s ' \t\n' ' ')
CFLAGS="-std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined
	-fno-sanitize-recover=all -fno-omit-frame-pointer -I$build
	-I$top/daemon -I$top/stages -I$top/tests/fuzz
	-DSYSCONFDIR=\"/nonexistent\" -DSTAGEDIR=\"/nonexistent\"
	-DPKGLIBEXECDIR=\"/nonexistent\""
daemon_libs=$(pkg-config --cflags --libs libconfig libcjson)
stage_libs=$(pkg-config --cflags --libs libavformat libavcodec libavutil libcjson)

build_one() { # NAME
	case $1 in
	manifest | conf)
		# shellcheck disable=SC2086
		(cd "$top" && $CC $CFLAGS -o "$out/bin/fuzz_$1" \
			"tests/fuzz/fuzz_$1.c" $daemon_srcs $daemon_libs -lm)
		;;
	*)
		# shellcheck disable=SC2086
		$CC $CFLAGS -o "$out/bin/fuzz_$1" "$top/tests/fuzz/fuzz_$1.c" \
			$stage_libs -lm
		;;
	esac
}

for n in $names; do
	[ -f "$top/tests/fuzz/fuzz_$n.c" ] || { echo "run.sh: no harness '$n'" >&2; exit 2; }
	echo "building fuzz_$n"
	build_one "$n"
done
[ "$build_only" = 1 ] && exit 0

fuzz_one() { # NAME
	n=$1
	mkdir -p "$out/corpus/$n"
	# libconfig leaks on most refused files (lsan.supp): libFuzzer then
	# runs a whole leak check after nearly every input, 100 times slower.
	# The config parser is fuzzed without it and its grown corpus is
	# leak-checked once at the end instead.
	leaks=1
	[ "$n" = conf ] && leaks=0
	# The grown corpus first (new inputs go there), the seeds second.
	rc=0
	LSAN_OPTIONS="suppressions=$top/tests/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}" \
	UBSAN_OPTIONS="print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}" \
	"$out/bin/fuzz_$n" -max_total_time="$secs" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 -detect_leaks=$leaks \
		-artifact_prefix="$out/crashes/$n-" \
		"$out/corpus/$n" "$top/tests/fuzz/corpus/$n" >"$out/$n.log" 2>&1 ||
		rc=$?
	if [ "$rc" = 0 ] && [ "$leaks" = 0 ]; then
		# Every input of the corpus once, one leak check at exit.
		find "$out/corpus/$n" "$top/tests/fuzz/corpus/$n" -type f |
			LSAN_OPTIONS="suppressions=$top/tests/fuzz/lsan.supp" \
			xargs -n 2000 "$out/bin/fuzz_$n" -detect_leaks=1 \
			>>"$out/$n.log" 2>&1 || rc=$?
	fi
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$n.log" | tail -n 1)
	cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$out/$n.log" | tail -n 1)
	corpus=$(ls "$out/corpus/$n" | wc -l | tr -d ' ')
	if [ "$rc" = 0 ]; then
		echo "ok   $n: ${execs:-?} execs in ${secs}s, $cov, corpus $corpus"
	else
		echo "FAIL $n (exit $rc): $(grep -m1 -E 'ERROR|runtime error|SUMMARY' "$out/$n.log")"
		ls "$out/crashes/$n-"* 2>/dev/null | sed 's/^/     input: /'
	fi
	return "$rc"
}

failed=0
if [ "$jobs" -le 1 ]; then
	for n in $names; do
		fuzz_one "$n" || failed=1
	done
else
	# At most $jobs harnesses at once; each reports when it ends.
	pids=""
	for n in $names; do
		while [ "$(echo $pids | wc -w)" -ge "$jobs" ]; do
			wait -n 2>/dev/null || true
			live=""
			for p in $pids; do
				kill -0 "$p" 2>/dev/null && live="$live $p"
			done
			pids=$live
		done
		(
			r=0
			fuzz_one "$n" >"$out/$n.result" || r=$?
			echo "$r" >"$out/$n.rc"
		) &
		pids="$pids $!"
	done
	wait
	for n in $names; do
		cat "$out/$n.result"
		[ "$(cat "$out/$n.rc")" = 0 ] || failed=1
	done
fi
exit $failed
