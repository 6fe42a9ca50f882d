//! Muxing: the video and audio packets written into the MP4 in time order.

use super::audio::feed::Polled;
use super::audio::track::AudioTrack;
use super::output::OutputFile;
use super::progress::Progress;
use super::video::copy::VideoCopy;
use crate::cancel::CancelToken;
use crate::error::{EngineError, Result};
use ffmpeg_next as ffmpeg;
use std::time::Duration;

/// One output stream: its index and its packets' time bases.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutStream {
    pub index: usize,
    /// Time base of the packets handed in.
    pub in_tb: ffmpeg::Rational,
    /// Time base the muxer chose (known once the header is written).
    pub out_tb: ffmpeg::Rational,
}

impl OutStream {
    pub fn new(index: usize, in_tb: ffmpeg::Rational) -> Self {
        Self {
            index,
            in_tb,
            out_tb: in_tb,
        }
    }

    /// Takes the time base the muxer chose while writing the header.
    pub fn header_written(&mut self, octx: &ffmpeg::format::context::Output) {
        if let Some(s) = octx.stream(self.index) {
            self.out_tb = s.time_base();
        }
    }

    /// Addresses a packet to this stream, in the muxer's time base.
    pub fn prepare(&self, pkt: &mut ffmpeg::Packet) {
        pkt.set_position(-1);
        pkt.set_stream(self.index);
        pkt.rescale_ts(self.in_tb, self.out_tb);
    }
}

/// The muxer writing into the output file.
pub(crate) struct Mux<'a> {
    pub octx: ffmpeg::format::context::Output,
    pub file: &'a OutputFile,
}

impl Mux<'_> {
    /// Writes the file's header; with `index_space`, that many bytes are
    /// kept after it for the index, which the trailer writes there (the
    /// rest becomes a `free` atom) instead of after the media data.
    /// Composition offsets may be negative (`ctts` version 1), so a copied
    /// video with B-frames starts at time 0 even where edit lists are
    /// ignored (otherwise its picture starts its reordering delay late).
    pub fn write_header(&mut self, index_space: Option<u64>) -> Result<()> {
        let file = self.file;
        let mut options = ffmpeg::Dictionary::new();
        options.set("movflags", "negative_cts_offsets");
        if let Some(bytes) = index_space {
            options.set("moov_size", &bytes.to_string());
        }
        self.octx
            .write_header_with(options)
            .map_err(|e| file.write_failed(e))?;
        Ok(())
    }

    fn write(&mut self, pkt: &ffmpeg::Packet) -> Result<()> {
        let file = self.file;
        pkt.write_interleaved(&mut self.octx)
            .map_err(|e| file.write_failed(e))
    }

    pub fn write_trailer(&mut self) -> Result<()> {
        let file = self.file;
        self.octx.write_trailer().map_err(|e| file.write_failed(e))
    }
}

/// Index bytes per packet, at most: the mov muxer's per-sample tables
/// (stts, ctts 8 bytes each, stsz 4, stss 4, sdtp 1), its per-chunk ones
/// when every packet is a chunk of its own (stsc 12, co64 8) and the
/// sample-group table (sbgp 8) add up to 53.
const INDEX_BYTES_PER_PACKET: u64 = 64;
/// The index's fixed part, besides the codecs' extradata: movie, track and
/// media headers, sample descriptions, edit lists, the two tags we set
/// (a few kB in all).
const INDEX_FIXED_BYTES: u64 = 64 << 10;

/// Room to reserve for the index (`moov`) before the media data, so that a
/// player streaming the file finds it first ("faststart") without a second
/// pass moving the data: an upper bound from the packet counts, the unused
/// part left as a `free` atom. `None` when the video's packet count is not
/// known (the index then goes after the data, as the muxer ends by
/// default): a reservation too small would fail the export at its end.
pub(crate) fn index_space(
    octx: &ffmpeg::format::context::Output,
    video_packets: Option<u64>,
    audio_packets: u64,
) -> Option<u64> {
    let extradata: u64 = octx
        .streams()
        .map(|s| crate::media::ffi::extradata(&s.parameters()).len() as u64)
        .sum();
    let packets = video_packets? + audio_packets;
    let bytes = INDEX_FIXED_BYTES + extradata + INDEX_BYTES_PER_PACKET * packets;
    // The muxer's option is an int.
    (bytes <= i32::MAX as u64).then_some(bytes)
}

/// AAC packets in `duration_s` of audio at `sample_rate`, at most: frames
/// of 960 samples or more (1024 in LC), the encoder's priming and the
/// last partial frames, a second of slack.
pub(crate) fn aac_packets_at_most(duration_s: f64, sample_rate: u32) -> u64 {
    ((duration_s.max(0.0) + 1.0) * f64::from(sample_rate) / 960.0).ceil() as u64 + 8
}

/// Writes every packet of both streams, each time the one that comes first
/// (by decode time), reporting `export` progress by output time. Returns
/// the bytes of audio written.
pub(crate) fn interleave(
    mux: &mut Mux,
    video: &mut VideoCopy,
    audio: &mut AudioTrack,
    duration_s: f64,
    cancel: &CancelToken,
    progress: &mut Progress,
) -> Result<u64> {
    let audio_rate = f64::from(audio.sample_rate);
    let audio_stream = audio
        .stream
        .ok_or_else(|| EngineError::media(std::path::Path::new("output"), "no audio stream"))?;
    let mut video_next = video.next()?;
    let mut audio_next: Option<ffmpeg::Packet> = None;
    let mut audio_done = false;
    let mut audio_bytes = 0u64;
    let mut fraction = 0.0;
    loop {
        cancel.check()?;
        if audio_next.is_none() && !audio_done {
            let Some(feed) = audio.feed() else { break };
            match feed.poll(Duration::from_millis(50))? {
                Polled::Packet(pkt) => audio_next = Some(pkt),
                Polled::Waiting => {
                    progress.tick("export", fraction);
                    continue;
                }
                Polled::Done => audio_done = true,
            }
        }
        let v_time = video_next.as_ref().map(|p| video.time_of(p));
        let a_time = audio_next
            .as_ref()
            .map(|p| p.dts().or(p.pts()).unwrap_or(0) as f64 / audio_rate);
        let take_video = match (v_time, a_time) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(v), Some(a)) => v <= a,
        };
        if take_video {
            let Some(pkt) = video_next.take() else { break };
            if let Some(v) = v_time {
                fraction = v / duration_s.max(1e-3);
                progress.tick("export", fraction);
            }
            mux.write(&video.prepare(pkt))?;
            video_next = video.next()?;
        } else {
            let Some(mut pkt) = audio_next.take() else {
                break;
            };
            audio_bytes += pkt.size() as u64;
            audio_stream.prepare(&mut pkt);
            mux.write(&pkt)?;
        }
    }
    mux.write_trailer()?;
    Ok(audio_bytes)
}
