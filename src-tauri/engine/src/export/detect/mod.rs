//! The detectors that give the trim its facts: where the song is audible in
//! itself ([`song`]), and whether the recording ends in black picture
//! ([`black`]).

pub(crate) mod black;
pub(crate) mod song;
