//! How a re-encoded head joins the source's parameter-set box, per codec:
//! which encoder, with which options, how its parameter sets are added to
//! the box (`avcC`, `hvcC`) under ids the source does not use, and what
//! becomes of each NAL unit it writes.

use super::avcc::{annexb_nals, parse_avcc, pps_id, sps_id, write_avcc, Avcc};
use super::hvcc::{self, HeadSets, Hvcc, Ids};
use super::{not_possible, HeadResult};
use crate::media::ffi;
use ffmpeg_next as ffmpeg;

pub(super) enum Splice {
    Avc {
        avcc: Avcc,
        /// The head's SPS and PPS id.
        id: u32,
    },
    Hevc {
        hvcc: Hvcc,
        ids: Ids,
        /// Read from the encoder's SPS and PPS once it is open.
        sets: Option<HeadSets>,
    },
}

impl Splice {
    /// The source's box, parsed, with free ids chosen; not possible for
    /// other codecs or a box that does not parse.
    pub fn for_source(params: &ffmpeg::codec::Parameters) -> HeadResult<Splice> {
        let extradata = ffi::extradata(params);
        match params.id() {
            ffmpeg::codec::Id::H264 => {
                let Some(avcc) = parse_avcc(&extradata) else {
                    return not_possible("the H.264 stream has no avcC parameter sets");
                };
                let used: Vec<u32> = avcc
                    .sps
                    .iter()
                    .filter_map(|s| sps_id(s))
                    .chain(avcc.pps.iter().filter_map(|p| pps_id(p)))
                    .collect();
                let Some(id) = (0..32u32).find(|i| !used.contains(i)) else {
                    return not_possible("every H.264 parameter-set id is in use");
                };
                Ok(Splice::Avc { avcc, id })
            }
            ffmpeg::codec::Id::HEVC => {
                let Some(hvcc) = Hvcc::parse(&extradata) else {
                    return not_possible("the HEVC stream has no hvcC parameter sets");
                };
                let Some(ids) = hvcc.free_ids() else {
                    return not_possible(
                        "the HEVC parameter sets leave no free id (or do not parse)",
                    );
                };
                Ok(Splice::Hevc {
                    hvcc,
                    ids,
                    sets: None,
                })
            }
            id => not_possible(format!("no re-encoder for {id:?} video")),
        }
    }

    pub fn encoder_name(&self) -> &'static str {
        match self {
            Splice::Avc { .. } => "libx264",
            Splice::Hevc { .. } => "libx265",
        }
    }

    /// Near-transparent quality, no B-frames, one keyframe (the first
    /// frame), parameter sets only in the encoder's extradata. Fast presets
    /// and no lookahead: the head is at most a GOP, and on the 1080p bench
    /// `fast` cost 2.5x the CPU of `veryfast` and held 30 frames more.
    pub fn encoder_options(&self) -> ffmpeg::Dictionary<'static> {
        let mut opts = ffmpeg::Dictionary::new();
        match self {
            Splice::Avc { id, .. } => {
                opts.set("preset", "veryfast");
                opts.set("crf", "14");
                opts.set(
                    "x264-params",
                    &format!(
                        "sps-id={id}:bframes=0:scenecut=0:keyint=100000:repeat-headers=0:\
                         rc-lookahead=0:sync-lookahead=0"
                    ),
                );
            }
            Splice::Hevc { .. } => {
                opts.set("preset", "ultrafast");
                opts.set("crf", "16");
                opts.set("forced-idr", "1");
                // One slice per picture, no wavefront entry points, no
                // weighted prediction: the slice headers stay readable for
                // renumbering (see `hvcc`).
                opts.set(
                    "x265-params",
                    "bframes=0:scenecut=0:keyint=-1:open-gop=0:repeat-headers=0:info=0:\
                     wpp=0:slices=1:weightp=0:weightb=0:rc-lookahead=0:log-level=error",
                );
            }
        }
        opts
    }

    /// Adds the open encoder's parameter sets to the box.
    pub fn add_encoder_sets(&mut self, extradata: &[u8]) -> HeadResult<()> {
        let nals = annexb_nals(extradata);
        match self {
            Splice::Avc { avcc, .. } => {
                for nal in nals {
                    match nal[0] & 0x1f {
                        7 => avcc.sps.push(nal.to_vec()),
                        8 => avcc.pps.push(nal.to_vec()),
                        _ => {}
                    }
                }
                // Level: the higher of the two, so the box does not
                // understate the stream.
                if let Some(s) = avcc.sps.last() {
                    if s.len() > 3 {
                        avcc.level = avcc.level.max(s[3]);
                    }
                }
                Ok(())
            }
            Splice::Hevc { hvcc, ids, sets } => {
                let find = |t: u8| nals.iter().find(|n| hvcc::nal_type(n) == t).copied();
                let (Some(vps), Some(sps), Some(pps)) =
                    (find(hvcc::VPS), find(hvcc::SPS), find(hvcc::PPS))
                else {
                    return not_possible("libx265 gave no VPS/SPS/PPS");
                };
                let renumbered = (
                    hvcc::renumber_vps(vps, *ids),
                    hvcc::renumber_sps(sps, *ids),
                    hvcc::renumber_pps(pps, *ids),
                    HeadSets::read(sps, pps),
                );
                let (Some(vps), Some(sps), Some(pps), Some(read)) = renumbered else {
                    return not_possible("libx265's parameter sets could not be renumbered");
                };
                hvcc.add(vps);
                hvcc.raise_level(&sps);
                hvcc.add(sps);
                hvcc.add(pps);
                *sets = Some(read);
                Ok(())
            }
        }
    }

    pub fn length_size(&self) -> usize {
        match self {
            Splice::Avc { avcc, .. } => avcc.length_size,
            Splice::Hevc { hvcc, .. } => hvcc.length_size(),
        }
    }

    /// A NAL unit the encoder wrote, as it goes into the sample: parameter
    /// sets (they live in the box), access unit delimiters and libx264's
    /// SEI are left out,
    /// HEVC slices get the head's PPS id.
    pub fn sample_nal(&self, nal: &[u8]) -> HeadResult<Option<Vec<u8>>> {
        match self {
            // SEI too: libx264's is its version string, nothing a decoder needs.
            Splice::Avc { .. } => Ok((!matches!(nal[0] & 0x1f, 6..=9)).then(|| nal.to_vec())),
            Splice::Hevc { ids, sets, .. } => {
                let t = hvcc::nal_type(nal);
                if (32..=35).contains(&t) {
                    return Ok(None);
                }
                if t >= 32 {
                    return Ok(Some(nal.to_vec()));
                }
                match sets.as_ref().and_then(|s| s.renumber_slice(nal, ids.pps)) {
                    Some(n) => Ok(Some(n)),
                    None => not_possible("a libx265 slice header could not be renumbered"),
                }
            }
        }
    }

    /// A NAL unit ending the head's last sample: for HEVC an end of
    /// sequence, so that the copied keyframe starts a new coded video
    /// sequence even when it is a CRA (open GOP): its parameter sets are
    /// the source's, which may only be activated there.
    pub fn end_of_head(&self) -> Option<Vec<u8>> {
        match self {
            Splice::Avc { .. } => None,
            Splice::Hevc { .. } => Some(vec![36 << 1, 1]),
        }
    }

    /// The source's box with the head's parameter sets added.
    pub fn write_box(&self) -> Vec<u8> {
        match self {
            Splice::Avc { avcc, .. } => write_avcc(avcc),
            Splice::Hevc { hvcc, .. } => hvcc.write(),
        }
    }
}
