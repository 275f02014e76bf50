//! The trust benchmark (`perfarena selftest stats`): synthetic measurements with known truth,
//! judged by perfarena's adaptive method, the legacy single-run rule and a fixed-rounds rule.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::compare::format_level;
use super::rng::{mix_seed, seeded, standard_normal};
use super::{
    AdaptiveRepeats, Direction, RoundsDecision, StatsConfig, StatsError, Verdict, compare,
    legacy_verdict, needs_more_rounds,
};

/// One synthetic situation: the treatment's true change and the run-to-run noise.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// True change of the treatment as a fraction (0.05 = 5 % better, −0.05 = 5 % worse,
    /// 0 = A/A: the same code twice).
    pub true_change: f64,
    /// Coefficient of variation of one run (0.03 = 3 %), log-normal noise.
    pub cv: f64,
}

impl Scenario {
    pub fn is_null(&self) -> bool {
        self.true_change == 0.0
    }

    /// "A/A cv 3%", "+5% cv 3%", "-5% cv 8%".
    pub fn name(&self) -> String {
        let cv = format_level(self.cv * 100.0);
        if self.is_null() {
            format!("A/A cv {cv}%")
        } else {
            let sign = if self.true_change > 0.0 { "+" } else { "-" };
            format!(
                "{sign}{}% cv {cv}%",
                format_level(self.true_change.abs() * 100.0)
            )
        }
    }

    /// The verdict that is right for this scenario (`None` for A/A, where both `equivalent`
    /// and `inconclusive` are acceptable and only a direction is wrong).
    pub fn correct_direction(&self) -> Option<Verdict> {
        if self.is_null() {
            None
        } else if self.true_change > 0.0 {
            Some(Verdict::Better)
        } else {
            Some(Verdict::Worse)
        }
    }

    fn validate(&self) -> Result<(), StatsError> {
        if !(self.cv.is_finite() && self.cv > 0.0) {
            return Err(StatsError::ScenarioCv(self.name()));
        }
        if !(self.true_change.is_finite() && self.true_change > -1.0) {
            return Err(StatsError::ScenarioChange(self.name()));
        }
        Ok(())
    }
}

/// The decision rules compared side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SelftestMethod {
    /// perfarena: Welch on log values, adaptive repeats with per-look α and futility stop.
    Perfarena,
    /// The old status reports: one run per variant, fixed ±threshold band.
    LegacySingleRun,
    /// A fixed number of rounds, one Welch comparison at the configured confidence.
    FixedRounds,
}

impl SelftestMethod {
    pub const ALL: [SelftestMethod; 3] = [
        SelftestMethod::Perfarena,
        SelftestMethod::LegacySingleRun,
        SelftestMethod::FixedRounds,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SelftestMethod::Perfarena => "perfarena",
            SelftestMethod::LegacySingleRun => "legacy_single_run",
            SelftestMethod::FixedRounds => "fixed_rounds",
        }
    }
}

impl fmt::Display for SelftestMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Settings of the trust benchmark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelftestConfig {
    /// Trials per scenario and method.
    pub trials: usize,
    pub seed: u64,
    /// perfarena's and the fixed rule's comparison settings (δ, confidence, method).
    pub stats: StatsConfig,
    pub adaptive: AdaptiveRepeats,
    /// Rounds of the fixed rule.
    pub fixed_rounds: usize,
    /// The legacy band, in percent.
    pub legacy_threshold_pct: f64,
    pub scenarios: Vec<Scenario>,
}

impl SelftestConfig {
    /// Trials per scenario and method by default: enough for rates to ±0.5 percentage point.
    pub const DEFAULT_TRIALS: usize = 10_000;
    pub const DEFAULT_SEED: u64 = 5;

    /// A/A, +5 % and −5 %, each at a CV of 1 %, 3 % and 8 %.
    pub fn default_scenarios() -> Vec<Scenario> {
        let mut scenarios = Vec::new();
        for cv in [0.01, 0.03, 0.08] {
            for true_change in [0.0, 0.05, -0.05] {
                scenarios.push(Scenario { true_change, cv });
            }
        }
        scenarios
    }

    pub fn validate(&self) -> Result<(), StatsError> {
        if self.trials == 0 {
            return Err(StatsError::NoTrials);
        }
        if self.scenarios.is_empty() {
            return Err(StatsError::NoScenarios);
        }
        self.stats.validate()?;
        self.adaptive.validate()?;
        if self.fixed_rounds < 2 {
            return Err(StatsError::FixedRounds(self.fixed_rounds));
        }
        if !(self.legacy_threshold_pct.is_finite() && self.legacy_threshold_pct >= 0.0) {
            return Err(StatsError::LegacyThreshold(self.legacy_threshold_pct));
        }
        self.scenarios.iter().try_for_each(Scenario::validate)
    }

    /// A readable name of a method under these settings.
    pub fn method_label(&self, method: SelftestMethod) -> String {
        match method {
            SelftestMethod::Perfarena => format!(
                "perfarena (welch, {}–{} rounds)",
                self.adaptive.min_rounds, self.adaptive.max_rounds
            ),
            SelftestMethod::LegacySingleRun => {
                format!(
                    "legacy (1 run, ±{}%)",
                    format_level(self.legacy_threshold_pct)
                )
            }
            SelftestMethod::FixedRounds => format!("fixed ({} runs, welch)", self.fixed_rounds),
        }
    }
}

impl Default for SelftestConfig {
    fn default() -> Self {
        SelftestConfig {
            trials: Self::DEFAULT_TRIALS,
            seed: Self::DEFAULT_SEED,
            stats: StatsConfig::default(),
            adaptive: AdaptiveRepeats::default(),
            fixed_rounds: 20,
            legacy_threshold_pct: 2.0,
            scenarios: Self::default_scenarios(),
        }
    }
}

/// The figures of one method in one scenario; rates are fractions of the trials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelftestRow {
    pub scenario: String,
    pub true_change_pct: f64,
    pub cv_pct: f64,
    pub method: SelftestMethod,
    pub method_label: String,
    pub trials: usize,
    pub better: f64,
    pub worse: f64,
    pub equivalent: f64,
    pub inconclusive: f64,
    /// A direction that is wrong: any `better`/`worse` under A/A, the opposite direction
    /// otherwise.
    pub false_verdict_rate: f64,
    /// The right direction (`None` under A/A).
    pub power: Option<f64>,
    /// Attempts per variant, on average.
    pub mean_attempts: f64,
}

/// One of the targets, checked on perfarena's rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetCheck {
    pub name: String,
    /// The target in words, e.g. "<= 0.05".
    pub target: String,
    pub observed: f64,
    pub passed: bool,
}

/// Everything the trust benchmark found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelftestReport {
    pub trials: usize,
    pub seed: u64,
    pub confidence: f64,
    pub delta: f64,
    pub rows: Vec<SelftestRow>,
    pub targets: Vec<TargetCheck>,
    /// Every target met.
    pub passed: bool,
}

/// Runs the trust benchmark: for each scenario, `trials` synthetic tasks with log-normal
/// noise (same data for every method in a trial), judged by each method.
pub fn selftest(cfg: &SelftestConfig) -> Result<SelftestReport, StatsError> {
    cfg.validate()?;
    let mut rows = Vec::new();
    for (scenario_idx, scenario) in cfg.scenarios.iter().enumerate() {
        let mut tallies = [Tally::default(), Tally::default(), Tally::default()];
        for trial in 0..cfg.trials {
            let data = Trial::generate(
                cfg,
                scenario,
                mix_seed(&[cfg.seed, scenario_idx as u64, trial as u64]),
            );
            for (tally, method) in tallies.iter_mut().zip(SelftestMethod::ALL) {
                let (verdict, attempts) = data.judge(cfg, method);
                tally.add(verdict, attempts);
            }
        }
        for (tally, method) in tallies.iter().zip(SelftestMethod::ALL) {
            rows.push(tally.row(cfg, scenario, method));
        }
    }
    let targets = targets(&rows);
    let passed = targets.iter().all(|target| target.passed);
    Ok(SelftestReport {
        trials: cfg.trials,
        seed: cfg.seed,
        confidence: cfg.stats.confidence,
        delta: cfg.stats.delta,
        rows,
        targets,
        passed,
    })
}

/// The targets, on perfarena's rows: A/A false verdicts ≤ 5 % in every A/A scenario;
/// a true ±5 % change at 3 % CV detected in ≥ 90 % of trials; mean attempts over all
/// scenarios ≤ 50 % of the fixed rule's. A target whose scenarios are absent is not checked.
fn targets(rows: &[SelftestRow]) -> Vec<TargetCheck> {
    let ours: Vec<&SelftestRow> = rows
        .iter()
        .filter(|row| row.method == SelftestMethod::Perfarena)
        .collect();
    let mut checks = Vec::new();
    let null_false = ours
        .iter()
        .filter(|row| row.true_change_pct == 0.0)
        .map(|row| row.false_verdict_rate)
        .fold(None, |worst: Option<f64>, rate| {
            Some(worst.map_or(rate, |w| w.max(rate)))
        });
    if let Some(observed) = null_false {
        checks.push(TargetCheck {
            name: "A/A false verdict rate (worst CV)".to_string(),
            target: "<= 0.05".to_string(),
            observed,
            passed: observed <= 0.05,
        });
    }
    let power = ours
        .iter()
        .filter(|row| {
            (row.true_change_pct.abs() - 5.0).abs() < 1e-9 && (row.cv_pct - 3.0).abs() < 1e-9
        })
        .filter_map(|row| row.power)
        .fold(None, |worst: Option<f64>, rate| {
            Some(worst.map_or(rate, |w| w.min(rate)))
        });
    if let Some(observed) = power {
        checks.push(TargetCheck {
            name: "power for a true 5% change at 3% CV (worst sign)".to_string(),
            target: ">= 0.90".to_string(),
            observed,
            passed: observed >= 0.90,
        });
    }
    let mean_of = |method: SelftestMethod| {
        let chosen: Vec<f64> = rows
            .iter()
            .filter(|row| row.method == method)
            .map(|row| row.mean_attempts)
            .collect();
        chosen.iter().sum::<f64>() / chosen.len().max(1) as f64
    };
    let fixed = mean_of(SelftestMethod::FixedRounds);
    if fixed > 0.0 && !ours.is_empty() {
        let observed = mean_of(SelftestMethod::Perfarena) / fixed;
        checks.push(TargetCheck {
            name: "mean attempts relative to the fixed rule (all scenarios)".to_string(),
            target: "<= 0.50".to_string(),
            observed,
            passed: observed <= 0.50,
        });
    }
    checks
}

/// The samples of one synthetic task, round by round, enough for the longest method.
struct Trial {
    control: Vec<f64>,
    treatment: Vec<f64>,
}

impl Trial {
    fn generate(cfg: &SelftestConfig, scenario: &Scenario, seed: u64) -> Trial {
        let rounds = cfg.adaptive.max_rounds.max(cfg.fixed_rounds);
        // Log-normal with mean 1 and the scenario's CV: σ² = ln(1 + cv²), μ = −σ²/2.
        let sigma = scenario.cv.powi(2).ln_1p().sqrt();
        let mut rng = seeded(seed);
        let mut draw =
            |scale: f64| scale * (sigma * standard_normal(&mut rng) - sigma * sigma / 2.0).exp();
        let mut control = Vec::with_capacity(rounds);
        let mut treatment = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            control.push(draw(100.0));
            treatment.push(draw(100.0 * (1.0 + scenario.true_change)));
        }
        Trial { control, treatment }
    }

    /// The verdict of a method on this task and the attempts per variant it used.
    fn judge(&self, cfg: &SelftestConfig, method: SelftestMethod) -> (Verdict, usize) {
        match method {
            SelftestMethod::LegacySingleRun => (
                legacy_verdict(
                    self.control[0],
                    self.treatment[0],
                    Direction::Higher,
                    cfg.legacy_threshold_pct,
                ),
                1,
            ),
            SelftestMethod::FixedRounds => {
                let rounds = cfg.fixed_rounds;
                let comparison = compare(
                    &self.control[..rounds],
                    &self.treatment[..rounds],
                    Direction::Higher,
                    &cfg.stats,
                );
                (comparison.verdict, rounds)
            }
            SelftestMethod::Perfarena => {
                let look_cfg = cfg.adaptive.stats_config(&cfg.stats);
                let mut rounds = cfg.adaptive.min_rounds;
                loop {
                    let comparison = compare(
                        &self.control[..rounds],
                        &self.treatment[..rounds],
                        Direction::Higher,
                        &look_cfg,
                    );
                    match needs_more_rounds(
                        std::slice::from_ref(&comparison),
                        rounds,
                        &cfg.adaptive,
                    ) {
                        RoundsDecision::Continue { until_round } => rounds = until_round,
                        RoundsDecision::Stop { .. } => return (comparison.verdict, rounds),
                    }
                }
            }
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    better: usize,
    worse: usize,
    equivalent: usize,
    inconclusive: usize,
    attempts: usize,
}

impl Tally {
    fn add(&mut self, verdict: Verdict, attempts: usize) {
        match verdict {
            Verdict::Better => self.better += 1,
            Verdict::Worse => self.worse += 1,
            Verdict::Equivalent => self.equivalent += 1,
            Verdict::Inconclusive => self.inconclusive += 1,
        }
        self.attempts += attempts;
    }

    fn row(
        &self,
        cfg: &SelftestConfig,
        scenario: &Scenario,
        method: SelftestMethod,
    ) -> SelftestRow {
        let trials = self.better + self.worse + self.equivalent + self.inconclusive;
        let rate = |count: usize| count as f64 / trials as f64;
        let (false_verdicts, power) = match scenario.correct_direction() {
            None => (self.better + self.worse, None),
            Some(Verdict::Better) => (self.worse, Some(rate(self.better))),
            Some(_) => (self.better, Some(rate(self.worse))),
        };
        SelftestRow {
            scenario: scenario.name(),
            true_change_pct: scenario.true_change * 100.0,
            cv_pct: scenario.cv * 100.0,
            method,
            method_label: cfg.method_label(method),
            trials,
            better: rate(self.better),
            worse: rate(self.worse),
            equivalent: rate(self.equivalent),
            inconclusive: rate(self.inconclusive),
            false_verdict_rate: rate(false_verdicts),
            power,
            mean_attempts: self.attempts as f64 / trials as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reduced(trials: usize) -> SelftestConfig {
        SelftestConfig {
            trials,
            seed: 2024,
            ..SelftestConfig::default()
        }
    }

    /// The targets with margin, on a reduced number of trials (fast in debug builds).
    #[test]
    fn targets_are_met_with_margin() {
        let report = selftest(&reduced(2000)).unwrap();
        assert!(report.passed, "{:#?}", report.targets);
        assert_eq!(report.targets.len(), 3);
        let observed = |name: &str| {
            report
                .targets
                .iter()
                .find(|t| t.name.starts_with(name))
                .map(|t| t.observed)
                .unwrap()
        };
        assert!(observed("A/A false") <= 0.045, "{:#?}", report.targets);
        assert!(observed("power") >= 0.93, "{:#?}", report.targets);
        assert!(observed("mean attempts") <= 0.47, "{:#?}", report.targets);
    }

    #[test]
    fn legacy_rule_shows_why_it_is_replaced() {
        let cfg = SelftestConfig {
            scenarios: vec![Scenario {
                true_change: 0.0,
                cv: 0.03,
            }],
            ..reduced(400)
        };
        let report = selftest(&cfg).unwrap();
        let legacy_aa_cv3 = report
            .rows
            .iter()
            .find(|row| {
                row.method == SelftestMethod::LegacySingleRun && row.scenario == "A/A cv 3%"
            })
            .unwrap();
        // One run each at 3 % CV: the ±2 % band is crossed by noise in most trials.
        assert!(legacy_aa_cv3.false_verdict_rate > 0.4, "{legacy_aa_cv3:?}");
        assert_eq!(legacy_aa_cv3.mean_attempts, 1.0);
    }

    #[test]
    fn rows_are_complete_and_rates_sum_to_one() {
        let report = selftest(&reduced(50)).unwrap();
        assert_eq!(report.rows.len(), 9 * 3);
        for row in &report.rows {
            let total = row.better + row.worse + row.equivalent + row.inconclusive;
            assert!((total - 1.0).abs() < 1e-9, "{row:?}");
            assert_eq!(row.trials, 50);
            assert_eq!(row.power.is_none(), row.true_change_pct == 0.0);
            match row.method {
                SelftestMethod::FixedRounds => assert_eq!(row.mean_attempts, 20.0),
                SelftestMethod::LegacySingleRun => assert_eq!(row.mean_attempts, 1.0),
                SelftestMethod::Perfarena => {
                    assert!((5.0..=20.0).contains(&row.mean_attempts), "{row:?}")
                }
            }
        }
    }

    #[test]
    fn seeded_and_reproducible() {
        let cfg = SelftestConfig {
            scenarios: vec![Scenario {
                true_change: 0.05,
                cv: 0.03,
            }],
            ..reduced(30)
        };
        assert_eq!(selftest(&cfg).unwrap(), selftest(&cfg).unwrap());
        let other = SelftestConfig {
            seed: 1,
            ..cfg.clone()
        };
        assert_ne!(selftest(&cfg).unwrap().rows, selftest(&other).unwrap().rows);
    }

    #[test]
    fn invalid_settings_are_errors() {
        assert_eq!(selftest(&reduced(0)), Err(StatsError::NoTrials));
        let no_scenarios = SelftestConfig {
            scenarios: vec![],
            ..reduced(1)
        };
        assert_eq!(selftest(&no_scenarios), Err(StatsError::NoScenarios));
        let bad_cv = SelftestConfig {
            scenarios: vec![Scenario {
                true_change: 0.0,
                cv: 0.0,
            }],
            ..reduced(1)
        };
        assert!(matches!(selftest(&bad_cv), Err(StatsError::ScenarioCv(_))));
        let bad_fixed = SelftestConfig {
            fixed_rounds: 1,
            ..reduced(1)
        };
        assert_eq!(selftest(&bad_fixed), Err(StatsError::FixedRounds(1)));
    }

    #[test]
    fn scenario_names() {
        assert_eq!(
            Scenario {
                true_change: 0.0,
                cv: 0.03
            }
            .name(),
            "A/A cv 3%"
        );
        assert_eq!(
            Scenario {
                true_change: 0.05,
                cv: 0.01
            }
            .name(),
            "+5% cv 1%"
        );
        assert_eq!(
            Scenario {
                true_change: -0.05,
                cv: 0.08
            }
            .name(),
            "-5% cv 8%"
        );
    }
}
