// harness.js - one player (hls.js, dash.js or Shaka Player) on the page's
// <video>, behind one small API (window.LP) that drive.mjs and the preview
// page call. The player library is loaded on demand from /lib/ (serve.py
// serves the node_modules dist files there).
//
//   await LP.load(kind, url)  kind: "hls" (hls.js), "dash" (dash.js),
//                             "shaka" (Shaka Player, DASH or HLS by URL)
//                             -> { rungs: [{ index, id, width, height,
//                                  bandwidth, codecs }] (tallest first),
//                                  duration }
//   await LP.setRung(i)       force rung i (ABR off), dropping what is
//                             buffered of other rungs
//   LP.auto()                 ABR on again
//   await LP.seek(t, ms)      seek (paused or not), wait for seeked and the
//                             first frame presented after it
//   await LP.playUntil(t, ms) play until currentTime >= t, or to the end
//                             when t is null ("ended")
//   LP.pause()
//   LP.grab()                 the presented frame as base64 RGBA (canvas)
//   LP.info()                 the state: times, sizes, decoded bytes,
//                             buffered ranges, rung, errors
//   LP.frames                 [{ mt, w, h }] every presented frame
//                             (requestVideoFrameCallback), newest last
//   LP.tracks                 subtitle and audio tracks (tracks.mjs):
//                             text() / setText(id) / cues(), audio() /
//                             setAudio(id) / currentAudio(), audioTap()
//                             then peakHz(ms) (WebAudio analyser)
// Every wait has a time limit and ends early, with the player's own error
// object, when the player reports a fatal error.
(function () {
	'use strict';
	const video = document.getElementById('video');
	const state = {
		kind: null,
		url: null,
		player: null, // the library's player object
		rungs: [],
		errors: [], // every error the player reported: { fatal, detail }
		fatal: null, // the first fatal one
		events: [],
	};
	const frames = [];

	// JSON-safe copy of a player's error object: depth-limited, no DOM
	// nodes, no cycles, Error objects as name/message/stack, buffers as
	// their length.
	function safe(o, depth, seen) {
		depth = depth === undefined ? 4 : depth;
		seen = seen || new WeakSet();
		if (o === null || o === undefined) return o === undefined ? null : o;
		const t = typeof o;
		if (t === 'string') return o.length > 500 ? o.slice(0, 500) + '...' : o;
		if (t === 'number' || t === 'boolean') return o;
		if (t === 'function' || t === 'symbol' || t === 'bigint') return undefined;
		if (o instanceof Error || (o && o.stack && o.message !== undefined)) {
			const e = { name: o.name, message: o.message };
			if (o.code !== undefined) e.code = o.code;
			if (o.stack) e.stack = String(o.stack).split('\n').slice(0, 3).join(' | ');
			return e;
		}
		if (typeof Node !== 'undefined' && o instanceof Node) return '<' + o.nodeName + '>';
		if (o instanceof ArrayBuffer) return '<ArrayBuffer ' + o.byteLength + '>';
		if (ArrayBuffer.isView(o)) return '<' + o.constructor.name + ' ' + o.byteLength + '>';
		if (typeof XMLHttpRequest !== 'undefined' && o instanceof XMLHttpRequest)
			return { xhr: true, status: o.status, url: o.responseURL };
		if (typeof Response !== 'undefined' && o instanceof Response)
			return { status: o.status, url: o.url };
		if (seen.has(o)) return '<cycle>';
		seen.add(o);
		if (depth <= 0) return Array.isArray(o) ? '<array ' + o.length + '>' : '<object>';
		if (Array.isArray(o)) return o.slice(0, 20).map((v) => safe(v, depth - 1, seen));
		const r = {};
		let n = 0;
		for (const k in o) {
			if (n++ > 40) break;
			let v;
			try {
				v = o[k];
			} catch (e) {
				continue;
			}
			const s = safe(v, depth - 1, seen);
			if (s !== undefined) r[k] = s;
		}
		return r;
	}

	function note(type, detail) {
		state.events.push({ ms: Math.round(performance.now()), type, detail });
		if (state.events.length > 300) state.events.shift();
	}

	function report(fatal, detail) {
		const d = safe(detail);
		state.errors.push({ fatal, detail: d });
		if (state.errors.length > 100) state.errors.splice(1, 1);
		if (fatal && !state.fatal) state.fatal = d;
		note(fatal ? 'fatal' : 'error', d);
	}

	video.addEventListener('error', () => {
		const e = video.error;
		report(true, { source: 'HTMLMediaElement', code: e && e.code, message: e && e.message });
	});
	for (const ev of ['loadedmetadata', 'playing', 'waiting', 'seeking', 'seeked', 'ended', 'stalled'])
		video.addEventListener(ev, () => note(ev, Math.round(video.currentTime * 1000) / 1000));
	video.addEventListener('resize', () => note('resize', video.videoWidth + 'x' + video.videoHeight));

	function onFrame(now, md) {
		frames.push({ mt: md.mediaTime, w: md.width, h: md.height });
		if (frames.length > 2000) frames.splice(0, 500);
		video.requestVideoFrameCallback(onFrame);
	}
	if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(onFrame);

	function loadScript(src) {
		return new Promise((resolve, reject) => {
			const s = document.createElement('script');
			s.src = src;
			s.onload = resolve;
			s.onerror = () => reject(new Error('cannot load ' + src));
			document.head.appendChild(s);
		});
	}

	function sleep(ms) {
		return new Promise((r) => setTimeout(r, ms));
	}

	function ranges(tr) {
		const r = [];
		for (let i = 0; tr && i < tr.length; i++)
			r.push([Math.round(tr.start(i) * 1000) / 1000, Math.round(tr.end(i) * 1000) / 1000]);
		return r;
	}

	class Timeout extends Error {}
	function fatalError() {
		const e = new Error(state.kind + ': fatal error: ' + JSON.stringify(state.fatal));
		e.playerError = state.fatal;
		return e;
	}

	// Polls cond() every 20 ms until it is true, a fatal error, or ms.
	async function until(cond, ms, what) {
		const end = performance.now() + ms;
		for (;;) {
			if (state.fatal) throw fatalError();
			if (cond()) return;
			if (performance.now() > end)
				throw new Timeout('timed out after ' + ms + ' ms waiting for ' + (typeof what === 'function' ? what() : what));
			await sleep(20);
		}
	}

	// --- the players ------------------------------------------------------
	const players = {
		hls: {
			async load(url) {
				await loadScript('/lib/hls.js');
				if (!window.Hls || !Hls.isSupported()) throw new Error('hls.js: not supported here (no MSE?)');
				const hls = new Hls({ capLevelToPlayerSize: false, startLevel: 0, debug: !!window.LP_DEBUG });
				state.player = hls;
				hls.on(Hls.Events.ERROR, (ev, d) =>
					report(!!d.fatal, {
						player: 'hls.js', type: d.type, details: d.details, fatal: d.fatal,
						reason: d.reason, error: d.error, url: (d.frag && d.frag.url) || d.url,
						level: d.level, response: d.response,
					}));
				hls.on(Hls.Events.LEVEL_SWITCHED, (ev, d) => note('level', d.level));
				const parsed = new Promise((resolve) => hls.once(Hls.Events.MANIFEST_PARSED, resolve));
				hls.loadSource(url);
				hls.attachMedia(video);
				await Promise.race([parsed, until(() => false, 15000, 'MANIFEST_PARSED')]);
				return hls.levels.map((l, i) => ({
					index: i, id: String(i), width: l.width, height: l.height,
					bandwidth: l.bitrate, codecs: [l.videoCodec, l.audioCodec].filter(Boolean).join(','),
				}));
			},
			set(r) {
				state.player.currentLevel = r.index; // manual level: ABR off, buffer flushed
			},
			auto() {
				state.player.currentLevel = -1;
			},
			current() {
				return String(state.player.currentLevel);
			},
		},
		dash: {
			async load(url) {
				await loadScript('/lib/dash.js');
				const p = dashjs.MediaPlayer().create();
				state.player = p;
				p.updateSettings({
					debug: { logLevel: window.LP_DEBUG ? dashjs.Debug.LOG_LEVEL_DEBUG : dashjs.Debug.LOG_LEVEL_WARNING },
					streaming: { abr: { autoSwitchBitrate: { video: false, audio: false } } },
				});
				const E = dashjs.MediaPlayer.events;
				p.on(E.ERROR, (e) => report(true, { player: 'dash.js', event: 'error', error: e.error }));
				p.on(E.PLAYBACK_ERROR, (e) => report(true, { player: 'dash.js', event: 'playbackError', error: e.error }));
				p.on(E.QUALITY_CHANGE_RENDERED, (e) =>
					note('quality', e.mediaType + ':' + (e.newRepresentation && e.newRepresentation.id)));
				const inited = new Promise((resolve) => p.on(E.STREAM_INITIALIZED, resolve));
				p.initialize(video, url, false);
				await Promise.race([inited, until(() => false, 15000, 'STREAM_INITIALIZED')]);
				return p.getRepresentationsByType('video').map((r) => ({
					index: null, id: r.id, width: r.width, height: r.height,
					bandwidth: r.bandwidth, codecs: r.codecs,
				}));
			},
			set(r) {
				state.player.updateSettings({ streaming: { abr: { autoSwitchBitrate: { video: false } } } });
				state.player.setRepresentationForTypeById('video', r.id, true);
			},
			auto() {
				state.player.updateSettings({ streaming: { abr: { autoSwitchBitrate: { video: true } } } });
			},
			current() {
				const r = state.player.getCurrentRepresentationForType('video');
				return r ? r.id : null;
			},
		},
		shaka: {
			async load(url) {
				await loadScript('/lib/shaka.js');
				shaka.polyfill.installAll();
				if (!shaka.Player.isBrowserSupported()) throw new Error('shaka: browser not supported');
				const p = new shaka.Player();
				state.player = p;
				await p.attach(video);
				p.configure({ abr: { enabled: false } });
				p.addEventListener('error', (ev) =>
					report(ev.detail.severity === shaka.util.Error.Severity.CRITICAL, {
						player: 'shaka', severity: ev.detail.severity, category: ev.detail.category,
						code: ev.detail.code, data: ev.detail.data, message: ev.detail.message,
					}));
				p.addEventListener('variantchanged', () => note('variant', this.current()));
				p.addEventListener('adaptation', () => note('adaptation', this.current()));
				try {
					await p.load(url);
				} catch (e) {
					report(true, { player: 'shaka', phase: 'load', severity: e.severity, category: e.category,
						code: e.code, data: e.data, message: e.message });
					throw fatalError();
				}
				// One variant per video rung (audio is one rendition).
				const seen = new Map();
				for (const t of p.getVariantTracks()) {
					const k = t.width + 'x' + t.height;
					if (!seen.has(k) || t.active) seen.set(k, t);
				}
				return [...seen.values()].map((t) => ({
					index: null, id: String(t.id), width: t.width, height: t.height,
					bandwidth: t.bandwidth, codecs: t.codecs,
				}));
			},
			set(r) {
				const p = state.player;
				p.configure({ abr: { enabled: false } });
				const t = p.getVariantTracks().find((v) => String(v.id) === r.id);
				p.selectVariantTrack(t, true, 0);
			},
			auto() {
				state.player.configure({ abr: { enabled: true } });
			},
			current() {
				const t = state.player.getVariantTracks().find((v) => v.active);
				return t ? String(t.id) : null;
			},
		},
	};

	// --- tracks: subtitles and audio languages (t0510) -------------------
	// Each returns / takes plain data: text and audio tracks as
	// { id, lang, label } in the player's own order.
	const trackApi = {
		hls: {
			text: () => state.player.subtitleTracks.map((t, i) => ({ id: i, lang: t.lang, label: t.name, forced: !!t.forced })),
			setText(id) {
				state.player.subtitleDisplay = true;
				state.player.subtitleTrack = id;
			},
			textOff() {
				state.player.subtitleTrack = -1;
			},
			currentText: () => state.player.subtitleTrack,
			audio: () => state.player.audioTracks.map((t, i) => ({ id: i, lang: t.lang, label: t.name })),
			setAudio(id) {
				state.player.audioTrack = id;
			},
			currentAudio: () => state.player.audioTrack,
		},
		dash: {
			text: () => state.player.getTracksFor('text').map((t) => ({
				id: t.index, lang: t.lang, label: (t.labels && t.labels[0] && t.labels[0].text) || '',
				forced: (t.roles || []).some((r) => (r.value || r) === 'forced-subtitle'),
			})),
			setText(id) {
				const p = state.player;
				p.enableText(true);
				const all = p.getTracksFor('text');
				p.setTextTrack(all.findIndex((t) => t.index === id));
			},
			textOff() {
				state.player.setTextTrack(-1);
			},
			currentText: () => {
				const t = state.player.getCurrentTrackFor('text');
				return t ? t.index : null;
			},
			audio: () => state.player.getTracksFor('audio').map((t) => ({ id: t.index, lang: t.lang, label: (t.labels && t.labels[0] && t.labels[0].text) || '' })),
			setAudio(id) {
				const p = state.player;
				p.setCurrentTrack(p.getTracksFor('audio').find((t) => t.index === id));
			},
			currentAudio: () => {
				const t = state.player.getCurrentTrackFor('audio');
				return t ? t.index : null;
			},
		},
		shaka: {
			text: () => state.player.getTextTracks().map((t) => ({ id: t.id, lang: t.language, label: t.label || '', forced: !!t.forced })),
			setText(id) {
				// Shaka 5: selecting a text track shows it.
				const p = state.player;
				p.selectTextTrack(p.getTextTracks().find((t) => t.id === id));
			},
			// Shaka 5 has no visibility switch (a selection shows its
			// track), and selecting again is enough there.
			textOff() {},
			currentText: () => {
				const t = state.player.getTextTracks().find((x) => x.active);
				return t ? t.id : null;
			},
			audio: () => state.player.getAudioTracks().map((t, i) => ({ id: i, lang: t.language, label: t.label || '' })),
			setAudio(id) {
				const p = state.player;
				p.selectAudioTrack(p.getAudioTracks()[id]);
			},
			currentAudio: () => state.player.getAudioTracks().findIndex((t) => t.active),
		},
	};

	// Cues of the page's text tracks in language `lang` (ISO 639-1 or -2,
	// compared as normalised by norm()), those showing first, else any with
	// cues: [{ start, end, text }].
	const ISO1 = { eng: 'en', fra: 'fr', fre: 'fr', deu: 'de', ger: 'de', spa: 'es' };
	const norm = (l) => {
		const x = String(l || '').toLowerCase().split('-')[0];
		return ISO1[x] || x;
	};
	function shownCues(lang) {
		const tts = [...video.textTracks].filter((t) => !lang || norm(t.language) === norm(lang));
		let pick = tts.filter((t) => t.mode === 'showing' && t.cues && t.cues.length);
		if (!pick.length) pick = tts.filter((t) => t.cues && t.cues.length);
		const out = [];
		for (const t of pick)
			for (const c of t.cues)
				out.push({ start: c.startTime, end: c.endTime, text: c.text, track: t.label, lang: t.language, mode: t.mode });
		return out;
	}

	// WebAudio: the element's sound goes through an analyser (and not to
	// the speakers); peakHz() is the strongest frequency over `ms`.
	let audioCtx = null;
	let analyser = null;
	async function audioTap() {
		if (analyser) return;
		audioCtx = new AudioContext();
		const src = audioCtx.createMediaElementSource(video);
		analyser = audioCtx.createAnalyser();
		analyser.fftSize = 8192;
		analyser.smoothingTimeConstant = 0;
		const sink = audioCtx.createGain();
		sink.gain.value = 0;
		src.connect(analyser);
		analyser.connect(sink);
		sink.connect(audioCtx.destination);
		await audioCtx.resume();
		video.muted = false;
	}
	async function peakHz(ms) {
		const bins = new Float32Array(analyser.frequencyBinCount);
		const sum = new Float32Array(analyser.frequencyBinCount);
		const end = performance.now() + ms;
		let n = 0;
		while (performance.now() < end) {
			analyser.getFloatFrequencyData(bins);
			for (let i = 0; i < bins.length; i++) sum[i] += Math.pow(10, bins[i] / 10);
			n++;
			await sleep(50);
		}
		let best = 1;
		for (let i = 2; i < sum.length; i++) if (sum[i] > sum[best]) best = i;
		const hz = (best * audioCtx.sampleRate) / analyser.fftSize;
		return { hz, level: sum[best] / Math.max(n, 1), frames: n, ctxState: audioCtx.state };
	}

	const LP = {
		state,
		tracks: {
			text: () => trackApi[state.kind].text(),
			setText: (id) => trackApi[state.kind].setText(id),
			// No text track: a retry then selects its track anew.
			textOff: () => trackApi[state.kind].textOff(),
			currentText: () => trackApi[state.kind].currentText(),
			audio: () => trackApi[state.kind].audio(),
			setAudio: (id) => trackApi[state.kind].setAudio(id),
			currentAudio: () => trackApi[state.kind].currentAudio(),
			cues: shownCues,
			all: () => [...video.textTracks].map((t) => ({ label: t.label, lang: t.language, kind: t.kind, mode: t.mode, cues: t.cues ? t.cues.length : null })),
			audioTap,
			peakHz,
		},
		frames,
		safe,
		async load(kind, url) {
			const impl = players[kind];
			if (!impl) throw new Error('unknown player ' + kind);
			state.kind = kind;
			state.url = url;
			video.muted = true;
			const rungs = await impl.load(url);
			rungs.sort((a, b) => b.height * b.width - a.height * a.width);
			rungs.forEach((r, i) => (r.slot = i));
			state.rungs = rungs;
			await until(() => video.readyState >= 1 && isFinite(video.duration), 15000, 'loadedmetadata');
			return { rungs, duration: video.duration };
		},
		async setRung(i) {
			const r = state.rungs[i];
			players[state.kind].set(r);
			await until(() => this.rung() === i, 5000, 'rung ' + i + ' to become current');
		},
		auto() {
			players[state.kind].auto();
		},
		rung() {
			const id = players[state.kind].current();
			const r = state.rungs.find((x) => x.id === id);
			return r ? r.slot : null;
		},
		async seek(t, ms) {
			ms = ms || 10000;
			const before = frames.length;
			let seeked = false;
			const on = () => (seeked = true);
			video.addEventListener('seeked', on, { once: true });
			video.currentTime = t;
			await until(() => seeked && video.readyState >= 2, ms,
				() => 'seek to ' + t + ' (seeked=' + seeked + ', readyState=' + video.readyState + ')');
			// The frame presented for the new position, when the player
			// reports one soon (a paused seek does not always get a
			// requestVideoFrameCallback, and a callback for a frame from
			// before the seek may still arrive): null otherwise.
			const near = () => frames.length > before && Math.abs(frames[frames.length - 1].mt - t) < 0.5;
			try {
				await until(near, 500, 'a frame near ' + t);
			} catch (e) {
				if (!(e instanceof Timeout)) throw e;
			}
			if (!near()) return null;
			return frames[frames.length - 1];
		},
		async playUntil(t, ms, rate) {
			video.playbackRate = rate || 1;
			const p = video.play();
			if (p && p.catch) p.catch((e) => report(false, { source: 'play()', error: e }));
			if (t === null || t === undefined) await until(() => video.ended, ms, 'ended');
			else await until(() => video.currentTime >= t || video.ended, ms, 'currentTime >= ' + t);
			return this.info();
		},
		pause() {
			video.pause();
		},
		grab() {
			const w = video.videoWidth;
			const h = video.videoHeight;
			const c = document.createElement('canvas');
			c.width = w;
			c.height = h;
			const g = c.getContext('2d', { willReadFrequently: true });
			g.drawImage(video, 0, 0, w, h);
			const px = g.getImageData(0, 0, w, h).data;
			let s = '';
			for (let i = 0; i < px.length; i += 0x8000)
				s += String.fromCharCode.apply(null, px.subarray(i, i + 0x8000));
			return { width: w, height: h, rgba: btoa(s), mt: frames.length ? frames[frames.length - 1].mt : null };
		},
		info() {
			const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : {};
			return {
				player: state.kind,
				t: Math.round(video.currentTime * 1000) / 1000,
				duration: video.duration,
				paused: video.paused,
				ended: video.ended,
				readyState: video.readyState,
				networkState: video.networkState,
				videoWidth: video.videoWidth,
				videoHeight: video.videoHeight,
				rung: state.rungs.length ? LP.rung() : null,
				buffered: ranges(video.buffered),
				audioDecodedBytes: video.webkitAudioDecodedByteCount,
				videoDecodedBytes: video.webkitVideoDecodedByteCount,
				audioTracks: video.audioTracks ? video.audioTracks.length : null,
				framesTotal: q.totalVideoFrames,
				framesDropped: q.droppedVideoFrames,
				presented: frames.length,
				lastFrame: frames.length ? frames[frames.length - 1] : null,
				errors: state.errors.length,
				fatal: state.fatal,
				sourceBuffers: LP.sourceBuffers(),
			};
		},
		// Buffered ranges per MSE SourceBuffer (audio/video start times tell
		// how each player placed the edit-listed fMP4 fragments).
		sourceBuffers() {
			const out = [];
			const msrc = window.__lpMediaSources || [];
			for (const m of msrc)
				for (let i = 0; i < m.sourceBuffers.length; i++) {
					const b = m.sourceBuffers[i];
					out.push({ type: b.__lpType || '?', buffered: ranges(b.buffered), timestampOffset: b.timestampOffset });
				}
			return out;
		},
		events() {
			return state.events.slice(-40);
		},
	};

	// Remember every MediaSource and the MIME type of each SourceBuffer, so
	// the driver can see what each player appended where.
	for (const MS of [window.MediaSource, window.ManagedMediaSource]) {
		if (!MS) continue;
		const add = MS.prototype.addSourceBuffer;
		MS.prototype.addSourceBuffer = function (type) {
			(window.__lpMediaSources = window.__lpMediaSources || []).includes(this) ||
				window.__lpMediaSources.push(this);
			const b = add.call(this, type);
			b.__lpType = type;
			note('addSourceBuffer', type);
			return b;
		};
	}

	window.LP = LP;
})();
