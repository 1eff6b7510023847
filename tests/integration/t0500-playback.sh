#!/bin/sh
# t0500-playback: the package plays in real players in a real browser
# (README "Playing the result"): hls.js, dash.js and Shaka Player (on the MPD and on the
# master playlist) in Debian's headless Chromium driven by playwright-core
# (tests/playback). Three packages of a 6 s 1280x720 testsrc2 + tone source
# (BT.709-tagged, 2 s segments, ladder 720p/480p/360p): fmp4 (CMAF shared
# by HLS and DASH, audio its own rendition), mpegts (muxed TS for HLS,
# fMP4 copies for DASH), the source with rotate=90 metadata (portrait
# rungs) and av1mix: AV1 (SVT-AV1) 720p and 360p with H.264 480p in one
# fMP4 master (issue 16: Chromium decodes av01 in MSE, players pick a
# variant by CODECS); chunked: the fmp4 package with chunk_duration 2
# (issue 12), so every segment boundary is a chunk boundary that the
# players play and seek through. For every player and package: the manifest loads with the
# expected rungs; it plays from 0 to `ended` at the source's duration;
# seeks to the start, middle and near the end play through; each rung,
# forced with ABR off, presents frames of its own size; audio is decoded
# and the player gave audio and video the same SourceBuffer
# timestampOffset (A/V relation kept); the top rung's picture at three frames matches ffmpeg's decode of the
# same source frame (PSNR >= 30 dB), and it is the frame of that time (for
# MPEG-TS in HLS players: the B-frame delay later, measured from the
# segment, see ts_delay); no fatal player error. One TAP line
# per player x package x check; the figures (durations, sizes, PSNR per
# frame, buffered ranges) are printed as comments.
#
# Needs Debian's chromium and tests/playback/node_modules: the test runs
# tests/playback/install.sh first. With no network to install from it
# skips, except in CI (CI=true), where it fails. LADDERD_PLAYBACK=0 skips it.
# LADDERD_PLAYBACK_TAMPER=CMD runs CMD (with $PKG = the package folder) on
# every package before it is played: the negative proofs, by hand.
# LADDERD_PLAYBACK_KNOWN lists known player problems (see KNOWN below).
# Findings and their causes: tests/playback/NOTES.md.
. "$(dirname "$0")/lib.sh"

[ "${LADDERD_PLAYBACK:-1}" = 0 ] && skip_all "LADDERD_PLAYBACK=0"
require ffmpeg ffprobe ladderd
require node

# --- the browser and the players ---------------------------------------
install_players
rc=$?
[ $rc = 77 ] &&
	skip_all "cannot install the playback dependencies (no network): $PLAYERS_WHY"
[ $rc = 0 ] || done_testing

# --- sources and packages ------------------------------------------------
DUR=6
mkclip "$T/src.mp4" -f lavfi -i testsrc2=size=1280x720:rate=25:duration=$DUR \
	-f lavfi -i sine=frequency=440:sample_rate=48000:duration=$DUR \
	-c:v libx264 -preset ultrafast -pix_fmt yuv420p \
	-colorspace bt709 -color_primaries bt709 -color_trc bt709 \
	-c:a aac -shortest
ffmpeg -nostdin -hide_banner -loglevel error -y -i "$T/src.mp4" -c copy \
	-metadata:s:v:0 rotate=90 "$T/rot.mp4"

LADDER='segment_duration = 2; dash = true;
    ladder = ( { name = "720p"; height = 720; bitrate = 2000; },
               { name = "480p"; height = 480; bitrate = 1000; },
               { name = "360p"; height = 360; bitrate = 600; } );'
write_conf "$T/ladderd.conf" "
profiles = {
  f = { segment_type = \"fmp4\"; $LADDER };
  t = { segment_type = \"mpegts\"; $LADDER };
  c = { segment_type = \"fmp4\"; chunk_duration = 2; $LADDER };
  m = { segment_type = \"fmp4\"; segment_duration = 2; dash = true;
    ladder = ( { name = \"720p\"; height = 720; bitrate = 2000; codec = \"libsvtav1\"; },
               { name = \"480p\"; height = 480; bitrate = 1000; },
               { name = \"360p\"; height = 360; bitrate = 600; codec = \"libsvtav1\"; } ); };
};"

# package NAME PROFILE SOURCE
package() {
	"$LADDERD" run -c "$T/ladderd.conf" -p "$2" "$3" -o "$T/out" \
		--task-id "$1" >"$T/$1.out" 2>"$T/$1.err"
	local rc=$?
	_report $rc "ladderd run builds the $1 package" \
		"exit $rc: $(tail -n 15 "$T/$1.err")"
	# Negative proofs by hand (never in the suite): break the package
	# before the players see it, e.g.
	#   LADDERD_PLAYBACK_TAMPER='rm "$PKG/720p/seg_00001.m4s"'
	if [ $rc = 0 ] && [ -n "${LADDERD_PLAYBACK_TAMPER:-}" ]; then
		PKG="$T/out/$1" sh -c "$LADDERD_PLAYBACK_TAMPER"
		echo "# TAMPERED $1 with: $LADDERD_PLAYBACK_TAMPER"
	fi
	return $rc
}

# ts_delay PACKAGE: in frames, how late HLS players show the picture of
# an MPEG-TS package: the first video PTS minus the lowest first DTS of
# the segment's streams. TS has no edit list, so the B-frame delay stays
# in the timestamps, and hls.js and Shaka put the lowest DTS at time 0
# (DASH and fMP4 carry the delay in the edit list: no offset there).
ts_delay() {
	"$PY" - "$T/out/$1/720p/seg_00000.ts" <<'PY'
import json, subprocess, sys
out = subprocess.run(['ffprobe', '-v', 'error', '-show_entries',
                      'packet=codec_type,pts_time,dts_time', '-of', 'json',
                      sys.argv[1]], capture_output=True, text=True).stdout
pk = json.loads(out)['packets']
first = {}
for p in pk:
    first.setdefault(p['codec_type'], p)
vpts = float(first['video']['pts_time'])
dts0 = min(float(p['dts_time']) for p in first.values())
print(round((vpts - dts0) * 25))
PY
}

# play NAME RUNGS SOURCE [DRIVER ARGS]: serve the package, drive the
# players; writes $T/NAME.drive (the driver's lines) and $T/NAME.drive.err.
play() {
	local name=$1 rungs=$2 src=$3 srv port i=0
	shift 3
	"$PY" "$PB/serve.py" "$T/out/$name" --port-file "$T/$name.port" \
		--lifetime $((300 * MULT)) >"$T/$name.serve" 2>&1 &
	srv=$!
	while [ ! -s "$T/$name.port" ] && [ $i -lt $((100 * MULT)) ]; do
		sleep 0.1
		i=$((i + 1))
	done
	port=$(cat "$T/$name.port" 2>/dev/null)
	if [ -z "$port" ]; then
		echo "serve.py did not start: $(cat "$T/$name.serve")" >"$T/$name.drive.err"
		kill "$srv" 2>/dev/null
		return 1
	fi
	timeout $((240 * MULT)) node "$PB/drive.mjs" --base "http://127.0.0.1:$port" \
		--label "$name" --players hls,dash,shaka-dash,shaka-hls \
		--rungs "$rungs" --duration $DUR --audio 1 --fps 25 \
		--ref-source "$src" --ref-frames 25,75,137 --min-psnr 30 \
		--rate 2 "$@" >"$T/$name.drive" 2>"$T/$name.drive.err"
	local rc=$?
	kill "$srv" 2>/dev/null
	wait "$srv" 2>/dev/null
	return $rc
}

# Known player problems, one per line: an ERE matching check names, a tab,
# the reason. A failing check that matches is reported as TAP `# TODO`
# (an expected failure, not counted); one that passes is reported as
# passing, with a note that the entry can go. Keep this empty unless the
# cause is understood and written down (see tests/playback/NOTES.md).
# Shaka places MPEG-TS audio by the first video DTS instead of its PTS, so
# a B-frame stream's audio is shifted by the reorder delay (58 ms here):
# Shaka's bug, reproduced and written down in tests/playback/NOTES.md.
KNOWN_DEFAULT="$(printf '%s\t%s' \
	'^shaka\(hls\) mpegts: audio and video placed with the same timestamp offset' \
	'Shaka aligns TS audio to the first video DTS, not PTS (B-frames): see tests/playback/NOTES.md')"
KNOWN=${LADDERD_PLAYBACK_KNOWN-$KNOWN_DEFAULT}

# known CHECK: the reason when CHECK is a known problem.
known() {
	[ -n "$KNOWN" ] || return 1
	printf '%s\n' "$KNOWN" | while IFS='	' read -r re why; do
		[ -n "$re" ] || continue
		if printf '%s' "$1" | grep -Eq -- "$re"; then
			printf '%s' "$why"
			return 0
		fi
	done
}

# report NAME: the driver's lines as TAP (R = a check, # = a figure).
report() {
	local name=$1 kind pass check diag why n=0
	[ -f "$T/$name.drive" ] || : >"$T/$name.drive"
	while IFS='	' read -r kind pass check diag; do
		case $kind in
		R)
			n=$((n + 1))
			why=$(known "$check")
			if [ -n "$why" ] && [ "$pass" != 0 ]; then
				_n=$((_n + 1))
				echo "not ok $_n - $check # TODO $why"
				printf '%s\n' "$diag" | sed 's/^/#   /'
				continue
			fi
			[ -n "$why" ] && echo "# (known problem no longer seen: $why)"
			_report "$pass" "$check" "$diag"
			;;
		'#') echo "# $pass${check:+ $check}${diag:+ $diag}" ;;
		esac
	done <"$T/$name.drive"
	# 4 players x (load, play, audio, A/V, seeks, 3 rungs, picture, timing,
	# no fatal error).
	[ "$n" -ge 44 ]
	_report $? "$name: the driver checked every player ($n checks)" \
		"$(tail -n 20 "$T/$name.drive.err")"
}

SECONDS_START=$(date +%s)
package fmp4 f "$T/src.mp4" && ok_f=1 || ok_f=0
package mpegts t "$T/src.mp4" && ok_t=1 || ok_t=0
package rotated f "$T/rot.mp4" && ok_r=1 || ok_r=0
# AV1 (SVT-AV1) at 720p and 360p with H.264 at 480p in one master: the
# players pick by CODECS, Chromium decodes av01 in MSE.
package av1mix m "$T/src.mp4" && ok_m=1 || ok_m=0
# Chunked (chunk_duration = segment_duration): every segment boundary is a
# chunk boundary, each chunk encoded by a unit of its own.
package chunked c "$T/src.mp4" && ok_c=1 || ok_c=0
echo "# packages built in $(($(date +%s) - SECONDS_START)) s"

# The three drivers run at once: each spends most of its time waiting for
# real-time playback, not on the CPU.
LAND=1280x720,854x480,640x360
PORT=720x1280,480x854,360x640
[ $ok_f = 1 ] && { play fmp4 $LAND "$T/src.mp4" & }
if [ $ok_t = 1 ]; then
	TSD=$(ts_delay mpegts)
	echo "# mpegts: HLS players expected to show the picture $TSD frames late (B-frame delay in the TS timestamps)"
	play mpegts $LAND "$T/src.mp4" --frame-offset "hls=$TSD,shaka-hls=$TSD" &
fi
[ $ok_r = 1 ] && { play rotated $PORT "$T/rot.mp4" & }
wait
# After the others: four drivers at once would starve each other's
# real-time playback on 2 cores.
[ $ok_m = 1 ] && play av1mix $LAND "$T/src.mp4"
[ $ok_c = 1 ] && play chunked $LAND "$T/src.mp4"
[ $ok_f = 1 ] && report fmp4
[ $ok_t = 1 ] && report mpegts
[ $ok_r = 1 ] && report rotated
if [ $ok_m = 1 ]; then
	report av1mix
	is "$(grep '^#EXT-X-STREAM-INF' "$T/out/av1mix/master.m3u8" |
		grep -o 'CODECS="[a-z0-9]*' | tr '\n' ' ')" \
		'CODECS="av01 CODECS="avc1 CODECS="av01 ' \
		"av1mix: the master offers AV1 and H.264 variants"
fi
if [ $ok_c = 1 ]; then
	report chunked
	is "$(grep -c '^#EXTINF' "$T/out/chunked/720p/index.m3u8")" 3 \
		"chunked: 3 segments"
	like "$(cat "$T/chunked.err")" "chunks: 3 video rungs in 3 chunks of 2 s each" \
		"chunked: each segment of each rung was a chunk unit of its own"
fi
echo "# whole test: $(($(date +%s) - SECONDS_START)) s after the install"
done_testing
