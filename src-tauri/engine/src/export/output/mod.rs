//! The output file.

#[cfg(target_os = "linux")]
pub(crate) mod direct;
