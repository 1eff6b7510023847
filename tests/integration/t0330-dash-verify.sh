#!/bin/sh
# t0330-dash-verify: `ladderd run` builds a two-rung package in fmp4 mode
# (DASH shares the CMAF segments) and in mpegts mode (DASH gets its own
# fMP4 segments under dash/); the MPD opens in ffprobe, has one video
# Representation per rung plus audio, lasts as long as the source, and its
# SegmentTimeline equals the tfdt/sample durations of every segment. The
# workflow ends in the test stage t_fail so the work folder (context.json,
# package/) is kept: verify has passed in the run, and re-run with
# `ladderd stage` it fails clearly on a deleted segment and on a rung whose
# keyframes differ.
. "$(dirname "$0")/lib.sh"

require ffmpeg ffprobe ladderd
[ -f "$TEST_STAGES/t_fail.so" ] || skip_all "test stages not built (make check)"

LADDER='segment_duration = 4; dash = true;
    ladder = ( { name = "360p"; height = 360; bitrate = 600; },
               { name = "240p"; height = 240; bitrate = 300; } );
    workflow = { post = ( "hls_footer", "chunk_dash", "verify", "t_fail" ); };'
write_conf "$T/ladderd.conf" "
profiles = {
  f = { segment_type = \"fmp4\"; $LADDER };
  t = { segment_type = \"mpegts\"; $LADDER };
};"

# box.py: the ISO BMFF facts the checks need, and the MPD check: expand
# every SegmentTimeline and compare each S with its file's tfdt and sum
# of trun sample durations (and the timescale with the init's mdhd).
cat >"$T/box.py" <<'PY'
import os, re, struct, sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.environ['LADDERD_SRC'], 'tests', 'tools'))
from mp4boxes import boxes, find, u32, frag, timescale

def mpdcheck(mpd):
    ns = '{urn:mpeg:dash:schema:mpd:2011}'
    root = ET.parse(mpd).getroot()
    base = os.path.dirname(mpd)
    reps, n, errs = [], 0, []
    for aset in root.iter(ns + 'AdaptationSet'):
        for rep in aset.findall(ns + 'Representation'):
            reps.append(aset.get('contentType') + ':' + rep.get('id'))
            st = rep.find(ns + 'SegmentTemplate')
            num, t = int(st.get('startNumber', '1')), 0
            if timescale(os.path.join(base, st.get('initialization'))) != int(st.get('timescale')):
                errs.append(rep.get('id') + ': timescale differs from the init')
            for s in st.find(ns + 'SegmentTimeline').findall(ns + 'S'):
                t = int(s.get('t', t))
                for _ in range(int(s.get('r', '0')) + 1):
                    m = re.sub(r'\$Number%0(\d+)d\$',
                               lambda g: '%0*d' % (int(g.group(1)), num),
                               st.get('media'))
                    got = frag(os.path.join(base, m))
                    if got != (t, int(s.get('d'))):
                        errs.append('%s: mpd t=%d d=%s, file tfdt=%d d=%d'
                                    % (m, t, s.get('d'), got[0], got[1]))
                    t, num, n = t + int(s.get('d')), num + 1, n + 1
    print(' '.join(reps))
    print('%d segments' % n)
    print('\n'.join(errs))

mpdcheck(sys.argv[1])
PY

DUR=10
mkclip "$T/src.mp4" -f lavfi -i testsrc2=size=640x360:rate=25:duration=$DUR \
	-f lavfi -i sine=frequency=440:sample_rate=48000:duration=$DUR \
	-c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac \
	-metadata:s:a:0 language=eng -shortest
SRCDUR=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$T/src.mp4")

for mode in f t; do
	name=$([ $mode = f ] && echo fmp4 || echo mpegts)
	"$LADDERD" run -c "$T/ladderd.conf" -p $mode "$T/src.mp4" -o "$T/out" \
		--task-id $name >"$T/$name.out" 2>"$T/$name.err"
	w=$T/out/.ladderd/work/$name
	ctx=$w/context.json
	ok "$name: run ends at the t_fail stage, work kept" \
		grep -q '"stage":[[:space:]]*"t_fail"' "$ctx"
	is "$(json "$ctx" 'd["verify"]["ok"]' 2>&1)" true \
		"$name: verify passed inside the run"
	mpd=$w/package/manifest.mpd
	ok "$name: manifest.mpd written" test -s "$mpd"
	# an absolute path: FFmpeg 5.1's dash demuxer doubles relative dirs
	ok "$name: ffprobe opens the MPD" ffprobe -v error -show_streams "$mpd"
	ffprobe -v error -of json -show_entries stream=codec_type "$mpd" \
		>"$T/$name.streams" 2>&1
	is "$(json "$T/$name.streams" 'sorted(s["codec_type"] for s in d["streams"])' 2>&1)" \
		'["audio", "video", "video"]' \
		"$name: ffprobe sees two video streams and one audio stream"
	python3 "$T/box.py" "$mpd" >"$T/$name.check" 2>&1
	is "$(sed -n 1p "$T/$name.check")" \
		"video:360p video:240p audio:audio" \
		"$name: one video Representation per rung, plus audio"
	like "$(sed -n 2p "$T/$name.check")" '^[1-9][0-9]* segments$' \
		"$name: every segment of the timelines exists"
	is "$(sed -n '3,$p' "$T/$name.check")" "" \
		"$name: SegmentTimeline t/d equal each segment's tfdt/durations"
	mdur=$(sed -n 's/.*mediaPresentationDuration="PT\([0-9.]*\)S".*/\1/p' "$mpd")
	ok "$name: duration $mdur s within 0.1 s of the source's $SRCDUR s" \
		awk -v a="$mdur" -v b="$SRCDUR" \
		'BEGIN { d = a - b; exit !(a != "" && d < 0.1 && d > -0.1) }'
	like "$(cat "$mpd")" 'profiles="urn:mpeg:dash:profile:isoff-live:2011"' \
		"$name: isoff-live profile"
	like "$(cat "$mpd")" 'lang="eng"' "$name: audio language from the source"
done

# fmp4 shares one set of segments; mpegts has its own DASH segments.
P=$T/out/.ladderd/work/fmp4/package
ok "fmp4: the MPD references the HLS CMAF segments" \
	grep -q 'media="360p/seg_\$Number%05d\$.m4s"' "$P/manifest.mpd"
ok "fmp4: no DASH copy of the segments" test ! -e "$P/dash"
P=$T/out/.ladderd/work/mpegts/package
ok "mpegts: DASH segments in dash/<rung>/ and dash/audio/" \
	test -s "$P/dash/240p/init.mp4" -a -s "$P/dash/240p/seg_00000.m4s" -a \
	-s "$P/dash/audio/seg_00000.m4s"

# verify, run by hand on the kept contexts.
# vstage NAME CTX: verify on CTX; sets $rc and $msg (ctx.error.message).
vstage() {
	python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
d.pop("error", None)
d.pop("verify", None)
exec(sys.argv[3])
json.dump(d, open(sys.argv[2], "w"))' "$2" "$T/$1.json" "${3:-pass}"
	"$LADDERD" stage -c "$T/ladderd.conf" verify "$T/$1.json" \
		>"$T/$1.out" 2>"$T/$1.err"
	rc=$?
	msg=$(json "$T/$1.out" 'd.get("error", {}).get("message", "")' 2>/dev/null)
}
for name in fmp4 mpegts; do
	vstage v-$name "$T/out/.ladderd/work/$name/context.json"
	is "$rc/$msg" "0/" "$name: verify passes on the intact package"
done

W=$T/out/.ladderd/work/fmp4
mv "$W/package/240p/seg_00001.m4s" "$T/saved"
vstage v-noseg "$W/context.json"
ok "verify fails when a segment is missing" test "$rc" -ne 0
like "$msg" "240p/index.m3u8: '240p/seg_00001\.m4s' does not exist" \
	"the message names the playlist and the missing segment"
mv "$T/saved" "$W/package/240p/seg_00001.m4s"

W=$T/out/.ladderd/work/mpegts
mv "$W/package/dash/audio/seg_00002.m4s" "$T/saved"
vstage v-nodash "$W/context.json"
ok "verify fails when a DASH-only segment is missing" test "$rc" -ne 0
like "$msg" "'dash/audio/seg_00002\.m4s' does not exist" \
	"the message names the missing DASH segment"
mv "$T/saved" "$W/package/dash/audio/seg_00002.m4s"

vstage v-kf "$W/context.json" '
for r in d["renditions"]:
    if r["rung"]["name"] == "240p":
        r["transcode"]["keyframes"][1] += 0.04'
ok "verify fails when a rung's keyframes differ" test "$rc" -ne 0
like "$msg" "^rung 240p: keyframes differ from 360p at 4\.000 s$" \
	"the message names the rung, the reference and the time"

vstage v-short "$W/context.json" '
d["probe"]["duration"] = 20.0'
ok "verify fails when the rungs are shorter than the source" test "$rc" -ne 0
like "$msg" "^rung 360p: lasts 10\.[0-9]+ s" "the message names the rung"

done_testing
