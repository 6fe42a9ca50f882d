// The picture view in headless Chromium with the Rust side mocked: frames asked by file id
// and time through the `frame:` scheme (the page never names a path), following the
// playhead; frame steps by the recording's own frame times (Alt/Ctrl+←/→) and the
// one-frame nudge following the frame shown; the mirror kept in the app's settings; the
// filmstrip along the timeline. (Chromium has no `frame:` scheme: the pictures themselves
// are checked in the real window, tests/e2e/picture.e2e.test.mjs.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveUi, launch } from './harness.mjs';
import { openAnalysed } from './fixtures.mjs';
import { frameUrl, pictureWidth, sparseEvery, stripSlots, thumbnailUrl } from '../../ui/js/picture.js';

let server;
let browser;
before(async () => { server = await serveUi(); browser = await launch(); });
after(async () => { await browser?.close(); server?.close(); });

const callsOf = (page, cmd) => page.evaluate((c) => window.__mock.calls.filter((x) => x.cmd === c).map((x) => x.args), cmd);
const CLASS_ID = encodeURIComponent('f:/videos/class.mp4');
const F = 1 / 29.97;

/** The ms and query of the picture's current request. */
async function asked(page) {
  const src = await page.getAttribute('#picture-img', 'src');
  const m = src.match(/^frame:\/\/localhost\/([^/]+)\/(\d+)\?(.*)$/);
  assert.ok(m, src);
  return { id: m[1], ms: Number(m[2]), query: m[3] };
}

test('pure: frame URLs, widths and filmstrip slots', () => {
  assert.equal(frameUrl('frame://localhost/', 'ab', 1.2345, 640, false), 'frame://localhost/ab/1235?w=640');
  assert.equal(frameUrl('http://frame.localhost/', 'ab', -1, 640, true), 'http://frame.localhost/ab/0?w=640&play=1');
  assert.equal(pictureWidth(300, 1), 320);
  assert.equal(pictureWidth(300, 2), 640);
  assert.equal(pictureWidth(5000, 2), 1280);
  const slots = stripSlots({ start_s: 0, px_per_s: 10 }, 200, 50, 2, 42);
  assert.deepEqual(slots.map((s) => s.index), [0, 2, 5, 7]);
  assert.deepEqual(stripSlots({ start_s: 0, px_per_s: 10 }, 200, 50, 2, 0), []);
  assert.equal(thumbnailUrl('frame://localhost/', 'ab', 3, 16), 'frame://localhost/ab/strip/3?e=16000');
  // The sparse strip: about one thumbnail per 72-px slot of the whole view, 2 s times a power of two.
  assert.equal(sparseEvery(180, 1000), 16); // 13 s a slot
  assert.equal(sparseEvery(600, 1000), 64); // 43 s a slot
  assert.equal(sparseEvery(20, 1000), 2); // a short recording: the dense strip only
  assert.equal(sparseEvery(86400, 100), 512);
  assert.equal(sparseEvery(undefined, 1000), 16); // the duration not known yet
});

test('the picture follows the playhead by file id, frame keys step by the frame times, the nudge follows', async () => {
  const { page, context } = await openAnalysed(browser, server);
  await page.waitForFunction(() => document.querySelector('#picture-img').getAttribute('src'));
  let a = await asked(page);
  assert.equal(a.id, CLASS_ID, 'the file id, never its path');
  assert.equal(a.ms, 0);
  assert.match(a.query, /^w=\d+$/);

  await page.focus('#timeline');
  await page.keyboard.press('Alt+ArrowRight');
  await page.waitForFunction(() => Number(document.querySelector('#timeline').dataset.playhead) > 0);
  assert.deepEqual((await callsOf(page, 'frame_step')).at(-1), { id: 'f:/videos/class.mp4', at_s: 0, frames: 1 });
  const ph = Number(await page.getAttribute('#timeline', 'data-playhead'));
  assert.ok(Math.abs(ph - 1.5 * F) < 1e-9, `the middle of frame 1: ${ph}`);
  await page.waitForFunction(() => /\/50\?/.test(document.querySelector('#picture-img').getAttribute('src')));
  assert.equal(await page.textContent('#frame-info'), 'frame 1');
  await page.keyboard.press('Control+ArrowRight');
  await page.keyboard.press('Control+ArrowRight');
  await page.waitForFunction(() => document.querySelector('#frame-info').textContent === 'frame 3');
  await page.click('#frame-prev');
  await page.waitForFunction(() => document.querySelector('#frame-info').textContent === 'frame 2');
  assert.ok(Math.abs(Number(await page.getAttribute('#timeline', 'data-playhead')) - 2.5 * F) < 1e-9);
  assert.equal((await callsOf(page, 'frame_step')).length, 4);
  assert.equal((await callsOf(page, 'set_placement')).length, 0, 'stepping frames is not nudging');

  // The one-frame nudge is the length of the frame shown.
  await page.keyboard.press(']');
  const off = (await callsOf(page, 'set_placement')).at(-1).offset_s;
  assert.ok(Math.abs(off - (12.345 + F)) < 1e-6, `${off}`);

  // Playing: frames asked as the playhead runs, marked as playing (Rust reads ahead).
  await page.evaluate(() => window.__mock.emit('preview-state', { playing: true, position_s: 10, error: null }));
  await page.waitForFunction(() => /play=1/.test(document.querySelector('#picture-img').getAttribute('src')));
  a = await asked(page);
  assert.ok(a.ms >= 10000 && a.ms < 12000, `${a.ms}`);
  await page.evaluate(() => window.__mock.emit('preview-state', { playing: false, position_s: 20, error: null }));
  await page.waitForFunction(() => /\/20000\?w=\d+$/.test(document.querySelector('#picture-img').getAttribute('src')));
  await context.close();
});

test('mirror is on by default, kept in the app settings (not localStorage), and flips the picture', async () => {
  const { page, context } = await openAnalysed(browser, server);
  assert.equal(await page.getAttribute('#mirror', 'aria-pressed'), 'true');
  assert.equal(await page.getAttribute('#picture', 'data-mirror'), 'true');
  const flipped = () => page.evaluate(() => getComputedStyle(document.querySelector('#picture-img')).transform);
  assert.equal(await flipped(), 'matrix(-1, 0, 0, 1, 0, 0)');
  await page.click('#mirror');
  assert.equal(await page.getAttribute('#mirror', 'aria-pressed'), 'false');
  assert.equal(await flipped(), 'none');
  assert.equal((await callsOf(page, 'set_settings')).at(-1).settings.mirror, false);
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]');
  assert.equal(await page.getAttribute('#mirror', 'aria-pressed'), 'false', 'remembered by the settings store');
  await context.close();
});

test('the filmstrip is drawn along the timeline from the thumbnails Rust made', async () => {
  const { page, context } = await openAnalysed(browser, server);
  // A sparse strip first (it covers the view sooner), then the dense one.
  await page.waitForFunction(() => window.__mock.calls.filter((x) => x.cmd === 'filmstrip').length === 2);
  const asks = await callsOf(page, 'filmstrip');
  assert.ok(asks[0].every_s > 2 && Number.isInteger(Math.log2(asks[0].every_s / 2)), JSON.stringify(asks));
  assert.deepEqual(asks[1], { id: 'f:/videos/class.mp4', every_s: 2 });
  await page.waitForFunction(() => /e=2000$/.test(document.querySelector('#filmstrip img:not([hidden])')?.getAttribute('src')));
  const srcs = await page.$$eval('#filmstrip img:not([hidden])', (imgs) => imgs.map((i) => i.getAttribute('src')));
  assert.ok(srcs.length >= 5, `${srcs.length}`);
  assert.equal(srcs[0], `frame://localhost/${CLASS_ID}/strip/0?e=2000`);
  const last = Number(srcs.at(-1).match(/strip\/(\d+)\?/)[1]);
  assert.ok(last >= 38 && last <= 41, `the last slot near the recording's end (83.4 s): ${last}`);
  // Zoomed in, the slots show thumbnails closer together.
  await page.click('#zoom-in');
  await page.click('#zoom-in');
  const zoomed = await page.$$eval('#filmstrip img:not([hidden])', (imgs) => imgs.map((i) => Number(i.dataset.index)));
  assert.ok(zoomed.at(-1) < last, `${zoomed}`);
  await context.close();
});

test('a class video removed from the list has its pictures closed in Rust, by id', async () => {
  const { page, context } = await openAnalysed(browser, server);
  await page.waitForFunction(() => document.querySelector('#picture-img').getAttribute('src'));
  assert.deepEqual(await callsOf(page, 'close_pictures'), []);
  const li = await page.waitForSelector('li.file:has-text("class.mp4")');
  await (await li.$('button[data-action="remove"]')).click();
  await page.waitForFunction(() => window.__mock.calls.some((c) => c.cmd === 'close_pictures'));
  assert.deepEqual(await callsOf(page, 'close_pictures'), [{ id: 'f:/videos/class.mp4' }]);
  await context.close();
});

test('the export mirror option is kept in the settings and states its caveat', async () => {
  const { page, context } = await openAnalysed(browser, server);
  assert.equal(await page.isChecked('#mirror-export'), false, 'off by default');
  assert.equal(await page.isVisible('#mirror-export-note'), false);
  await page.check('#mirror-export');
  await page.waitForFunction(() => window.__mock.calls.some((c) => c.cmd === 'set_settings' && c.args.settings.mirror_export === true));
  assert.equal((await callsOf(page, 'set_settings')).at(-1).settings.mirror, true, 'the picture view\'s mirror is not changed');
  assert.equal(await page.isVisible('#mirror-export-note'), true);
  assert.match(await page.textContent('#mirror-export-note'), /Not every player/);
  assert.match(await page.getAttribute('label.mirror-export', 'title'), /without re-encoding/);
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]');
  assert.equal(await page.isChecked('#mirror-export'), true, 'remembered by the settings store');
  assert.equal(await page.isVisible('#mirror-export-note'), true);
  await page.uncheck('#mirror-export');
  await page.waitForFunction(() => window.__mock.calls.filter((c) => c.cmd === 'set_settings').at(-1).args.settings.mirror_export === false);
  assert.equal(await page.isVisible('#mirror-export-note'), false);
  await context.close();
});

test('slow audition: 0.75x and 0.5x by keyboard, sent to Rust, restarted at once, the picture following at that speed', async () => {
  const { page, context } = await openAnalysed(browser, server);
  const speedSelect = page.locator('#speed');
  assert.equal(await speedSelect.inputValue(), '1');
  assert.match(await speedSelect.getAttribute('title'), /pitch stays the same/);
  await page.focus('#timeline');
  await page.keyboard.press('Space');
  assert.equal((await callsOf(page, 'preview_play')).at(-1).speed, 1);
  await page.evaluate(() => window.__mock.emit('preview-state', { playing: true, position_s: 10, error: null }));
  // Keyboard: the select takes arrow keys; a change while playing restarts at once from the playhead.
  await page.focus('#speed');
  await page.keyboard.press('ArrowDown');
  await page.waitForFunction(() => window.__mock.calls.filter((c) => c.cmd === 'preview_play').length === 2);
  let play = (await callsOf(page, 'preview_play')).at(-1);
  assert.deepEqual([play.speed, play.from_s], [0.75, 10]);
  await page.keyboard.press('ArrowDown');
  await page.waitForFunction(() => window.__mock.calls.filter((c) => c.cmd === 'preview_play').length === 3);
  play = (await callsOf(page, 'preview_play')).at(-1);
  assert.equal(play.speed, 0.5);
  // The picture's playhead runs on at the speed heard: half a second of recording per second.
  await page.evaluate(() => window.__mock.emit('preview-state', { playing: true, position_s: 12, error: null }));
  const rate = await page.evaluate(() => {
    const p = window.beatsync.picture;
    const w = { ...p.want };
    return (p.playhead() - w.at_s) / ((performance.now() - w.since) / 1000);
  });
  assert.ok(Math.abs(rate - 0.5) < 0.05, `${rate}`);
  await context.close();
});
