//! The heard span: the part of the recording in which the song is heard,
//! from the windows' presence on the line and the spectral shape's.

use super::debug_enabled;
use crate::align::fine::{FineOutcome, Line};
use crate::align::verdict::{HEARD_ABSENCE_Z, HEARD_CLIP, HEARD_SHAPE_Z};

/// The part of the recording in which the song is heard (recording times, s).
pub(super) struct HeardSpan {
    pub(super) start: f64,
    pub(super) end: f64,
}

/// The run of windows with the largest mean-shift statistic (see [`heard_span`]).
struct PresenceRun {
    first: usize,
    last: usize,
    /// Mean clipped presence over the run.
    mu: f64,
}

/// The run of `windows` (not empty) with the largest `S^2 / n`.
fn strongest_presence_run(windows: &[crate::align::fine::WindowObs]) -> PresenceRun {
    let p: Vec<f64> = windows
        .iter()
        .map(|o| o.presence.clamp(-HEARD_CLIP, HEARD_CLIP))
        .collect();
    let mut prefix = vec![0.0f64; p.len() + 1];
    for (i, v) in p.iter().enumerate() {
        prefix[i + 1] = prefix[i] + v;
    }
    let (mut best_stat, mut first, mut last) = (0.0f64, 0usize, p.len() - 1);
    for i in 0..p.len() {
        for j in i..p.len() {
            let s = prefix[j + 1] - prefix[i];
            if s > 0.0 {
                let stat = s * s / (j + 1 - i) as f64;
                if stat > best_stat {
                    (best_stat, first, last) = (stat, i, j);
                }
            }
        }
    }
    let n_run = (last + 1 - first) as f64;
    PresenceRun {
        first,
        last,
        mu: (prefix[last + 1] - prefix[first]) / n_run,
    }
}

/// Whether the song is shown absent over windows left out of the run.
struct AbsenceTest<'a> {
    /// The run's mean presence.
    mu: f64,
    /// The song's median level over the run (dB).
    run_level: f64,
    shape_z: &'a dyn Fn(f64, f64) -> f64,
}

impl<'a> AbsenceTest<'a> {
    fn new(
        windows: &[crate::align::fine::WindowObs],
        run: &PresenceRun,
        shape_z: &'a dyn Fn(f64, f64) -> f64,
    ) -> Self {
        let mut run_db: Vec<f64> = windows[run.first..=run.last]
            .iter()
            .map(|o| o.song_db)
            .collect();
        run_db.sort_by(f64::total_cmp);
        AbsenceTest {
            mu: run.mu,
            run_level: run_db[run_db.len() / 2],
            shape_z,
        }
    }

    /// Is the song absent over the windows `gap`, recording times `t_a..t_b`?
    fn absent(&self, gap: &[crate::align::fine::WindowObs], t_a: f64, t_b: f64) -> bool {
        let (mu, run_level) = (self.mu, self.run_level);
        if gap.is_empty() || mu <= 0.0 {
            return false;
        }
        let level = gap.iter().map(|o| o.song_db).sum::<f64>() / gap.len() as f64;
        let gap_mean = gap
            .iter()
            .map(|o| o.presence.clamp(-HEARD_CLIP, HEARD_CLIP))
            .sum::<f64>()
            / gap.len() as f64;
        // what the song would show there: presence follows its amplitude
        let expected = mu * 10f64.powf((level - run_level).min(0.0) / 20.0);
        let shape = (self.shape_z)(t_a, t_b);
        if debug_enabled() {
            eprintln!(
                "heard: gap {t_a:.2}-{t_b:.2} s ({} windows, mean presence {gap_mean:.2}, expected {expected:.2}) vs run mean {mu:.2}, level {level:.1} vs {run_level:.1} dB, shape z {shape:.2}",
                gap.len()
            );
        }
        (expected - gap_mean) * (gap.len() as f64).sqrt() >= HEARD_ABSENCE_Z
            && shape < HEARD_SHAPE_Z
    }
}

/// The part of the recording where the song is heard.
///
/// Each window's on-line presence is about 0 (null standard deviations)
/// where the song is absent and some level `mu` where it plays. The run of
/// windows with the largest mean-shift statistic `S^2 / n` (`S`: the sum of
/// presence over the run, clipped against single loud windows) estimates
/// both the run and `mu` at once; its edges sit where the evidence crosses
/// `mu / 2`, so talk before the music neither joins the run nor drags its
/// start. A part of the physical overlap left out of the run is only
/// believed silent when its presence falls short of what the song would
/// give there by enough to show it - the run's `mu`, scaled down where the
/// song itself is quieter (a quiet passage under noise is still played) -
/// and the song's spectral shape does not follow the line there
/// (`shape_z`: recording times to a z-score, see [`shape_presence`]);
/// otherwise that end snaps to the physical overlap.
pub(super) fn heard_span(
    fine: &FineOutcome,
    line: &Line,
    recording_dur: f64,
    song_dur: f64,
    shape_z: &dyn Fn(f64, f64) -> f64,
) -> HeardSpan {
    let phys_start = line.dance_at(0.0).max(0.0);
    let phys_end = line.dance_at(song_dur).min(recording_dur);
    let physical = HeardSpan {
        start: phys_start,
        end: phys_end,
    };
    let w = &fine.windows;
    if w.is_empty() {
        return physical;
    }
    let run = strongest_presence_run(w);
    let (first, last) = (run.first, run.last);
    let test = AbsenceTest::new(w, &run, shape_z);
    let half = 0.5 * fine.hop_s;
    let mut start = (w[first].t_s - half).max(phys_start);
    let mut end = (w[last].t_s + half).min(phys_end);
    // Where the song itself starts or ends inside the recording, the music
    // is there up to that point: a quiet intro or outro has few clear
    // windows, so those ends snap from further.
    let start_snap = if line.dance_at(0.0) > 0.0 { 1.5 } else { 0.0 };
    let end_snap = if line.dance_at(song_dur) < recording_dur {
        12.0
    } else {
        0.0
    };
    if start - phys_start < start_snap || !test.absent(&w[..first], phys_start, start) {
        start = phys_start;
    }
    if phys_end - end < end_snap || !test.absent(&w[last + 1..], end, phys_end) {
        end = phys_end;
    }
    if end <= start {
        return physical;
    }
    HeardSpan { start, end }
}

/// Spectral-shape evidence that the song plays over recording times
/// `t_a..t_b` on `line`: the mean per-frame shape similarity there, against
/// the same with the song displaced by several seconds either way (z-score).
pub(super) fn shape_presence(
    recording: &crate::dsp::spectral::SpectralShape,
    song: &crate::dsp::spectral::SpectralShape,
    frame_rate: f64,
    line: &Line,
    t_a: f64,
    t_b: f64,
) -> f64 {
    let nb = recording.n_bands;
    if nb == 0 || song.n_bands != nb || song.frames < 2 {
        return 0.0;
    }
    let f_a = (t_a * frame_rate).ceil().max(0.0) as usize;
    let f_b = ((t_b * frame_rate).floor().max(0.0) as usize).min(recording.frames);
    if f_b <= f_a + 10 {
        return 0.0;
    }
    let mean_at = |shift_s: f64| -> Option<f64> {
        let (mut total, mut n) = (0f64, 0usize);
        for t in f_a..f_b {
            let x = (line.song_at(t as f64 / frame_rate) + shift_s) * frame_rate;
            if let Some(dot) = crate::dsp::spectral::frame_similarity(recording, t, song, x) {
                total += f64::from(dot);
                n += 1;
            }
        }
        (n * 2 > f_b - f_a).then(|| total / n as f64)
    };
    let Some(on) = mean_at(0.0) else {
        return 0.0;
    };
    let nulls: Vec<f64> = (0..12)
        .flat_map(|k| {
            let d = 2.0 + 1.5 * k as f64;
            [d, -d]
        })
        .filter_map(mean_at)
        .collect();
    if nulls.len() < 4 {
        return 0.0;
    }
    let mean = nulls.iter().sum::<f64>() / nulls.len() as f64;
    let sd = (nulls.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>()
        / (nulls.len() - 1) as f64)
        .sqrt()
        .max(1e-9);
    (on - mean) / sd
}
