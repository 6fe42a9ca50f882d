// End-to-end on the real app window under Xvfb: files added through the same
// Rust path a drop takes, analysis, beat markers and offset shown, nudge,
// export to a folder, history, an error, and a restart mid-export that
// resumes. The job events the page receives are checked against the contract: revisions
// go up, every stage has words. Screenshots of each state go to test-output/e2e/; timings
// to test-output/e2e/metrics.json (measured, not asserted).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startApp, screenshot, ffmpeg, isAlive, isolatedEnv, OUT_DIR, ROOT, SONG_EXPR } from './driver.mjs';
import { EVENTS } from '../../ui/js/contract.js';

let dir;
let media;
let outDir;
let env;
const metrics = {};

const DELAY_S = 3.0;

// Another song: 100 BPM, other notes on other grids.
const OTHER_SONG_EXPR = [
  '0.6*sin(2*PI*62*t)*exp(-14*mod(t,0.6))',
  '0.15*(random(1)*2-1)*exp(-60*mod(t+0.3,0.6))',
  '0.2*sin(2*PI*(262+30*mod(floor(t*5/3)*3,7))*t)',
  '0.15*sin(2*PI*(392+20*mod(floor(t*5/6)*4,9))*t)',
].join('+');

function makeSong(p, seconds, expr = SONG_EXPR) {
  // Commas inside a filter argument must be escaped.
  ffmpeg(['-f', 'lavfi', '-i', `aevalsrc=${expr.replace(/,/g, '\\,')}:s=44100:d=${seconds}`, '-ac', '2', '-c:a', 'aac', '-b:a', '192k', p]);
}

/** A class video whose sound is the song from DELAY_S s on, with room noise. */
function makeClass(p, song, seconds, size = '320x180', extra = []) {
  const ms = Math.round(DELAY_S * 1000);
  ffmpeg(['-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=30`, '-i', song, '-filter_complex',
    `[1:a]adelay=${ms}|${ms},volume=0.5[m];anoisesrc=d=${seconds}:c=pink:r=48000:a=0.03:seed=3[n];[m][n]amix=inputs=2:duration=longest:normalize=0[a]`,
    '-map', '0:v', '-map', '[a]', '-t', String(seconds), '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '30', '-pix_fmt', 'yuv420p',
    ...extra, '-c:a', 'aac', '-b:a', '96k', '-ar', '48000', p]);
}

function probe(file) {
  const bin = path.join(process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target'), 'debug', 'beatsync');
  return JSON.parse(execFileSync(bin, ['probe', '--json', file], { encoding: 'utf8' }));
}

/** The output folder is the user's Videos folder (isolatedEnv), kept by Rust; the page cannot name another. */
async function checkOutDir(browser) {
  const answer = await browser.executeAsync((elsewhere, done) => {
    const core = window.__TAURI__.core;
    core.invoke('get_settings')
      .then((s) => core.invoke('set_settings', { settings: { ...s, out_dir: elsewhere } }).then(() => ({ s, refused: null }), (e) => ({ s, refused: e.code })))
      .then(done, (e) => done({ error: String(e.message || e.code) }));
  }, os.tmpdir());
  assert.equal(answer.error, undefined, answer.error);
  assert.equal(answer.s.out_dir, fs.realpathSync(outDir));
  assert.equal(answer.refused, 'invalid_argument', 'a folder named by the page is refused');
}

/** Records, in the page, every job event it receives: id, revision, state and stage. */
async function recordJobEvents(browser) {
  const ok = await browser.executeAsync((name, done) => {
    window.__jobEvents = [];
    window.__TAURI__.event.listen(name, ({ payload: j }) => {
      window.__jobEvents.push({ id: j.id, rev: j.rev, state: j.state, stage: j.stage });
    }).then(() => done(true), (e) => done(String(e)));
  }, EVENTS.jobChanged);
  assert.equal(ok, true);
}

/** The recorded job events: jobs whose revisions did not go up, and stages without words. */
async function checkJobEvents(browser) {
  return browser.executeAsync((done) => {
    import(new URL('js/i18n.js', document.baseURI).href).then(({ STRINGS }) => {
      const events = window.__jobEvents;
      const revs = {};
      for (const e of events) (revs[e.id] ||= []).push(e.rev);
      const unordered = Object.entries(revs).filter(([, r]) => r.some((x, i) => !Number.isInteger(x) || (i > 0 && x <= r[i - 1])));
      const stages = [...new Set(events.map((e) => e.stage).filter(Boolean))];
      const wordless = stages.filter((s) => !STRINGS.en[`stage.${s}`] || !STRINGS.zh[`stage.${s}`]);
      done({ count: events.length, unordered, stages, wordless });
    }, (e) => done({ error: String(e) }));
  });
}

async function addByPath(browser, p) {
  const input = await browser.$('#path-input');
  await input.setValue(p);
  await (await browser.$('#path-add')).click();
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beatsync-e2e-'));
  media = path.join(dir, 'media');
  outDir = path.join(dir, 'exports');
  fs.mkdirSync(media);
  fs.mkdirSync(outDir);
  // Its own data, config and cache folders (nothing of this machine's user is read), and
  // typed paths confirmed by the app's environment: WebDriver cannot click a native dialog.
  env = { ...isolatedEnv(path.join(dir, 'env'), outDir), BEATSYNC_DATA_DIR: path.join(dir, 'data'), BEATSYNC_TEST_CONFIRM_TYPED_PATHS: 'yes' };
  makeSong(path.join(media, 'song.m4a'), 40);
  makeClass(path.join(media, '周六 class.mp4'), path.join(media, 'song.m4a'), 20);
  // Larger, so its export is still running when the app is killed.
  makeClass(path.join(media, 'long class.mp4'), path.join(media, 'song.m4a'), 40, '1280x720', ['-b:v', '12M', '-maxrate', '12M', '-bufsize', '12M']);
});

after(() => {
  fs.writeFileSync(path.join(OUT_DIR, 'metrics.json'), JSON.stringify(metrics, null, 2));
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('add, analyse, nudge, export, history and an error in the real window', async () => {
  const t0 = Date.now();
  const app = await startApp({ env });
  metrics.launch_to_ready_ms = Date.now() - t0;
  metrics.first_paint_ms = await app.browser.execute(() => {
    const p = performance.getEntriesByType('paint').find((e) => e.name === 'first-contentful-paint');
    return p ? Math.round(p.startTime) : null;
  });
  const { browser } = app;
  try {
    assert.equal(await browser.getTitle(), 'BeatSync');
    await checkOutDir(browser);
    await recordJobEvents(browser);
    await screenshot(browser, 'empty');

    await addByPath(browser, path.join(media, '周六 class.mp4'));
    await addByPath(browser, path.join(media, 'song.m4a'));
    // Analysis starts by itself; the timeline shows beats and the offset.
    await browser.waitUntil(async () => Number(await (await browser.$('#timeline')).getAttribute('data-beat-count')) > 0,
      { timeout: 240000, timeoutMsg: 'analysis never showed beat markers' });
    const beats = Number(await (await browser.$('#timeline')).getAttribute('data-beat-count'));
    const offset = Number(await (await browser.$('#timeline')).getAttribute('data-offset'));
    assert.ok(beats > 0);
    assert.ok(Math.abs(offset - DELAY_S) < 0.005, `offset ${offset}, expected ${DELAY_S}`);
    assert.match(await (await browser.$('#sum-offset')).getText(), /3[.,]0/);
    await screenshot(browser, 'analysed');

    // Listening: this machine has no sound card, so the preview says so plainly
    // and everything else keeps working.
    await (await browser.$('#play')).click();
    await browser.waitUntil(async () => /no sound output/i.test(await (await browser.$('#preview-status')).getText()),
      { timeout: 20000, timeoutMsg: 'no message about the missing audio device' });
    await screenshot(browser, 'no-audio-device');

    // Nudge +1 ms with the button; the markers move with it.
    const plus1 = await browser.$('button[data-nudge="0.001"]');
    await plus1.scrollIntoView({ block: 'center' });
    await plus1.click();
    await browser.waitUntil(async () => Math.abs(Number(await (await browser.$('#timeline')).getAttribute('data-offset')) - (offset + 0.001)) < 1e-6,
      { timeout: 5000, timeoutMsg: 'nudge did not move the offset' });

    // The same watch for two seconds with nothing running: the frame pace
    // of this window on this machine, to compare the export's with.
    const idle = await browser.executeAsync((done) => {
      const list = [];
      let last = performance.now();
      const until = last + 2000;
      const tick = (t) => {
        list.push(t - last);
        last = t;
        if (t < until) requestAnimationFrame(tick);
        else done({ max: Math.max(...list), frames: list.length });
      };
      requestAnimationFrame(tick);
    });
    metrics.max_frame_gap_idle_ms = Math.round(idle.max);
    metrics.frames_idle_2s = idle.frames;
    // Export, watching the main thread's frame gaps meanwhile. The page waits
    // for the export's states itself (checked once per frame): WebDriver
    // polling runs scripts on that same thread and would be measured too.
    // The screenshot of the exporting state also renders on it: gaps
    // overlapping it are counted apart.
    await browser.execute(() => {
      window.__gaps = { list: [], last: performance.now(), on: true, shots: [], waiters: [] };
      const tick = (t) => {
        const g = window.__gaps;
        g.list.push([g.last, t]);
        g.last = t;
        g.waiters = g.waiters.filter((w) => !w());
        if (g.on) requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    });
    await browser.setTimeout({ script: 150000 });
    const inPage = (selector, timeoutMs) => browser.executeAsync((sel, ms, done) => {
      const until = performance.now() + ms;
      window.__gaps.waiters.push(() => {
        const el = document.querySelector(sel);
        const ok = !!el && el.getClientRects().length > 0;
        if (ok || performance.now() > until) done(ok);
        return ok || performance.now() > until;
      });
    }, selector, timeoutMs);
    await (await browser.$('#export-one')).scrollIntoView({ block: 'center' });
    await (await browser.$('#export-one')).click();
    assert.ok(await inPage('#jobs li[data-state="exporting"], #history li[data-state="done"]', 30000), 'export never started');
    const shotFrom = await browser.execute(() => performance.now());
    await screenshot(browser, 'exporting');
    await browser.execute((from) => window.__gaps.shots.push([from, performance.now()]), shotFrom);
    assert.ok(await inPage('#view-done', 120000), 'export never finished');
    const gaps = await browser.execute(() => {
      const g = window.__gaps;
      g.on = false;
      const overlapsShot = ([a, b]) => g.shots.some(([s, e]) => a < e && b > s);
      const max = (list) => list.reduce((m, [a, b]) => Math.max(m, b - a), 0);
      return { all: max(g.list), outsideShots: max(g.list.filter((x) => !overlapsShot(x))), frames: g.list.length, span: g.last - g.list[0][0] };
    });
    metrics.max_frame_gap_during_export_ms = Math.round(gaps.outsideShots);
    metrics.max_frame_gap_including_screenshot_ms = Math.round(gaps.all);
    metrics.frames_per_s_during_export = Math.round((1000 * gaps.frames) / Math.max(1, gaps.span));
    const done = await (await browser.$('#view-done-path')).getText();
    assert.match(done, /_beatsync\.mp4/);
    const outputs = fs.readdirSync(outDir);
    assert.deepEqual(outputs, ['周六 class_beatsync.mp4']);
    const info = probe(path.join(outDir, outputs[0]));
    assert.deepEqual(info.streams.map((s) => s.kind).sort(), ['audio', 'video']);
    assert.ok((await browser.$$('#history li[data-state="done"]')).length >= 1, 'the job is in the history');
    await screenshot(browser, 'done');

    // Every job event the page got: revisions going up per job, stages with words.
    const events = await checkJobEvents(browser);
    assert.equal(events.error, undefined, events.error);
    assert.ok(events.count > 5, `${events.count} job events`);
    assert.deepEqual(events.unordered, [], 'revisions go up with every event of a job');
    assert.deepEqual(events.wordless, [], 'every stage has words in both languages');
    for (const s of ['decode', 'refine', 'verify', 'done']) assert.ok(events.stages.includes(s), `${s} in ${events.stages}`);
    metrics.job_events = events.count;
    metrics.stages_seen = events.stages;

    // A file the engine rejects shows the reason.
    const notes = path.join(media, 'notes.mp4');
    fs.writeFileSync(notes, 'not a video');
    await addByPath(browser, notes);
    await browser.waitUntil(async () => (await browser.$$('li.file.error')).length > 0, { timeout: 10000 });
    assert.match(await (await browser.$('li.file.error')).getText(), /not a video or audio file/i);
    await screenshot(browser, 'error');

    // The webview keeps its own data (WebKit storage, caches) in the throw-away folders.
    const kept = ['XDG_DATA_HOME', 'XDG_CACHE_HOME'].flatMap((k) => fs.readdirSync(env[k]));
    assert.ok(kept.length > 0, 'the webview wrote nothing under the temporary XDG folders');
  } finally {
    await app.stop();
  }
});

test('a job killed mid-export resumes when the app starts again', async () => {
  let app = await startApp({ env });
  const long = path.join(media, 'long class.mp4');
  try {
    // The language chosen is kept in the app's store: it is Chinese after the restart below.
    await (await app.browser.$('#lang')).click();
    await app.browser.waitUntil(async () => (await app.browser.execute(() => document.documentElement.lang)) === 'zh-CN', { timeout: 5000 });
    await app.browser.waitUntil(() => app.browser.executeAsync((done) => {
      window.__TAURI__.core.invoke('get_settings').then((s) => done(s.language === 'zh'), () => done(false));
    }), { timeout: 5000, timeoutMsg: 'the language never reached the store' });
    // Files are not remembered across starts (jobs are): add the song again.
    await addByPath(app.browser, long);
    await addByPath(app.browser, path.join(media, 'song.m4a'));
    await app.browser.waitUntil(async () => (await app.browser.$$('#jobs li[data-state="analyzed"]')).length >= 1,
      { timeout: Number(process.env.E2E_WAIT_MS || 300000), timeoutMsg: 'second analysis never finished' }).catch(async (e) => { await screenshot(app.browser, 'failed-second-analysis'); throw e; });
    // Export every analysed class video; kill the app while the long one exports.
    await (await app.browser.$('#export-all')).click();
    await app.browser.waitUntil(async () => (await app.browser.$$('#jobs li[data-state="exporting"]')).length > 0,
      { timeout: 60000, interval: 20, timeoutMsg: 'the export never started' });
    // SIGKILL the app by its own pid, as a crash or power loss would, and check it died.
    assert.ok(isAlive(app.pid), `the app's pid is known and alive (${app.pid})`);
    process.kill(app.pid, 'SIGKILL');
    const end = Date.now() + 10000;
    while (isAlive(app.pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    assert.ok(!isAlive(app.pid), 'the app was killed mid-export');
  } finally {
    await app.stop();
  }
  assert.ok(!fs.readdirSync(outDir).some((f) => f.startsWith('long class_beatsync')), 'nothing under the final name after the kill');

  app = await startApp({ env });
  try {
    const { browser } = app;
    assert.equal(await browser.execute(() => document.documentElement.lang), 'zh-CN', 'the language came back from the store');
    await screenshot(browser, 'resumed');
    await browser.waitUntil(async () => fs.readdirSync(outDir).includes('long class_beatsync.mp4'),
      { timeout: 180000, timeoutMsg: 'the interrupted export never finished after the restart' });
    await browser.waitUntil(async () => (await browser.$$('#history li[data-state="done"]')).length >= 2, { timeout: 20000 });
    const files = fs.readdirSync(outDir).sort();
    assert.deepEqual(files, ['long class_beatsync.mp4', '周六 class_beatsync.mp4'], 'one output each, no partial, no duplicate');
    const info = probe(path.join(outDir, 'long class_beatsync.mp4'));
    assert.equal(info.streams.find((s) => s.kind === 'video').width, 1280);
  } finally {
    await app.stop();
  }
});

test('two class videos and their two songs dropped together: each paired with its own song', async () => {
  const songs = { one: path.join(media, 'song one.m4a'), two: path.join(media, 'song two.m4a') };
  makeSong(songs.one, 30);
  makeSong(songs.two, 30, OTHER_SONG_EXPR);
  const classes = { one: path.join(media, 'class one.mp4'), two: path.join(media, 'class two.mp4') };
  makeClass(classes.one, songs.one, 16);
  makeClass(classes.two, songs.two, 16);
  const app = await startApp({ env: { ...env, BEATSYNC_DATA_DIR: path.join(dir, 'data-pairing') } });
  const { browser } = app;
  try {
    for (const p of [classes.one, classes.two, songs.one, songs.two]) await addByPath(browser, p);
    const pairOf = (p) => browser.$(`li.file[data-path="${p}"] .pair`);
    for (const k of ['one', 'two']) {
      await browser.waitUntil(async () => (await (await pairOf(classes[k])).getAttribute('data-pair')) === 'auto',
        { timeout: 240000, timeoutMsg: `class ${k} was never paired with a song` });
      const chosen = await browser.execute((p) => document.querySelector(`li.file[data-path="${p}"] .pair select`).value, classes[k]);
      assert.equal(chosen, songs[k], `class ${k} paired with its own song`);
    }
    // Each is analysed against its own song: the view of the second names it and places it.
    await (await browser.$(`li.file[data-path="${classes.two}"] button[data-action="select"]`)).click();
    await browser.waitUntil(async () => Number(await (await browser.$('#timeline')).getAttribute('data-beat-count')) > 0,
      { timeout: 240000, timeoutMsg: 'the second class video was never analysed' });
    assert.match(await (await browser.$('#view-song')).getText(), /song two\.m4a/);
    const offset = Number(await (await browser.$('#timeline')).getAttribute('data-offset'));
    assert.ok(Math.abs(offset - DELAY_S) < 0.005, `offset ${offset}, expected ${DELAY_S}`);
    await screenshot(browser, 'pairing');
  } finally {
    await app.stop();
  }
});
