//! Statistics: comparisons of samples into verdicts with their uncertainty, Holm correction,
//! noise-derived margins, adaptive repeats, the legacy threshold rule and a trust benchmark.
//!
//! Everything here is pure: no I/O, no clock, and randomness only from an explicit seed, so
//! the same inputs always give the same verdicts. `docs/statistics.md` explains the method and
//! why it was chosen.

mod compare;
mod holm;
mod legacy;
mod noise;
mod rng;
mod schedule;
mod selftest;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use compare::{SamplePair, compare, compare_family};
pub use holm::holm;
pub use legacy::legacy_verdict;
pub use noise::{DEFAULT_NOISE_FLOOR, DEFAULT_NOISE_MULTIPLIER, noise_delta};
pub use schedule::{
    AdaptiveRepeats, RoundsDecision, StopReason, discard_warmup, interleaved_order,
    needs_more_rounds,
};
pub use selftest::{
    Scenario, SelftestConfig, SelftestMethod, SelftestReport, SelftestRow, TargetCheck, selftest,
};

/// Whether a higher or a lower value of the metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Higher is better (throughput, tokens per second).
    Higher,
    /// Lower is better (latency, time per output token).
    Lower,
}

/// The outcome of one comparison of a treatment against a control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The confidence interval of the ratio lies above 1 and reaches beyond the margin δ.
    Better,
    /// The confidence interval of the ratio lies below 1 and reaches beyond the margin δ.
    Worse,
    /// The confidence interval lies inside ±δ: whatever the change is, it is smaller than δ.
    Equivalent,
    /// The data cannot tell: the interval includes 1 and reaches beyond ±δ, or there is too
    /// little (or unusable) data.
    Inconclusive,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::Equivalent => "equivalent",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the confidence interval of the log ratio is computed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Method {
    /// Welch's t interval on log values (the default; see `docs/statistics.md`).
    Welch,
    /// Percentile bootstrap of the difference of mean log values, with its own seed.
    Bootstrap { resamples: usize, seed: u64 },
}

impl Method {
    pub fn name(self) -> MethodName {
        match self {
            Method::Welch => MethodName::Welch,
            Method::Bootstrap { .. } => MethodName::Bootstrap,
        }
    }
}

/// The name of a [`Method`], as recorded in a [`Comparison`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MethodName {
    Welch,
    Bootstrap,
}

impl MethodName {
    pub fn as_str(self) -> &'static str {
        match self {
            MethodName::Welch => "welch",
            MethodName::Bootstrap => "bootstrap",
        }
    }
}

impl fmt::Display for MethodName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Settings of one comparison (or of a family of comparisons under Holm).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StatsConfig {
    /// Confidence level of the interval, e.g. 0.95 (family-wise under [`compare_family`]).
    pub confidence: f64,
    /// Equivalence margin δ as a fraction (0.02 = ±2 %), applied symmetrically on the log scale.
    pub delta: f64,
    /// How the interval is computed.
    pub method: Method,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig {
            confidence: 0.95,
            delta: 0.02,
            method: Method::Welch,
        }
    }
}

impl StatsConfig {
    /// The smallest number of bootstrap resamples accepted.
    pub const MIN_RESAMPLES: usize = 100;

    /// Checks the ranges of the settings; [`compare`] reports an invalid config as an
    /// inconclusive comparison with this error as its explanation.
    pub fn validate(&self) -> Result<(), StatsError> {
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return Err(StatsError::Confidence(self.confidence));
        }
        if !(self.delta.is_finite() && self.delta >= 0.0) {
            return Err(StatsError::Delta(self.delta));
        }
        if let Method::Bootstrap { resamples, .. } = self.method
            && resamples < Self::MIN_RESAMPLES
        {
            return Err(StatsError::Resamples(resamples));
        }
        Ok(())
    }

    /// The same settings at another confidence level.
    pub fn with_confidence(&self, confidence: f64) -> StatsConfig {
        StatsConfig {
            confidence,
            ..*self
        }
    }
}

/// Invalid statistics settings.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    #[error("confidence must lie strictly between 0 and 1, got {0}")]
    Confidence(f64),
    #[error("the equivalence margin delta must be a finite fraction >= 0, got {0}")]
    Delta(f64),
    #[error("bootstrap needs at least {min} resamples, got {0}", min = StatsConfig::MIN_RESAMPLES)]
    Resamples(usize),
    #[error("adaptive repeats need 2 <= min rounds <= max rounds, got min {min} and max {max}")]
    Rounds { min: usize, max: usize },
    #[error("the futility margin must be a finite number of standard errors >= 0, got {0}")]
    FutilityMargin(f64),
    #[error("the trust benchmark needs at least one trial")]
    NoTrials,
    #[error("the trust benchmark needs at least one scenario")]
    NoScenarios,
    #[error("scenario `{0}`: the coefficient of variation must be finite and > 0")]
    ScenarioCv(String),
    #[error("scenario `{0}`: the true change must be finite and > -100 %")]
    ScenarioChange(String),
    #[error("the fixed rule needs at least 2 rounds, got {0}")]
    FixedRounds(usize),
    #[error("the legacy threshold must be a finite percentage >= 0, got {0}")]
    LegacyThreshold(f64),
}

/// One comparison of a treatment against a control on one metric.
///
/// Ratios are direction-aware: above 1 always means the treatment is better (for a
/// lower-is-better metric the ratio is control / treatment). `ratio`, `ci_low` and `ci_high`
/// are ratios of geometric means; the medians are of the raw values, for the reader.
/// Estimates are `None` when the data does not allow them (see `explanation`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub n_control: usize,
    pub n_treatment: usize,
    pub median_control: Option<f64>,
    pub median_treatment: Option<f64>,
    /// Point estimate: exp(mean log treatment − mean log control), direction-aware.
    pub ratio: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// The confidence level the interval was computed at (after any Holm or look adjustment).
    pub confidence: f64,
    /// Two-sided p-value of "no change".
    pub p_value: Option<f64>,
    /// The p-value after Holm's correction across the task's comparisons (filled by
    /// [`compare_family`]; equal to `p_value` for a lone comparison).
    pub p_adjusted: Option<f64>,
    /// Standard error of the log ratio.
    pub std_error: Option<f64>,
    /// Welch–Satterthwaite degrees of freedom (`None` for the bootstrap).
    pub df: Option<f64>,
    /// The equivalence margin δ used, as a fraction.
    pub delta: f64,
    pub verdict: Verdict,
    pub method: MethodName,
    /// One line a human can read: the effect, its interval and why this verdict.
    pub explanation: String,
}

impl Comparison {
    /// The direction-aware change in percent (+5.0 = 5 % better), if estimable.
    pub fn change_pct(&self) -> Option<f64> {
        self.ratio.map(|ratio| (ratio - 1.0) * 100.0)
    }
}
