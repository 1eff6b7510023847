#!/bin/sh
# Every fuzz harness (tests/fuzz/fuzz_*.c, built with a replay main by make
# check) runs over its corpus: the seeds and every input a fuzzer once
# crashed on, which must stay fixed. Under the sanitizer pass of run-all.sh
# this is ASan/UBSan/LSan over the same inputs libFuzzer saw. The fuzzing
# itself is tests/fuzz/run.sh (clang, libFuzzer).
. "$(dirname "$0")/lib.sh"

C="$LADDERD_SRC/tests/fuzz/corpus"
# One suppressions file: the harnesses' own (libconfig) and whatever the
# caller's LSAN_OPTIONS names (the sanitizer pass's tests/lsan.supp), since
# LeakSanitizer keeps only the last suppressions= it is given.
cat "$LADDERD_SRC/tests/fuzz/lsan.supp" >"$T/lsan.supp"
for f in $(printf '%s' "${LSAN_OPTIONS:-}" | tr ':' '\n' |
	sed -n 's/^suppressions=//p'); do
	cat "$f" >>"$T/lsan.supp" 2>/dev/null
done
rest=$(printf '%s' "${LSAN_OPTIONS:-}" | tr ':' '\n' |
	grep -v '^suppressions=' | paste -sd: -)
LSAN_OPTIONS="suppressions=$T/lsan.supp${rest:+:$rest}"
export LSAN_OPTIONS
for n in manifest conf verify_playlist chunk_hls_playlist chunk_dash hls_info_codecs; do
	bin="$LADDERD_BUILD/tests/fuzz/replay_$n"
	if [ ! -x "$bin" ]; then
		_report 1 "replay_$n is built (make check builds it)"
		continue
	fi
	want=$(ls "$C/$n" | wc -l | tr -d ' ')
	(cd "$T" && "$bin" "$C/$n") >"$T/$n.out" 2>&1
	rc=$?
	[ $rc = 0 ] || sed 's/^/# /' "$T/$n.out" | tail -n 20
	is "$rc:$(tail -n 1 "$T/$n.out")" "0:replayed $want input(s)" \
		"$n: the $want inputs of its corpus run clean"
done
done_testing
