// Picture view in the real window (issue 20), measured from the page: the debug app under
// Xvfb through tauri-driver, a class video and its song added by path, analysed, then
// SEEKS still frames at random times (ms from asking to the <img> loaded) and PLAY_S seconds
// of a 1x playhead run by the page's clock (the view's playing path, `&play=1`): frames
// shown per second, how far the playhead had moved on when each arrived, and the page's
// animation-frame rate meanwhile (the window's paint rate bounds frames shown).
//   cd tests && xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- \
//     node ../bench/picture_window.mjs [VIDEO SONG]
// Defaults: the perf case (/tmp/bench-media/perf/perf000). Env: SEEKS (20), PLAY_S (10),
// CARGO_TARGET_DIR (where the debug app is). Prints one JSON object.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startApp, isolatedEnv } from '../tests/e2e/driver.mjs';

const media = process.env.BENCH_MEDIA || '/tmp/bench-media';
const [video = path.join(media, 'perf/perf000/dance.mp4'), song = path.join(media, 'perf/perf000/bgm.m4a')] = process.argv.slice(2);
const SEEKS = Number(process.env.SEEKS || 20);
const PLAY_S = Number(process.env.PLAY_S || 10);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beatsync-bench-picture-'));
const env = { ...isolatedEnv(path.join(dir, 'env'), dir), BEATSYNC_DATA_DIR: path.join(dir, 'data'), BEATSYNC_TEST_CONFIRM_TYPED_PATHS: 'yes' };
const app = await startApp({ env });
const { browser } = app;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
try {
  for (const f of [video, song]) {
    await (await browser.$('#path-input')).setValue(f);
    await (await browser.$('#path-add')).click();
  }
  await browser.waitUntil(async () => Number(await (await browser.$('#timeline')).getAttribute('data-beat-count')) > 0, { timeout: 900000, interval: 1000 });
  await browser.setTimeout({ script: 600000 });
  const out = await browser.executeAsync((seeks, playS, done) => {
    const p = window.beatsync.picture;
    const duration = Number(document.querySelector('#trim-end').getAttribute('aria-valuemax'));
    const settle = () => new Promise((r) => { const w = () => (p.loading ? setTimeout(w, 5) : r()); w(); });
    (async () => {
      await settle();
      const still = [];
      for (let i = 0; i < seeks; i++) {
        window.beatsync.seek(((i * 0.618034) % 1) * duration * 0.95);
        await settle();
        still.push(p.stats.still_ms.at(-1));
      }
      window.beatsync.seek(duration * 0.3);
      await settle();
      const f0 = p.stats.frames_playing;
      const l0 = p.stats.lag_s.length;
      let raf = 0;
      const t0 = performance.now();
      const tick = () => { raf += 1; if (performance.now() - t0 < playS * 1000) requestAnimationFrame(tick); };
      requestAnimationFrame(tick);
      p.show(duration * 0.3, true);
      await new Promise((r) => setTimeout(r, playS * 1000));
      const frames = p.stats.frames_playing - f0;
      const lags = p.stats.lag_s.slice(l0);
      const width = p.img.naturalWidth;
      p.show(p.playhead(), false);
      done({ still, frames, lags, raf, width, duration });
    })();
  }, SEEKS, PLAY_S);
  console.log(JSON.stringify({
    video, width_px: out.width, duration_s: out.duration,
    seek_ms_median: Math.round(median(out.still)), seek_ms_max: Math.round(Math.max(...out.still)), seeks: out.still.map(Math.round),
    play_s: PLAY_S, frames_per_s_shown: Math.round((out.frames / PLAY_S) * 10) / 10, animation_frames_per_s: Math.round((out.raf / PLAY_S) * 10) / 10,
    shown_behind_playhead_ms_median: Math.round(median(out.lags) * 1000), shown_behind_playhead_ms_max: Math.round(Math.max(...out.lags) * 1000),
    load_average: os.loadavg().map((x) => Math.round(x * 10) / 10),
  }));
} finally {
  await app.stop();
  fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
}
