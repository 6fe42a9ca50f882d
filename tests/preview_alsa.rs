//! The audio preview plays into a real ALSA device: a `file` PCM over the
//! `null` sink, made the default by an `.asoundrc` in a temporary HOME (no
//! sound card needed), so cpal opens it as it opens a sound card. The test
//! reads back that samples flowed: the file the sink writes fills with the
//! mix (not silence) while the playhead runs to the recording's end, and
//! stops growing once the preview ended. Its own process: ALSA reads its configuration once per process.
//! (Without any device the preview answers `no_audio_device`: the E2E test
//! checks the message the window shows.)

use beatsync_app::events::PreviewState;
use beatsync_app::player::{PlayRequest, Preview, PREVIEW_RATE};
use beatsync_engine::Placement;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Waits up to 10 s for `f`.
fn wait_until(what: &str, f: impl Fn() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < until, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_preview_plays_into_an_alsa_sink_and_samples_flow() {
    let home = tempfile::tempdir().expect("temp HOME");
    let sink = home.path().join("preview.raw");
    std::fs::write(
        home.path().join(".asoundrc"),
        format!(
            "pcm.!default {{\n  type file\n  slave.pcm \"null\"\n  file \"{}\"\n  format \"raw\"\n}}\n",
            sink.display()
        ),
    )
    .expect("asoundrc");
    std::env::set_var("HOME", home.path());

    let states: Arc<Mutex<Vec<PreviewState>>> = Arc::default();
    let seen = states.clone();
    let preview = Preview::new(Arc::new(move |s| seen.lock().expect("lock").push(s)));
    // 3 s of a 440 Hz tone as the recording, silence as the song.
    let n = PREVIEW_RATE as usize * 3;
    let tone: Vec<f32> = (0..n)
        .map(|i| 0.5 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / PREVIEW_RATE as f32).sin())
        .collect();
    preview
        .play(PlayRequest {
            recording: Arc::new(tone),
            song: Arc::new(vec![0.0; n]),
            placement: Placement::new(0.0, 1.0),
            plays: Vec::new(),
            from_s: 0.5,
            balance: -1.0,
            room: 0.0,
            slow: None,
        })
        .expect("the preview opens the ALSA default device");

    wait_until("samples reach the sink", || size(&sink) > 0);
    // The null sink takes samples as fast as they come (it keeps no clock):
    // the 2.5 s from 0.5 s to the recording's end play out at once, and the
    // player announces the end with the playhead there.
    wait_until("the playhead reaches the end of the recording", || {
        let s = states.lock().expect("lock");
        s.last().is_some_and(|s| !s.playing && s.position_s >= 3.0)
    });
    let seen = states.lock().expect("lock").clone();
    assert!(seen.iter().all(|s| s.error.is_none()), "{seen:?}");
    assert!(
        seen.iter().any(|s| s.playing),
        "playing was announced: {seen:?}"
    );

    // The tone reached the sink, not only silence: at least half of its
    // 2.5 s as 16-bit mono samples are non-zero bytes. (Without a clock the
    // device may also take any amount of padding silence around it, so the
    // share of zeros in the file says nothing.)
    let bytes = std::fs::read(&sink).expect("sink file");
    let loud = bytes.iter().filter(|&&b| b != 0).count();
    let tone_bytes = (2.5 * PREVIEW_RATE as f64 * 2.0) as usize;
    assert!(
        loud >= tone_bytes / 2,
        "{loud} of {} bytes are not zero (the tone alone is {tone_bytes} bytes at 16-bit mono)",
        bytes.len()
    );

    // Once ended, the stream is closed: nothing more is written; stop is harmless.
    std::thread::sleep(Duration::from_millis(300));
    let stopped = size(&sink);
    preview.stop();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(size(&sink), stopped, "nothing is written once ended");
    println!("{stopped} bytes of preview audio reached the ALSA sink");
}
