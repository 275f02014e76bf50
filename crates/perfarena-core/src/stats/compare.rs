//! Comparing two sets of samples: the direction-aware ratio, its confidence interval on log
//! values (Welch or bootstrap), the verdict, and Holm's correction across a task's family.

use statrs::distribution::{ContinuousCDF, StudentsT};

use super::holm::holm;
use super::rng::seeded;
use super::{Comparison, Direction, Method, StatsConfig, Verdict};
use rand::RngExt;

/// The samples of one comparison in a family: control (e.g. baseline) and treatment.
#[derive(Debug, Clone, Copy)]
pub struct SamplePair<'a> {
    pub control: &'a [f64],
    pub treatment: &'a [f64],
}

/// Compares `treatment` against `control` on one metric, on its own (no multiplicity
/// correction: `p_adjusted` equals `p_value`). See [`Comparison`] for what is filled when.
pub fn compare(
    control: &[f64],
    treatment: &[f64],
    direction: Direction,
    cfg: &StatsConfig,
) -> Comparison {
    compare_at(control, treatment, direction, cfg, Adjustment::None)
}

/// Compares a task's family of comparisons (human vs baseline, each candidate vs baseline,
/// each candidate vs human) with Holm's correction at the family-wise level `cfg.confidence`.
///
/// Holm is applied to the p-values; then each comparison's interval is recomputed at the
/// confidence level of its Holm step, so that interval, adjusted p-value and verdict always
/// agree: the k comparisons Holm rejects (ranked by p-value, rank r = 0..k) get level
/// 1 − α/(m − r), which excludes no change; the others get the level at which the step-down
/// stopped, 1 − α/(m − k), which includes it. Comparisons without a test (too few or unusable
/// samples) are left out of the family and keep `p_adjusted = None`.
pub fn compare_family(
    pairs: &[SamplePair<'_>],
    direction: Direction,
    cfg: &StatsConfig,
) -> Vec<Comparison> {
    let mut out: Vec<Comparison> = pairs
        .iter()
        .map(|pair| {
            compare_at(
                pair.control,
                pair.treatment,
                direction,
                cfg,
                Adjustment::None,
            )
        })
        .collect();
    if cfg.validate().is_err() {
        return out;
    }
    let tested: Vec<(usize, f64)> = out
        .iter()
        .enumerate()
        .filter_map(|(idx, comparison)| comparison.p_value.map(|p| (idx, p)))
        .collect();
    let family = tested.len();
    if family <= 1 {
        return out;
    }
    let p_values: Vec<f64> = tested.iter().map(|&(_, p)| p).collect();
    let adjusted = holm(&p_values);
    let alpha = 1.0 - cfg.confidence;
    let mut order: Vec<usize> = (0..family).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]).then(a.cmp(&b)));
    let rejected = adjusted.iter().filter(|&&p| p <= alpha).count();
    for (rank, &member) in order.iter().enumerate() {
        let divisor = if rank < rejected {
            family - rank
        } else {
            family - rejected
        };
        let level = 1.0 - alpha / divisor as f64;
        let (idx, _) = tested[member];
        let pair = pairs[idx];
        out[idx] = compare_at(
            pair.control,
            pair.treatment,
            direction,
            &cfg.with_confidence(level),
            Adjustment::Holm {
                p_adjusted: adjusted[member],
                family,
            },
        );
    }
    out
}

/// Whether a comparison stands alone or is part of a Holm family.
#[derive(Debug, Clone, Copy)]
enum Adjustment {
    None,
    Holm { p_adjusted: f64, family: usize },
}

/// An interval for the difference of mean log values (treatment side minus control side,
/// already oriented so that positive = better).
#[derive(Debug, Clone, Copy)]
struct Interval {
    estimate: f64,
    low: f64,
    high: f64,
    p_value: f64,
    std_error: f64,
    df: Option<f64>,
    /// Neither side varies: the interval is the point estimate itself.
    zero_variance: bool,
}

fn compare_at(
    control: &[f64],
    treatment: &[f64],
    direction: Direction,
    cfg: &StatsConfig,
    adjustment: Adjustment,
) -> Comparison {
    let mut comparison = Comparison {
        n_control: control.len(),
        n_treatment: treatment.len(),
        median_control: median(control),
        median_treatment: median(treatment),
        ratio: None,
        ci_low: None,
        ci_high: None,
        confidence: cfg.confidence,
        p_value: None,
        p_adjusted: None,
        std_error: None,
        df: None,
        delta: cfg.delta,
        verdict: Verdict::Inconclusive,
        method: cfg.method.name(),
        explanation: String::new(),
    };
    if let Err(error) = cfg.validate() {
        comparison.explanation = format!("inconclusive: invalid statistics settings: {error}");
        return comparison;
    }
    if let Some(problem) = unusable(control, "control").or_else(|| unusable(treatment, "treatment"))
    {
        comparison.explanation = format!("inconclusive: {problem}");
        return comparison;
    }
    let log_control: Vec<f64> = control.iter().map(|value| value.ln()).collect();
    let log_treatment: Vec<f64> = treatment.iter().map(|value| value.ln()).collect();
    // Orient so that "second minus first" is positive when the treatment is better.
    let (first, second) = match direction {
        Direction::Higher => (&log_control, &log_treatment),
        Direction::Lower => (&log_treatment, &log_control),
    };
    if !first.is_empty() && !second.is_empty() {
        comparison.ratio = Some((mean(second) - mean(first)).exp());
    }
    if control.len() < 2 || treatment.len() < 2 {
        comparison.explanation = format!(
            "inconclusive: one run is never enough: {} control and {} treatment samples, at \
             least 2 on each side are needed",
            control.len(),
            treatment.len()
        );
        return comparison;
    }
    let interval = match cfg.method {
        Method::Welch => welch(first, second, cfg.confidence),
        Method::Bootstrap { resamples, seed } => {
            bootstrap(first, second, cfg.confidence, resamples, seed)
        }
    };
    let interval = match interval {
        Ok(interval) => interval,
        Err(problem) => {
            comparison.explanation = format!("inconclusive: {problem}");
            return comparison;
        }
    };
    comparison.ratio = Some(interval.estimate.exp());
    comparison.ci_low = Some(interval.low.exp());
    comparison.ci_high = Some(interval.high.exp());
    comparison.p_value = Some(interval.p_value);
    comparison.std_error = Some(interval.std_error);
    comparison.df = interval.df;
    comparison.verdict = classify(interval.low, interval.high, cfg.delta);
    comparison.p_adjusted = match adjustment {
        Adjustment::None => Some(interval.p_value),
        Adjustment::Holm { p_adjusted, .. } => Some(p_adjusted),
    };
    comparison.explanation = explain(&comparison, &interval, adjustment);
    comparison
}

/// The verdict of an interval of the log ratio (oriented: positive = better) against ±δ.
///
/// Equivalence is checked first: an interval inside ±δ says the change, whatever its sign, is
/// smaller than the margin, even when it also excludes no change.
pub(crate) fn classify(log_low: f64, log_high: f64, delta: f64) -> Verdict {
    let band = delta.ln_1p();
    if log_low >= -band && log_high <= band {
        Verdict::Equivalent
    } else if log_low > 0.0 {
        Verdict::Better
    } else if log_high < 0.0 {
        Verdict::Worse
    } else {
        Verdict::Inconclusive
    }
}

/// Why a side's samples cannot be compared on the log scale, if they cannot.
fn unusable(samples: &[f64], side: &str) -> Option<String> {
    if let Some(value) = samples.iter().find(|value| !value.is_finite()) {
        return Some(format!("{side} sample {value} is not a finite number"));
    }
    if let Some(value) = samples.iter().find(|&&value| value <= 0.0) {
        return Some(format!(
            "{side} sample {value} is not positive: ratios are computed on log values, which \
             need positive metrics"
        ));
    }
    None
}

/// Welch's t interval for mean(second) − mean(first).
fn welch(first: &[f64], second: &[f64], confidence: f64) -> Result<Interval, String> {
    let (mean_first, var_first) = mean_var(first);
    let (mean_second, var_second) = mean_var(second);
    let estimate = mean_second - mean_first;
    let share_first = var_first / first.len() as f64;
    let share_second = var_second / second.len() as f64;
    let std_error = (share_first + share_second).sqrt();
    let scale = 1.0 + mean_first.abs().max(mean_second.abs());
    if std_error <= 1e-12 * scale {
        return Ok(point_interval(estimate, scale));
    }
    let df = (share_first + share_second).powi(2)
        / (share_first.powi(2) / (first.len() - 1) as f64
            + share_second.powi(2) / (second.len() - 1) as f64);
    let t = StudentsT::new(0.0, 1.0, df)
        .map_err(|error| format!("no t distribution with {df} degrees of freedom: {error}"))?;
    let t_crit = t.inverse_cdf(1.0 - (1.0 - confidence) / 2.0);
    let p_value = (2.0 * t.sf(estimate.abs() / std_error)).min(1.0);
    Ok(Interval {
        estimate,
        low: estimate - t_crit * std_error,
        high: estimate + t_crit * std_error,
        p_value,
        std_error,
        df: Some(df),
        zero_variance: false,
    })
}

/// Percentile bootstrap interval for mean(second) − mean(first), each side resampled with
/// replacement on its own; the p-value is the two-sided bootstrap tail share of no change.
fn bootstrap(
    first: &[f64],
    second: &[f64],
    confidence: f64,
    resamples: usize,
    seed: u64,
) -> Result<Interval, String> {
    let estimate = mean(second) - mean(first);
    let scale = 1.0 + mean(first).abs().max(mean(second).abs());
    if mean_var(first).1 + mean_var(second).1 <= 1e-24 * scale * scale {
        return Ok(point_interval(estimate, scale));
    }
    let mut rng = seeded(seed);
    let mut resample_mean = |side: &[f64]| {
        let total: f64 = (0..side.len())
            .map(|_| side[rng.random_range(0..side.len())])
            .sum();
        total / side.len() as f64
    };
    let mut diffs: Vec<f64> = (0..resamples)
        .map(|_| -resample_mean(first) + resample_mean(second))
        .collect();
    diffs.sort_by(f64::total_cmp);
    let alpha = 1.0 - confidence;
    let at_or_below = diffs.iter().filter(|&&diff| diff <= 0.0).count();
    let at_or_above = diffs.iter().filter(|&&diff| diff >= 0.0).count();
    let tail = (at_or_below.min(at_or_above) + 1) as f64 / (resamples + 1) as f64;
    Ok(Interval {
        estimate,
        low: quantile_sorted(&diffs, alpha / 2.0),
        high: quantile_sorted(&diffs, 1.0 - alpha / 2.0),
        p_value: (2.0 * tail).min(1.0),
        std_error: mean_var(&diffs).1.sqrt(),
        df: None,
        zero_variance: false,
    })
}

/// The degenerate interval when neither side varies: the difference is known exactly.
fn point_interval(estimate: f64, scale: f64) -> Interval {
    let estimate = if estimate.abs() <= 1e-12 * scale {
        0.0
    } else {
        estimate
    };
    Interval {
        estimate,
        low: estimate,
        high: estimate,
        p_value: if estimate == 0.0 { 1.0 } else { 0.0 },
        std_error: 0.0,
        df: None,
        zero_variance: true,
    }
}

fn explain(comparison: &Comparison, interval: &Interval, adjustment: Adjustment) -> String {
    let pct = |log: f64| format!("{:+.1}%", log.exp_m1() * 100.0);
    let delta_pct = format_level(comparison.delta * 100.0);
    let reason = match comparison.verdict {
        Verdict::Better => "the interval lies above no change".to_string(),
        Verdict::Worse => "the interval lies below no change".to_string(),
        Verdict::Equivalent => format!("the interval lies inside ±{delta_pct}%"),
        Verdict::Inconclusive => {
            format!("the interval includes no change and reaches beyond ±{delta_pct}%")
        }
    };
    let mut test = format!("{} p={}", comparison.method, format_p(interval.p_value));
    if let Adjustment::Holm { p_adjusted, family } = adjustment {
        test.push_str(&format!(", Holm p={} over {family}", format_p(p_adjusted)));
    }
    let mut line = format!(
        "{}: {} ({}% CI {} to {}, {test}); {reason}",
        comparison.verdict,
        pct(interval.estimate),
        format_level(comparison.confidence * 100.0),
        pct(interval.low),
        pct(interval.high),
    );
    if interval.zero_variance {
        line.push_str("; no run-to-run variation on either side, so the interval is the point");
    }
    line
}

/// A percentage or level without needless decimals: 95, 98.3, 2, 0.5.
pub(crate) fn format_level(value: f64) -> String {
    let text = format!("{value:.1}");
    text.strip_suffix(".0").map(str::to_string).unwrap_or(text)
}

fn format_p(p: f64) -> String {
    if p < 0.0001 {
        "<0.0001".to_string()
    } else {
        format!("{p:.4}")
    }
}

pub(crate) fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Mean and sample variance (n − 1); the variance of fewer than two values is 0.
pub(crate) fn mean_var(values: &[f64]) -> (f64, f64) {
    let center = mean(values);
    if values.len() < 2 {
        return (center, 0.0);
    }
    let sum_sq: f64 = values.iter().map(|value| (value - center).powi(2)).sum();
    (center, sum_sq / (values.len() - 1) as f64)
}

/// The median of finite values (`None` when empty or when any value is not finite).
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() || values.iter().any(|value| !value.is_finite()) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    })
}

/// Linear-interpolation quantile (type 7) of sorted values; `q` in [0, 1].
fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let position = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lower = position.floor() as usize;
    let upper = position.ceil() as usize;
    let weight = position - lower as f64;
    sorted[lower] * (1.0 - weight) + sorted[upper] * weight
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::MethodName;

    fn exp_all(values: &[f64]) -> Vec<f64> {
        values.iter().map(|value| value.exp()).collect()
    }

    fn close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "expected {expected} ± {tolerance}, got {actual}"
        );
    }

    /// Log values 1..5 vs 3..7: equal variances 2.5 and n = 5, so se = 1, df = 8 exactly,
    /// t(0.975, 8) = 2.306004 (tables) and the two-sided p of t = 2 at 8 df is 0.080516.
    #[test]
    fn welch_matches_hand_computation_equal_variances() {
        let control = exp_all(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        let treatment = exp_all(&[3.0, 4.0, 5.0, 6.0, 7.0]);
        let cfg = StatsConfig {
            delta: 0.02,
            ..StatsConfig::default()
        };
        let comparison = compare(&control, &treatment, Direction::Higher, &cfg);
        close(comparison.ratio.unwrap().ln(), 2.0, 1e-12);
        close(comparison.std_error.unwrap(), 1.0, 1e-12);
        close(comparison.df.unwrap(), 8.0, 1e-9);
        close(comparison.ci_low.unwrap().ln(), 2.0 - 2.306004, 1e-5);
        close(comparison.ci_high.unwrap().ln(), 2.0 + 2.306004, 1e-5);
        close(comparison.p_value.unwrap(), 0.080516, 1e-5);
        assert_eq!(comparison.verdict, Verdict::Inconclusive);
        assert_eq!(comparison.method, MethodName::Welch);
        assert_eq!(comparison.p_adjusted, comparison.p_value);
    }

    /// Log values 1..5 (var 2.5) vs 2,4,6,8,10 (var 10): se² = 0.5 + 2 = 2.5,
    /// df = 2.5² / (0.5²/4 + 2²/4) = 6.25 / 1.0625 = 5.882353 (Welch–Satterthwaite by hand).
    #[test]
    fn welch_matches_hand_computation_unequal_variances() {
        let control = exp_all(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        let treatment = exp_all(&[2.0, 4.0, 6.0, 8.0, 10.0]);
        let comparison = compare(
            &control,
            &treatment,
            Direction::Higher,
            &StatsConfig::default(),
        );
        close(comparison.std_error.unwrap(), 2.5f64.sqrt(), 1e-12);
        close(comparison.df.unwrap(), 6.25 / 1.0625, 1e-9);
        // t(0.975, 5.882) lies between t(0.975, 6) = 2.447 and t(0.975, 5) = 2.571.
        let half_width = (comparison.ci_high.unwrap().ln() - comparison.ci_low.unwrap().ln()) / 2.0;
        let t_crit = half_width / 2.5f64.sqrt();
        assert!(t_crit > 2.447 && t_crit < 2.571, "t_crit {t_crit}");
        close(comparison.ratio.unwrap().ln(), 3.0, 1e-12);
    }

    #[test]
    fn lower_is_better_inverts_the_ratio() {
        let control = [100.0, 101.0, 99.0, 100.5, 99.5];
        let treatment = [90.0, 91.0, 89.0, 90.5, 89.5];
        let higher = compare(
            &control,
            &treatment,
            Direction::Higher,
            &StatsConfig::default(),
        );
        let lower = compare(
            &control,
            &treatment,
            Direction::Lower,
            &StatsConfig::default(),
        );
        assert_eq!(higher.verdict, Verdict::Worse);
        assert_eq!(lower.verdict, Verdict::Better);
        close(higher.ratio.unwrap() * lower.ratio.unwrap(), 1.0, 1e-12);
        close(higher.ci_low.unwrap() * lower.ci_high.unwrap(), 1.0, 1e-12);
        close(higher.p_value.unwrap(), lower.p_value.unwrap(), 1e-12);
        assert!(
            lower.explanation.starts_with("better: +11.1%"),
            "{}",
            lower.explanation
        );
    }

    #[test]
    fn tight_interval_inside_delta_is_equivalent() {
        let control = [100.0, 100.2, 99.8, 100.1, 99.9, 100.0];
        let treatment = [100.3, 100.5, 100.1, 100.4, 100.2, 100.3];
        let comparison = compare(
            &control,
            &treatment,
            Direction::Higher,
            &StatsConfig::default(),
        );
        // Significant (+0.3 %) but far smaller than δ = 2 %: equivalent, not better.
        assert!(comparison.p_value.unwrap() < 0.05);
        assert_eq!(comparison.verdict, Verdict::Equivalent);
        assert!(
            comparison.explanation.contains("inside ±2%"),
            "{}",
            comparison.explanation
        );
    }

    #[test]
    fn one_run_is_never_enough() {
        let comparison = compare(
            &[100.0],
            &[150.0],
            Direction::Higher,
            &StatsConfig::default(),
        );
        assert_eq!(comparison.verdict, Verdict::Inconclusive);
        assert!(comparison.explanation.contains("one run is never enough"));
        close(comparison.ratio.unwrap(), 1.5, 1e-12);
        assert_eq!(comparison.ci_low, None);
        assert_eq!(comparison.p_value, None);
        let empty = compare(&[], &[1.0, 2.0], Direction::Higher, &StatsConfig::default());
        assert_eq!(empty.verdict, Verdict::Inconclusive);
        assert_eq!(empty.ratio, None);
        assert_eq!(empty.median_control, None);
    }

    #[test]
    fn non_positive_and_non_finite_values_are_inconclusive_with_reason() {
        let cfg = StatsConfig::default();
        let zero = compare(&[1.0, 0.0], &[1.0, 2.0], Direction::Higher, &cfg);
        assert_eq!(zero.verdict, Verdict::Inconclusive);
        assert!(
            zero.explanation
                .contains("control sample 0 is not positive"),
            "{}",
            zero.explanation
        );
        let negative = compare(&[1.0, 2.0], &[-1.0, 2.0], Direction::Lower, &cfg);
        assert!(
            negative
                .explanation
                .contains("treatment sample -1 is not positive")
        );
        let nan = compare(&[1.0, f64::NAN], &[1.0, 2.0], Direction::Higher, &cfg);
        assert!(nan.explanation.contains("not a finite number"));
        assert_eq!(nan.median_control, None);
    }

    #[test]
    fn zero_variance_is_handled_exactly() {
        let cfg = StatsConfig::default();
        let same = compare(&[5.0, 5.0, 5.0], &[5.0, 5.0], Direction::Higher, &cfg);
        assert_eq!(same.verdict, Verdict::Equivalent);
        assert_eq!(same.p_value, Some(1.0));
        assert_eq!(same.ratio, Some(1.0));
        assert!(same.explanation.contains("no run-to-run variation"));
        let faster = compare(&[5.0, 5.0, 5.0], &[6.0, 6.0, 6.0], Direction::Higher, &cfg);
        assert_eq!(faster.verdict, Verdict::Better);
        assert_eq!(faster.ci_low, faster.ci_high);
        // One side varying is an ordinary Welch case with df = n − 1 of the varying side.
        let one_side = compare(&[5.0, 5.0, 5.0], &[6.0, 6.5, 5.5], Direction::Higher, &cfg);
        close(one_side.df.unwrap(), 2.0, 1e-9);
    }

    #[test]
    fn invalid_config_is_reported_not_panicked() {
        let cfg = StatsConfig {
            confidence: 1.5,
            ..StatsConfig::default()
        };
        let comparison = compare(&[1.0, 2.0], &[1.0, 2.0], Direction::Higher, &cfg);
        assert_eq!(comparison.verdict, Verdict::Inconclusive);
        assert!(
            comparison
                .explanation
                .contains("confidence must lie strictly between 0 and 1")
        );
    }

    #[test]
    fn bootstrap_agrees_with_welch_on_clear_cases_and_is_seeded() {
        let control = [
            100.0, 102.0, 98.0, 101.0, 99.0, 100.5, 99.5, 100.0, 101.5, 98.5,
        ];
        let treatment: Vec<f64> = control.iter().map(|value| value * 1.10).collect();
        let cfg = StatsConfig {
            method: Method::Bootstrap {
                resamples: 2000,
                seed: 11,
            },
            ..StatsConfig::default()
        };
        let first = compare(&control, &treatment, Direction::Higher, &cfg);
        let again = compare(&control, &treatment, Direction::Higher, &cfg);
        assert_eq!(first, again);
        assert_eq!(first.verdict, Verdict::Better);
        assert_eq!(first.method, MethodName::Bootstrap);
        assert_eq!(first.df, None);
        close(first.ratio.unwrap(), 1.10, 1e-9);
        let welch = compare(
            &control,
            &treatment,
            Direction::Higher,
            &StatsConfig::default(),
        );
        // The percentile interval of the same data is a little narrower than Welch's at n = 10.
        assert!(first.ci_low.unwrap() >= welch.ci_low.unwrap() - 0.005);
        assert!(first.ci_high.unwrap() <= welch.ci_high.unwrap() + 0.005);
        // All 2000 resampled differences are positive: p is the smallest the resampling gives.
        close(first.p_value.unwrap(), 2.0 / 2001.0, 1e-12);
    }

    #[test]
    fn family_applies_holm_and_steps_confidence() {
        let baseline = [100.0, 101.0, 99.0, 100.5, 99.5, 100.2];
        let human: Vec<f64> = baseline.iter().map(|value| value * 1.08).collect();
        let candidate = [100.4, 99.0, 101.2, 100.0, 99.4, 100.8];
        let pairs = [
            SamplePair {
                control: &baseline,
                treatment: &human,
            },
            SamplePair {
                control: &baseline,
                treatment: &candidate,
            },
            SamplePair {
                control: &human,
                treatment: &candidate,
            },
            SamplePair {
                control: &baseline,
                treatment: &[100.0],
            },
        ];
        let cfg = StatsConfig::default();
        let family = compare_family(&pairs, Direction::Higher, &cfg);
        let alone: Vec<Comparison> = pairs
            .iter()
            .map(|pair| compare(pair.control, pair.treatment, Direction::Higher, &cfg))
            .collect();
        let adjusted = holm(&[
            alone[0].p_value.unwrap(),
            alone[1].p_value.unwrap(),
            alone[2].p_value.unwrap(),
        ]);
        for idx in 0..3 {
            close(family[idx].p_adjusted.unwrap(), adjusted[idx], 1e-12);
            assert_eq!(family[idx].p_value, alone[idx].p_value);
            assert!(
                family[idx].explanation.contains("Holm p="),
                "{}",
                family[idx].explanation
            );
        }
        assert_eq!(family[0].verdict, Verdict::Better);
        assert_eq!(family[2].verdict, Verdict::Worse);
        // The two rejected comparisons: levels 1 − 0.05/3 and 1 − 0.05/2 in p order; the third
        // is not rejected and gets the level where the step-down stopped, 1 − 0.05/1.
        let mut levels: Vec<f64> = family[..3].iter().map(|c| c.confidence).collect();
        levels.sort_by(f64::total_cmp);
        close(levels[0], 0.95, 1e-12);
        close(levels[1], 1.0 - 0.05 / 2.0, 1e-12);
        close(levels[2], 1.0 - 0.05 / 3.0, 1e-12);
        // The untestable comparison stays out of the family.
        assert_eq!(family[3].p_adjusted, None);
        assert_eq!(family[3].verdict, Verdict::Inconclusive);
    }

    #[test]
    fn family_verdicts_agree_with_adjusted_p_values() {
        // Near the edge: each comparison alone is significant at 5 %, but not all of them
        // survive Holm, and the stepped intervals must say the same as the adjusted p-values.
        let control = [100.0, 103.0, 97.0, 101.0, 99.0];
        let pairs_data: Vec<Vec<f64>> = [1.03, 1.035, 1.04, 1.06]
            .iter()
            .map(|factor| control.iter().map(|value| value * factor).collect())
            .collect();
        let pairs: Vec<SamplePair<'_>> = pairs_data
            .iter()
            .map(|treatment| SamplePair {
                control: &control,
                treatment,
            })
            .collect();
        let cfg = StatsConfig {
            delta: 0.0,
            ..StatsConfig::default()
        };
        for comparison in compare_family(&pairs, Direction::Higher, &cfg) {
            let significant = comparison.p_adjusted.unwrap() <= 0.05;
            let excludes_one = comparison.ci_low.unwrap() > 1.0;
            assert_eq!(significant, excludes_one, "{}", comparison.explanation);
        }
    }

    #[test]
    fn median_and_quantile_helpers() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        close(quantile_sorted(&[0.0, 10.0], 0.25), 2.5, 1e-12);
        assert_eq!(format_level(95.0), "95");
        assert_eq!(format_level(98.333), "98.3");
    }

    #[test]
    fn classify_orders_equivalence_before_direction() {
        let band = 0.02f64.ln_1p();
        assert_eq!(classify(0.001, band * 0.9, 0.02), Verdict::Equivalent);
        assert_eq!(classify(0.001, band * 1.1, 0.02), Verdict::Better);
        assert_eq!(classify(-band * 1.1, -0.001, 0.02), Verdict::Worse);
        assert_eq!(classify(-0.001, band * 1.1, 0.02), Verdict::Inconclusive);
        assert_eq!(classify(0.0, 0.0, 0.0), Verdict::Equivalent);
    }
}
