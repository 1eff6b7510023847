#!/bin/sh
# Finding 2 of issue 9: the demuxer reads only the file that was dropped.
# Sources are opened from a checked descriptor (O_NOFOLLOW, regular file)
# through ladderd's own I/O, with a container whitelist: a playlist (HLS),
# a concat script or an image sequence, which would open further files, is
# refused with a clear error and nothing is published. probe, transcode
# and decode all open the source that way.
. "$(dirname "$0")/lib.sh"
require ffmpeg
trap 'kill_all; _cleanup' EXIT

write_conf "$T/ladderd.conf" "
watch = ( { path = \"$T/ingest\"; profile = \"quick\"; } );
profiles = { quick = {
    ladder = ( { name = \"only\"; height = 360; bitrate = 500; } );
    workflow = { pre = ( \"download\", \"probe\" ); rendition = ( \"t_record\" ); post = ( \"t_record\", \"publish\" ); };
}; };"
mkdir -p "$T/elsewhere"
mkclip "$T/elsewhere/secret.ts" -f lavfi -i testsrc2=size=320x240:rate=25:duration=2 \
	-c:v libx264 -preset ultrafast -pix_fmt yuv420p -f mpegts &&
mkclip "$T/good.mp4" -f lavfi -i testsrc2=size=320x240:rate=25:duration=1 \
	-c:v libx264 -preset ultrafast -pix_fmt yuv420p ||
	bail_out "cannot make test clips"
chmod 600 "$T/elsewhere/secret.ts"
printf '#EXTM3U\n#EXT-X-TARGETDURATION:3\n#EXTINF:2.0,\n%s\n#EXT-X-ENDLIST\n' \
	"$T/elsewhere/secret.ts" >"$T/evil.m3u8"
printf 'ffconcat version 1.0\nfile %s\n' "$T/elsewhere/secret.ts" >"$T/evil.ffconcat"

# --- the stages alone ----------------------------------------------------
ctx() { # NAME PATH [EXTRA JSON members]
	printf '{ "input": { "path": "%s" }%s }\n' "$2" "${3:-}" >"$T/$1.json"
}
ctx m3u8 "$T/evil.m3u8"
stage probe m3u8
ok "probe refuses an HLS playlist" [ "$rc" != 0 ]
like "$msg" "container 'hls' is not accepted as a source" "and says why"
ctx concat "$T/evil.ffconcat"
stage probe concat
ok "probe refuses a concat script" [ "$rc" != 0 ]
like "$msg" "container 'concat' is not accepted as a source" "and says why"
ln -s "$T/good.mp4" "$T/link.mp4"
ctx link "$T/link.mp4"
stage probe link
ok "probe refuses a symbolic link" [ "$rc" != 0 ]
like "$msg" "symbolic link" "and says so"
ctx good "$T/good.mp4"
stage probe good
is "$rc" 0 "probe still reads an MP4"
is "$(json "$out" 'd["probe"]["video"]["width"]')" 320 "and its size"
# transcode and decode trust nothing either: told by a forged context that
# the probe found an HLS playlist, they refuse to open it.
"$PY" - "$T" <<'PY'
import json, sys
t = sys.argv[1]
d = json.load(open(t + "/good.out"))
d["input"]["path"] = t + "/evil.m3u8"
d["probe"]["format"] = "hls"
d["task"] = {"id": "tx", "main_task_id": "tx", "work_dir": t + "/work"}
d["profile"] = {"segment_duration": 1, "segment_type": "fmp4",
    "video": {"codec": "libx264", "preset": "ultrafast", "profile": "high",
              "level": "", "maxrate_factor": 1.07, "bufsize_factor": 1.5,
              "crf": 0},
    "audio": {"codec": "aac", "bitrate": 96, "channels": 2,
              "sample_rate": 48000}}
d["rung"] = {"name": "only", "kind": "video", "height": 240, "bitrate": 300,
             "index": 0}
d["target_size"] = {"width": 320, "height": 240, "bitrate": 300}
json.dump(d, open(t + "/tx.json", "w"))
PY
stage transcode tx
ok "transcode refuses a source in a refused container" [ "$rc" != 0 ]
like "$msg" "container 'hls' is not accepted as a source" "and says why"

# --- the daemon ------------------------------------------------------------
start_daemon "$T/ladderd.conf"
cp "$T/evil.m3u8" "$T/ingest/evil.m3u8"
wait_for 20 sh -c "ls '$T'/failed/evil-*/error.json"
id=$(ls "$T/failed" | grep '^evil-' | head -n 1)
is "$(state_of "$id")" failed "a dropped playlist fails"
like "$(json "$T/failed/$id/error.json" 'd["message"]')" "container 'hls' is not accepted as a source" \
	"with a clear error"
ok "nothing is published for it" test ! -e "$T/publish/$id"
ok "the file it listed is untouched" test -s "$T/elsewhere/secret.ts"
cp "$T/good.mp4" "$T/ingest/fine.mp4"
wait_for 20 sh -c "ls '$T/publish' | grep -q '^fine-'"
ok "a real clip is still published" sh -c "ls '$T/publish' | grep -q '^fine-'"
stop_daemon
is "$?" 0 "daemon stops cleanly"
done_testing
