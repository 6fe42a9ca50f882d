// The first five minutes in the real window: the empty window shows the guide
// (screenshot in Chinese, so the CJK fallback font is seen), Try a sample makes
// the demo class video and song in the data folder, both are added as a drop
// would add them, and the analysis places the song at the demo's known offset.
// Screenshots go to $BEATSYNC_TEST_OUT/e2e/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startApp, screenshot } from './driver.mjs';

// The demo's known offset (src-tauri/engine/src/demo: 190 453 samples at 44.1 kHz).
const DEMO_OFFSET_S = 190453 / 44100;
const shot = (name) => `${process.env.BEATSYNC_SHOT_PREFIX || ''}${name}`;

let dir;
before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beatsync-sample-')); });
after(() => { if (dir) fs.rmSync(dir, { recursive: true, force: true }); });

test('Try a sample adds the demo pair and the analysis finds its offset', async () => {
  const data = path.join(dir, 'data');
  const app = await startApp({ env: { BEATSYNC_DATA_DIR: data } });
  const { browser } = app;
  try {
    // Chinese whatever the system says, for the screenshot of the guide.
    if ((await browser.execute(() => document.documentElement.lang)) !== 'zh-CN') await (await browser.$('#lang')).click();
    assert.equal(await browser.execute(() => document.documentElement.lang), 'zh-CN');
    assert.ok(await (await browser.$('#guide')).isDisplayed(), 'the guide shows in an empty window');
    assert.match(await (await browser.$('#try-sample')).getText(), /试用示例/);
    await screenshot(browser, shot('first-launch-guide-zh'));

    await (await browser.$('#try-sample')).click();
    const sample = path.join(data, 'sample');
    const ok = (file) => browser.execute((p) => [...document.querySelectorAll('li.file')].some((li) => li.dataset.path === p && li.dataset.status === 'ok'), file);
    await browser.waitUntil(async () => (await ok(path.join(sample, 'beatsync-demo-class.mp4'))) && (await ok(path.join(sample, 'beatsync-demo-song.m4a'))),
      { timeout: 180000, timeoutMsg: 'the demo pair never appeared in the file list' });
    const roles = await browser.execute(() => [...document.querySelectorAll('li.file')].map((li) => li.dataset.role));
    assert.deepEqual(roles, ['class', 'song']);

    await browser.waitUntil(async () => (await browser.$$('#jobs li[data-state="analyzed"]')).length === 1,
      { timeout: 180000, timeoutMsg: 'the sample was never analysed' });
    const timeline = await browser.$('#timeline');
    await browser.waitUntil(async () => Number.isFinite(Number(await timeline.getAttribute('data-offset'))), { timeout: 20000 });
    const offset = Number(await timeline.getAttribute('data-offset'));
    assert.ok(Math.abs(offset - DEMO_OFFSET_S) < 0.01, `placed at ${offset} s, the demo's offset is ${DEMO_OFFSET_S} s`);
    await screenshot(browser, shot('sample-analysed-zh'));
  } finally {
    await app.stop();
  }
});
