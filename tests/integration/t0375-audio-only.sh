#!/bin/sh
# t0375-audio-only: a source without video (music, a podcast; issue 15
# item 5) gives an audio-only package instead of failing "no video stream":
#   * an MP3 with embedded cover art (an attached picture, not video): the
#     master has one variant, CODECS "mp4a.40.2" only, no RESOLUTION, no
#     EXT-X-MEDIA; the MPD one audio AdaptationSet and no video one; the
#     playlist lasts as long as the source; no thumbnails; the cover art is
#     poster.jpg;
#   * an M4A with two languages: both are EXT-X-MEDIA of the audio group
#     (one DEFAULT=YES), the one variant names the group; two audio
#     AdaptationSets with their lang;
#   * an mpegts profile refuses it, saying it needs fmp4; a file with
#     neither video nor audio (subtitles only) fails saying so;
#   * both packages play from 0 to the end in hls.js, dash.js and Shaka
#     (DASH and HLS) in headless Chromium (tests/playback/audio.mjs); that
#     part skips like t0500 when the players cannot be installed.
. "$(dirname "$0")/lib.sh"
command -v ffprobe >/dev/null 2>&1 || skip_all "ffprobe not found"

LADDER='segment_duration = 2;
    ladder = ( { name = "360p"; height = 360; bitrate = 700; } );'
write_conf "$T/ladderd.conf" "
profiles = {
  f = { $LADDER };
  t = { segment_type = \"mpegts\"; $LADDER };
};"
ffmpeg -nostdin -hide_banner -loglevel error -y -f lavfi \
	-i color=c=orange:size=300x300:duration=1 -frames:v 1 "$T/cover.png"
mkclip "$T/song.mp3" -f lavfi -i sine=frequency=440:sample_rate=44100:duration=6 \
	-i "$T/cover.png" -map 0:a -map 1:v -c:a libmp3lame -b:a 128k -c:v mjpeg \
	-disposition:v attached_pic -id3v2_version 3
mkclip "$T/talk.m4a" -f lavfi -i sine=frequency=330:sample_rate=48000:duration=6 \
	-f lavfi -i sine=frequency=660:sample_rate=48000:duration=6 \
	-map 0:a -map 1:a -c:a aac -metadata:s:a:0 language=eng \
	-metadata:s:a:1 language=fra -disposition:a:0 default -disposition:a:1 0
printf '1\n00:00:00,000 --> 00:00:02,000\nhello\n' >"$T/only.srt"
ffmpeg -nostdin -hide_banner -loglevel error -y -i "$T/only.srt" "$T/subs.mkv"
ok "the MP3's cover is an attached picture (not a video stream to encode)" \
	sh -c "ffprobe -v error -show_entries stream_disposition=attached_pic \
		-of csv=p=0 '$T/song.mp3' | grep -qx 1"

run() { # ID PROFILE SOURCE
	"$LADDERD" run -c "$T/ladderd.conf" -p "$2" "$3" -o "$T/out" \
		--task-id "$1" >"$T/$1.out" 2>"$T/$1.err"
}
run song f "$T/song.mp3"
is "$?" 0 "an MP3 with cover art gives a package"
M="$T/out/song/master.m3u8"
is "$(grep -c '^#EXT-X-STREAM-INF' "$M") $(grep -c 'EXT-X-MEDIA\|RESOLUTION' "$M")" "1 0" \
	"song: one variant, no EXT-X-MEDIA, no RESOLUTION"
like "$(cat "$M")" '#EXT-X-STREAM-INF:BANDWIDTH=[0-9]+,AVERAGE-BANDWIDTH=[0-9]+,CODECS="mp4a\.40\.2"' \
	"song: the variant's CODECS is mp4a only"
is "$(grep -c 'contentType="audio"' "$T/out/song/manifest.mpd") $(grep -c 'contentType="video"\|contentType="image"' "$T/out/song/manifest.mpd")" \
	"1 0" "song: the MPD has one audio AdaptationSet, no video or image one"
d=$(awk -F'[:,]' '/^#EXTINF/ { s += $2 } END { printf "%.1f", s }' "$T/out/song/$(sed -n '/^#EXT-X-STREAM-INF/{n;p}' "$M")")
is "$d" "6.0" "song: the audio playlist lasts as long as the source (6 s)"
ok "song: no thumbnails, no video folder" \
	sh -c "! ls '$T/out/song/thumbs' '$T/out/song/360p' 2>/dev/null"
# The cover (300x300 orange: Y about 173) is the poster.
is "$(ffprobe -v error -show_entries stream=codec_name,width,height -of csv=p=0 \
	"$T/out/song/poster.jpg" 2>&1)" "mjpeg,300,300" "song: poster.jpg is the cover art (300x300 JPEG)"
y=$(ffmpeg -nostdin -v error -i "$T/out/song/poster.jpg" -vf signalstats,metadata=print:key=lavfi.signalstats.YAVG:file=- \
	-f null - 2>/dev/null | sed -n 's/.*YAVG=\([0-9]*\).*/\1/p')
ok "song: the poster shows the orange cover (YAVG $y, want 160..185)" \
	sh -c "[ ${y:-0} -ge 160 ] && [ ${y:-0} -le 185 ]"

run talk f "$T/talk.m4a"
is "$?" 0 "an M4A with two languages gives a package"
M="$T/out/talk/master.m3u8"
is "$(grep -c '^#EXT-X-MEDIA:TYPE=AUDIO' "$M") $(grep -c 'DEFAULT=YES' "$M") $(grep -c '^#EXT-X-STREAM-INF.*CODECS="mp4a.40.2",AUDIO="audio"$' "$M")" \
	"2 1 1" "talk: two EXT-X-MEDIA (one default), one variant naming the group"
is "$(grep -o 'contentType="audio"[^>]*lang="[a-z]*"' "$T/out/talk/manifest.mpd" | grep -o 'lang="[a-z]*"' | tr '\n' ' ')" \
	'lang="eng" lang="fra" ' "talk: two audio AdaptationSets with their lang"
ok "talk: no cover, no poster" sh -c "! ls '$T/out/talk/poster.jpg' 2>/dev/null"

run song-ts t "$T/song.mp3"
is "$?" 1 "an mpegts profile refuses an audio-only source"
like "$(cat "$T/song-ts.err")" 'no video: an audio-only package needs segment_type = "fmp4"' \
	"and says it needs fmp4"
run subs f "$T/subs.mkv"
is "$?" 1 "a file with neither video nor audio fails"
like "$(cat "$T/subs.err")" "no video or audio stream in '.*' \\(matroska,webm, 1 streams\\)" \
	"and says so"

# --- the players -------------------------------------------------------
[ "${LADDERD_PLAYBACK:-1}" = 0 ] && done_testing
command -v node >/dev/null 2>&1 || done_testing
install_players
rc=$?
if [ $rc = 77 ]; then
	echo "# players not installed (no network): $PLAYERS_WHY"
	done_testing
fi
[ $rc = 0 ] || done_testing
for p in song talk; do
	[ -f "$T/out/$p/master.m3u8" ] || continue
	"$PY" "$PB/serve.py" "$T/out/$p" --port-file "$T/$p.port" \
		--lifetime $((180 * MULT)) >"$T/$p.serve" 2>&1 &
	SRV=$!
	wait_for 10 test -s "$T/$p.port"
	timeout $((150 * MULT)) node "$PB/audio.mjs" --base "http://127.0.0.1:$(cat "$T/$p.port")" \
		--label "$p" --duration 6 >"$T/$p.drive" 2>"$T/$p.drive.err"
	kill "$SRV" 2>/dev/null
	wait "$SRV" 2>/dev/null
	driver_results "$T/$p.drive"
	[ "$DRIVER_CHECKS" = 4 ]
	_report $? "$p: audio.mjs checked 4 players ($DRIVER_CHECKS)" "$(tail -n 20 "$T/$p.drive.err")"
done
done_testing
