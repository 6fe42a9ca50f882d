// Files named on the command line reach the window through the same Rust path
// as a drop: the app started with a class video (absolute path) and the song
// (relative to its working directory) lists both and analyses them; a second
// launch from another folder hands its file to the running window and exits.
// Runs against the built app, or the installed one (BEATSYNC_APP, scripts/test.sh's
// install step). Screenshots go to $BEATSYNC_TEST_OUT/e2e/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startApp, screenshot, ffmpeg, appPath } from './driver.mjs';

let dir;
let media;
let env;
const shot = (name) => `${process.env.BEATSYNC_SHOT_PREFIX || ''}${name}`;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beatsync-launch-'));
  media = path.join(dir, 'media');
  fs.mkdirSync(media);
  env = { BEATSYNC_DATA_DIR: path.join(dir, 'data') };
  const song = path.join(media, 'song.m4a');
  ffmpeg(['-f', 'lavfi', '-i', 'aevalsrc=0.5*sin(2*PI*55*t)*exp(-18*mod(t\\,0.5))+0.2*sin(2*PI*(220+20*mod(floor(t*2)*7\\,11))*t):s=44100:d=20', '-c:a', 'aac', song]);
  for (const name of ['周六 class.mp4', 'second class.mp4']) {
    ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=30', '-i', song, '-filter_complex', '[1:a]adelay=2000|2000[a]',
      '-map', '0:v', '-map', '[a]', '-t', '12', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', path.join(media, name)]);
  }
});

after(() => { if (dir) fs.rmSync(dir, { recursive: true, force: true }); });

const listed = (browser) => browser.execute(() => [...document.querySelectorAll('li.file')].map((li) => `${li.dataset.path} (${li.dataset.status})`));

async function waitForFile(browser, file, role) {
  try {
    await browser.waitUntil(
      () => browser.execute((p) => [...document.querySelectorAll('li.file')].some((li) => li.dataset.path === p && li.dataset.status === 'ok'), file),
      { timeout: 30000 },
    );
  } catch {
    assert.fail(`${file} never appeared in the file list; listed: ${(await listed(browser)).join(', ') || 'nothing'}`);
  }
  const got = await browser.execute((p) => [...document.querySelectorAll('li.file')].find((li) => li.dataset.path === p).dataset.role, file);
  assert.equal(got, role, `${file} listed as ${got}`);
}

test('files named at launch and by a second launch are added to the window', async () => {
  const classVideo = path.join(media, '周六 class.mp4');
  const song = path.join(media, 'song.m4a');
  // The app runs in this process's working directory: name the song relative to it.
  const app = await startApp({ env, args: [classVideo, path.relative(process.cwd(), song)] });
  const { browser } = app;
  try {
    await waitForFile(browser, classVideo, 'class');
    await waitForFile(browser, song, 'song');
    await screenshot(browser, shot('launch-with-files'));

    // A second launch, from the media folder with a relative name: it hands the
    // file over to the running window and ends.
    const t0 = Date.now();
    const second = spawnSync(appPath(), ['second class.mp4'], { cwd: media, env: { ...process.env, ...env }, timeout: 60000, encoding: 'utf8' });
    assert.equal(second.status, 0, `second launch: status ${second.status} signal ${second.signal} ${second.stderr}`);
    assert.ok(Date.now() - t0 < 30000);
    await waitForFile(browser, path.join(media, 'second class.mp4'), 'class');
    const all = await listed(browser);
    assert.equal(all.length, 3, `listed: ${all}`);
    await screenshot(browser, shot('second-launch'));
  } finally {
    await app.stop();
  }
});
