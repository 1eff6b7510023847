#!/bin/sh
# t0510-tracks-playback: subtitle and audio tracks in real players (issue 15,
# items 3 and 4), headless Chromium driven by tests/playback/tracks.mjs with
# the harness of t0500 (hls.js, dash.js, Shaka Player on the MPD and on the
# master playlist). One 6 s source with two audio tracks (eng 440 Hz, the
# default; fra 1000 Hz) and two mov_text subtitle tracks (eng, fra), packaged
# in fMP4 and in MPEG-TS mode. For every player and package:
#   - the subtitle tracks are listed with their languages, and each one,
#     selected and played from 0 to the end, shows cues whose start times
#     are the source's subtitle events (ffprobe of the source) within 50 ms;
#     for MPEG-TS in the HLS players, plus the picture's own delay there
#     (the x264 reorder delay kept in the TS timestamps, measured from the
#     first segment: X-TIMESTAMP-MAP puts the cues with the picture);
#   - (fMP4) both audio tracks are listed with their languages, and
#     selecting each, in turn and back again, changes the decoded sound to
#     that track's tone (WebAudio analyser on the element: peak frequency
#     within 3 %);
#   - no fatal player error.
# Needs what t0500 needs (chromium, tests/playback/node_modules: installed
# by tests/playback/install.sh); skips without network outside CI.
# LADDERD_PLAYBACK=0 skips it. Findings: tests/playback/NOTES.md.
. "$(dirname "$0")/lib.sh"

[ "${LADDERD_PLAYBACK:-1}" = 0 ] && skip_all "LADDERD_PLAYBACK=0"
require ffmpeg ffprobe node ladderd
install_players
rc=$?
[ $rc = 77 ] &&
	skip_all "cannot install the playback dependencies (no network): $PLAYERS_WHY"
[ $rc = 0 ] || done_testing

cat >"$T/en.srt" <<'EOF'
1
00:00:00,500 --> 00:00:01,500
Hello

2
00:00:02,250 --> 00:00:03,100
Second

3
00:00:04,700 --> 00:00:05,600
Third
EOF
cat >"$T/fr.srt" <<'EOF'
1
00:00:01,000 --> 00:00:02,000
Un

2
00:00:03,300 --> 00:00:04,400
Deux
EOF
DUR=6
mkclip "$T/src.mp4" -f lavfi -i testsrc2=size=320x180:rate=25:duration=$DUR \
	-f lavfi -i sine=frequency=440:sample_rate=48000:duration=$DUR \
	-f lavfi -i sine=frequency=1000:sample_rate=48000:duration=$DUR \
	-i "$T/en.srt" -i "$T/fr.srt" -map 0 -map 1 -map 2 -map 3 -map 4 \
	-c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -c:s mov_text \
	-metadata:s:a:0 language=eng -metadata:s:a:1 language=fra \
	-metadata:s:s:0 language=eng -metadata:s:s:1 language=fra \
	-disposition:a:0 default -disposition:a:1 0 -disposition:s:0 default
SEG='segment_duration = 2; ladder = ( { name = "180p"; height = 180; bitrate = 300; } );'
write_conf "$T/ladderd.conf" "
profiles = { f = { $SEG }; t = { segment_type = \"mpegts\"; $SEG }; };"
for p in f t; do
	"$LADDERD" run -c "$T/ladderd.conf" -p $p "$T/src.mp4" -o "$T/out" \
		--task-id "pkg-$p" >"$T/$p.out" 2>&1
	_report $? "ladderd run builds the $p package" "$(tail -n 5 "$T/$p.out")"
done

# starts STREAM: the source's subtitle event starts (s), comma-separated
# (ffprobe; mov_text's empty gap samples left out).
starts() {
	ffprobe -v error -select_streams "$1" -show_entries packet=pts_time,size \
		-of csv=p=0 "$T/src.mp4" | awk -F, '$2 > 2 { printf "%s%g", n++ ? "," : "", $1 }'
}
SUBS="eng=$(starts s:0);fra=$(starts s:1)"
echo "# source subtitle events: $SUBS"
# The picture's delay in HLS players on the TS package (t0500's ts_delay,
# in seconds): first video PTS minus the lowest first DTS of the segment.
TSD=$("$PY" - "$T/out/pkg-t/180p/seg_00000.ts" <<'PY'
import json, subprocess, sys
pk = json.loads(subprocess.run(['ffprobe', '-v', 'error', '-show_entries',
    'packet=codec_type,pts_time,dts_time', '-of', 'json', sys.argv[1]],
    capture_output=True, text=True).stdout)['packets']
first = {}
for p in pk:
    first.setdefault(p['codec_type'], p)
print(round(float(first['video']['pts_time']) - min(float(p['dts_time']) for p in first.values()), 3))
PY
)
echo "# mpegts: HLS players show the picture (and so the cues) $TSD s late"

# play NAME LABEL DRIVER-ARGS...: serve out/NAME, run tracks.mjs.
play() {
	local name=$1 label=$2 srv port
	shift 2
	"$PY" "$PB/serve.py" "$T/out/$name" --port-file "$T/$name.port" \
		--lifetime $((300 * MULT)) >"$T/$name.serve" 2>&1 &
	srv=$!
	wait_for 10 test -s "$T/$name.port"
	port=$(cat "$T/$name.port" 2>/dev/null)
	if [ -z "$port" ]; then
		echo "serve.py did not start" >"$T/$name.drive.err"
		kill "$srv" 2>/dev/null
		return 1
	fi
	timeout $((240 * MULT)) node "$PB/tracks.mjs" --base "http://127.0.0.1:$port" \
		--label "$label" --duration $DUR --rate 2 --tolerance 0.05 "$@" \
		>"$T/$name.drive" 2>"$T/$name.drive.err"
	kill "$srv" 2>/dev/null
	wait "$srv" 2>/dev/null
}
report() { # NAME MIN-CHECKS
	driver_results "$T/$1.drive"
	[ "$DRIVER_CHECKS" -ge "$2" ]
	_report $? "$1: the driver checked every player ($DRIVER_CHECKS checks)" \
		"$(tail -n 20 "$T/$1.drive.err")"
}

# Both drivers at once: they mostly wait for real-time playback.
play pkg-f fmp4 --subs "$SUBS" --audio 'eng=440;fra=1000' &
play pkg-t mpegts --subs "$SUBS" --sub-offset "hls=$TSD,shaka-hls=$TSD" &
wait
# fMP4: 4 players x (load, subs listed, 2 cue checks, audio listed, 4
# switches, no fatal error); TS: 4 x (load, listed, 2 cue checks, no error).
report pkg-f 40
report pkg-t 20
done_testing
