#!/usr/bin/env node
// thumbs.mjs - which player reads which thumbnail signalling of a served
// ladderd package, measured in headless Chromium (t0505):
//
//   node thumbs.mjs --base http://127.0.0.1:PORT --label NAME
//        --expect '[{"t":0.5,"uri":"sprite_0.jpg","x":0,"y":0,"w":160,"h":90}, ...]'
//        [--vtt thumbs/thumbnails.vtt] [--chromium /usr/bin/chromium]
//
// --expect: for each time t, the tile the package's thumbnails.vtt gives
// (the caller parses it). For every signalling a player has an API for:
//   shaka(dash)  manifest.mpd: the DASH-IF thumbnail AdaptationSet,
//                player.getImageTracks() / getThumbnails(id, t)
//   shaka(hls)   master.m3u8: EXT-X-IMAGE-STREAM-INF, same API
//   shaka(vtt)   master.m3u8 loaded, then player.addThumbnailsTrack(vtt)
//   dash.js      manifest.mpd: player.provideThumbnail(t, cb)
//   hls.js       master.m3u8: hls.js has no thumbnail API; checked: the
//                master with EXT-X-IMAGE-STREAM-INF loads with its
//                levels and no error (the image stream is ignored)
// the answer for each t must name the expected sheet and the tile's
// x, y, w, h. Output as drive.mjs: `R<TAB>0|1<TAB>name<TAB>diagnosis` and
// `#<TAB>figure` lines; exit 2 on a usage or browser start error.
import { chromium } from 'playwright-core';

const args = {};
for (let i = 2; i < process.argv.length; i++) {
	const a = process.argv[i];
	if (!a.startsWith('--')) usage('unexpected argument ' + a);
	args[a.slice(2)] = process.argv[++i];
}
function usage(msg) {
	console.error('thumbs.mjs: ' + msg);
	process.exit(2);
}
if (!args.base || !args.expect) usage('--base URL and --expect JSON are required');
const BASE = args.base.replace(/\/$/, '');
const LABEL = args.label || 'package';
const EXPECT = JSON.parse(args.expect);
const VTT = args.vtt || 'thumbs/thumbnails.vtt';
const MULT = Number(process.env.LADDERD_TEST_TIMEOUT_MULT || 1);
const CHROMIUM = args.chromium || process.env.CHROMIUM || '/usr/bin/chromium';

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

// Compare a player's answer {uri, x, y, w, h} with the expected tile.
function same(got, want) {
	return got && typeof got.uri === 'string' && got.uri.split('#')[0].split('?')[0].endsWith('/' + want.uri) &&
		Math.round(got.x) === want.x && Math.round(got.y) === want.y &&
		Math.round(got.w) === want.w && Math.round(got.h) === want.h;
}

// In the page: the tiles a Shaka player gives for each t (its first
// image track, or the one added from the VTT).
async function shakaTiles(page, vtt, times) {
	return page.evaluate(async ([vtt, times]) => {
		const p = LP.state.player;
		let track = null;
		if (vtt) track = await p.addThumbnailsTrack(vtt, 'text/vtt');
		const tracks = p.getImageTracks();
		if (!track) track = tracks[0];
		const got = [];
		for (const t of times) {
			const th = track ? await p.getThumbnails(track.id, t) : null;
			got.push(th && {
				uri: th.uris[0], x: th.positionX, y: th.positionY, w: th.width, h: th.height,
				start: th.startTime, duration: th.duration,
			});
		}
		return {
			tracks: tracks.map((x) => ({ id: x.id, w: x.width, h: x.height, layout: x.tilesLayout, mime: x.mimeType })),
			got,
		};
	}, [vtt, times]);
}

async function dashTiles(page, times) {
	return page.evaluate(async (times) => {
		const p = LP.state.player;
		const got = [];
		for (const t of times) {
			const th = await new Promise((resolve) => {
				const timer = setTimeout(() => resolve(null), 5000);
				p.provideThumbnail(t, (x) => {
					clearTimeout(timer);
					resolve(x);
				});
			});
			got.push(th && { uri: th.url, x: th.x, y: th.y, w: th.width, h: th.height });
		}
		return { tracks: [], got };
	}, times);
}

async function hlsjs(page) {
	return page.evaluate(() => {
		const h = LP.state.player;
		// Anything thumbnail-like hls.js might expose.
		const api = ['imageTracks', 'thumbnails', 'getThumbnails'].filter((k) => h[k] !== undefined);
		return { levels: h.levels.length, api, errors: LP.state.errors.length, fatal: LP.state.fatal };
	});
}

const RUNS = [
	{ name: 'shaka(dash)', lib: 'shaka', manifest: 'manifest.mpd', what: 'DASH-IF thumbnail AdaptationSet' },
	{ name: 'shaka(hls)', lib: 'shaka', manifest: 'master.m3u8', what: 'EXT-X-IMAGE-STREAM-INF image playlist' },
	{ name: 'shaka(vtt)', lib: 'shaka', manifest: 'master.m3u8', what: 'WebVTT thumbnail track (addThumbnailsTrack)', vtt: true },
	{ name: 'dash.js', lib: 'dash', manifest: 'manifest.mpd', what: 'DASH-IF thumbnail AdaptationSet (provideThumbnail)' },
	{ name: 'hls.js', lib: 'hls', manifest: 'master.m3u8', what: 'EXT-X-IMAGE-STREAM-INF' },
];

let browser;
try {
	browser = await chromium.launch({
		executablePath: CHROMIUM,
		headless: true,
		timeout: ms(30),
		args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
			'--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
			'--autoplay-policy=no-user-gesture-required'],
	});
} catch (e) {
	console.error('thumbs.mjs: cannot start ' + CHROMIUM + ': ' + e.message);
	process.exit(2);
}
const times = EXPECT.map((e) => e.t);
try {
	for (const run of RUNS) {
		const P = `${run.name} ${LABEL}`;
		const ctx = await browser.newContext();
		const page = await ctx.newPage();
		const cons = [];
		page.on('pageerror', (e) => cons.push('pageerror: ' + e.message));
		try {
			await page.goto(`${BASE}/page.html`, { timeout: ms(15) });
			await page.evaluate(([k, u]) => LP.load(k, u), [run.lib, `${BASE}/pkg/${run.manifest}`]);
			if (run.lib === 'hls') {
				const h = await hlsjs(page);
				figure(`${P}: ${run.what}: ${h.levels} levels, thumbnail API: ${h.api.length ? h.api.join(',') : 'none'}, errors ${h.errors}`);
				result(h.levels > 0 && !h.fatal && h.errors === 0,
					`${P}: a master with ${run.what} loads (the image stream is ignored, no error)`,
					JSON.stringify(h));
				continue;
			}
			const r = run.lib === 'dash' ? await dashTiles(page, times) :
				await shakaTiles(page, run.vtt ? `${BASE}/pkg/${VTT}` : null, times);
			figure(`${P}: ${run.what}: image tracks ${JSON.stringify(r.tracks)}; tiles ${JSON.stringify(r.got)}`);
			const bad = EXPECT.map((e, i) => (same(r.got[i], e) ? null : `t=${e.t}: got ${JSON.stringify(r.got[i])}, want ${JSON.stringify(e)}`)).filter(Boolean);
			result(bad.length === 0, `${P}: ${run.what}: the right tile for t=${times.join(', ')}`, bad.join('; '));
		} catch (e) {
			result(false, `${P}: ${run.what}: the right tile for t=${times.join(', ')}`,
				String(e.message || e).split('\n')[0] + (cons.length ? ' ' + cons.join(' / ') : ''));
		} finally {
			await ctx.close().catch(() => {});
		}
	}
} finally {
	await browser.close().catch(() => {});
}
