#!/usr/bin/env node
// tracks.mjs - subtitle and audio tracks of a served ladderd package in real
// players (hls.js, dash.js, Shaka Player) in headless Chromium (t0510).
//
//   node tracks.mjs --base http://127.0.0.1:PORT --label NAME
//        --players hls,dash,shaka-dash,shaka-hls --duration 6 [--rate 2]
//        [--subs 'eng=0.5,2.25,4.7;fra=1,3.3']  expected cue starts (s) per
//                                               subtitle language
//        [--sub-offset hls=0.08,shaka-hls=0.08]  where a player is expected
//                                               to put them later (MPEG-TS:
//                                               the picture's delay)
//        [--tolerance 0.05]
//        [--audio 'eng=440,fra=1000']          expected tone (Hz) per audio
//                                               language
//
// serve.py serves the package under /pkg/ and page.html + harness.js. Per
// player, in a fresh browser context:
//   subtitles listed  the player lists one text track per --subs language
//   cues LANG         that track selected, played 0 -> end: every expected
//                     cue start has a cue within --tolerance (after the
//                     player's --sub-offset), and no other cue exists
//   audio listed      the player lists one audio track per --audio language
//   audio LANG        that track selected, the element's sound through a
//                     WebAudio analyser: the strongest frequency over 1 s of
//                     playback is the track's tone (within 3 %)
// Output as drive.mjs: `R<TAB>0|1<TAB>name<TAB>diagnosis`, `#<TAB>figure`.
import { chromium } from 'playwright-core';

const args = {};
for (let i = 2; i < process.argv.length; i++) {
	const a = process.argv[i];
	if (!a.startsWith('--')) usage('unexpected argument ' + a);
	args[a.slice(2)] = process.argv[++i];
}
function usage(msg) {
	console.error('tracks.mjs: ' + msg);
	process.exit(2);
}
if (!args.base) usage('--base URL is required');
const BASE = args.base.replace(/\/$/, '');
const LABEL = args.label || 'package';
const PLAYERS = (args.players || 'hls,dash,shaka-dash,shaka-hls').split(',');
const DURATION = Number(args.duration || 0);
const RATE = Number(args.rate || 2);
const TOL = Number(args.tolerance || 0.05);
const MULT = Number(args['timeout-mult'] || process.env.LADDERD_TEST_TIMEOUT_MULT || 1);
const CHROMIUM = args.chromium || process.env.CHROMIUM || '/usr/bin/chromium';
const parseMap = (s, f) => Object.fromEntries((s || '').split(';').filter(Boolean)
	.map((kv) => kv.split('=')).map(([k, v]) => [k, f(v)]));
const SUBS = parseMap(args.subs, (v) => v.split(',').map(Number));
const AUDIO = parseMap(args.audio, Number);
const SUB_OFFSET = Object.fromEntries((args['sub-offset'] || '').split(',').filter(Boolean)
	.map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]));

const PLAYER_DEFS = {
	hls: { lib: 'hls', name: 'hls.js', manifest: 'master.m3u8' },
	dash: { lib: 'dash', name: 'dash.js', manifest: 'manifest.mpd' },
	'shaka-dash': { lib: 'shaka', name: 'shaka(dash)', manifest: 'manifest.mpd' },
	'shaka-hls': { lib: 'shaka', name: 'shaka(hls)', manifest: 'master.m3u8' },
};

const out = (line) => process.stdout.write(line.replace(/\r?\n/g, ' | ') + '\n');
const result = (pass, name, diag) => out(['R', pass ? '0' : '1', name, pass ? '' : diag || ''].join('\t'));
const figure = (text) => out('#\t' + text);
const ms = (s) => Math.round(s * 1000 * MULT);
const r3 = (x) => Math.round(x * 1000) / 1000;

// Players report ISO 639-2 tags as given (hls.js, dash.js) or as 639-1
// (Shaka normalises): compare both as 639-1 where there is one.
const ISO1 = { eng: 'en', fra: 'fr', fre: 'fr', deu: 'de', ger: 'de', spa: 'es' };
const norm = (l) => {
	const x = String(l || '').toLowerCase().split('-')[0];
	return ISO1[x] || x;
};

async function step(page, what, limit, fn) {
	let timer;
	try {
		const v = await Promise.race([fn(), new Promise((_, rej) => {
			timer = setTimeout(() => rej(new Error('timed out after ' + limit + ' ms')), limit);
		})]);
		return { ok: true, v };
	} catch (e) {
		let st = null;
		try {
			st = await page.evaluate(() => ({ info: LP.info(), errors: LP.state.errors.slice(0, 3), events: LP.events().slice(-10) }));
		} catch (e2) {
			st = String(e2.message || e2);
		}
		return { ok: false, err: what + ': ' + String(e.message || e).split('\n')[0] + ' | state: ' + JSON.stringify(st).slice(0, 1500) };
	}
}

async function subtitles(page, key, pname) {
	const want = Object.keys(SUBS);
	let s = await step(page, 'list text tracks', ms(5), () => page.evaluate(() => LP.tracks.text()));
	const listed = s.ok ? s.v : [];
	const got = [...new Set(listed.map((t) => norm(t.lang)))].sort();
	const exp = [...new Set(want.map(norm))].sort();
	result(s.ok && JSON.stringify(got) === JSON.stringify(exp), `${pname} ${LABEL}: subtitle tracks listed with their languages`,
		s.ok ? `listed ${JSON.stringify(listed)}, want ${exp}` : s.err);
	figure(`${pname} ${LABEL}: text tracks ${JSON.stringify(listed)}`);
	const off = SUB_OFFSET[key] || 0;
	for (const lang of want) {
		const t = listed.find((x) => norm(x.lang) === norm(lang));
		const name = `${pname} ${LABEL}: ${lang} cues at the source's times` + (off ? ` (+${off} s, the picture's delay)` : '');
		if (!t) {
			result(false, name, 'no track for ' + lang);
			continue;
		}
		s = await step(page, 'select ' + lang + ' and play', ms(3 * DURATION / RATE + 45), () => page.evaluate(async ([id, l, d, r]) => {
			const wait = async (cond, ms) => {
				const end = performance.now() + ms;
				while (!cond() && performance.now() < end) await new Promise((res) => setTimeout(res, 50));
			};
			// dash.js ignores a text switch made while `ended`: seek first.
			LP.pause();
			await LP.seek(0, 10000);
			await LP.tracks.setText(id);
			await wait(() => String(LP.tracks.currentText()) === String(id), 5000);
			let passes = 0;
			let cues = [];
			// Another pass (three in all) when one shows no cue at all:
			// Shaka, busy starting its streams, sometimes drops a
			// selection made at once, and dash.js once kept the first
			// track showing with no cue loaded (both seen under load), so
			// a retry turns text off, then selects the track anew
			// (selecting the track it already shows is a no-op in
			// dash.js: CI saw it keep the empty track through three
			// passes); the cue times are what is checked.
			while (passes < 3 && !cues.length) {
				if (passes) {
					await LP.seek(0, 10000);
					await LP.tracks.textOff();
					await wait(() => String(LP.tracks.currentText()) !== String(id), 1000);
					await LP.tracks.setText(id);
					await wait(() => String(LP.tracks.currentText()) === String(id), 5000);
				}
				await LP.playUntil(null, d, r);
				// the last segment's cues may arrive just after `ended`
				await wait(() => LP.tracks.cues(l).length > 0, 1000);
				cues = LP.tracks.cues(l);
				passes++;
			}
			return { cues, all: LP.tracks.all(), passes, current: LP.tracks.currentText() };
		}, [t.id, t.lang, ms(DURATION / RATE + 20), RATE]));
		if (!s.ok) {
			result(false, name, s.err);
			continue;
		}
		const all = s.v.all;
		if (s.v.passes > 1) figure(`${pname} ${LABEL}: ${lang}: cues only on a second pass`);
		s.v = s.v.cues;
		const starts = [...new Set(s.v.map((c) => r3(c.start)))].sort((a, b) => a - b);
		const expect = SUBS[lang].map((e) => e + off);
		const errs = expect.map((e) => Math.min(...starts.map((c) => Math.abs(c - e))));
		const extra = starts.filter((c) => !expect.some((e) => Math.abs(c - e) <= TOL));
		const maxErr = Math.max(...errs);
		figure(`${pname} ${LABEL}: ${lang} cue starts ${JSON.stringify(starts)}, expected ${JSON.stringify(expect.map(r3))}, worst error ${Math.round(maxErr * 1000)} ms`);
		result(maxErr <= TOL && extra.length === 0 && starts.length === expect.length, name,
			`cue starts ${JSON.stringify(starts)} want ${JSON.stringify(expect)} (+-${TOL}); extra ${JSON.stringify(extra)}; cues ${JSON.stringify(s.v).slice(0, 600)}; text tracks ${JSON.stringify(all)}`);
	}
}

async function audio(page, pname) {
	const want = Object.keys(AUDIO);
	let s = await step(page, 'list audio tracks', ms(5), () => page.evaluate(() => LP.tracks.audio()));
	const listed = s.ok ? s.v : [];
	const got = [...new Set(listed.map((t) => norm(t.lang)))].sort();
	const exp = [...new Set(want.map(norm))].sort();
	result(s.ok && JSON.stringify(got) === JSON.stringify(exp), `${pname} ${LABEL}: audio tracks listed with their languages`,
		s.ok ? `listed ${JSON.stringify(listed)}, want ${exp}` : s.err);
	figure(`${pname} ${LABEL}: audio tracks ${JSON.stringify(listed)}`);
	s = await step(page, 'WebAudio tap', ms(5), () => page.evaluate(() => LP.tracks.audioTap()));
	if (!s.ok) {
		result(false, `${pname} ${LABEL}: WebAudio analyser on the element`, s.err);
		return;
	}
	// Each language twice, in turn: a switch must change the sound both ways.
	for (const lang of [...want, ...want]) {
		const t = listed.find((x) => norm(x.lang) === norm(lang));
		const name = `${pname} ${LABEL}: audio ${lang} selected, the decoded sound is its ${AUDIO[lang]} Hz tone`;
		if (!t) {
			result(false, name, 'no track for ' + lang);
			continue;
		}
		s = await step(page, 'select ' + lang + ' and listen', ms(30), () => page.evaluate(async ([id]) => {
			LP.pause();
			await LP.tracks.setAudio(id);
			const end = performance.now() + 10000;
			while (String(LP.tracks.currentAudio()) !== String(id) && performance.now() < end)
				await new Promise((r) => setTimeout(r, 50));
			await LP.seek(1.0, 10000);
			await LP.playUntil(1.6, 10000, 1);
			const p = await LP.tracks.peakHz(1200);
			LP.pause();
			return { ...p, current: LP.tracks.currentAudio(), t: LP.info().t };
		}, [t.id]));
		if (!s.ok) {
			result(false, name, s.err);
			continue;
		}
		const hz = s.v.hz;
		figure(`${pname} ${LABEL}: audio ${lang}: peak ${Math.round(hz)} Hz (${s.v.frames} analyser frames, context ${s.v.ctxState}, current track ${s.v.current})`);
		result(Math.abs(hz - AUDIO[lang]) <= AUDIO[lang] * 0.03, name, `peak ${hz} Hz, want ${AUDIO[lang]}: ${JSON.stringify(s.v)}`);
	}
}

let browser;
try {
	browser = await chromium.launch({
		executablePath: CHROMIUM,
		headless: true,
		timeout: ms(30),
		args: [
			'--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
			'--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
			'--autoplay-policy=no-user-gesture-required',
			'--disable-background-media-suspend', '--disable-renderer-backgrounding',
		],
	});
} catch (e) {
	console.error('tracks.mjs: cannot start ' + CHROMIUM + ': ' + e.message);
	process.exit(2);
}
for (const key of PLAYERS) {
	const def = PLAYER_DEFS[key];
	if (!def) usage('unknown player ' + key);
	const ctx = await browser.newContext({ viewport: { width: 640, height: 400 } });
	const page = await ctx.newPage();
	page.on('response', (r) => {
		if (r.status() >= 400) console.error(`[${def.name}] HTTP ${r.status()} ${r.url()}`);
	});
	page.on('console', (m) => {
		if (m.type() === 'error') console.error(`[${def.name}] ${m.text()}`);
	});
	let s = await step(page, 'load page', ms(15), () => page.goto(`${BASE}/page.html`));
	if (s.ok)
		s = await step(page, 'load ' + def.manifest, ms(30), () =>
			page.evaluate(([k, u]) => LP.load(k, u), [def.lib, `${BASE}/pkg/${def.manifest}`]));
	result(s.ok, `${def.name} ${LABEL}: loads ${def.manifest}`, s.err);
	if (s.ok) {
		if (Object.keys(SUBS).length) await subtitles(page, key, def.name);
		if (Object.keys(AUDIO).length) await audio(page, def.name);
		s = await step(page, 'errors', ms(5), () => page.evaluate(() => LP.state.fatal));
		result(s.ok && !s.v, `${def.name} ${LABEL}: no fatal player error`, s.ok ? JSON.stringify(s.v) : s.err);
	}
	await ctx.close();
}
await browser.close();
