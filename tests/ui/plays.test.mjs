// Several plays of the song in one recording (issue 18): a block per play over the timeline
// with its offset and the song's beats at its own placement, a per-play nudge and a switch to
// leave a play out (both through `set_plays`), keyboard access, audition from play to play, and
// the export's layout choice (`set_plays_layout`). One segment keeps today's view.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveUi, launch, screenshot } from './harness.mjs';
import { STRINGS } from '../../ui/js/i18n.js';
import { BETWEEN, PLAYS_LAYOUTS } from '../../ui/js/contract.js';
import { ALIGN, THREE_PLAYS, TWO_PLAYS, openAnalysed, segment } from './fixtures.mjs';

let server;
let browser;
before(async () => { server = await serveUi(); browser = await launch(); });
after(async () => { await browser?.close(); server?.close(); });

const callsOf = (page, cmd) => page.evaluate((c) => window.__mock.calls.filter((x) => x.cmd === c).map((x) => x.args), cmd);
const blocks = (page) => page.$$eval('#plays .play-block', (bs) => bs.map((b) => ({
  ...b.dataset,
  text: b.querySelector('.play-pick').textContent,
  pressed: b.querySelector('.play-pick').getAttribute('aria-pressed'),
  checked: b.querySelector('.play-switch').getAttribute('aria-checked'),
  left: parseFloat(b.style.left),
  width: parseFloat(b.style.width),
})));
const focusedBlock = (page) => page.evaluate(() => document.activeElement.closest('.play-block')?.dataset.index ?? null);

test('one segment: no blocks, no play controls, today\'s view', async () => {
  const { page, context, errors } = await openAnalysed(browser, server, { align: { ...ALIGN, segments: [segment(12.345, 0, 71)] } });
  assert.equal(await page.isVisible('#plays'), false);
  assert.equal(await page.isVisible('#play-nav'), false);
  assert.equal(await page.isVisible('#plays-export'), false);
  assert.equal(await page.isVisible('#sum-play-box'), false);
  assert.equal(await page.isVisible('#candidates-box'), true);
  assert.equal(await page.getAttribute('#timeline', 'data-play-count'), '0');
  assert.equal(await page.getAttribute('#timeline', 'data-beat-count'), '119');
  await page.keyboard.press('.');
  assert.deepEqual((await callsOf(page, 'set_placement')).at(-1), { id: 'job-1', offset_s: 12.346, rate: 1 });
  assert.deepEqual(await callsOf(page, 'set_plays'), []);
  assert.deepEqual(errors, []);
  await context.close();
});

test('two plays: a block each over the waveform, with its offset and the song\'s beats at its placement', async () => {
  const { page, context, errors } = await openAnalysed(browser, server, { align: TWO_PLAYS });
  await page.waitForSelector('#plays .play-block');
  const b = await blocks(page);
  assert.equal(b.length, 2);
  assert.deepEqual(b.map((x) => x.text), ['Play 1 · +2.000 s', 'Play 2 · +22.000 s']);
  assert.deepEqual(b.map((x) => [x.start, x.end, x.included, x.selected]), [['2', '16', 'true', 'true'], ['22', '36', 'true', 'false']]);
  // Beats every 0.6 s of song time from the play's start: 24 in 14 s, the first at the play's start.
  assert.deepEqual(b.map((x) => [x.beats, x.firstBeat]), [['24', '2'], ['24', '22']]);
  assert.equal(await page.getAttribute('#timeline', 'data-beat-count'), '48');
  // Each block sits where its play is: the whole 83.4 s recording fits the timeline's width.
  const width = await page.evaluate(() => document.getElementById('timeline').clientWidth);
  const pps = width / 83.4;
  assert.ok(Math.abs(b[0].left - 2 * pps) < 1 && Math.abs(b[0].width - 14 * pps) < 1, JSON.stringify(b[0]));
  assert.ok(Math.abs(b[1].left - 22 * pps) < 1, JSON.stringify(b[1]));
  assert.equal(await page.textContent('#sum-play'), '1 of 2');
  assert.equal(await page.textContent('#sum-offset'), '+2.000 s');
  assert.equal(await page.isVisible('#candidates-box'), false);
  assert.equal(await page.isVisible('#play-nav'), true);
  assert.equal(await page.isVisible('#plays-help'), true);
  await page.waitForTimeout(100);
  await screenshot(page, 'plays-two-light');
  assert.deepEqual(errors, []);
  await context.close();
});

test('three plays: the nudge acts on the selected play and sends every play with its offset', async () => {
  const { page, context, errors } = await openAnalysed(browser, server, { align: THREE_PLAYS });
  await page.waitForSelector('#plays .play-block');
  assert.equal((await blocks(page)).length, 3);
  assert.deepEqual((await blocks(page)).map((x) => x.offset), ['2', '30', '10']);
  await page.click('#plays .play-block[data-index="2"] .play-pick');
  assert.equal(await page.getAttribute('#timeline', 'data-selected-play'), '2');
  assert.equal(await page.textContent('#sum-play'), '3 of 3');
  assert.equal(await page.textContent('#sum-offset'), '+10.000 s');
  await page.keyboard.press('.');
  assert.deepEqual((await callsOf(page, 'set_plays')).at(-1), {
    id: 'job-1',
    plays: [{ index: 0, included: true, offset_s: 2 }, { index: 1, included: true, offset_s: 30 }, { index: 2, included: true, offset_s: 10.001 }],
  });
  await page.click('button[data-nudge="0.01"]');
  assert.equal((await callsOf(page, 'set_plays')).at(-1).plays[2].offset_s, 10.011);
  // Rust's answer keeps the nudge: the block shows it, the other plays are unchanged.
  await page.waitForFunction(() => window.__backend.jobs.get('job-1').options.plays?.[2]?.offset_s === 10.011);
  await page.waitForFunction(() => document.querySelector('#plays .play-block[data-index="2"]').dataset.offset === '10.011');
  assert.deepEqual((await blocks(page)).map((x) => x.text), ['Play 1 · +2.000 s', 'Play 2 · +30.000 s', 'Play 3 · +10.011 s']);
  assert.equal(await page.textContent('#sum-offset'), '+10.011 s');
  // The beats inside the third block follow its nudge: its first, song beat 40.2 s, at 50.211 s.
  assert.equal((await blocks(page))[2].firstBeat, '50.211');
  assert.deepEqual(await callsOf(page, 'set_placement'), [], 'the whole-recording placement is not touched');
  assert.deepEqual(errors, []);
  await context.close();
});

test('a play left out with its switch is sent as not included; the last play cannot be left out', async () => {
  const { page, context, errors } = await openAnalysed(browser, server, { align: TWO_PLAYS });
  await page.waitForSelector('#plays .play-block');
  await page.click('#plays .play-block[data-index="1"] .play-switch');
  assert.deepEqual((await callsOf(page, 'set_plays')).at(-1), {
    id: 'job-1', plays: [{ index: 0, included: true, offset_s: 2 }, { index: 1, included: false, offset_s: 22 }],
  });
  await page.waitForFunction(() => window.__backend.jobs.get('job-1').options.plays?.length === 1);
  const b = await blocks(page);
  assert.deepEqual(b.map((x) => [x.included, x.checked]), [['true', 'true'], ['false', 'false']]);
  assert.equal(await page.textContent('#plays .play-block[data-index="1"] .play-switch'), 'Left out');
  assert.equal(await page.getAttribute('#timeline', 'data-beat-count'), '24', 'only the exported play\'s beats count');
  // The first play is now the only one exported: its switch is off limits.
  assert.equal(await page.isDisabled('#plays .play-block[data-index="0"] .play-switch'), true);
  await page.waitForTimeout(100);
  await screenshot(page, 'plays-left-out-light');
  // Back in.
  await page.click('#plays .play-block[data-index="1"] .play-switch');
  assert.deepEqual((await callsOf(page, 'set_plays')).at(-1).plays.map((p) => p.included), [true, true]);
  await page.waitForFunction(() => window.__backend.jobs.get('job-1').options.plays?.length === 2);
  assert.deepEqual(errors, []);
  await context.close();
});

test('a nudged play left out and put back in comes back with its nudge', async () => {
  const { page, context, errors } = await openAnalysed(browser, server, { align: TWO_PLAYS });
  await page.waitForSelector('#plays .play-block');
  await page.click('#plays .play-block[data-index="1"] .play-pick');
  await page.click('button[data-nudge="0.01"]');
  await page.waitForFunction(() => window.__backend.jobs.get('job-1').options.plays?.[1]?.offset_s === 22.01);
  await page.click('#plays .play-block[data-index="1"] .play-switch');
  assert.deepEqual((await callsOf(page, 'set_plays')).at(-1).plays[1], { index: 1, included: false, offset_s: 22.01 });
  await page.waitForFunction(() => window.__backend.jobs.get('job-1').options.plays?.length === 1);
  // Left out, the block still shows the nudged offset (kept in `plays_left_out`).
  await page.waitForFunction(() => document.querySelector('#plays .play-block[data-index="1"]').dataset.included === 'false');
  assert.equal((await blocks(page))[1].offset, '22.01');
  await page.click('#plays .play-block[data-index="1"] .play-switch');
  assert.deepEqual((await callsOf(page, 'set_plays')).at(-1).plays[1], { index: 1, included: true, offset_s: 22.01 });
  await page.waitForFunction(() => window.__backend.jobs.get('job-1').options.plays?.[1]?.offset_s === 22.01);
  assert.equal((await blocks(page))[1].text, 'Play 2 · +22.010 s');
  assert.deepEqual(errors, []);
  await context.close();
});

test('keyboard: Tab reaches the blocks, arrows select the previous/next play, Page Down jumps the playhead', async () => {
  const { page, context, errors } = await openAnalysed(browser, server, { align: THREE_PLAYS });
  await page.waitForSelector('#plays .play-block');
  await page.focus('#timeline');
  await page.keyboard.press('Tab');
  assert.equal(await focusedBlock(page), '0', 'the first block comes right after the timeline');
  await page.keyboard.press('ArrowRight');
  assert.equal(await focusedBlock(page), '1');
  assert.equal(await page.getAttribute('#timeline', 'data-selected-play'), '1');
  await page.keyboard.press('End');
  assert.equal(await focusedBlock(page), '2');
  await page.keyboard.press('ArrowLeft');
  assert.equal(await page.getAttribute('#timeline', 'data-selected-play'), '1');
  assert.equal(await page.getAttribute('#plays .play-block[data-index="1"] .play-pick', 'aria-pressed'), 'true');
  // The nudge keys act on the play selected with the keyboard.
  await page.keyboard.press(',');
  assert.deepEqual((await callsOf(page, 'set_plays')).at(-1).plays.map((p) => p.offset_s), [2, 29.999, 10]);
  // The switch is the next Tab stop, and Space toggles it.
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute('role')), 'switch');
  await page.keyboard.press('Space');
  assert.deepEqual((await callsOf(page, 'set_plays')).at(-1).plays.map((p) => p.included), [true, false, true]);

  // Audition: Page Down / Page Up and the buttons move the playhead to the play's start.
  await page.click('#play');
  await page.keyboard.press('PageDown');
  assert.equal(await page.getAttribute('#timeline', 'data-selected-play'), '2');
  assert.deepEqual((await callsOf(page, 'preview_play')).at(-1), { id: 'job-1', from_s: 50, balance: 0, speed: 1 });
  await page.keyboard.press('PageUp');
  assert.equal((await callsOf(page, 'preview_play')).at(-1).from_s, 30);
  await page.click('#play-prev');
  assert.equal((await callsOf(page, 'preview_play')).at(-1).from_s, 2);
  await page.click('#play-prev');
  assert.equal((await callsOf(page, 'preview_play')).at(-1).from_s, 2, 'the first play stays the first');
  await page.click('#play-next');
  assert.equal(await page.getAttribute('#timeline', 'data-playhead'), '30');
  assert.deepEqual(errors, []);
  await context.close();
});

test('the export offers one video or a clip per play, and what is heard between; stored with set_plays_layout', async () => {
  const { page, context, errors } = await openAnalysed(browser, server, { align: TWO_PLAYS });
  await page.waitForSelector('#plays-export:not([hidden])');
  const options = (id) => page.$$eval(`#${id} option`, (os) => os.map((o) => [o.value, o.textContent]));
  assert.deepEqual((await options('plays-layout')).map(([v]) => v), [...PLAYS_LAYOUTS]);
  assert.deepEqual((await options('plays-between')).map(([v]) => v), [...BETWEEN]);
  assert.deepEqual(await options('plays-layout'), [['one_video', 'One video'], ['split', 'One clip per play']]);
  assert.deepEqual(await options('plays-between'), [['recorded', 'Recorded sound (quieter)'], ['silence', 'Silence']]);
  await page.selectOption('#plays-between', 'silence');
  assert.deepEqual((await callsOf(page, 'set_plays_layout')).at(-1), { id: 'job-1', layout: 'one_video', between: 'silence' });
  await page.selectOption('#plays-layout', 'split');
  assert.deepEqual((await callsOf(page, 'set_plays_layout')).at(-1), { id: 'job-1', layout: 'split', between: 'silence' });
  await page.waitForFunction(() => window.__backend.jobs.get('job-1').options.layout === 'split');
  // Clips have nothing between plays: the choice waits until one video is chosen again.
  await page.waitForFunction(() => document.getElementById('plays-between').disabled);
  assert.equal(await page.inputValue('#plays-layout'), 'split');

  // Export (and Export all) export the job with its own choice: nothing resets it.
  await page.click('#export-one');
  await page.waitForFunction(() => window.__backend.jobs.get('job-1').state === 'exporting');
  assert.equal((await callsOf(page, 'set_plays_layout')).length, 2);
  const kept = await page.evaluate(() => window.__backend.jobs.get('job-1').options);
  assert.deepEqual([kept.layout, kept.between], ['split', 'silence']);
  assert.equal(await page.isDisabled('#plays-layout'), true, 'fixed while exporting');
  assert.deepEqual(errors, []);
  await context.close();
});

test('the plays and the layout in Chinese, and in the dark theme', async () => {
  const { page, context, errors } = await openAnalysed(browser, server, { align: TWO_PLAYS, locale: 'zh-CN', colorScheme: 'dark' });
  await page.waitForSelector('#plays .play-block');
  assert.deepEqual((await blocks(page)).map((x) => x.text), ['第 1 遍 · +2.000 s', '第 2 遍 · +22.000 s']);
  assert.equal(await page.textContent('#plays .play-block[data-index="0"] .play-switch'), STRINGS.zh['plays.in']);
  assert.deepEqual(await page.$$eval('#plays-layout option', (os) => os.map((o) => o.textContent)), PLAYS_LAYOUTS.map((n) => STRINGS.zh[`plays_layout.${n}`]));
  assert.equal(await page.textContent('#play-next'), STRINGS.zh['plays.next']);
  // Dark: the selected block's name is on the accent colour, readable against it.
  const [fg, bg] = await page.$eval('#plays .play-block[data-index="0"] .play-pick', (b) => [getComputedStyle(b).color, getComputedStyle(b).backgroundColor]);
  assert.notEqual(fg, bg);
  await page.waitForTimeout(100);
  await screenshot(page, 'plays-two-dark-zh');
  // Switched to English: the blocks and the layout's names follow.
  await page.click('#lang');
  await page.waitForFunction(() => document.querySelector('#plays-layout option').textContent === 'One video');
  assert.deepEqual((await blocks(page)).map((x) => x.text), ['Play 1 · +2.000 s', 'Play 2 · +22.000 s']);
  assert.equal(await page.getAttribute('#plays .play-block[data-index="1"]', 'aria-label'), 'Play 2');
  assert.deepEqual(errors, []);
  await context.close();
});
