#!/bin/sh
# t0310-transcode-sources.sh - the transcode stage alone (`ladderd stage`),
# on contexts built from the real probe stage's output for generated clips.
# Asserts: keyframes exactly on every segment boundary (1 s segments), the
# same list for two rungs of one source; mpegts rungs carry AAC stereo
# 48 kHz, fmp4 video rungs carry no audio and the audio rung only audio;
# no-audio, 5.1, 44.1 kHz mono, 10-bit, 29.97 fps, odd-size and rotated
# sources; every output decodes fully with ffprobe -count_frames and no
# error; a non-media input fails with a clear message and leaves no file.
. "$(dirname "$0")/lib.sh"

require python3 ffmpeg ffprobe ladderd

write_conf "$T/ladderd.conf"

# --- media: 3 s clips, small sizes --------------------------------------
V="-c:v libx264 -preset ultrafast"
SRC="testsrc2=size=640x360:rate=25:duration=3"
mkclip "$T/base.mp4" -f lavfi -i "$SRC" \
	-f lavfi -i sine=frequency=440:sample_rate=48000:duration=3 \
	$V -pix_fmt yuv420p -c:a aac -shortest &&
mkclip "$T/noaudio.mp4" -f lavfi -i "$SRC" $V -pix_fmt yuv420p &&
mkclip "$T/surround.mp4" -f lavfi -i "$SRC" \
	-f lavfi -i sine=frequency=440:sample_rate=48000:duration=3 \
	-filter_complex '[1:a]pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0[a]' \
	-map 0:v -map '[a]' $V -pix_fmt yuv420p -c:a aac &&
mkclip "$T/mono44.mp4" -f lavfi -i "$SRC" \
	-f lavfi -i sine=frequency=440:sample_rate=44100:duration=3 \
	-ac 1 $V -pix_fmt yuv420p -c:a aac -shortest &&
mkclip "$T/tenbit.mp4" -f lavfi -i "$SRC" $V -pix_fmt yuv420p10le &&
mkclip "$T/ntsc.mp4" -f lavfi \
	-i testsrc2=size=640x360:rate=30000/1001:duration=3 \
	-f lavfi -i sine=frequency=440:sample_rate=48000:duration=3 \
	$V -pix_fmt yuv420p -c:a aac -shortest &&
mkclip "$T/odd.mp4" -f lavfi -i "$SRC" -vf scale=641:361 \
	$V -pix_fmt yuv444p &&
mkclip "$T/rot.mp4" -i "$T/noaudio.mp4" -c copy -metadata:s:v:0 rotate=90 ||
	bail_out "cannot make test clips with ffmpeg"
echo "just some text, not a video" >"$T/text.mp4"

# --- helpers -----------------------------------------------------------
# probe SRC: the probe stage on $T/SRC.mp4, result in $T/SRC-probe.out.
probe() {
	printf '{ "input": { "path": "%s" } }\n' "$T/$1.mp4" >"$T/$1-probe.json"
	stage probe "$1-probe"
	[ "$rc" = 0 ] || echo "# probe $1 failed: $msg"
}
# transcode SRC RUNG KIND W H KBPS SEGTYPE: transcode the probed SRC as
# rung RUNG (1 s segments); sets $rc, $out, $msg and $F (the MP4).
transcode() {
	"$PY" - "$T" "$@" <<'PY'
import json, sys
t, src, rung, kind, w, h, kbps, segtype = sys.argv[1:9]
d = json.load(open("%s/%s-probe.out" % (t, src)))
d.pop("error", None)
d["task"] = {"id": "t0310", "main_task_id": "t0310",
             "work_dir": "%s/work-%s" % (t, src)}
d["threads"] = 2
d["profile"] = {"segment_duration": 1, "segment_type": segtype,
    "video": {"codec": "libx264", "preset": "veryfast", "profile": "high",
              "level": "", "maxrate_factor": 1.07, "bufsize_factor": 1.5,
              "crf": 0},
    "audio": {"codec": "aac", "bitrate": 96, "channels": 2,
              "sample_rate": 48000}}
d["rung"] = {"name": rung, "kind": kind, "height": int(h),
             "bitrate": int(kbps), "index": 0}
if kind == "video":
    d["target_size"] = {"width": int(w), "height": int(h),
                        "bitrate": int(kbps)}
json.dump(d, open("%s/%s-%s.json" % (t, src, rung), "w"))
PY
	stage transcode "$1-$2"
	F="$T/work-$1/rungs/$2/transcoded.mp4"
}
# keyframes FILE: pts (s) of the video keyframes, space separated.
keyframes() {
	ffprobe -v error -select_streams v -show_entries packet=pts_time,flags \
		-of csv=p=0 "$1" | awk -F, '$2 ~ /K/ { printf "%s%s", s, $1; s = " " }'
}
# streams FILE: "h264 WxH pix_fmt[, aac RATE CHANNELS]".
streams() {
	ffprobe -v error -show_entries \
		stream=codec_name,width,height,pix_fmt,sample_rate,channels \
		-of json "$1" | "$PY" -c 'import json, sys
out = []
for s in json.load(sys.stdin)["streams"]:
    if "width" in s:
        out.append("%(codec_name)s %(width)dx%(height)d %(pix_fmt)s" % s)
    else:
        out.append("%(codec_name)s %(sample_rate)s %(channels)d" % s)
print(", ".join(out))'
}
# decodes NAME FILE: every frame of every stream decodes without an error
# message, and the video frame count is the one the stage reported.
decodes() {
	n=$(ffprobe -v error -count_frames -select_streams v \
		-show_entries stream=nb_read_frames -of csv=p=0 "$2" 2>"$T/ffp.err")
	errs=$(ffmpeg -nostdin -v error -i "$2" -f null - 2>&1; cat "$T/ffp.err")
	is "$errs" "" "$1: decodes without errors"
	[ -z "$n" ] || is "$n" "$(json "$out" 'd["transcode"]["frames"]')" \
		"$1: ffprobe counts the frames the stage reported"
}
# near A B TOL: |A - B| <= TOL
near() {
	awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; exit !(d <= t && -d <= t) }'
}
duration() {
	ffprobe -v error -show_entries format=duration -of csv=p=0 "$1"
}

# --- two rungs of one source: identical keyframes on the boundaries -----
probe base
transcode base 360p video 640 360 600 mpegts
is "$rc" 0 "base 360p: exit 0"
k360=$(keyframes "$F")
is "$k360" "0.000000 1.000000 2.000000" \
	"base 360p: keyframes exactly at 0, 1, 2 s and nowhere else"
is "$(json "$out" 'd["transcode"]["keyframes"]')" "[0, 1, 2]" \
	"base 360p: ctx.transcode.keyframes"
is "$(streams "$F")" "h264 640x360 yuv420p, aac 48000 2" \
	"base 360p: H.264 + AAC stereo 48 kHz (mpegts mode muxes audio)"
ok "base 360p: duration about 3 s" near "$(duration "$F")" 3 0.05
is "$(json "$out" '"%(kind)s %(width)dx%(height)d %(frames)d %(has_video)s %(has_audio)s %(codec_profile)s" % d["transcode"]')" \
	"video 640x360 75 True True high" "base 360p: ctx.transcode facts"
like "$(json "$out" 'd["transcode"]["codecs"]')" '^avc1\.6400[0-9a-f]{2}$' \
	"base 360p: codecs from the SPS"
is "$(json "$out" 'd["transcode"]["path"]')" "$F" "base 360p: path"
ok "base 360p: measured bitrate near the rung's 600 kbps" \
	near "$(json "$out" 'd["transcode"]["bitrate"]')" 600000 150000
decodes "base 360p" "$F"
transcode base 180p video 320 180 250 mpegts
is "$rc" 0 "base 180p: exit 0"
is "$(keyframes "$F")" "$k360" "base 180p: same keyframes as 360p"
is "$(streams "$F")" "h264 320x180 yuv420p, aac 48000 2" "base 180p: streams"
decodes "base 180p" "$F"

# --- fmp4 mode: video rungs without audio, one audio-only rung ----------
transcode base v180 video 320 180 250 fmp4
is "$rc:$(streams "$F")" "0:h264 320x180 yuv420p" "fmp4 video rung: no audio"
is "$(keyframes "$F")" "$k360" "fmp4 video rung: same keyframes"
transcode base audio audio 0 0 96 fmp4
is "$rc:$(streams "$F")" "0:aac 48000 2" "fmp4 audio rung: AAC only"
ok "fmp4 audio rung: duration about 3 s" near "$(duration "$F")" 3 0.06
is "$(json "$out" '"%(has_video)s %(has_audio)s %(keyframes)s" % d["transcode"]')" \
	"False True []" "fmp4 audio rung: ctx.transcode"
decodes "fmp4 audio rung" "$F"

# --- sources -------------------------------------------------------------
probe noaudio
transcode noaudio 180p video 320 180 250 mpegts
is "$rc:$(streams "$F")" "0:h264 320x180 yuv420p" "no audio: video only"
is "$(json "$out" 'd["transcode"]["has_audio"]')" false "no audio: has_audio"
decodes "no audio" "$F"

probe surround
transcode surround 180p video 320 180 250 mpegts
is "$rc:$(streams "$F")" "0:h264 320x180 yuv420p, aac 48000 2" \
	"5.1: downmixed to stereo"
decodes "5.1" "$F"

probe mono44
transcode mono44 180p video 320 180 250 mpegts
is "$rc:$(streams "$F")" "0:h264 320x180 yuv420p, aac 48000 2" \
	"44.1 kHz mono: stereo 48 kHz"
ok "44.1 kHz mono: audio about 3 s" near "$(ffprobe -v error -select_streams a \
	-show_entries stream=duration -of csv=p=0 "$F")" 3 0.06
decodes "44.1 kHz mono" "$F"

probe tenbit
transcode tenbit 180p video 320 180 250 mpegts
is "$rc:$(streams "$F")" "0:h264 320x180 yuv420p" "10-bit: 8-bit 4:2:0 out"
is "$(json "$out" 'd["transcode"]["codec_profile"]')" high "10-bit: High profile"
decodes "10-bit" "$F"

probe ntsc
transcode ntsc 180p video 320 180 250 mpegts
is "$rc" 0 "29.97 fps: exit 0"
is "$(keyframes "$F")" "0.000000 1.001000 2.002000" \
	"29.97 fps: keyframes on the first frame at or after each boundary"
is "$(json "$out" 'd["transcode"]["frames"]')" 90 "29.97 fps: 90 frames"
decodes "29.97 fps" "$F"

probe odd
transcode odd 180p video 320 180 250 mpegts
is "$rc:$(streams "$F")" "0:h264 320x180 yuv420p" "641x361 4:4:4: scaled"
decodes "641x361" "$F"

probe rot
rotation=$(json "$T/rot-probe.out" 'd["probe"]["video"]["rotation"]')
transcode rot 180p video 180 320 250 mpegts
is "$rc:$(streams "$F")" "0:h264 180x320 yuv420p" \
	"rotation $rotation: portrait output"
is "$(ffprobe -v error -select_streams v -show_entries stream_side_data=rotation \
	-of csv=p=0 "$F")" "" "rotation: pixels turned, no display matrix left"
# Frame 0 against ffmpeg's own autorotation of the source, same size.
ffmpeg -nostdin -v error -i "$T/rot.mp4" -vf scale=180:320 -frames:v 1 \
	-f rawvideo -pix_fmt gray -y "$T/rot-ref.gray" &&
	ffmpeg -nostdin -v error -i "$F" -frames:v 1 -f rawvideo -pix_fmt gray \
		-y "$T/rot-out.gray"
ok "rotation: turned the way ffmpeg autorotates" "$PY" -c 'import sys
a = open(sys.argv[1], "rb").read(); b = open(sys.argv[2], "rb").read()
diff = sum(abs(x - y) for x, y in zip(a, b)) / max(len(a), 1)
print("mean abs diff", diff); sys.exit(len(a) != len(b) or diff > 8)' \
	"$T/rot-ref.gray" "$T/rot-out.gray"
decodes "rotation" "$F"

# --- a non-media input fails clearly ---------------------------------------
cp "$T/base-probe.out" "$T/text-probe.out"
"$PY" -c 'import json, sys
d = json.load(open(sys.argv[1])); d["input"]["path"] = sys.argv[2]
json.dump(d, open(sys.argv[1], "w"))' "$T/text-probe.out" "$T/text.mp4"
transcode text 180p video 320 180 250 mpegts
is "$rc" 1 "text file: exit 1 (FAIL)"
like "$msg" "^cannot open '.*text\.mp4': Invalid data" "text file: clear message"
ok "text file: no output left behind" \
	sh -c '! ls "$1"/work-text/rungs/180p/* 2>/dev/null | grep -q .' sh "$T"

done_testing
