//! The audio preview player, through cpal: the recording and the aligned song played
//! together (balance between them), from any point, so the ear can confirm
//! the sync. Runs on its own thread; never blocks the UI or the jobs. With no
//! output device it says so plainly and everything else keeps working.

use crate::error::IpcError;
use crate::events::PreviewState;
use beatsync_engine::ErrorCode;
use beatsync_engine::{Placement, Play};
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Preview decode rate: plenty for listening, light on memory.
pub const PREVIEW_RATE: u32 = 22_050;

/// The preview's level for a sound at full weight (headroom for the sum).
const LEVEL: f64 = 0.7;

/// Gains for a balance in -1 (recording only) … +1 (song only); both at 0.
pub fn gains(balance: f64) -> (f32, f32) {
    let b = balance.clamp(-1.0, 1.0);
    (
        ((1.0 - b).min(1.0) * LEVEL) as f32,
        ((1.0 + b).min(1.0) * LEVEL) as f32,
    )
}

/// What is heard at one instant: with plays, between them the export's
/// sound there (the recording's at `room` times the song's level — ducked,
/// or silence), whatever the balance; inside a play, or with no plays, the
/// balance's gains.
pub fn gains_at(g: (f32, f32), plays: &[Play], song_t: Option<f64>, room: f32) -> (f32, f32) {
    if !plays.is_empty() && song_t.is_none() {
        (room * LEVEL as f32, 0.0)
    } else {
        g
    }
}

/// The song time heard at recording time `t`: with no plays, where the one
/// placement puts it; with plays (several plays of the song in the
/// recording), where the play holding `t` puts it, and none between plays,
/// as the export places it.
pub fn song_time(placement: &Placement, plays: &[Play], t: f64) -> Option<f64> {
    if plays.is_empty() {
        return Some(placement.song_at(t));
    }
    // Plays are in recording order (validated where they enter).
    let i = plays.partition_point(|p| p.recording_end_s <= t);
    let play = plays.get(i)?;
    (t >= play.recording_start_s).then(|| play.placement().song_at(t))
}

/// One output sample at recording time `t`: the recording plus the song
/// at song time `song_t` (linear interpolation; silence outside the song
/// or where `song_t` is `None`).
pub fn mix_at(recording: &[f32], song: &[f32], song_t: Option<f64>, t: f64, g: (f32, f32)) -> f32 {
    let at = |x: &[f32], s: f64| -> f32 {
        let i = s * f64::from(PREVIEW_RATE);
        if i < 0.0 {
            return 0.0;
        }
        let i0 = i.floor() as usize;
        match (x.get(i0), x.get(i0 + 1)) {
            (Some(a), Some(b)) => a + (b - a) * (i - i0 as f64) as f32,
            (Some(a), None) => *a,
            _ => 0.0,
        }
    };
    let song_v = song_t.map_or(0.0, |st| at(song, st));
    (g.0 * at(recording, t) + g.1 * song_v).clamp(-1.0, 1.0)
}

pub struct PlayRequest {
    pub recording: Arc<Vec<f32>>,
    pub song: Arc<Vec<f32>>,
    pub placement: Placement,
    /// The plays, each with its own placement (several plays of the song
    /// in the recording); empty: `placement` everywhere.
    pub plays: Vec<Play>,
    pub from_s: f64,
    pub balance: f64,
    /// With plays: the recording's gain between them, relative to the
    /// song's (`Between::room_gain`; 0 where the export writes silence).
    pub room: f32,
    /// Slower than 1x: the mix already slowed (see `audition`).
    pub slow: Option<crate::audition::SlowMix>,
}

enum Cmd {
    Play(PlayRequest, mpsc::Sender<Result<(), IpcError>>),
    Stop,
}

/// What the UI hears about the playback.
pub type Notify = Arc<dyn Fn(PreviewState) + Send + Sync>;

pub struct Preview {
    tx: Mutex<Option<mpsc::Sender<Cmd>>>,
    cache: Mutex<HashMap<PathBuf, Arc<Vec<f32>>>>,
    notify: Notify,
}

/// The UI words this code for the user; the message carries the system's detail.
fn no_device(detail: impl std::fmt::Display) -> IpcError {
    IpcError::new(
        ErrorCode::NoAudioDevice,
        format!("no audio output device: {detail}"),
    )
}

impl Preview {
    pub fn new(notify: Notify) -> Self {
        Self {
            tx: Mutex::new(None),
            cache: Mutex::new(HashMap::new()),
            notify,
        }
    }

    /// Decoded mono audio at the preview rate, cached for the last few files.
    pub fn pcm(&self, path: &Path) -> Result<Arc<Vec<f32>>, IpcError> {
        if let Some(p) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(path)
        {
            return Ok(p.clone());
        }
        let pcm = Arc::new(beatsync_engine::decode_audio(path, PREVIEW_RATE)?.samples);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= 4 {
            cache.clear();
        }
        cache.insert(path.to_path_buf(), pcm.clone());
        Ok(pcm)
    }

    fn sender(&self) -> mpsc::Sender<Cmd> {
        let mut guard = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = guard.as_ref() {
            return tx.clone();
        }
        let (tx, rx) = mpsc::channel();
        let notify = self.notify.clone();
        std::thread::Builder::new()
            .name("preview".into())
            .spawn(move || player_thread(rx, notify))
            .ok();
        *guard = Some(tx.clone());
        tx
    }

    pub fn play(&self, req: PlayRequest) -> Result<(), IpcError> {
        let (done_tx, done_rx) = mpsc::channel();
        self.sender()
            .send(Cmd::Play(req, done_tx))
            .map_err(|_| IpcError::new(ErrorCode::Internal, "the preview player stopped"))?;
        done_rx
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| no_device("the audio system did not answer"))?
    }

    pub fn stop(&self) {
        if let Some(tx) = self.tx.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let _ = tx.send(Cmd::Stop);
        }
    }
}

fn state(playing: bool, position_s: f64, error: Option<IpcError>) -> PreviewState {
    PreviewState {
        playing,
        position_s,
        error,
    }
}

/// Owns the cpal stream (not `Send` on every platform) for its whole life.
fn player_thread(rx: mpsc::Receiver<Cmd>, notify: Notify) {
    let mut current: Option<(cpal::Stream, Arc<AtomicU64>, Arc<AtomicBool>, u32)> = None;
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(Cmd::Play(req, done)) => {
                current = None;
                match start_stream(req) {
                    Ok(s) => {
                        let _ = done.send(Ok(()));
                        current = Some(s);
                    }
                    Err(e) => {
                        notify(state(false, 0.0, Some(e.clone())));
                        let _ = done.send(Err(e));
                    }
                }
            }
            Ok(Cmd::Stop) => {
                if let Some((_, pos, _, rate)) = current.take() {
                    notify(state(
                        false,
                        f64::from_bits(pos.load(Ordering::Relaxed)).max(0.0) / f64::from(rate),
                        None,
                    ));
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        if let Some((_, pos, ended, rate)) = &current {
            let t = f64::from_bits(pos.load(Ordering::Relaxed)) / f64::from(*rate);
            if ended.load(Ordering::Relaxed) {
                notify(state(false, t, None));
                current = None;
            } else {
                notify(state(true, t, None));
            }
        }
    }
}

type Playing = (cpal::Stream, Arc<AtomicU64>, Arc<AtomicBool>, u32);

fn start_stream(req: PlayRequest) -> Result<Playing, IpcError> {
    let host = cpal::default_host();
    let device = host
        .default_output_device()
        .ok_or_else(|| no_device("none found"))?;
    let config = device.default_output_config().map_err(no_device)?;
    let channels = usize::from(config.channels());
    let rate = config.sample_rate().0;
    // Position in output frames since 0 s of the recording, as f64 bits.
    let position = Arc::new(AtomicU64::new(
        (req.from_s.max(0.0) * f64::from(rate)).to_bits(),
    ));
    let ended = Arc::new(AtomicBool::new(false));
    let g = gains(req.balance);
    let end_s = req.recording.len() as f64 / f64::from(PREVIEW_RATE);
    // Slow audition: the clock advances `speed` frames of recording per frame heard.
    let (step, end_s) = req
        .slow
        .as_ref()
        .map_or((1.0, end_s), |s| (s.speed, s.end_s()));
    let (pos, end_flag) = (position.clone(), ended.clone());
    let err_fn = |e| tracing::warn!("preview stream: {e}");
    let stream_config: cpal::StreamConfig = config.clone().into();
    let fill = move |data: &mut [f32]| {
        let mut frame = f64::from_bits(pos.load(Ordering::Relaxed));
        for out in data.chunks_mut(channels) {
            let t = frame / f64::from(rate);
            let v = match &req.slow {
                _ if t >= end_s => 0.0,
                Some(slow) => slow.at(t),
                None => {
                    let song_t = song_time(&req.placement, &req.plays, t);
                    let g = gains_at(g, &req.plays, song_t, req.room);
                    mix_at(&req.recording, &req.song, song_t, t, g)
                }
            };
            out.fill(v);
            frame += step;
        }
        if frame / f64::from(rate) >= end_s {
            end_flag.store(true, Ordering::Relaxed);
        }
        pos.store(frame.to_bits(), Ordering::Relaxed);
    };
    let stream = match config.sample_format() {
        cpal::SampleFormat::F32 => device.build_output_stream(
            &stream_config,
            move |data: &mut [f32], _: &cpal::OutputCallbackInfo| fill(data),
            err_fn,
            None,
        ),
        other => {
            let mut buf = Vec::new();
            match other {
                cpal::SampleFormat::I16 => device.build_output_stream(
                    &stream_config,
                    move |data: &mut [i16], _: &cpal::OutputCallbackInfo| {
                        buf.resize(data.len(), 0.0);
                        fill(&mut buf);
                        for (o, v) in data.iter_mut().zip(&buf) {
                            *o = (v * f32::from(i16::MAX)) as i16;
                        }
                    },
                    err_fn,
                    None,
                ),
                _ => return Err(no_device(format!("unsupported sample format {other:?}"))),
            }
        }
    }
    .map_err(no_device)?;
    stream.play().map_err(no_device)?;
    Ok((stream, position, ended, rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balance_moves_between_recording_and_song() {
        assert_eq!(gains(0.0), (0.7, 0.7));
        assert_eq!(gains(-1.0), (0.7, 0.0));
        assert_eq!(gains(1.0), (0.0, 0.7));
        assert_eq!(gains(7.0), (0.0, 0.7), "clamped");
    }

    #[test]
    fn the_song_is_mixed_where_the_placement_puts_it() {
        let rate = f64::from(PREVIEW_RATE);
        let recording = vec![0.0f32; PREVIEW_RATE as usize * 3];
        let mut song = vec![0.0f32; PREVIEW_RATE as usize * 3];
        song[(0.5 * rate) as usize] = 1.0; // a click 0.5 s into the song
        let p = Placement::new(1.25, 1.0); // the song starts 1.25 s into the recording
        let click_at = 1.75;
        let mix = |t: f64| mix_at(&recording, &song, song_time(&p, &[], t), t, (0.0, 1.0));
        assert!((mix(click_at) - 1.0).abs() < 1e-6, "{}", mix(click_at));
        assert_eq!(mix(click_at + 0.01), 0.0);
        assert_eq!(mix(0.5), 0.0, "before the song starts");
    }

    #[test]
    fn with_plays_each_play_places_the_song_and_between_them_it_is_silent() {
        let play = |start: f64, end: f64, offset_s: f64| Play {
            recording_start_s: start,
            recording_end_s: end,
            offset_s,
            rate: 1.0,
            cut_before: false,
        };
        // The song from its start at 2 s, then again from 1 s in at 20 s.
        let plays = [play(2.0, 12.0, 2.0), play(20.0, 30.0, 19.0)];
        let whole = Placement::new(2.0, 1.0);
        let at = |t: f64| song_time(&whole, &plays, t);
        assert_eq!(at(5.0), Some(3.0));
        assert_eq!(at(25.0), Some(6.0));
        assert_eq!(at(15.0), None, "between plays");
        assert_eq!(at(1.0), None, "before the first");
        assert_eq!(at(31.0), None, "after the last");
        assert_eq!(
            song_time(&whole, &[], 25.0),
            Some(23.0),
            "no plays: one placement"
        );
        let rate = f64::from(PREVIEW_RATE);
        let mut song = vec![0.0f32; PREVIEW_RATE as usize * 8];
        song[(6.0 * rate) as usize] = 1.0;
        let recording = vec![0.0f32; PREVIEW_RATE as usize * 32];
        let v = mix_at(&recording, &song, at(25.0), 25.0, (0.0, 1.0));
        assert!((v - 1.0).abs() < 1e-6, "the second play's click: {v}");
    }

    /// Between plays the preview plays what the export writes there: the
    /// recording ducked 12 dB below the song's level, or silence, whatever
    /// the balance; inside a play the balance holds.
    #[test]
    fn between_plays_the_preview_plays_what_the_export_writes() {
        use beatsync_engine::export::Between;
        let play = |start: f64, end: f64| Play {
            recording_start_s: start,
            recording_end_s: end,
            offset_s: start,
            rate: 1.0,
            cut_before: false,
        };
        let plays = [play(2.0, 12.0), play(20.0, 30.0)];
        let whole = Placement::new(2.0, 1.0);
        let recording = vec![0.5f32; PREVIEW_RATE as usize * 32];
        let song = vec![0.0f32; PREVIEW_RATE as usize * 40];
        let heard = |t: f64, balance: f64, between: Between| {
            let song_t = song_time(&whole, &plays, t);
            let g = gains_at(gains(balance), &plays, song_t, between.room_gain());
            mix_at(&recording, &song, song_t, t, g)
        };
        // The song's level is 0.7 at any balance short of "recording only".
        let ducked = 0.5 * 0.7 * 10f32.powf(-12.0 / 20.0);
        for balance in [-1.0, 0.0, 1.0] {
            let v = heard(15.0, balance, Between::Recorded);
            assert!((v - ducked).abs() < 1e-4, "balance {balance}: {v}");
            assert_eq!(heard(15.0, balance, Between::Silence), 0.0);
            assert_eq!(heard(1.0, balance, Between::Silence), 0.0, "before");
        }
        // Inside a play: the balance's gains (here the song is silent).
        assert!((heard(5.0, 0.0, Between::Silence) - 0.35).abs() < 1e-6);
        assert_eq!(heard(5.0, 1.0, Between::Recorded), 0.0);
        // No plays: the balance everywhere.
        let g = gains_at(gains(0.0), &[], None, 0.0);
        assert_eq!(g, gains(0.0));
    }
}
