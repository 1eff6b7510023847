#!/bin/sh
# t0387-subtitles: every text subtitle stream of the source becomes a WebVTT
# rendition (issue 15, item 3; stage subtitles). mov_text in MP4 and SubRip +
# ASS in Matroska: the master has one EXT-X-MEDIA TYPE=SUBTITLES per track
# (LANGUAGE, NAME, DEFAULT and FORCED from the disposition), every variant
# names the group, the segmented WebVTT playlist follows the video's
# segments, each cue starts and ends where the source's event does (ffprobe
# of the source's packets, 1 ms), X-TIMESTAMP-MAP is MPEGTS:0 in fMP4 and the
# first video PTS of the rung's first TS segment in MPEG-TS mode, hostile
# cue text cannot end or start a cue, the MPD has a text AdaptationSet per
# track (sidecar WebVTT) and the package verifies. A DVB (bitmap) track is
# reported as skipped in the terminal event, with its reason; PGS the same
# through `ladderd stage`. profile.subtitles = false makes none.
. "$(dirname "$0")/lib.sh"
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 ||
	skip_all "ffmpeg/ffprobe not found"

cat >"$T/en.srt" <<'EOF'
1
00:00:00,500 --> 00:00:01,500
Hello <i>world</i>

2
00:00:02,250 --> 00:00:03,100
Second --> line

with a blank line & more

3
00:00:04,700 --> 00:00:05,600
Third
EOF
cat >"$T/fr.ass" <<'EOF'
[Script Info]
ScriptType: v4.00+

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding
Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,Bonjour {\i1}monde{\i0}
Dialogue: 0,0:00:03.30,0:00:04.40,Default,,0,0,0,,Deuxième\Nligne
EOF
V="-f lavfi -i testsrc2=size=320x180:rate=25:duration=6 -f lavfi -i sine=frequency=440:sample_rate=48000:duration=6"
# shellcheck disable=SC2086
mkclip "$T/sub.mp4" $V -i "$T/en.srt" -i "$T/fr.ass" -map 0 -map 1 -map 2 -map 3 \
	-c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -c:s mov_text \
	-metadata:s:s:0 language=eng -metadata:s:s:1 language=fra \
	-disposition:s:0 default -disposition:s:1 forced
# shellcheck disable=SC2086
mkclip "$T/sub.mkv" $V -i "$T/en.srt" -i "$T/fr.ass" -map 0 -map 1 -map 2 -map 3 \
	-c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -c:s:0 srt -c:s:1 ass \
	-metadata:s:s:0 language=eng -metadata:s:s:1 language=fra -metadata:s:s:0 title=English
# DVB subtitles (bitmap): a PGS stream (tests/tools/mkpgs.py) re-encoded as dvbsub in TS.
"$PY" "$LADDERD_SRC/tests/tools/mkpgs.py" "$T/x.sup"
mkclip "$T/dvb.ts" -i "$T/sub.mp4" -i "$T/x.sup" -map 0:v -map 0:a -map 1 -c:v copy -c:a copy \
	-c:s dvbsub -metadata:s:s:0 language=deu

SEG='segment_duration = 2; ladder = ( { name = "180p"; height = 180; bitrate = 300; } );'
write_conf "$T/ladderd.conf" "
profiles = { f = { $SEG }; t = { segment_type = \"mpegts\"; $SEG };
             off = { subtitles = false; $SEG }; };"
run() { # ID PROFILE SOURCE
	"$LADDERD" run -c "$T/ladderd.conf" -p "$2" "$3" -o "$T/out" --task-id "$1" \
		>"$T/$1.out" 2>&1
	_report $? "$1: ladderd run builds the package (verify included)" "$(tail -n 5 "$T/$1.out")"
}
# events SOURCE STREAM: the source's subtitle events as "start end" (ms),
# from ffprobe's packets (not mov_text's empty gap samples), shifted by the
# video stream's start.
events() {
	"$PY" - "$1" "$2" <<'PY'
import json, subprocess, sys
def probe(*a):
    return json.loads(subprocess.run(['ffprobe', '-v', 'error', '-of', 'json'] + list(a) + [sys.argv[1]],
                                     capture_output=True, text=True).stdout)
v0 = float(probe('-select_streams', 'v:0', '-show_entries', 'stream=start_time')['streams'][0].get('start_time') or 0)
for p in probe('-select_streams', sys.argv[2], '-show_entries', 'packet=pts_time,duration_time,size')['packets']:
    if int(p['size']) <= 2:
        continue  # mov_text's empty sample: the gap between two events
    s = float(p['pts_time']) - v0
    print(round(s * 1000), round((s + float(p['duration_time'])) * 1000))
PY
}
# cues VTT: the cues of a WebVTT file as "start end" (ms).
cues() {
	sed -n 's/^\([0-9:.]*\) --> \([0-9:.]*\)$/\1 \2/p' "$1" |
		awk '{ for (i = 1; i <= 2; i++) { split($i, a, ":"); t[i] = ((a[1] * 60 + a[2]) * 60 + a[3]) * 1000 }
		       printf "%d %d\n", t[1] + 0.5, t[2] + 0.5 }'
}

# --- mov_text in MP4, fMP4 -------------------------------------------
run mp4 f "$T/sub.mp4"
P="$T/out/mp4"
M=$(cat "$P/master.m3u8")
like "$M" 'TYPE=SUBTITLES,GROUP-ID="subs",NAME="eng",LANGUAGE="eng",DEFAULT=YES,AUTOSELECT=YES,FORCED=NO,URI="sub-eng/index.m3u8"' \
	"mp4: the English track, DEFAULT from its disposition"
like "$M" 'TYPE=SUBTITLES,GROUP-ID="subs",NAME="fra",LANGUAGE="fra",DEFAULT=NO,AUTOSELECT=YES,FORCED=YES,URI="sub-fra/index.m3u8"' \
	"mp4: the French track, FORCED from its disposition"
like "$(grep '^#EXT-X-STREAM-INF' "$P/master.m3u8")" 'SUBTITLES="subs"' "mp4: the variant names the subtitle group"
is "$(grep '^#EXTINF' "$P/sub-eng/index.m3u8" | tr '\n' ' ')" \
	"$(grep '^#EXTINF' "$P/180p/index.m3u8" | sed 's/,.*//; s/^#EXTINF:\(.*\)/\1/' |
		awk '{ printf "#EXTINF:%.6f, ", $1 }')" \
	"mp4: one WebVTT segment per video segment, same durations"
is "$(sed -n 2p "$P/sub-eng/seg_00000.vtt")" "X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000" \
	"mp4: fMP4 segments map LOCAL 0 to MPEGTS 0"
is "$(cues "$P/sub-eng/full.vtt" | tr '\n' ' ')" "$(events "$T/sub.mp4" s:0 | tr '\n' ' ')" \
	"mp4: English cues start and end where the source's events do"
is "$(cues "$P/sub-fra/full.vtt" | tr '\n' ' ')" "$(events "$T/sub.mp4" s:1 | tr '\n' ' ')" \
	"mp4: French cues too"
is "$(cat "$P/sub-eng/seg_00001.vtt" | tail -n +4)" "00:00:02.250 --> 00:00:03.100
Second --&gt; line
with a blank line &amp; more" \
	"mp4: segment 1 has its cue; '-->', the blank line and '&' cannot break the cue"
is "$(grep -c -- '-->' "$P/sub-eng/seg_00002.vtt")" 1 "mp4: segment 2 has the third cue only"
D=$(tr -d '\n' <"$P/manifest.mpd")
like "$D" '<AdaptationSet id="[0-9]*" contentType="text" mimeType="text/vtt" lang="fra">      <Label>fra</Label>      <Role schemeIdUri="urn:mpeg:dash:role:2011" value="forced-subtitle"/>      <Representation id="sub-fra" bandwidth="[0-9]*">        <BaseURL>sub-fra/full.vtt</BaseURL>' \
	"mp4: the MPD has the French track as a sidecar WebVTT text AdaptationSet"
like "$D" 'lang="eng">      <Label>eng</Label>      <Role [^>]*value="subtitle"/>' "mp4: and the English one"
ev=$(tail -n 1 "$T/out/.ladderd/status/mp4/events.ndjson")
is "$(printf '%s' "$ev" | "$PY" -c 'import json,sys; e=json.load(sys.stdin); print(e["state"], [(t["name"], t["cues"], t["origin"]) for t in e["subtitles"]["tracks"]], e["subtitles"]["skipped"])')" \
	"complete [('sub-eng', 3, 'stream 2 (mov_text)'), ('sub-fra', 2, 'stream 3 (mov_text)')] []" \
	"mp4: the complete event lists the subtitle tracks"

# --- SubRip and ASS in Matroska --------------------------------------
run mkv f "$T/sub.mkv"
P="$T/out/mkv"
like "$(cat "$P/master.m3u8")" 'NAME="English",LANGUAGE="eng"' "mkv: NAME from the track's title"
is "$(cues "$P/sub-eng/full.vtt" | tr '\n' ' ')" "$(events "$T/sub.mkv" s:0 | tr '\n' ' ')" \
	"mkv: SubRip cues at the source's times (video start shift applied)"
is "$(cues "$P/sub-fra/full.vtt" | tr '\n' ' ')" "$(events "$T/sub.mkv" s:1 | tr '\n' ' ')" \
	"mkv: ASS cues at the source's times"
like "$(cat "$P/sub-fra/full.vtt")" 'Bonjour <i>monde</i>' "mkv: ASS italics become WebVTT <i>"

# --- MPEG-TS: X-TIMESTAMP-MAP on the first video PTS -----------------
run ts t "$T/sub.mp4"
P="$T/out/ts"
pts=$(ffprobe -v error -select_streams v:0 -show_entries packet=pts -of csv=p=0 \
	"$P/180p/seg_00000.ts" | tr -d ',' | grep . | sort -n | head -n 1)
is "$(sed -n 2p "$P/sub-eng/seg_00000.vtt")" "X-TIMESTAMP-MAP=MPEGTS:$pts,LOCAL:00:00:00.000" \
	"ts: LOCAL 0 is the first video PTS of the first TS segment ($pts)"
is "$(cues "$P/sub-eng/full.vtt" | tr '\n' ' ')" "$(events "$T/sub.mp4" s:0 | tr '\n' ' ')" \
	"ts: cues at the source's times"
like "$(grep '^#EXT-X-STREAM-INF' "$P/master.m3u8")" 'SUBTITLES="subs"' "ts: the variant names the subtitle group"

# --- bitmap subtitles: skipped, and said so ---------------------------
run dvb f "$T/dvb.ts"
ev=$(tail -n 1 "$T/out/.ladderd/status/dvb/events.ndjson")
is "$(printf '%s' "$ev" | "$PY" -c 'import json,sys; e=json.load(sys.stdin); print(e["state"], e["subtitles"])')" \
	"complete {'tracks': [], 'skipped': [{'index': 2, 'codec': 'dvb_subtitle', 'language': 'deu', 'reason': 'bitmap subtitles (dvb_subtitle) cannot become WebVTT text'}]}" \
	"dvb: the DVB track is reported skipped in the complete event, with the reason"
like "$(cat "$T/dvb.out")" "subtitle stream 2 \(dvb_subtitle\) skipped: bitmap subtitles" "dvb: and in the log"
is "$(grep -c SUBTITLES "$T/out/dvb/master.m3u8")" 0 "dvb: no subtitle group in the master"

mkdir -p "$T/pgs/work"
cat >"$T/pgs/ctx.json" <<EOF
{ "task": { "id": "pgs", "profile": "f", "work_dir": "$T/pgs/work" },
  "probe": { "duration": 6, "subtitles": [ { "index": 3, "codec": "hdmv_pgs_subtitle",
    "language": "eng", "default": false, "forced": false, "text": false } ] } }
EOF
out=$("$LADDERD" stage -c "$T/ladderd.conf" subtitles "$T/pgs/ctx.json" 2>"$T/pgs/err")
is "$(printf '%s' "$out" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["subtitles"]["skipped"][0]["reason"])')" \
	"bitmap subtitles (hdmv_pgs_subtitle) cannot become WebVTT text" \
	"pgs: a PGS track is skipped with its reason"

# --- switched off ------------------------------------------------------
run off off "$T/sub.mp4"
is "$(grep -c SUBTITLES "$T/out/off/master.m3u8"; ls -d "$T/out/off/sub-"* 2>/dev/null | wc -l)" "0
0" "profile.subtitles = false: no subtitle rendition"
done_testing
