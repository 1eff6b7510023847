#!/bin/sh
# t0357-lazy-avfilter.sh - libavfilter is loaded only by a process that
# builds a filter graph (stages/avfilter_lazy.c, issue 14): it and the ~30
# libraries it brings cost every rung ~15 ms of CPU and ~7 MB of RSS.
#  * the rung stages (decode, transcode) do not link it, and leave no
#    libavfilter symbol for the dynamic linker to bind (every call goes
#    through the table avfilter_lazy.c fills with dlsym); probe, which runs
#    once per task in the job process, links it (see Makefile.am);
#  * a task with no filter: no rung worker of it maps libavfilter
#    (sampled from /proc/PID/maps while the rungs run), and the rungs
#    sampled did map transcode.so, so they were looked at while working;
#  * a task with a filter (a display matrix: transpose) maps it in the
#    processes that filter only: each rung that turns its own frames, or
#    the top rung's worker, which runs the shared decoder, and not the
#    other rungs reading its ring;
#  * with libavfilter unloadable (an empty file bind-mounted over it in a
#    private mount namespace; root only) the task fails cleanly (exit 1,
#    status failed, the stage that cannot load named), not with a crash.
. "$(dirname "$0")/lib.sh"
require ladderd ffmpeg readelf nm

write_conf "$T/ladderd.conf" "$(shared_alone_profiles)"
mkclip "$T/plain.mp4" || bail_out "cannot make test clips with ffmpeg"
mkclip "$T/rot.mp4" -i "$T/plain.mp4" -c copy -metadata:s:v:0 rotate=90 ||
	bail_out "cannot make a rotated clip"

for s in decode transcode; do
	so="$BUILD_STAGES/$s.so"
	is "$(readelf -d "$so" | grep -c 'NEEDED.*libavfilter')" 0 \
		"$s.so does not link libavfilter"
	is "$(ldd "$so" | grep -c avfilter)" 0 \
		"ldd: $s.so brings no libavfilter in"
	is "$(nm -D --undefined-only "$so" |
		grep -Ec ' (avfilter_|av_buffersrc_|av_buffersink_)')" 0 \
		"$s.so has no undefined libavfilter symbol"
done
# The soname the stages dlopen: the headers' major.
SONAME=$(grep -ao 'libavfilter\.so\.[0-9][0-9]*' "$BUILD_STAGES/transcode.so" | head -n 1)
like "$SONAME" '^libavfilter\.so\.[0-9]+$' "transcode.so names the soname it loads"

# sample NAME PROFILE CLIP: `ladderd run` under tests/tools/mapsample.py;
# its report (one line per process) in $T/NAME.maps, stderr in $T/NAME.err.
sample() {
	LADDERD_VERBOSE=1 "$PY" "$LADDERD_SRC/tests/tools/mapsample.py" \
		--mark "$T" --timeout $((120 * MULT)) --out "$T/$1.maps" \
		--lib libavfilter.so --lib /transcode.so -- \
		"$LADDERD" run -c "$T/ladderd.conf" -p "$2" "$T/$3" -o "$T/out" \
		--task-id "$1-$$" >"$T/$1.out" 2>"$T/$1.err"
}
# seen NAME ROLE LIB: how many roles matching ROLE (an ERE matching the
# whole role column: run, rung:hi, ...) had a process seen mapping LIB
# (one of the --lib above). Roles, not pids: under ASan, LeakSanitizer's
# tracer is a clone of the process with the same command line.
seen() {
	awk -v role="^($2)\$" -v lib="$3" '$2 ~ role {
		for (i = 7; i <= NF; i++) if ($i == lib) r[$2] = 1 }
		END { for (k in r) n++; print n + 0 }' "$T/$1.maps"
}

sample plain shared plain.mp4
is "$?" 0 "a task without filters completes"
is "$(seen plain 'rung:.*' libavfilter.so)" 0 \
	"no rung worker of a task without filters maps libavfilter"
like "$(seen plain 'rung:(hi|lo|audio)' /transcode.so)" '^[1-9]' \
	"its rungs were sampled while they ran (transcode.so mapped)"
ok "its job process was sampled" grep -q ' run ' "$T/plain.maps"
like "$(unit_pids "$T/plain.err" 'shared decoder')" '^[0-9]+$' \
	"its shared decoder logged from one process"
is "$(unit_pids "$T/plain.err" 'shared decoder')" "$(unit_pids "$T/plain.err" rendition=hi)" \
	"the top rung's worker, which runs the decoder as a thread"
ok "and no process said it built filters" sh -c "! grep -q 'filters: ' '$T/plain.err'"

sample alone alone rot.mp4
is "$?" 0 "a task whose rungs turn their own frames completes"
ok "its rungs built the transpose filter" grep -q 'filters: transpose=' "$T/alone.err"
is "$(seen alone 'rung:(hi|lo)' libavfilter.so)" 2 \
	"each video rung that filters maps libavfilter"
is "$(seen alone 'rung:audio' libavfilter.so)" 0 \
	"the audio rung, which filters nothing, does not"

sample shared shared rot.mp4
is "$?" 0 "a task whose shared decoder turns the frames completes"
is "$(seen shared 'rung:hi' libavfilter.so)" 1 \
	"the top rung's worker, whose shared decoder filters, maps libavfilter"
is "$(seen shared 'rung:(lo|audio)' libavfilter.so)" 0 \
	"the other rungs, reading its ring, do not"
like "$(seen shared 'rung:(hi|lo)' /transcode.so)" '^[1-9]' \
	"(those rungs were sampled while they ran)"

# Without a loadable libavfilter. The library's file, as the dynamic
# linker finds the soname (ctypes dlopens it the same way).
LIB=$("$PY" -c 'import ctypes, sys
ctypes.CDLL(sys.argv[1])
print(next(l.split()[-1] for l in open("/proc/self/maps") if sys.argv[1].split(".")[0] in l))' "$SONAME")
: >"$T/empty.so"
if [ "$(id -u)" != 0 ] || [ ! -f "$LIB" ] ||
	! unshare -m sh -c "mount --bind '$T/empty.so' '$LIB'" 2>/dev/null; then
	echo "# skipped: no private mount namespace to hide $SONAME in (needs root)"
else
	# nolib PROFILE CLIP ID: `ladderd run` with $LIB empty.
	nolib() {
		unshare -m sh -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"' \
			sh "$T/empty.so" "$LIB" \
			"$LADDERD" run -c "$T/ladderd.conf" -p "$1" "$T/$2" -o "$T/out" \
			--task-id "$3" >"$T/$3.out" 2>"$T/$3.err"
	}
	nolib shared plain.mp4 nolib-plain-$$
	is "$?" 1 "libavfilter unloadable: the task fails (exit 1, not a signal)"
	st="$T/out/.ladderd/status/nolib-plain-$$/status.json"
	is "$(json "$st" 'd["state"]')" failed "its status says failed"
	like "$(json "$st" 'd["error"]["message"]')" "probe" \
		"naming the stage that cannot load (probe links libavfilter)"
fi
done_testing
