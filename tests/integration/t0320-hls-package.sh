#!/bin/sh
# t0320-hls-package: chunk_hls, hls_info and hls_footer, for fMP4 and
# MPEG-TS segments. A full `ladderd run` per segment type (a 5 s clip with
# audio, two rungs, 2 s segments) must publish a package whose media
# playlists carry the VOD tags and a TARGETDURATION of ceil(max EXTINF),
# list segments that all exist and (but the last) last segment_duration to
# within a frame, whose master has BANDWIDTH >= the measured RFC 8216 peak
# and CODECS equal to the profile/level ffprobe reports, and opens in
# ffprobe. Then the stages alone (`ladderd stage`): ctx.chunk_hls start/
# length/timescale equal the fMP4 tfdt/sample durations/mdhd the DASH stage
# builds its SegmentTimeline from, and hls_footer refuses a ladder without
# a video rendition.
. "$(dirname "$0")/lib.sh"

require python3 ffmpeg ffprobe ladderd

SEG=2
DUR=5
LADDER='( { name = "360p"; height = 360; bitrate = 700; },
	  { name = "240p"; height = 240; bitrate = 400; } )'
write_conf "$T/ladderd.conf" "profiles = {
	fmp4 = { segment_duration = $SEG; segment_type = \"fmp4\"; ladder = $LADDER; };
	mpegts = { segment_duration = $SEG; segment_type = \"mpegts\"; ladder = $LADDER; };
};"

mkclip "$T/src.mp4" -f lavfi -i testsrc2=size=640x360:rate=25:duration=$DUR \
	-f lavfi -i sine=frequency=440:sample_rate=48000:duration=$DUR \
	-c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -shortest \
	-metadata:s:a:0 language=eng ||
	bail_out "cannot make test clips with ffmpeg"

cat >"$T/hls.py" <<'PY'
import json, math, os, re, struct, subprocess, sys

sys.path.insert(0, os.path.join(os.environ['LADDERD_SRC'], 'tests', 'tools'))
from mp4boxes import boxes, find, u32, frag, timescale

def attrs(line):
    return dict((k, v.strip('"')) for k, v in
                re.findall(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)', line.split(':', 1)[1]))

def master(pkg):
    """[(attrs, uri)] of the variants, [attrs] of the EXT-X-MEDIA lines."""
    lines = [l.strip() for l in open(os.path.join(pkg, 'master.m3u8'))]
    var, media = [], []
    for i, l in enumerate(lines):
        if l.startswith('#EXT-X-STREAM-INF:'):
            var.append((attrs(l), lines[i + 1]))
        elif l.startswith('#EXT-X-MEDIA:'):
            media.append(attrs(l))
    return var, media

def media(path):
    """tags (set of tag names, TARGETDURATION), [(uri, extinf)]."""
    tags, segs, target, dur = set(), [], None, None
    for l in open(path):
        l = l.strip()
        if l.startswith('#'):
            tags.add(l.split(':')[0])
            if l.startswith('#EXT-X-TARGETDURATION:'):
                target = int(l.split(':')[1])
            if l.startswith('#EXTINF:'):
                dur = float(l[8:].split(',')[0])
        elif l:
            segs.append((l, dur))
    return tags, target, segs, open(path).read()

def peak(pkg, playlist):
    """RFC 8216 4.3.4.2 peak and average segment bit rates (files, EXTINF)."""
    _, target, segs, _ = media(os.path.join(pkg, playlist))
    d = os.path.dirname(os.path.join(pkg, playlist))
    sz = [os.path.getsize(os.path.join(d, u)) for u, _ in segs]
    du = [x for _, x in segs]
    best = 0
    for i in range(len(segs)):
        b = t = 0
        for j in range(i, len(segs)):
            b, t = b + sz[j], t + du[j]
            if t > 1.5 * target + 1e-6:
                break
            if t >= 0.5 * target - 1e-6:
                best = max(best, b * 8 / t)
    return best, sum(sz) * 8 / sum(du)

def probe(path, sel):
    out = subprocess.run(['ffprobe', '-v', 'error', '-select_streams', sel,
        '-show_entries', 'stream=profile,level', '-of', 'json', path],
        capture_output=True, text=True, check=True).stdout
    return json.loads(out)['streams'][0]

PROFILE_IDC = {'Baseline': 66, 'Constrained Baseline': 66, 'Main': 77,
               'Extended': 88, 'High': 100}

def check(pkg, mode, seg):
    """One line per problem, prefixed with its check's name."""
    err = []
    var, med = master(pkg)
    text = open(os.path.join(pkg, 'master.m3u8')).read()
    for tag in ('#EXT-X-ENDLIST', '#EXTINF', '#EXT-X-TARGETDURATION',
                '#EXT-X-PLAYLIST-TYPE'):
        if tag in text:
            err.append('master: has media tag %s' % tag)
    for tag in ('#EXTM3U\n', '#EXT-X-VERSION:', '#EXT-X-INDEPENDENT-SEGMENTS'):
        if tag not in text:
            err.append('master: lacks %s' % tag.strip())
    if [u for _, u in var] != ['360p/index.m3u8', '240p/index.m3u8']:
        err.append('master: variants %s' % [u for _, u in var])
    if mode == 'fmp4':
        if len(med) != 1 or med[0].get('URI') != 'audio/index.m3u8' or \
           med[0].get('GROUP-ID') != 'audio' or med[0].get('LANGUAGE') != 'eng' \
           or med[0].get('CHANNELS') != '2' or med[0].get('DEFAULT') != 'YES':
            err.append('master: audio EXT-X-MEDIA %s' % med)
    elif med:
        err.append('master: EXT-X-MEDIA in mpegts mode')
    playlists = [u for _, u in var] + [m['URI'] for m in med]
    apeak, aavg = peak(pkg, 'audio/index.m3u8') if mode == 'fmp4' else (0, 0)
    for pl in playlists:
        audio = pl.startswith('audio/')
        tags, target, segs, raw = media(os.path.join(pkg, pl))
        d = os.path.dirname(os.path.join(pkg, pl))
        want = {'#EXTM3U', '#EXT-X-PLAYLIST-TYPE', '#EXT-X-ENDLIST',
                '#EXT-X-TARGETDURATION'}
        if not audio:
            want.add('#EXT-X-INDEPENDENT-SEGMENTS')
        if mode == 'fmp4':
            want.add('#EXT-X-MAP')
        if want - tags or '#EXT-X-PLAYLIST-TYPE:VOD' not in raw:
            err.append('tags: %s lacks %s' % (pl, sorted(want - tags)))
        if '#EXT-X-PROGRAM-DATE-TIME' in tags:
            err.append('tags: %s has PROGRAM-DATE-TIME' % pl)
        if mode == 'fmp4' and '#EXT-X-MAP:URI="init.mp4"' not in raw:
            err.append('tags: %s: EXT-X-MAP is not init.mp4' % pl)
        if target != math.ceil(max(x for _, x in segs) - 1e-6):
            err.append('target: %s TARGETDURATION %s, max EXTINF %s' %
                       (pl, target, max(x for _, x in segs)))
        ext = '.m4s' if mode == 'fmp4' else '.ts'
        for i, (u, _) in enumerate(segs):
            if u != 'seg_%05d%s' % (i, ext):
                err.append('segs: %s: segment %d is named %s' % (pl, i, u))
            if not os.path.getsize(os.path.join(d, u)) > 0:
                err.append('segs: %s: %s is empty' % (pl, u))
        if mode == 'fmp4' and not os.path.getsize(os.path.join(d, 'init.mp4')):
            err.append('segs: %s: init.mp4 empty' % pl)
        frame = 1024 / 48000 if audio else 1 / 25
        for u, x in segs[:-1]:
            if abs(x - seg) > frame + 1e-6:
                err.append('dur: %s: %s lasts %s s' % (pl, u, x))
        total = sum(x for _, x in segs)
        if abs(total - float(os.environ['DUR'])) > 0.1:
            err.append('dur: %s lasts %s s in all' % (pl, total))
    for a, pl in var:
        pk, avg = peak(pkg, pl)
        if int(a['BANDWIDTH']) < pk + apeak:
            err.append('bw: %s BANDWIDTH %s < measured peak %.0f + %.0f' %
                       (pl, a['BANDWIDTH'], pk, apeak))
        if abs(int(a['AVERAGE-BANDWIDTH']) - (avg + aavg)) > 2:
            err.append('bw: %s AVERAGE-BANDWIDTH %s, measured %.0f' %
                       (pl, a['AVERAGE-BANDWIDTH'], avg + aavg))
        if mode == 'fmp4' and a.get('AUDIO') != 'audio':
            err.append('bw: %s has no AUDIO="audio"' % pl)
        p = probe(os.path.join(pkg, pl), 'v')
        cod = a['CODECS'].split(',')
        exp = 'avc1.%02x' % PROFILE_IDC[p['profile']]
        if not re.fullmatch(exp + '[0-9a-f]{2}%02x' % p['level'], cod[0]):
            err.append('codecs: %s CODECS %s, ffprobe %s@%s' %
                       (pl, a['CODECS'], p['profile'], p['level']))
        if mode == 'fmp4':
            init = open(os.path.join(pkg, os.path.dirname(pl), 'init.mp4'), 'rb').read()
            i = init.find(b'avcC')
            if cod[0] != 'avc1.' + init[i + 5:i + 8].hex():
                err.append('codecs: %s CODECS %s, avcC %s' % (pl, cod[0], init[i + 5:i + 8].hex()))
        if cod[1:] != ['mp4a.40.2']:
            err.append('codecs: %s CODECS %s lacks mp4a.40.2' % (pl, a['CODECS']))
        if a.get('RESOLUTION') != {'360p': '640x360', '240p': '426x240'}[pl[:4]] \
           or a.get('FRAME-RATE') != '25.000':
            err.append('attrs: %s %s' % (pl, a))
    print('\n'.join(err))

def stagecheck(out, pkg):
    """ctx.chunk_hls of `ladderd stage` against the files."""
    c = json.load(open(out))['chunk_hls']
    err = []
    if timescale(os.path.join(pkg, c['init'])) != c['timescale']:
        err.append('timescale %s, mdhd %s' % (c['timescale'],
                   timescale(os.path.join(pkg, c['init']))))
    for s in c['segments']:
        got = frag(os.path.join(pkg, s['uri']))
        if got != (s['start'], s['length']):
            err.append('%s: ctx start/length %s/%s, tfdt/durations %s' %
                       (s['uri'], s['start'], s['length'], got))
    print('\n'.join(err))

if __name__ == '__main__':
    if sys.argv[1] == 'check':
        check(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    elif sys.argv[1] == 'stagecheck':
        stagecheck(sys.argv[2], sys.argv[3])
PY
export DUR

# only PREFIX: the problems of one kind from $check.
only() {
	printf '%s\n' "$check" | sed -n "s/^$1: //p"
}

for mode in fmp4 mpegts; do
	"$LADDERD" run -c "$T/ladderd.conf" -p "$mode" "$T/src.mp4" \
		-o "$T/out-$mode" --task-id "t-$mode" >"$T/run-$mode.log" 2>&1
	is "$?" 0 "$mode: ladderd run succeeds"
	pkg=$T/out-$mode/t-$mode
	ok "$mode: master.m3u8 published" test -s "$pkg/master.m3u8" ||
		{ sed 's/^/# /' "$T/run-$mode.log" | grep -v Opening | tail -20; continue; }
	check=$(python3 "$T/hls.py" check "$pkg" "$mode" "$SEG" 2>&1)
	is "$(only master)" "" "$mode: master tags, variants in ladder order, audio group"
	is "$(only tags)" "" "$mode: media playlists carry VOD, ENDLIST, INDEPENDENT-SEGMENTS, MAP"
	is "$(only target)" "" "$mode: TARGETDURATION is ceil(max EXTINF)"
	is "$(only segs)" "" "$mode: every listed segment exists"
	is "$(only dur)" "" "$mode: every segment but the last lasts $SEG s (one frame)"
	is "$(only bw)" "" "$mode: BANDWIDTH >= measured peak, AVERAGE-BANDWIDTH = measured"
	is "$(only codecs)" "" "$mode: CODECS equal the stream's profile/level"
	is "$(only attrs)" "" "$mode: RESOLUTION and FRAME-RATE"
	is "$(printf '%s\n' "$check" | grep -v '^[a-z]*: ' | head -5)" "" \
		"$mode: the checker ran"
	ok "$mode: ffprobe opens the master" \
		ffprobe -v error -show_streams "$pkg/master.m3u8"
	is "$(ffprobe -v error -show_entries stream=codec_name -of csv=p=0 \
		"$pkg/master.m3u8" | grep . | sort -u | tr '\n' ' ')" "aac h264 " \
		"$mode: the master's streams are h264 and aac"
done

# --- the stages alone --------------------------------------------------
# A transcoded file as transcode leaves it: IDR every $SEG s, B-frames.
w=$T/stage
mkdir -p "$w/rungs/360p"
mkclip "$w/rungs/360p/transcoded.mp4" -i "$T/src.mp4" -an -c:v libx264 \
	-preset veryfast -profile:v main -g 50 -keyint_min 50 -sc_threshold 0 \
	-force_key_frames "expr:gte(t,n_forced*$SEG)"
cat >"$w/ctx.json" <<JSON
{ "task": { "id": "s1", "work_dir": "$w", "publish_root": "$T/pub" },
  "profile": { "segment_duration": $SEG, "segment_type": "fmp4" },
  "rung": { "name": "360p", "kind": "video", "height": 360, "bitrate": 700, "index": 0 },
  "transcode": { "path": "$w/rungs/360p/transcoded.mp4", "kind": "video" } }
JSON
"$LADDERD" stage -c "$T/ladderd.conf" chunk_hls "$w/ctx.json" \
	>"$w/chunk.json" 2>"$w/chunk.err"
is "$?" 0 "stage chunk_hls succeeds"
is "$(python3 "$T/hls.py" stagecheck "$w/chunk.json" "$w/package" 2>&1)" "" \
	"ctx.chunk_hls start/length/timescale equal tfdt/trun/mdhd"
is "$(json "$w/chunk.json" '[s["uri"] for s in d["chunk_hls"]["segments"]]')" \
	'["360p/seg_00000.m4s", "360p/seg_00001.m4s", "360p/seg_00002.m4s"]' \
	"segment URIs are relative to the package"
"$LADDERD" stage -c "$T/ladderd.conf" hls_info "$w/chunk.json" \
	>"$w/info.json" 2>"$w/info.err"
is "$?" 0 "stage hls_info succeeds"
p=$(python3 -c 'import json,sys; s=json.load(sys.stdin)["streams"][0]; print(s["profile"], s["level"])' \
	<<EOF
$(ffprobe -v error -show_entries stream=profile,level -of json "$w/rungs/360p/transcoded.mp4")
EOF
)
like "$(json "$w/info.json" 'd["hls_info"]["codecs"]')" \
	"^avc1\.4d[0-9a-f]{2}$(printf %02x "${p#* }")\$" "Main@${p#* } gives avc1.4dxx$(printf %02x "${p#* }")"
like "$(cat "$w/fragments/360p.m3u8")" \
	'^#EXT-X-STREAM-INF:BANDWIDTH=[0-9]+,AVERAGE-BANDWIDTH=[0-9]+,CODECS="avc1\.[0-9a-f]{6}",RESOLUTION=640x360,FRAME-RATE=25\.000
360p/index\.m3u8$' "the fragment is a STREAM-INF line and its URI"

# hls_footer: no video rendition succeeded.
python3 - "$w/info.json" "$w/post.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
r = {'rung': d['rung'], 'status': 'failed', 'chunk_hls': d['chunk_hls'],
     'hls_info': d['hls_info']}
for k in ('rung', 'chunk_hls', 'hls_info', 'transcode'):
    d.pop(k, None)
d['renditions'] = [r]
json.dump(d, open(sys.argv[2], 'w'))
PY
"$LADDERD" stage -c "$T/ladderd.conf" hls_footer "$w/post.json" \
	>"$w/footer.json" 2>"$w/footer.err"
ok "hls_footer fails without a video rendition" test "$?" -ne 0
like "$(cat "$w/footer.json" "$w/footer.err")" "no video rendition succeeded" \
	"with a clear message"
ok "and writes no master" test ! -e "$w/package/master.m3u8"

done_testing
