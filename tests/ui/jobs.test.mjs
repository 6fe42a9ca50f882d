// Exporting in headless Chromium with a plausible Rust side mocked: destination folder,
// export one / all, the job list (progress, stage, ETA, overall line, cancel, retry,
// open, reveal), the history with its success rate, and jobs restored at start-up.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveUi, launch, openUi, screenshot } from './harness.mjs';
import { STRINGS } from '../../ui/js/i18n.js';
import { ALIGN, BACKEND_DATA, CLASS_INFO, SONG_INFO, backend, job } from './fixtures.mjs';

let server;
let browser;
before(async () => { server = await serveUi(); browser = await launch(); });
after(async () => { await browser?.close(); server?.close(); });

const callsOf = (page, cmd) => page.evaluate((c) => window.__mock.calls.filter((x) => x.cmd === c).map((x) => x.args), cmd);
const emitJob = (page, id, patch) => page.evaluate(([i, p]) => window.__backend.emitJob(i, p), [id, patch]);
const row = (page, id) => page.locator(`li.job[data-id="${id}"]`);

/** Two class videos and the song, both analysed (job-1, job-2). */
async function twoAnalysed(opts = {}) {
  const ui = await openUi(browser, server, { ...opts, init: { fn: backend, arg: { ...BACKEND_DATA, ...(opts.data || {}) } } });
  const { page } = ui;
  await page.evaluate((added) => window.__mock.emit('files-added', added), [
    { id: 'f:/videos/class.mp4', path: '/videos/class.mp4', ok: true, role: 'class', info: CLASS_INFO },
    { id: 'f:/videos/class2.mp4', path: '/videos/class2.mp4', ok: true, role: 'class', info: { ...CLASS_INFO, path: '/videos/class2.mp4' } },
    { id: 'f:/music/song.mp3', path: '/music/song.mp3', ok: true, role: 'song', info: SONG_INFO },
  ]);
  await page.waitForFunction(() => window.__backend.jobs.size === 2);
  for (const id of ['job-1', 'job-2']) await emitJob(page, id, { state: 'analyzed', progress: 1, analysis: ALIGN });
  await page.waitForSelector('#view-result:not([hidden])');
  return ui;
}

test('export one: pick the folder, progress with stage and ETA, then open and reveal the file', async () => {
  const { page, context, errors } = await twoAnalysed();
  assert.equal(await page.textContent('#out-dir'), STRINGS.en['export.no_folder']);
  await page.click('#pick-folder');
  await page.waitForFunction(() => document.getElementById('out-dir').textContent === '/home/me/Exports');

  await page.click('#export-one');
  assert.deepEqual(await callsOf(page, 'export'), [{ ids: ['job-1'] }]);
  await page.waitForSelector('li.job[data-id="job-1"][data-state="exporting"]');
  await emitJob(page, 'job-1', { state: 'exporting', stage: 'export', progress: 0.5, eta_s: 65 });
  await page.waitForFunction(() => document.querySelector('li.job[data-id="job-1"] progress').value === 50);
  const meta = await row(page, 'job-1').locator('.job-meta').textContent();
  assert.match(meta, /50 %/);
  assert.match(meta, /writing the video/);
  assert.match(meta, /about 1 min left/);
  assert.equal(await page.textContent('#jobs-overall'), '0 of 1 — 50 %');
  assert.equal(await page.isDisabled('#export-one'), true);
  await screenshot(page, 'exporting-light');

  await emitJob(page, 'job-1', { state: 'done', stage: null, progress: 1, eta_s: null, output_path: '/home/me/Exports/class.beatsync.mp4' });
  await page.waitForSelector('#view-done:not([hidden])');
  assert.equal(await page.textContent('#jobs-overall'), '1 of 1 — 100 %');
  assert.match(await page.textContent('#view-done-path'), /\/home\/me\/Exports\/class\.beatsync\.mp4/);
  // The finished job moved to the history, with its open/reveal buttons.
  assert.equal(await page.locator('#history li.job[data-id="job-1"]').count(), 1);
  await row(page, 'job-1').locator('button[data-action="open"]').click();
  await row(page, 'job-1').locator('button[data-action="reveal"]').click();
  await page.click('#view-reveal');
  assert.deepEqual(await callsOf(page, 'open_path'), [{ id: 'job-1' }]);
  assert.deepEqual(await callsOf(page, 'reveal_path'), [{ id: 'job-1' }, { id: 'job-1' }]);
  assert.match(await page.textContent('#history-stats'), /1 done, 0 failed, 0 cancelled — 100 % succeeded/);
  await screenshot(page, 'done-light');
  assert.deepEqual(errors, []);
  await context.close();
});

test('export all: a batch of every class video, overall "x of y — z %", cancel and retry', async () => {
  const { page, context } = await twoAnalysed({ data: { outDir: '/home/me/Videos/BeatSync' } });
  assert.equal(await page.textContent('#out-dir'), '…/me/Videos/BeatSync');
  assert.equal(await page.getAttribute('#out-dir', 'title'), '/home/me/Videos/BeatSync');
  assert.equal(await page.textContent('#export-all'), 'Export all (2)');
  await page.click('#export-all');
  const [call] = await callsOf(page, 'export');
  assert.deepEqual([...call.ids].sort(), ['job-1', 'job-2']);
  assert.equal(call.out_dir, undefined, 'the folder is kept by Rust, never sent');
  assert.equal((await callsOf(page, 'pick_folder')).length, 0);

  await emitJob(page, 'job-1', { state: 'done', progress: 1, output_path: '/home/me/Videos/BeatSync/class.mp4' });
  await emitJob(page, 'job-2', { state: 'exporting', stage: 'verify', progress: 0.5, eta_s: 4 });
  await page.waitForFunction(() => document.getElementById('jobs-overall').textContent === '1 of 2 — 75 %');
  assert.equal(await page.textContent('#export-progress-text'), '1 of 2 — 75 %');
  assert.equal(await page.getAttribute('#export-progress-bar', 'value'), '75');
  assert.match(await row(page, 'job-2').locator('.job-meta').textContent(), /a few seconds left/);

  await row(page, 'job-2').locator('button[data-action="cancel"]').click();
  assert.deepEqual(await callsOf(page, 'cancel_job'), [{ id: 'job-2' }]);
  await page.waitForSelector('li.job[data-id="job-2"][data-state="cancelled"]');
  assert.equal(await page.textContent('#jobs-overall'), '2 of 2 — 100 %');
  assert.equal(await page.isVisible('#export-progress'), false); // the run is over
  await row(page, 'job-2').locator('button[data-action="retry"]').click();
  assert.deepEqual(await callsOf(page, 'retry_job'), [{ id: 'job-2' }]);
  await page.waitForSelector('li.job[data-id="job-2"][data-state="queued"]');
  await context.close();
});

test('export all analyses and exports class videos that are not analysed yet (export_all)', async () => {
  const { page, context } = await openUi(browser, server, { init: { fn: backend, arg: { ...BACKEND_DATA, outDir: '/out' } } });
  await page.evaluate(() => window.__mock.on('analyze', () => new Promise(() => {}))); // analysis still being requested
  await page.evaluate((added) => window.__mock.emit('files-added', added), [
    { id: 'f:/videos/a.mp4', path: '/videos/a.mp4', ok: true, role: 'class', info: CLASS_INFO },
    { id: 'f:/music/song.mp3', path: '/music/song.mp3', ok: true, role: 'song', info: SONG_INFO },
  ]);
  await page.click('#export-all');
  assert.deepEqual(await callsOf(page, 'export_all'), [{ dances: ['f:/videos/a.mp4'], bgm: 'f:/music/song.mp3' }]);
  await page.waitForSelector('#jobs li.job');
  assert.equal(await page.textContent('#jobs-overall'), '0 of 1 — 0 %');
  // An analyse-and-export job counts its analysis as the first half.
  const id = await page.getAttribute('#jobs li.job', 'data-id');
  await emitJob(page, id, { state: 'analyzing', progress: 0.5 });
  await page.waitForFunction(() => document.getElementById('jobs-overall').textContent === '0 of 1 — 25 %');
  await context.close();
});

test('a failed export shows the engine message and what to do; history rate and clear', async () => {
  const { page, context } = await twoAnalysed({ data: { outDir: '/out' } });
  await page.click('#export-all');
  await emitJob(page, 'job-1', { state: 'done', progress: 1, output_path: '/out/class.mp4' });
  await emitJob(page, 'job-2', { state: 'failed', error: { code: 'disk_full', message: 'not enough disk space in /out: 12 MB free; free some space or choose another folder' } });
  const failed = row(page, 'job-2');
  await page.waitForSelector('li.job[data-id="job-2"][data-state="failed"]');
  assert.equal(await failed.locator('.job-error').getAttribute('data-code'), 'disk_full');
  assert.equal(await failed.locator('.headline').textContent(), STRINGS.en['err.disk_full']);
  assert.match(await failed.locator('.message').textContent(), /12 MB free/);
  assert.equal(await failed.locator('.fix').textContent(), STRINGS.en['fix.disk_full']);
  assert.equal(await failed.locator('.job-error').getAttribute('role'), 'alert');
  assert.equal(await page.textContent('#history-stats'), '1 done, 1 failed, 0 cancelled — 50 % succeeded');
  await page.click('li.job[data-id="job-2"] .job-name');
  await screenshot(page, 'error-export-light');

  await page.click('#clear-history');
  assert.equal((await callsOf(page, 'clear_history')).length, 1);
  await page.waitForFunction(() => document.querySelectorAll('#history li').length === 0);
  assert.equal(await page.textContent('#history-stats'), STRINGS.en['history.empty']);
  assert.equal(await page.isDisabled('#clear-history'), true);
  await context.close();
});

test('jobs from the last session are listed at start-up and keep updating', async () => {
  const listed = [
    job('old-1', { state: 'exporting', stage: 'export', progress: 0.3, eta_s: 600, analysis: ALIGN, created_at: 3 }),
    job('old-2', { state: 'done', progress: 1, output_path: '/out/old.mp4', created_at: 2, dance_path: '/videos/old.mp4' }),
    job('old-3', { state: 'cancelled', created_at: 1, dance_path: '/videos/older.mp4' }),
  ];
  const { page, context } = await openUi(browser, server, { colorScheme: 'dark', init: { fn: backend, arg: { ...BACKEND_DATA, listed } } });
  assert.equal((await callsOf(page, 'list_jobs')).length, 1);
  assert.equal(await page.getAttribute('li.job[data-id="old-1"] progress', 'value'), '30');
  assert.match(await row(page, 'old-1').locator('.job-meta').textContent(), /about 10 min left/);
  assert.equal(await page.textContent('#jobs-overall'), '0 of 1 — 30 %');
  assert.equal(await page.textContent('#history-stats'), '1 done, 0 failed, 1 cancelled — 100 % succeeded');
  await emitJob(page, 'old-1', { progress: 0.8, eta_s: 3700 });
  await page.waitForFunction(() => document.querySelector('li.job[data-id="old-1"] progress').value === 80);
  assert.match(await row(page, 'old-1').locator('.job-meta').textContent(), /about 1 h 2 min left/);
  // Clicking a restored job shows its analysis.
  await page.click('li.job[data-id="old-1"] .job-name');
  await page.waitForSelector('#view-result:not([hidden])');
  assert.equal(await page.textContent('#sum-offset'), '+12.345 s');
  await page.waitForTimeout(100);
  await screenshot(page, 'exporting-dark');
  await context.close();
});

test('a damaged job store is reported at start-up', async () => {
  const { page, context } = await openUi(browser, server, { init: { fn: backend, arg: BACKEND_DATA } });
  await page.evaluate(() => window.__mock.emit('store-recovered', { moved_to: '/data/jobs.db.damaged-1' }));
  assert.match(await page.textContent('#notice'), /\/data\/jobs\.db\.damaged-1/);
  await page.click('#notice-close');
  assert.equal(await page.isVisible('#notice'), false);
  await context.close();
});

test('Chinese: job list words', async () => {
  const { page, context } = await twoAnalysed({ locale: 'zh-CN', data: { outDir: '/out' } });
  await page.click('#export-one');
  await emitJob(page, 'job-1', { state: 'exporting', stage: 'export', progress: 0.5, eta_s: 125 });
  await page.waitForFunction(() => document.getElementById('jobs-overall').textContent === '0 / 1 — 50 %');
  assert.match(await row(page, 'job-1').locator('.job-meta').textContent(), /大约还剩 2 分钟/);
  assert.equal(await row(page, 'job-1').locator('button[data-action="cancel"]').textContent(), '取消');
  await screenshot(page, 'exporting-light-zh');
  await context.close();
});

test('dark theme: a finished export and a failed one', async () => {
  const { page, context } = await twoAnalysed({ colorScheme: 'dark', data: { outDir: '/home/me/Videos/BeatSync' } });
  await page.click('#export-all');
  await emitJob(page, 'job-1', { state: 'done', progress: 1, output_path: '/home/me/Videos/BeatSync/class.beatsync.mp4' });
  await emitJob(page, 'job-2', { state: 'failed', error: { code: 'output_write', message: 'writing /home/me/Videos/BeatSync/class2.beatsync.mp4 failed: Input/output error' } });
  await page.waitForSelector('#view-done:not([hidden])');
  await page.waitForTimeout(100);
  await screenshot(page, 'done-dark');
  await page.click('li.job[data-id="job-2"] .job-name');
  await page.waitForSelector('#view-error:not([hidden])');
  assert.equal(await page.textContent('#view-error-headline'), STRINGS.en['err.output_write']);
  assert.equal(await page.isVisible('#view-result'), true); // the analysis stays usable
  // The file list marks the same class video as the one shown.
  assert.equal(await page.getAttribute('li.file[data-path="/videos/class2.mp4"] button[data-action="select"]', 'aria-pressed'), 'true');
  assert.equal(await page.getAttribute('li.file[data-path="/videos/class.mp4"] button[data-action="select"]', 'aria-pressed'), 'false');
  await page.waitForTimeout(100);
  await screenshot(page, 'error-dark');
  await context.close();
});

test('files handed over at start-up reuse the last session\'s job for the same pair', async () => {
  const listed = [job('old-1', { state: 'analyzed', progress: 1, analysis: ALIGN })];
  const { page, context } = await openUi(browser, server, { init: { fn: backend, arg: { ...BACKEND_DATA, listed } } });
  await page.evaluate((added) => window.__mock.emit('files-added', added), [
    { id: 'f:/videos/class.mp4', path: '/videos/class.mp4', ok: true, role: 'class', info: CLASS_INFO },
    { id: 'f:/music/song.mp3', path: '/music/song.mp3', ok: true, role: 'song', info: SONG_INFO },
  ]);
  await page.waitForSelector('#view-result:not([hidden])');
  assert.equal((await callsOf(page, 'analyze')).length, 0);
  assert.equal(await page.getAttribute('li.job[data-id="old-1"]', 'aria-current'), 'true');
  await context.close();
});

test('export progress does not redraw the analysed timeline (the window stays responsive)', async () => {
  const { page, context } = await twoAnalysed();
  await page.click('#pick-folder');
  await page.click('#export-one');
  const id = (await callsOf(page, 'export'))[0].ids[0];
  await page.waitForSelector('#timeline[data-draws]');
  const before = await page.getAttribute('#timeline', 'data-draws');
  for (let i = 1; i <= 20; i++) await emitJob(page, id, { state: 'exporting', stage: 'export', progress: i / 25, eta_s: 20 - i });
  await page.waitForFunction((i) => document.querySelector(`li.job[data-id="${i}"] progress`)?.value >= 79, id);
  assert.equal(await page.getAttribute('#timeline', 'data-draws'), before, 'no redraw for progress alone');
  // A real change (the user's nudge arriving as a new placement) still redraws.
  await emitJob(page, id, { options: { offset_s: ALIGN.offset_s + 0.01, rate: 1 } });
  await page.waitForFunction((b) => document.getElementById('timeline').dataset.draws !== b, before);
  await context.close();
});

test('a command\'s answer older than an event already shown does not overwrite it', async () => {
  const { page, context } = await twoAnalysed({ data: { outDir: '/out' } });
  await emitJob(page, 'job-2', { state: 'failed', error: { code: 'no_match', message: 'not found' } });
  await page.waitForSelector('li.job[data-id="job-2"][data-state="failed"]');
  // Rust answers Retry with the job queued; the runner takes it up at once, and its event
  // (a later revision) reaches the page before the answer does.
  await page.evaluate(() => window.__mock.on('retry_job', ({ id }) => {
    const answer = window.__backend.patch(id, { state: 'queued', error: null, progress: 0 });
    window.__backend.emitJob(id, { state: 'analyzing', stage: 'search', progress: 0.4 });
    return answer;
  }));
  await row(page, 'job-2').locator('button[data-action="retry"]').click();
  await page.waitForFunction(() => window.__mock.calls.some((c) => c.cmd === 'retry_job'));
  await page.waitForTimeout(100); // the answer has come back by now
  assert.equal(await page.getAttribute('li.job[data-id="job-2"]', 'data-state'), 'analyzing');
  assert.match(await row(page, 'job-2').locator('.job-meta').textContent(), /40 % · finding the song/);
  // A later event still updates it.
  await emitJob(page, 'job-2', { state: 'analyzed', progress: 1, analysis: ALIGN });
  await page.waitForSelector('li.job[data-id="job-2"][data-state="analyzed"]');
  await context.close();
});

test('the export stages plan and finish are named, in both languages', async () => {
  const { page, context } = await twoAnalysed({ data: { outDir: '/out' } });
  await page.click('#export-one');
  for (const [stage, words] of [['plan', 'planning the cut'], ['finish', 'saving to disk']]) {
    await emitJob(page, 'job-1', { state: 'exporting', stage, progress: 0.5 });
    await page.waitForFunction(([w]) => document.querySelector('li.job[data-id="job-1"] .job-meta').textContent.includes(w), [words]);
  }
  await page.click('#lang');
  await page.waitForFunction(() => document.querySelector('li.job[data-id="job-1"] .job-meta').textContent.includes('写入磁盘'));
  await context.close();
});

test('a done export that starts with an edit list says so, in the row and the done box; a smart cut says nothing', async () => {
  const { page, context, errors } = await twoAnalysed({ data: { outDir: '/home/me/Videos/BeatSync' } });
  await page.click('#export-all');
  const report = (start_cut, hidden_frames) => ({ video: 'copied', start_cut, trim: { hidden_frames } });
  await emitJob(page, 'job-1', { state: 'done', progress: 1, output_path: '/out/class.mp4', report: report('edit_list', 23) });
  await emitJob(page, 'job-2', { state: 'done', progress: 1, output_path: '/out/class2.mp4', report: report('smart_cut', 0) });
  await page.waitForSelector('#view-done:not([hidden])');
  const note = row(page, 'job-1').locator('.start-note');
  assert.equal(await note.isVisible(), true);
  assert.equal(await note.textContent(), STRINGS.en['startCut.edit_list'].replace('{n}', '23'));
  assert.equal(await row(page, 'job-2').locator('.start-note').isVisible(), false);
  await page.click('li.job[data-id="job-1"] .job-name');
  await page.waitForSelector('#view-done-note:not([hidden])');
  assert.match(await page.textContent('#view-done-note'), /23 frames before the cut/);
  await screenshot(page, 'done-start-note');
  await page.click('li.job[data-id="job-2"] .job-name');
  await page.waitForSelector('#view-done-note', { state: 'hidden' });
  assert.deepEqual(errors, []);
  await context.close();
});
