// Several plays of the song in one recording, in the real window under Xvfb: a class video
// that plays the song twice (from its start at 2 s and again at 22 s, talk between) is
// analysed by the real engine; the window shows two play blocks; leaving the second play out,
// nudging the first, and choosing one clip per play are stored in the job (read back through
// list_jobs, as the page reads the job store). The analysis time goes to
// test-output/e2e/metrics.json (measured, not asserted).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startApp, screenshot, ffmpeg, isolatedEnv, OUT_DIR, SONG_EXPR } from './driver.mjs';

// The song's first 14 s heard from 2 s and again from 22 s; a voice-like warble between.
const PLAYS_AT_S = [2, 22];
const TALK = 'aevalsrc=0.25*sin(2*PI*(180+60*sin(2*PI*3*t))*t)*(0.5+0.5*sin(2*PI*4*t)):s=48000:d=3.5,adelay=17000|17000';

let dir;
let media;
let env;
const metrics = {};

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beatsync-plays-'));
  media = path.join(dir, 'media');
  fs.mkdirSync(media);
  const song = path.join(media, 'song.m4a');
  ffmpeg(['-f', 'lavfi', '-i', `aevalsrc=${SONG_EXPR.replace(/,/g, '\\,')}:s=44100:d=40`, '-ac', '2', '-c:a', 'aac', '-b:a', '192k', song]);
  const [a, b] = PLAYS_AT_S.map((s) => s * 1000);
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=30', '-i', song, '-filter_complex',
    `[1:a]asplit[s1][s2];[s1]atrim=0:14,asetpts=PTS-STARTPTS,adelay=${a}|${a},volume=0.5[p1];`
    + `[s2]atrim=0:14,asetpts=PTS-STARTPTS,adelay=${b}|${b},volume=0.5[p2];${TALK}[talk];`
    + 'anoisesrc=d=38:c=pink:r=48000:a=0.03:seed=3[n];[p1][p2][talk][n]amix=inputs=4:duration=longest:normalize=0[a]',
    '-map', '0:v', '-map', '[a]', '-t', '38', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '30', '-pix_fmt', 'yuv420p',
    '-c:a', 'aac', '-b:a', '96k', '-ar', '48000', path.join(media, 'two plays.mp4')]);
  env = { ...isolatedEnv(path.join(dir, 'env'), dir), BEATSYNC_DATA_DIR: path.join(dir, 'data'), BEATSYNC_TEST_CONFIRM_TYPED_PATHS: 'yes' };
});

after(() => {
  const file = path.join(OUT_DIR, 'metrics.json');
  const all = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : {};
  fs.mkdirSync(OUT_DIR, { recursive: true });
  fs.writeFileSync(file, JSON.stringify({ ...all, plays: metrics }, null, 2));
  if (dir) fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
});

/** The one job's options as the job store has them (list_jobs, as the page loads them). */
async function storedOptions(browser) {
  const r = await browser.executeAsync((done) => {
    window.__TAURI__.core.invoke('list_jobs', {}).then((jobs) => done({ jobs }), (e) => done({ error: e.message || e.code }));
  });
  assert.equal(r.error, undefined, r.error);
  assert.equal(r.jobs.length, 1);
  return r.jobs[0].options;
}

async function until(browser, what, check) {
  let last;
  await browser.waitUntil(async () => { last = await storedOptions(browser); return check(last); },
    { timeout: 15000, timeoutMsg: `${what} never stored: ${JSON.stringify(last)}` });
  return last;
}

test('two plays: two blocks; a play left out, a nudge and one clip per play are kept in the job', async () => {
  const app = await startApp({ env });
  const { browser } = app;
  try {
    const t0 = Date.now();
    for (const f of ['two plays.mp4', 'song.m4a']) {
      await (await browser.$('#path-input')).setValue(path.join(media, f));
      await (await browser.$('#path-add')).click();
    }
    const timeline = await browser.$('#timeline');
    await browser.waitUntil(async () => (await timeline.getAttribute('data-play-count')) === '2',
      { timeout: 240000, timeoutMsg: 'the analysis never showed two plays' });
    metrics.analysis_ms = Date.now() - t0;

    const blocks = await browser.$$('#plays .play-block');
    assert.equal(blocks.length, 2);
    const offsets = [];
    for (const [i, block] of [...blocks].entries()) {
      assert.equal(await block.isDisplayed(), true, `block ${i} shown`);
      offsets.push(Number(await block.getAttribute('data-offset')));
      assert.ok(Number(await block.getAttribute('data-beats')) > 10, `beats drawn inside block ${i}`);
    }
    for (const [i, at] of PLAYS_AT_S.entries()) assert.ok(Math.abs(offsets[i] - at) < 0.01, `play ${i + 1} at ${offsets[i]} s`);
    assert.equal(await (await browser.$('#plays-export')).isDisplayed(), true);
    await (await browser.$('#timeline')).scrollIntoView({ block: 'center' });
    await screenshot(browser, 'plays-two');

    // Leave the second play out with its switch.
    await (await browser.$('#plays .play-block[data-index="1"] .play-switch')).click();
    let options = await until(browser, 'the second play left out', (o) => o.plays && o.plays.length === 1);
    assert.ok(Math.abs(options.plays[0].offset_s - offsets[0]) < 1e-9 && Math.abs(options.plays[0].dance_start_s - 2) < 0.5,
      JSON.stringify(options.plays));

    // Nudge the first (selected) play by 1 ms with the key.
    await (await browser.$('#plays .play-block[data-index="0"] .play-pick')).click();
    await browser.keys('.');
    options = await until(browser, 'the nudge', (o) => o.plays && Math.abs(o.plays[0].offset_s - (offsets[0] + 0.001)) < 1e-6);

    // One clip per play.
    await (await browser.$('#plays-layout')).selectByAttribute('value', 'split');
    options = await until(browser, 'the layout', (o) => o.layout === 'split');
    assert.equal(options.between, 'recorded');
    assert.equal(options.plays.length, 1, 'the plays stay as chosen');
    await screenshot(browser, 'plays-split');
  } finally {
    await app.stop();
  }
});
