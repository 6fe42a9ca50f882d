//! A class recording with three plays of the demo song: a play, a stop and
//! talk-free pause, a restart from the same spot, and a hard cut to another
//! part of the song (as in a dance edit).

use crate::align::{align_signals, AlignOptions, Segment};
use crate::cancel::CancelToken;
use crate::dsp::interp::SincInterpolator;
use crate::test_signal::noise;

const FS: u32 = 8000;

/// The demo song (mono), low-passed and resampled to [`FS`].
fn song() -> Vec<f32> {
    let s = crate::demo::song::compose(5);
    let sr = f64::from(crate::demo::song::SAMPLE_RATE);
    let mono: Vec<f32> = s
        .left
        .iter()
        .zip(&s.right)
        .map(|(l, r)| 0.5 * (l + r))
        .collect();
    // a 6-tap moving average keeps little above 4 kHz before the decimation
    let smooth: Vec<f32> = (0..mono.len())
        .map(|i| mono[i.saturating_sub(5)..=i].iter().sum::<f32>() / 6.0)
        .collect();
    let interp = SincInterpolator::new();
    let n = (smooth.len() as f64 * f64::from(FS) / sr) as usize - 8;
    (0..n)
        .map(|i| interp.at(&smooth, i as f64 * sr / f64::from(FS)))
        .collect()
}

/// One play: song seconds `from..to` heard from recording second `at`.
struct PlayAt {
    at: f64,
    from: f64,
    to: f64,
}

/// The plays over room noise, with one echo (12 ms, -6 dB).
fn record(song: &[f32], plays: &[PlayAt], total_s: f64) -> Vec<f32> {
    record_at_rate(song, plays, total_s, 1.0)
}

/// [`record`] on a clock running `rate` recording seconds per song second
/// (a phone's drift): play `p` heard at recording time
/// `p.at + rate * (song_time - p.from)`.
fn record_at_rate(song: &[f32], plays: &[PlayAt], total_s: f64, rate: f64) -> Vec<f32> {
    let fs = f64::from(FS);
    let mut rec: Vec<f32> = noise((total_s * fs) as usize, 11)
        .into_iter()
        .map(|v| 0.02 * v)
        .collect();
    let interp = SincInterpolator::new();
    for p in plays {
        let at = (p.at * fs).round() as usize;
        let len = ((p.to - p.from) * rate * fs) as usize;
        for k in 0..len {
            let pos = p.from * fs + k as f64 / rate;
            // at the song's own rate, the song's samples as they are
            let v = if rate == 1.0 {
                song[pos.round() as usize]
            } else {
                interp.at(song, pos)
            };
            rec[at + k] += v;
            if let Some(e) = rec.get_mut(at + k + 96) {
                *e += 0.5 * v;
            }
        }
    }
    rec
}

fn segments(rec: &[f32], song: &[f32]) -> Vec<Segment> {
    let opts = AlignOptions {
        beats: false,
        ..AlignOptions::default()
    };
    let result = align_signals(rec, song, FS, &opts, &CancelToken::new(), &mut |_, _| {})
        .expect("the recording plays the song");
    result.segments
}

/// A play, a restart from the same spot after a pause, then a hard cut to
/// another part: three segments, each placing the song within a
/// millisecond at its middle, starting where its play starts (the cut to
/// 10 ms, the restart to 50 ms) and only the third marked as a cut.
#[test]
fn a_restart_and_a_cut_give_three_segments() {
    let song = song();
    let plays = [
        PlayAt {
            at: 2.0,
            from: 4.0,
            to: 18.0,
        },
        PlayAt {
            at: 19.0,
            from: 4.0,
            to: 16.0,
        },
        PlayAt {
            at: 31.0,
            from: 22.0,
            to: 34.0,
        },
    ];
    let rec = record(&song, &plays, 45.0);
    let found = segments(&rec, &song);
    assert_eq!(found.len(), 3, "segments: {found:?}");
    for (p, s) in plays.iter().zip(&found) {
        let offset = p.at - p.from;
        assert!(
            (s.offset_s - offset).abs() < 1e-3,
            "play at {} s: offset {} s, want {offset} s ({found:?})",
            p.at,
            s.offset_s
        );
        assert!((s.rate - 1.0).abs() < 1e-4, "rate {}", s.rate);
    }
    assert!((found[0].dance_start_s - 2.0).abs() < 0.25, "{found:?}");
    assert!((found[1].dance_start_s - 19.0).abs() < 0.05, "{found:?}");
    assert!((found[2].dance_start_s - 31.0).abs() < 0.01, "{found:?}");
    assert!((found[1].dance_end_s - 31.0).abs() < 0.01, "{found:?}");
    assert!((found[0].dance_end_s - 16.0).abs() < 0.5, "{found:?}");
    let cuts: Vec<bool> = found.iter().map(|s| s.cut_before).collect();
    assert_eq!(cuts, [false, false, true]);
}

/// One play: one segment, today's answer (same offset, rate, span).
#[test]
fn one_play_gives_one_segment_equal_to_the_answer() {
    let song = song();
    let rec = record(
        &song,
        &[PlayAt {
            at: 3.0,
            from: 2.0,
            to: 30.0,
        }],
        34.0,
    );
    let opts = AlignOptions {
        beats: false,
        ..AlignOptions::default()
    };
    let r = align_signals(&rec, &song, FS, &opts, &CancelToken::new(), &mut |_, _| {})
        .expect("the recording plays the song");
    assert_eq!(r.segments.len(), 1, "{:?}", r.segments);
    let s = &r.segments[0];
    assert_eq!(s.offset_s, r.offset_s);
    assert_eq!(s.rate, r.rate);
    assert_eq!(s.dance_start_s, r.overlap.dance_start_s);
    assert_eq!(s.dance_end_s, r.overlap.dance_end_s);
    assert!((r.offset_s - 1.0).abs() < 1e-3, "offset {}", r.offset_s);
}

/// A dance edit on a drifting phone clock (100 ppm): a part of the song,
/// a hard cut back to an earlier part (out of order), a stop, then the
/// first part again from the same spot. Each play placed within a
/// millisecond at its middle, the shared rate kept, the second play (only)
/// starting at a cut.
#[test]
fn an_edit_out_of_order_and_a_repeat_on_a_drifting_clock() {
    let song = song();
    let rate = 1.0001;
    let plays = [
        PlayAt {
            at: 2.0,
            from: 20.0,
            to: 32.0,
        },
        PlayAt {
            at: 2.0 + 12.0 * rate,
            from: 4.0,
            to: 16.0,
        },
        // after a 6-s stop (at 30 s it would continue the second play's
        // line: one play with a silent gap)
        PlayAt {
            at: 32.0,
            from: 20.0,
            to: 32.0,
        },
    ];
    let rec = record_at_rate(&song, &plays, 46.0, rate);
    let found = segments(&rec, &song);
    assert_eq!(found.len(), 3, "segments: {found:?}");
    for (p, s) in plays.iter().zip(&found) {
        let mid = 0.5 * (s.dance_start_s + s.dance_end_s);
        let want = mid - (p.from + (mid - p.at) / rate);
        assert!(
            (s.offset_s - want).abs() < 1e-3,
            "play at {} s: offset {} s, want {want} s ({found:?})",
            p.at,
            s.offset_s
        );
        assert!((s.rate - rate).abs() < 2e-5, "rate {}", s.rate);
    }
    // The edges are not checked here: on this drifting clock they are off
    // by more than the targets (at f00aa38 the cut 140 ms late, the two
    // starts after silence 1.3-1.4 s early; BENCHMARKS.md, issue 18); the
    // first test checks them at the song's own rate.
    let cuts: Vec<bool> = found.iter().map(|s| s.cut_before).collect();
    assert_eq!(cuts, [false, true, false]);
}

/// A refused recording answered by its plays: the most coherent play is
/// the answer, unsure, and its confidence stays under the sure threshold
/// even when that play alone scored higher (the job store and the UI read
/// the confidence as well as the verdict).
#[test]
fn plays_of_a_refused_recording_make_an_unsure_answer() {
    use super::{accept_plays, UNSURE_CONFIDENCE_MAX};
    use crate::align::verdict::SURE_CONFIDENCE;
    use crate::align::{AlignResult, Verdict};
    let old = r#"{"offset_s":7.0,"rate":1.0,"confidence":0.2,"candidates":[],"pitch_kept":false,
        "overlap":{"dance_start_s":0,"dance_end_s":40,"bgm_start_s":0,"bgm_end_s":40},
        "bpm":null,"beats_s":[],"downbeats_s":[],
        "timings_ms":{"decode":1,"features":1,"search":1,"refine":1}}"#;
    let mut result: AlignResult = serde_json::from_str(old).expect("a result");
    let play = |start: f64, end: f64, offset: f64, confidence: f64| Segment {
        dance_start_s: start,
        dance_end_s: end,
        offset_s: offset,
        rate: 1.0,
        confidence,
        cut_before: false,
    };
    let plays = vec![play(2.0, 16.0, 2.0, 0.6), play(18.0, 38.0, 18.0, 0.97)];
    accept_plays(&mut result, plays.clone());
    assert_eq!(result.verdict, Verdict::Unsure);
    assert!(result.confidence < SURE_CONFIDENCE, "{}", result.confidence);
    assert_eq!(result.confidence, UNSURE_CONFIDENCE_MAX);
    assert_eq!(result.offset_s, 18.0);
    assert_eq!(
        (result.overlap.dance_start_s, result.overlap.dance_end_s),
        (18.0, 38.0)
    );
    assert_eq!(
        (result.overlap.bgm_start_s, result.overlap.bgm_end_s),
        (0.0, 20.0)
    );
    assert_eq!(result.segments, plays);
}

/// The signals of a generated recording as the segments search reads them.
fn run_of<'a>(
    rec: &'a [f32],
    song: &'a [f32],
    cancel: &'a CancelToken,
) -> crate::align::pipeline::Run<'a> {
    crate::align::pipeline::Run {
        recording: rec,
        song,
        fs: f64::from(FS),
        threads: 1,
        cancel,
        release: &|| {},
    }
}

/// Recording times `t_a..t_b` of `rec` aligned on their own, as the
/// pipeline aligns a stretch; `None` where the song is not found there.
fn align_part(
    rec: &[f32],
    song: &[f32],
    cancel: &CancelToken,
    (t_a, t_b): (f64, f64),
) -> Option<crate::align::AlignResult> {
    let opts = AlignOptions {
        beats: false,
        ..AlignOptions::default()
    };
    let a = (t_a * f64::from(FS)) as usize;
    let b = ((t_b * f64::from(FS)) as usize).min(rec.len());
    align_signals(&rec[a..b], song, FS, &opts, cancel, &mut |_, _| {}).ok()
}

/// A play on `line` over `start_s..end_s` with coherence `z`, not at a cut.
fn play_on(line: super::Line, start_s: f64, end_s: f64, z: f64, on_main: bool) -> super::Play {
    super::Play {
        line,
        start_s,
        end_s,
        z,
        cut_before: false,
        on_main,
        in_doubt: false,
        summed_lag_margin: None,
    }
}

/// The line of a play heard from recording second `at`, song second `from`.
fn line_of(at: f64, from: f64) -> super::Line {
    super::Line {
        t_ref: at,
        sigma: from,
        rate: 1.0,
    }
}

/// The plays as the scan estimates them (`estimates`), their edges placed
/// in `rec`.
fn placed(rec: &[f32], song: &[f32], mut estimates: Vec<super::Play>) -> Vec<super::Play> {
    let cancel = CancelToken::new();
    let run = run_of(rec, song, &cancel);
    super::place_edges(&run, &mut estimates);
    estimates
}

/// Play `p` as the scan estimates it: on its line, over `start_s..end_s`.
fn estimated(p: &PlayAt, start_s: f64, end_s: f64) -> super::Play {
    play_on(line_of(p.at, p.from), start_s, end_s, 20.0, false)
}

/// `rec` with talk over recording times `from..to` (s): syllables of noise
/// at `level`, 0.2 s on and 0.1 s off.
fn talk_over(rec: &mut [f32], (from, to): (f64, f64), level: f32, seed: u64) {
    let fs = f64::from(FS);
    let talk = noise(rec.len(), seed);
    for (i, v) in rec.iter_mut().enumerate() {
        let t = i as f64 / fs;
        if t > from && t < to && (t * 10.0) as usize % 3 != 2 {
            *v += level * talk[i];
        }
    }
}

/// A play that today's line explains is placed on today's line as the fine
/// stage fits it over the play, not on the answer's line as fitted over
/// the whole overlap: that line, pulled by the other plays it spans, can be
/// tens of milliseconds off here (plays/ply003: 68 ms, the last play missed).
#[test]
fn a_play_explained_by_todays_line_keeps_the_line_fitted_on_it() {
    use super::{explained_by_main, TodaysLine};
    let song = song();
    let rec = record(
        &song,
        &[PlayAt {
            at: 3.0,
            from: 4.0,
            to: 24.0,
        }],
        26.0,
    );
    let cancel = CancelToken::new();
    let run = run_of(&rec, &song, &cancel);
    let truth = line_of(3.0, 4.0);
    let play = play_on(truth, 3.0, 23.0, 20.0, false);
    // today's answer 55 ms off this play (beyond one line's tolerance)
    let main = line_of(3.055, 4.0);
    let out = explained_by_main(&run, vec![play], &main, TodaysLine::Waveform).expect("measured");
    assert_eq!(out.len(), 1);
    assert!(out[0].on_main, "today's line explains the play");
    let t_mid = 13.0;
    let err_ms = (out[0].line.song_at(t_mid) - truth.song_at(t_mid)).abs() * 1e3;
    assert!(err_ms < 1.0, "the play placed {err_ms:.2} ms off");
}

/// A restart whose scan run (and so its heard span) begins 5 s late: its
/// start is searched back (up to 8 s, not past the previous play) and found
/// within 20 ms. A play from the recording's first sample is searched from
/// there too, and may start at 0 (the song's first notes here are weak).
/// (Read from one GCC peak per window against half its typical value, the
/// late restart's start landed 1.05 s early.)
#[test]
fn a_start_heard_late_is_searched_back_and_a_first_play_may_start_at_0() {
    let song = song();
    let plays = [
        PlayAt {
            at: 0.0,
            from: 4.0,
            to: 16.0,
        },
        PlayAt {
            at: 30.0,
            from: 4.0,
            to: 22.0,
        },
    ];
    let rec = record(&song, &plays, 50.0);
    let found = placed(
        &rec,
        &song,
        vec![
            estimated(&plays[0], 0.0, 12.0),
            estimated(&plays[1], 35.0, 46.0),
        ],
    );
    assert!(found[0].start_s.abs() < 0.25, "start {}", found[0].start_s);
    let edges = [found[0].end_s, found[1].start_s, found[1].end_s];
    for (got, want) in edges.iter().zip([12.0, 30.0, 48.0]) {
        assert!((got - want).abs() < 0.02, "edges {edges:?}");
    }
    assert!(!found[1].cut_before);
}

/// A play of the song from its first sample, 2 s into the recording (room
/// noise before), heard from 3 s late: it starts where the song does on
/// its line, not at the recording's start (a frame before the song's first
/// sample has no song to test: the play cannot reach there).
#[test]
fn a_play_from_the_songs_first_sample_starts_where_the_song_does() {
    let song = song();
    let plays = [PlayAt {
        at: 2.0,
        from: 0.0,
        to: 14.0,
    }];
    let rec = record(&song, &plays, 30.0);
    let line = line_of(2.0, 0.0);
    let found = placed(&rec, &song, vec![play_on(line, 5.0, 16.0, 20.0, false)]);
    assert!(
        (found[0].start_s - 2.0).abs() < 0.02,
        "start {}",
        found[0].start_s
    );
}

/// A stop and a quick restart whose scan spans meet (heard 1 s apart): not
/// a cut, which would give the 4 s between them to one play; each play's
/// own edges, to 50 ms.
#[test]
fn plays_heard_close_together_keep_the_stop_between_them() {
    let song = song();
    let plays = [
        PlayAt {
            at: 2.0,
            from: 4.0,
            to: 16.0,
        },
        PlayAt {
            at: 18.0,
            from: 4.0,
            to: 20.0,
        },
    ];
    let rec = record(&song, &plays, 40.0);
    let found = placed(
        &rec,
        &song,
        vec![
            play_on(line_of(2.0, 4.0), 2.0, 15.5, 20.0, false),
            play_on(line_of(18.0, 4.0), 16.5, 34.0, 20.0, false),
        ],
    );
    let edges = [found[0].end_s, found[1].start_s];
    assert!((edges[0] - 14.0).abs() < 0.05, "edges {edges:?}");
    assert!((edges[1] - 18.0).abs() < 0.05, "edges {edges:?}");
    assert!(!found[1].cut_before);
}

/// A restart talked over, the volume turned up after its first seconds:
/// talk (noise bursts 12 dB over the room) from the stop until 2 s into
/// the play, the song 4.4 dB down for 3 s. Heard from 4 s late, the play's
/// start is placed within 50 ms (8 ms late here): each frame weighs how
/// loud the song is there, per band, tested at half the level the play
/// shows on its line; a frame louder than the play's weighs less. (Tested
/// at the play's full level, this start lands 208 ms late.)
#[test]
fn a_talked_over_quiet_restart_is_placed_within_50_ms() {
    let song = song();
    let fs = f64::from(FS);
    let (stop, start, loud) = (14.0, 20.0, 23.0);
    let first = PlayAt {
        at: 2.0,
        from: 4.0,
        to: 16.0,
    };
    let mut rec = record(&song, &[first], 45.0);
    let (a, b) = ((start * fs) as usize, (45.0 * fs) as usize);
    let from = (4.0 * fs) as usize;
    for (k, v) in rec[a..b].iter_mut().enumerate() {
        let level = if k < ((loud - start) * fs) as usize {
            0.6
        } else {
            1.0
        };
        *v += level * song[from + k];
    }
    talk_over(&mut rec, (stop, start + 2.0), 0.08, 29);
    let play =
        |at: f64, start_s: f64, end_s: f64| play_on(line_of(at, 4.0), start_s, end_s, 20.0, false);
    let found = placed(
        &rec,
        &song,
        vec![play(2.0, 2.0, 14.0), play(start, start + 4.0, 44.0)],
    );
    assert!(
        (found[1].start_s - start).abs() < 0.05,
        "start {} (want {start})",
        found[1].start_s
    );
    assert!(
        (found[0].end_s - stop).abs() < 0.05,
        "end {}",
        found[0].end_s
    );
}

/// Two plays in a 55-s recording, 14 s of room noise between them: song
/// seconds 4-20 from 3 s, 10-28 from 33 s.
fn two_plays_apart() -> [PlayAt; 2] {
    [
        PlayAt {
            at: 3.0,
            from: 4.0,
            to: 20.0,
        },
        PlayAt {
            at: 33.0,
            from: 10.0,
            to: 28.0,
        },
    ]
}

/// The stretches between plays, aligned on their own: a play the scan
/// missed (here: not given) is found in the stretch before the known one,
/// on its own line within a millisecond; the stretch of room noise between
/// two known plays gives none.
#[test]
fn a_stretch_between_plays_is_searched_for_a_play_and_noise_gives_none() {
    use super::stretches::fill_gaps;
    use crate::align::verdict::MIN_PLAY_Z_BESIDE_SURE;
    let song = song();
    let plays = two_plays_apart();
    let rec = record(&song, &plays, 55.0);
    let cancel = CancelToken::new();
    let run = run_of(&rec, &song, &cancel);
    let align_stretch = |t_a: f64, t_b: f64| Ok(align_part(&rec, &song, &cancel, (t_a, t_b)));
    let known = |p: &PlayAt| {
        play_on(
            line_of(p.at, p.from),
            p.at,
            p.at + p.to - p.from,
            20.0,
            true,
        )
    };
    let found = fill_gaps(
        &run,
        &align_stretch,
        &[known(&plays[1])],
        MIN_PLAY_Z_BESIDE_SURE,
        &mut Vec::new(),
    )
    .expect("searched");
    assert_eq!(found.len(), 1, "found {} plays", found.len());
    let t_mid = 11.0;
    let want = line_of(plays[0].at, plays[0].from);
    let err_ms = (found[0].line.song_at(t_mid) - want.song_at(t_mid)).abs() * 1e3;
    assert!(err_ms < 1.0, "the missed play placed {err_ms:.2} ms off");
    assert!(
        (found[0].start_s - 3.0).abs() < 1.0,
        "start {}",
        found[0].start_s
    );
    let none = fill_gaps(
        &run,
        &align_stretch,
        &[known(&plays[0]), known(&plays[1])],
        MIN_PLAY_Z_BESIDE_SURE,
        &mut Vec::new(),
    )
    .expect("searched");
    assert!(
        none.is_empty(),
        "noise between the plays gave {} plays",
        none.len()
    );
}

/// Two plays that meet on lines 148 ms apart are one play, on the more
/// coherent one's line (no restart nor edit is that close); lines 0.3 s
/// apart stay two plays.
#[test]
fn plays_that_meet_on_lines_closer_than_a_quarter_second_are_one() {
    use super::merge_same_lines;
    let play = |at: f64, from: f64, start_s: f64, end_s: f64, z: f64| {
        play_on(line_of(at, from), start_s, end_s, z, false)
    };
    let merged = merge_same_lines(vec![
        play(46.148, 10.0, 46.0, 54.0, 24.0),
        play(50.0, 14.0, 50.0, 97.0, 57.0),
    ]);
    assert_eq!(merged.len(), 1, "{} plays", merged.len());
    let want = line_of(50.0, 14.0);
    assert!((merged[0].line.song_at(70.0) - want.song_at(70.0)).abs() < 1e-9);
    assert_eq!((merged[0].start_s, merged[0].end_s), (46.0, 97.0));
    let apart = merge_same_lines(vec![
        play(46.3, 10.0, 46.0, 54.0, 24.0),
        play(50.0, 14.0, 54.0, 97.0, 57.0),
    ]);
    assert_eq!(apart.len(), 2);
}

/// A quiet play heard beside a sure one (the song sure to be in the
/// recording): found on the shared clock and placed. At the single-play
/// threshold it is missed: its run measures z 7.9, and the stretch around
/// it, aligned alone, is refused.
#[test]
fn a_quiet_play_beside_a_sure_one_is_found() {
    let song = song();
    let loud = [PlayAt {
        at: 2.0,
        from: 4.0,
        to: 34.0,
    }];
    let quiet = PlayAt {
        at: 42.0,
        from: 10.0,
        to: 32.0,
    };
    let mut rec = record(&song, &loud, 70.0);
    // the quiet play 20 dB under the loud one, over the same room noise
    for (r, m) in rec.iter_mut().zip(&play_alone(&song, &quiet, 70.0)) {
        *r += 0.1 * m;
    }
    let found = segments(&rec, &song);
    assert_eq!(found.len(), 2, "segments: {found:?}");
    let q = &found[1];
    assert!((q.offset_s - 32.0).abs() < 1e-3, "offset {}", q.offset_s);
    assert!(
        (q.dance_start_s - 42.0).abs() < 0.1,
        "start {}",
        q.dance_start_s
    );
    assert!((q.dance_end_s - 64.0).abs() < 0.1, "end {}", q.dance_end_s);
}

/// A look-alike section that won 1.5 s, or 6.5 s, inside a play (plays
/// 7373 ply001: a false segment there, and the play split in two) is
/// dropped, and the play's two pieces are one play again, its edges where
/// it starts and ends.
#[test]
fn a_piece_seconds_long_inside_a_play_is_dropped_and_the_play_joined() {
    use super::drop_short_pieces;
    let song = song();
    let heard = [
        PlayAt {
            at: 2.0,
            from: 4.0,
            to: 34.0,
        },
        PlayAt {
            at: 40.0,
            from: 10.0,
            to: 30.0,
        },
    ];
    let rec = record(&song, &heard, 70.0);
    let cancel = CancelToken::new();
    let run = run_of(&rec, &song, &cancel);
    let (first, second) = (line_of(2.0, 4.0), line_of(40.0, 10.0));
    for piece_end in [16.5, 21.5] {
        let plays = vec![
            play_on(first, 2.0, 15.0, 20.0, true),
            play_on(line_of(15.0, 30.0), 15.0, piece_end, 12.0, false),
            play_on(first, piece_end, 32.0, 20.0, false),
            play_on(second, 40.0, 60.0, 20.0, false),
        ];
        let kept = drop_short_pieces(&run, plays);
        let spans: Vec<(f64, f64, f64)> = kept
            .iter()
            .map(|p| (p.start_s, p.end_s, p.line.dance_at(0.0)))
            .collect();
        assert_eq!(kept.len(), 2, "piece to {piece_end}: plays {spans:?}");
        let want = [
            (2.0, 32.0, first.dance_at(0.0)),
            (40.0, 60.0, second.dance_at(0.0)),
        ];
        for ((a, b, at0), (wa, wb, w0)) in spans.iter().zip(want) {
            assert!((at0 - w0).abs() < 1e-6, "line {at0} for {w0}: {spans:?}");
            assert!(
                (a - wa).abs() < 0.05 && (b - wb).abs() < 0.05,
                "span {a}-{b}: {spans:?}"
            );
        }
    }
}

/// A restart inside a pause of the song (the song digitally silent from 3.6
/// to 4.4 s, the play restarting from 4.0 s at 20 s): the recording holds
/// room noise alone either side of the start, so every start from 19.6 to
/// 20.4 s is as likely as the next. The likeliest split is the first of
/// them (0.4 s early); the play's final start is their middle.
#[test]
fn a_restart_inside_a_pause_of_the_song_starts_amid_the_pause() {
    use super::edges::centre_starts;
    use super::place_edges;
    let mut song = song();
    let fs = f64::from(FS);
    for v in &mut song[(3.6 * fs) as usize..(4.4 * fs) as usize] {
        *v = 0.0;
    }
    let plays = [
        PlayAt {
            at: 2.0,
            from: 6.0,
            to: 16.0,
        },
        PlayAt {
            at: 20.0,
            from: 4.0,
            to: 20.0,
        },
    ];
    let rec = record(&song, &plays, 40.0);
    let cancel = CancelToken::new();
    let run = run_of(&rec, &song, &cancel);
    let mut found = vec![
        estimated(&plays[0], 2.0, 12.0),
        estimated(&plays[1], 22.0, 36.0),
    ];
    place_edges(&run, &mut found);
    let likeliest = found[1].start_s;
    centre_starts(&run, &mut found);
    assert!(
        (found[1].start_s - 20.0).abs() < 0.1,
        "start {} (the likeliest split: {likeliest})",
        found[1].start_s
    );
    assert!(
        (found[0].start_s - 2.0).abs() < 0.05,
        "{}",
        found[0].start_s
    );
}

/// A cut where neither song sounds: the first play's song falls silent
/// 0.4 s before the cut and the next one's stays silent 0.4 s after it.
/// Every split of that silence is as likely as the next; the cut is placed
/// amid it (the likeliest split, the first of the equal ones, was 0.37 s early).
#[test]
fn a_cut_inside_a_silence_of_both_songs_is_placed_amid_it() {
    let mut song = song();
    let fs = f64::from(FS);
    for (from, to) in [(3.6, 4.4), (23.6, 24.4)] {
        for v in &mut song[(from * fs) as usize..(to * fs) as usize] {
            *v = 0.0;
        }
    }
    let plays = cut_at_20_s();
    let rec = record(&song, &plays, 40.0);
    let cut = placed_cut(
        &rec,
        &song,
        [
            estimated(&plays[0], 2.0, 20.3),
            estimated(&plays[1], 17.0, 36.0),
        ],
    );
    assert!((cut - 20.0).abs() < 0.1, "cut at {cut} (truth 20.0)");
}

/// Two plays meeting at a cut 20 s into a 40-s recording: song seconds
/// 6-24 from 2 s, then song seconds 4-20.
fn cut_at_20_s() -> [PlayAt; 2] {
    [
        PlayAt {
            at: 2.0,
            from: 6.0,
            to: 24.0,
        },
        PlayAt {
            at: 20.0,
            from: 4.0,
            to: 20.0,
        },
    ]
}

/// Where the edges placed in `rec` from two plays' `estimates` put the cut
/// between them (s), which must be a cut.
fn placed_cut(rec: &[f32], song: &[f32], estimates: [super::Play; 2]) -> f64 {
    let found = placed(rec, song, estimates.to_vec());
    assert!(found[1].cut_before, "{found:?}");
    found[1].start_s
}

/// Two plays in the stretch before a known one, the stretch's answer
/// holding only the first (as a noisy stretch's answer does where the
/// second play's run is refused inside it): the stretch that play leaves
/// beside it is aligned in turn and gives the other. Each placed within a
/// millisecond.
#[test]
fn the_stretch_a_found_play_leaves_is_searched_in_turn() {
    use super::search_stretches;
    use crate::align::verdict::MIN_PLAY_Z_BESIDE_SURE;
    let song = song();
    let plays = [
        PlayAt {
            at: 2.0,
            from: 20.0,
            to: 34.0,
        },
        PlayAt {
            at: 19.0,
            from: 4.0,
            to: 18.0,
        },
        PlayAt {
            at: 40.0,
            from: 10.0,
            to: 28.0,
        },
    ];
    let rec = record(&song, &plays, 62.0);
    let cancel = CancelToken::new();
    let run = run_of(&rec, &song, &cancel);
    let align_stretch = |t_a: f64, t_b: f64| {
        Ok(
            align_part(&rec, &song, &cancel, (t_a, t_b)).map(|mut answer| {
                answer.segments.truncate(1);
                answer
            }),
        )
    };
    let known = play_on(line_of(40.0, 10.0), 40.0, 58.0, 20.0, true);
    let found = search_stretches(&run, &align_stretch, vec![known], MIN_PLAY_Z_BESIDE_SURE)
        .expect("searched");
    assert_placed(&plays, &found, 1.0);
}

/// Asserts that `found` holds `plays`, in order, each placing the song
/// within `max_ms` at its play's middle.
fn assert_placed(plays: &[PlayAt], found: &[super::Play], max_ms: f64) {
    let spans: Vec<(f64, f64)> = found.iter().map(|p| (p.start_s, p.end_s)).collect();
    assert_eq!(found.len(), plays.len(), "plays at {spans:?}");
    for (p, f) in plays.iter().zip(found) {
        let t_mid = p.at + 0.5 * (p.to - p.from);
        let want = line_of(p.at, p.from).song_at(t_mid);
        let err_ms = (f.line.song_at(t_mid) - want).abs() * 1e3;
        assert!(
            err_ms < max_ms,
            "play at {} s: {err_ms:.2} ms off ({spans:?})",
            p.at
        );
    }
}

/// `x` through `sections` first-order all-pass filters at coefficient `a`:
/// every band as loud as before, each delayed its own amount (a
/// loudspeaker's crossover and a room turn the phase of each band their own
/// way; eight sections at 0.9 delay 300 Hz by ~3 ms more than 3.6 kHz).
fn all_pass(x: &[f32], sections: usize, a: f32) -> Vec<f32> {
    let mut y = x.to_vec();
    for _ in 0..sections {
        let (mut x1, mut y1) = (0.0f32, 0.0f32);
        for v in y.iter_mut() {
            let out = -a * *v + x1 + a * y1;
            x1 = *v;
            y1 = out;
            *v = out;
        }
    }
    y
}

/// A restart heard through a path that delays each band its own way (an
/// all-pass chain: the song's spectrum kept, its phase turned band by band),
/// talked over at its start: its start and the first play's end are placed
/// as through a flat path, within 50 ms. The ratio reads each band of the
/// song at the phase the play shows there, not through one delay for all.
#[test]
fn a_restart_through_a_path_turning_each_bands_phase_is_placed_within_50_ms() {
    let song = song();
    let plays = [
        PlayAt {
            at: 2.0,
            from: 4.0,
            to: 16.0,
        },
        PlayAt {
            at: 20.0,
            from: 4.0,
            to: 30.0,
        },
    ];
    let mut rec = all_pass(&record(&song, &plays, 50.0), 8, 0.9);
    // over the stop and the restart's first seconds
    talk_over(&mut rec, (14.5, 23.0), 0.2, 31);
    let found = placed(
        &rec,
        &song,
        vec![
            estimated(&plays[0], 2.0, 12.0),
            estimated(&plays[1], 24.0, 44.0),
        ],
    );
    let edges = [found[0].end_s, found[1].start_s];
    for (got, want) in edges.iter().zip([14.0, 20.0]) {
        assert!((got - want).abs() < 0.05, "edges {edges:?} (want 14, 20)");
    }
}

/// A restart whose first 8 s are heard through another path than the
/// minute after them (the phone carried past the loudspeaker, dancers
/// walking into place in front of it: here an all-pass chain, each band
/// delayed its own way), talked over: its start is read against the play's
/// first seconds, not against a minute of it, and placed within 100 ms (a
/// model read from 60 s of the play: 4.1 s late).
#[test]
fn a_restart_heard_through_another_path_at_first_is_placed_within_100_ms() {
    let once = song();
    let song: Vec<f32> = once.iter().chain(&once).chain(&once).copied().collect();
    let fs = f64::from(FS);
    let song_s = song.len() as f64 / fs;
    let plays = [
        PlayAt {
            at: 2.0,
            from: 4.0,
            to: 16.0,
        },
        PlayAt {
            at: 20.0,
            from: 4.0,
            to: song_s - 1.0,
        },
    ];
    let flat = record(&song, &plays, 20.0 + song_s);
    let turned = all_pass(&flat, 8, 0.9);
    let (a, b) = ((18.0 * fs) as usize, (28.0 * fs) as usize);
    let mut rec = flat;
    rec[a..b].copy_from_slice(&turned[a..b]);
    talk_over(&mut rec, (14.5, 23.0), 0.2, 31);
    let end = 10.0 + song_s;
    let found = placed(
        &rec,
        &song,
        vec![
            estimated(&plays[0], 2.0, 12.0),
            estimated(&plays[1], 24.0, end),
        ],
    );
    assert!(
        (found[1].start_s - 20.0).abs() < 0.1,
        "start {} (want 20)",
        found[1].start_s
    );
}

/// The demo song twice, the second time with a quieter layer over it (a
/// play of the first half reaches z 13 on the second half's line, 48 on
/// its own); and the length of a half (s).
fn song_with_a_look_alike_half() -> (Vec<f32>, f64) {
    let once = song();
    let rms = (once.iter().map(|v| v * v).sum::<f32>() / once.len() as f32).sqrt();
    let layer = noise(once.len(), 5);
    let song: Vec<f32> = once
        .iter()
        .copied()
        .chain(once.iter().zip(&layer).map(|(s, n)| s + 0.3 * rms * n))
        .collect();
    (song, once.len() as f64 / f64::from(FS))
}

/// An unsure answer's own play on a look-alike line: today's line put the
/// play, heard from the song's first half, on the second
/// ([`song_with_a_look_alike_half`]). Measured on the
/// play's own span, the candidate line the play is on takes it, and the
/// answer follows; on the right line already, the look-alike candidate
/// leaves it there.
#[test]
fn an_unsure_answers_play_moves_to_the_candidate_line_it_is_on() {
    use super::candidates::main_on_best_candidate;
    use super::{move_answer, segment_of};
    use crate::align::{AlignResult, Verdict};
    let (song, half_s) = song_with_a_look_alike_half();
    let heard = [
        PlayAt {
            at: 2.0,
            from: 4.0,
            to: 20.0,
        },
        PlayAt {
            at: 26.0,
            from: 10.0,
            to: 30.0,
        },
    ];
    let rec = record(&song, &heard, 50.0);
    let cancel = CancelToken::new();
    let run = run_of(&rec, &song, &cancel);
    let right = line_of(26.0, 10.0);
    let look_alike = line_of(26.0, 10.0 + half_s);
    let unsure_on = |own: &super::Line, other: &super::Line| -> AlignResult {
        let json = format!(
            r#"{{"offset_s":{own},"rate":1.0,"confidence":0.3,"verdict":"unsure",
            "candidates":[{{"offset_s":{own},"score":1.0}},{{"offset_s":{other},"score":0.9}}],
            "pitch_kept":false,
            "overlap":{{"dance_start_s":26,"dance_end_s":46,"bgm_start_s":0,"bgm_end_s":20}},
            "bpm":null,"beats_s":[],"downbeats_s":[],
            "timings_ms":{{"decode":1,"features":1,"search":1,"refine":1}}}}"#,
            own = own.dance_at(0.0),
            other = other.dance_at(0.0)
        );
        serde_json::from_str(&json).expect("a result")
    };
    let plays_on = |line: super::Line| {
        vec![
            play_on(line_of(2.0, 4.0), 2.0, 18.0, 20.0, false),
            play_on(line, 26.0, 46.0, 10.0, true),
        ]
    };
    // today's line on the look-alike: the play moves, the answer with it
    let mut result = unsure_on(&look_alike, &right);
    let mut plays = plays_on(look_alike);
    let moved = main_on_best_candidate(&run, &result, &mut plays).expect("measured");
    assert_eq!(moved, Some(1));
    let at0 = plays[1].line.dance_at(0.0);
    assert!((at0 - right.dance_at(0.0)).abs() < 1e-3, "line at {at0}");
    move_answer(&mut result, &segment_of(&plays[1], 1.0));
    assert!((result.offset_s - 16.0).abs() < 1e-3, "{}", result.offset_s);
    assert_eq!(result.verdict, Verdict::Unsure);
    let offsets: Vec<f64> = result.candidates.iter().map(|c| c.offset_s).collect();
    assert!((offsets[0] - 16.0).abs() < 1e-3, "{offsets:?}");
    assert_eq!(offsets[1], look_alike.dance_at(0.0), "{offsets:?}");
    // today's line right: the look-alike candidate does not take the play
    let result = unsure_on(&right, &look_alike);
    let mut plays = plays_on(right);
    let moved = main_on_best_candidate(&run, &result, &mut plays).expect("measured");
    assert_eq!(moved, None);
    assert_eq!(plays[1].line.dance_at(0.0), right.dance_at(0.0));
}

/// A run's own line on a look-alike section, the play's line beside it
/// measured less coherent (as a play heard weakly where the sections differ
/// measures): the difference signal, decisive over the run, hands the run to
/// the play's line. The other way round, a look-alike measured more coherent
/// does not take the run from the play's line (the difference prefers it).
#[test]
fn a_decisive_difference_hands_a_run_to_a_less_coherent_look_alike() {
    use super::confirm::{measure_piece, takes_over, Piece};
    use crate::align::fine::FineOutcome;
    let (song, half_s) = song_with_a_look_alike_half();
    let heard = [PlayAt {
        at: 4.0,
        from: 6.0,
        to: 26.0,
    }];
    let rec = record(&song, &heard, 30.0);
    let cancel = CancelToken::new();
    let run = run_of(&rec, &song, &cancel);
    let measure = |line: &super::Line| {
        measure_piece(&run, line, 4.0, 24.0)
            .expect("measured")
            .expect("a piece")
    };
    let right = measure(&line_of(4.0, 6.0));
    let look_alike = measure(&line_of(4.0, 6.0 + half_s));
    // the same measurement at another coherence
    let with_z = |p: &Piece, z: f64| Piece {
        fine: FineOutcome {
            z,
            ..p.fine.clone()
        },
        ..*p
    };
    let less = with_z(&right, look_alike.fine.z - 1.0);
    assert!(takes_over(&run, &look_alike, &less));
    let more = with_z(&look_alike, right.fine.z + 1.0);
    assert!(!takes_over(&run, &right, &more));
}

/// A restart from the spot the first play started at, placed on the
/// song's look-alike half ([`song_with_a_look_alike_half`]): it moves to the
/// line that starts it at the first play's spot, to the millisecond; so does
/// today's answer's play, and today's answer with it. A play that starts
/// elsewhere and is placed right stays where it is.
#[test]
fn a_restart_on_a_look_alike_moves_to_the_spot_another_play_started_at() {
    use super::left_todays_line;
    use super::same_spot::restarts_at_same_spot;
    let (song, half_s) = song_with_a_look_alike_half();
    let first = || PlayAt {
        at: 2.0,
        from: 4.0,
        to: 24.0,
    };
    let restart = PlayAt {
        at: 30.0,
        from: 4.3,
        to: 24.0,
    };
    let rec = record(&song, &[first(), restart], 52.0);
    let cancel = CancelToken::new();
    let run = run_of(&rec, &song, &cancel);
    let mut plays = vec![
        play_on(line_of(2.0, 4.0), 2.0, 22.0, 20.0, false),
        play_on(line_of(30.0, 4.3 + half_s), 30.0, 49.7, 20.0, false),
    ];
    assert!(restarts_at_same_spot(&run, &mut plays).expect("measured"));
    let right = line_of(30.0, 4.3);
    let off_ms = (plays[1].line.song_at(40.0) - right.song_at(40.0)) * 1e3;
    assert!(off_ms.abs() < 1.0, "restart {off_ms:.2} ms off its line");
    assert_eq!(plays[0].line.song_at(10.0), line_of(2.0, 4.0).song_at(10.0));
    assert_eq!(left_todays_line(&plays, &line_of(2.0, 4.0)), None);

    // today's answer on the look-alike
    let todays = line_of(30.0, 4.3 + half_s);
    let mut plays = vec![
        play_on(line_of(2.0, 4.0), 2.0, 22.0, 20.0, false),
        play_on(todays, 30.0, 49.7, 20.0, true),
    ];
    assert!(restarts_at_same_spot(&run, &mut plays).expect("measured"));
    let off_ms = (plays[1].line.song_at(40.0) - right.song_at(40.0)) * 1e3;
    assert!(
        off_ms.abs() < 1.0,
        "today's play {off_ms:.2} ms off its line"
    );
    assert!(plays[1].on_main);
    assert_eq!(left_todays_line(&plays, &todays), Some(1));

    let elsewhere = PlayAt {
        at: 30.0,
        from: 14.0,
        to: 34.0,
    };
    let rec = record(&song, &[first(), elsewhere], 52.0);
    let run = run_of(&rec, &song, &cancel);
    let mut plays = vec![
        play_on(line_of(2.0, 4.0), 2.0, 22.0, 20.0, false),
        play_on(line_of(30.0, 14.0), 30.0, 50.0, 20.0, false),
    ];
    assert!(!restarts_at_same_spot(&run, &mut plays).expect("measured"));
}

/// A stretch between plays answered unsure on a look-alike line (its
/// tie-break heard all the stretch holds): its play is weighed on its own
/// span among the stretch answer's candidates and found on its own line.
#[test]
fn an_unsure_stretchs_play_moves_to_the_candidate_line_it_is_on() {
    use super::stretches::fill_gaps;
    use crate::align::verdict::MIN_MATCH_Z;
    use crate::align::{AlignCandidate, Verdict};
    let (song, half_s) = song_with_a_look_alike_half();
    let plays = two_plays_apart();
    let rec = record(&song, &plays, 55.0);
    let cancel = CancelToken::new();
    let run = run_of(&rec, &song, &cancel);
    // the stretch's own answer, moved onto the look-alike half and unsure
    let align_stretch = |t_a: f64, t_b: f64| {
        Ok(align_part(&rec, &song, &cancel, (t_a, t_b)).map(|mut r| {
            let right = r.offset_s;
            let look_alike = right - half_s;
            r.verdict = Verdict::Unsure;
            r.offset_s = look_alike;
            r.candidates = vec![
                AlignCandidate {
                    offset_s: look_alike,
                    score: 1.0,
                },
                AlignCandidate {
                    offset_s: right,
                    score: 0.9,
                },
            ];
            r.segments = super::single_segment(&r);
            r
        }))
    };
    let second = play_on(line_of(33.0, 10.0), 33.0, 51.0, 20.0, true);
    let found = fill_gaps(
        &run,
        &align_stretch,
        &[second],
        MIN_MATCH_Z,
        &mut Vec::new(),
    )
    .expect("searched");
    assert_eq!(found.len(), 1, "found {} plays", found.len());
    let t_mid = 11.0;
    let want = line_of(plays[0].at, plays[0].from);
    let err_ms = (found[0].line.song_at(t_mid) - want.song_at(t_mid)).abs() * 1e3;
    assert!(err_ms < 1.0, "the stretch's play placed {err_ms:.2} ms off");
}

/// `x` through a room's late reverberation: four feedback combs and two
/// all-passes (Schroeder's), decaying by 60 dB in `rt60` s, mixed `wet`
/// times as loud as the direct sound.
fn reverberant(x: &[f32], rt60: f64, wet: f32) -> Vec<f32> {
    let fs = f64::from(FS);
    let mut tail = vec![0.0f32; x.len()];
    for d_ms in [29.7, 37.1, 41.1, 43.7] {
        let d = (d_ms * 1e-3 * fs) as usize;
        let g = 10f64.powf(-3.0 * d as f64 / fs / rt60) as f32;
        let mut y = vec![0.0f32; x.len()];
        for i in 0..x.len() {
            y[i] = x[i] + if i >= d { g * y[i - d] } else { 0.0 };
            tail[i] += 0.25 * y[i];
        }
    }
    for (d_ms, g) in [(5.0, 0.7f32), (1.7, 0.7)] {
        let d = (d_ms * 1e-3 * fs) as usize;
        let input = tail.clone();
        for i in 0..x.len() {
            let past_in = if i >= d { input[i - d] } else { 0.0 };
            let past_out = if i >= d { tail[i - d] } else { 0.0 };
            tail[i] = -g * input[i] + past_in + g * past_out;
        }
    }
    let level = |v: &[f32]| v.iter().map(|s| s * s).sum::<f32>().sqrt();
    let k = wet * level(x) / level(&tail).max(1e-9);
    x.iter().zip(&tail).map(|(d, t)| d + k * t).collect()
}

/// Play `p` alone in a recording `total_s` long: what [`record`] adds to
/// the room noise for it.
fn play_alone(song: &[f32], p: &PlayAt, total_s: f64) -> Vec<f32> {
    let bed = record(song, &[], total_s);
    let dry = record(song, std::slice::from_ref(p), total_s);
    dry.iter().zip(&bed).map(|(a, b)| a - b).collect()
}

/// The room noise with play `p` at `level` of its own under six times as
/// much reverberation (1.3 s) as direct sound.
fn faint_under_reverberation(song: &[f32], p: &PlayAt, total_s: f64, level: f32) -> Vec<f32> {
    let bed = record(song, &[], total_s);
    let heard = reverberant(&play_alone(song, p, total_s), 1.3, 6.0);
    bed.iter().zip(&heard).map(|(b, m)| b + level * m).collect()
}

/// A play that no window shows: the demo song at a fiftieth of its level,
/// under six times as much reverberation (1.3 s) as direct sound, over the
/// room noise. The fine stage refuses its run (z 5.2, heard in none of 124
/// windows); its coherence summed over the run keeps it (z 13), on its
/// line within 0.1 ms. Read on another section's line, or where the song
/// does not play, the run gives nothing.
#[test]
fn a_play_no_window_shows_is_kept_on_its_summed_coherence() {
    use super::confirm::{confirm_run, measure_piece, refused_on_span};
    use super::scan::HopRun;
    use crate::align::verdict::MIN_PLAY_Z_BESIDE_SURE;
    let song = song();
    let play = PlayAt {
        at: 5.0,
        from: 6.0,
        to: 36.0,
    };
    let rec = faint_under_reverberation(&song, &play, 40.0, 0.02);
    let cancel = CancelToken::new();
    let run = run_of(&rec, &song, &cancel);
    let line = line_of(play.at, play.from);
    let own = play.at - play.from;
    let r = HopRun {
        intercept_s: own,
        start_s: 5.0,
        end_s: 35.0,
        evidence: 10.0,
        hops: 0..0,
    };
    let fine = measure_piece(&run, &line, 4.0, 36.0)
        .expect("measured")
        .expect("a piece");
    assert!(
        refused_on_span(&fine.fine, MIN_PLAY_Z_BESIDE_SURE).is_some(),
        "the fine stage alone keeps it: z {:.2}, heard {}",
        fine.fine.z,
        fine.fine.heard_windows
    );
    let kept = confirm_run(&run, &r, &[own], 1.0, MIN_PLAY_Z_BESIDE_SURE)
        .expect("measured")
        .expect("kept on its summed coherence");
    let err_ms = (kept.line.song_at(20.0) - line.song_at(20.0)).abs() * 1e3;
    assert!(err_ms < 0.1, "{err_ms:.3} ms off");
    let elsewhere = confirm_run(&run, &r, &[own - 7.3], 1.0, MIN_PLAY_Z_BESIDE_SURE);
    assert!(elsewhere.expect("measured").is_none());
    let bed = record(&song, &[], 40.0);
    let silent = run_of(&bed, &song, &cancel);
    let none = confirm_run(&silent, &r, &[own], 1.0, MIN_PLAY_Z_BESIDE_SURE);
    assert!(none.expect("measured").is_none());
}

/// A fainter play still (a hundred-and-twentieth of the song's level under
/// the same reverberation): its summed coherence (z 7.4) is under the bar a
/// run needs alone, over the bar of a run the scan holds on its line for
/// long: kept then, on its line within 0.1 ms. Held or not, another
/// section's line, or a span where the song does not play, gives nothing.
#[test]
fn a_faint_play_the_scan_holds_is_kept_on_less_summed_coherence() {
    use super::confirm::{confirm_run, integrated_on, measure_piece};
    use super::scan::HopRun;
    use crate::align::verdict::{
        HELD_RUN_EVIDENCE, HELD_RUN_INTEGRATED_MIN_Z, MIN_PLAY_Z_BESIDE_SURE, PLAY_INTEGRATED_MIN_Z,
    };
    let song = song();
    let play = PlayAt {
        at: 5.0,
        from: 6.0,
        to: 36.0,
    };
    let rec = faint_under_reverberation(&song, &play, 40.0, 0.0085);
    let cancel = CancelToken::new();
    let run = run_of(&rec, &song, &cancel);
    let line = line_of(play.at, play.from);
    let own = play.at - play.from;
    let piece = measure_piece(&run, &line, 4.0, 36.0)
        .expect("measured")
        .expect("a piece");
    let summed = integrated_on(&run, &piece, 0.0)
        .expect("measured")
        .expect("summed")
        .piece;
    assert!(
        (HELD_RUN_INTEGRATED_MIN_Z..PLAY_INTEGRATED_MIN_Z).contains(&summed.fine.z),
        "summed z {:.2}: not between the two bars",
        summed.fine.z
    );
    let run_with = |evidence: f32| HopRun {
        intercept_s: own,
        start_s: 5.0,
        end_s: 35.0,
        evidence,
        hops: 0..0,
    };
    let confirm = |run, intercept: f64, evidence: f32| {
        confirm_run(
            run,
            &run_with(evidence),
            &[intercept],
            1.0,
            MIN_PLAY_Z_BESIDE_SURE,
        )
        .expect("measured")
    };
    assert!(confirm(&run, own, 0.5 * HELD_RUN_EVIDENCE).is_none());
    let kept = confirm(&run, own, HELD_RUN_EVIDENCE).expect("kept: the scan holds it");
    let err_ms = (kept.line.song_at(20.0) - line.song_at(20.0)).abs() * 1e3;
    assert!(err_ms < 0.1, "{err_ms:.3} ms off");
    assert!(confirm(&run, own - 7.3, HELD_RUN_EVIDENCE).is_none());
    let bed = record(&song, &[], 40.0);
    let silent = run_of(&bed, &song, &cancel);
    assert!(confirm(&silent, own, HELD_RUN_EVIDENCE).is_none());
}

/// A play shown only by its summed coherence on today's line (within
/// 50 ms of it) takes today's line where the waveform placed it, fitted on
/// the whole recording, or where the second pass's sum singled it out at
/// least as clearly as the play's own sum; not where the spectral shape
/// alone placed it (tens of ms off at best), nor from a sum less clear than
/// its own. A play the fine stage shows keeps the line fitted on its own
/// span.
#[test]
fn a_summed_play_on_todays_line_takes_todays_line_only_where_it_is_placed_better() {
    use super::{explained_by_main, TodaysLine};
    let song = song();
    let play = PlayAt {
        at: 5.0,
        from: 6.0,
        to: 36.0,
    };
    let rec = record(&song, std::slice::from_ref(&play), 40.0);
    let cancel = CancelToken::new();
    let run = run_of(&rec, &song, &cancel);
    let main_line = line_of(play.at, play.from);
    let own = line_of(play.at + 0.023, play.from);
    let summed = super::Play {
        summed_lag_margin: Some(4.0),
        ..play_on(own, 5.0, 35.0, 7.2, false)
    };
    let shown = play_on(own, 5.0, 35.0, 12.0, false);
    let off_ms = |p: &super::Play| (p.line.song_at(20.0) - main_line.song_at(20.0)) * 1e3;
    let on_own = |p: &super::Play| (off_ms(p) + 23.0).abs() < 1e-6;
    let placed = |today: TodaysLine| {
        let plays = vec![summed.clone(), shown.clone()];
        let out = explained_by_main(&run, plays, &main_line, today).expect("measured");
        assert!(out.iter().all(|p| p.on_main));
        assert!(on_own(&out[1]), "{:.3} ms", off_ms(&out[1]));
        out[0].clone()
    };
    for today in [TodaysLine::Waveform, TodaysLine::Summed { lag_margin: 5.0 }] {
        let p = placed(today);
        assert!(off_ms(&p).abs() < 1e-6, "{today:?}: {:.3} ms", off_ms(&p));
    }
    for today in [
        TodaysLine::Summed { lag_margin: 3.0 },
        TodaysLine::ShapeAlone,
    ] {
        let p = placed(today);
        assert!(on_own(&p), "{today:?}: {:.3} ms", off_ms(&p));
    }
}

/// A stretch refused whole (two plays on different lines split its
/// evidence; here its own answer is refused whenever it is 40 s or longer)
/// is searched again in halves: each half gives its play, placed within a
/// millisecond.
#[test]
fn a_stretch_refused_whole_is_searched_in_halves() {
    use super::search_stretches;
    use crate::align::verdict::MIN_PLAY_Z_BESIDE_SURE;
    let song = song();
    let plays = [
        PlayAt {
            at: 2.0,
            from: 4.0,
            to: 20.0,
        },
        PlayAt {
            at: 33.0,
            from: 20.0,
            to: 36.0,
        },
        PlayAt {
            at: 55.0,
            from: 6.0,
            to: 30.0,
        },
    ];
    let rec = record(&song, &plays, 82.0);
    let cancel = CancelToken::new();
    let run = run_of(&rec, &song, &cancel);
    let align_stretch = |t_a: f64, t_b: f64| {
        Ok((t_b - t_a < 40.0)
            .then(|| align_part(&rec, &song, &cancel, (t_a, t_b)))
            .flatten())
    };
    let known = play_on(line_of(55.0, 6.0), 55.0, 79.0, 20.0, true);
    let found = search_stretches(&run, &align_stretch, vec![known], MIN_PLAY_Z_BESIDE_SURE)
        .expect("searched");
    assert_placed(&plays, &found, 1.0);
}

/// A stretch's play that no window shows (as in
/// [`a_play_no_window_shows_is_kept_on_its_summed_coherence`]; the
/// stretch's answer placed on its line) is kept on its coherence summed over
/// its span, within 0.1 ms; the fine stage alone refuses it.
#[test]
fn a_stretchs_play_no_window_shows_is_kept_on_its_summed_coherence() {
    use super::stretches::fill_gaps;
    use crate::align::verdict::MIN_PLAY_Z_BESIDE_SURE;
    let song = song();
    let [faint, loud] = two_plays_apart();
    let music = play_alone(&song, &faint, 55.0);
    let heard = reverberant(&music, 1.3, 6.0);
    let with_loud = record(&song, std::slice::from_ref(&loud), 55.0);
    let rec: Vec<f32> = with_loud
        .iter()
        .zip(&heard)
        .map(|(r, m)| r + 0.02 * m)
        .collect();
    let clean: Vec<f32> = with_loud.iter().zip(&music).map(|(r, m)| r + m).collect();
    let cancel = CancelToken::new();
    let run = run_of(&rec, &song, &cancel);
    // the stretch's answer on the faint play's line (read from a clean copy)
    let align_stretch = |t_a: f64, t_b: f64| Ok(align_part(&clean, &song, &cancel, (t_a, t_b)));
    let known = play_on(line_of(loud.at, loud.from), 33.0, 51.0, 20.0, true);
    let searched = &mut Vec::new();
    let found = fill_gaps(
        &run,
        &align_stretch,
        &[known],
        MIN_PLAY_Z_BESIDE_SURE,
        searched,
    )
    .expect("searched");
    assert_eq!(found.len(), 1, "found {} plays", found.len());
    let t_mid = 11.0;
    let want = line_of(faint.at, faint.from);
    let err_ms = (found[0].line.song_at(t_mid) - want.song_at(t_mid)).abs() * 1e3;
    assert!(err_ms < 0.1, "placed {err_ms:.3} ms off");
}

/// A stretch under a minute whose first pass sees little of its play (the
/// demo song at 1.2 % of its level under six times as much
/// reverberation, 1.3 s, 30 s of it in a 40-s stretch): it goes on to the
/// second pass, whose integration finds the play on its line. (Refused at
/// once, as a long stretch is: its first pass measures z 1.5, under 4.5;
/// the second finds z 6.9.)
#[test]
fn a_short_stretchs_faint_play_is_found_by_its_second_pass() {
    let song = song();
    let play = PlayAt {
        at: 5.0,
        from: 6.0,
        to: 36.0,
    };
    let rec = faint_under_reverberation(&song, &play, 40.0, 0.012);
    let cancel = CancelToken::new();
    let answer = crate::align::pipeline::align_as_stretch(&rec, &song, FS, &cancel)
        .expect("aligned")
        .expect("the play is found");
    let err_ms = (answer.offset_s - (play.at - play.from)).abs() * 1e3;
    assert!(err_ms < 1.0, "placed {err_ms:.3} ms off");
}

/// A cut to a play that the phone hears quieter at first: its gain control,
/// set by the louder play before, comes back over 0.8 s (the next play from
/// 30 % of its level). Placed within 100 ms of the cut (tested at the next
/// play's full level, 228 ms late: its first frames read as no song).
#[test]
fn a_cut_to_a_play_heard_quieter_at_first_is_placed_within_100_ms() {
    let song = song();
    let fs = f64::from(FS);
    let plays = [
        PlayAt {
            at: 2.0,
            from: 18.0,
            to: 36.0,
        },
        PlayAt {
            at: 20.0,
            from: 4.0,
            to: 20.0,
        },
    ];
    let bed = record(&song, &[], 40.0);
    let before = play_alone(&song, &plays[0], 40.0);
    let after = play_alone(&song, &plays[1], 40.0);
    let gain = |t: f64| match t - plays[1].at {
        dt if dt >= 0.0 => 1.0 - 0.7 * (-dt / 0.8).exp(),
        _ => 1.0,
    };
    let rec: Vec<f32> = (0..bed.len())
        .map(|i| bed[i] + 0.5 * (before[i] + gain(i as f64 / fs) as f32 * after[i]))
        .collect();
    let estimates = [
        estimated(&plays[0], 2.0, 20.3),
        estimated(&plays[1], 19.0, 36.0),
    ];
    let err_ms = (placed_cut(&rec, &song, estimates) - plays[1].at) * 1e3;
    assert!(err_ms.abs() < 100.0, "cut {err_ms:+.1} ms off");
}

/// A cut past the end of its first search (the scan ended the first play
/// 2.3 s early, and the second play's estimate starts before that): found
/// at the end of that search, it is searched again further, and placed
/// within 20 ms (at the search's end, 300 ms early).
#[test]
fn a_cut_past_its_first_search_is_searched_again_further() {
    let song = song();
    let plays = cut_at_20_s();
    let rec = record(&song, &plays, 40.0);
    let estimates = [
        estimated(&plays[0], 2.0, 17.7),
        estimated(&plays[1], 17.0, 36.0),
    ];
    let err_ms = (placed_cut(&rec, &song, estimates) - plays[1].at) * 1e3;
    assert!(err_ms.abs() < 20.0, "cut {err_ms:+.1} ms off");
}

/// A song whose phrases repeat: an intro (song 0-10 s), a stretch (10-20),
/// a 5-s loop four times (20-40), the intro again (40-50) and a tail
/// (50-60), each part a different piece of [`song`].
fn song_with_a_loop() -> Vec<f32> {
    let src = song();
    let fs = FS as usize;
    let part = |a: usize, b: usize| &src[a * fs..b * fs];
    let (intro, stretch, turn, tail) = (part(0, 10), part(10, 20), part(20, 25), part(25, 35));
    [intro, stretch, turn, turn, turn, turn, intro, tail].concat()
}

/// The spectral shape of `signal` as the pipeline makes it, and its frame
/// rate.
fn shape_of(signal: &[f32]) -> (crate::dsp::spectral::SpectralShape, f64) {
    use crate::align::shape::{smooth_bands, SHAPE_SMOOTH_FRAMES, SHAPE_TREND_FRAMES};
    let env = crate::dsp::onset::onset_envelope(signal, FS, (FS / 100) as usize);
    let bands = smooth_bands(env.log_bands, env.n_bands, SHAPE_SMOOTH_FRAMES);
    let shape = crate::dsp::spectral::spectral_shape_of(bands, env.n_bands, SHAPE_TREND_FRAMES);
    (shape, env.frame_rate_hz)
}

/// One play through the loop's last two turns and on into the intro's
/// second copy ([`song_with_a_loop`]), split as the scan can split it: its
/// first half on the line one turn earlier, its second on the intro's first
/// copy, both heard as well there. The first takes the line through both,
/// to the millisecond, and the two are one play. Where the second half is
/// really another part of the song (an edit), no copy's line explains it
/// and nothing moves.
#[test]
fn a_play_split_on_two_copies_of_its_phrases_is_one_play_on_the_line_through_both() {
    use super::copies::plays_on_copies;
    let song = song_with_a_loop();
    let (song_shape, frame_rate) = shape_of(&song);
    let cancel = CancelToken::new();
    let split = |rec: &[f32], second: super::Line| {
        let run = run_of(rec, &song, &cancel);
        let first = line_of(2.0, 25.0);
        let z = |line: &super::Line, a: f64, b: f64| {
            super::line_on(&run, line, a, b).expect("measured").0
        };
        vec![
            play_on(first, 2.0, 12.0, z(&first, 2.0, 12.0), false),
            play_on(second, 12.0, 22.0, z(&second, 12.0, 22.0), false),
        ]
    };
    let through = PlayAt {
        at: 2.0,
        from: 30.0,
        to: 50.0,
    };
    let rec = record(&song, &[through], 25.0);
    let (rec_shape, _) = shape_of(&rec);
    let shapes = super::Shapes {
        recording: &rec_shape,
        song: &song_shape,
        frame_rate,
    };
    let run = run_of(&rec, &song, &cancel);
    let mut plays = split(&rec, line_of(12.0, 0.0));
    assert!(plays_on_copies(&run, &shapes, &mut plays).expect("measured"));
    let right = line_of(2.0, 30.0);
    let off_ms = (plays[0].line.song_at(7.0) - right.song_at(7.0)) * 1e3;
    assert!(
        off_ms.abs() < 1.0,
        "first half {off_ms:.2} ms off the line through both"
    );
    let plays = super::settle_plays(&run, plays).expect("settled");
    assert_eq!(plays.len(), 1, "one play: {plays:?}");
    assert!((plays[0].line.song_at(17.0) - right.song_at(17.0)).abs() < 1e-3);

    // the loop's two turns, then a cut to the stretch: an edit
    let edit = [
        PlayAt {
            at: 2.0,
            from: 30.0,
            to: 40.0,
        },
        PlayAt {
            at: 12.0,
            from: 10.0,
            to: 20.0,
        },
    ];
    let rec = record(&song, &edit, 25.0);
    let (rec_shape, _) = shape_of(&rec);
    let shapes = super::Shapes {
        recording: &rec_shape,
        ..shapes
    };
    let run = run_of(&rec, &song, &cancel);
    let mut plays = split(&rec, line_of(12.0, 10.0));
    assert!(!plays_on_copies(&run, &shapes, &mut plays).expect("measured"));
}
