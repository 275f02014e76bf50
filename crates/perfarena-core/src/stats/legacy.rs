//! The legacy single-threshold rule of the hand-written status reports, kept for comparability.

use super::{Direction, Verdict};

/// The old rule: one value per variant, the direction-aware change in percent of the control,
/// and a fixed band: inside ±`threshold_pct` is `equivalent` ("tie"), above `better`, below
/// `worse`. A change exactly on the threshold counts as inside the band.
///
/// The change is (treatment − control) / control for higher-is-better metrics and
/// (control − treatment) / control for lower-is-better ones, as the old reports computed it.
/// Values that are not finite or not positive, or a threshold that is negative or not finite,
/// give `inconclusive`.
pub fn legacy_verdict(
    control: f64,
    treatment: f64,
    direction: Direction,
    threshold_pct: f64,
) -> Verdict {
    let usable = |value: f64| value.is_finite() && value > 0.0;
    let valid_threshold = threshold_pct.is_finite() && threshold_pct >= 0.0;
    if !(usable(control) && usable(treatment) && valid_threshold) {
        return Verdict::Inconclusive;
    }
    let change_pct = match direction {
        Direction::Higher => (treatment - control) * 100.0 / control,
        Direction::Lower => (control - treatment) * 100.0 / control,
    };
    if change_pct > threshold_pct {
        Verdict::Better
    } else if change_pct < -threshold_pct {
        Verdict::Worse
    } else {
        Verdict::Equivalent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_and_direction() {
        let cases = [
            (100.0, 103.0, Direction::Higher, Verdict::Better),
            (100.0, 101.9, Direction::Higher, Verdict::Equivalent),
            (100.0, 98.0, Direction::Higher, Verdict::Equivalent),
            (100.0, 97.0, Direction::Higher, Verdict::Worse),
            (100.0, 97.0, Direction::Lower, Verdict::Better),
            (100.0, 103.0, Direction::Lower, Verdict::Worse),
            (100.0, 101.0, Direction::Lower, Verdict::Equivalent),
        ];
        for (control, treatment, direction, expected) in cases {
            assert_eq!(
                legacy_verdict(control, treatment, direction, 2.0),
                expected,
                "{control} -> {treatment} ({direction:?})"
            );
        }
    }

    #[test]
    fn unusable_inputs_are_inconclusive() {
        assert_eq!(
            legacy_verdict(0.0, 1.0, Direction::Higher, 2.0),
            Verdict::Inconclusive
        );
        assert_eq!(
            legacy_verdict(1.0, f64::NAN, Direction::Higher, 2.0),
            Verdict::Inconclusive
        );
        assert_eq!(
            legacy_verdict(1.0, 1.0, Direction::Higher, -1.0),
            Verdict::Inconclusive
        );
    }

    #[test]
    fn zero_threshold_calls_every_difference() {
        assert_eq!(
            legacy_verdict(100.0, 100.001, Direction::Higher, 0.0),
            Verdict::Better
        );
        assert_eq!(
            legacy_verdict(100.0, 100.0, Direction::Higher, 0.0),
            Verdict::Equivalent
        );
    }
}
