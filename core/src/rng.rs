//! Seeded randomness: the one generator of the workspace. The caller passes the seed; the core
//! has no entropy source. The simulation, the model and the adapters use this generator too, so
//! that a seed means the same stream everywhere.

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and good enough to de-synchronise retries
/// and to draw simulated faults. Not for secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub const fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// A value uniformly spread over `0..=bound` (with a negligible modulo bias).
    pub fn below_or_eq(&mut self, bound: u64) -> u64 {
        match bound.checked_add(1) {
            Some(span) => self.next_u64() % span,
            None => self.next_u64(),
        }
    }

    /// A uniform draw in `[0, 1)` with 53 bits of precision.
    pub fn next_f64(&mut self) -> f64 {
        // The top 53 bits fill an f64 mantissa exactly.
        #[allow(clippy::cast_precision_loss)]
        let top = (self.next_u64() >> 11) as f64;
        top / (1u64 << 53) as f64
    }

    /// `true` with probability `p` (clamped to `[0, 1]`); draws nothing when `p` is zero, so that
    /// adding a zero-probability fault does not shift the random sequence.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.next_f64() < p
    }
}

/// SplitMix64's output function: a seed scrambled into 64 well-mixed bits. Use it to derive one
/// seed from others (`mix(seed ^ key)`), so that neighbouring keys get unrelated streams.
pub const fn mix(z: u64) -> u64 {
    let z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_bounded() {
        let (mut a, mut b) = (SplitMix64::new(7), SplitMix64::new(7));
        for _ in 0..100 {
            let (x, y) = (a.below_or_eq(10), b.below_or_eq(10));
            assert_eq!(x, y);
            assert!(x <= 10);
        }
        assert_ne!(SplitMix64::new(1).next_u64(), SplitMix64::new(2).next_u64());
    }

    #[test]
    fn matches_the_reference_sequence() {
        // Reference values of SplitMix64 seeded with 1234567.
        let mut rng = SplitMix64::new(1_234_567);
        assert_eq!(rng.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(rng.next_u64(), 3_203_168_211_198_807_973);
        assert_eq!(rng.next_u64(), 9_817_491_932_198_370_423);
    }

    #[test]
    fn chance_draws_nothing_at_zero_and_floats_stay_in_range() {
        let mut a = SplitMix64::new(3);
        let b = a;
        assert!(!a.chance(0.0));
        assert_eq!(a, b, "a zero chance must not advance the stream");
        for _ in 0..1_000 {
            let x = a.next_f64();
            assert!((0.0..1.0).contains(&x));
        }
    }
}
