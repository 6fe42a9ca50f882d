//! Deterministic pseudo-random signals for unit tests: the same numbers on
//! every machine, from two plain linear congruential generators (the tests
//! need repeatability, not statistical quality).

/// 64-bit LCG giving values in `-1..1`.
pub struct Lcg(pub u64);

impl Lcg {
    fn step(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0
    }

    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> f32 {
        ((self.step() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// An integer in `0..n` (from the state's top 31 bits).
    pub fn below(&mut self, n: u64) -> u64 {
        (self.step() >> 33) % n
    }
}

/// `n` values of [`Lcg`] from `seed`, in `-1..1`.
pub fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Lcg(seed);
    (0..n).map(|_| rng.next()).collect()
}

/// `n` values in `0..1` from a 32-bit LCG started at `seed`.
pub fn unit_noise32(n: usize, mut seed: u32) -> Vec<f32> {
    (0..n)
        .map(|_| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32
        })
        .collect()
}

/// [`unit_noise32`] centred: values in `-0.5..0.5`.
pub fn centred_noise32(n: usize, seed: u32) -> Vec<f32> {
    unit_noise32(n, seed).into_iter().map(|v| v - 0.5).collect()
}

/// A test that cannot run on this machine says why. Under `CI=true` that
/// fails the test: in CI a skip must never pass silently. (Only Linux-only
/// tests call it so far.)
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub fn skip(reason: &str) {
    eprintln!("SKIPPED: {reason}");
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "skipped under CI=true: {reason}"
    );
}
