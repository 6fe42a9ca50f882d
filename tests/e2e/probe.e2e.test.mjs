// End-to-end: the real app window under Xvfb probes real files through the
// whole stack (UI → IPC → ACL → engine → FFmpeg) and shows the result.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startApp, screenshot, ffmpeg } from './driver.mjs';

let app;
let dir;
before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beatsync-e2e-'));
  app = await startApp({ env: { BEATSYNC_DATA_DIR: path.join(dir, 'data') } });
});
after(async () => {
  await app?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('window is titled BeatSync and shows the empty state', async () => {
  const { browser } = app;
  assert.equal(await browser.getTitle(), 'BeatSync');
  assert.equal(await (await browser.$('#files-empty')).isDisplayed(), true);
  await screenshot(browser, 'empty');
});

test('probing a class video and a broken file from the path field', async () => {
  const { browser } = app;
  const video = path.join(dir, '周六 class.mp4');
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc=size=640x360:rate=30:duration=3', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=3',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', video]);
  const notes = path.join(dir, 'notes.mp4');
  fs.writeFileSync(notes, 'not a video at all');

  for (const p of [video, notes]) {
    const input = await browser.$('#path-input');
    await input.setValue(p);
    await (await browser.$('#path-add')).click();
  }
  await browser.waitUntil(async () => (await browser.$$('li.file[data-status="checking"]')).length === 0 && (await browser.$$('li.file')).length === 2,
    { timeout: 15000, timeoutMsg: 'probe results did not appear' });

  const ok = await browser.$('li.file[data-role="class"]');
  const okText = await ok.getText();
  assert.match(okText, /周六 class\.mp4/);
  assert.match(okText, /H264 640×360, 30 fps/);
  assert.match(okText, /AAC 48 kHz/);

  const bad = await browser.$('li.file.error');
  assert.equal(await bad.getAttribute('data-code'), 'not_media');
  assert.match(await bad.getText(), /not a video or audio file/);
  await screenshot(browser, 'probed');
});
