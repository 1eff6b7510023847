#!/usr/bin/env node
// drive.mjs - plays a served ladderd package in real players (hls.js,
// dash.js, Shaka Player) in headless Chromium and checks what was decoded.
//
//   node drive.mjs --base http://127.0.0.1:PORT --label NAME
//        --players hls,dash,shaka-dash,shaka-hls
//        --rungs 1280x720,854x480,640x360   (expected, tallest first)
//        --duration 6 [--audio 1] [--ref-source SRC --ref-frames 25,75,137
//        --fps 25 --min-psnr 30] [--rate 2] [--chromium /usr/bin/chromium]
//        [--frame-offset PLAYER=N,...] [--timeout-mult 1] [--dump-dir DIR]
//
// The server (serve.py) must serve the package under /pkg/ and this folder's
// page.html + harness.js. Players: hls = hls.js on /pkg/master.m3u8, dash =
// dash.js on /pkg/manifest.mpd, shaka-dash / shaka-hls = Shaka Player on
// either. For each player, in a fresh browser context:
//   load      the manifest loads, its rungs have the expected sizes
//   play      plays from 0 to `ended`; the end is within 0.25 s of --duration
//   seek      seek start / middle / near the end, play through each
//   rung N    each rung forced in turn (ABR off): presented frames have that
//             rung's size and the player reports that rung
//   audio     (--audio 1) audio was decoded (webkitAudioDecodedByteCount)
//   A/V       (--audio 1) the player gave the audio and video SourceBuffers
//             the same timestampOffset (it kept the package's A/V relation)
//   picture   top rung, paused at each --ref-frames frame (mid-frame time):
//             canvas RGB vs ffmpeg's decode of the source frame scaled to
//             the rung -> PSNR >= --min-psnr (best match of frames N-3..N+3)
//   timing    that best match is frame N itself (or N - the player's
//             --frame-offset)
// Output, one line each: `R<TAB>0|1<TAB>name<TAB>diagnosis` for a check
// (0 = pass) and `#<TAB>text` for figures. A failure names the player, the
// rung and the player's own error object. Exit 0 even when checks fail
// (the caller counts them); exit 2 on a usage or browser start error.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const args = {};
for (let i = 2; i < process.argv.length; i++) {
	const a = process.argv[i];
	if (!a.startsWith('--')) usage('unexpected argument ' + a);
	args[a.slice(2)] = process.argv[++i];
}
function usage(msg) {
	console.error('drive.mjs: ' + msg);
	process.exit(2);
}
if (!args.base) usage('--base URL is required');
const BASE = args.base.replace(/\/$/, '');
const LABEL = args.label || 'package';
const PLAYERS = (args.players || 'hls,dash,shaka-dash,shaka-hls').split(',');
const RUNGS = (args.rungs || '').split(',').filter(Boolean).map((s) => s.split('x').map(Number));
const DURATION = Number(args.duration || 0);
const AUDIO = args.audio === '1';
const RATE = Number(args.rate || 2);
const MULT = Number(args['timeout-mult'] || process.env.LADDERD_TEST_TIMEOUT_MULT || 1);
const FPS = Number(args.fps || 25);
const REF_FRAMES = (args['ref-frames'] || '').split(',').filter(Boolean).map(Number);
const MIN_PSNR = Number(args['min-psnr'] || 30);
// --frame-offset hls=2,shaka-hls=2: frames by which those players show
// the picture late (expected, measured by the caller from the segments).
const FRAME_OFFSET = Object.fromEntries((args['frame-offset'] || '').split(',').filter(Boolean)
	.map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]));
const CHROMIUM = args.chromium || process.env.CHROMIUM || '/usr/bin/chromium';

const PLAYER_DEFS = {
	hls: { lib: 'hls', name: 'hls.js', manifest: 'master.m3u8' },
	dash: { lib: 'dash', name: 'dash.js', manifest: 'manifest.mpd' },
	'shaka-dash': { lib: 'shaka', name: 'shaka(dash)', manifest: 'manifest.mpd' },
	'shaka-hls': { lib: 'shaka', name: 'shaka(hls)', manifest: 'master.m3u8' },
};

function out(line) {
	process.stdout.write(line.replace(/\r?\n/g, ' | ') + '\n');
}
function result(pass, name, diag) {
	out(['R', pass ? '0' : '1', name, pass ? '' : diag || ''].join('\t'));
}
function figure(text) {
	out('#\t' + text);
}
const ms = (s) => Math.round(s * 1000 * MULT);
const r3 = (x) => Math.round(x * 1000) / 1000;

// Reference frames: ffmpeg decodes the SOURCE (display rotation applied,
// as the ffmpeg CLI does by default) and scales frames number N-3..N+3 of
// every --ref-frames N to the rung's size; one ffmpeg run per size, kept.
const refCache = new Map();
function refFrames(w, h) {
	const key = `${w}x${h}`;
	if (refCache.has(key)) return refCache.get(key);
	const want = [...new Set(REF_FRAMES.flatMap((n) => [-3, -2, -1, 0, 1, 2, 3].map((d) => n + d)))]
		.filter((n) => n >= 0)
		.sort((a, b) => a - b);
	const expr = want.map((n) => `eq(n\\,${n})`).join('+');
	const raw = execFileSync('ffmpeg', [
		'-nostdin', '-hide_banner', '-loglevel', 'error', '-i', args['ref-source'],
		'-vf', `select=${expr},scale=${w}:${h}:flags=bicubic`, '-fps_mode', 'passthrough',
		'-f', 'rawvideo', '-pix_fmt', 'rgba', '-',
	], { maxBuffer: 1 << 30 });
	const size = w * h * 4;
	const m = new Map();
	want.forEach((n, i) => {
		if ((i + 1) * size <= raw.length) m.set(n, raw.subarray(i * size, (i + 1) * size));
	});
	refCache.set(key, m);
	return m;
}

function psnr(a, b) {
	let se = 0;
	let n = 0;
	for (let i = 0; i < a.length; i += 4) {
		for (let c = 0; c < 3; c++) {
			const d = a[i + c] - b[i + c];
			se += d * d;
		}
		n += 3;
	}
	const mse = se / n;
	return mse === 0 ? 99 : 10 * Math.log10((255 * 255) / mse);
}

// Runs fn with a time limit; on failure the diagnosis carries the page's
// state (player, times, sizes, buffered ranges, errors, recent events).
async function step(page, what, limit, fn) {
	let timer;
	const t0 = Date.now();
	try {
		const v = await Promise.race([
			fn(),
			new Promise((_, rej) => (timer = setTimeout(() => rej(new Error(`${what}: no answer in ${limit} ms`)), limit))),
		]);
		return { ok: true, v, secs: (Date.now() - t0) / 1000 };
	} catch (e) {
		let st = null;
		try {
			st = await Promise.race([
				page.evaluate(() => ({ info: LP.info(), errors: LP.state.errors.slice(0, 5), events: LP.events() })),
				new Promise((r) => setTimeout(() => r('page not answering'), 3000)),
			]);
		} catch (e2) {
			st = 'page state unavailable: ' + e2.message;
		}
		const msg = String(e.message || e).replace(/^page\.evaluate: (Error: )?/, '').split('\n')[0];
		return { ok: false, err: `${what}: ${msg}; state: ${JSON.stringify(st)}` };
	} finally {
		clearTimeout(timer);
	}
}

async function runPlayer(browser, key) {
	const def = PLAYER_DEFS[key];
	if (!def) {
		result(false, `${key} ${LABEL}: known player`, 'unknown player ' + key);
		return;
	}
	const P = `${def.name} ${LABEL}`;
	const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
	const page = await ctx.newPage();
	const console_ = [];
	page.on('console', (m) => {
		if (m.type() === 'error' || m.type() === 'warning') console_.push(m.type() + ': ' + m.text());
	});
	page.on('pageerror', (e) => console_.push('pageerror: ' + e.message));
	const consoleTail = () => (console_.length ? ' console: ' + console_.slice(-5).join(' / ') : '');
	try {
		// --- load ---------------------------------------------------------
		let s = await step(page, 'load page', ms(15), () => page.goto(`${BASE}/page.html`));
		if (!s.ok) return result(false, `${P}: loads`, s.err);
		s = await step(page, `load ${def.manifest}`, ms(30), () =>
			page.evaluate(([k, u]) => LP.load(k, u), [def.lib, `${BASE}/pkg/${def.manifest}`]));
		if (!s.ok) return result(false, `${P}: loads`, s.err + consoleTail());
		const { rungs, duration } = s.v;
		const got = rungs.map((r) => `${r.width}x${r.height}`).join(',');
		const want = RUNGS.map(([w, h]) => `${w}x${h}`).join(',');
		figure(`${P}: ${rungs.length} rungs ${got} (${rungs.map((r) => r.codecs).join(' ')}); duration ${r3(duration)} s; load ${s.secs}s`);
		result(got === want, `${P}: loads, rungs ${want}`, `rungs: got ${got}, want ${want}`);

		// --- play through from the start ----------------------------------
		s = await step(page, 'play to the end', ms(DURATION / RATE + 20), () =>
			page.evaluate(([m, r]) => LP.playUntil(null, m, r), [ms(DURATION / RATE + 15), RATE]));
		// The state after the play (or where it got stuck): audio and A/V
		// are judged on it either way.
		let i = s.ok ? s.v : null;
		if (!s.ok) {
			result(false, `${P}: plays from 0 to the end (${DURATION} s)`, s.err + consoleTail());
			const st = await step(page, 'state after the play', ms(5), () => page.evaluate(() => LP.info()));
			i = st.ok ? st.v : null;
		}
		const sb = i ? (i.sourceBuffers || []).map((b) => `${b.type.split(';')[0]} ${JSON.stringify(b.buffered)}`).join('; ') : '';
		if (i)
			figure(`${P}: played 0 -> ${i.t} s${s.ok ? '' : ' (stuck)'} in ${s.ok ? s.secs : '-'}s (rate ${RATE}), duration ${r3(i.duration)}, rung ${i.rung} ${i.videoWidth}x${i.videoHeight}, frames ${i.framesTotal} (dropped ${i.framesDropped}), audio bytes ${i.audioDecodedBytes}, video bytes ${i.videoDecodedBytes}, errors ${i.errors}; buffers: ${sb}`);
		if (s.ok) {
			const endOk = Math.abs(i.t - DURATION) <= 0.25;
			result(endOk && !i.fatal, `${P}: plays from 0 to the end (${DURATION} s)`,
				`ended at ${i.t} s (duration ${i.duration}), want ${DURATION} +- 0.25; fatal: ${JSON.stringify(i.fatal)}`);
		}
		if (AUDIO && !i) {
			result(false, `${P}: audio decoded`, 'no state from the page');
			result(false, `${P}: audio and video placed with the same timestamp offset (A/V sync kept)`, 'no state from the page');
		} else if (AUDIO) {
			result(i.audioDecodedBytes > 0, `${P}: audio decoded`,
				`webkitAudioDecodedByteCount=${i.audioDecodedBytes}, audioTracks=${i.audioTracks}, buffers: ${sb}`);
			// Lip sync as far as MSE shows it: a player that moves one
			// stream's timestamps and not the other's (timestampOffset per
			// SourceBuffer) breaks the A/V relation of the package.
			const offs = (i.sourceBuffers || []).map((b) => b.timestampOffset);
			const spread = offs.length ? Math.max(...offs) - Math.min(...offs) : 0;
			figure(`${P}: SourceBuffer timestampOffsets ${(i.sourceBuffers || []).map((b) => `${b.type.split(';')[0]} ${r3(b.timestampOffset)}`).join(', ')}`);
			result(offs.length >= 2 && spread < 0.001, `${P}: audio and video placed with the same timestamp offset (A/V sync kept)`,
				`${offs.length} SourceBuffers; audio and video shifted differently by ${r3(spread * 1000)} ms: ` +
				(i.sourceBuffers || []).map((b) => `${b.type} timestampOffset=${b.timestampOffset} buffered=${JSON.stringify(b.buffered)}`).join('; '));
		}

		// --- seeks: start, middle, near the end, play through each --------
		const seeks = [0.0, DURATION / 2, Math.max(0, DURATION - 1)];
		let seekErr = null;
		const seekFig = [];
		for (const t of seeks) {
			const to = t === seeks[2] ? null : t + 0.8;
			s = await step(page, `seek to ${r3(t)} and play`, ms(20), () =>
				page.evaluate(async ([t, to, m, r]) => {
					LP.pause();
					const f = await LP.seek(t, m);
					const i = await LP.playUntil(to, m, r);
					return { first: f, t: i.t, ended: i.ended, fatal: i.fatal };
				}, [t, to, ms(12), RATE]));
			if (!s.ok) {
				seekErr = s.err;
				break;
			}
			seekFig.push(`${r3(t)} -> first frame ${s.v.first ? r3(s.v.first.mt) : '?'} -> ${s.v.t}${s.v.ended ? ' (ended)' : ''} ${s.secs}s`);
		}
		figure(`${P}: seeks ${seekFig.join('; ')}`);
		result(!seekErr, `${P}: seeks to start, middle, near end and plays through`, (seekErr || '') + consoleTail());

		// --- each rung forced ----------------------------------------------
		for (let k = 0; k < RUNGS.length; k++) {
			const [w, h] = RUNGS[k];
			const name = `${P}: rung ${k} (${w}x${h}) forced plays at that size`;
			if (k >= rungs.length) {
				result(false, name, `the player lists only ${rungs.length} rungs`);
				continue;
			}
			s = await step(page, `force rung ${k}`, ms(30), () =>
				page.evaluate(async ([k, m, r, want]) => {
					LP.pause();
					await LP.setRung(k);
					let lead = 0;
					// A starved headless compositor may present no
					// frame in one pass: one more, at normal speed.
					let i = null;
					const sizes = {};
					for (let a = 0; a < 2 && Object.keys(sizes).length === 0; a++) {
						LP.pause();
						await LP.seek(1.0, m);
						const from = LP.frames.length;
						i = await LP.playUntil(2.6, m, a ? 1 : r);
						// A player that does not flush on a switch may
						// still present frames of the old rung it had
						// buffered at the seek target: those before the
						// first frame of the forced size are counted
						// apart (lead); every frame after must match.
						let seen = false;
						for (const f of LP.frames.slice(from)) {
							const s = f.w + 'x' + f.h;
							if (!seen && (f.w !== want[0] || f.h !== want[1])) {
								lead++;
								continue;
							}
							seen = true;
							sizes[s] = (sizes[s] || 0) + 1;
						}
					}
					return { sizes, lead, rung: i.rung, vw: i.videoWidth, vh: i.videoHeight, t: i.t };
				}, [k, ms(12), RATE, [w, h]]));
			if (!s.ok) {
				result(false, name, s.err + consoleTail());
				continue;
			}
			const v = s.v;
			const sizes = Object.keys(v.sizes);
			// Old-rung frames are allowed only before the switch shows (the
			// rest of a segment buffered before it: dash.js keeps it);
			// from the first frame of the forced size on, only that size.
			const okSize = v.vw === w && v.vh === h && sizes.length >= 1 &&
				sizes.every((x) => x === `${w}x${h}`);
			figure(`${P}: rung ${k} forced: player rung ${v.rung}, videoWidth x videoHeight ${v.vw}x${v.vh}, presented frame sizes ${JSON.stringify(v.sizes)} after ${v.lead} frame(s) of the old rung, in ${s.secs}s`);
			result(okSize && v.rung === k, name,
				`rung ${k}: player reports rung ${v.rung}; videoWidth/Height ${v.vw}x${v.vh}, presented ${JSON.stringify(v.sizes)} after ${v.lead} old-rung frame(s), want ${w}x${h}`);
		}

		// --- picture: top rung, paused on known frames ----------------------
		if (REF_FRAMES.length && args['ref-source']) {
			const [w, h] = RUNGS[0];
			const figs = [];
			let worst = 99;
			let err = null;
			const offsets = [];
			s = await step(page, 'force rung 0 for the picture check', ms(20), () =>
				page.evaluate(async ([m, r]) => {
					// As in the rung loop: switch, seek, play on (a switch
					// while paused followed by seeks can leave Shaka 5.2's
					// video buffer empty; see the t0500 notes).
					LP.pause();
					await LP.setRung(0);
					await LP.seek(1.0, m);
					await LP.playUntil(1.6, m, r);
					LP.pause();
				}, [ms(12), RATE]));
			if (!s.ok) err = s.err;
			for (const n of REF_FRAMES) {
				if (err) break;
				const t = (n + 0.5) / FPS; // mid-frame: frame n is on screen
				s = await step(page, `grab frame ${n} (t=${r3(t)})`, ms(20), () =>
					page.evaluate(async ([t, m]) => {
						LP.pause();
						const f = await LP.seek(t, m);
						await new Promise((r) => setTimeout(r, 50));
						return { f, g: LP.grab() };
					}, [t, ms(12)]));
				if (!s.ok) {
					err = s.err;
					break;
				}
				const g = s.v.g;
				if (g.width !== w || g.height !== h) {
					err = `frame ${n}: video is ${g.width}x${g.height}, want ${w}x${h}`;
					break;
				}
				const refs = refFrames(w, h);
				const px = Buffer.from(g.rgba, 'base64');
				if (!refs.has(n)) {
					err = `ffmpeg gave no reference for frame ${n} of ${args['ref-source']}`;
					break;
				}
				if (args['dump-dir']) {
					// --dump-dir: keep both pictures (raw RGBA, WxH) for a look.
					const base = join(args['dump-dir'], `${key}-${LABEL}-f${n}-${w}x${h}`);
					writeFileSync(base + '.browser.rgba', px);
					writeFileSync(base + '.ffmpeg.rgba', refs.get(n));
				}
				// Which source frame is on screen? The best match of N-3..N+3.
				let best = null;
				for (const [m, ref] of refs) {
					if (Math.abs(m - n) > 3) continue;
					const q = psnr(px, ref);
					if (!best || q > best.p) best = { d: m - n, p: q };
				}
				const exact = psnr(px, refs.get(n));
				worst = Math.min(worst, best.p);
				offsets.push(best.d);
				figs.push(`frame ${n} t=${r3(t)} (mediaTime ${s.v.f ? r3(s.v.f.mt) : '?'}): ${exact.toFixed(2)} dB` +
					(best.d ? `; on screen: frame ${n + best.d} (${best.d > 0 ? '+' : ''}${best.d}) at ${best.p.toFixed(2)} dB` : ''));
			}
			figure(`${P}: picture ${w}x${h}: ${figs.join('; ')}`);
			result(!err && worst >= MIN_PSNR, `${P}: picture of rung 0 matches the source (PSNR >= ${MIN_PSNR} dB)`,
				err || `worst ${worst.toFixed(2)} dB: ${figs.join('; ')}`);
			// Frame timing: at time t the frame of time t is on screen (or,
			// for the players given in --frame-offset, that many frames
			// earlier ones: MPEG-TS with B-frames, see t0500).
			const want = FRAME_OFFSET[key] || 0;
			result(!err && offsets.length === REF_FRAMES.length && offsets.every((d) => d === -want),
				`${P}: frame on screen at time t is the source's frame at t` + (want ? ` - ${want} frames` : ''),
				err || `source frame offsets on screen: ${JSON.stringify(offsets)}, want ${-want} for every frame: ${figs.join('; ')}`);
		}

		// --- no fatal error over the whole session ------------------------
		s = await step(page, 'final state', ms(5), () => page.evaluate(() => ({ i: LP.info(), e: LP.state.errors })));
		if (s.ok) {
			const nonFatal = s.v.e.filter((e) => !e.fatal);
			if (nonFatal.length)
				figure(`${P}: ${nonFatal.length} non-fatal player errors, first: ${JSON.stringify(nonFatal[0].detail).slice(0, 600)}`);
			result(!s.v.i.fatal, `${P}: no fatal player error`, `fatal: ${JSON.stringify(s.v.i.fatal)}`);
		} else result(false, `${P}: no fatal player error`, s.err);
	} finally {
		await ctx.close().catch(() => {});
	}
}

let browser;
try {
	// chromium.launch gives the browser a fresh, empty --user-data-dir of
	// its own (a temporary folder, removed at close); each player then
	// plays in its own new context. Only loopback is used.
	browser = await chromium.launch({
		executablePath: CHROMIUM,
		headless: true,
		timeout: ms(30),
		args: [
			'--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
			'--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
			'--autoplay-policy=no-user-gesture-required', '--force-color-profile=srgb',
			'--disable-background-media-suspend', '--disable-renderer-backgrounding',
		],
	});
} catch (e) {
	console.error('drive.mjs: cannot start ' + CHROMIUM + ': ' + e.message);
	process.exit(2);
}
try {
	figure(`${LABEL}: chromium ${browser.version()}`);
	for (const key of PLAYERS) await runPlayer(browser, key);
} finally {
	await browser.close().catch(() => {});
}
