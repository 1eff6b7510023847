#!/bin/sh
# I-frame playlists (EXT-X-I-FRAMES-ONLY) for every video rung, in fMP4 and
# MPEG-TS mode: every byte range holds one keyframe that decodes alone
# (ffprobe), the durations add up to the rung's, BANDWIDTH is the measured
# peak, the master lists each with EXT-X-I-FRAME-STREAM-INF; switched off
# per profile, there are none.
. "$(dirname "$0")/lib.sh"
require ffmpeg ffprobe
LADDER='ladder = ( { name = "360p"; height = 360; bitrate = 700; },
                   { name = "240p"; height = 240; bitrate = 300; } );'
write_conf "$T/ladderd.conf" "
profiles = {
  fmp4 = { segment_duration = 2; $LADDER };
  ts = { segment_duration = 2; segment_type = \"mpegts\"; $LADDER };
  off = { segment_duration = 2; iframe_playlists = false; $LADDER };
};"
mkclip_av "$T/src.mp4" 640x360 6

# check PKG RUNG: prints "entries keyframes_alone extinf_sum media_sum
# peak_bps" for the rung's I-frame playlist.
check() {
	"$PY" - "$1" "$2" <<'PY'
import json, os, re, subprocess, sys, tempfile
pkg, rung = sys.argv[1], sys.argv[2]
d = os.path.join(pkg, rung)
lines = open(os.path.join(d, "iframes.m3u8")).read().split("\n")
assert "#EXT-X-I-FRAMES-ONLY" in lines
init = None
for l in lines:
    m = re.match(r'#EXT-X-MAP:URI="([^"]+)"', l)
    if m:
        init = open(os.path.join(d, m.group(1)), "rb").read()
entries, alone, total, peak, dur, rng = 0, 0, 0.0, 0.0, None, None
for l in lines:
    if l.startswith("#EXTINF:"):
        dur = float(l[8:].split(",")[0])
    elif l.startswith("#EXT-X-BYTERANGE:"):
        n, o = l[17:].split("@")
        rng = (int(n), int(o))
    elif l and not l.startswith("#"):
        data = open(os.path.join(d, l), "rb").read()[rng[1]:rng[1] + rng[0]]
        suffix = ".mp4" if init else ".ts"
        with tempfile.NamedTemporaryFile(suffix=suffix) as f:
            f.write((init or b"") + data)
            f.flush()
            out = subprocess.run(["ffprobe", "-v", "error", "-select_streams",
                                  "v", "-show_entries", "frame=key_frame,pict_type",
                                  "-of", "json", f.name],
                                 capture_output=True, text=True).stdout
        frames = json.loads(out or "{}").get("frames", [])
        entries += 1
        alone += [(x.get("key_frame"), x.get("pict_type")) for x in frames] == [(1, "I")]
        total += dur
        peak = max(peak, rng[0] * 8 / dur)
media = sum(float(l[8:].split(",")[0])
            for l in open(os.path.join(d, "index.m3u8")).read().split("\n")
            if l.startswith("#EXTINF:"))
print(entries, alone, "%.3f" % total, "%.3f" % media, int(peak + 0.999))
PY
}
for p in fmp4 ts; do
	"$LADDERD" run -c "$T/ladderd.conf" -p $p "$T/src.mp4" -o "$T/out" \
		--task-id "if-$p" >"$T/$p.out" 2>&1
	is "$?" 0 "$p: the run completes"
	M="$T/out/if-$p/master.m3u8"
	is "$(grep -c '^#EXT-X-I-FRAME-STREAM-INF:' "$M")" 2 \
		"$p: the master lists an I-frame playlist per video rung"
	for r in 360p 240p; do
		set -- $(check "$T/out/if-$p" $r)
		is "$1" 3 "$p $r: one entry per 2 s segment"
		is "$2" "$1" "$p $r: every byte range decodes alone to one I-frame"
		is "$3" "$4" "$p $r: I-frame durations add up to the rung's"
		line=$(grep "URI=\"$r/iframes.m3u8\"" "$M")
		like "$line" "BANDWIDTH=$5," "$p $r: BANDWIDTH is the measured peak ($5)"
		like "$line" 'CODECS="avc1\.[0-9a-f]{6}"' "$p $r: CODECS names the video codec only"
	done
done
"$LADDERD" run -c "$T/ladderd.conf" -p off "$T/src.mp4" -o "$T/out" \
	--task-id if-off >"$T/off.out" 2>&1
is "$?" 0 "iframe_playlists = false: the run completes"
is "$(grep -c 'I-FRAME' "$T/out/if-off/master.m3u8")" 0 "and lists no I-frame playlist"
ok "and writes none" sh -c "! ls '$T/out/if-off/360p/iframes.m3u8' 2>/dev/null"
done_testing
