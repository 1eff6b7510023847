#!/bin/sh
# t0350-filters.sh - the libavfilter stages of issue 16, end to end with
# `ladderd run` on generated 2 s clips:
#  * deinterlacing: an MPEG-2 TS woven top field first (tinterlace) says
#    "tt"; the shared decoder (and a rung decoding alone) runs bwdif, and
#    idet on the output counts (nearly) no interlaced frame where the
#    source counts nearly all; with video.deinterlace = "off" the output
#    stays interlaced; an MPEG-4 Part 2 source has no field order, so idet
#    over the first frames decides; a progressive H.264 source is not
#    filtered at all (and "on" forces it);
#  * loudness: a quiet (-35 LUFS) and a loud (-8 LUFS) source come out at
#    audio.loudness = -16 within 1 LU (ebur128 on the audio rendition);
#  * HDR: a PQ source (BT.2020, SMPTE 2084 tags) comes out tagged BT.709
#    with its mean luma in a sane SDR range; an HLG one is tagged BT.709;
#  * status.json says why: source {interlaced, field_order,
#    interlace_source, hdr, loudness} and each rendition's filters.
. "$(dirname "$0")/lib.sh"

require ffmpeg ffprobe ladderd

LADDER='ladder = ( { name = "240p"; height = 240; bitrate = 500; },
                   { name = "180p"; height = 180; bitrate = 300; } );'
write_conf "$T/ladderd.conf" "
profiles = {
  shared = { segment_duration = 1; video = { preset = \"ultrafast\"; };
    $LADDER };
  alone = { segment_duration = 1; shared_decode = false;
    video = { preset = \"ultrafast\"; }; $LADDER };
  off = { segment_duration = 1; video = { preset = \"ultrafast\";
    deinterlace = \"off\"; }; $LADDER };
  on = { segment_duration = 1; shared_decode = false;
    video = { preset = \"ultrafast\"; deinterlace = \"on\"; };
    ladder = ( { name = \"240p\"; height = 240; bitrate = 500; } ); };
  loud = { segment_duration = 1; video = { preset = \"ultrafast\"; };
    audio = { loudness = -16.0; };
    ladder = ( { name = \"180p\"; height = 180; bitrate = 300; } ); };
};"

# --- media: 2 s, 320x240 ------------------------------------------------
MOVING="testsrc2=size=320x240:rate=50:duration=2"
WEAVE="tinterlace=mode=interleave_top,setfield=tff"
mkclip "$T/tff.ts" -f lavfi -i "$MOVING" -vf "$WEAVE" -c:v mpeg2video \
	-flags +ilme+ildct -top 1 -b:v 3M -f mpegts &&
mkclip "$T/nofo.mp4" -f lavfi -i "$MOVING" -vf "$WEAVE" -c:v mpeg4 \
	-q:v 2 &&
mkclip "$T/prog.mp4" -f lavfi -i testsrc2=size=320x240:rate=25:duration=2 \
	-c:v libx264 -preset ultrafast -pix_fmt yuv420p &&
mkclip "$T/pq.mp4" -f lavfi -i testsrc2=size=320x240:rate=25:duration=2 \
	-vf format=yuv420p10le -c:v libx264 -preset ultrafast \
	-color_primaries bt2020 -color_trc smpte2084 -colorspace bt2020nc &&
mkclip "$T/hlg.mp4" -f lavfi -i testsrc2=size=320x240:rate=25:duration=1 \
	-vf format=yuv420p10le -c:v libx264 -preset ultrafast \
	-color_primaries bt2020 -color_trc arib-std-b67 -colorspace bt2020nc &&
# sine is 1/8 full scale (-18 dBFS, about -21.8 LUFS stereo at 440 Hz).
for l in quiet:-13.2 loud:13.8; do
	mkclip "$T/${l%%:*}.mp4" \
		-f lavfi -i testsrc2=size=320x240:rate=25:duration=2 \
		-f lavfi -i "sine=frequency=440:sample_rate=48000:duration=2,volume=${l#*:}dB" \
		-ac 2 -c:v libx264 -preset ultrafast -pix_fmt yuv420p \
		-c:a aac -b:a 192k -shortest || exit 1
done || bail_out "cannot make test clips with ffmpeg"

# run PROFILE SRC ID: ladderd run; $T/ID.err is its log, $S its status.
run() {
	LADDERD_VERBOSE=1 "$LADDERD" run -c "$T/ladderd.conf" -p "$1" "$T/$2" \
		-o "$T/out" --task-id "$3" >"$T/$3.out" 2>"$T/$3.err"
	rc=$?
	S="$T/out/.ladderd/status/$3/status.json"
}
# idet_share FILE: per cent of frames idet calls interlaced (multi-frame).
idet_share() {
	ffmpeg -nostdin -hide_banner -nostats -i "$1" -vf idet -f null - 2>&1 |
		sed -n 's/.*Multi frame detection: TFF: *\([0-9]*\) *BFF: *\([0-9]*\) *Progressive: *\([0-9]*\).*/\1 \2 \3/p' |
		awk '{ n = $1 + $2 + $3; print n ? int(100 * ($1 + $2) / n) : -1 }'
}
lufs() {
	ffmpeg -nostdin -hide_banner -nostats -i "$1" -af ebur128 -f null - 2>&1 |
		awk '/Integrated loudness/ { f = 1 } f && $1 == "I:" { print $2; exit }'
}
within() { awk -v a="$1" -v b="$2" -v d="$3" 'BEGIN { exit !(a - b <= d && b - a <= d) }'; }

# --- deinterlacing -------------------------------------------------------
src_share=$(idet_share "$T/tff.ts")
ok "the woven source is interlaced to idet ($src_share %)" test "$src_share" -ge 80

run shared tff.ts sh
is "$rc" 0 "interlaced TS, shared decode: the run completes"
is "$(json "$S" 'd["source"]["field_order"] + " " + d["source"]["interlace_source"] + " " + str(d["source"]["interlaced"])')" \
	"tt stream True" "status: field order tt from the stream, interlaced"
like "$(cat "$T/sh.err")" 'shared decoder for 2 rungs' "one decoder for both rungs"
is "$(json "$S" '[r["decoder"] + ":" + r["filters"] for r in d["renditions"]]')" \
	'["shared:bwdif=mode=send_frame:parity=tff:deint=all", "shared:bwdif=mode=send_frame:parity=tff:deint=all"]' \
	"both rungs read the shared decoder's bwdif output (top field first)"
for r in 240p 180p; do
	s=$(idet_share "$T/out/sh/$r/index.m3u8")
	ok "rung $r is progressive to idet ($s % interlaced, source $src_share %)" test "$s" -ge 0 -a "$s" -le 20
	is "$(ffprobe -v error -count_frames -select_streams v -show_entries stream=nb_read_frames -of csv=p=0 "$T/out/sh/$r/index.m3u8" | grep . | head -n 1)" \
		50 "rung $r keeps the frame count (bwdif sends one frame per frame)"
done

run alone tff.ts al
is "$rc" 0 "interlaced TS, one decoder per rung: the run completes"
s=$(idet_share "$T/out/al/240p/index.m3u8")
ok "a rung decoding alone deinterlaces too ($s %)" test "$s" -ge 0 -a "$s" -le 20

run off tff.ts of
is "$rc" 0 "deinterlace = off: the run completes"
is "$(json "$S" '[r.get("filters", "") for r in d["renditions"]]')" '["", ""]' \
	"deinterlace = off: no filters"
s=$(idet_share "$T/out/of/240p/index.m3u8")
ok "deinterlace = off keeps the combing ($s % interlaced)" test "$s" -ge 60

run shared nofo.mp4 nf
is "$rc" 0 "no field order in the stream: the run completes"
is "$(json "$S" 'd["source"]["field_order"] + " " + d["source"]["interlace_source"] + " " + str(d["source"]["interlaced"])')" \
	"unknown idet True" "status: idet found the interlacing"
is "$(json "$S" 'd["renditions"][0]["filters"]')" \
	"bwdif=mode=send_frame:parity=tff:deint=all" "idet's field order (top first) drives bwdif"
s=$(idet_share "$T/out/nf/240p/index.m3u8")
ok "and the output is progressive ($s %)" test "$s" -ge 0 -a "$s" -le 20

run shared prog.mp4 pg
is "$rc" 0 "progressive H.264: the run completes"
is "$(json "$S" 'str(d["source"]["interlaced"]) + " " + d["source"]["interlace_source"] + " " + str([r.get("filters", "") for r in d["renditions"]])')" \
	"False stream ['', '']" "a progressive source is not filtered"
run on prog.mp4 fo
is "$(json "$S" 'd["renditions"][0].get("filters", "")')" \
	"bwdif=mode=send_frame:parity=auto:deint=all" "deinterlace = on forces bwdif (parity from the frames)"

# --- loudness ------------------------------------------------------------
for l in quiet:-35 loud:-8; do
	n=${l%%:*}
	got=$(lufs "$T/$n.mp4")
	ok "the $n source measures ${l#*:} LUFS ($got)" within "$got" "${l#*:}" 1
	run loud "$n.mp4" "l$n"
	is "$rc" 0 "$n source, audio.loudness = -16: the run completes"
	m=$(json "$S" 'd["source"]["loudness"]["integrated"]')
	ok "status: the probe measured $m LUFS" within "$m" "${l#*:}" 1
	got=$(lufs "$T/out/l$n/audio/index.m3u8")
	ok "the $n source's audio comes out at $got LUFS (-16 +- 1)" within "$got" -16 1
done
run shared loud.mp4 ln
got=$(lufs "$T/out/ln/audio/index.m3u8")
ok "without audio.loudness the loud source stays loud ($got LUFS)" within "$got" -8 1

# --- HDR to SDR ----------------------------------------------------------
run shared pq.mp4 hd
is "$rc" 0 "PQ source: the run completes"
is "$(json "$S" 'd["source"]["hdr"] + " " + d["source"]["color_transfer"]')" \
	"pq smpte2084" "status: the source is PQ"
is "$(ffprobe -v error -select_streams v -show_entries stream=color_primaries,color_transfer,color_space,pix_fmt -of csv=p=0 "$T/out/hd/240p/index.m3u8" | grep . | head -n 1)" \
	"yuv420p,bt709,bt709,bt709" "the rung is 8-bit 4:2:0 tagged BT.709"
y=$(ffmpeg -nostdin -hide_banner -i "$T/out/hd/240p/index.m3u8" \
	-vf signalstats,metadata=print:key=lavfi.signalstats.YAVG:file=- -f null - 2>/dev/null |
	awk -F= '/YAVG/ { s += $2; n++ } END { if (n) printf "%d", s / n }')
ok "tone mapped mean luma $y is in an SDR range (40..180)" test "${y:-0}" -ge 40 -a "${y:-0}" -le 180
run shared hlg.mp4 hg
is "$rc" 0 "HLG source: the run completes"
is "$(json "$S" 'd["source"]["hdr"] + " " + d["renditions"][0]["filters"].split(",")[0]')" \
	"hlg zscale=tin=arib-std-b67:pin=bt2020:min=bt2020nc:t=linear:npl=100" \
	"status: HLG, tone mapped from its own transfer and BT.2020"
is "$(ffprobe -v error -select_streams v -show_entries stream=color_primaries,color_transfer,color_space -of csv=p=0 "$T/out/hg/240p/index.m3u8" | grep . | head -n 1)" \
	"bt709,bt709,bt709" "the HLG rung is tagged BT.709"

done_testing
