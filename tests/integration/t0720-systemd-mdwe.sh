#!/bin/sh
# MemoryDenyWriteExecute=yes in the unit: a whole task (probe, shared
# decode, libx264 + AAC rungs, HLS, DASH, verify, publish) runs under the
# seccomp filter systemd installs for it (tests/tools/mdwe.c), so neither
# ladderd, its stages nor libav*/libx264 need writable+executable memory.
# Emulated because systemd is not pid 1 in the test containers.
. "$(dirname "$0")/lib.sh"

command -v ffmpeg >/dev/null || skip_all "ffmpeg not installed"
MDWE="$LADDERD_BUILD/tests/tools/mdwe"
[ -x "$MDWE" ] || skip_all "tests/tools/mdwe not built (make check builds it)"
"$MDWE" --check >"$T/check" 2>&1
rc=$?
[ $rc = 77 ] && skip_all "cannot install a seccomp filter here: $(cat "$T/check")"
is "$rc" 0 "the filter refuses a W+X mmap and mprotect(PROT_EXEC)"

write_conf "$T/ladderd.conf" "profiles = { default = {
	segment_duration = 1;
	ladder = ( { name = \"360p\"; height = 360; bitrate = 500; },
		   { name = \"240p\"; height = 240; bitrate = 300; } ); }; };"
mkclip "$T/src.mp4" -f lavfi -i testsrc2=size=640x360:rate=25:duration=2 \
	-f lavfi -i sine=frequency=440:sample_rate=48000:duration=2 \
	-c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -shortest ||
	{ echo "Bail out! cannot make test clips with ffmpeg"; exit 1; }
# Leak checking off for this run only: in ASan builds LeakSanitizer's own
# tracer crashes at exit of a shared-decode `ladderd run` whose task id has
# 4+ characters, filter or not (a separate bug, reported); leaks are not
# what this test is about.
ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" \
	"$MDWE" "$LADDERD" run -c "$T/ladderd.conf" "$T/src.mp4" -o "$T/out" \
	--task-id mdwe >"$T/run.out" 2>"$T/run.err"
is "$?" 0 "ladderd run completes under the filter"
[ -s "$T/run.err" ] && sed 's/^/# /' "$T/run.err" | tail -n 5
ok "HLS master playlist published" test -s "$T/out/mdwe/master.m3u8"
ok "DASH manifest published" test -s "$T/out/mdwe/manifest.mpd"
is "$(ls "$T/out/mdwe" | grep -c '^\(360p\|240p\)$')" 2 "both video rungs are there"
done_testing
