// Picture view in the real window (issue 20), measured from the page: the debug app under
// Xvfb through tauri-driver, a class video and its song added by path, analysed, then:
// - the filmstrip made cold (its disk cache removed first) as the page asks it: a sparse strip
//   first (`sparseEvery` of ui/js/picture.js for the recording's duration and the timeline's
//   width: it fills the strip at the whole-recording view), then the dense one (every 2 s),
//   then the dense one again from the disk cache, each timed from the page's `filmstrip`
//   call to its answer (an app without the sparse strip answers the first call with its
//   2-s strip: `filmstrip_sparse_every_s` says which; `SPARSE=0` skips the sparse call, as
//   pages before it did);
// - SEEKS still frames at random times (ms from asking to the <img> loaded);
// - PLAY_S seconds of a 1x playhead run by the page's clock (the view's playing path,
//   `&play=1`): frames shown per second; at every animation frame, how many frames the
//   frame on screen is behind the playhead (floor(t*fps) of each); the page's
//   animation-frame rate meanwhile;
// - memory: resident set of the app process (where the frame servers are) and of its
//   WebKit web process, idle (started, no files), after the analysis, at the end, and the
//   app's peak (VmHWM).
// The picture box is made WIDTH css px wide (device pixel ratio 1 under Xvfb: frames of
// WIDTH px).
//   cd tests && xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- \
//     node ../bench/picture_window.mjs [VIDEO SONG]
// Defaults: the perf case (/tmp/bench-media/perf/perf000). Env: SEEKS (20), PLAY_S (10),
// WIDTH (640), SPARSE (1), BEATSYNC_APP or CARGO_TARGET_DIR (which app), COMPOSITING (unset: the app's
// choice; `on`/`off` set WEBKIT_DISABLE_COMPOSITING_MODE=0/1 for it), PROXIES (a folder of proxies
// made before, e.g. by `beatsync preview-bench --proxy-dir`: copied into the app's data folder, so
// that the proxy the dense strip starts is read from the disk at once and the seeks measure a
// ready proxy; apps before the proxy ignore it). Prints one JSON object; `app_cpu_s` is the app
// process's CPU time (user+sys, all threads) at each step.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startApp, isolatedEnv, appPath } from '../tests/e2e/driver.mjs';
import { sparseEvery } from '../ui/js/picture.js';

const media = process.env.BENCH_MEDIA || '/tmp/bench-media';
const [video = path.join(media, 'perf/perf000/dance.mp4'), song = path.join(media, 'perf/perf000/bgm.m4a')] = process.argv.slice(2);
const SEEKS = Number(process.env.SEEKS || 20);
const PLAY_S = Number(process.env.PLAY_S || 10);
const WIDTH = Number(process.env.WIDTH || 640);
const compositing = { on: { WEBKIT_DISABLE_COMPOSITING_MODE: '0' }, off: { WEBKIT_DISABLE_COMPOSITING_MODE: '1' } }[process.env.COMPOSITING] || {};
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beatsync-bench-picture-'));
const data = path.join(dir, 'data');
const env = { ...isolatedEnv(path.join(dir, 'env'), dir), BEATSYNC_DATA_DIR: data, BEATSYNC_TEST_CONFIRM_TYPED_PATHS: 'yes', ...compositing };
const sorted = (xs) => [...xs].sort((a, b) => a - b);
const median = (xs) => sorted(xs)[Math.floor(xs.length / 2)];
const pct = (xs, q) => sorted(xs)[Math.min(xs.length - 1, Math.floor(xs.length * q))];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** {kB} fields of /proc/PID/status. */
function status(pid) {
  const out = {};
  for (const line of fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const m = line.match(/^(VmRSS|VmHWM):\s+(\d+) kB/);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}
/** CPU seconds (user+sys, all threads) of process `pid` so far. */
function cpuS(pid) {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Math.round(((Number(f[11]) + Number(f[12])) / 100) * 100) / 100;
}
/** Pids whose parent is `pid`. */
function childrenOf(pid) {
  return fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((d) => {
    try { const s = fs.readFileSync(`/proc/${d}/stat`, 'utf8'); return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]) === pid; } catch { return false; }
  }).map(Number);
}
/** MB resident: the app, its web process(es), the app's peak. */
function memory(pid) {
  const mb = (kb) => Math.round(kb / 1024);
  const app = status(pid);
  const web = childrenOf(pid).filter((c) => { try { return /WebKitWebProces/.test(fs.readFileSync(`/proc/${c}/comm`, 'utf8')); } catch { return false; } });
  return { app_mb: mb(app.VmRSS), app_peak_mb: mb(app.VmHWM), web_mb: mb(web.reduce((s, c) => s + (status(c).VmRSS || 0), 0)) };
}

// Before the app starts: the page asks its filmstrip (which starts the proxy) on its own.
if (process.env.PROXIES) { fs.mkdirSync(data, { recursive: true }); fs.cpSync(process.env.PROXIES, path.join(data, 'proxies'), { recursive: true }); }
const app = await startApp({ env });
const { browser } = app;
try {
  await sleep(3000);
  const idle = memory(app.pid);
  for (const f of [video, song]) {
    await (await browser.$('#path-input')).setValue(f);
    await (await browser.$('#path-add')).click();
  }
  const log = (what) => console.error(`[picture_window] ${new Date().toISOString()} ${what}`);
  log('files added; waiting for the analysis');
  await browser.waitUntil(async () => {
    const failed = await browser.execute(() => [...window.beatsync.jobs.jobs?.values?.() || []].some((j) => j.state === 'failed'));
    if (failed) throw new Error('the analysis failed');
    return Number(await (await browser.$('#timeline')).getAttribute('data-beat-count')) > 0;
  }, { timeout: 900000, interval: 1000 });
  log('analysed');
  await browser.setTimeout({ script: 900000 });
  await sleep(2000);
  const analysed = memory(app.pid);
  fs.rmSync(path.join(data, 'filmstrips'), { recursive: true, force: true });
  const cpu = { analysed: cpuS(app.pid) };
  const [durationS, timelinePx] = await browser.execute(() => [Number(document.querySelector('#trim-end').getAttribute('aria-valuemax')), document.querySelector('#timeline').clientWidth]);
  const sparseS = process.env.SPARSE === '0' ? null : sparseEvery(durationS, timelinePx);
  // The picture box at WIDTH and a frame shown first: the width the app makes its proxy at.
  await browser.executeAsync((width, done) => {
    const p = window.beatsync.picture;
    const css = `${width / (window.devicePixelRatio || 1)}px`;
    p.box.style.flex = `0 0 ${css}`;
    p.box.querySelector('.picture-frame').style.width = css;
    p.show(0.5, false);
    const w = () => (p.loading ? setTimeout(w, 5) : done());
    w();
  }, WIDTH);
  const strip = await browser.executeAsync((sparseS, done) => {
    const id = window.beatsync.files.classVideos()[0].id;
    const call = (every_s) => { const t0 = performance.now(); return window.__TAURI__.core.invoke('filmstrip', { id, every_s }).then((s) => ({ ms: performance.now() - t0, n: s.thumbnails.length, every_s: s.every_s })); };
    (async () => { const sparse = sparseS ? await call(sparseS) : null; const cold = await call(2); const warm = await call(2); done({ sparse, cold, warm }); })().catch((e) => done({ error: String(e && e.message ? e.message : JSON.stringify(e)) }));
  }, sparseS);
  log(`filmstrip ${JSON.stringify(strip)}`);
  cpu.filmstrip = cpuS(app.pid);
  const { still } = await browser.executeAsync((seeks, done) => {
    const p = window.beatsync.picture;
    const duration = Number(document.querySelector('#trim-end').getAttribute('aria-valuemax'));
    const settle = () => new Promise((r) => { const w = () => (p.loading ? setTimeout(w, 5) : r()); w(); });
    (async () => {
      p.show(0.5, false);
      await settle();
      const still = [];
      for (let i = 0; i < seeks; i++) {
        window.beatsync.seek(((i * 0.618034) % 1) * duration * 0.95);
        await settle();
        still.push(p.stats.still_ms.at(-1));
      }
      done({ still });
    })();
  }, SEEKS);
  cpu.seeks = cpuS(app.pid);
  const out = await browser.executeAsync((playS, done) => {
    const p = window.beatsync.picture;
    const duration = Number(document.querySelector('#trim-end').getAttribute('aria-valuemax'));
    const settle = () => new Promise((r) => { const w = () => (p.loading ? setTimeout(w, 5) : r()); w(); });
    (async () => {
      window.beatsync.seek(duration * 0.3);
      await settle();
      const f0 = p.stats.frames_playing;
      const l0 = p.stats.lag_s.length;
      let raf = 0;
      const behind = [];
      let shownWidth = 0;
      const t0 = performance.now();
      const tick = () => {
        raf += 1;
        const shown = Number(p.box.dataset.shownS);
        behind.push(Math.floor(p.playhead() * p.fps) - Math.floor(shown * p.fps));
        shownWidth = Math.max(shownWidth, p.img.naturalWidth);
        if (performance.now() - t0 < playS * 1000) requestAnimationFrame(tick);
      };
      p.show(duration * 0.3, true);
      requestAnimationFrame(tick);
      await new Promise((r) => setTimeout(r, playS * 1000));
      const frames = p.stats.frames_playing - f0;
      const lags = p.stats.lag_s.slice(l0);
      p.show(p.playhead(), false);
      done({ frames, lags, raf, behind, width: shownWidth, duration, fps: p.fps });
    })();
  }, PLAY_S);
  const end = memory(app.pid);
  cpu.end = cpuS(app.pid);
  const within1 = out.behind.filter((b) => b <= 1).length / Math.max(1, out.behind.length);
  console.log(JSON.stringify({
    app: appPath(), compositing: process.env.COMPOSITING || 'app default', video, width_px: out.width, duration_s: out.duration, fps: out.fps,
    filmstrip_sparse_every_s: strip.sparse?.every_s, filmstrip_sparse_thumbnails: strip.sparse?.n, filmstrip_sparse_cold_ms: Math.round(strip.sparse?.ms),
    filmstrip_cold_ms: Math.round(strip.cold?.ms), filmstrip_sparse_then_dense_ms: Math.round((strip.sparse?.ms || 0) + strip.cold?.ms),
    filmstrip_cached_ms: Math.round(strip.warm?.ms), filmstrip_thumbnails: strip.cold?.n, filmstrip_error: strip.error,
    seek_ms_median: Math.round(median(still)), seek_ms_max: Math.round(Math.max(...still)), seeks: still.map(Math.round),
    play_s: PLAY_S, frames_per_s_shown: Math.round((out.frames / PLAY_S) * 10) / 10, animation_frames_per_s: Math.round((out.raf / PLAY_S) * 10) / 10,
    shown_frames_behind_playhead_median: median(out.behind), shown_frames_behind_playhead_p90: pct(out.behind, 0.9), shown_frames_behind_playhead_max: Math.max(...out.behind),
    share_of_animation_frames_within_one_frame: Math.round(within1 * 1000) / 1000,
    arrived_behind_playhead_ms_median: Math.round(median(out.lags) * 1000), arrived_behind_playhead_ms_max: Math.round(Math.max(...out.lags) * 1000),
    memory_idle: idle, memory_analysed: analysed, memory_end: end,
    app_above_idle_mb_end: end.app_mb - idle.app_mb, app_peak_above_idle_mb: end.app_peak_mb - idle.app_mb,
    proxies: process.env.PROXIES || null, proxies_at_end: (() => { try { return fs.readdirSync(path.join(data, 'proxies')); } catch { return null; } })(), app_cpu_s: cpu,
    load_average: os.loadavg().map((x) => Math.round(x * 10) / 10),
  }));
} finally {
  await app.stop();
  if (process.env.KEEP_LOGS) fs.cpSync(path.join(data, 'logs'), process.env.KEEP_LOGS, { recursive: true });
  fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
}
