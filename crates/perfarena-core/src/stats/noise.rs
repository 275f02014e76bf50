//! The equivalence margin δ derived from measured noise, for suites that do not set one.

use super::compare::mean_var;

/// The smallest δ [`noise_delta`] returns by default: 1 %.
pub const DEFAULT_NOISE_FLOOR: f64 = 0.01;
/// How many run-to-run standard deviations make δ by default.
pub const DEFAULT_NOISE_MULTIPLIER: f64 = 1.0;

/// δ from the run-to-run noise of the baseline: `multiplier` × the standard deviation of the
/// log values (≈ the coefficient of variation), never below `floor`.
///
/// This is the A/A view of the baseline: two baseline runs differ by a log ratio whose spread
/// is √2 times this standard deviation, so a change smaller than one standard deviation is
/// one the benchmark cannot tell from running the same code twice, and is treated as no change.
/// Only finite, positive samples count; with fewer than two of them the noise cannot be
/// measured and `floor` is returned. A negative or non-finite `floor` counts as 0, and so does
/// a negative or non-finite `multiplier`.
pub fn noise_delta(baseline_samples: &[f64], floor: f64, multiplier: f64) -> f64 {
    let floor = if floor.is_finite() {
        floor.max(0.0)
    } else {
        0.0
    };
    let multiplier = if multiplier.is_finite() {
        multiplier.max(0.0)
    } else {
        0.0
    };
    let logs: Vec<f64> = baseline_samples
        .iter()
        .filter(|value| value.is_finite() && **value > 0.0)
        .map(|value| value.ln())
        .collect();
    if logs.len() < 2 {
        return floor;
    }
    let (_, variance) = mean_var(&logs);
    (multiplier * variance.sqrt()).max(floor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_standard_deviation_times_multiplier() {
        // Log values 0 and 0.1: variance 2 · 0.05² / 1 = 0.005, standard deviation 0.1 / √2.
        let samples = [1.0, 0.1f64.exp()];
        let expected = 0.1 / 2f64.sqrt();
        assert!((noise_delta(&samples, 0.0, 1.0) - expected).abs() < 1e-12);
        assert!((noise_delta(&samples, 0.0, 2.0) - 2.0 * expected).abs() < 1e-12);
    }

    #[test]
    fn floor_applies_to_quiet_or_unmeasurable_baselines() {
        assert_eq!(noise_delta(&[100.0, 100.0, 100.0], 0.01, 1.0), 0.01);
        assert_eq!(noise_delta(&[100.0], 0.01, 1.0), 0.01);
        assert_eq!(noise_delta(&[], 0.02, 1.0), 0.02);
        assert_eq!(noise_delta(&[100.0, -1.0, f64::NAN], 0.01, 1.0), 0.01);
        assert_eq!(noise_delta(&[1.0, 2.0], f64::NAN, -3.0), 0.0);
    }

    #[test]
    fn about_the_cv_for_lognormal_noise() {
        let samples = [97.0, 103.0, 100.0, 96.0, 104.0, 99.0, 101.0];
        let delta = noise_delta(&samples, DEFAULT_NOISE_FLOOR, DEFAULT_NOISE_MULTIPLIER);
        assert!(delta > 0.02 && delta < 0.04, "{delta}");
    }
}
