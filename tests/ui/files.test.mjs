// UI logic in headless Chromium with the IPC mocked: adding files, the
// information and errors shown, language switching, keyboard use.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveUi, launch, openUi } from './harness.mjs';
import { STRINGS } from '../../ui/js/i18n.js';
import { BACKEND_DATA, backend } from './fixtures.mjs';

const withBackend = { init: { fn: backend, arg: BACKEND_DATA } };

let server;
let browser;
before(async () => { server = await serveUi(); browser = await launch(); });
after(async () => { await browser?.close(); server?.close(); });

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
  const { page, context, errors } = await openUi(browser, server, withBackend);
  // Tab from the top of the page to the path field: language button, "Add files…", then the field.
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'lang');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'about-open');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'pick-files');
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
  const calls = await page.evaluate(() => window.__mock.calls.filter((c) => c.cmd === 'add_files'));
  assert.deepEqual(calls.map((c) => c.args.paths), [['/videos/class.mp4'], ['/music/song.mp3']]);
  assert.equal(await page.isVisible('#files-empty'), false);
  assert.deepEqual(errors, []);
  await context.close();
});

test('the first launch shows the guide; Try a sample adds the demo pair and the analysis starts', async () => {
  const { page, context, errors } = await openUi(browser, server, withBackend);
  assert.equal(await page.isVisible('#guide'), true);
  assert.equal(await page.textContent('#guide li:first-child'), STRINGS.en['guide.video']);
  await page.click('#try-sample');
  await page.waitForSelector('li.file[data-role="song"]');
  const roles = await page.$$eval('li.file', (els) => els.map((e) => e.dataset.role));
  assert.deepEqual(roles, ['class', 'song']);
  const calls = await page.evaluate(() => window.__mock.calls.map((c) => c.cmd));
  assert.ok(calls.includes('try_sample'), calls.join());
  await page.waitForFunction(() => window.__mock.calls.some((c) => c.cmd === 'analyze'));
  const analyze = await page.evaluate(() => window.__mock.calls.find((c) => c.cmd === 'analyze').args);
  assert.match(analyze.dance, /beatsync-demo-class\.mp4$/);
  assert.match(analyze.bgm, /beatsync-demo-song\.m4a$/);
  // The guide is for an empty window only.
  assert.equal(await page.isVisible('#guide'), false);
  assert.equal(await page.isVisible('#try-sample'), false);
  assert.deepEqual(errors, []);
  await context.close();
});

test('About shows the version, the FFmpeg in use and where jobs and logs are kept, in Chinese too', async () => {
  const { page, context, errors } = await openUi(browser, server, { ...withBackend, locale: 'zh-CN' });
  await page.click('#about-open');
  await page.waitForSelector('#about[open]');
  assert.equal(await page.textContent('#about-title'), STRINGS.zh['about.title']);
  assert.equal(await page.textContent('#about-version'), '0.1.0');
  assert.match(await page.textContent('#about-ffmpeg'), /libavformat 59/);
  assert.equal(await page.textContent('#about-data'), '/data/BeatSync');
  assert.equal(await page.textContent('#about-logs'), '/data/BeatSync/logs');
  await page.click('#about-close');
  assert.equal(await page.isVisible('#about'), false);
  assert.deepEqual(errors, []);
  await context.close();
});

test('a file the engine rejects shows the reason, code, detail and what to do', async () => {
  const { page, context } = await openUi(browser, server, withBackend);
  await page.evaluate(() => window.beatsync.addPaths(['/tmp/notes.mp4']));
  const li = await page.waitForSelector('li.file.error');
  assert.equal(await li.getAttribute('data-code'), 'not_media');
  const text = await li.textContent();
  assert.match(text, new RegExp(STRINGS.en['err.not_media']));
  assert.match(text, /not_media: \/tmp\/notes\.mp4 is not a media file/);
  assert.match(text, new RegExp(STRINGS.en['fix.not_media']));
  // A rejected file is never analysed, and it can be dismissed.
  assert.equal(await page.evaluate(() => window.__mock.calls.some((c) => c.cmd === 'analyze')), false);
  await page.click('li.file.error button[data-action="remove"]');
  assert.equal(await page.$$eval('li.file', (els) => els.length), 0);
  await context.close();
});

test('a failing add_files call marks the typed path as rejected with the engine message', async () => {
  const { page, context } = await openUi(browser, server);
  await page.evaluate(() => window.__mock.on('add_files', () => { throw { code: 'unreadable', message: 'cannot read /x.mp4: permission denied' }; }));
  await page.evaluate(() => window.beatsync.addPaths(['/x.mp4']));
  const li = await page.waitForSelector('li.file.error');
  assert.equal(await li.getAttribute('data-code'), 'unreadable');
  assert.match(await li.textContent(), /permission denied/);
  await context.close();
});

test('switching language re-renders and is remembered', async () => {
  const { page, context } = await openUi(browser, server, withBackend);
  await page.evaluate(() => window.beatsync.addPaths(['/music/song.mp3']));
  await page.waitForSelector('li.file[data-role="song"]');
  await page.focus('#lang');
  await page.keyboard.press('Enter');
  assert.equal(await page.textContent('#drop-title'), STRINGS.zh['drop.title']);
  assert.match(await page.textContent('li.file .role'), new RegExp(STRINGS.zh['role.song']));
  // Kept by Rust (set_settings), not in the webview's own storage.
  assert.equal((await page.evaluate(() => window.__mock.calls.filter((c) => c.cmd === 'set_settings'))).at(-1).args.settings.language, 'zh');
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]');
  assert.equal(await page.textContent('#drop-title'), STRINGS.zh['drop.title']);
  await context.close();
});

test('a typed path the user declines to add (Rust answers []) leaves nothing behind', async () => {
  const { page, context } = await openUi(browser, server);
  await page.evaluate(() => window.__mock.on('add_files', () => []));
  await page.evaluate(() => window.beatsync.addPaths(['/videos/x.mp4']));
  assert.equal(await page.$$eval('li.file', (els) => els.length), 0);
  assert.deepEqual(await page.evaluate(() => window.__mock.calls.filter((c) => c.cmd === 'add_files').map((c) => c.args)), [{ paths: ['/videos/x.mp4'] }]);
  await context.close();
});

test('with only class videos nothing is analysed until one is chosen as the song', async () => {
  const { page, context } = await openUi(browser, server, withBackend);
  await page.evaluate(() => window.beatsync.addPaths(['/videos/a.mp4']));
  await page.evaluate(() => window.beatsync.addPaths(['/videos/b.mp4']));
  await page.waitForSelector('li.file[data-path="/videos/b.mp4"][data-role="class"]');
  assert.equal(await page.textContent('#view-empty-title'), STRINGS.en['view.need_song_title']);
  assert.equal(await page.evaluate(() => window.__mock.calls.some((c) => c.cmd === 'analyze')), false);
  await page.click('li.file[data-path="/videos/b.mp4"] button[data-action="use-song"]');
  await page.waitForSelector('li.file[data-path="/videos/b.mp4"][data-role="song"]');
  const analyses = await page.evaluate(() => window.__mock.calls.filter((c) => c.cmd === 'analyze').map((c) => c.args));
  assert.deepEqual(analyses, [{ dance: 'f:/videos/a.mp4', bgm: 'f:/videos/b.mp4' }]);
  await context.close();
});

test('with only the song the view asks for class videos; the song is recognised without a picture', async () => {
  const { page, context } = await openUi(browser, server, withBackend);
  await page.evaluate(() => window.beatsync.addPaths(['/music/song.mp3']));
  await page.waitForSelector('li.file[data-role="song"]');
  assert.equal(await page.textContent('#view-empty-title'), STRINGS.en['view.need_class_title']);
  // A song picked with the native dialog afterwards: the class video is analysed against it.
  await page.click('#pick-files');
  await page.waitForSelector('li.file[data-path="/videos/class2.mp4"][data-role="class"]');
  const analyses = await page.evaluate(() => window.__mock.calls.filter((c) => c.cmd === 'analyze').map((c) => c.args));
  assert.deepEqual(analyses, [{ dance: 'f:/videos/class2.mp4', bgm: 'f:/music/song.mp3' }]);
  await context.close();
});

test('the page says it is ready for launch files only once it listens to files-added', async () => {
  const { page, context } = await openUi(browser, server, withBackend);
  const ready = await page.evaluate(() => window.__mock.calls.filter((c) => c.cmd === 'page_ready'));
  assert.equal(ready.length, 1);
  assert.ok(ready[0].listening.includes('files-added'), `listening to ${ready[0].listening}`);
  // What Rust hands over then is listed like a drop.
  await page.evaluate(() => window.__mock.emit('files-added', [{ path: '/videos/opened.mp4', ok: false, error: { code: 'not_found', message: 'no such file' } }]));
  await page.waitForSelector('li.file[data-path="/videos/opened.mp4"]');
  await context.close();
});

test('dragging files over the window lights up the drop area until they are dropped', async () => {
  const { page, context } = await openUi(browser, server, withBackend);
  await page.evaluate(() => window.__mock.emit('tauri://drag-enter', { paths: ['/videos/a.mp4'] }));
  assert.equal(await page.getAttribute('#drop', 'class'), 'drop over');
  await page.evaluate(() => window.__mock.emit('tauri://drag-leave', {}));
  assert.equal(await page.getAttribute('#drop', 'class'), 'drop');
  await page.evaluate(() => window.__mock.emit('tauri://drag-enter', { paths: ['/videos/a.mp4'] }));
  await page.evaluate(() => window.__mock.emit('tauri://drag-drop', { paths: ['/videos/a.mp4'] }));
  assert.equal(await page.getAttribute('#drop', 'class'), 'drop');
  await context.close();
});

test('Space plays with nothing focused, but not while typing a path', async () => {
  const { page, context } = await openUi(browser, server, withBackend);
  await page.evaluate(() => window.beatsync.addPaths(['/videos/class.mp4', '/music/song.mp3']));
  await page.waitForFunction(() => window.__backend.jobs.size === 1);
  await page.evaluate(() => window.__backend.emitJob('job-1', { state: 'analyzed', analysis: window.__align }));
  await page.waitForSelector('#view-result:not([hidden])');
  await page.focus('#path-input');
  await page.keyboard.press('Space');
  assert.equal(await page.evaluate(() => window.__mock.calls.filter((c) => c.cmd === 'preview_play').length), 0);
  await page.click('.brand'); // focus leaves the field
  await page.keyboard.press('Space');
  assert.equal(await page.evaluate(() => window.__mock.calls.filter((c) => c.cmd === 'preview_play').length), 1);
  await context.close();
});
