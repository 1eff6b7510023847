#!/bin/sh
# t0330-dash-verify: chunk_dash writes an MPD that ffprobe opens, with one
# video Representation per rung plus audio and a SegmentTimeline equal to
# the tfdt/sample durations of the segments, for fmp4 (shared CMAF
# segments) and mpegts (own DASH segments); verify accepts these packages
# and refuses one with a missing segment or misaligned keyframes.
# The renditions are made with the ffmpeg CLI, as transcode + chunk_hls
# would, so only the two stages under test run (`ladderd stage`).
. "$(dirname "$0")/lib.sh"

command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 ||
	skip_all "ffmpeg/ffprobe not installed"
[ -x "$LADDERD" ] || skip_all "ladderd not built"

SEG=4
DUR=10
export SEG
write_conf "$T/ladderd.conf"

# box.py: the ISO BMFF facts the checks need (tfdt, sample durations,
# timescale, avcC), and the context/master a real run would have made.
cat >"$T/box.py" <<'PY'
import json, os, re, struct, subprocess, sys
import xml.etree.ElementTree as ET

def boxes(d, off=0, end=None):
    end = len(d) if end is None else end
    while off + 8 <= end:
        size, typ = struct.unpack('>I4s', d[off:off + 8])
        hdr = 8
        if size == 1:
            size, hdr = struct.unpack('>Q', d[off + 8:off + 16])[0], 16
        elif size == 0:
            size = end - off
        yield typ.decode('latin1'), off + hdr, off + size
        off += size

def find(d, path, off=0, end=None):
    for t, b, e in boxes(d, off, end):
        if t == path[0]:
            return (b, e) if len(path) == 1 else find(d, path[1:], b, e)
    return None

def u32(d, p):
    return struct.unpack('>I', d[p:p + 4])[0]

def frag(path):
    """(tfdt, sum of sample durations) of a one-fragment segment."""
    d = open(path, 'rb').read()
    b, _ = find(d, ['moof', 'traf', 'tfdt'])
    tfdt = struct.unpack('>Q', d[b + 4:b + 12])[0] if d[b] == 1 else u32(d, b + 4)
    b, _ = find(d, ['moof', 'traf', 'tfhd'])
    fl = u32(d, b) & 0xffffff
    p = b + 8 + (8 if fl & 1 else 0) + (4 if fl & 2 else 0)
    dflt = u32(d, p) if fl & 8 else None
    b, _ = find(d, ['moof', 'traf', 'trun'])
    fl = u32(d, b) & 0xffffff
    n = u32(d, b + 4)
    p = b + 8 + (4 if fl & 1 else 0) + (4 if fl & 4 else 0)
    per = sum(4 for bit in (0x100, 0x200, 0x400, 0x800) if fl & bit)
    tot = 0
    for _ in range(n):
        tot += u32(d, p) if fl & 0x100 else dflt
        p += per
    return tfdt, tot

def timescale(init):
    d = open(init, 'rb').read()
    b, _ = find(d, ['moov', 'trak', 'mdia', 'mdhd'])
    return u32(d, b + 12) if d[b] == 0 else u32(d, b + 20)

def avc(path):
    d = open(path, 'rb').read()
    i = d.find(b'avcC')
    return 'avc1.' + d[i + 5:i + 8].hex()

def keyframes(path):
    out = subprocess.run(['ffprobe', '-v', 'error', '-select_streams', 'v',
        '-show_entries', 'packet=pts_time,flags', '-of', 'csv=p=0', path],
        capture_output=True, text=True, check=True).stdout
    return sorted(float(l.split(',')[0]) for l in out.split() if ',K' in l)

def playlist(path):
    segs, dur = [], None
    for line in open(path):
        line = line.strip()
        if line.startswith('#EXTINF:'):
            dur = float(line[8:].split(',')[0])
        elif line and not line.startswith('#'):
            segs.append((line, dur))
    return segs

def mkctx(work, mode, src, rungs):
    """ctx.json as the chord would leave it, and the master playlist."""
    pkg = os.path.join(work, 'package')
    fr = subprocess.run(['ffprobe', '-v', 'error', '-show_entries',
        'format=duration', '-of', 'csv=p=0', src], capture_output=True,
        text=True, check=True).stdout
    names = rungs + (['audio'] if mode == 'fmp4' else [])
    rends, master = [], ['#EXTM3U', '#EXT-X-VERSION:7', '#EXT-X-INDEPENDENT-SEGMENTS']
    for name in names:
        kind = 'audio' if name == 'audio' else 'video'
        tc = os.path.join(work, 'rungs', name, 'transcoded.mp4')
        segs, start, peak, total = [], 0, 0, 0
        ts = timescale(os.path.join(pkg, name, 'init.mp4')) if mode == 'fmp4' else 90000
        for uri, extinf in playlist(os.path.join(pkg, name, 'index.m3u8')):
            f = os.path.join(pkg, name, uri)
            size = os.path.getsize(f)
            if mode == 'fmp4':
                t, d = frag(f)
            else:
                t, d = start, round(extinf * ts)
            start = t + d
            segs.append({'uri': name + '/' + uri, 'duration': d / ts,
                         'bytes': size, 'start': t, 'length': d})
            peak = max(peak, size * 8 / (d / ts))
            total += size
        vcod = avc(tc) if kind == 'video' else ''
        codecs = ','.join(c for c in (vcod, 'mp4a.40.2' if kind == 'audio' or mode == 'mpegts' else '') if c)
        w, h = (0, 0)
        if kind == 'video':
            w, h = map(int, subprocess.run(['ffprobe', '-v', 'error',
                '-select_streams', 'v', '-show_entries', 'stream=width,height',
                '-of', 'csv=p=0', tc], capture_output=True, text=True,
                check=True).stdout.split(','))
        chunk = {'playlist': name + '/index.m3u8', 'segment_type': mode,
                 'timescale': ts, 'duration': start / ts, 'segments': segs,
                 'peak_bitrate': int(peak), 'avg_bitrate': int(total * 8 / (start / ts))}
        if mode == 'fmp4':
            chunk['init'] = name + '/init.mp4'
        rends.append({'rung': name, 'status': 'ok',
            'target_size': {'width': w, 'height': h},
            'transcode': {'path': tc, 'kind': kind, 'width': w, 'height': h,
                          'duration': start / ts, 'has_video': kind == 'video',
                          'has_audio': kind == 'audio' or mode == 'mpegts',
                          'keyframes': keyframes(tc) if kind == 'video' else []},
            'chunk_hls': chunk,
            'hls_info': {'kind': kind, 'bandwidth': int(peak), 'codecs': codecs,
                         'resolution': '%dx%d' % (w, h), 'frame_rate': 25.0}})
        if kind == 'audio':
            master.append('#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="audio",'
                          'DEFAULT=YES,AUTOSELECT=YES,URI="audio/index.m3u8"')
    for r in rends:
        if r['transcode']['kind'] != 'video':
            continue
        master.append('#EXT-X-STREAM-INF:BANDWIDTH=%d,RESOLUTION=%s,CODECS="%s"%s'
                      % (r['hls_info']['bandwidth'], r['hls_info']['resolution'],
                         r['hls_info']['codecs'] + (',mp4a.40.2' if mode == 'fmp4' else ''),
                         ',AUDIO="aac"' if mode == 'fmp4' else ''))
        master.append(r['rung'] + '/index.m3u8')
    open(os.path.join(pkg, 'master.m3u8'), 'w').write('\n'.join(master) + '\n')
    ctx = {'task': {'id': 't0330', 'main_task_id': 't0330', 'work_dir': work,
                    'publish_root': os.path.join(os.path.dirname(work), 'publish')},
           'input': {'path': src},
           'profile': {'segment_duration': int(os.environ['SEG']), 'segment_type': mode, 'dash': True,
                       'audio': {'codec': 'aac', 'bitrate': 96, 'channels': 2,
                                 'sample_rate': 48000},
                       'ladder': [{'name': n, 'height': 0, 'bitrate': 0} for n in rungs]},
           'probe': {'duration': float(fr), 'has_audio': True, 'audio_index': 1,
                     'video': {'index': 0, 'fps_num': 25, 'fps_den': 1, 'avg_fps': 25.0},
                     'audio': [{'index': 1, 'codec': 'aac', 'channels': 2,
                                'sample_rate': 48000, 'language': 'eng'}]},
           'renditions': rends}
    json.dump(ctx, open(os.path.join(work, 'ctx.json'), 'w'), indent=1)

def mpdcheck(mpd):
    """Expand every SegmentTimeline; compare with the files' tfdt/durations."""
    ns = {'d': 'urn:mpeg:dash:schema:mpd:2011'}
    root = ET.parse(mpd).getroot()
    base = os.path.dirname(mpd)
    kinds, n, errs = [], 0, []
    for aset in root.iter('{%s}AdaptationSet' % ns['d']):
        for rep in aset.findall('d:Representation', ns):
            kinds.append(aset.get('contentType') + ':' + rep.get('id'))
            st = rep.find('d:SegmentTemplate', ns)
            num = int(st.get('startNumber', '1'))
            t = 0
            for s in st.find('d:SegmentTimeline', ns).findall('d:S', ns):
                t = int(s.get('t', t))
                for _ in range(int(s.get('r', '0')) + 1):
                    m = re.sub(r'\$Number%0(\d)d\$', lambda g: '%0*d' % (int(g.group(1)), num),
                               st.get('media')).replace('$RepresentationID$', rep.get('id'))
                    got = frag(os.path.join(base, m))
                    if got != (t, int(s.get('d'))):
                        errs.append('%s: mpd t=%d d=%s file %s' % (m, t, s.get('d'), got))
                    t += int(s.get('d'))
                    num += 1
                    n += 1
            if timescale(os.path.join(base, st.get('initialization'))) != int(st.get('timescale')):
                errs.append(rep.get('id') + ': timescale differs from init')
    print(' '.join(kinds))
    print('%d segments' % n)
    for e in errs:
        print(e)
    return 1 if errs else 0

if __name__ == '__main__':
    if sys.argv[1] == 'mkctx':
        mkctx(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
    elif sys.argv[1] == 'mpdcheck':
        sys.exit(mpdcheck(sys.argv[2]))
PY

# The rungs' transcoded files (video+audio, keyframes every $SEG s, with
# B-frames) from one lavfi source, like transcode leaves them.
mkclip "$T/src.mp4" -f lavfi -i testsrc2=size=640x360:rate=25:duration=$DUR \
	-f lavfi -i sine=frequency=440:sample_rate=48000:duration=$DUR \
	-c:v libx264 -preset veryfast -g 100 -keyint_min 100 -sc_threshold 0 \
	-pix_fmt yuv420p -c:a aac -ac 2 -shortest
RUNGS="360p 240p"
for r in $RUNGS; do
	mkdir -p "$T/rungs/$r"
	mkclip "$T/rungs/$r/full.mp4" -i "$T/src.mp4" -vf "scale=-2:${r%p}" \
		-c:v libx264 -preset veryfast -g 100 -keyint_min 100 \
		-sc_threshold 0 -c:a copy
done

# mkpkg WORK MODE: a work folder with package/ as chunk_hls leaves it.
mkpkg() {
	w=$1
	mode=$2
	for r in $RUNGS audio; do
		[ "$mode" = mpegts ] && [ "$r" = audio ] && continue
		mkdir -p "$w/rungs/$r" "$w/package/$r"
		case $mode/$r in
		fmp4/audio) set -- -i "$T/rungs/360p/full.mp4" -vn -c copy ;;
		fmp4/*) set -- -i "$T/rungs/$r/full.mp4" -an -c copy ;;
		*) set -- -i "$T/rungs/$r/full.mp4" -c copy ;;
		esac
		ffmpeg -nostdin -hide_banner -loglevel error -y "$@" \
			"$w/rungs/$r/transcoded.mp4" || return 1
		if [ "$mode" = fmp4 ]; then
			set -- -hls_segment_type fmp4 -hls_fmp4_init_filename init.mp4 \
				-hls_segment_filename "$w/package/$r/seg_%05d.m4s"
		else
			set -- -hls_segment_type mpegts \
				-hls_segment_filename "$w/package/$r/seg_%05d.ts"
		fi
		ffmpeg -nostdin -hide_banner -loglevel error -y \
			-i "$w/rungs/$r/transcoded.mp4" -c copy -f hls -hls_time $SEG \
			-hls_playlist_type vod "$@" "$w/package/$r/index.m3u8" ||
			return 1
	done
	python3 "$T/box.py" mkctx "$w" "$mode" "$T/src.mp4" $RUNGS
}

SRCDUR=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$T/src.mp4")

for mode in fmp4 mpegts; do
	w=$T/work-$mode
	ok "$mode: package made" mkpkg "$w" "$mode"
	"$LADDERD" stage -c "$T/ladderd.conf" chunk_dash "$w/ctx.json" \
		>"$w/ctx-dash.json" 2>"$w/dash.err"
	is "$?" 0 "$mode: chunk_dash succeeds"
	mpd=$w/package/manifest.mpd
	ok "$mode: manifest.mpd written" test -s "$mpd"
	ok "$mode: ffprobe opens the MPD" \
		ffprobe -v error -show_streams "$mpd"
	ffprobe -v error -of json -show_entries stream=codec_type "$mpd" \
		>"$w/streams.json"
	is "$(json "$w/streams.json" 'sorted(s["codec_type"] for s in d["streams"])')" \
		'["audio", "video", "video"]' \
		"$mode: ffprobe sees two video streams and one audio stream"
	check=$(python3 "$T/box.py" mpdcheck "$mpd" 2>&1)
	is "$(printf '%s\n' "$check" | head -1)" \
		"video:360p video:240p audio:audio" \
		"$mode: one video Representation per rung, plus audio"
	like "$(printf '%s\n' "$check" | sed -n 2p)" '^[0-9]+ segments$' \
		"$mode: every timeline segment exists"
	is "$(printf '%s\n' "$check" | sed -n '3,$p')" "" \
		"$mode: SegmentTimeline t/d equal each segment's tfdt/durations"
	mdur=$(sed -n 's/.*mediaPresentationDuration="PT\([0-9.]*\)S".*/\1/p' "$mpd")
	ok "$mode: duration $mdur within 0.1 s of the source $SRCDUR" \
		awk -v a="$mdur" -v b="$SRCDUR" \
		'BEGIN { d = a - b; exit !(a != "" && d < 0.1 && d > -0.1) }'
	like "$(cat "$mpd")" 'profiles="urn:mpeg:dash:profile:isoff-live:2011"' \
		"$mode: isoff-live profile"
	like "$(cat "$mpd")" 'lang="eng"' "$mode: audio language from the probe"
	"$LADDERD" stage -c "$T/ladderd.conf" verify "$w/ctx-dash.json" \
		>"$w/ctx-verify.json" 2>"$w/verify.err"
	is "$?" 0 "$mode: verify accepts the package"
	is "$(json "$w/ctx-verify.json" 'd["verify"]["ok"]')" true \
		"$mode: ctx.verify.ok"
done

# fmp4 shares one set of segments; mpegts has its own DASH segments.
ok "fmp4: MPD points at the HLS CMAF segments" \
	grep -q 'media="360p/seg_\$Number%05d\$.m4s"' "$T/work-fmp4/package/manifest.mpd"
ok "fmp4: no dash/ copy" test ! -e "$T/work-fmp4/package/dash"
ok "mpegts: DASH segments in dash/<rung>/" \
	test -s "$T/work-mpegts/package/dash/240p/seg_00002.m4s" -a \
	-s "$T/work-mpegts/package/dash/audio/init.mp4"

# verify: a deleted segment.
w=$T/work-fmp4
mv "$w/package/240p/seg_00001.m4s" "$T/saved.m4s"
"$LADDERD" stage -c "$T/ladderd.conf" verify "$w/ctx-dash.json" \
	>"$w/out.json" 2>&1
ok "verify fails when a segment is missing" test "$?" -ne 0
like "$(json "$w/out.json" 'd["error"]["message"]' 2>&1; cat "$w/out.json")" \
	"240p/seg_00001.m4s" "the message names the missing segment"
mv "$T/saved.m4s" "$w/package/240p/seg_00001.m4s"

# verify: a rung whose keyframes differ.
python3 - "$w/ctx-dash.json" "$w/ctx-kf.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for r in d['renditions']:
    if r['rung'] == '240p':
        r['transcode']['keyframes'][1] += 0.04
json.dump(d, open(sys.argv[2], 'w'))
PY
"$LADDERD" stage -c "$T/ladderd.conf" verify "$w/ctx-kf.json" \
	>"$w/out.json" 2>&1
ok "verify fails when a rung's keyframes differ" test "$?" -ne 0
like "$(cat "$w/out.json")" "rung 240p: keyframes differ from 360p at 4\.000 s" \
	"the message names the rung and the time"

done_testing
