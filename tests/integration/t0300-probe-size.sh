#!/bin/sh
# t0300-probe-size.sh - the probe, hls_header and target_size stages alone
# (`ladderd stage`), chained the way the engine chains them: probe a
# generated clip, build the ladder from its output, size each rung.
# Asserts probe facts (size, SAR, rotation, frame rate, audio choice), rung
# sizes (short side = rung height, portrait stays portrait, even numbers, no
# upscaling, lowest rung kept when all are above the source), and the clear
# error of each bad source: empty, not media, truncated, undecodable, no
# video, no decoder.
. "$(dirname "$0")/lib.sh"

require python3 ffmpeg ffprobe ladderd

write_conf "$T/ladderd.conf"

# --- media -------------------------------------------------------------
V="-c:v libx264 -preset ultrafast -pix_fmt yuv420p"
mkclip "$T/hd.mp4" -f lavfi -i testsrc2=size=1280x720:rate=25:duration=2 \
	-f lavfi -i sine=frequency=440:sample_rate=48000:duration=2 \
	$V -c:a aac -shortest &&
mkclip "$T/fhd.mp4" -f lavfi \
	-i testsrc2=size=1920x1080:rate=30000/1001:duration=1 $V &&
mkclip "$T/rot.mp4" -i "$T/fhd.mp4" -c copy -metadata:s:v:0 rotate=90 &&
mkclip "$T/sar.mp4" -f lavfi -i testsrc2=size=720x576:rate=25:duration=1 \
	-vf setsar=16/15 $V &&
mkclip "$T/small.mp4" -f lavfi -i testsrc2=size=320x240:rate=25:duration=1 \
	$V &&
mkclip "$T/fs.mp4" -f lavfi -i testsrc2=size=640x360:rate=25:duration=2 \
	-f lavfi -i sine=duration=2 $V -c:a aac -shortest -movflags +faststart &&
mkclip "$T/audio.m4a" -f lavfi -i sine=duration=1 -c:a aac &&
mkclip "$T/nodec.nut" -f lavfi -i testsrc=size=320x200:rate=25:duration=1 \
	-c:v a64multi -f nut ||
	bail_out "cannot make test clips with ffmpeg"
: >"$T/empty.mp4"
echo "just some text, not a video" >"$T/x.mp4"
# Cut upload: the moov (at the front) survives, 70% of the samples do not.
fsz=$(wc -c <"$T/fs.mp4")
head -c $((fsz * 30 / 100)) "$T/fs.mp4" >"$T/trunc.mp4"
# Complete file, but every byte of the mdat payload zeroed: opens, indexes
# fine, nothing decodes.
python3 - "$T/fs.mp4" "$T/zero.mp4" <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
i = 0
while i < len(b):
    size, typ = struct.unpack(">I4s", b[i:i + 8])
    if typ == b"mdat":
        b[i + 8:i + size] = bytes(size - 8)
        break
    i += size
open(sys.argv[2], "wb").write(b)
PY

# --- helpers -----------------------------------------------------------
# probe NAME FILE: probe FILE with the context $T/NAME.json.
probe() {
	printf '{ "input": { "path": "%s" } }\n' "$2" >"$T/$1.json"
	stage probe "$1"
}
# jset IN OUT PYTHON: $T/OUT.json = the context in $T/IN, without its
# error, changed by PYTHON on `d`.
jset() {
	"$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
d.pop("error", None)
exec(sys.argv[3])
json.dump(d, open(sys.argv[2], "w"))' "$T/$1" "$T/$2.json" "$3"
}
PROFILE='d["profile"] = {"segment_type": "fmp4", "allow_upscale": False,
    "audio": {"bitrate": 128}, "ladder": [
    {"name": "1080p", "height": 1080, "bitrate": 5000},
    {"name": "720p", "height": 720, "bitrate": 3000},
    {"name": "480p", "height": 480, "bitrate": 1500},
    {"name": "360p", "height": 360, "bitrate": 800}]}'
# size IN RUNG: target_size for the rung named RUNG of the context in $T/IN
# (one with a ladder), as $T/<IN without extension>-RUNG.json; sets $ts
# (WxH, or the dropped reason).
size() {
	jset "$1" "${1%.*}-$2" 'd["rung"] = dict([r for r in d["ladder"]
    if r["name"] == "'"$2"'"][0]); d["rung"]["index"] = 0'
	stage target_size "${1%.*}-$2"
	ts=$(json "$out" '(lambda t: t.get("dropped") or "%sx%s" %
    (t.get("width"), t.get("height")))(d.get("target_size", {}))' \
		2>/dev/null)
}

# --- probe: a 1280x720 clip with audio ----------------------------------
probe hd "$T/hd.mp4"
is "$rc" 0 "probe hd: exit 0"
is "$(json "$out" 'd["probe"]["video"]["codec"]')" h264 "probe hd: codec"
is "$(json "$out" '"%(width)dx%(height)d" % d["probe"]["video"]')" \
	1280x720 "probe hd: coded size"
is "$(json "$out" '"%(display_width)dx%(display_height)d %(sar_num)d:%(sar_den)d %(rotation)d" % d["probe"]["video"]')" \
	"1280x720 1:1 0" "probe hd: display size, SAR, rotation"
is "$(json "$out" '"%(fps_num)d/%(fps_den)d %(avg_fps)g %(r_fps)g" % d["probe"]["video"]')" \
	"25/1 25 25" "probe hd: frame rate"
is "$(json "$out" '"%(pix_fmt)s %(bit_depth)d %(interlaced)s %(field_order)s" % d["probe"]["video"]')" \
	"yuv420p 8 False progressive" "probe hd: pixel format, depth, scan"
is "$(json "$out" 'abs(d["probe"]["duration"] - 2) < 0.1')" true \
	"probe hd: duration about 2 s"
is "$(json "$out" 'abs(d["probe"]["video"]["nb_frames"] - 50) <= 1')" true \
	"probe hd: about 50 frames"
is "$(json "$out" '"%s %s %s" % (d["probe"]["has_audio"], d["probe"]["audio_index"], d["probe"]["audio"][0]["codec"])')" \
	"True 1 aac" "probe hd: audio stream chosen"
is "$(json "$out" 'd["probe"]["size"] == '"$(wc -c <"$T/hd.mp4")")" true \
	"probe hd: file size"

# --- hls_header: the ladder from the profile ----------------------------
jset hd.out hd-lad "$PROFILE"
stage hls_header hd-lad
is "$rc" 0 "hls_header fmp4: exit 0"
is "$(json "$out" '" ".join("%s:%s" % (r["name"], r["kind"]) for r in d["ladder"])')" \
	"1080p:video 720p:video 480p:video 360p:video audio:audio" \
	"hls_header fmp4: video rungs then the audio rung"
is "$(json "$out" '"%(version)d %(independent_segments)s" % d["hls_header"]')" \
	"6 True" "hls_header fmp4: EXT-X-VERSION 6 (EXT-X-MAP)"
jset hd.out hd-ts "$PROFILE"'; d["profile"]["segment_type"] = "mpegts"'
stage hls_header hd-ts
is "$(json "$out" '"%d %d" % (len(d["ladder"]), d["hls_header"]["version"])')" \
	"4 3" "hls_header mpegts: no audio rung, EXT-X-VERSION 3"
jset hd.out hd-bad "$PROFILE"'; d["profile"]["ladder"][1]["name"] = "audio"'
stage hls_header hd-bad
ok "hls_header: a video rung named audio fails" [ "$rc" != 0 ]
like "$msg" "names? 'audio'.* (is|are) reserved" "hls_header: says the name is reserved"
jset hd.out hd-bad2 "$PROFILE"'; d["profile"]["ladder"][0]["name"] = "../x"'
stage hls_header hd-bad2
like "$msg" "name '\.\./x' is not" "hls_header: refuses a path as rung name"

# --- target_size on the 1280x720 source ---------------------------------
size hd-lad.out 1080p
is "$rc" 0 "target_size 1080p: exit 0 (STOP)"
is "$ts" "1080p is above the source (720 lines)" "target_size 1080p: dropped"
size hd-lad.out 720p
is "$ts" 1280x720 "target_size 720p: 1280x720"
is "$(json "$out" 'd["target_size"]["bitrate"]')" 3000 \
	"target_size 720p: the rung's bitrate"
size hd-lad.out 480p
is "$ts" 854x480 "target_size 480p: 854x480 (even, nearest)"
size hd-lad.out 360p
is "$ts" 640x360 "target_size 360p: 640x360"
size hd-lad.out audio
is "$rc" 0 "target_size audio: exit 0 (SKIP)"
is "$(json "$out" '"target_size" in d')" false \
	"target_size audio: nothing added"

# --- rotation: 1920x1080 with a quarter-turn display matrix -------------
probe rot "$T/rot.mp4"
is "$rc" 0 "probe rot: exit 0"
# ffprobe prints av_display_rotation_get() (counterclockwise); ours is
# clockwise.
want=$(ffprobe -v error -select_streams v:0 \
	-show_entries stream_side_data=rotation -of csv=p=0 "$T/rot.mp4" |
	awk 'NF { r = (-int($1)) % 360; if (r < 0) r += 360; print r; exit }')
is "$(json "$out" 'd["probe"]["video"]["rotation"]')" "$want" \
	"probe rot: clockwise rotation matches the display matrix"
is "$(json "$out" '"%(width)dx%(height)d -> %(display_width)dx%(display_height)d" % d["probe"]["video"]')" \
	"1920x1080 -> 1080x1920" "probe rot: displayed portrait"
is "$(json "$out" '"%(fps_num)d/%(fps_den)d" % d["probe"]["video"]')" \
	30000/1001 "probe rot: NTSC frame rate"
is "$(json "$out" '"%(has_audio)s %(audio_index)d" % d["probe"]')" \
	"False -1" "probe rot: no audio"
jset rot.out rot-lad "$PROFILE"
stage hls_header rot-lad
is "$(json "$out" 'len(d["ladder"])')" 4 "hls_header: no audio rung without audio"
size rot-lad.out 720p
is "$ts" 720x1280 "target_size rot 720p: portrait 720x1280"
size rot-lad.out 1080p
is "$ts" 1080x1920 "target_size rot 1080p: short side 1080 fits"

# --- non-square pixels: 720x576 with SAR 16:15 --------------------------
probe sar "$T/sar.mp4"
is "$(json "$out" '"%(sar_num)d:%(sar_den)d %(display_width)dx%(display_height)d" % d["probe"]["video"]')" \
	"16:15 768x576" "probe sar: display 768x576"
jset sar.out sarl "$PROFILE"'; d["ladder"] = [dict(r, kind="video") for r in d["profile"]["ladder"]]'
size sarl.json 360p
is "$ts" 480x360 "target_size sar 360p: 480x360"
size sarl.json 720p
is "$ts" "720p is above the source (576 lines)" "target_size sar 720p: dropped"

# --- every rung above the source: the lowest is kept ---------------------
probe small "$T/small.mp4"
jset small.out smalll "$PROFILE"'; d["ladder"] = [dict(r, kind="video") for r in d["profile"]["ladder"]]'
size smalll.json 360p
is "$rc" 0 "target_size small 360p: exit 0"
is "$ts" 320x240 "target_size small 360p: kept at the source's 240 lines"
is "$(json "$out" 'd["target_size"]["bitrate"]')" 800 \
	"target_size small 360p: keeps its own bitrate"
size smalll.json 480p
is "$ts" "480p is above the source (240 lines)" "target_size small 480p: dropped"
jset smalll.json smallu 'd["profile"]["allow_upscale"] = True'
size smallu.json 1080p
is "$ts" 1440x1080 "target_size allow_upscale: 1080p kept, 4:3"

# --- bad sources ----------------------------------------------------------
probe empty "$T/empty.mp4"
ok "probe empty: fails" [ "$rc" != 0 ]
like "$msg" "source file is empty" "probe empty: says so"
probe text "$T/x.mp4"
ok "probe text as .mp4: fails" [ "$rc" != 0 ]
like "$msg" "'$T/x.mp4' is not a media file libavformat can read: " \
	"probe text as .mp4: not a media file"
probe trunc "$T/trunc.mp4"
ok "probe truncated: fails" [ "$rc" != 0 ]
like "$msg" "source file is truncated: its index needs [0-9]+ bytes" \
	"probe truncated: says truncated"
probe zero "$T/zero.mp4"
ok "probe zeroed mdat: fails" [ "$rc" != 0 ]
like "$msg" "^cannot decode video: " "probe zeroed mdat: cannot decode video"
probe audio "$T/audio.m4a"
is "$rc" 0 "probe audio only: an audio-only source (t0375 packages it)"
is "$(json "$out" '[d["probe"]["audio_only"], d["probe"]["has_audio"], "video" in d["probe"]]')" \
	"[true, true, false]" "probe audio only: probe.audio_only, has_audio, no video"
probe nodec "$T/nodec.nut"
ok "probe no decoder: fails" [ "$rc" != 0 ]
like "$msg" "no decoder for the video codec" "probe no decoder: says so"
probe missing "$T/nope.mp4"
like "$msg" "cannot open '$T/nope.mp4': No such file" "probe missing file"

done_testing
