// Waveform drawing on <canvas> and the zoom/scroll math of the timeline.
// The math is pure; the drawing takes a 2D context and touches nothing else,
// so the module imports cleanly in node for tests.
import { beatPositions, recToSong, timeToX, xToTime, tickStep, formatClock } from './timeline.js';

// At most 1 ms = 2 px, enough to see a single-millisecond nudge move a marker.
export const MAX_PX_PER_S = 2000;
export const ZOOM_STEP = 1.5;
const MIN_BEAT_PX = 8;

const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

/** The whole recording in `width` pixels. */
export function fitView(durationS, width) {
  return { start_s: 0, px_per_s: width / Math.max(durationS, 0.001) };
}

/** Keeps the zoom between "whole recording" and MAX_PX_PER_S, and the view inside the recording. */
export function clampView(view, durationS, width) {
  const minPps = width / Math.max(durationS, 0.001);
  const pps = clamp(view.px_per_s, minPps, Math.max(minPps, MAX_PX_PER_S));
  const visible = width / pps;
  return { start_s: clamp(view.start_s, 0, Math.max(0, durationS - visible)), px_per_s: pps };
}

/** Zooms by `factor` keeping the time under pixel `anchorX` where it is (mouse or playhead). */
export function zoomView(view, factor, anchorX, durationS, width) {
  const t = xToTime(anchorX, view);
  const pps = view.px_per_s * factor;
  return clampView({ start_s: t - anchorX / pps, px_per_s: pps }, durationS, width);
}

export function scrollView(view, dxPx, durationS, width) {
  return clampView({ start_s: view.start_s + dxPx / view.px_per_s, px_per_s: view.px_per_s }, durationS, width);
}

/** Scrolls just enough to bring time t into view (the playhead while playing). */
export function revealTime(view, t, durationS, width) {
  const visible = width / view.px_per_s;
  if (t >= view.start_s && t <= view.start_s + visible) return view;
  return clampView({ start_s: t - visible * 0.1, px_per_s: view.px_per_s }, durationS, width);
}

/** [min, max] of the peaks covering [t0, t1) of a Waveform, or null outside it. */
export function columnPeak(wave, t0, t1) {
  const n = wave.peaks.length / 2;
  let i0 = Math.floor(t0 * wave.peaks_per_s);
  let i1 = Math.max(i0 + 1, Math.ceil(t1 * wave.peaks_per_s));
  if (i1 <= 0 || i0 >= n) return null;
  i0 = Math.max(0, i0);
  i1 = Math.min(n, i1);
  let lo = 1;
  let hi = -1;
  for (let i = i0; i < i1; i++) {
    lo = Math.min(lo, wave.peaks[2 * i]);
    hi = Math.max(hi, wave.peaks[2 * i + 1]);
  }
  return [lo, hi];
}

/**
 * Draws the timeline: ruler, recording lane, song lane placed at `placement`, the song's beats
 * across both (downbeats stronger), the trimmed-away parts dimmed and the playhead.
 * `s` = { width, height, view, rec, song, placement, plays, beats, downbeats, trim, playhead_s, colors, labels };
 * with `plays` (several plays of the song) each play places the song in its own block instead.
 */
export function drawTimeline(ctx, s) {
  const { width, height, view, colors } = s;
  const ruler = 22;
  const gap = 10;
  const laneH = (height - ruler - gap) / 2;
  const recTop = ruler;
  const songTop = ruler + laneH + gap;

  ctx.clearRect(0, 0, width, height);
  ctx.fillStyle = colors.lane;
  ctx.fillRect(0, recTop, width, laneH);
  ctx.fillRect(0, songTop, width, laneH);

  drawRuler(ctx, view, width, ruler, colors);
  if (s.rec) drawLane(ctx, s.rec, recTop, laneH, width, colors.rec, (x) => xToTime(x, view));
  const plays = s.plays || [];
  if (plays.length) {
    // Several plays: the song, its beats and a block for each play, at that play's placement.
    for (const play of plays) drawPlay(ctx, s, play, { recTop, songTop, laneH });
  } else {
    if (s.song) drawLane(ctx, s.song, songTop, laneH, width, colors.song, (x) => recToSong(xToTime(x, view), s.placement));
    drawBeats(ctx, s, s.placement, recTop, [0, width]);
  }

  if (s.trim) {
    ctx.fillStyle = colors.dim;
    const x0 = timeToX(s.trim.start_s, view);
    const x1 = timeToX(s.trim.end_s, view);
    if (x0 > 0) ctx.fillRect(0, recTop, Math.min(x0, width), height - recTop);
    if (x1 < width) ctx.fillRect(Math.max(0, x1), recTop, width - Math.max(0, x1), height - recTop);
  }

  // Lane names on a backing of the lane colour, readable over a loud waveform.
  ctx.font = '12px system-ui, sans-serif';
  ctx.textBaseline = 'top';
  for (const [text, top] of [[s.labels.rec, recTop], [s.labels.song, songTop]]) {
    ctx.fillStyle = colors.lane;
    ctx.globalAlpha = 0.85;
    ctx.fillRect(4, top + 3, ctx.measureText(text).width + 8, 18);
    ctx.globalAlpha = 1;
    ctx.fillStyle = colors.label;
    ctx.fillText(text, 8, top + 6);
  }

  const px = timeToX(s.playhead_s, view);
  if (px >= 0 && px <= width) {
    ctx.fillStyle = colors.playhead;
    ctx.fillRect(Math.round(px) - 1, 0, 2, height);
  }
}

/**
 * Song beats placed at `placement`: first thin, then downbeats bold, so the bar structure
 * reads at a glance; only between pixel columns `span` = [x0, x1]. Beats closer than
 * MIN_BEAT_PX would only grey the picture out: then only downbeats are drawn.
 */
function drawBeats(ctx, s, placement, top, [x0, x1]) {
  const { view, width, height, colors } = s;
  const n = s.beats.length;
  const beatPx = n > 1 ? ((s.beats[n - 1] - s.beats[0]) / (n - 1)) * placement.rate * view.px_per_s : Infinity;
  const markH = height - top;
  const inside = (x) => x >= x0 && x <= x1;
  ctx.fillStyle = colors.beat;
  ctx.globalAlpha *= 0.45;
  if (beatPx >= MIN_BEAT_PX) {
    for (const x of beatPositions(s.beats, placement, view, width)) if (inside(x)) ctx.fillRect(Math.round(x), top, 1, markH);
  }
  ctx.globalAlpha /= 0.45;
  for (const x of beatPositions(s.downbeats, placement, view, width)) if (inside(x)) ctx.fillRect(Math.round(x) - 1, top, 2, markH);
}

/**
 * One play as a block over both lanes: the song's waveform and beats inside it at the play's
 * own placement, its edges, stronger when selected; a play left out is drawn faint.
 * `play` = { start_s, end_s, placement, included, selected }.
 */
function drawPlay(ctx, s, play, { recTop, songTop, laneH }) {
  const { view, width, height, colors } = s;
  const xa = timeToX(play.start_s, view);
  const xb = timeToX(play.end_s, view);
  if (xb < 0 || xa > width) return;
  const x0 = Math.max(0, Math.floor(xa));
  const x1 = Math.min(width, Math.ceil(xb));
  ctx.globalAlpha = play.included ? 1 : 0.35;
  ctx.fillStyle = colors.play;
  ctx.globalAlpha *= play.selected ? 0.5 : 0.3;
  ctx.fillRect(x0, recTop, x1 - x0, height - recTop);
  ctx.globalAlpha = play.included ? 1 : 0.35;
  if (s.song) {
    drawLane(ctx, s.song, songTop, laneH, width, colors.song, (x) => recToSong(xToTime(x, view), play.placement), x0, x1);
  }
  drawBeats(ctx, s, play.placement, recTop, [x0, x1]);
  ctx.globalAlpha = 1;
  ctx.fillStyle = colors.playEdge;
  const edge = play.selected ? 3 : 1;
  for (const x of [xa, xb - edge]) if (x >= -edge && x <= width) ctx.fillRect(Math.round(x), recTop, edge, height - recTop);
}

/** The whole recording's waveform alone, while the analysis runs. */
export function drawOverview(ctx, wave, width, height, color) {
  ctx.clearRect(0, 0, width, height);
  const view = fitView(wave.duration_s, width);
  drawLane(ctx, wave, 0, height, width, color, (x) => xToTime(x, view));
}

function drawRuler(ctx, view, width, h, colors) {
  const step = tickStep(view.px_per_s);
  const digits = step < 0.1 ? 2 : step < 1 ? 1 : 0;
  ctx.fillStyle = colors.label;
  ctx.font = '11px system-ui, sans-serif';
  ctx.textBaseline = 'middle';
  const first = Math.ceil(view.start_s / step) * step;
  for (let t = first; timeToX(t, view) <= width; t += step) {
    const x = Math.round(timeToX(t, view));
    ctx.fillRect(x, h - 6, 1, 6);
    ctx.fillText(formatClock(t, digits), x + 3, h / 2 - 2);
  }
}

// One vertical bar per pixel column (from x0 to x1); `timeAt(x)` maps the column to the lane's own time.
function drawLane(ctx, wave, top, h, width, color, timeAt, x0 = 0, x1 = width) {
  const mid = top + h / 2;
  const half = h / 2 - 4;
  ctx.fillStyle = color;
  for (let x = x0; x < x1; x++) {
    const pk = columnPeak(wave, timeAt(x), timeAt(x + 1));
    if (!pk) continue;
    const y0 = mid - pk[1] * half;
    const y1 = mid - pk[0] * half;
    ctx.fillRect(x, y0, 1, Math.max(1, y1 - y0));
  }
}
