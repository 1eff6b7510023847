#!/bin/sh
# t0370-audio-tracks: every audio stream of the source is a rendition of
# its own in fMP4 mode (issue 15, item 4). A source with an English 440 Hz
# track (default) and a French 1000 Hz one (titled, with a quote in the
# title): the master has one EXT-X-MEDIA per track in the "audio" group
# (LANGUAGE, NAME, DEFAULT, AUTOSELECT, CHANNELS), the MPD one audio
# AdaptationSet per language (lang, Label, Role), and each rendition's
# segments decode to its own track's tone (frequency from zero crossings).
# audio.languages picks tracks, audio.max_tracks caps them; MPEG-TS keeps
# the default track muxed into every rung.
. "$(dirname "$0")/lib.sh"
require ffmpeg ffprobe

mkclip "$T/two.mp4" -f lavfi -i testsrc2=size=320x180:rate=25:duration=4 \
	-f lavfi -i sine=frequency=440:sample_rate=48000:duration=4 \
	-f lavfi -i sine=frequency=1000:sample_rate=48000:duration=4 \
	-map 0 -map 1 -map 2 -c:v libx264 -preset ultrafast -pix_fmt yuv420p \
	-c:a aac -metadata:s:a:0 language=eng -metadata:s:a:1 language=fra \
	-metadata:s:a:0 handler_name=English \
	-metadata:s:a:1 'handler_name=Français "VF"' -disposition:a:0 default \
	-disposition:a:1 0
LADDER='segment_duration = 2; ladder = ( { name = "180p"; height = 180; bitrate = 300; } );'
write_conf "$T/ladderd.conf" "
profiles = {
  all = { $LADDER };
  fr = { $LADDER audio = { languages = [ \"fr\", \"fra\" ]; }; };
  one = { $LADDER audio = { max_tracks = 1; }; };
  none = { $LADDER audio = { languages = [ \"deu\" ]; }; };
  ts = { $LADDER segment_type = \"mpegts\"; };
};"

run() { # ID PROFILE
	"$LADDERD" run -c "$T/ladderd.conf" -p "$2" "$T/two.mp4" -o "$T/out" \
		--task-id "$1" >"$T/$1.out" 2>&1
	_report $? "profile $2: ladderd run builds the package" "$(tail -n 5 "$T/$1.out")"
}

# freq FILE: the tone of the first audio stream of a media file or playlist,
# in Hz, from zero crossings of its decoded samples.
freq() {
	ffmpeg -nostdin -v error -i "$1" -map 0:a:0 -ac 1 -ar 48000 -f s16le - |
		"$PY" -c '
import sys, array
a = array.array("h", sys.stdin.buffer.read())
a = a[4800:-4800]  # leave out the edges (priming, fades)
z = sum(1 for i in range(1, len(a)) if (a[i - 1] < 0) != (a[i] < 0))
print(round(z / 2 / (len(a) / 48000.0)) if len(a) else 0)'
}
near() { # GOT WANT: within 2 %
	awk -v g="$1" -v w="$2" 'BEGIN { exit !(g > w * 0.98 && g < w * 1.02) }'
}

run all all
M="$T/out/all/master.m3u8"
is "$(grep -c '^#EXT-X-MEDIA:TYPE=AUDIO' "$M")" 2 "two audio EXT-X-MEDIA in the master"
like "$(grep 'LANGUAGE="eng"' "$M")" \
	'GROUP-ID="audio",NAME="English",LANGUAGE="eng",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="audio/index.m3u8"' \
	"eng: the default track, named by its title"
like "$(grep 'LANGUAGE="fra"' "$M")" \
	'GROUP-ID="audio",NAME="Français VF",LANGUAGE="fra",DEFAULT=NO,AUTOSELECT=YES,CHANNELS="2",URI="audio-fra/index.m3u8"' \
	"fra: its own rendition, the quote dropped from its NAME"
like "$(grep '^#EXT-X-STREAM-INF' "$M")" 'AUDIO="audio"' "the variant refers to the audio group"
D="$T/out/all/manifest.mpd"
is "$(grep -c 'contentType="audio"' "$D")" 2 "two audio AdaptationSets in the MPD"
like "$(tr -d '\n' <"$D")" 'lang="eng"[^>]*>      <Label>English</Label>      <Role [^>]*value="main"' \
	"MPD: eng set with its Label and Role main"
like "$(tr -d '\n' <"$D")" 'lang="fra"[^>]*>      <Label>Français VF</Label>' \
	"MPD: fra set with its Label"
f1=$(freq "$T/out/all/audio/index.m3u8")
f2=$(freq "$T/out/all/audio-fra/index.m3u8")
echo "# decoded tones: audio/ $f1 Hz, audio-fra/ $f2 Hz"
near "$f1" 440
_report $? "audio/ (eng) decodes to the 440 Hz track" "got $f1 Hz"
near "$f2" 1000
_report $? "audio-fra/ decodes to the 1000 Hz track" "got $f2 Hz"
ok "ffprobe reads the master with both renditions" \
	ffprobe -v error -i "$M"
ok "ffprobe reads the MPD" ffprobe -v error -i "$D"

run fr fr
is "$(grep -c '^#EXT-X-MEDIA:TYPE=AUDIO' "$T/out/fr/master.m3u8")" 1 \
	"audio.languages = [fra]: one track"
like "$(grep '^#EXT-X-MEDIA' "$T/out/fr/master.m3u8")" 'LANGUAGE="fra",DEFAULT=YES' \
	"... the French one, now the default"
f=$(freq "$T/out/fr/audio/index.m3u8")
near "$f" 1000
_report $? "... and it is the 1000 Hz track" "got $f Hz"

run one one
is "$(grep -c '^#EXT-X-MEDIA:TYPE=AUDIO' "$T/out/one/master.m3u8")" 1 \
	"audio.max_tracks = 1: one track"
like "$(grep '^#EXT-X-MEDIA' "$T/out/one/master.m3u8")" 'LANGUAGE="eng",DEFAULT=YES' \
	"... the default one"

run none none
like "$(grep '^#EXT-X-MEDIA' "$T/out/none/master.m3u8")" 'LANGUAGE="eng",DEFAULT=YES' \
	"no track in audio.languages: the default track, never no sound"

run ts ts
is "$(grep -c '^#EXT-X-MEDIA' "$T/out/ts/master.m3u8")" 0 \
	"MPEG-TS: no audio renditions"
f=$(freq "$T/out/ts/180p/index.m3u8")
near "$f" 440
_report $? "MPEG-TS: the rung carries the default (440 Hz) track" "got $f Hz"

printf 'profiles = { x = { ladder = ( { name = "audio-x"; height = 180; bitrate = 300; } ); }; };\n' \
	>"$T/bad.conf"
out=$("$LADDERD" check-config -c "$T/bad.conf" 2>&1)
like "$out" "rung name 'audio-x' is not" "a rung named audio-* is refused (renditions use it)"
done_testing
