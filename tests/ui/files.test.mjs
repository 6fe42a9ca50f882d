// UI logic in headless Chromium with the IPC mocked: adding files, the
// information and errors shown, language switching, keyboard use.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveUi, launch, openUi } from './harness.mjs';
import { STRINGS } from '../../ui/js/i18n.js';

let server;
let browser;
before(async () => { server = await serveUi(); browser = await launch(); });
after(async () => { await browser?.close(); server?.close(); });

const CLASS_INFO = {
  path: '/videos/class.mp4', container: 'mov,mp4,m4a,3gp,3g2,mj2', duration_s: 83.4, size_bytes: 1000,
  streams: [
    { kind: 'video', index: 0, codec: 'h264', width: 1920, height: 1080, frame_rate: 29.97, rotation: 90, duration_s: 83.4 },
    { kind: 'audio', index: 1, codec: 'aac', sample_rate: 48000, channels: 2, layout: 'stereo', duration_s: 83.4, decodable: true },
  ],
};
const SONG_INFO = {
  path: '/music/song.mp3', container: 'mp3', duration_s: 200, size_bytes: 1000,
  streams: [{ kind: 'audio', index: 0, codec: 'mp3float', sample_rate: 44100, channels: 2, layout: 'stereo', duration_s: 200, decodable: true }],
};

test('both languages have every string', () => {
  const en = Object.keys(STRINGS.en).sort();
  const zh = Object.keys(STRINGS.zh).sort();
  assert.deepEqual(zh, en);
  for (const [k, v] of Object.entries(STRINGS.zh)) assert.ok(v.trim().length > 0, `zh ${k} empty`);
});

test('the page is fully translated and empty at start', async () => {
  const { page, context, errors } = await openUi(browser, server);
  const untranslated = await page.$$eval('[data-i18n]', (els) => els.filter((e) => !e.textContent.trim() || e.textContent === e.dataset.i18n).map((e) => e.dataset.i18n));
  assert.deepEqual(untranslated, []);
  assert.equal(await page.isVisible('#files-empty'), true);
  assert.equal(await page.textContent('#drop-title'), STRINGS.en['drop.title']);
  assert.deepEqual(errors, []);
  await context.close();
});

test('a Chinese system locale gives the Chinese interface', async () => {
  const { page, context } = await openUi(browser, server, { locale: 'zh-CN' });
  assert.equal(await page.textContent('#drop-title'), STRINGS.zh['drop.title']);
  assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
  await context.close();
});

test('adding files by keyboard shows what each file is', async () => {
  const { page, context } = await openUi(browser, server);
  await page.evaluate(([c, s]) => {
    window.__mock.on('probe_media', ({ path }) => (path.endsWith('.mp4') ? { ...c, path } : { ...s, path }));
  }, [CLASS_INFO, SONG_INFO]);
  // Tab from the top of the page to the path field: language button, then the field.
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'lang');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'path-input');
  await page.keyboard.type('/videos/class.mp4');
  await page.keyboard.press('Enter');
  await page.keyboard.type('/music/song.mp3');
  await page.keyboard.press('Enter');
  await page.waitForSelector('li.file[data-role="song"]');
  const items = await page.$$eval('li.file', (els) => els.map((e) => ({ role: e.dataset.role, text: e.textContent })));
  assert.equal(items.length, 2);
  assert.equal(items[0].role, 'class');
  assert.match(items[0].text, /1:23/);
  assert.match(items[0].text, /H264 1920×1080, 29\.97 fps/);
  assert.match(items[0].text, /rotated 90°/);
  assert.equal(items[1].role, 'song');
  assert.match(items[1].text, /3:20/);
  const calls = await page.evaluate(() => window.__mock.calls);
  assert.deepEqual(calls.map((c) => c.args.path), ['/videos/class.mp4', '/music/song.mp3']);
  assert.equal(await page.isVisible('#files-empty'), false);
  await context.close();
});

test('a file the engine rejects shows the reason, code and detail', async () => {
  const { page, context } = await openUi(browser, server);
  await page.evaluate(() => {
    window.__mock.on('probe_media', () => { throw { code: 'not_media', message: '/tmp/notes.mp4 is not a media file FFmpeg can open' }; });
  });
  await page.evaluate(() => window.beatsync.addPaths(['/tmp/notes.mp4']));
  const li = await page.waitForSelector('li.file.error');
  assert.equal(await li.getAttribute('data-code'), 'not_media');
  const text = await li.textContent();
  assert.match(text, new RegExp(STRINGS.en['err.not_media']));
  assert.match(text, /not_media: \/tmp\/notes\.mp4 is not a media file/);
  await context.close();
});

test('switching language re-renders and is remembered', async () => {
  const { page, context } = await openUi(browser, server);
  await page.evaluate((s) => window.__mock.on('probe_media', ({ path }) => ({ ...s, path })), SONG_INFO);
  await page.evaluate(() => window.beatsync.addPaths(['/music/song.mp3']));
  await page.waitForSelector('li.file[data-role="song"]');
  await page.focus('#lang');
  await page.keyboard.press('Enter');
  assert.equal(await page.textContent('#drop-title'), STRINGS.zh['drop.title']);
  assert.match(await page.textContent('li.file .role'), new RegExp(STRINGS.zh['role.song']));
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]');
  assert.equal(await page.textContent('#drop-title'), STRINGS.zh['drop.title']);
  await context.close();
});
