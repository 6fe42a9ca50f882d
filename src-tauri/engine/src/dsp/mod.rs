//! Signal processing the align pipeline is built from: cross-correlation
//! ([`xcorr`]), GCC-PHAT ([`gcc`]), sub-sample reading ([`interp`]), onset
//! envelopes ([`onset`]), spectral shape ([`spectral`]), beat tracking
//! ([`beats`]) and the small thread pool they share ([`par`]).
//! Crate-private: nothing here is part of the engine's public API.

pub(crate) mod beats;
pub(crate) mod gcc;
pub(crate) mod interp;
pub(crate) mod onset;
pub(crate) mod par;
pub(crate) mod spectral;
pub(crate) mod xcorr;
