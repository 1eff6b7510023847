#!/bin/sh
# t0380-chunked: chunked encoding (profile.chunk_duration, README,
# "Chunked encoding"). A 60 s source (its own GOP of 37 frames, so chunk starts fall
# between its keyframes) with segment_duration 2 and chunk_duration 10 is
# packaged chunked and unchunked, in fMP4 and in MPEG-TS mode, with
# `ladderd run` (whose verify stage passes inside the run). Then: every
# video rung ran as 6 chunk units and one join; every rung's playlist
# equals the unchunked one's segment for segment (count, EXTINF); fMP4
# decode times (tfdt) run on without gap or overlap across all segments;
# TS continuity counters of every PID and the video PTS run on across the
# segments; per rung, PSNR against the source within 0.1 dB of the
# unchunked package's and the bytes of its segments within 3 %; the audio
# (encoded once, not chunked) decodes to the source's sample count within
# one AAC frame. verify checked the chunk boundaries (and, run again on
# the kept context, fails on a gap, an overlap or a start off the grid).
. "$(dirname "$0")/lib.sh"

command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 ||
	skip_all "ffmpeg/ffprobe not installed"
[ -x "$LADDERD" ] || skip_all "ladderd not built"
[ -f "$TEST_STAGES/t_fail.so" ] || skip_all "test stages not built (make check)"

write_conf "$T/ladderd.conf" '
max_rungs = 2;
profiles = {
  un = { segment_duration = 2;
         ladder = ( { name = "180p"; height = 180; bitrate = 300; },
                    { name = "120p"; height = 120; bitrate = 150; } ); };
  ch = { segment_duration = 2; chunk_duration = 10;
         ladder = ( { name = "180p"; height = 180; bitrate = 300; },
                    { name = "120p"; height = 120; bitrate = 150; } );
         workflow = { post = ( "hls_footer", "chunk_dash", "verify", "t_fail" ); }; };
  tun = { segment_duration = 2; segment_type = "mpegts";
          ladder = ( { name = "180p"; height = 180; bitrate = 300; } ); };
  tch = { segment_duration = 2; segment_type = "mpegts"; chunk_duration = 10;
          ladder = ( { name = "180p"; height = 180; bitrate = 300; } ); };
  noenc = { segment_duration = 2; chunk_duration = 10;
          ladder = ( { name = "180p"; height = 180; bitrate = 300; } );
          workflow = { rendition = ( "t_record" ); post = ( "t_record" ); }; };
};'

mkclip "$T/src.mp4" -f lavfi -i testsrc2=size=320x180:rate=25:duration=60 \
	-f lavfi -i sine=frequency=440:sample_rate=48000:duration=60 \
	-c:v libx264 -preset ultrafast -g 37 -pix_fmt yuv420p -c:a aac -shortest

for p in un ch tun tch; do
	"$LADDERD" run -v -c "$T/ladderd.conf" -p $p "$T/src.mp4" -o "$T/out" \
		--task-id $p >"$T/$p.out" 2>"$T/$p.err"
	rc=$?
	# ch ends at the t_fail stage: its work folder (context, package) stays.
	[ $p = ch ] && rc=$(json "$T/out/.ladderd/work/ch/context.json" \
		'0 if d["verify"]["ok"] else 1' 2>&1)
	is "$rc" 0 "$p: ladderd run packages and verifies the source"
done

# chk.py: the checks on the packages, one line of facts per check.
cat >"$T/chk.py" <<'PY'
import os, subprocess, sys
sys.path.insert(0, os.path.join(os.environ['LADDERD_SRC'], 'tests', 'tools'))
from mp4boxes import frag

def segs(d):
    return [l.strip() for l in open(os.path.join(d, 'index.m3u8'))
            if l.strip() and not l.startswith('#')]

def extinf(d):
    return [l.strip() for l in open(os.path.join(d, 'index.m3u8'))
            if l.startswith('#EXTINF')]

def tfdt_gaps(d):
    """Segments whose tfdt is not the previous tfdt + its durations."""
    bad, t = [], None
    for s in segs(d):
        got, dur = frag(os.path.join(d, s))
        if t is not None and got != t:
            bad.append('%s: tfdt %d, expected %d' % (s, got, t))
        t = got + dur
    return bad

def ts_cc(d):
    """TS packets whose continuity counter does not follow its PID's."""
    last, bad = {}, []
    for s in segs(d):
        b = open(os.path.join(d, s), 'rb').read()
        for o in range(0, len(b) - 187, 188):
            pid = ((b[o + 1] & 0x1f) << 8) | b[o + 2]
            afc, cc = (b[o + 3] >> 4) & 3, b[o + 3] & 15
            if pid == 0x1fff or not afc & 1:
                continue
            if pid in last and cc != (last[pid] + 1) % 16:
                bad.append('%s pid %d: cc %d after %d' % (s, pid, cc, last[pid]))
            last[pid] = cc
    return bad

def cat(d, out):
    with open(out, 'wb') as f:
        if os.path.exists(os.path.join(d, 'init.mp4')):
            f.write(open(os.path.join(d, 'init.mp4'), 'rb').read())
        for s in segs(d):
            f.write(open(os.path.join(d, s), 'rb').read())
    return out

def probe(path, sel, entries):
    return subprocess.run(['ffprobe', '-v', 'error', '-select_streams', sel,
        '-show_entries', entries, '-of', 'csv=p=0', path],
        capture_output=True, text=True).stdout.split()

def psnr(path, src):
    w, h = probe(path, 'v', 'stream=width,height')[0].split(',')
    r = subprocess.run(['ffmpeg', '-nostdin', '-hide_banner', '-i', path,
        '-i', src, '-lavfi', '[1:v]scale=%s:%s:flags=bicubic[r];[0:v][r]psnr'
        % (w, h), '-f', 'null', '-'], capture_output=True, text=True).stderr
    return float(r.rsplit('average:', 1)[1].split()[0])

def samples(path):
    r = subprocess.run(['ffmpeg', '-nostdin', '-hide_banner', '-i', path,
        '-map', '0:a', '-f', 's16le', '-ac', '1', '-'], capture_output=True)
    return len(r.stdout) // 2

def seg_bytes(d):
    return sum(os.path.getsize(os.path.join(d, s)) for s in segs(d))

what, a = sys.argv[1], sys.argv[2:]
if what == 'extinf':
    print('same' if extinf(a[0]) == extinf(a[1]) and segs(a[0]) == segs(a[1])
          else 'differ: %d vs %d segments' % (len(segs(a[0])), len(segs(a[1]))))
elif what == 'tfdt':
    print('\n'.join(tfdt_gaps(a[0])) or 'continuous')
elif what == 'cc':
    print('\n'.join(ts_cc(a[0])[:5]) or 'continuous')
elif what == 'pts':
    p = [int(x.strip(',')) for x in probe(cat(a[0], a[1]), 'v', 'packet=pts')
         if x.strip(',')]
    p.sort()
    steps = set(y - x for x, y in zip(p, p[1:]))
    print('%d frames, steps %s' % (len(p), sorted(steps)))
elif what == 'quality':
    c, u = cat(a[0], a[2] + '.c'), cat(a[1], a[2] + '.u')
    pc, pu = psnr(c, a[3]), psnr(u, a[3])
    bc, bu = seg_bytes(a[0]), seg_bytes(a[1])
    print('psnr %.3f vs %.3f dB (%+.3f), bytes %d vs %d (%+.2f %%)'
          % (pc, pu, pc - pu, bc, bu, 100.0 * (bc - bu) / bu))
    sys.exit(0 if abs(pc - pu) <= 0.1 and abs(bc - bu) <= 0.03 * bu else 1)
elif what == 'samples':
    got, want = samples(cat(a[0], a[1])), samples(a[2])
    print('%d samples, source %d' % (got, want))
    sys.exit(0 if abs(got - want) <= 1024 else 1)
PY

U=$T/out/un C=$T/out/.ladderd/work/ch/package
like "$(json "$T/out/.ladderd/work/ch/context.json" 'd["verify"]["checked"]')" \
	"chunks: 2 chunked rung\(s\), 10 joins between chunks continuous" \
	"verify checked the 10 chunk boundaries of the 2 rungs"
for r in 180p 120p; do
	like "$(cat "$T/ch.err")" "rendition=$r\\.chunk005: ok" \
		"ch: rung $r ran as chunk units (the sixth is $r.chunk005)"
	like "$(cat "$T/ch.err")" "rendition=$r: .*joined 6 chunks: 1500 frames" \
		"ch: rung $r's own unit joined its 6 chunks, 1500 frames"
	is "$("$PY" "$T/chk.py" extinf "$C/$r" "$U/$r")" same \
		"fmp4 $r: playlist equals the unchunked one (segments, EXTINF)"
	is "$("$PY" "$T/chk.py" tfdt "$C/$r")" continuous \
		"fmp4 $r: tfdt runs on across every segment and chunk boundary"
	out=$("$PY" "$T/chk.py" quality "$C/$r" "$U/$r" "$T/q$r" "$T/src.mp4")
	_report $? "fmp4 $r: PSNR within 0.1 dB, bytes within 3 % of unchunked" \
		"$out"
	echo "# fmp4 $r: $out"
done
out=$("$PY" "$T/chk.py" samples "$C/audio" "$T/a.mp4" "$T/src.mp4")
_report $? "fmp4 audio: the source's sample count within one AAC frame" "$out"

# verify on the kept context, with a chunk boundary made wrong.
# vstage NAME PYTHON: verify on the edited context; sets $rc and $msg.
vstage() {
	"$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
d.pop("error", None)
d.pop("verify", None)
exec(sys.argv[3])
json.dump(d, open(sys.argv[2], "w"))' "$T/out/.ladderd/work/ch/context.json" \
		"$T/$1.json" "$2"
	"$LADDERD" stage -c "$T/ladderd.conf" verify "$T/$1.json" \
		>"$T/$1.out" 2>"$T/$1.err"
	rc=$?
	msg=$(json "$T/$1.out" 'd.get("error", {}).get("message", "")' 2>/dev/null)
}
EDIT='b = [r for r in d["renditions"] if r["rung"]["name"] == "120p"][0]["transcode"]'
vstage v-ok "pass"
is "$rc/$msg" "0/" "verify passes on the intact chunked package"
vstage v-gap "$EDIT
b[\"chunk_boundaries\"][3][\"gap\"] = 0.08"
like "$rc/$msg" "^[1-9][0-9]*/rung 120p: chunk 3 starts 0\.080 s after the end of chunk 2$" \
	"verify fails on a gap between chunks, naming rung and chunk"
vstage v-overlap "$EDIT
b[\"chunk_boundaries\"][2][\"gap\"] = -0.04"
like "$rc/$msg" "^[1-9][0-9]*/rung 120p: chunk 2 starts 0\.040 s before the end of chunk 1$" \
	"verify fails on an overlap"
vstage v-grid "$EDIT
b[\"chunk_boundaries\"][1][\"start\"] = 11.0"
like "$rc/$msg" "^[1-9][0-9]*/rung 120p: chunk 1 starts at 11\.000 s, not a keyframe" \
	"verify fails on a chunk start off the keyframes"

U=$T/out/tun C=$T/out/tch
like "$(cat "$T/tch.err")" "chunked rungs' audio: ok" \
	"mpegts: the audio the rungs carry is encoded once, as its own unit"
is "$("$PY" "$T/chk.py" extinf "$C/180p" "$U/180p")" same \
	"mpegts 180p: playlist equals the unchunked one"
is "$("$PY" "$T/chk.py" cc "$C/180p")" continuous \
	"mpegts 180p: continuity counters of every PID run on across segments"
is "$("$PY" "$T/chk.py" pts "$C/180p" "$T/t.ts")" "1500 frames, steps [3600]" \
	"mpegts 180p: every frame once, video PTS one frame apart throughout"
out=$("$PY" "$T/chk.py" samples "$C/180p" "$T/t2.ts" "$T/src.mp4")
_report $? "mpegts 180p audio: the source's sample count within one AAC frame" \
	"$out"
out=$("$PY" "$T/chk.py" quality "$C/180p" "$U/180p" "$T/qt" "$T/src.mp4")
_report $? "mpegts 180p: PSNR within 0.1 dB, bytes within 3 % of unchunked" "$out"
echo "# mpegts 180p: $out"

# A chunk stops after the stage that encodes, which the host knows from the
# stage's declared state (stage.h), not its name: with no such stage in the
# rendition phase the task fails, saying why, instead of packaging nothing.
"$LADDERD" run -c "$T/ladderd.conf" -p noenc "$T/src.mp4" -o "$T/out" \
	--task-id noenc >"$T/noenc.out" 2>"$T/noenc.err"
is "$?" 1 "chunks without an encoding stage: the task fails"
like "$(cat "$T/noenc.err")" 'no stage of the rendition phase encodes \(state "transcoding"\): a rung cannot be cut into chunks' \
	"and says that no stage encodes"
done_testing
