// The "see it / listen" flow in headless Chromium with a plausible Rust side mocked:
// files dropped → analysis starts → progress → result in words, beats, alternatives,
// nudges, trim, zoom and preview (including a machine without a sound output).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveUi, launch, openUi, screenshot } from './harness.mjs';
import { STRINGS } from '../../ui/js/i18n.js';
import { ALIGN, BACKEND_DATA, DROPPED, FRAME_S, OFFSET, backend, openAnalysed } from './fixtures.mjs';

let server;
let browser;
before(async () => { server = await serveUi(); browser = await launch(); });
after(async () => { await browser?.close(); server?.close(); });

const callsOf = (page, cmd) => page.evaluate((c) => window.__mock.calls.filter((x) => x.cmd === c).map((x) => x.args), cmd);

/** Opens the app, drops a class video and the song, and brings the analysis to its result. */
function analysed(opts = {}) {
  return openAnalysed(browser, server, opts);
}

test('dropped files start the analysis; progress, then the result in words with beats', async () => {
  const { page, context, errors } = await openUi(browser, server, { init: { fn: backend, arg: BACKEND_DATA } });
  await screenshot(page, 'empty-light');
  await page.evaluate((added) => window.__mock.emit('files-added', added), DROPPED);
  await page.waitForSelector('li.file[data-role="song"]');
  assert.deepEqual(await callsOf(page, 'analyze'), [{ dance: 'f:/videos/class.mp4', bgm: 'f:/music/song.mp3' }]);
  assert.equal(await page.textContent('#view-title'), 'class.mp4');

  await page.evaluate(() => window.__backend.emitJob('job-1', { state: 'analyzing', stage: 'search', progress: 0.42, eta_s: 20 }));
  await page.waitForFunction(() => document.getElementById('view-progress-bar').value === 42);
  const text = await page.textContent('#view-progress-text');
  assert.match(text, /42 %/);
  assert.match(text, new RegExp(STRINGS.en['stage.search']));
  assert.match(text, /about 20 s left/);
  assert.equal(await page.getAttribute('li.job[data-id="job-1"] progress', 'value'), '42');
  assert.equal(await page.isVisible('#view-result'), false);
  // The recording's waveform is already there to look at.
  await page.waitForSelector('#view-progress-wave:not([hidden])');
  assert.ok((await callsOf(page, 'waveform')).some((c) => c.id === 'f:/videos/class.mp4' && c.peaks_per_s > 0));
  await screenshot(page, 'analysing-light');

  await page.evaluate((a) => window.__backend.emitJob('job-1', { state: 'analyzed', progress: 1, analysis: a }), ALIGN);
  await page.waitForSelector('#view-result:not([hidden])');
  assert.equal(await page.textContent('#sum-offset'), '+12.345 s');
  assert.equal(await page.textContent('#sum-rate'), '×1.0000');
  assert.equal(await page.textContent('#sum-confidence'), 'Sure (96 %)');
  assert.equal(await page.textContent('#sum-tempo'), '100 BPM');
  // Beats of the song that fall inside the recording: 0 … 71.055 s of song time, every 0.6 s.
  assert.equal(await page.getAttribute('#timeline', 'data-beat-count'), '119');
  assert.match(await page.textContent('#trim-info'), /Starts 0:12\.3 \(the song begins\).*ends 1:23\.4 \(end of the recording\)/);
  assert.equal(await page.isVisible('#view-progress'), false);
  assert.equal(await page.isEnabled('#export-one'), true);
  await page.waitForTimeout(100); // let the waveforms arrive before the picture
  await screenshot(page, 'analysed-light');
  assert.deepEqual(errors, []);
  await context.close();
});

test('a low confidence asks to check by ear', async () => {
  const { page, context } = await openUi(browser, server, { init: { fn: backend, arg: BACKEND_DATA } });
  await page.evaluate((added) => window.__mock.emit('files-added', added), DROPPED);
  await page.waitForFunction(() => window.__backend.jobs.size === 1);
  await page.evaluate((a) => window.__backend.emitJob('job-1', { state: 'analyzed', analysis: { ...a, confidence: 0.62 } }), ALIGN);
  await page.waitForSelector('#view-result:not([hidden])');
  assert.equal(await page.textContent('#sum-confidence'), 'Check by ear (62 %)');
  assert.equal(await page.getAttribute('#sum-confidence', 'data-word'), 'check');
  await context.close();
});

test('alternatives are named by bars and one click places the song there', async () => {
  const { page, context } = await analysed();
  const labels = await page.$$eval('#candidates button', (bs) => bs.map((b) => b.textContent));
  assert.deepEqual(labels, ['Best match · +12.345 s', 'One bar earlier · +9.945 s', 'One bar later · +14.745 s', '+0.731 s · +13.076 s']);
  await page.click('#candidates button:nth-child(2)');
  assert.deepEqual((await callsOf(page, 'set_placement')).at(-1), { id: 'job-1', offset_s: OFFSET - 2.4, rate: 1 });
  await page.waitForFunction(() => document.querySelector('#candidates button:nth-child(2)').getAttribute('aria-pressed') === 'true');
  assert.equal(await page.textContent('#sum-offset'), '+9.945 s');
  assert.equal(await page.getAttribute('#candidates button:nth-child(1)', 'aria-pressed'), 'false');
  await context.close();
});

test('nudge keys move the song by exactly 1 ms, 10 ms and one frame', async () => {
  const { page, context } = await analysed();
  const lastOffset = async () => (await callsOf(page, 'set_placement')).at(-1).offset_s;
  await page.focus('#timeline');
  await page.keyboard.press('.');
  assert.equal(await lastOffset(), 12.346);
  await page.keyboard.press(',');
  await page.keyboard.press(',');
  assert.equal(await lastOffset(), 12.344);
  await page.keyboard.press('Shift+.');
  assert.equal(await lastOffset(), 12.354);
  await page.keyboard.press('Shift+,');
  assert.equal(await lastOffset(), 12.344);
  await page.keyboard.press(']');
  assert.ok(Math.abs((await lastOffset()) - (12.344 + FRAME_S)) < 1e-6);
  await page.keyboard.press('[');
  assert.equal(await lastOffset(), 12.344);
  // The buttons do the same, and the markers move with the offset.
  await page.click('button[data-nudge="0.01"]');
  assert.equal(await lastOffset(), 12.354);
  assert.equal(await page.getAttribute('#timeline', 'data-offset'), '12.354');
  assert.equal(await page.textContent('#sum-offset'), '+12.354 s');
  assert.equal((await callsOf(page, 'set_placement')).length, 8);
  // Typing in the path field never nudges.
  await page.focus('#path-input');
  await page.keyboard.press('.');
  assert.equal((await callsOf(page, 'set_placement')).length, 8);
  await context.close();
});

test('the trim edges move by keyboard and by dragging, and call set_trim', async () => {
  const { page, context } = await analysed();
  await page.focus('#trim-start');
  await page.keyboard.press('ArrowRight');
  assert.deepEqual((await callsOf(page, 'set_trim')).at(-1), { id: 'job-1', start_s: 12.445, end_s: 83.4 });
  await page.keyboard.press('Shift+ArrowLeft');
  assert.deepEqual((await callsOf(page, 'set_trim')).at(-1), { id: 'job-1', start_s: 11.445, end_s: 83.4 });
  assert.match(await page.textContent('#trim-info'), /Starts 0:11\.4 \(set by you\)/);

  const box = await page.locator('#timeline').boundingBox();
  const end = await page.locator('#trim-end').boundingBox();
  // A click on an edge without moving it changes nothing.
  await page.mouse.click(end.x + end.width / 2, end.y + 40);
  assert.equal((await callsOf(page, 'set_trim')).length, 2);
  await page.mouse.move(end.x + end.width / 2, end.y + 40);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2, end.y + 40, { steps: 4 });
  await page.mouse.up();
  const last = (await callsOf(page, 'set_trim')).at(-1);
  assert.equal(last.start_s, 11.445);
  assert.ok(Math.abs(last.end_s - 83.4 / 2) < 1, `end ${last.end_s} near the middle`);
  await context.close();
});

test('zoom by keys and buttons, then scroll; fit shows everything again', async () => {
  const { page, context } = await analysed();
  assert.equal(await page.isDisabled('#scroll'), true);
  await page.focus('#timeline');
  await page.keyboard.press('+');
  await page.keyboard.press('+');
  assert.equal(await page.isEnabled('#scroll'), true);
  await page.click('#zoom-fit');
  assert.equal(await page.isDisabled('#scroll'), true);
  await page.click('#zoom-in');
  const box = await page.locator('#timeline').boundingBox();
  await page.mouse.move(box.x + 100, box.y + 100);
  await page.keyboard.down('Control');
  await page.mouse.wheel(0, -100);
  await page.keyboard.up('Control');
  await page.mouse.wheel(0, 300);
  assert.notEqual(await page.inputValue('#scroll'), '0');
  await page.waitForTimeout(100);
  await screenshot(page, 'analysed-zoomed-light');
  await page.keyboard.press('-');
  await page.keyboard.press('-');
  await page.keyboard.press('-');
  assert.equal(await page.isDisabled('#scroll'), true);
  await context.close();
});

test('Space plays from the playhead, a click moves it, events move it, balance is sent', async () => {
  const { page, context } = await analysed();
  await page.focus('#timeline');
  await page.keyboard.press('Space');
  assert.deepEqual((await callsOf(page, 'preview_play')).at(-1), { id: 'job-1', from_s: 0, balance: 0, speed: 1 });
  assert.equal(await page.textContent('#play'), 'Stop');
  await page.evaluate(() => window.__mock.emit('preview-state', { playing: true, position_s: 30.5, error: null }));
  assert.equal(await page.textContent('#position'), '0:30.5');
  assert.equal(await page.getAttribute('#timeline', 'data-playhead'), '30.5');
  await page.keyboard.press('Space');
  assert.equal((await callsOf(page, 'preview_stop')).length, 1);
  assert.equal(await page.textContent('#play'), 'Play');

  // Click at the middle of the canvas: the playhead goes to the middle of the recording.
  const box = await page.locator('#timeline').boundingBox();
  await page.mouse.click(box.x + box.width / 2, box.y + 120);
  assert.ok(Math.abs(Number(await page.getAttribute('#timeline', 'data-playhead')) - 41.7) < 0.5);
  await page.locator('#balance').fill('0.5');
  await page.locator('#balance').dispatchEvent('change');
  await page.click('#play');
  const play = (await callsOf(page, 'preview_play')).at(-1);
  assert.equal(play.balance, 0.5);
  assert.ok(Math.abs(play.from_s - 41.7) < 0.5);
  assert.deepEqual((await callsOf(page, 'set_settings')).at(-1).settings.balance, 0.5);
  await context.close();
});

test('without a sound output the preview says so and everything else keeps working', async () => {
  const { page, context, errors } = await analysed();
  await page.evaluate(() => window.__mock.on('preview_play', () => { throw { code: 'no_audio_device', message: 'no default output device' }; }));
  await page.click('#play');
  await page.waitForSelector('#preview-status:not([hidden])');
  const text = await page.textContent('#preview-status');
  assert.match(text, new RegExp(STRINGS.en['preview.no_device']));
  assert.match(text, /Connect speakers or headphones/);
  assert.equal(await page.textContent('#play'), 'Play');
  assert.equal(await page.isVisible('#notice'), false);
  // Nudging, candidates and export still work.
  await page.focus('#timeline');
  await page.keyboard.press('.');
  assert.equal((await callsOf(page, 'set_placement')).at(-1).offset_s, 12.346);
  assert.equal(await page.isEnabled('#export-one'), true);
  // The event form of the same problem (device lost while playing).
  await page.evaluate(() => window.__mock.emit('preview-state', { playing: false, position_s: 3, error: { code: 'no_audio_device', message: 'device unplugged' } }));
  assert.match(await page.textContent('#preview-status'), /device unplugged/);
  await screenshot(page, 'no-audio-light');
  await page.click('#lang');
  assert.match(await page.textContent('#preview-status'), new RegExp(STRINGS.zh['preview.no_device']));
  assert.deepEqual(errors, []);
  await context.close();
});

test('a failed analysis shows the engine message and what to do, and Retry works', async () => {
  const { page, context } = await openUi(browser, server, { init: { fn: backend, arg: BACKEND_DATA } });
  await page.evaluate((added) => window.__mock.emit('files-added', added), DROPPED);
  await page.waitForFunction(() => window.__backend.jobs.size === 1);
  await page.evaluate(() => window.__backend.emitJob('job-1', { state: 'failed', error: { code: 'no_match', message: 'the song was not found in the recording (no beat grid matched); check that it is the right song' } }));
  await page.waitForSelector('#view-error:not([hidden])');
  assert.equal(await page.textContent('#view-error-headline'), STRINGS.en['err.no_match']);
  assert.match(await page.textContent('#view-error-message'), /no beat grid matched/);
  assert.equal(await page.textContent('#view-error-fix'), STRINGS.en['fix.no_match']);
  const row = page.locator('li.job[data-id="job-1"]');
  assert.match(await row.textContent(), /no beat grid matched/);
  await screenshot(page, 'error-light');
  await page.click('#view-retry');
  assert.deepEqual(await callsOf(page, 'retry_job'), [{ id: 'job-1' }]);
  await page.waitForSelector('#view-error', { state: 'hidden' });
  await context.close();
});

test('"Use as song" on a video makes it a second song: the class video keeps the song that matches, the teacher can change it', async () => {
  const { page, context } = await analysed();
  await page.evaluate(() => window.beatsync.addPaths(['/videos/song-video.mp4']));
  await page.waitForSelector('li.file[data-path="/videos/song-video.mp4"]');
  // A second class video is analysed against the only song at once.
  await page.waitForFunction(() => window.__mock.calls.filter((c) => c.cmd === 'analyze').length === 2);
  await page.click('li.file[data-path="/videos/song-video.mp4"] button[data-action="use-song"]');
  await page.waitForSelector('li.file[data-path="/videos/song-video.mp4"][data-role="song"]');
  assert.equal(await page.getAttribute('li.file[data-path="/music/song.mp3"]', 'data-role'), 'song');
  // Two songs now: the class video is tried against both, and keeps the sure one.
  const pair = 'li.file[data-path="/videos/class.mp4"] .pair';
  await page.waitForSelector(`${pair}[data-pair="auto"]`);
  assert.deepEqual((await callsOf(page, 'match_songs')).at(-1), { dance: 'f:/videos/class.mp4', songs: ['f:/music/song.mp3', 'f:/videos/song-video.mp4'] });
  assert.equal(await page.inputValue(`${pair} select`), '/music/song.mp3');
  assert.equal((await callsOf(page, 'analyze')).length, 2, 'its analysis against that song is kept');
  // The teacher picks the other song: analysed against it.
  await page.selectOption(`${pair} select`, '/videos/song-video.mp4');
  await page.waitForSelector(`${pair}[data-pair="user"]`);
  await page.waitForFunction(() => window.__mock.calls.filter((c) => c.cmd === 'analyze').length === 3);
  assert.deepEqual((await callsOf(page, 'analyze')).at(-1), { dance: 'f:/videos/class.mp4', bgm: 'f:/videos/song-video.mp4' });
  await context.close();
});

test('dark theme and Chinese: analysed view', async () => {
  const { page, context } = await analysed({ colorScheme: 'dark' });
  await page.waitForTimeout(100);
  await screenshot(page, 'analysed-dark');
  await page.click('#lang');
  assert.equal(await page.textContent('#sum-confidence'), '确定（96 %）');
  assert.match(await page.textContent('#candidates'), /提前一小节/);
  await screenshot(page, 'analysed-dark-zh');
  await context.close();
});

test('empty window in the dark theme', async () => {
  const { page, context } = await openUi(browser, server, { colorScheme: 'dark', init: { fn: backend, arg: BACKEND_DATA } });
  await screenshot(page, 'empty-dark');
  assert.equal(await page.isVisible('#view-empty'), true);
  await context.close();
});
