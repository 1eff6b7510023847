#!/bin/sh
# t0388-subtitle-sidecar: a manifest's "subtitles" (sidecar files, issue 15
# item 3) through the real daemon. A good one: the .srt and .vtt files are
# claimed with the source, become WebVTT renditions with the manifest's
# language, name and flags, cue times as in the files, and go back under
# their own names with a failed task (failed/<id>/) and again with a
# `ladderd retry` of it. Hostile ones are
# refused with a clear status error and nothing outside the ingest folder
# is touched: "../", an absolute path, a symbolic link (to a file outside),
# a file reached through a symlinked folder, a FIFO, a missing file, a
# wrong extension, an unknown key, a bad language. A .srt that is not
# subtitles fails its task at the subtitles stage, saying which file.
. "$(dirname "$0")/lib.sh"
trap 'kill_all; _cleanup' EXIT
require ffmpeg ffprobe

write_conf "$T/ladderd.conf" "
watch = ( { path = \"$T/ingest\"; profile = \"s\"; } );
profiles = { s = { segment_duration = 2;
  ladder = ( { name = \"180p\"; height = 180; bitrate = 300; } ); }; };"
mkdir -p "$T/ingest/sub" "$T/outside/dir"
mkclip_av "$T/ingest/sub/film.mp4" 320x180 6
cat >"$T/ingest/sub/film.en.srt" <<'EOF'
1
00:00:00,750 --> 00:00:01,900
One

2
00:00:03,120 --> 00:00:04,000
Two
EOF
printf 'WEBVTT\n\n00:00:01.500 --> 00:00:02.250\nUn\n\n00:00:04.400 --> 00:00:05.100\nDeux\n' \
	>"$T/ingest/sub/film.fr.vtt"
echo "secret" >"$T/outside/secret.srt"
echo "secret" >"$T/outside/dir/in.srt"
ln -s "$T/outside/secret.srt" "$T/ingest/sub/link.srt"
ln -s "$T/outside/dir" "$T/ingest/sub/linkdir"
mkfifo "$T/ingest/sub/fifo.srt"
start_daemon "$T/ladderd.conf"

drop side.json '{"task_id": "side", "source": "sub/film.mp4", "subtitles": [
  { "file": "sub/film.en.srt", "language": "en", "default": true },
  { "file": "sub/film.fr.vtt", "language": "fr", "name": "Français", "forced": true } ]}'
wait_state side complete 120
is "$(state_of side)" complete "a manifest with two sidecar subtitle files completes"
ok "the sidecar files were claimed with the source" \
	test ! -e "$T/ingest/sub/film.en.srt" -a ! -e "$T/ingest/sub/film.fr.vtt"
M=$(cat "$T/publish/side/master.m3u8" 2>/dev/null)
like "$M" 'TYPE=SUBTITLES,GROUP-ID="subs",NAME="en",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,FORCED=NO,URI="sub-en/index.m3u8"' \
	"the .srt is an English rendition, DEFAULT as the manifest says"
like "$M" 'NAME="Français",LANGUAGE="fr",DEFAULT=NO,AUTOSELECT=YES,FORCED=YES,URI="sub-fr/index.m3u8"' \
	"the .vtt is a French one, with its name and FORCED"
is "$(grep -h -- '-->' "$T/publish/side/sub-en/full.vtt" "$T/publish/side/sub-fr/full.vtt" | tr '\n' ' ')" \
	"00:00:00.750 --> 00:00:01.900 00:00:03.120 --> 00:00:04.000 00:00:01.500 --> 00:00:02.250 00:00:04.400 --> 00:00:05.100 " \
	"cue times as in the sidecar files"
like "$(tr -d '\n' <"$T/publish/side/manifest.mpd")" 'contentType="text" mimeType="text/vtt" lang="fr">      <Label>Français</Label>' \
	"the MPD has the French text AdaptationSet"
is "$(json "$T/status/side/status.json" '[t["origin"] for t in d["subtitles"]["tracks"]]')" \
	'["sidecar sub/film.en.srt", "sidecar sub/film.fr.vtt"]' "status.json says where each track came from"

# A sidecar that is no subtitle file fails its task at the subtitles stage,
# and comes back under its own name in failed/<id>/.
mkclip_av "$T/ingest/sub/b.mp4" 320x180 2
printf '#EXTM3U\n#EXT-X-ENDLIST\n' >"$T/ingest/sub/bad.srt"
drop bad.json '{"task_id": "bad", "source": "sub/b.mp4", "subtitles": [ { "file": "sub/bad.srt" } ]}'
wait_state bad failed 120
like "$(json "$T/status/bad/status.json" 'd["error"]["message"]')" "^subtitle file 'sub/bad.srt': " \
	"a .srt that is not subtitles fails the task, naming the file"
is "$(json "$T/status/bad/status.json" 'd["error"]["stage"]')" subtitles "... at the subtitles stage"
# The job says "failed" before the supervisor has moved the drop out.
wait_for 30 test -f "$T/failed/bad/bad.srt" -a -f "$T/failed/bad/b.mp4"
ok "it is kept in failed/bad/ under its own name" test -f "$T/failed/bad/bad.srt" -a -f "$T/failed/bad/b.mp4"
msg1=$(json "$T/status/bad/status.json" 'd["error"]["message"]')
echo "# $msg1"
"$LADDERD" retry -c "$T/ladderd.conf" bad >"$T/retry.out" 2>&1
is "$?" 0 "ladderd retry takes the task back, its sidecar too"
wait_for 60 sh -c "test \$(grep -c '\"state\":[[:space:]]*\"failed\"' '$T/status/bad/events.ndjson') = 2"
is "$(json "$T/status/bad/status.json" 'd["error"]["message"]')" "$msg1" \
	"the retried task read the same sidecar (and failed the same way, not 'cannot open')"
wait_for 30 test -f "$T/failed/bad/bad.srt"
ok "... and it is back in failed/bad/ under its own name" test -f "$T/failed/bad/bad.srt"

# Hostile or wrong sidecars: refused at the drop, with the reason.
mkclip_av "$T/ingest/sub/h.mp4" 320x180 2
check_refused up.json '{"source": "sub/h.mp4", "subtitles": [ { "file": "../outside/secret.srt" } ]}' \
	"subtitle file '../outside/secret.srt' must be a file name relative to the ingest folder" "a ../ sidecar path"
check_refused abs.json "{\"source\": \"sub/h.mp4\", \"subtitles\": [ { \"file\": \"$T/outside/secret.srt\" } ]}" \
	"must be a file name relative to the ingest folder, inside it" "an absolute sidecar path"
check_refused link.json '{"source": "sub/h.mp4", "subtitles": [ { "file": "sub/link.srt" } ]}' \
	"subtitle file 'sub/link.srt' is or is reached through a symbolic link" "a symlinked sidecar"
check_refused ldir.json '{"source": "sub/h.mp4", "subtitles": [ { "file": "sub/linkdir/in.srt" } ]}' \
	"subtitle file 'sub/linkdir/in.srt' is or is reached through a symbolic link" "a sidecar in a symlinked folder"
check_refused fifo.json '{"source": "sub/h.mp4", "subtitles": [ { "file": "sub/fifo.srt" } ]}' \
	"subtitle file 'sub/fifo.srt' is not a regular file" "a FIFO sidecar"
check_refused miss.json '{"source": "sub/h.mp4", "subtitles": [ { "file": "sub/none.srt" } ]}' \
	"subtitle file 'sub/none.srt' not found in the ingest folder" "a missing sidecar"
check_refused ext.json '{"source": "sub/h.mp4", "subtitles": [ { "file": "sub/h.mp4" } ]}' \
	"must be .srt, .vtt, .ass or .ssa" "a sidecar that is not a subtitle file name"
check_refused key.json '{"source": "sub/h.mp4", "subtitles": [ { "file": "sub/x.srt", "lang": "en" } ]}' \
	"unknown key 'lang' in subtitles\[0\]" "a typo in a sidecar entry"
check_refused lang.json '{"source": "sub/h.mp4", "subtitles": [ { "file": "sub/x.srt", "language": "e\"n" } ]}' \
	"subtitles\[0\]: language must be a tag" "a bad sidecar language"
is "$(cat "$T/outside/secret.srt" "$T/outside/dir/in.srt")" "secret
secret" "the files outside the ingest folder are untouched"
ok "the symlinks are still where they were" test -L "$T/ingest/sub/link.srt" -a -L "$T/ingest/sub/linkdir"
ok "the source a refused manifest named was not taken" test -f "$T/ingest/sub/h.mp4"
done_testing
