// The picture view in the real window under Xvfb: a class video whose every frame shows its
// own index as ten black/white columns (bit k in column k), read back from screenshots of
// the window. Seeks to known times show the frame of that time (±1); the frame buttons step
// exactly one frame (the index the window names is the one shown); mirror flips the columns;
// the filmstrip's thumbnails load; a playhead running at 1x is followed by the picture. Frames/s shown while playing, the seek time and the lag behind
// the playhead go to test-output/e2e/metrics.json (measured, not asserted).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startApp, screenshot, takeScreenshot, ffmpeg, isolatedEnv, OUT_DIR } from './driver.mjs';
import { decodePng } from './png.mjs';

const FPS = 30;
const BITS = 10;
const DELAY_S = 2.0;
const SONG_EXPR = [
  '0.6*sin(2*PI*55*t)*exp(-18*mod(t,0.5))',
  '0.2*sin(2*PI*(220+20*mod(floor(t*2)*7,11))*t)',
  '0.15*sin(2*PI*(330+25*mod(floor(t*4/3)*5,13))*t)',
].join('+');

let dir;
let media;
let env;
const metrics = {};

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beatsync-picture-'));
  media = path.join(dir, 'media');
  fs.mkdirSync(media);
  const song = path.join(media, 'song.m4a');
  ffmpeg(['-f', 'lavfi', '-i', `aevalsrc=${SONG_EXPR.replace(/,/g, '\\,')}:s=44100:d=30`, '-ac', '2', '-c:a', 'aac', song]);
  // Frame N: column k (32 px of 320) white when bit k of N is set.
  const ms = DELAY_S * 1000;
  ffmpeg(['-f', 'lavfi', '-i', `color=c=black:s=320x180:r=${FPS}`, '-i', song, '-filter_complex',
    `[0:v]geq=lum='if(bitand(N,pow(2,floor(X/32))),235,16)':cb=128:cr=128,format=yuv420p[v];[1:a]adelay=${ms}|${ms},volume=0.5[a]`,
    '-map', '[v]', '-map', '[a]', '-t', '24', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '30', '-c:a', 'aac', '-ar', '48000',
    path.join(media, 'counter class.mp4')]);
  env = { ...isolatedEnv(path.join(dir, 'env'), dir), BEATSYNC_DATA_DIR: path.join(dir, 'data'), BEATSYNC_TEST_CONFIRM_TYPED_PATHS: 'yes' };
});

after(() => {
  // The other E2E files write their figures here too: add ours.
  const file = path.join(OUT_DIR, 'metrics.json');
  const all = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : {};
  fs.mkdirSync(OUT_DIR, { recursive: true });
  fs.writeFileSync(file, JSON.stringify({ ...all, picture: metrics }, null, 2));
  // The app's last cache writes may still land as it ends.
  if (dir) fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
});

/** The frame index the picture shows, read from a screenshot: [as is, read mirrored]. */
async function shownIndex(browser) {
  const rect = await browser.execute(() => {
    const r = document.querySelector('#picture-img').getBoundingClientRect();
    return { x: r.left, y: r.top, w: r.width, h: r.height, dpr: window.devicePixelRatio || 1 };
  });
  const png = decodePng(Buffer.from(await takeScreenshot(browser), 'base64'));
  const read = (mirrored) => {
    let n = 0;
    for (let k = 0; k < BITS; k++) {
      const col = mirrored ? BITS - 1 - k : k;
      const x = (rect.x + ((col + 0.5) * rect.w) / BITS) * rect.dpr;
      const y = (rect.y + rect.h / 2) * rect.dpr;
      if (png.luma(x, y) > 128) n |= 1 << k;
    }
    return n;
  };
  return { plain: read(false), mirrored: read(true) };
}

/** Waits until the picture shows the frame asked at `at_s` (loaded, stopped). */
async function waitShown(browser, at_s) {
  await browser.waitUntil(() => browser.execute((t) => {
    const p = window.beatsync.picture;
    const img = document.querySelector('#picture-img');
    return !p.loading && Math.abs(Number(p.box.dataset.shownS) - t) < 0.0006 && img.complete && img.naturalWidth > 0;
  }, at_s), { timeout: 20000, timeoutMsg: `the frame at ${at_s} s never showed` });
  await painted(browser);
}

/** Loaded or changed is not yet painted: a screenshot shows what the next frames drew. */
async function painted(browser) {
  await browser.executeAsync((done) => requestAnimationFrame(() => requestAnimationFrame(() => done())));
  await browser.pause(150);
}

test('the picture view shows the frame at the playhead, steps frames, mirrors, follows playback', async () => {
  const app = await startApp({ env });
  const { browser } = app;
  try {
    for (const f of ['counter class.mp4', 'song.m4a']) {
      const input = await browser.$('#path-input');
      await input.setValue(path.join(media, f));
      await (await browser.$('#path-add')).click();
    }
    await browser.waitUntil(async () => Number(await (await browser.$('#timeline')).getAttribute('data-beat-count')) > 0,
      { timeout: 240000, timeoutMsg: 'analysis never showed beat markers' });
    await (await browser.$('#picture')).scrollIntoView({ block: 'center' });
    await waitShown(browser, 0);

    // Seeks: the frame of each time (mirrored by default: the columns read right to left).
    assert.equal(await (await browser.$('#mirror')).getAttribute('aria-pressed'), 'true');
    const seeks = [];
    for (const t of [1.0, 5.55, 12.34, 19.99, 3.2]) {
      await browser.execute((s) => window.beatsync.seek(s), t);
      await waitShown(browser, t);
      const seen = await shownIndex(browser);
      const want = Math.floor(t * FPS);
      assert.ok(Math.abs(seen.mirrored - want) <= 1, `at ${t} s: frame ${seen.mirrored} shown (mirrored), ${want} expected`);
      seeks.push(await browser.execute(() => window.beatsync.picture.stats.still_ms.at(-1)));
    }
    await screenshot(browser, 'picture-mirrored');

    // Frame steps: exactly one frame each, the index the window names is the one shown.
    const before = (await shownIndex(browser)).mirrored;
    const step = async (button) => {
      const info = await browser.$('#frame-info');
      const was = await info.getText();
      await (await browser.$(button)).click();
      await browser.waitUntil(async () => (await info.getText()) !== was, { timeout: 10000, timeoutMsg: `${button} did nothing` });
      const t = Number(await (await browser.$('#timeline')).getAttribute('data-playhead'));
      await waitShown(browser, Math.round(t * 1000) / 1000);
      const named = Number((await info.getText()).match(/\d+/)[0]);
      const seen = (await shownIndex(browser)).mirrored;
      assert.equal(seen, named, `${button}: the window names frame ${named}, shows ${seen}`);
      return seen;
    };
    const first = await step('#frame-next');
    assert.ok(Math.abs(first - (before + 1)) <= 1, `${before} then ${first}`);
    assert.equal(await step('#frame-next'), first + 1);
    assert.equal(await step('#frame-next'), first + 2);
    assert.equal(await step('#frame-prev'), first + 1);

    // Mirror off: the same frame, the columns now read left to right.
    await (await browser.$('#mirror')).click();
    await browser.waitUntil(async () => (await (await browser.$('#mirror')).getAttribute('aria-pressed')) === 'false', { timeout: 5000 });
    await painted(browser);
    const plain = await shownIndex(browser);
    assert.equal(plain.plain, first + 1, 'unmirrored');
    assert.notEqual(plain.mirrored, first + 1, 'the mirror flipped the picture');
    await screenshot(browser, 'picture-plain');
    const kept = await browser.execute(() => window.__TAURI__.core.invoke('get_settings'));
    assert.equal(kept.mirror, false, 'kept in the app settings');

    // The filmstrip's thumbnails come through the same scheme.
    await browser.waitUntil(() => browser.execute(() => {
      const img = document.querySelector('#filmstrip img');
      return !!img && img.complete && img.naturalWidth > 0;
    }), { timeout: 30000, timeoutMsg: 'no filmstrip thumbnail loaded' });

    // Playback: the picture follows a playhead running at 1x. Xvfb has no sound card and ALSA's
    // null device takes samples unpaced (a preview would run to the end at once), so the
    // playhead runs from the page's clock the way the view runs it between the audition's
    // `preview-state` events; the frames are asked exactly as while the preview plays.
    const PLAY_S = 6;
    await browser.execute(() => window.beatsync.seek(4));
    await waitShown(browser, 4);
    const s0 = await browser.execute(() => ({ ...window.beatsync.picture.stats, lag_s: [] }));
    await browser.execute(() => window.beatsync.picture.show(4, true));
    await browser.pause(PLAY_S * 1000);
    // Counted before the screenshot, which holds the page up while it is taken.
    const s1 = await browser.execute(() => {
      const p = window.beatsync.picture;
      return { ...p.stats, playing_ms: p.stats.playing_ms + p.now() - p.playStart };
    });
    const during = await shownIndex(browser);
    await browser.execute(() => window.beatsync.picture.show(window.beatsync.picture.playhead(), false));
    const frames = s1.frames_playing - s0.frames_playing;
    const seconds = (s1.playing_ms - s0.playing_ms) / 1000;
    assert.ok(frames > PLAY_S, `frames shown while playing: ${frames}`);
    // Read after the screenshot (which blocks the page for a while): within the 6 s run.
    assert.ok(Math.abs(during.plain - 4 * FPS - PLAY_S * FPS) < 2 * FPS, `frame ${during.plain} shown after ${PLAY_S} s from 4 s`);
    const lags = s1.lag_s.slice(-frames).map((x) => Math.abs(x)).sort((a, b) => a - b);
    Object.assign(metrics, {
      video: '320x180, 30 frames/s, x264 ultrafast, GOP 30; picture asked 320 px wide; debug build',
      seek_to_shown_ms: seeks.map((x) => Math.round(x)),
      playing_s: Math.round(seconds * 100) / 100,
      frames_shown_playing: frames,
      frames_per_s_playing: Math.round((frames / seconds) * 10) / 10,
      requests_failed_playing: s1.errors - s0.errors,
      shown_behind_playhead_s_median: Math.round(lags[Math.floor(lags.length / 2)] * 1000) / 1000,
      shown_behind_playhead_s_max: Math.round(lags.at(-1) * 1000) / 1000,
    });
    console.log('picture metrics', JSON.stringify(metrics));
  } finally {
    await app.stop();
  }
});
