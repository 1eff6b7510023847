#!/bin/sh
# Short and still sources: a clip shorter than one segment (0.2 s) gives a
# valid one-segment package in fMP4 and MPEG-TS mode (the muxer writes
# TARGETDURATION:0 for it, which was refused); a still image is refused
# with a message that says it is a still image.
. "$(dirname "$0")/lib.sh"
require ffmpeg ffprobe
write_conf "$T/ladderd.conf" '
profiles = { ts = { segment_type = "mpegts"; }; };'
mkclip_av "$T/short.mp4" 640x360 0.2
for p in default ts; do
	"$LADDERD" run -c "$T/ladderd.conf" -p $p "$T/short.mp4" -o "$T/out" \
		--task-id "short-$p" >"$T/$p.out" 2>&1
	is "$?" 0 "$p: a 0.2 s clip gives a package"
	pl="$T/out/short-$p/360p/index.m3u8"
	is "$(grep -c '^#EXTINF' "$pl" 2>/dev/null)" 1 "$p: one segment"
	td=$(sed -n 's/^#EXT-X-TARGETDURATION:\([0-9]*\)$/\1/p' "$pl" 2>/dev/null)
	is "$td" 1 "$p: TARGETDURATION is 1, not 0"
	ok "$p: ffprobe reads the package's master playlist" \
		ffprobe -v error -i "$T/out/short-$p/master.m3u8"
done
mkclip "$T/still.png" -f lavfi -i testsrc2=size=320x240:rate=1 -frames:v 1
mkclip "$T/still.jpg" -f lavfi -i testsrc2=size=320x240:rate=1 -frames:v 1
for f in still.png still.jpg; do
	"$LADDERD" run -c "$T/ladderd.conf" "$T/$f" -o "$T/out" \
		--task-id "img-${f#still.}" >"$T/$f.out" 2>&1
	is "$?" 1 "$f is refused"
	like "$(cat "$T/$f.out")" "is a still image \([a-z0-9_]+\), not a video" \
		"$f: the message says it is a still image"
done
done_testing
