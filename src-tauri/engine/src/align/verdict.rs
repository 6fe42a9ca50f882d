//! `verdict`: every threshold and calibration the align pipeline decides
//! with, and the functions that turn its evidence into a confidence, a
//! verdict or a refusal. Each figure is the bench measurement that sets it
//! (the offset benchmark: see BENCHMARKS.md, "align"); a threshold changed
//! here must be checked on several seeds and on real music.

use super::pipeline::Ranked;

crate::error::wire_names! {
    /// How sure the engine is of a placement (`AlignResult::verdict`).
    pub enum Verdict {
        /// The evidence says this is the song, placed right (checked on the
        /// benchmarks: right in at least 99 % of the placements called sure).
        Sure = "sure",
        /// Something in the song explains the recording, but not clearly
        /// enough: listen before exporting.
        Unsure = "unsure",
    }
}

/// Results stored before the verdict existed were all given as sure.
impl Default for Verdict {
    fn default() -> Self {
        Verdict::Sure
    }
}

impl Verdict {
    pub(super) fn from_confidence(confidence: f64) -> Self {
        if confidence >= SURE_CONFIDENCE {
            Verdict::Sure
        } else {
            Verdict::Unsure
        }
    }
}

/// Confidence from which a placement is `sure` (the app's "sure" too).
/// Bench: confidence >= 0.9 was right in every answered case of the public
/// and seed sets (BENCHMARKS.md, "Where it falls short"); right answers on
/// songs with look-alike sections get 0.3-0.8, so it is conservative.
pub(super) const SURE_CONFIDENCE: f64 = 0.9;

// ---- refusal: is it the song at all?

/// Below this whole-overlap GCC z-score the song is declared absent.
/// Alone it is not enough: wrong songs passed it with z 10.9 and 16.0 on
/// only 4-5 of ~300 windows, and pitch-kept ones with z 9.9-14.5
/// (BENCHMARKS.md, wrong-song matches); the rules below catch those.
pub(super) const MIN_MATCH_Z: f64 = 9.0;
/// A play found beside a sure answer (the song is in the recording, on the
/// recording's clock) needs this coherence on its own span, instead of
/// [`MIN_MATCH_Z`]; every other rule of the refusal still holds. Bench
/// (`score_plays.py`, six seeds of `plays` and `plays-real`, 430 plays):
/// true plays refused at 9 measured z 7.1-8.97 on their span (quiet plays
/// of 18-46 s under talk, heard in 4-13 % of the windows). At 7: plays
/// found on real music 206 -> 209 of 215, false segments 0 -> 0
/// (synthesised songs: 207 and 5, unchanged); at 8: 207. Single-play
/// answers (public, real) unchanged. At 6 (twelve seeds of `plays-real`,
/// ten of `plays`, 22 sets in all): one play more (plays-real 5656
/// rpl001, 40 s at 1 dB SNR under 1.3 s of reverberation, z 6.3 on its
/// span, heard in 10 of 151 windows), no false segment, every other
/// answer identical.
pub(super) const MIN_PLAY_Z_BESIDE_SURE: f64 = 6.0;
/// A play found beside an accepted but unsure answer needs this coherence
/// on its own span: the song is likelier there than in a refused recording,
/// less than beside a sure answer (a wrong song can be answered unsure).
/// At 7 on 22 bench sets (12 of `plays-real`, 10 of `plays`): one play more
/// (plays-real 2828 rpl004's last, z 8.8, heard in 5 of 103 windows; its
/// neighbour's end 40 s late before, 35 ms now), no false segment; 144
/// wrong-song pairs (plays 1717, 2828, 6262, plays-real 2828, 4545, 6767)
/// identical: 138 `no_match`, 6 `unsure` with one segment each.
pub(super) const MIN_PLAY_Z_BESIDE_UNSURE: f64 = 7.0;
/// A run that the fine stage refuses on its own span (no window shows it:
/// 1.1-1.4 s of reverberation at 0-4 dB SNR) is still a play when the
/// integration ([`crate::align::integrate`]) over that span gives at least
/// this coherence: above what the whole-recording refusal lets through
/// ([`INTEGRATED_MIN_Z`]; wrong songs reach 4.5-5.5 over a whole recording)
/// and its presence of one half ([`INTEGRATED_PRESENT_Z`]), with room for
/// the several runs of a recording. Refused runs on 22 bench sets: off
/// every true line 6.5 at most on real music; a wrong song's 8.0 (at lag
/// margin 0.7); true plays then missed 8.6-15.8 (BENCHMARKS.md, 2026-12-07).
pub(super) const PLAY_INTEGRATED_MIN_Z: f64 = 8.0;
/// ...and its arrival stands this far (z) above every other lag searched
/// (runs off every true line and wrong songs 2.2 at most, but for a 7-s
/// look-alike piece at 5.2 that is dropped as under 8 s; true plays then
/// missed 3.0-10.6).
pub(super) const PLAY_LAG_MARGIN: f64 = 2.0;
/// A run the scan holds on one line ([`HELD_RUN_EVIDENCE`]) needs only
/// this integrated coherence: the scan's hops (the spectral shape, second
/// by second) and the integration (the waveform, summed) are two readings
/// of the span, and a wrong song does not pass both. On 29 bench sets
/// (`bench/run_evidence.py`: 1,867 alignments, 1,493 of them wrong-song
/// pairs; 1,181 runs), runs between this and the plain bar with the lag
/// margin: none of a wrong song, off every true line at evidence 16 at
/// most, the two true plays there (plays-real 4040 rpl002, a clipped take:
/// 1-3 windows of 100 show them) at 110 and 97. Over the plain bar a wrong
/// song's run holds 70 at most.
pub(super) const HELD_RUN_INTEGRATED_MIN_Z: f64 = 6.5;
/// Scan evidence (its hops' peak z on the line, each clipped at 8, summed)
/// from which a run is held: some 25 s of hops at 3.5.
pub(super) const HELD_RUN_EVIDENCE: f32 = 90.0;
/// GCC coherence (z) from which a line holds something of the song at all:
/// half of [`MIN_MATCH_Z`] (a ranked candidate below it is not a placement
/// of the song).
pub(super) const COHERENT_Z: f64 = 0.5 * MIN_MATCH_Z;
/// A placement must have a clear peak in at least this fraction of the
/// final pass's windows over the overlap. Another song that shares drum
/// hits or a chord at a simple tempo ratio can reach the z-score above on a
/// handful of strong windows (4-5 of 300 in the bench's cross pairs, i.e.
/// 1.2-1.6 %); the song itself was heard in 12 % or more of them on every
/// bench case, including talk-heavy and mostly-noise ones.
pub(super) const MIN_HEARD_FRACTION: f64 = 0.04;
/// The same with a speed change (|rate - 1| above [`SPEED_CHANGE`]; clock
/// drift stays below it): true speed-changed cases were heard in 12 % or
/// more of their windows; wrong songs matched at a tempo ratio in 1-7 %.
pub(super) const MIN_HEARD_FRACTION_AT_SPEED: f64 = 0.08;
/// A rate farther than this from 1 is a speed change, not clock drift (the
/// bench's drift is 50-300 ppm, its speed changes 1-4 %).
pub(super) const SPEED_CHANGE: f64 = 0.005;
/// A pitch-kept (time-stretched) placement needs this spectral-shape z-score,
/// or a GCC z-score of [`STRETCH_STRONG_Z`]. Bench figures: the five true
/// pitch-kept cases (four sets and a held-out one) have shape z 4.3-10.6
/// (GCC z 9.2-28.9); the three wrong-song pairs (other songs sharing key,
/// chords and drums at a 2-3 % tempo ratio) that passed the GCC threshold as
/// pitch-kept had shape z 2.5-3.5 and GCC z 9.9-14.5. The margins are thin
/// on both sides: few cases of either kind exist.
pub(super) const STRETCH_MIN_SHAPE_Z: f64 = 4.0;
/// (wrong pitch-kept pairs reached GCC z 14.5; the true pitch-kept case with
/// shape z 4.3 has GCC z 19.8)
pub(super) const STRETCH_STRONG_Z: f64 = 2.0 * MIN_MATCH_Z;

/// What the final pass says for a placement.
#[derive(Debug, Clone, Copy)]
pub(super) struct Evidence {
    /// Whole-overlap GCC coherence (noise standard deviations).
    pub(super) z: f64,
    /// Windows with a clear peak on the line, of `windows` over the overlap.
    pub(super) heard_windows: usize,
    pub(super) windows: usize,
    pub(super) rate: f64,
    /// Placed under the pitch-kept (time-stretch) hypothesis.
    pub(super) pitch_kept: bool,
    /// Spectral-shape similarity of the placement (z against all placements).
    pub(super) shape_z: f64,
}

/// Why the placement is not the song, if it is not (the `no_match` reason).
pub(super) fn refutation(e: &Evidence) -> Option<String> {
    refutation_below(e, MIN_MATCH_Z)
}

/// [`refutation`] with the coherence the placement needs at `least_z`.
pub(super) fn refutation_below(e: &Evidence, least_z: f64) -> Option<String> {
    if e.z < least_z || e.heard_windows < 4 {
        return Some(format!("only noise-level similarity (score {:.1})", e.z));
    }
    // The pitch-kept hypothesis accepts each window's peak anywhere within
    // ±5 ms of the line, which another song in the same key and chords at a
    // tempo ratio can also fill (tonal peaks repeat every pitch period): it
    // is accepted when the spectral shape over the whole overlap confirms the
    // section, or on waveform coherence well above the threshold.
    if e.pitch_kept && e.shape_z < STRETCH_MIN_SHAPE_Z && e.z < STRETCH_STRONG_Z {
        return Some(format!(
            "only a loose, pitch-kept similarity (score {:.1}, shape {:.1})",
            e.z, e.shape_z
        ));
    }
    // A speed change is one of many hypotheses searched (±5 %, and the
    // pitch-kept tolerance): more of the overlap has to carry the song.
    let min_heard = if (e.rate - 1.0).abs() > SPEED_CHANGE {
        MIN_HEARD_FRACTION_AT_SPEED
    } else {
        MIN_HEARD_FRACTION
    };
    if (e.heard_windows as f64) < min_heard * e.windows as f64 {
        return Some(format!(
            "the song is heard in only {} of {} places where it should play",
            e.heard_windows, e.windows
        ));
    }
    None
}

impl Ranked {
    /// Sort key of a fine-ranked candidate: its spectral-shape z-score (which
    /// tells sections apart), or far below every real candidate when GCC finds
    /// no coherence on its line (not a placement of this song at all).
    pub(super) fn rank_key(&self) -> f64 {
        if self.is_coherent() {
            self.shape_z
        } else {
            self.shape_z - 1e6
        }
    }

    /// GCC finds coherence on the candidate's line: [`COHERENT_Z`].
    pub(super) fn is_coherent(&self) -> bool {
        self.fine.z >= COHERENT_Z
    }
}

// ---- confidence of a first-pass placement

/// How sure a placement is, as two factors: how clearly the song is there
/// (`presence`) and how far its section is ahead of the next one
/// (`separation`), both 0..1.
#[derive(Debug, Clone, Copy)]
pub(super) struct Confidence {
    pub(super) presence: f64,
    pub(super) separation: f64,
}

impl Confidence {
    pub(super) fn value(&self) -> f64 {
        (self.presence * self.separation).clamp(0.0, 1.0)
    }
}

pub(super) fn logistic(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Presence from the first pass's whole-overlap coherence z.
pub(super) fn coherence_presence(final_z: f64) -> f64 {
    logistic((final_z - 12.0) / 2.0)
}

/// Separation from a spectral-shape margin (z) between two sections. The
/// shape z of look-alike sections (a song's repeats, identical loops)
/// scatters by 0.1-0.6 around each other on the bench, and below a margin
/// of [`NEAR_TIE_MARGIN`] the tie-break decides: a margin of 1.5 counts as
/// a clear lead (0.9).
pub(super) fn shape_separation(margin: f64) -> f64 {
    1.0 - (-margin.max(0.0) / SHAPE_MARGIN_SCALE).exp()
}

/// Shape margin per e-fold of doubt (`1.5 / ln 10`).
pub(super) const SHAPE_MARGIN_SCALE: f64 = 0.65;

/// Presence from the integrated coherence z ([`crate::align::integrate`]): wrong
/// songs and displaced lines reach 4.5-5.5 on the bench, the song itself 6
/// to 40.
pub(super) fn integrated_presence(z: f64) -> f64 {
    logistic((z - INTEGRATED_PRESENT_Z) / 0.6)
}

/// Separation from an integrated-coherence margin between two sections.
pub(super) fn integrated_separation(margin: f64) -> f64 {
    1.0 - (-margin.max(0.0) / 2.0).exp()
}

/// Integrated coherence z at which presence is one half.
pub(super) const INTEGRATED_PRESENT_Z: f64 = 7.5;

/// Confidence of a first-pass placement: how clearly the song is there
/// (final coherence z) and how far its section is ahead of the next one
/// (spectral shape, or the tie-break's difference evidence when it decided).
pub(super) fn first_pass_confidence(
    distinct: &[Ranked],
    final_z: f64,
    tie_evidence: Option<f64>,
) -> Confidence {
    let presence = coherence_presence(final_z);
    if let Some(ev) = tie_evidence {
        // the decisive evidence was the difference signal's margin, not the shape margin
        let margin = if ev >= DIFFERENCE_MIN_Z {
            (ev - DIFFERENCE_MIN_Z) / DIFFERENCE_Z_PER_MARGIN
        } else {
            0.0
        };
        return Confidence {
            presence,
            separation: shape_separation(margin),
        };
    }
    let lead = &distinct[0];
    // (sections without coherence were all tried at the winner's rate:
    // they are refuted, not merely unchecked - unless the winner too only
    // showed coherence in the denser final pass: then shape alone compares)
    let second = if lead.is_coherent() {
        distinct.get(1).map_or(0.0, |d| d.rank_key().max(0.0))
    } else {
        distinct
            .iter()
            .skip(1)
            .map(|d| d.shape_z)
            .fold(0.0, f64::max)
    };
    Confidence {
        presence,
        separation: shape_separation(lead.shape_z - second),
    }
}

/// Shape-rank margin (z) under which the two leading sections are a near tie.
pub(super) const NEAR_TIE_MARGIN: f64 = 1.0;
/// Difference-signal evidence (z) needed to overturn the shape ranking.
pub(super) const DIFFERENCE_MIN_Z: f64 = 3.0;
/// Difference-signal z per unit of confidence margin (noise of a z-score
/// difference is about 1.4).
pub(super) const DIFFERENCE_Z_PER_MARGIN: f64 = 2.0;

// ---- the second pass (integration over the whole overlap)

/// A second-pass placement this coherent (integrated z), whose section the
/// spectral shape confirms this clearly, ends the search: no look-alike
/// comes near either on the bench.
pub(super) const DECISIVE_Z: f64 = 12.0;
pub(super) const DECISIVE_SHAPE_Z: f64 = 10.0;
/// Integrated coherence (z) from which something in the song explains the
/// recording; below it (and without spectral-shape support) `no_match`.
/// Bench wrong songs and displaced lines reach 4.5-5.
pub(super) const INTEGRATED_MIN_Z: f64 = 6.0;

/// Confidence of a second-pass placement from its integrated coherence z,
/// the spectral shape's support for its section (z), the best other
/// section's `(integrated z, shape z)` and the margin of its lag over the
/// other lags searched. The shape has to confirm the section on its own:
/// another song can share the waveform of a sample (a drum hit, a loop) but
/// not the course of the whole mix.
pub(super) fn integrated_confidence(
    z: f64,
    shape_z: f64,
    other: (f64, f64),
    lag_margin: f64,
) -> f64 {
    let presence = integrated_presence(z) * logistic((shape_z - SECOND_PASS_SHAPE_Z) / 0.5);
    let section = integrated_separation(z - other.0).max(shape_separation(shape_z - other.1));
    let lag = 1.0 - (-lag_margin.max(0.0) / LAG_MARGIN_SCALE).exp();
    Confidence {
        presence,
        separation: section.min(lag),
    }
    .value()
}

/// Lag margin (z) per e-fold of doubt: 3 z over any other lag is a clear lead (0.9).
pub(super) const LAG_MARGIN_SCALE: f64 = 1.3;

/// Spectral-shape z from which the song's shape following a placement
/// explains the recording even without waveform evidence (wrong songs reach
/// 6.4 on the bench's real music; on its synthesised songs 5.8 at first,
/// 9.3 in a later run: [`shape_only_confidence`] needs a section lead too).
pub(super) const SHAPE_EXPLAINS_Z: f64 = 8.0;

/// Confidence of a placement that only the spectral shape supports: the
/// waveform gave no coherence over the whole overlap (time-stretched
/// playback smears it), but the song's spectral course follows the line
/// (`shape_z`, z against every placement). The same two factors as every
/// other placement: presence from the shape z (one half at
/// [`SHAPE_EXPLAINS_Z`] + 2) and separation from the shape margin of the
/// line's section over every other section of the song at its rate
/// (`lead`: a look-alike section, a loop, gives no margin). Presence alone
/// does not tell wrong songs apart here: two synthesised wrong-song pairs
/// reached this rule with shape z 8.5 and 9.3, but with section leads of
/// 0.1-0.2 (the true pitch-kept pairs: 4.0-20.7; BENCHMARKS.md, "align on
/// real music", verdict run). With no lead measured it stays unsure.
pub(super) fn shape_only_confidence(shape_z: f64, lead: Option<(f64, f64)>) -> f64 {
    let presence = logistic(shape_z - SHAPE_EXPLAINS_Z - 2.0);
    let separation = lead.map_or(0.5, |(own, other)| shape_separation(own - other));
    Confidence {
        presence,
        separation,
    }
    .value()
}

/// Spectral-shape z at which the second pass's shape support is one half:
/// wrong songs reach 6.4 on the bench (real music) and the sections found
/// by the second pass 10-36, except within a song's own repeats.
pub(super) const SECOND_PASS_SHAPE_Z: f64 = 6.5;

// ---- the heard part of the recording

/// A part of the recording left out of the heard run is not believed
/// silent when the song's spectral shape follows the line there at least
/// this clearly ([`shape_presence`]): sustained music without transients
/// under loud noise (or time-stretched) gives GCC little to lock on.
pub(super) const HEARD_SHAPE_Z: f64 = 3.0;
/// Presence is clipped to ± this (null standard deviations) in [`heard_span`]...
pub(super) const HEARD_CLIP: f64 = 3.0;
/// ...a stretch is absent when its sum falls short of the one expected had
/// the song played there by this many null deviations.
pub(super) const HEARD_ABSENCE_Z: f64 = 4.0;

#[cfg(test)]
mod tests {
    use super::{refutation, Evidence};

    /// Final-pass evidence measured on bench cases (BENCHMARKS.md, wrong song):
    /// (z, heard, windows, rate, pitch kept, shape z).
    fn evidence(z: f64, heard: usize, windows: usize, rate: f64, pk: bool, shape: f64) -> Evidence {
        Evidence {
            z,
            heard_windows: heard,
            windows,
            rate,
            pitch_kept: pk,
            shape_z: shape,
        }
    }

    #[test]
    fn the_song_itself_is_accepted_in_the_bench_s_weakest_cases() {
        for (case, e) in [
            // pitch-kept tempo change, lowest GCC z and heard fraction
            ("public/pub016", evidence(9.21, 39, 328, 1.039, true, 8.53)),
            // pitch-kept, lowest shape z (held-out seed 41)
            (
                "seed41/pub005",
                evidence(19.79, 119, 348, 0.9655, true, 4.26),
            ),
            // drift, talk and two speakers: lowest non-stretched z and shape z
            (
                "seed11/pub003",
                evidence(14.57, 21, 131, 1.0002, false, 3.23),
            ),
            // varispeed with the lowest heard fraction
            (
                "seed31/pub007",
                evidence(27.13, 55, 161, 0.974, false, 10.18),
            ),
        ] {
            assert_eq!(refutation(&e), None, "{case}");
        }
    }

    #[test]
    fn other_songs_matched_at_a_tempo_ratio_are_refuted() {
        for (pair, e, why) in [
            (
                "seed23 pub008 x pub013",
                evidence(10.85, 5, 309, 1.0264, false, 5.83),
                "heard in only",
            ),
            (
                "seed41 pub004 x pub015",
                evidence(11.29, 25, 600, 0.9592, false, 4.26),
                "heard in only",
            ),
            (
                "seed11 pub018 x pub003",
                evidence(10.88, 59, 944, 1.0205, true, 3.53),
                "pitch-kept",
            ),
            (
                "seed11 pub008 x pub013",
                evidence(14.52, 84, 1153, 1.0205, true, 3.38),
                "pitch-kept",
            ),
            (
                "seed11 pub004 x pub011",
                evidence(9.91, 38, 346, 1.0332, true, 2.53),
                "pitch-kept",
            ),
            (
                "weak everywhere",
                evidence(8.5, 40, 300, 1.0, false, 6.0),
                "noise-level",
            ),
        ] {
            let reason = refutation(&e).unwrap_or_default();
            assert!(reason.contains(why), "{pair}: {reason:?}");
        }
    }
}
