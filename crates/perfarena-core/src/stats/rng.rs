//! The seeded random source of the statistics module: a portable generator and normal draws.
//!
//! Xoshiro256++ is used rather than `StdRng` because its output for a given seed is fixed by
//! its algorithm, so schedules and benchmark figures stay reproducible across `rand` releases.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

pub(crate) type SeededRng = Xoshiro256PlusPlus;

/// A generator seeded from `seed` alone.
pub(crate) fn seeded(seed: u64) -> SeededRng {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

/// Mixes several numbers into one well-spread seed (SplitMix64 finaliser over each part), so
/// that streams for neighbouring indices are unrelated.
pub(crate) fn mix_seed(parts: &[u64]) -> u64 {
    let mut state: u64 = 0x243f_6a88_85a3_08d3;
    for &part in parts {
        state = state.wrapping_add(part).wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        state = z ^ (z >> 31);
    }
    state
}

/// One standard normal draw (Box–Muller; the second value of the pair is dropped, which keeps
/// the generator stateless at the cost of speed we do not need).
pub(crate) fn standard_normal(rng: &mut SeededRng) -> f64 {
    // `random::<f64>()` lies in [0, 1); 1 − u lies in (0, 1], so the logarithm is finite.
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let mut a = seeded(7);
        let mut b = seeded(7);
        for _ in 0..10 {
            assert_eq!(standard_normal(&mut a), standard_normal(&mut b));
        }
    }

    #[test]
    fn mix_seed_separates_neighbours() {
        assert_ne!(mix_seed(&[1, 2]), mix_seed(&[2, 1]));
        assert_ne!(mix_seed(&[0, 0]), mix_seed(&[0, 1]));
    }

    #[test]
    fn normal_draws_have_unit_moments() {
        let mut rng = seeded(42);
        let n = 20_000;
        let draws: Vec<f64> = (0..n).map(|_| standard_normal(&mut rng)).collect();
        let mean = draws.iter().sum::<f64>() / n as f64;
        let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0);
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "variance {var}");
    }
}
