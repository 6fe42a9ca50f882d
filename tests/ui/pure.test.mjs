// The UI's pure logic in node, imported straight from ui/js: time mapping, zoom math,
// nudges, alternative names, job progress, ETA words, trim and song choice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { placementOf, songToRec, recToSong, timeToX, xToTime, beatPositions, formatSeconds, formatClock, tickStep, trimOf, moveTrim, roundUs } from '../../ui/js/timeline.js';
import { fitView, clampView, zoomView, scrollView, revealTime, columnPeak, drawTimeline, MAX_PX_PER_S } from '../../ui/js/waveform.js';
import { nudgeForKey, nudged, candidateLabel, confidenceWord, frameSeconds, barSeconds } from '../../ui/js/nudge.js';
import { overallProgress, jobFraction, formatEta, historyStats } from '../../ui/js/jobs.js';
import { JobStore, isBusy, isExportable, isNewer, stageText } from '../../ui/js/jobstate.js';
import { songScore, frameRateOf, explainError, shortPath } from '../../ui/js/media.js';
import { setLanguage } from '../../ui/js/i18n.js';
import { ALIGN, CLASS_INFO, SONG_INFO, job } from './fixtures.mjs';

const close = (a, b, eps = 1e-9) => assert.ok(Math.abs(a - b) < eps, `${a} ≈ ${b}`);

test('rate 1: song time t is at recording time t + offset, and back', () => {
  const p = { offset_s: 12.345, rate: 1, ref_s: 47.8 };
  close(songToRec(0, p), 12.345);
  close(songToRec(10, p), 22.345);
  close(recToSong(12.345, p), 0);
  close(recToSong(songToRec(37.25, p), p), 37.25);
});

test('rate ≠ 1: the offset holds at the reference and song durations stretch by the rate', () => {
  const p = { offset_s: 5, rate: 1.002, ref_s: 60 };
  // At the reference (recording time 60) the song time is 60 - 5 = 55.
  close(songToRec(55, p), 60);
  close(recToSong(60, p), 55);
  // Ten seconds of song last 10.02 s of recording, on both sides of the reference.
  close(songToRec(65, p) - songToRec(55, p), 10.02);
  close(songToRec(45, p), 60 - 10.02);
  // Away from the reference the plain "t + offset" no longer holds.
  assert.ok(Math.abs(songToRec(0, p) - 5) > 0.1);
  for (const t of [0, 17.3, 55, 120]) close(recToSong(songToRec(t, p), p), t);
});

test('the placement in force: the user nudge overrides the analysis; reference = overlap middle', () => {
  const j = job('a', { analysis: ALIGN });
  assert.deepEqual(placementOf(j), { offset_s: 12.345, rate: 1, ref_s: (12.345 + 83.4) / 2 });
  const nudgedJob = job('a', { analysis: ALIGN, options: { ...j.options, offset_s: 12.5, rate: 0.999 } });
  assert.equal(placementOf(nudgedJob).offset_s, 12.5);
  assert.equal(placementOf(nudgedJob).rate, 0.999);
});

test('pixels ↔ time in a view, and which beats are drawn', () => {
  const view = { start_s: 10, px_per_s: 50 };
  assert.equal(timeToX(12, view), 100);
  assert.equal(xToTime(100, view), 12);
  const p = { offset_s: 12.345, rate: 1, ref_s: 0 };
  // Beats at song 0, 0.6, 1.2 … → recording 12.345 …; the view 10..22 s at 50 px/s is 600 px.
  const xs = beatPositions(ALIGN.beats_s, p, view, 600);
  close(xs[0], (12.345 - 10) * 50, 1e-6);
  close(xs[1] - xs[0], 30, 1e-6);
  assert.equal(xs.length, 17); // 12.345 … 21.945
});

test('zoom keeps the time under the anchor, clamps to the recording, and fit shows it all', () => {
  const fit = fitView(100, 1000);
  assert.deepEqual(fit, { start_s: 0, px_per_s: 10 });
  const z = zoomView(fit, 2, 500, 100, 1000);
  assert.equal(z.px_per_s, 20);
  close(xToTime(500, z), xToTime(500, fit)); // 50 s stays under the mouse
  assert.equal(z.start_s, 25);
  // Zooming out past "whole recording" stops there; the start snaps back to 0.
  assert.deepEqual(zoomView(z, 0.1, 0, 100, 1000), { start_s: 0, px_per_s: 10 });
  // Zooming in stops at MAX_PX_PER_S.
  assert.equal(zoomView(fit, 1e6, 0, 100, 1000).px_per_s, MAX_PX_PER_S);
  // Near the end the view cannot scroll past the recording.
  const atEnd = zoomView(fit, 4, 1000, 100, 1000);
  assert.equal(atEnd.start_s, 75);
  assert.deepEqual(clampView({ start_s: -5, px_per_s: 40 }, 100, 1000), { start_s: 0, px_per_s: 40 });
});

test('scrolling and following the playhead', () => {
  const v = { start_s: 10, px_per_s: 20 }; // shows 10..60 of 100 s in 1000 px
  assert.equal(scrollView(v, 200, 100, 1000).start_s, 20);
  assert.equal(scrollView(v, 5000, 100, 1000).start_s, 50);
  assert.equal(scrollView(v, -5000, 100, 1000).start_s, 0);
  assert.equal(revealTime(v, 30, 100, 1000), v); // already visible
  assert.equal(revealTime(v, 70, 200, 1000).start_s, 65); // 10 % margin before it
  assert.equal(revealTime(v, 99, 100, 1000).start_s, 50); // but never past the end
});

test('column peaks take min and max of the covered peaks, null outside the waveform', () => {
  const wave = { peaks_per_s: 10, peaks: [-0.1, 0.2, -0.5, 0.4, -0.3, 0.9] };
  assert.deepEqual(columnPeak(wave, 0, 0.1), [-0.1, 0.2]);
  assert.deepEqual(columnPeak(wave, 0.05, 0.25), [-0.5, 0.9]);
  assert.deepEqual(columnPeak(wave, 0.1, 0.1), [-0.5, 0.4]); // narrower than a peak: the one it is in
  assert.equal(columnPeak(wave, 0.5, 0.6), null);
  assert.equal(columnPeak(wave, -0.5, -0.2), null);
});

test('nudge keys: , . = 1 ms, with Shift 10 ms, [ ] = one frame; others ignored', () => {
  assert.equal(nudgeForKey({ code: 'Period', shiftKey: false }, 25), 0.001);
  assert.equal(nudgeForKey({ code: 'Comma', shiftKey: false }, 25), -0.001);
  assert.equal(nudgeForKey({ code: 'Period', shiftKey: true }, 25), 0.01);
  assert.equal(nudgeForKey({ code: 'Comma', shiftKey: true }, 25), -0.01);
  assert.equal(nudgeForKey({ code: 'BracketRight', shiftKey: false }, 25), 0.04);
  assert.equal(nudgeForKey({ code: 'BracketLeft', shiftKey: false }, 29.97), -1 / 29.97);
  assert.equal(nudgeForKey({ code: 'KeyA', shiftKey: false }, 25), null);
  assert.equal(frameSeconds(null), 1 / 30);
  // A thousand 1 ms nudges are exactly one second: no float drift.
  let o = 12.345;
  for (let i = 0; i < 1000; i++) o = nudged(o, 0.001);
  assert.equal(o, 13.345);
  assert.equal(roundUs(0.1 + 0.2), 0.3);
});

test('alternatives are named by bars at the song tempo, otherwise by the difference', () => {
  assert.equal(barSeconds(100), 2.4);
  assert.equal(barSeconds(null), null);
  assert.deepEqual(candidateLabel(12.345, 12.345, 100), { key: 'cand.best', vars: {} });
  assert.equal(candidateLabel(9.945, 12.345, 100).key, 'cand.one.earlier');
  assert.equal(candidateLabel(14.745, 12.345, 100).key, 'cand.one.later');
  assert.equal(candidateLabel(14.9, 12.345, 100).key, 'cand.one.later'); // within 10 % of a bar
  assert.equal(candidateLabel(17.145, 12.345, 100).key, 'cand.two.later');
  assert.deepEqual(candidateLabel(13.076, 12.345, 100), { key: 'cand.delta', vars: { d: '+0.731' } });
  assert.deepEqual(candidateLabel(11.111, 12.345, 100), { key: 'cand.delta', vars: { d: '−1.234' } });
  // At 120 BPM a bar is 2 s: 2.4 s is not "one bar".
  assert.equal(candidateLabel(14.745, 12.345, 120).key, 'cand.delta');
  // Without a tempo there are no bars.
  assert.equal(candidateLabel(14.745, 12.345, null).key, 'cand.delta');
});

test('confidence words: sure from 0.9, otherwise check by ear', () => {
  assert.equal(confidenceWord(0.9), 'sure');
  assert.equal(confidenceWord(0.99), 'sure');
  assert.equal(confidenceWord(0.899), 'check');
});

test('job fractions and the overall "x of y — z %"', () => {
  const exp = (state, progress, auto = false) => job('x', { state, progress, options: { ...job('x').options, auto_export: auto } });
  assert.equal(jobFraction(exp('exporting', 0.5)), 0.5);
  assert.equal(jobFraction(exp('exporting', 0.5, true)), 0.75);
  assert.equal(jobFraction(exp('analyzing', 0.5, true)), 0.25);
  assert.equal(jobFraction(exp('failed', 0)), 1);
  assert.deepEqual(overallProgress([]), { finished: 0, total: 0, percent: 0 });
  const batch = [exp('done', 1), exp('done', 1), exp('failed', 0.2), exp('exporting', 0.36), exp('queued', 0), exp('queued', 0), exp('queued', 0), exp('queued', 0)];
  assert.deepEqual(overallProgress(batch), { finished: 3, total: 8, percent: 42 });
  assert.equal(isBusy(exp('exporting', 0)), true);
  assert.equal(isBusy(exp('analyzed', 1)), false);
  assert.equal(isBusy(exp('done', 1)), false);
  assert.equal(isExportable(job('x', { state: 'analyzed', analysis: ALIGN })), true);
  assert.equal(isExportable(job('x', { state: 'exporting', analysis: ALIGN })), false);
  assert.equal(isExportable(job('x', { state: 'failed', analysis: null })), false);
  assert.equal(isExportable(null), false);
});

test('ETA in words, in both languages', () => {
  setLanguage('en');
  assert.equal(formatEta(null), '');
  assert.equal(formatEta(-1), '');
  assert.equal(formatEta(4), 'a few seconds left');
  assert.equal(formatEta(22), 'about 20 s left');
  assert.equal(formatEta(54), 'about 55 s left');
  assert.equal(formatEta(65), 'about 1 min left');
  assert.equal(formatEta(95), 'about 2 min left');
  assert.equal(formatEta(3700), 'about 1 h 2 min left');
  setLanguage('zh');
  assert.equal(formatEta(65), '大约还剩 1 分钟');
  assert.equal(formatEta(600), '大约还剩 10 分钟');
  setLanguage('en');
});

test('history success rate does not count cancelled jobs as failures', () => {
  const jobs = ['done', 'done', 'done', 'failed', 'cancelled'].map((state, i) => job(`h${i}`, { state }));
  assert.deepEqual(historyStats(jobs), { done: 3, failed: 1, cancelled: 1, rate: 75 });
  assert.equal(historyStats([job('c', { state: 'cancelled' })]).rate, null);
});

test('automatic trim follows the placement; the user trim and the engine decision override it', () => {
  const j = job('t', { analysis: ALIGN });
  const p = placementOf(j);
  assert.deepEqual(trimOf(j, p, 83.4), { start_s: 12.345, start_reason: 'song_start', end_s: 83.4, end_reason: 'recording_end' });
  // With a 2 s lead-in the start moves 2 s earlier.
  const lead = job('t', { analysis: ALIGN, options: { ...j.options, lead_in_s: 2 } });
  close(trimOf(lead, p, 83.4).start_s, 10.345);
  // Song already playing when the recording started; song ends before the recording.
  const early = { offset_s: -30, rate: 1, ref_s: 40 };
  const shortSong = job('t', { analysis: { ...ALIGN, overlap: { ...ALIGN.overlap, bgm_start_s: 30, bgm_end_s: 90 } } });
  assert.deepEqual(trimOf(shortSong, early, 83.4), { start_s: 0, start_reason: 'recording_start', end_s: 60, end_reason: 'song_end' });
  const user = job('t', { analysis: ALIGN, options: { ...j.options, trim_start_s: 20 } });
  assert.deepEqual(trimOf(user, p, 83.4), { start_s: 20, start_reason: 'user', end_s: 83.4, end_reason: 'recording_end' });
  const engine = job('t', { analysis: ALIGN, trim: { start_s: 12.3, end_s: 70, start_reason: 'song_start', end_reason: 'black_picture' } });
  assert.equal(trimOf(engine, p, 83.4).end_reason, 'black_picture');
});

test('trim edges stay inside the recording and at least a second apart', () => {
  const tr = { start_s: 10, end_s: 50 };
  assert.deepEqual(moveTrim(tr, 'start', -3, 80), { start_s: 0, end_s: 50 });
  assert.deepEqual(moveTrim(tr, 'start', 60, 80), { start_s: 49, end_s: 50 });
  assert.deepEqual(moveTrim(tr, 'end', 99, 80), { start_s: 10, end_s: 80 });
  assert.deepEqual(moveTrim(tr, 'end', 5, 80), { start_s: 10, end_s: 11 });
});

test('number formats', () => {
  assert.equal(formatSeconds(12.3456, { signed: true }), '+12.346 s');
  assert.equal(formatSeconds(-2.4, { signed: true }), '-2.400 s');
  assert.equal(formatSeconds(-0.0001, { signed: true }), '0.000 s');
  assert.equal(formatClock(83.45), '1:23.5');
  assert.equal(formatClock(5), '0:05.0');
  assert.equal(formatClock(70, 0), '1:10');
  assert.equal(tickStep(10), 10);
  assert.equal(tickStep(1000), 0.1);
});

test('the song is the file without picture, then the better sound', () => {
  const videoSong = { ...CLASS_INFO, streams: CLASS_INFO.streams.map((s) => (s.kind === 'audio' ? { ...s, sample_rate: 44100 } : s)) };
  assert.ok(songScore(SONG_INFO) > songScore(CLASS_INFO));
  assert.ok(songScore(CLASS_INFO) > songScore(videoSong)); // 48 kHz beats 44.1 kHz
  assert.equal(frameRateOf(CLASS_INFO), 29.97);
  assert.equal(frameRateOf(SONG_INFO), null);
});

test('errors: our sentence, the engine message and what to do, with a fallback', () => {
  setLanguage('en');
  const e = explainError({ code: 'no_match', message: 'the song was not found' });
  assert.equal(e.code, 'no_match');
  assert.equal(e.detail, 'the song was not found');
  assert.match(e.fix, /right song|another song/);
  const unknown = explainError({ code: 'weird_new_code', message: 'x' });
  assert.match(unknown.headline, /did not work/);
  assert.match(unknown.fix, /Retry/);
  assert.equal(explainError(null).code, 'internal');
});

test('long folder paths keep their last folders', () => {
  assert.equal(shortPath('/home/me/Exports'), '/home/me/Exports');
  assert.equal(shortPath('/home/me/Videos/BeatSync', 19), '…/Videos/BeatSync');
  assert.equal(shortPath('/home/teacher/Videos/Saturday class', 24), '…/Videos/Saturday class');
  assert.equal(shortPath('/x/a-very-long-folder-name-indeed', 10), '…/a-very-long-folder-name-indeed');
  assert.equal(shortPath('C:\\Users\\me\\Videos\\BeatSync', 19), '…\\Videos\\BeatSync');
});

/** A 2D context that records what is drawn in each colour. */
function recordingContext() {
  const rects = [];
  const ctx = {
    fillStyle: '', globalAlpha: 1, font: '', textBaseline: '',
    clearRect() {}, fillText() {}, measureText: (text) => ({ width: 7 * text.length }),
    fillRect(x, y, w, h) { rects.push({ color: ctx.fillStyle, alpha: ctx.globalAlpha, x, y, w, h }); },
  };
  return { ctx, rects };
}

test('the canvas gets downbeats at the placed song times; single beats only when far enough apart', () => {
  const colors = { lane: 'lane', rec: 'rec', song: 'song', beat: 'beat', dim: 'dim', label: 'label', playhead: 'playhead' };
  const base = {
    width: 1000, height: 200, rec: null, song: null, placement: { offset_s: 12.345, rate: 1, ref_s: 40 },
    beats: ALIGN.beats_s, downbeats: ALIGN.downbeats_s, trim: null, playhead_s: 30, colors, labels: { rec: 'R', song: 'S' },
  };
  // Whole 100 s in 1000 px: beats are 6 px apart, too dense; downbeats (24 px) are drawn.
  let { ctx, rects } = recordingContext();
  drawTimeline(ctx, { ...base, view: { start_s: 0, px_per_s: 10 } });
  const strong = rects.filter((r) => r.color === 'beat' && r.alpha === 1);
  assert.equal(rects.filter((r) => r.color === 'beat' && r.alpha < 1).length, 0);
  assert.equal(strong[0].x, Math.round(12.345 * 10) - 1);
  assert.equal(strong[1].x - strong[0].x, 24);
  assert.equal(strong.length, 37); // downbeats 12.345 … 98.745 s
  assert.equal(rects.filter((r) => r.color === 'playhead')[0].x, 299);
  // Zoomed in to 50 px/s: every beat is drawn, 30 px apart.
  ({ ctx, rects } = recordingContext());
  drawTimeline(ctx, { ...base, view: { start_s: 10, px_per_s: 50 } });
  const weak = rects.filter((r) => r.color === 'beat' && r.alpha < 1);
  assert.equal(weak[0].x, Math.round((12.345 - 10) * 50));
  assert.equal(weak[1].x - weak[0].x, 30);
  // The trimmed-away parts are dimmed on both sides.
  ({ ctx, rects } = recordingContext());
  drawTimeline(ctx, { ...base, view: { start_s: 0, px_per_s: 10 }, trim: { start_s: 12.345, end_s: 80 } });
  const dims = rects.filter((r) => r.color === 'dim');
  assert.deepEqual(dims.map((r) => [Math.round(r.x), Math.round(r.w)]), [[0, 123], [800, 200]]);
});

test('of two copies of a job the one with the higher revision wins, whatever order they come in', () => {
  const store = new JobStore();
  const v = (rev, state) => job('a', { rev, state });
  assert.equal(store.accept(v(3, 'analyzing')), true);
  assert.equal(store.accept(v(2, 'queued')), false, 'an older answer does not overwrite a newer event');
  assert.equal(store.get('a').state, 'analyzing');
  assert.equal(store.accept(v(3, 'analyzing')), true, 'the same revision again is harmless');
  assert.equal(store.accept(v(4, 'analyzed')), true);
  assert.equal(store.get('a').state, 'analyzed');
  assert.equal(isNewer(v(1), undefined), true);
  assert.equal(isNewer(job('a', { rev: undefined }), v(9)), true, 'a copy without a revision is taken');
  // A removed job does not come back with a late copy.
  store.remove('a');
  assert.equal(store.accept(v(5, 'done')), false);
  assert.equal(store.has('a'), false);
  // The newest job for a pair.
  store.accept(job('old', { created_at: 1 }));
  store.accept(job('new', { created_at: 2 }));
  assert.equal(store.forPair('/videos/class.mp4', '/music/song.mp3').id, 'new');
  assert.equal(store.forPair('/videos/other.mp4', '/music/song.mp3'), null);
});

test('stage words, and the name itself for a stage without words', () => {
  setLanguage('en');
  assert.equal(stageText(job('a', { stage: 'plan' })), 'planning the cut');
  assert.equal(stageText(job('a', { stage: 'finish' })), 'saving to disk');
  assert.equal(stageText(job('a', { stage: null })), '');
  assert.equal(stageText(job('a', { stage: 'warp' })), 'warp');
  setLanguage('zh');
  assert.equal(stageText(job('a', { stage: 'plan' })), '规划剪辑');
  setLanguage('en');
});
