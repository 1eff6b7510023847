#!/bin/sh
# t0360-codecs.sh - HEVC (libx265) and AV1 (libsvtav1) rungs next to an
# H.264 one in one fMP4 ladder (issue 16), with `ladderd run`:
#  * the package completes (verify passed: durations, keyframe alignment,
#    playlists, MPD) and every rung has the codec it asked for;
#  * CODECS in the master playlist and the MPD name what ffprobe reads
#    from the stream: codec, profile, level (and tier, bit depth);
#  * HEVC segments are hvc1 (parameter sets in the hvcC only);
#  * keyframes sit on the same 1 s grid in every codec, also at 30 fps,
#    and at 29.97 fps, where one segment is not a whole number of frames:
#    the AV1 rung's keyframes are the H.264 rung's (forced, not an intra
#    period: a 30-frame period drifts off the grid after 34 s);
#  * an AV1 rung keeps its VBV cap: on a source whose second half is noise
#    the peak segment rate (BANDWIDTH) stays under maxrate (SVT-AV1's VBR
#    ignored it and ran ~14 % over);
#  * MPEG-TS refuses HEVC and AV1 at config time (check-config says why).
. "$(dirname "$0")/lib.sh"

require ffmpeg ffprobe ladderd
ffmpeg -hide_banner -encoders 2>/dev/null | grep -q libsvtav1 ||
	skip_all "libavcodec has no libsvtav1"
ffmpeg -hide_banner -encoders 2>/dev/null | grep -q libx265 ||
	skip_all "libavcodec has no libx265"

write_conf "$T/ladderd.conf" "
profiles = {
  mix = { segment_duration = 1; video = { preset = \"ultrafast\"; };
    ladder = ( { name = \"av1\"; height = 240; bitrate = 300; codec = \"libsvtav1\"; },
               { name = \"hevc\"; height = 240; bitrate = 300; codec = \"libx265\"; },
               { name = \"avc\"; height = 180; bitrate = 300; } ); };
  ntsc = { segment_duration = 1; video = { preset = \"ultrafast\"; };
    ladder = ( { name = \"av1\"; height = 120; bitrate = 200; codec = \"libsvtav1\"; },
               { name = \"avc\"; height = 120; bitrate = 200; } ); };
  cap = { segment_duration = 2; video = { preset = \"ultrafast\"; };
    ladder = ( { name = \"av1\"; height = 180; bitrate = 250; codec = \"libsvtav1\"; } ); };
  hevc = { segment_duration = 1; video = { preset = \"ultrafast\"; codec = \"libx265\"; };
    ladder = ( { name = \"240p\"; height = 240; bitrate = 300; },
               { name = \"180p\"; height = 180; bitrate = 200; } ); };
};"
mkclip_av "$T/src.mp4" 320x240 2 &&
mkclip "$T/ntsc.mp4" -f lavfi -i testsrc2=size=320x240:rate=30:duration=2 \
	-c:v libx264 -preset ultrafast -pix_fmt yuv420p &&
mkclip "$T/2997.mp4" -f lavfi \
	-i testsrc2=size=160x120:rate=30000/1001:duration=36,noise=alls=20:allf=t+u \
	-c:v libx264 -preset ultrafast -crf 10 -pix_fmt yuv420p &&
mkclip "$T/hard.mp4" -f lavfi -i testsrc2=size=320x180:rate=30000/1001:duration=6 \
	-f lavfi -i testsrc2=size=320x180:rate=30000/1001:duration=6,noise=alls=30:allf=t+u \
	-filter_complex '[0][1]concat=n=2:v=1' \
	-c:v libx264 -preset ultrafast -crf 5 -pix_fmt yuv420p ||
	bail_out "cannot make test clips with ffmpeg"

run() {
	"$LADDERD" run -c "$T/ladderd.conf" -p "$1" "$T/$2" -o "$T/out" \
		--task-id "$3" >"$T/$3.out" 2>"$T/$3.err"
	rc=$?
}
# codecs_match CODECS PLAYLIST: the CODECS entry agrees with ffprobe.
codecs_match() {
	"$PY" - "$1" "$(ffprobe -v error -select_streams v -show_entries \
		stream=codec_name,profile,level,pix_fmt -of json "$2")" <<'PY'
import json, sys
codecs = sys.argv[1].split(",")[0]
s = json.loads(sys.argv[2])["streams"][0]
f = codecs.split(".")
if f[0] == "avc1":
    prof, level = int(f[1][0:2], 16), int(f[1][4:6], 16)
    names = {66: ("Baseline", "Constrained Baseline"), 77: ("Main",),
             100: ("High",)}
    ok = (s["codec_name"] == "h264" and s["profile"] in names.get(prof, ())
          and s["level"] == level)
elif f[0] == "hvc1":
    names = {1: "Main", 2: "Main 10"}
    ok = (s["codec_name"] == "hevc" and s["profile"] == names.get(int(f[1]))
          and f[3][0] == "L" and int(f[3][1:]) == s["level"])
elif f[0] == "av01":
    names = {0: "Main", 1: "High", 2: "Professional"}
    depth = 10 if "10" in s["pix_fmt"] else 8
    ok = (s["codec_name"] == "av1" and s["profile"] == names.get(int(f[1]))
          and int(f[2][0:2]) == s["level"] and int(f[3]) == depth)
else:
    ok = False
if not ok:
    print("CODECS %s vs ffprobe %s" % (codecs, s))
sys.exit(0 if ok else 1)
PY
}
keys() {
	ffprobe -v error -select_streams v -show_entries packet=pts_time,flags \
		-of csv=p=0 "$1" | awk -F, '$2 ~ /K/ { printf "%.2f ", $1 }'
}

run mix src.mp4 mx
is "$rc" 0 "an AV1 + HEVC + H.264 ladder completes (verify passed)"
M="$T/out/mx/master.m3u8"
for r in av1:av1:av01 hevc:hevc:hvc1 avc:h264:avc1; do
	name=${r%%:*}; rest=${r#*:}; codec=${rest%%:*}; prefix=${rest#*:}
	is "$(ffprobe -v error -select_streams v -show_entries stream=codec_name -of csv=p=0 "$T/out/mx/$name/index.m3u8" | grep . | head -n 1)" \
		"$codec" "rung $name is $codec"
	c=$(grep -B1 "^$name/index.m3u8" "$M" | sed -n 's/.*CODECS="\([^"]*\)".*/\1/p')
	like "$c" "^$prefix\." "rung $name: CODECS $c"
	ok "rung $name: CODECS agree with ffprobe's codec, profile and level" \
		codecs_match "$c" "$T/out/mx/$name/index.m3u8"
	like "$(cat "$T/out/mx/manifest.mpd")" "codecs=\"${c%%,*}\"" \
		"rung $name: the MPD says the same codecs"
	is "$(keys "$T/out/mx/$name/index.m3u8")" "0.00 1.00 " \
		"rung $name: keyframes on the 1 s grid"
done
is "$(ffprobe -v error -select_streams v -show_entries stream=codec_tag_string -of csv=p=0 "$T/out/mx/hevc/init.mp4" | grep . | head -n 1)" \
	hvc1 "HEVC segments are hvc1"

run hevc ntsc.mp4 hv
is "$rc" 0 "an all-HEVC ladder at 30 fps completes"
is "$(keys "$T/out/hv/240p/index.m3u8")" "$(keys "$T/out/hv/180p/index.m3u8")" \
	"both HEVC rungs switch at the same timestamps"
is "$(keys "$T/out/hv/240p/index.m3u8")" "0.00 1.00 " "on the 1 s grid"

run ntsc 2997.mp4 nt
is "$rc" 0 "an AV1 + H.264 ladder at 29.97 fps, 36 s, completes (verify passed)"
k=$(keys "$T/out/nt/av1/index.m3u8")
is "$k" "$(keys "$T/out/nt/avc/index.m3u8")" \
	"at 29.97 fps the AV1 rung's keyframes are the H.264 rung's"
is "$(echo $k | wc -w):$(echo $k | cut -d' ' -f 36)" "36:35.00" \
	"one per 1 s segment, the last at 35.00 s (frame 1049 = ceil(35 x 29.97))"

run cap hard.mp4 cp
is "$rc" 0 "an AV1 rung on a half-noise source completes"
bw=$(sed -n 's/^#EXT-X-STREAM-INF:BANDWIDTH=\([0-9]*\),.*/\1/p' "$T/out/cp/master.m3u8" | head -n 1)
# maxrate = 250 kb/s x maxrate_factor 1.07
ok "AV1 rung: peak segment rate $bw b/s within the 267500 b/s maxrate" \
	test "${bw:-999999}" -le 267500

for c in libx265 libsvtav1; do
	cat >"$T/ts-$c.conf" <<EOF
profiles = { ts = { segment_type = "mpegts"; video = { codec = "$c"; }; }; };
EOF
	out=$("$LADDERD" check-config -c "$T/ts-$c.conf" 2>&1)
	is "$?" 1 "check-config refuses $c with segment_type mpegts"
	like "$out" "ts-$c.conf:1: profile 'ts': video.codec '$c' needs segment_type \"fmp4\"" \
		"and says why, with FILE:LINE"
done
cat >"$T/ts-rung.conf" <<EOF
profiles = { ts = { segment_type = "mpegts";
  ladder = ( { name = "a"; height = 240; bitrate = 300; codec = "libsvtav1"; } ); }; };
EOF
out=$("$LADDERD" check-config -c "$T/ts-rung.conf" 2>&1)
like "$out" "rung 'a' codec 'libsvtav1' needs segment_type" "a rung's codec is checked too"

done_testing
