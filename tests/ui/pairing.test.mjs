// Several songs at once and unsure answers (issue 15): each class video is paired with the song
// that matches, ties and unsure-only answers are left to the teacher, and an unsure placement is
// never exported without the teacher's confirmation — neither alone nor in Export all.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveUi, launch, openUi, screenshot } from './harness.mjs';
import { STRINGS } from '../../ui/js/i18n.js';
import { decidePairing, rankMatches } from '../../ui/js/pairing.js';
import { ALIGN, BACKEND_DATA, backend, openAnalysed } from './fixtures.mjs';

let server;
let browser;
before(async () => { server = await serveUi(); browser = await launch(); });
after(async () => { await browser?.close(); server?.close(); });

const callsOf = (page, cmd) => page.evaluate((c) => window.__mock.calls.filter((x) => x.cmd === c).map((x) => x.args), cmd);
const m = (song, verdict, confidence) => ({ song, verdict, confidence, error: null });

test('pairing: the one sure song wins; ties and unsure-only answers are the teacher\'s choice', () => {
  assert.deepEqual(decidePairing([m('a', 'sure', 0.97), m('b', null, 0)]), { state: 'auto', song: 'a' });
  assert.deepEqual(decidePairing([m('a', 'unsure', 0.6), m('b', 'sure', 0.95), m('c', 'unsure', 0.8)]), { state: 'auto', song: 'b' });
  assert.deepEqual(decidePairing([m('a', 'sure', 0.97), m('b', 'sure', 0.93)]), { state: 'choose', song: null });
  assert.deepEqual(decidePairing([m('a', 'unsure', 0.5), m('b', null, 0)]), { state: 'choose', song: null });
  assert.deepEqual(decidePairing([m('a', null, 0), m('b', null, 0)]), { state: 'none', song: null });
  assert.deepEqual(rankMatches([m('a', null, 0), m('b', 'unsure', 0.4), m('c', 'unsure', 0.7), m('d', 'sure', 0.91)]).map((x) => x.song), ['d', 'c', 'b', 'a']);
});

const FILES = ['/videos/a.mp4', '/videos/b.mp4', '/videos/c.mp4', '/music/one.mp3', '/music/two.mp3'];
const MATCHES = {
  '/videos/a.mp4': { '/music/one.mp3': 'sure' },
  '/videos/b.mp4': { '/music/one.mp3': 'unsure', '/music/two.mp3': 'sure' },
  '/videos/c.mp4': { '/music/one.mp3': 'unsure', '/music/two.mp3': 'unsure' },
};

test('two songs and three videos: each video analysed against its own song, the unclear one left to choose', async () => {
  const data = { ...BACKEND_DATA, matches: MATCHES };
  const { page, context, errors } = await openUi(browser, server, { init: { fn: backend, arg: data } });
  await page.evaluate((paths) => window.beatsync.addPaths(paths), FILES);
  await page.waitForSelector('li.file[data-path="/videos/a.mp4"] .pair[data-pair="auto"]');
  await page.waitForSelector('li.file[data-path="/videos/b.mp4"] .pair[data-pair="auto"]');
  await page.waitForSelector('li.file[data-path="/videos/c.mp4"] .pair[data-pair="choose"]');
  // Both songs stay songs (none is "not used"); every video was tried against both.
  assert.deepEqual(await page.$$eval('li.file[data-role="song"]', (els) => els.map((e) => e.dataset.path)), ['/music/one.mp3', '/music/two.mp3']);
  const tried = await callsOf(page, 'match_songs');
  assert.deepEqual(tried.map((c) => c.dance).sort(), ['f:/videos/a.mp4', 'f:/videos/b.mp4', 'f:/videos/c.mp4']);
  for (const c of tried) assert.deepEqual(c.songs, ['f:/music/one.mp3', 'f:/music/two.mp3']);
  await page.waitForFunction(() => window.__mock.calls.filter((c) => c.cmd === 'analyze').length === 2);
  assert.deepEqual((await callsOf(page, 'analyze')).sort((x, y) => x.dance.localeCompare(y.dance)), [
    { dance: 'f:/videos/a.mp4', bgm: 'f:/music/one.mp3' },
    { dance: 'f:/videos/b.mp4', bgm: 'f:/music/two.mp3' },
  ]);
  // The pairing is shown in words, and the undecided video asks, listing the songs best first.
  const c = 'li.file[data-path="/videos/c.mp4"] .pair';
  assert.ok((await page.textContent(c)).includes(STRINGS.en['pair.choose']));
  assert.equal(await page.inputValue(`${c} select`), '');
  assert.ok((await page.textContent('li.file[data-path="/videos/b.mp4"] .pair')).includes(STRINGS.en['pair.auto']));
  await page.click('li.file[data-path="/videos/c.mp4"] button[data-action="select"]');
  assert.equal(await page.textContent('#view-empty-title'), STRINGS.en['view.need_pair_title']);
  await screenshot(page, 'pairing-choose');

  // Export all leaves out the video without a song, and says so.
  await page.click('#export-all');
  await page.waitForSelector('#notice:not([hidden])');
  assert.match(await page.textContent('#notice-text'), /1 video\(s\) were left out: choose their song/);
  const batch = await callsOf(page, 'export_all');
  assert.deepEqual(batch.map((b) => [b.bgm, b.dances]).sort(), [['f:/music/one.mp3', ['f:/videos/a.mp4']], ['f:/music/two.mp3', ['f:/videos/b.mp4']]]);

  // The teacher chooses: analysed against that song.
  await page.selectOption(`${c} select`, '/music/two.mp3');
  await page.waitForSelector(`${c}[data-pair="user"]`);
  await page.waitForFunction(() => window.__mock.calls.some((x) => x.cmd === 'analyze' && x.args.dance === 'f:/videos/c.mp4'));
  assert.deepEqual((await callsOf(page, 'analyze')).find((x) => x.dance === 'f:/videos/c.mp4'), { dance: 'f:/videos/c.mp4', bgm: 'f:/music/two.mp3' });
  assert.deepEqual(errors, []);
  await context.close();
});

/** One class video and its song, analysed with an unsure verdict. */
function unsure(opts = {}) {
  return openAnalysed(browser, server, {
    ...opts,
    data: { ...BACKEND_DATA, outDir: '/home/me/Exports' },
    align: { ...ALIGN, confidence: 0.55, verdict: 'unsure' },
  });
}

test('an unsure answer: waveforms, beats and audition ready, export only after the teacher confirms', async () => {
  const { page, context, errors } = await unsure();
  assert.equal(await page.isVisible('#view-unsure'), true);
  assert.equal(await page.textContent('#view-unsure strong'), STRINGS.en['unsure.title']);
  assert.equal(await page.textContent('#sum-confidence'), 'Check by ear (55 %)');
  assert.ok(Number(await page.getAttribute('#timeline', 'data-beat-count')) > 0, 'beats drawn');
  assert.equal(await page.isEnabled('#play'), true);
  assert.equal(await page.isDisabled('#export-one'), true);
  assert.equal(await page.textContent('li.job[data-id="job-1"] .job-meta'), STRINGS.en['job.unsure']);
  await screenshot(page, 'unsure-light');

  // Export all does not export it either, and says why.
  await page.click('#export-all');
  await page.waitForSelector('#notice:not([hidden])');
  assert.match(await page.textContent('#notice-text'), /not sure of their song/);
  assert.deepEqual(await callsOf(page, 'export'), []);
  assert.deepEqual(await callsOf(page, 'export_all'), []);

  await page.click('#view-confirm');
  await page.waitForSelector('#view-unsure', { state: 'hidden' });
  assert.deepEqual(await callsOf(page, 'confirm_song'), [{ id: 'job-1' }]);
  assert.equal(await page.isEnabled('#export-one'), true);
  await page.click('#export-one');
  await page.waitForFunction(() => window.__mock.calls.some((c) => c.cmd === 'export'));
  assert.deepEqual((await callsOf(page, 'export'))[0].ids, ['job-1']);
  assert.deepEqual(errors, []);
  await context.close();
});

test('the unsure warning in Chinese', async () => {
  const { page, context } = await unsure({ locale: 'zh-CN' });
  assert.equal(await page.textContent('#view-unsure strong'), STRINGS.zh['unsure.title']);
  assert.equal(await page.textContent('#view-confirm'), STRINGS.zh['unsure.confirm']);
  await screenshot(page, 'unsure-zh');
  await context.close();
});
