//! Holm's step-down correction of a family of p-values (family-wise error control).

/// Holm-adjusted p-values, in the order given.
///
/// Sorted ascending, the i-th smallest (0-based) is multiplied by m − i, then a running
/// maximum keeps the adjusted values monotone, and each is capped at 1. A comparison is
/// significant at family-wise level α when its adjusted value is ≤ α. A NaN p-value is
/// treated as 1 (nothing learned) so that it can never make another comparison significant.
pub fn holm(p_values: &[f64]) -> Vec<f64> {
    let family = p_values.len();
    let clean: Vec<f64> = p_values
        .iter()
        .map(|&p| if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) })
        .collect();
    let mut order: Vec<usize> = (0..family).collect();
    order.sort_by(|&a, &b| clean[a].total_cmp(&clean[b]).then(a.cmp(&b)));
    let mut adjusted = vec![0.0; family];
    let mut running_max: f64 = 0.0;
    for (rank, &idx) in order.iter().enumerate() {
        let stepped = ((family - rank) as f64 * clean[idx]).min(1.0);
        running_max = running_max.max(stepped);
        adjusted[idx] = running_max;
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(p_values: &[f64], expected: &[f64]) {
        let adjusted = holm(p_values);
        assert_eq!(adjusted.len(), expected.len());
        for (got, want) in adjusted.iter().zip(expected) {
            assert!(
                (got - want).abs() < 1e-12,
                "holm({p_values:?}) = {adjusted:?}, expected {expected:?}"
            );
        }
    }

    /// The same values as R's `p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm")`.
    #[test]
    fn textbook_example() {
        check(&[0.01, 0.04, 0.03, 0.005], &[0.03, 0.06, 0.06, 0.02]);
    }

    /// Holm (1979)-style illustration: five tests, the step-down stops at the third.
    #[test]
    fn step_down_stops_where_a_test_fails() {
        let adjusted = holm(&[0.001, 0.011, 0.02, 0.04, 0.2]);
        check(
            &[0.001, 0.011, 0.02, 0.04, 0.2],
            &[0.005, 0.044, 0.06, 0.08, 0.2],
        );
        let rejected: Vec<bool> = adjusted.iter().map(|&p| p <= 0.05).collect();
        assert_eq!(rejected, [true, true, false, false, false]);
    }

    #[test]
    fn edge_cases() {
        check(&[], &[]);
        check(&[0.03], &[0.03]);
        check(&[0.5, 0.6], &[1.0, 1.0]);
        check(&[0.02, 0.02], &[0.04, 0.04]);
        check(&[f64::NAN, 0.01], &[1.0, 0.02]);
    }
}
