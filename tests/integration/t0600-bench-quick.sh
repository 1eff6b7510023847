#!/bin/sh
# t0600-bench-quick: contrib/bench/ladder --quick (2 s 1080p source, one run
# each of A = ladderd run, B = the FFmpeg CLI one-command ladder, C = the
# old step-by-step pipeline, no warm-up) exits 0 and writes a JSON that
# parses, with wall and CPU figures for A, B and C, the A/B and A/C ratios,
# and per-rung bit rates and PSNR/SSIM for A and B. Not a timing test: no
# threshold on any figure, only that they are there and sane (> 0).
. "$(dirname "$0")/lib.sh"

require python3 ffmpeg ffprobe ladderd

BENCH=$LADDERD_SRC/contrib/bench/ladder
ok "contrib/bench/ladder is executable" test -x "$BENCH"

"$PY" "$BENCH" --quick --ladderd "$LADDERD" --out "$T/bench" \
	>"$T/bench.out" 2>"$T/bench.err"
rc=$?
is "$rc" 0 "ladder --quick exits 0"
[ "$rc" = 0 ] || sed 's/^/# /' "$T/bench.err" | tail -20

J=$T/bench/results.json
ok "results.json is written and parses" "$PY" -c \
	'import json,sys; json.load(open(sys.argv[1]))' "$J"

cat >"$T/check.py" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
err = []
num = lambda x: isinstance(x, (int, float)) and not isinstance(x, bool)
for v in 'ABC':
    var = d.get('variants', {}).get(v)
    if not var or not var.get('runs'):
        err.append('%s: no runs' % v)
        continue
    for r in var['runs']:
        for k in ('wall_s', 'cpu_s', 'user_s', 'rss_max_single_kb'):
            if not num(r.get(k)) or r[k] <= 0:
                err.append('%s: run %s: %s = %r' % (v, r.get('run'), k, r.get(k)))
    for k in ('wall_s', 'cpu_s'):
        if not num(var.get('median', {}).get(k)):
            err.append('%s: no median %s' % (v, k))
for p in ('A/B', 'A/C'):
    for k in ('wall', 'cpu'):
        if not num(d.get('ratios', {}).get(p, {}).get(k, {}).get('median')):
            err.append('ratio %s %s missing' % (p, k))
for v in 'AB':
    rungs = d.get('variants', {}).get(v, {}).get('rungs', [])
    if [r.get('name') for r in rungs] != ['1080p', '720p', '480p', '360p']:
        err.append('%s: rungs %s' % (v, [r.get('name') for r in rungs]))
    for r in rungs:
        for k in ('psnr_y', 'psnr_avg', 'ssim_all', 'avg_kbps', 'peak_kbps'):
            if not num(r.get(k)) or r[k] <= 0:
                err.append('%s %s: %s = %r' % (v, r.get('name'), k, r.get(k)))
        if num(r.get('psnr_avg')) and not 20 < r['psnr_avg'] < 100:
            err.append('%s %s: PSNR %s dB is not plausible' % (v, r['name'], r['psnr_avg']))
        if r.get('frames_compared') != 60:
            err.append('%s %s: %r frames compared, want 60' % (v, r.get('name'), r.get('frames_compared')))
m = d.get('machine', {})
if not m.get('nproc') or not m.get('cpu_model') or len(d.get('loadavg_start', [])) != 3:
    err.append('machine: %s' % m)
if not d.get('date'):
    err.append('no date')
print('\n'.join(err))
PY
is "$("$PY" "$T/check.py" "$J" 2>&1)" "" \
	"A, B, C have wall/CPU figures, ratios, per-rung PSNR/SSIM/bit rates, machine"
like "$(cat "$T/bench.out")" "A/B +wall [0-9.]+ +CPU [0-9.]+" "the table shows A/B"
like "$(cat "$T/bench.out")" "720p +1280x720 +\\|" "and a row per rung"

# contrib/bench/floor on the same 2 s source: each piece alone, then side by
# side on the cores; its JSON adds what running side by side costs.
FLOOR=$LADDERD_SRC/contrib/bench/floor
"$PY" "$FLOOR" --out "$T/bench" --duration 2 --runs 1 --side-by-side \
	--results "$J" >"$T/floor.out" 2>"$T/floor.err"
rc=$?
is "$rc" 0 "floor --side-by-side exits 0"
[ "$rc" = 0 ] || sed 's/^/# /' "$T/floor.err" | tail -20
cat >"$T/floor.py" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
s = d.get('side_by_side', {})
parts = [p['part'] for p in d.get('parts', [])]
err = []
if len(parts) != 9 or 'decode' not in parts:
    err.append('parts %s' % parts)
if not d.get('floor_cpu_s', 0) > 0:
    err.append('floor_cpu_s %r' % d.get('floor_cpu_s'))
# Side by side a piece cannot cost much less than alone (0.8: rusage noise
# on a 2 s source), and the floor grows with it.
if not 0.8 < s.get('cost_factor', 0) < 3:
    err.append('cost_factor %r' % s.get('cost_factor'))
if abs(s.get('floor_cpu_s', 0) - d.get('floor_cpu_s', 0) * s.get('cost_factor', 0)) > 0.05:
    err.append('side-by-side floor %r' % s.get('floor_cpu_s'))
runs = s.get('runs', [])
if len(runs) != 1 or sorted(runs[0].get('parts', {})) != sorted(parts):
    err.append('runs %r' % runs)
for k in ('best_a_over_b_wall', 'best_a_over_b_cpu'):
    if not 0 < s.get(k, 0) < 10:
        err.append('%s %r' % (k, s.get(k)))
print('\n'.join(err))
PY
is "$("$PY" "$T/floor.py" "$T/bench/floor.json" 2>&1)" "" \
	"floor.json: 9 pieces, the side-by-side cost and floor, best A/B"
like "$(cat "$T/floor.out")" "side by side: each piece costs [0-9.]+ x" \
	"and the output says what side by side costs"

"$PY" "$BENCH" --ladderd "$T/nope" --quick --out "$T/b2" >/dev/null 2>"$T/err2"
ok "a missing ladderd fails" test "$?" -ne 0
like "$(cat "$T/err2")" "not an executable" "with a clear message"

done_testing
