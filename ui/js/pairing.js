// Which song goes with which class video when several songs were added. Rust aligns each
// video against every song (`match_songs`); this decides from those answers. Pure (tested
// in node): a sure answer wins when it is the only one; ties and unsure-only answers are
// left to the teacher, with the songs ordered by how well they matched.

/** Every state a video's pairing can be in (the file list shows each in words). */
export const PAIR_STATES = Object.freeze(['only', 'checking', 'auto', 'user', 'choose', 'none']);

/**
 * The pairing that `matches` (SongMatch[]: {song, verdict, confidence, error}) call for:
 * {state: 'auto', song} when exactly one song is sure; {state: 'choose', song: null} when
 * several are sure or only unsure ones placed it; {state: 'none', song: null} when no song
 * could be placed at all.
 */
export function decidePairing(matches) {
  const sure = matches.filter((m) => m.verdict === 'sure');
  if (sure.length === 1) return { state: 'auto', song: sure[0].song };
  if (matches.some((m) => m.verdict)) return { state: 'choose', song: null };
  return { state: 'none', song: null };
}

const RANK = { sure: 2, unsure: 1 };

/** The songs best first: sure, then unsure, then not placed; by confidence within each. */
export function rankMatches(matches) {
  return [...matches].sort((a, b) => (RANK[b.verdict] || 0) - (RANK[a.verdict] || 0) || b.confidence - a.confidence);
}

/** What a match says in one word: 'sure', 'unsure' or 'no_match'. */
export function matchWord(match) {
  return match && match.verdict ? match.verdict : 'no_match';
}

/** A key for a set of songs: matches made against another set are asked again. */
export function songsKey(paths) {
  return [...paths].sort().join('\n');
}
