//! Scheduling attempts: randomised interleaved rounds, warm-up discarding, and the adaptive
//! repeats decision (`--repeats auto`) with its looks, per-look confidence and futility stop.

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

use super::rng::seeded;
use super::{Comparison, StatsConfig, StatsError, Verdict};

/// The randomised interleaved schedule: `n_rounds` rounds, each a random permutation of the
/// variant indices `0..n_variants`, so that slow drifts of the machine (thermal, caches,
/// neighbours) spread evenly over the variants instead of favouring whichever runs first.
///
/// The schedule depends only on `seed`, and is prefix-stable: the first k rounds of a longer
/// schedule are the k rounds of a shorter one, so adaptive repeats can extend it.
pub fn interleaved_order(n_variants: usize, n_rounds: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut rng = seeded(seed);
    (0..n_rounds)
        .map(|_| {
            let mut round: Vec<usize> = (0..n_variants).collect();
            round.shuffle(&mut rng);
            round
        })
        .collect()
}

/// A variant's samples without its first `n_warmup` (warm-up) attempts, in attempt order.
pub fn discard_warmup<T>(samples: &[T], n_warmup: usize) -> &[T] {
    &samples[n_warmup.min(samples.len())..]
}

/// The plan of `--repeats auto`: start at `min_rounds`, add rounds up to `max_rounds` while a
/// comparison is still inconclusive, looking at the data only at planned looks.
///
/// Looks double the rounds (min, 2·min, 4·min, …, max). Looking repeatedly at accumulating
/// data and stopping at the first conclusive look inflates the false-verdict rate, so each
/// look spends an equal share of α (Bonferroni over looks): with 3 looks at 95 %, every look's
/// intervals are at 98.3 %. That bounds the false-verdict rate by α whatever the data does.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdaptiveRepeats {
    pub min_rounds: usize,
    pub max_rounds: usize,
    /// Futility: stop early when, even if the true effect were this many current standard
    /// errors more favourable than estimated, the interval at `max_rounds` could neither
    /// exclude no change nor fit inside ±δ. 0 disables nothing but stops most eagerly; larger
    /// values stop less often; `f64::INFINITY` disables the futility stop.
    pub futility_margin: f64,
}

impl Default for AdaptiveRepeats {
    fn default() -> Self {
        AdaptiveRepeats {
            min_rounds: 5,
            max_rounds: 20,
            futility_margin: 0.5,
        }
    }
}

impl AdaptiveRepeats {
    pub fn validate(&self) -> Result<(), StatsError> {
        if self.min_rounds < 2 || self.max_rounds < self.min_rounds {
            return Err(StatsError::Rounds {
                min: self.min_rounds,
                max: self.max_rounds,
            });
        }
        if self.futility_margin.is_nan() || self.futility_margin < 0.0 {
            return Err(StatsError::FutilityMargin(self.futility_margin));
        }
        Ok(())
    }

    /// The rounds after which the data is looked at: min, 2·min, 4·min, …, always ending at max.
    pub fn looks(&self) -> Vec<usize> {
        let mut looks = Vec::new();
        let mut round = self.min_rounds.max(1);
        loop {
            let round_now = round.min(self.max_rounds);
            looks.push(round_now);
            if round_now >= self.max_rounds {
                return looks;
            }
            round = round.saturating_mul(2);
        }
    }

    /// The first look after `rounds_done` rounds, or `None` when the maximum is reached.
    pub fn next_look(&self, rounds_done: usize) -> Option<usize> {
        self.looks().into_iter().find(|&look| look > rounds_done)
    }

    /// The confidence level of each look's intervals: α split equally over the looks.
    pub fn look_confidence(&self, confidence: f64) -> f64 {
        1.0 - (1.0 - confidence) / self.looks().len() as f64
    }

    /// `base` at the per-look confidence level, for the comparisons made at each look.
    pub fn stats_config(&self, base: &StatsConfig) -> StatsConfig {
        base.with_confidence(self.look_confidence(base.confidence))
    }
}

/// What to do with a task after a look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum RoundsDecision {
    /// Run more rounds, up to and including round `until_round`, then look again.
    Continue { until_round: usize },
    /// No more rounds for this task.
    Stop { reason: StopReason },
}

/// Why a task needs no more rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Every comparison has a verdict other than `inconclusive`.
    Conclusive,
    /// The maximum number of rounds is done.
    MaxRounds,
    /// Every inconclusive comparison would stay inconclusive even at the maximum.
    Futile,
}

/// The adaptive-repeats decision for one task, from its comparisons after `rounds_done`
/// rounds (made with [`AdaptiveRepeats::stats_config`]). Rounds below the minimum are always
/// run; then rounds are added, look by look, only while some comparison is inconclusive and
/// could still become conclusive by `max_rounds`.
pub fn needs_more_rounds(
    comparisons: &[Comparison],
    rounds_done: usize,
    plan: &AdaptiveRepeats,
) -> RoundsDecision {
    if rounds_done < plan.min_rounds {
        return RoundsDecision::Continue {
            until_round: plan.min_rounds,
        };
    }
    let open: Vec<&Comparison> = comparisons
        .iter()
        .filter(|c| c.verdict == Verdict::Inconclusive)
        .collect();
    if open.is_empty() {
        return RoundsDecision::Stop {
            reason: StopReason::Conclusive,
        };
    }
    let Some(until_round) = plan.next_look(rounds_done) else {
        return RoundsDecision::Stop {
            reason: StopReason::MaxRounds,
        };
    };
    if open
        .iter()
        .all(|comparison| is_futile(comparison, rounds_done, plan))
    {
        return RoundsDecision::Stop {
            reason: StopReason::Futile,
        };
    }
    RoundsDecision::Continue { until_round }
}

/// Whether an inconclusive comparison would still be inconclusive at `plan.max_rounds`, even
/// if its effect were `futility_margin` standard errors more favourable to each outcome.
///
/// The interval at the maximum is projected from the current one: the standard error shrinks
/// with √(rounds_done / max_rounds), the degrees of freedom grow in proportion. Comparisons
/// without an estimate (too few samples, unusable values) are never futile: more rounds may
/// bring the samples they lack.
fn is_futile(comparison: &Comparison, rounds_done: usize, plan: &AdaptiveRepeats) -> bool {
    let (Some(ratio), Some(std_error)) = (comparison.ratio, comparison.std_error) else {
        return false;
    };
    if rounds_done == 0 || !plan.futility_margin.is_finite() || std_error <= 0.0 {
        return false;
    }
    let growth = plan.max_rounds as f64 / rounds_done as f64;
    let quantile = 1.0 - (1.0 - comparison.confidence) / 2.0;
    let critical = match comparison.df {
        Some(df) => StudentsT::new(0.0, 1.0, df * growth).map(|t| t.inverse_cdf(quantile)),
        None => Ok(standard_normal_quantile(quantile)),
    };
    let Ok(critical) = critical else {
        return false;
    };
    let half_width = critical * std_error / growth.sqrt();
    let effect = ratio.ln().abs();
    let optimism = plan.futility_margin * std_error;
    let can_exclude_no_change = effect + optimism > half_width;
    let can_fit_inside_delta = (effect - optimism).max(0.0) + half_width < comparison.delta.ln_1p();
    !(can_exclude_no_change || can_fit_inside_delta)
}

fn standard_normal_quantile(quantile: f64) -> f64 {
    Normal::standard().inverse_cdf(quantile)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Direction, compare};

    #[test]
    fn rounds_are_permutations_and_seeded() {
        let schedule = interleaved_order(4, 30, 9);
        assert_eq!(schedule.len(), 30);
        for round in &schedule {
            let mut sorted = round.clone();
            sorted.sort();
            assert_eq!(sorted, [0, 1, 2, 3]);
        }
        assert_eq!(schedule, interleaved_order(4, 30, 9));
        assert_ne!(schedule, interleaved_order(4, 30, 10));
        // Not always the same order: the point is randomisation.
        assert!(schedule.iter().any(|round| round != &schedule[0]));
    }

    #[test]
    fn schedule_is_prefix_stable() {
        let long = interleaved_order(3, 20, 5);
        let short = interleaved_order(3, 5, 5);
        assert_eq!(&long[..5], &short[..]);
    }

    #[test]
    fn schedule_spreads_first_place_evenly() {
        let schedule = interleaved_order(3, 3000, 1);
        let mut first = [0usize; 3];
        for round in &schedule {
            first[round[0]] += 1;
        }
        for count in first {
            assert!((900..1100).contains(&count), "{first:?}");
        }
    }

    #[test]
    fn degenerate_schedules() {
        assert!(interleaved_order(3, 0, 1).is_empty());
        assert_eq!(
            interleaved_order(0, 2, 1),
            vec![Vec::<usize>::new(), Vec::new()]
        );
    }

    #[test]
    fn warmup_is_dropped_from_the_front() {
        assert_eq!(discard_warmup(&[1, 2, 3, 4], 1), &[2, 3, 4]);
        assert_eq!(discard_warmup(&[1, 2], 5), &[] as &[i32]);
        assert_eq!(discard_warmup(&[1, 2], 0), &[1, 2]);
    }

    #[test]
    fn looks_double_up_to_the_maximum() {
        let plan = |min, max| AdaptiveRepeats {
            min_rounds: min,
            max_rounds: max,
            ..Default::default()
        };
        assert_eq!(plan(5, 20).looks(), [5, 10, 20]);
        assert_eq!(plan(5, 5).looks(), [5]);
        assert_eq!(plan(3, 10).looks(), [3, 6, 10]);
        assert_eq!(plan(5, 20).next_look(5), Some(10));
        assert_eq!(plan(5, 20).next_look(12), Some(20));
        assert_eq!(plan(5, 20).next_look(20), None);
        assert!((plan(5, 20).look_confidence(0.95) - (1.0 - 0.05 / 3.0)).abs() < 1e-12);
        assert_eq!(plan(5, 5).look_confidence(0.95), 0.95);
    }

    #[test]
    fn plan_validation() {
        assert!(AdaptiveRepeats::default().validate().is_ok());
        let bad = AdaptiveRepeats {
            min_rounds: 1,
            ..Default::default()
        };
        assert_eq!(bad.validate(), Err(StatsError::Rounds { min: 1, max: 20 }));
        let inverted = AdaptiveRepeats {
            min_rounds: 10,
            max_rounds: 5,
            ..Default::default()
        };
        assert!(inverted.validate().is_err());
        let margin = AdaptiveRepeats {
            futility_margin: -1.0,
            ..Default::default()
        };
        assert!(margin.validate().is_err());
    }

    fn look(control: &[f64], treatment: &[f64]) -> Comparison {
        let plan = AdaptiveRepeats::default();
        compare(
            control,
            treatment,
            Direction::Higher,
            &plan.stats_config(&StatsConfig::default()),
        )
    }

    #[test]
    fn decision_runs_the_minimum_first() {
        let plan = AdaptiveRepeats::default();
        assert_eq!(
            needs_more_rounds(&[], 2, &plan),
            RoundsDecision::Continue { until_round: 5 }
        );
    }

    #[test]
    fn decision_stops_when_conclusive() {
        let plan = AdaptiveRepeats::default();
        let control = [100.0, 101.0, 99.0, 100.5, 99.5];
        let treatment = [110.0, 111.0, 109.0, 110.5, 109.5];
        let clear = look(&control, &treatment);
        assert_eq!(clear.verdict, Verdict::Better);
        assert_eq!(
            needs_more_rounds(&[clear], 5, &plan),
            RoundsDecision::Stop {
                reason: StopReason::Conclusive
            }
        );
    }

    #[test]
    fn decision_continues_when_promising_and_stops_at_the_maximum() {
        let plan = AdaptiveRepeats::default();
        // +3 % with 3 % noise at 5 rounds: inconclusive now, resolvable by 20 rounds.
        let control = [100.0, 103.0, 97.0, 102.0, 98.0];
        let treatment = [103.0, 106.1, 99.9, 105.1, 100.9];
        let open = look(&control, &treatment);
        assert_eq!(open.verdict, Verdict::Inconclusive, "{}", open.explanation);
        assert_eq!(
            needs_more_rounds(std::slice::from_ref(&open), 5, &plan),
            RoundsDecision::Continue { until_round: 10 }
        );
        assert_eq!(
            needs_more_rounds(&[open], 20, &plan),
            RoundsDecision::Stop {
                reason: StopReason::MaxRounds
            }
        );
    }

    #[test]
    fn decision_stops_for_futility() {
        let plan = AdaptiveRepeats::default();
        // No change at all with 8 % noise: 20 rounds can neither show an effect nor fit ±2 %.
        let control = [100.0, 108.0, 92.0, 104.0, 96.0];
        let treatment = [100.5, 107.0, 93.0, 105.0, 95.5];
        let open = look(&control, &treatment);
        assert_eq!(open.verdict, Verdict::Inconclusive);
        assert_eq!(
            needs_more_rounds(std::slice::from_ref(&open), 5, &plan),
            RoundsDecision::Stop {
                reason: StopReason::Futile
            }
        );
        let never = AdaptiveRepeats {
            futility_margin: f64::INFINITY,
            ..plan
        };
        assert_eq!(
            needs_more_rounds(&[open], 5, &never),
            RoundsDecision::Continue { until_round: 10 }
        );
    }

    #[test]
    fn untestable_comparisons_keep_the_task_running() {
        let plan = AdaptiveRepeats::default();
        let missing = look(&[100.0], &[100.0, 101.0]);
        assert_eq!(
            needs_more_rounds(&[missing], 5, &plan),
            RoundsDecision::Continue { until_round: 10 }
        );
    }
}
