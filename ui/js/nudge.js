// Fine placement: nudge steps, keyboard shortcuts and how alternatives are named. Pure, no DOM.
import { roundUs } from './timeline.js';

/** A confidence this high means the engine is sure; below it the teacher should listen. */
export const SURE_CONFIDENCE = 0.9;

/** The engine's verdict in a word; analyses stored before verdicts existed go by confidence. */
export function confidenceWord(confidence, verdict = null) {
  if (verdict) return verdict === 'sure' ? 'sure' : 'check';
  return confidence >= SURE_CONFIDENCE ? 'sure' : 'check';
}

/** One video frame in seconds (30 fps if the frame rate is unknown). */
export function frameSeconds(frameRate) {
  return 1 / (frameRate > 0 ? frameRate : 30);
}

/**
 * The offset change for a key press, or null: "," / "." = ∓1 ms, with Shift ∓10 ms,
 * "[" / "]" = ∓1 frame. Uses `code` so Shift+, (which types "<") still counts as ",".
 * Positive = the song plays later against the picture.
 */
export function nudgeForKey({ code, shiftKey }, frameRate) {
  const ms = shiftKey ? 0.01 : 0.001;
  switch (code) {
    case 'Comma': return -ms;
    case 'Period': return ms;
    case 'BracketLeft': return -frameSeconds(frameRate);
    case 'BracketRight': return frameSeconds(frameRate);
    default: return null;
  }
}

export function nudged(offsetS, deltaS) {
  return roundUs(offsetS + deltaS);
}

/** Length of one 4-beat bar in seconds, or null without a tempo. */
export function barSeconds(bpm) {
  return bpm ? (60 / bpm) * 4 : null;
}

/**
 * Names an alternative by how far it is from the best offset: "one bar earlier/later"
 * (within 10 % of a bar, or "two bars …"), otherwise the signed difference.
 * Returns an i18n key and its variables.
 */
export function candidateLabel(offsetS, bestS, bpm) {
  const d = offsetS - bestS;
  if (Math.abs(d) < 0.0005) return { key: 'cand.best', vars: {} };
  const bar = barSeconds(bpm);
  if (bar) {
    for (const n of [1, 2]) {
      if (Math.abs(Math.abs(d) - n * bar) <= 0.1 * bar) {
        return { key: `cand.${n === 1 ? 'one' : 'two'}.${d < 0 ? 'earlier' : 'later'}`, vars: {} };
      }
    }
  }
  return { key: 'cand.delta', vars: { d: `${d > 0 ? '+' : '−'}${Math.abs(d).toFixed(3)}` } };
}
