#!/usr/bin/env node
// audio.mjs - an audio-only ladderd package (a source without video) plays
// to the end in hls.js, dash.js and Shaka Player (DASH and HLS), in headless
// Chromium (t0375):
//
//   node audio.mjs --base http://127.0.0.1:PORT --label NAME --duration S
//        [--players hls,dash,shaka-dash,shaka-hls] [--rate 2]
//
// Per player: the manifest loads (the player lists no video rung), it plays
// from 0 to `ended` within 0.25 s of --duration, audio was decoded
// (webkitAudioDecodedByteCount), no video was, and no fatal error. Output
// as drive.mjs: `R<TAB>0|1<TAB>name<TAB>diagnosis` and `#<TAB>figure`
// lines; exit 2 on a usage or browser start error.
import { chromium } from 'playwright-core';

const args = {};
for (let i = 2; i < process.argv.length; i++) {
	const a = process.argv[i];
	if (!a.startsWith('--')) usage('unexpected argument ' + a);
	args[a.slice(2)] = process.argv[++i];
}
function usage(msg) {
	console.error('audio.mjs: ' + msg);
	process.exit(2);
}
if (!args.base || !args.duration) usage('--base URL and --duration S are required');
const BASE = args.base.replace(/\/$/, '');
const LABEL = args.label || 'package';
const DURATION = Number(args.duration);
const RATE = Number(args.rate || 2);
const PLAYERS = (args.players || 'hls,dash,shaka-dash,shaka-hls').split(',');
const MULT = Number(process.env.LADDERD_TEST_TIMEOUT_MULT || 1);
const CHROMIUM = args.chromium || process.env.CHROMIUM || '/usr/bin/chromium';
const DEFS = {
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
const ms = (s) => Math.round(s * 1000 * MULT);
const r3 = (x) => Math.round(x * 1000) / 1000;

let browser;
try {
	browser = await chromium.launch({
		executablePath: CHROMIUM,
		headless: true,
		timeout: ms(30),
		args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
			'--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
			'--autoplay-policy=no-user-gesture-required', '--disable-background-media-suspend',
			'--disable-renderer-backgrounding'],
	});
} catch (e) {
	console.error('audio.mjs: cannot start ' + CHROMIUM + ': ' + e.message);
	process.exit(2);
}
try {
	for (const key of PLAYERS) {
		const def = DEFS[key];
		const P = `${def.name} ${LABEL}`;
		const ctx = await browser.newContext();
		const page = await ctx.newPage();
		const cons = [];
		page.on('pageerror', (e) => cons.push('pageerror: ' + e.message));
		try {
			await page.goto(`${BASE}/page.html`, { timeout: ms(15) });
			const l = await page.evaluate(([k, u]) => LP.load(k, u), [def.lib, `${BASE}/pkg/${def.manifest}`]);
			const video = l.rungs.filter((r) => r.width > 0 || r.height > 0);
			out(`#\t${P}: loads: ${l.rungs.length} variant(s) ${JSON.stringify(l.rungs.map((r) => [r.width, r.height, r.codecs]))}, duration ${r3(l.duration)}`);
			const i = await page.evaluate(([m, r]) => LP.playUntil(null, m, r), [ms(DURATION / RATE + 15), RATE]);
			out(`#\t${P}: played to ${i.t} s (ended ${i.ended}), audio bytes ${i.audioDecodedBytes}, video bytes ${i.videoDecodedBytes}, frames ${i.framesTotal}, errors ${i.errors}`);
			result(video.length === 0 && i.ended && Math.abs(i.t - DURATION) <= 0.25 && i.audioDecodedBytes > 0 &&
				!i.videoDecodedBytes && !i.fatal,
				`${P}: the audio-only package plays from 0 to the end (${DURATION} s), audio decoded, no video`,
				JSON.stringify({ rungs: l.rungs, t: i.t, ended: i.ended, audio: i.audioDecodedBytes, video: i.videoDecodedBytes, fatal: i.fatal }));
		} catch (e) {
			result(false, `${P}: the audio-only package plays from 0 to the end (${DURATION} s), audio decoded, no video`,
				String(e.message || e).split('\n')[0] + (cons.length ? ' ' + cons.join(' / ') : ''));
		} finally {
			await ctx.close().catch(() => {});
		}
	}
} finally {
	await browser.close().catch(() => {});
}
