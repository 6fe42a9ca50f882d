//! HEVC parameter sets as MP4 keeps them (`hvcC`, ISO 14496-15) and the
//! renumbering that lets a libx265 head live beside the source's sets.
//!
//! libx265 always numbers its VPS, SPS and PPS 0, and so do most cameras.
//! The head's sets are given ids the source does not use: the VPS id is a
//! fixed 4-bit field, the SPS and PPS ids are Exp-Golomb codes whose length
//! changes, so those sets and every head slice header are rewritten bit by
//! bit. A slice header is read up to its end (it is followed by byte
//! alignment, then the entropy-coded data, which is copied as is), which
//! needs a few fields of the head's own SPS and PPS ([`HeadSets`]).

use super::bits::{escape, unescape, BitReader, BitWriter};

pub(super) const VPS: u8 = 32;
pub(super) const SPS: u8 = 33;
pub(super) const PPS: u8 = 34;

pub(super) fn nal_type(nal: &[u8]) -> u8 {
    (nal.first().copied().unwrap_or(0) >> 1) & 0x3f
}

/// A parsed `hvcC`: its 22 fixed bytes and its NAL unit arrays.
pub(super) struct Hvcc {
    head: Vec<u8>,
    /// (array_completeness/reserved/type byte, NAL units).
    arrays: Vec<(u8, Vec<Vec<u8>>)>,
}

impl Hvcc {
    pub fn parse(d: &[u8]) -> Option<Hvcc> {
        if d.len() < 23 || d[0] != 1 {
            return None;
        }
        let mut i = 23;
        let mut arrays = Vec::new();
        for _ in 0..d[22] {
            let kind = *d.get(i)?;
            let n = u16::from_be_bytes([*d.get(i + 1)?, *d.get(i + 2)?]);
            i += 3;
            let mut nals = Vec::new();
            for _ in 0..n {
                let len = usize::from(u16::from_be_bytes([*d.get(i)?, *d.get(i + 1)?]));
                nals.push(d.get(i + 2..i + 2 + len)?.to_vec());
                i += 2 + len;
            }
            arrays.push((kind, nals));
        }
        Some(Hvcc {
            head: d[..22].to_vec(),
            arrays,
        })
    }

    /// The box's level becomes the higher of its own and `sps`'s, so it
    /// does not understate the stream.
    pub fn raise_level(&mut self, sps: &[u8]) {
        if let Some(&level) = unescape(sps).get(14) {
            self.head[12] = self.head[12].max(level);
        }
    }

    pub fn length_size(&self) -> usize {
        usize::from(self.head[21] & 3) + 1
    }

    fn of_type(&self, t: u8) -> impl Iterator<Item = &Vec<u8>> {
        self.arrays
            .iter()
            .filter(move |(k, _)| k & 0x3f == t)
            .flat_map(|(_, n)| n.iter())
    }

    /// Adds a NAL unit to its type's array (made if missing).
    pub fn add(&mut self, nal: Vec<u8>) {
        let t = nal_type(&nal);
        match self.arrays.iter_mut().find(|(k, _)| k & 0x3f == t) {
            Some((_, nals)) => nals.push(nal),
            None => self.arrays.push((0x80 | t, vec![nal])),
        }
    }

    pub fn write(&self) -> Vec<u8> {
        let mut out = self.head.clone();
        out.push(self.arrays.len() as u8);
        for (kind, nals) in &self.arrays {
            out.push(*kind);
            out.extend_from_slice(&(nals.len() as u16).to_be_bytes());
            for n in nals {
                out.extend_from_slice(&(n.len() as u16).to_be_bytes());
                out.extend_from_slice(n);
            }
        }
        out
    }

    /// Ids free for the head's VPS, SPS and PPS; `None` when a kind has
    /// none left (or a set does not parse).
    pub fn free_ids(&self) -> Option<Ids> {
        let vps: Vec<u32> = self
            .of_type(VPS)
            .map(|n| vps_id(n))
            .collect::<Option<_>>()?;
        let sps: Vec<u32> = self
            .of_type(SPS)
            .map(|n| sps_ids(&unescape(n)).map(|s| s.sps_id))
            .collect::<Option<_>>()?;
        let pps: Vec<u32> = self
            .of_type(PPS)
            .map(|n| pps_ids(&unescape(n)).map(|(p, _, _)| p))
            .collect::<Option<_>>()?;
        Some(Ids {
            vps: (0..16).find(|i| !vps.contains(i))?,
            sps: (0..16).find(|i| !sps.contains(i))?,
            pps: (0..64).find(|i| !pps.contains(i))?,
        })
    }
}

/// Parameter-set ids for the head.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ids {
    pub vps: u32,
    pub sps: u32,
    pub pps: u32,
}

fn vps_id(nal: &[u8]) -> Option<u32> {
    nal.get(2).map(|b| u32::from(b >> 4))
}

/// Where an SPS's id sits.
struct SpsIds {
    sps_id: u32,
    /// Bits of the RBSP where `sps_seq_parameter_set_id` starts and ends.
    id_at: (usize, usize),
}

/// Skips `profile_tier_level(1, max_sub_layers_minus1)`.
fn skip_profile_tier_level(r: &mut BitReader, max_sub_layers_minus1: u32) -> Option<()> {
    r.skip(88 + 8)?; // general profile (88 bits) and level
    let mut sub = Vec::new();
    for _ in 0..max_sub_layers_minus1 {
        sub.push((r.flag()?, r.flag()?));
    }
    if max_sub_layers_minus1 > 0 {
        r.skip(2 * (8 - max_sub_layers_minus1 as usize))?;
    }
    for (profile, level) in sub {
        if profile {
            r.skip(88)?;
        }
        if level {
            r.skip(8)?;
        }
    }
    Some(())
}

fn sps_ids(rbsp: &[u8]) -> Option<SpsIds> {
    let mut r = BitReader::new(rbsp, 16);
    r.skip(4)?; // vps id
    let max_sub_layers_minus1 = r.u(3)?;
    r.skip(1)?;
    skip_profile_tier_level(&mut r, max_sub_layers_minus1)?;
    let start = r.pos;
    let sps_id = r.ue()?;
    Some(SpsIds {
        sps_id,
        id_at: (start, r.pos),
    })
}

/// (pps id, sps id, bit where they end).
fn pps_ids(rbsp: &[u8]) -> Option<(u32, u32, usize)> {
    let mut r = BitReader::new(rbsp, 16);
    let pps = r.ue()?;
    let sps = r.ue()?;
    Some((pps, sps, r.pos))
}

/// The rest of an RBSP from bit `from` to its stop bit, then the trailing
/// bits again, escaped into a NAL unit.
fn finish(mut w: BitWriter, rbsp: &[u8], from: usize) -> Option<Vec<u8>> {
    let stop = BitReader::new(rbsp, 0).stop_bit()?;
    if stop < from {
        return None;
    }
    w.copy(rbsp, from, stop);
    w.align_with_one();
    Some(escape(&w.into_bytes()))
}

/// The head's VPS with its new id.
pub(super) fn renumber_vps(nal: &[u8], ids: Ids) -> Option<Vec<u8>> {
    let mut out = nal.to_vec();
    let b = out.get_mut(2)?;
    *b = (*b & 0x0f) | ((ids.vps as u8) << 4);
    Some(out)
}

/// The head's SPS with its new id and VPS id.
pub(super) fn renumber_sps(nal: &[u8], ids: Ids) -> Option<Vec<u8>> {
    let rbsp = unescape(nal);
    let at = sps_ids(&rbsp)?.id_at;
    let mut w = BitWriter::default();
    w.copy(&rbsp, 0, 16);
    w.put(4, ids.vps);
    w.copy(&rbsp, 20, at.0);
    w.put_ue(ids.sps);
    finish(w, &rbsp, at.1)
}

/// The head's PPS with its new id and SPS id.
pub(super) fn renumber_pps(nal: &[u8], ids: Ids) -> Option<Vec<u8>> {
    let rbsp = unescape(nal);
    let (_, _, end) = pps_ids(&rbsp)?;
    let mut w = BitWriter::default();
    w.copy(&rbsp, 0, 16);
    w.put_ue(ids.pps);
    w.put_ue(ids.sps);
    finish(w, &rbsp, end)
}

/// What reading the head's slice headers needs from its SPS and PPS.
#[derive(Debug, Default, Clone)]
pub(super) struct HeadSets {
    chroma_array_type: u32,
    separate_colour_plane: bool,
    log2_max_poc_lsb: u32,
    /// NumDeltaPocs of each short-term RPS in the SPS.
    sps_rps_deltas: Vec<u32>,
    long_term_refs: bool,
    temporal_mvp: bool,
    sao: bool,
    dependent_slices: bool,
    output_flag_present: bool,
    extra_slice_header_bits: u32,
    cabac_init_present: bool,
    num_ref_idx_default: [u32; 2],
    slice_chroma_qp_offsets: bool,
    weighted_pred: bool,
    weighted_bipred: bool,
    entry_points: bool,
    loop_filter_across_slices: bool,
    deblocking_override_enabled: bool,
    pps_deblocking_disabled: bool,
    lists_modification: bool,
    header_extension: bool,
}

/// Reads `st_ref_pic_set(idx)` and returns its NumDeltaPocs.
fn st_ref_pic_set(r: &mut BitReader, idx: usize, sets: &[u32], in_slice: bool) -> Option<u32> {
    let inter = idx != 0 && r.flag()?;
    if inter {
        let delta_idx = if in_slice { r.ue()? as usize + 1 } else { 1 };
        r.skip(1)?; // delta_rps_sign
        r.ue()?; // abs_delta_rps_minus1
        let ref_deltas = *sets.get(idx.checked_sub(delta_idx)?)?;
        let mut n = 0;
        for _ in 0..=ref_deltas {
            let used = r.flag()?;
            let use_delta = used || r.flag()?;
            if use_delta {
                n += 1;
            }
        }
        Some(n)
    } else {
        let neg = r.ue()?;
        let pos = r.ue()?;
        if neg > 16 || pos > 16 {
            return None;
        }
        for _ in 0..neg + pos {
            r.ue()?;
            r.skip(1)?;
        }
        Some(neg + pos)
    }
}

impl HeadSets {
    /// Reads the fields from the head's SPS and PPS (as the encoder wrote
    /// them); `None` for features the slice reader does not handle
    /// (scaling lists, tiles, PPS extensions).
    pub fn read(sps: &[u8], pps: &[u8]) -> Option<HeadSets> {
        let mut s = HeadSets::default();
        s.read_sps(&unescape(sps))?;
        s.read_pps(&unescape(pps))?;
        Some(s)
    }

    fn read_sps(&mut self, rbsp: &[u8]) -> Option<()> {
        let mut r = BitReader::new(rbsp, 16);
        r.skip(4)?;
        let max_sub_layers_minus1 = r.u(3)?;
        r.skip(1)?;
        skip_profile_tier_level(&mut r, max_sub_layers_minus1)?;
        r.ue()?; // sps id
        let chroma_format_idc = r.ue()?;
        self.separate_colour_plane = chroma_format_idc == 3 && r.flag()?;
        self.chroma_array_type = if self.separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        r.ue()?; // width
        r.ue()?; // height
        if r.flag()? {
            for _ in 0..4 {
                r.ue()?; // conformance window
            }
        }
        r.ue()?; // bit depths
        r.ue()?;
        self.log2_max_poc_lsb = r.ue()? + 4;
        let all_sub_layers = r.flag()?;
        let first = if all_sub_layers {
            0
        } else {
            max_sub_layers_minus1
        };
        for _ in first..=max_sub_layers_minus1 {
            r.ue()?;
            r.ue()?;
            r.ue()?;
        }
        for _ in 0..6 {
            r.ue()?; // block sizes, transform depths
        }
        if r.flag()? && r.flag()? {
            return None; // scaling list data in the SPS
        }
        r.skip(1)?; // amp
        self.sao = r.flag()?;
        if r.flag()? {
            r.skip(8)?; // pcm bit depths
            r.ue()?;
            r.ue()?;
            r.skip(1)?;
        }
        let n_sets = r.ue()? as usize;
        if n_sets > 64 {
            return None;
        }
        for i in 0..n_sets {
            let n = st_ref_pic_set(&mut r, i, &self.sps_rps_deltas, false)?;
            self.sps_rps_deltas.push(n);
        }
        self.long_term_refs = r.flag()?;
        if self.long_term_refs {
            return None; // libx265 does not use them; not read here
        }
        self.temporal_mvp = r.flag()?;
        Some(())
    }

    fn read_pps(&mut self, rbsp: &[u8]) -> Option<()> {
        let mut r = BitReader::new(rbsp, 16);
        r.ue()?;
        r.ue()?;
        self.dependent_slices = r.flag()?;
        self.output_flag_present = r.flag()?;
        self.extra_slice_header_bits = r.u(3)?;
        r.skip(1)?; // sign data hiding
        self.cabac_init_present = r.flag()?;
        self.num_ref_idx_default = [r.ue()? + 1, r.ue()? + 1];
        r.se()?; // init qp
        r.skip(2)?; // constrained intra, transform skip
        if r.flag()? {
            r.ue()?; // cu qp delta depth
        }
        r.se()?;
        r.se()?;
        self.slice_chroma_qp_offsets = r.flag()?;
        self.weighted_pred = r.flag()?;
        self.weighted_bipred = r.flag()?;
        r.skip(1)?; // transquant bypass
        let tiles = r.flag()?;
        let wpp = r.flag()?;
        if tiles {
            return None;
        }
        self.entry_points = wpp;
        self.loop_filter_across_slices = r.flag()?;
        if r.flag()? {
            self.deblocking_override_enabled = r.flag()?;
            self.pps_deblocking_disabled = r.flag()?;
            if !self.pps_deblocking_disabled {
                r.se()?;
                r.se()?;
            }
        }
        if r.flag()? {
            return None; // scaling list data in the PPS
        }
        self.lists_modification = r.flag()?;
        r.ue()?; // parallel merge level
        self.header_extension = r.flag()?;
        if r.flag()? {
            return None; // PPS extensions (range extension chroma QP lists…)
        }
        Some(())
    }

    /// A head slice NAL unit with its PPS id replaced by `pps_id`: the
    /// header is read to its end and rewritten, the slice data copied.
    /// `None` when the header holds what this reader does not handle.
    pub fn renumber_slice(&self, nal: &[u8], pps_id: u32) -> Option<Vec<u8>> {
        let rbsp = unescape(nal);
        let t = nal_type(nal);
        let mut r = BitReader::new(&rbsp, 16);
        let first_in_pic = r.flag()?;
        if !first_in_pic {
            return None; // one slice per picture from the head's encoder
        }
        if (16..=23).contains(&t) {
            r.skip(1)?; // no_output_of_prior_pics_flag
        }
        let id_start = r.pos;
        r.ue()?;
        let id_end = r.pos;
        self.skip_slice_header(&mut r, t)?;
        let header_end = r.pos;
        // byte_alignment(): a one, then zeros.
        if r.bit()? != 1 {
            return None;
        }
        while !r.pos.is_multiple_of(8) {
            if r.bit()? != 0 {
                return None;
            }
        }
        let mut w = BitWriter::default();
        w.copy(&rbsp, 0, id_start);
        w.put_ue(pps_id);
        w.copy(&rbsp, id_end, header_end);
        w.align_with_one();
        debug_assert!(w.is_aligned());
        let mut out = w.into_bytes();
        out.extend_from_slice(&rbsp[r.pos / 8..]);
        Some(escape(&out))
    }

    /// Reads a slice segment header from after the PPS id to just before
    /// its byte alignment (the first slice segment of a picture).
    fn skip_slice_header(&self, r: &mut BitReader, t: u8) -> Option<()> {
        r.skip(self.extra_slice_header_bits as usize)?;
        let slice_type = r.ue()?; // 0 B, 1 P, 2 I
        if self.output_flag_present {
            r.skip(1)?;
        }
        if self.separate_colour_plane {
            r.skip(2)?;
        }
        let mut slice_tmvp = false;
        if t != 19 && t != 20 {
            r.skip(self.log2_max_poc_lsb as usize)?;
            if r.flag()? {
                if self.sps_rps_deltas.len() > 1 {
                    let bits = usize::BITS - (self.sps_rps_deltas.len() - 1).leading_zeros();
                    r.skip(bits as usize)?;
                }
            } else {
                let n = self.sps_rps_deltas.len();
                st_ref_pic_set(r, n, &self.sps_rps_deltas, true)?;
            }
            if self.temporal_mvp {
                slice_tmvp = r.flag()?;
            }
        }
        let (mut sao_luma, mut sao_chroma) = (false, false);
        if self.sao {
            sao_luma = r.flag()?;
            if self.chroma_array_type != 0 {
                sao_chroma = r.flag()?;
            }
        }
        if slice_type <= 1 {
            self.skip_inter_fields(r, slice_type, slice_tmvp)?;
        }
        r.se()?; // slice_qp_delta
        if self.slice_chroma_qp_offsets {
            r.se()?;
            r.se()?;
        }
        let override_flag = self.deblocking_override_enabled && r.flag()?;
        let deblocking_disabled = if override_flag {
            let disabled = r.flag()?;
            if !disabled {
                r.se()?;
                r.se()?;
            }
            disabled
        } else {
            self.pps_deblocking_disabled
        };
        if self.loop_filter_across_slices && (sao_luma || sao_chroma || !deblocking_disabled) {
            r.skip(1)?;
        }
        if self.entry_points {
            let n = r.ue()?;
            if n > 0 {
                let len = r.ue()? + 1;
                r.skip(n as usize * len as usize)?;
            }
        }
        if self.header_extension {
            let n = r.ue()?;
            r.skip(8 * n as usize)?;
        }
        Some(())
    }

    /// The P/B slice fields, up to `five_minus_max_num_merge_cand`.
    fn skip_inter_fields(&self, r: &mut BitReader, slice_type: u32, tmvp: bool) -> Option<()> {
        let b = slice_type == 0;
        let mut active = self.num_ref_idx_default;
        if r.flag()? {
            active[0] = r.ue()? + 1;
            if b {
                active[1] = r.ue()? + 1;
            }
        }
        if self.lists_modification {
            return None; // libx265 does not signal list modifications
        }
        if b {
            r.skip(1)?; // mvd_l1_zero_flag
        }
        if self.cabac_init_present {
            r.skip(1)?;
        }
        if tmvp {
            let from_l0 = !b || r.flag()?;
            if (from_l0 && active[0] > 1) || (!from_l0 && active[1] > 1) {
                r.ue()?;
            }
        }
        if (self.weighted_pred && !b) || (self.weighted_bipred && b) {
            return None; // weighted prediction is turned off for the head
        }
        r.ue()?; // five_minus_max_num_merge_cand
        Some(())
    }
}
