// Mapping between recording time, song time and pixels. Pure functions, no DOM.
//
// A placement says where the song sits in the recording, as the engine defines it
// (engine/src/trim.rs `Placement`):
//   recording_time = ref_s + rate * (song_time - (ref_s - offset_s))
// i.e. at recording time ref_s (the middle of the overlap, where the engine states its
// offset) song time t is heard at t + offset_s, and around it one second of song lasts
// `rate` seconds of recording. With rate 1 this is simply t + offset_s.

/** The placement in force for a job: the user's nudge/choice if any, else the analysis. */
export function placementOf(job) {
  const a = job.analysis;
  const o = job.options || {};
  return {
    offset_s: o.offset_s ?? a.offset_s,
    rate: o.rate ?? a.rate ?? 1,
    ref_s: (a.overlap.dance_start_s + a.overlap.dance_end_s) / 2,
  };
}

export function songToRec(songS, p) {
  return p.ref_s + p.rate * (songS - (p.ref_s - p.offset_s));
}

export function recToSong(recS, p) {
  return p.ref_s - p.offset_s + (recS - p.ref_s) / p.rate;
}

// A view shows recording time from start_s at px_per_s pixels per second.
export function timeToX(t, view) {
  return (t - view.start_s) * view.px_per_s;
}

export function xToTime(x, view) {
  return view.start_s + x / view.px_per_s;
}

/** Song beats (song time) → x positions of those visible in a view of `width` pixels. */
export function beatPositions(beatsS, p, view, width) {
  const out = [];
  for (const b of beatsS) {
    const x = timeToX(songToRec(b, p), view);
    if (x >= -1 && x <= width + 1) out.push(x);
  }
  return out;
}

/** Rounds to whole microseconds, so repeated ±1 ms nudges never accumulate float noise. */
export function roundUs(s) {
  return Math.round(s * 1e6) / 1e6;
}

/** 12.3456 → "12.346 s"; signed adds "+" for positive values. */
export function formatSeconds(s, { signed = false, digits = 3 } = {}) {
  const v = s.toFixed(digits);
  return `${signed && s > 0 ? '+' : ''}${v === `-${(0).toFixed(digits)}` ? (0).toFixed(digits) : v} s`;
}

/** 83.45 → "1:23.4" (ruler labels and the playhead readout). */
export function formatClock(s, digits = 1) {
  const neg = s < 0;
  const a = Math.abs(s);
  const m = Math.floor(a / 60);
  const rest = (a - m * 60).toFixed(digits).padStart(digits > 0 ? 3 + digits : 2, '0');
  return `${neg ? '-' : ''}${m}:${rest}`;
}

/** Ruler tick spacing (s): the smallest "nice" step that leaves at least minPx between ticks. */
export function tickStep(pxPerS, minPx = 70) {
  for (const step of [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600]) {
    if (step * pxPerS >= minPx) return step;
  }
  return 1200;
}

// Differences below this are "the same moment" (as in the engine's trim decision).
const SAME_MOMENT_S = 0.1;

/**
 * Where the export starts and ends (recording time) and why. The engine's decision
 * (`job.trim`, see docs/ipc.md "Requested by UI") wins; until it is there the same rule is
 * applied to the analysis: from the lead-in before the song is heard (or the recording's
 * start) to where the song stops (or the recording's end); the user's trim overrides each end.
 * Reasons: start 'recording_start' | 'song_start' | 'user', end 'recording_end' | 'song_end' |
 * 'black_picture' | 'user'. Follows the placement, so a nudge moves the automatic trim too.
 */
export function trimOf(job, p, recDurationS) {
  const o = job.options || {};
  let auto = job.trim;
  if (!auto) {
    const a = job.analysis;
    const heardIn = roundUs(songToRec(a.overlap.bgm_start_s, p));
    const heardOut = roundUs(songToRec(a.overlap.bgm_end_s, p));
    auto = heardIn <= SAME_MOMENT_S
      ? { start_s: 0, start_reason: 'recording_start' }
      : { start_s: Math.max(0, roundUs(heardIn - (o.lead_in_s || 0))), start_reason: 'song_start' };
    Object.assign(auto, heardOut < recDurationS - SAME_MOMENT_S
      ? { end_s: heardOut, end_reason: 'song_end' }
      : { end_s: recDurationS, end_reason: 'recording_end' });
  }
  return {
    start_s: o.trim_start_s ?? auto.start_s,
    start_reason: o.trim_start_s != null ? 'user' : auto.start_reason,
    end_s: o.trim_end_s ?? auto.end_s,
    end_reason: o.trim_end_s != null ? 'user' : auto.end_reason,
  };
}

/** A trim moved by the user, kept inside the recording and at least `minLen` long. */
export function moveTrim(trim, edge, s, recDurationS, minLen = 1) {
  if (edge === 'start') return { start_s: Math.min(Math.max(0, s), trim.end_s - minLen), end_s: trim.end_s };
  return { start_s: trim.start_s, end_s: Math.max(Math.min(recDurationS, s), trim.start_s + minLen) };
}

// ---- several plays -----------------------------------------------------------------------
// When the song is played several times in the recording, the analysis has one segment per
// play (`analysis.segments`, recording order). The teacher's choice (`options.plays`, set by
// `set_plays`) keeps the plays to export, each with its own (nudged) offset; a segment not in
// it is left out, its offset kept in `options.plays_left_out`. `null` = every segment at the
// analysis's offset.

// Two spans are the same play when their edges agree to a microsecond (both come from the
// same checkpoint, through JSON).
const SAME_EDGE_S = 1e-6;

/** The plays of a job with two or more segments (else []): each segment, exported or not, at its offset. */
export function playsOf(job) {
  const segments = (job && job.analysis && job.analysis.segments) || [];
  if (segments.length < 2) return [];
  const chosen = job.options && job.options.plays;
  const leftOut = (job.options && job.options.plays_left_out) || [];
  const same = (s) => (p) => Math.abs(p.dance_start_s - s.dance_start_s) < SAME_EDGE_S
    && Math.abs(p.dance_end_s - s.dance_end_s) < SAME_EDGE_S;
  return segments.map((s, index) => {
    const c = chosen && chosen.find(same(s));
    const out = !c && leftOut.find(same(s));
    const offset = c ? c.offset_s : out ? out.offset_s : s.offset_s;
    return {
      index, start_s: s.dance_start_s, end_s: s.dance_end_s, rate: s.rate ?? 1, cut_before: !!s.cut_before,
      included: chosen ? !!c : true, offset_s: offset,
    };
  });
}

/** Where the song sits inside one play (its offset holds at the play's middle). */
export function playPlacement(play) {
  return { offset_s: play.offset_s, rate: play.rate, ref_s: (play.start_s + play.end_s) / 2 };
}

/** What `set_plays` takes: every play by index, whether it is exported, its offset. */
export function playChoices(plays) {
  return plays.map((p) => ({ index: p.index, included: p.included, offset_s: p.offset_s }));
}

/** The `options.plays` those choices become (as Rust builds them from the segments). */
export function chosenPlays(plays) {
  return plays.filter((p) => p.included).map((p) => ({
    dance_start_s: p.start_s, dance_end_s: p.end_s, offset_s: p.offset_s, rate: p.rate, cut_before: p.cut_before,
  }));
}

/** Song beats (song time) heard inside one play, as recording times. */
export function beatsInPlay(beatsS, play) {
  const p = playPlacement(play);
  const out = [];
  for (const b of beatsS) {
    const r = songToRec(b, p);
    if (r >= play.start_s && r <= play.end_s) out.push(r);
  }
  return out;
}
