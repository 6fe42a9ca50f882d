// Strings complete in both languages, and the whole window usable by keyboard:
// tab order reaches every control in reading order, focus is visible, labels exist.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { serveUi, launch, openUi, UI_DIR } from './harness.mjs';
import { STRINGS } from '../../ui/js/i18n.js';
import { BETWEEN, ERROR_CODES, JOB_STATES, PLAYS_LAYOUTS, STAGES, START_CUTS } from '../../ui/js/contract.js';
import { PAIR_STATES } from '../../ui/js/pairing.js';
import { ALIGN, BACKEND_DATA, CLASS_INFO, SONG_INFO, backend } from './fixtures.mjs';

let server;
let browser;
before(async () => { server = await serveUi(); browser = await launch(); });
after(async () => { await browser?.close(); server?.close(); });

const placeholders = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

test('every string the UI uses exists in English and Chinese, non-empty, with the same placeholders', () => {
  const used = new Set();
  const html = fs.readFileSync(path.join(UI_DIR, 'index.html'), 'utf8');
  for (const m of html.matchAll(/data-i18n(?:-[a-z]+)?="([^"]+)"/g)) used.add(m[1]);
  for (const file of fs.readdirSync(path.join(UI_DIR, 'js'))) {
    const src = fs.readFileSync(path.join(UI_DIR, 'js', file), 'utf8');
    for (const m of src.matchAll(/\bt\('([a-z_.0-9]+)'/g)) used.add(m[1]);
    for (const m of src.matchAll(/actionButton\('[a-z-]+', '([a-z_.]+)'/g)) used.add(m[1]);
  }
  // Keys built at run time: every value they can take.
  for (const s of JOB_STATES) used.add(`state.${s}`);
  for (const s of STAGES) used.add(`stage.${s}`);
  for (const r of ['song_start', 'recording_start', 'user']) used.add(`trim.why_start.${r}`);
  for (const r of ['song_end', 'recording_end', 'black_picture', 'user']) used.add(`trim.why_end.${r}`);
  for (const w of ['sure', 'check']) used.add(`confidence.${w}`);
  for (const n of PLAYS_LAYOUTS) used.add(`plays_layout.${n}`);
  for (const n of BETWEEN) used.add(`between.${n}`);
  for (const k of ['best', 'one.earlier', 'one.later', 'two.earlier', 'two.later', 'delta']) used.add(`cand.${k}`);
  for (const r of ['class', 'song']) used.add(`role.${r}`);
  for (const s of PAIR_STATES) used.add(`pair.${s}`);
  for (const w of ['sure', 'unsure', 'no_match']) used.add(`match.${w}`);
  for (const v of ['empty', 'need_song', 'need_class', 'pairing', 'need_pair']) for (const part of ['title', 'hint']) used.add(`view.${v}_${part}`);
  assert.ok(used.size > 100, `found ${used.size} keys`);

  for (const key of used) {
    for (const lang of ['en', 'zh']) {
      const s = STRINGS[lang][key];
      assert.ok(typeof s === 'string' && s.trim(), `${lang} lacks "${key}"`);
    }
  }
  assert.deepEqual(Object.keys(STRINGS.zh).sort(), Object.keys(STRINGS.en).sort());
  for (const key of Object.keys(STRINGS.en)) {
    assert.deepEqual(placeholders(STRINGS.zh[key]), placeholders(STRINGS.en[key]), `placeholders of ${key}`);
  }
});

// ui/js/contract.js is written from the Rust types (JobState, Stage, ErrorCode, the events);
// tests/ipc.rs fails while it differs from them.
test('every job state, stage, error code, start cut and plays layout Rust can send has words in both languages, and no others do', () => {
  // `generic` is the UI's own fallback for a code it does not know; it is no code.
  const names = { state: JOB_STATES, stage: STAGES, err: [...ERROR_CODES, 'generic'], fix: [...ERROR_CODES, 'generic'], startCut: START_CUTS, plays_layout: PLAYS_LAYOUTS, between: BETWEEN };
  assert.ok(STAGES.includes('plan') && STAGES.includes('finish') && ERROR_CODES.includes('store_io'));
  assert.deepEqual([...START_CUTS].sort(), ['edit_list', 'keyframe', 'smart_cut']);
  assert.deepEqual([...PLAYS_LAYOUTS], ['one_video', 'split']);
  assert.deepEqual([...BETWEEN], ['recorded', 'silence']);
  for (const [prefix, list] of Object.entries(names)) {
    for (const lang of ['en', 'zh']) {
      for (const n of list) {
        const s = STRINGS[lang][`${prefix}.${n}`];
        assert.ok(typeof s === 'string' && s.trim(), `${lang} lacks "${prefix}.${n}"`);
      }
      const keys = Object.keys(STRINGS[lang]).filter((k) => k.startsWith(`${prefix}.`)).map((k) => k.slice(prefix.length + 1));
      const extra = keys.filter((k) => !list.includes(k));
      assert.deepEqual(extra, [], `${lang} has text for ${prefix} names no type has`);
    }
  }
});

/** Presses Tab until focus comes back round, returning what got focus, in order. */
async function tabCycle(page) {
  const seen = [];
  // A click on the title bar puts the starting point of Tab at the top of the page.
  await page.click('.brand');
  for (let i = 0; i < 120; i++) {
    await page.keyboard.press('Tab');
    const key = await page.evaluate(() => {
      const el = document.activeElement;
      if (!el || el === document.body) return null;
      el.dataset.tabSeen = '1';
      return el.id || `${el.closest('li')?.dataset.id || el.closest('li')?.dataset.path || ''}:${el.dataset.action || el.dataset.nudge || el.textContent}`;
    });
    if (key === null || seen.includes(key)) break;
    seen.push(key);
  }
  return seen;
}

test('Tab reaches every control of the analysed window, in reading order, with visible focus', async () => {
  const { page, context } = await openUi(browser, server, { init: { fn: backend, arg: { ...BACKEND_DATA, outDir: '/out' } } });
  await page.evaluate((added) => window.__mock.emit('files-added', added), [
    { id: 'f:/videos/class.mp4', path: '/videos/class.mp4', ok: true, role: 'class', info: CLASS_INFO },
    { id: 'f:/music/song.mp3', path: '/music/song.mp3', ok: true, role: 'song', info: SONG_INFO },
  ]);
  await page.waitForFunction(() => window.__backend.jobs.size === 1);
  await page.evaluate((a) => window.__backend.emitJob('job-1', { state: 'analyzed', analysis: a }), ALIGN);
  await page.waitForSelector('#view-result:not([hidden])');
  await page.click('#zoom-in'); // so the scroll bar is in use, and the trim end is off screen

  const order = await tabCycle(page);
  // Every visible, enabled control was reached.
  const missed = await page.$$eval('button, input, [tabindex="0"]', (els) => els
    .filter((e) => e.offsetParent !== null && !e.disabled && getComputedStyle(e).visibility !== 'hidden' && !e.dataset.tabSeen)
    .map((e) => e.id || e.outerHTML.slice(0, 80)));
  assert.deepEqual(missed, []);
  // Reading order: header, adding files, files, jobs, the view, export.
  const at = (k) => { const i = order.findIndex((o) => o === k || o.endsWith(k)); assert.ok(i >= 0, `${k} reached`); return i; };
  const sequence = ['lang', 'pick-files', 'path-input', ':use-song', 'job-1:class.mp4', 'timeline', 'trim-start', 'trim-end', 'scroll', 'play', 'balance', 'zoom-in', ':-frame', ':frame', 'pick-folder', 'export-one', 'export-all'];
  const idx = sequence.map(at);
  assert.deepEqual([...idx].sort((a, b) => a - b), idx, `order: ${order.join(' | ')}`);

  // Focus is visible on a keyboard-focused button.
  await page.focus('#play');
  const outline = await page.$eval('#play', (e) => getComputedStyle(e).outlineStyle);
  assert.notEqual(outline, 'none');

  // Keyboard only: choose an alternative with Enter.
  await page.focus('#candidates button:nth-child(3)');
  await page.keyboard.press('Enter');
  const last = await page.evaluate(() => window.__mock.calls.filter((c) => c.cmd === 'set_placement').at(-1).args);
  assert.equal(last.offset_s, ALIGN.candidates[2].offset_s);
  await context.close();
});

test('progress and errors are announced: labelled progress bars and live regions', async () => {
  const { page, context } = await openUi(browser, server, { init: { fn: backend, arg: { ...BACKEND_DATA, outDir: '/out' } } });
  await page.evaluate((added) => window.__mock.emit('files-added', added), [
    { id: 'f:/videos/class.mp4', path: '/videos/class.mp4', ok: true, role: 'class', info: CLASS_INFO },
    { id: 'f:/music/song.mp3', path: '/music/song.mp3', ok: true, role: 'song', info: SONG_INFO },
  ]);
  await page.waitForFunction(() => window.__backend.jobs.size === 1);
  await page.evaluate(() => window.__backend.emitJob('job-1', { state: 'analyzing', progress: 0.2 }));
  await page.waitForSelector('li.job progress:not([hidden])');
  const unlabeled = await page.$$eval('progress', (els) => els.filter((e) => e.offsetParent !== null && !e.getAttribute('aria-label')).length);
  assert.equal(unlabeled, 0);
  assert.equal(await page.getAttribute('#view-progress', 'role'), 'status');
  assert.equal(await page.getAttribute('#jobs-overall', 'role'), 'status');
  assert.equal(await page.getAttribute('#notice', 'role'), 'alert');
  assert.equal(await page.getAttribute('#view-error', 'role'), 'alert');
  // Buttons whose text is a symbol carry a spoken name.
  for (const sel of ['#zoom-in', '#zoom-out', 'li.file button[data-action="remove"]']) {
    assert.ok((await page.getAttribute(sel, 'aria-label')).length > 3, `${sel} has a label`);
  }
  // A command that fails tells the user (here: the engine refusing a nudge).
  await page.evaluate((a) => window.__backend.emitJob('job-1', { state: 'analyzed', analysis: a }), ALIGN);
  await page.evaluate(() => window.__mock.on('set_placement', () => { throw { code: 'invalid_request', message: 'invalid request: rate 3 is outside 0.5..2 (1 = same speed)' }; }));
  await page.focus('#timeline');
  await page.keyboard.press('.');
  await page.waitForSelector('#notice:not([hidden])');
  assert.match(await page.textContent('#notice'), /outside 0\.5\.\.2/);
  assert.match(await page.textContent('#notice'), new RegExp(STRINGS.en['fix.invalid_request'].slice(0, 20).replace(/[()]/g, '.')));
  await context.close();
});
