//! Alignment on real media generated at test time (placeholder, filled below).
