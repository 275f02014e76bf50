//! The HTML report's charts as inline SVG, drawn with plotters: a forest plot of every
//! comparison's effect and interval, stacked outcome bars per candidate, and per-task strip and
//! box plots of each variant's values. Each returns the SVG text (or `None` when there is
//! nothing to draw).

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use perfarena_core::analysis::{NamedComparison, ShownVerdict};
use perfarena_core::categorize::Outcome;
use perfarena_core::report::{ReportModel, TaskReport};
use perfarena_core::stats::Verdict;

use crate::RenderError;

const FONT: &str = "sans-serif";
const GREEN: RGBColor = RGBColor(26, 150, 65);
const RED: RGBColor = RGBColor(215, 48, 39);
const BLUE: RGBColor = RGBColor(49, 130, 189);
const GREY: RGBColor = RGBColor(140, 140, 140);
const ORANGE: RGBColor = RGBColor(230, 120, 20);
const PURPLE: RGBColor = RGBColor(117, 107, 177);
const BAND: RGBColor = RGBColor(225, 235, 245);
const INK: RGBColor = RGBColor(40, 40, 40);
const LIGHT: RGBColor = RGBColor(242, 242, 242);

fn chart_error(chart: &str) -> impl Fn(String) -> RenderError + '_ {
    move |message| RenderError::Chart {
        chart: chart.to_string(),
        message,
    }
}

/// The colour of a verdict as the reports show it.
pub(crate) fn verdict_color(verdict: ShownVerdict) -> RGBColor {
    match verdict {
        ShownVerdict::Statistical(Verdict::Better) => GREEN,
        ShownVerdict::Statistical(Verdict::Worse) => RED,
        ShownVerdict::Statistical(Verdict::Equivalent) => BLUE,
        ShownVerdict::Statistical(Verdict::Inconclusive) => GREY,
        ShownVerdict::Failed(_) => ORANGE,
    }
}

pub(crate) fn css_color(color: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", color.0, color.1, color.2)
}

pub(crate) fn outcome_color(outcome: Outcome) -> RGBColor {
    match outcome {
        Outcome::ControlBetter => RED,
        Outcome::CandidateBetter => GREEN,
        Outcome::Equivalent => BLUE,
        Outcome::Inconclusive => GREY,
        Outcome::CandidateCrashed => ORANGE,
        Outcome::NotMeasured => PURPLE,
    }
}

/// One row of the forest plot.
struct ForestRow {
    label: String,
    estimate: f64,
    interval: Option<(f64, f64)>,
    delta_pct: f64,
    verdict: ShownVerdict,
}

fn forest_rows(model: &ReportModel) -> Vec<ForestRow> {
    let mut rows = Vec::new();
    for task in &model.tasks {
        for c in &task.measured.comparisons {
            let Some(estimate) = c.comparison.change_pct() else {
                continue;
            };
            let interval = match (c.comparison.ci_low, c.comparison.ci_high) {
                (Some(lo), Some(hi)) => Some(((lo - 1.0) * 100.0, (hi - 1.0) * 100.0)),
                _ => None,
            };
            rows.push(ForestRow {
                label: comparison_label(task, c),
                estimate,
                interval,
                delta_pct: c.comparison.delta * 100.0,
                verdict: c.verdict,
            });
        }
    }
    rows
}

pub(crate) fn comparison_label(task: &TaskReport, c: &NamedComparison) -> String {
    format!(
        "{} {} vs {}",
        task.measured.task.short_id(),
        c.treatment,
        c.control
    )
}

/// Pixel width of a label in the estimate plotters' naive text layout uses (≈0.46 em a char).
fn label_width(labels: impl Iterator<Item = usize>, size: f64) -> u32 {
    let widest = labels.max().unwrap_or(0) as f64;
    (widest * size * 0.6 + 16.0).clamp(60.0, 420.0) as u32
}

/// Effect (percent change, + = better) and interval of every comparison, with ±δ shaded.
pub(crate) fn forest_plot(model: &ReportModel) -> Result<Option<String>, RenderError> {
    let rows = forest_rows(model);
    if rows.is_empty() {
        return Ok(None);
    }
    let err = chart_error("forest");
    let n = rows.len();
    let (mut lo, mut hi) = (0.0f64, 0.0f64);
    for row in &rows {
        let (a, b) = row.interval.unwrap_or((row.estimate, row.estimate));
        lo = lo.min(a).min(-row.delta_pct);
        hi = hi.max(b).max(row.delta_pct);
    }
    let pad = ((hi - lo) * 0.08).max(0.5);
    let (lo, hi) = (lo - pad, hi + pad);
    let left = label_width(rows.iter().map(|r| r.label.chars().count()), 12.0);
    let (width, height) = (960u32, 70 + 26 * n as u32);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .margin_right(24)
            .x_label_area_size(36)
            .y_label_area_size(left)
            .build_cartesian_2d(lo..hi, -0.5f64..(n as f64 - 0.5))
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .max_light_lines(1)
            .light_line_style(LIGHT)
            .x_desc(format!(
                "change of {} vs control, % (+ = better)",
                model.primary_metric
            ))
            .x_label_formatter(&|x| format!("{x:+.0}"))
            .label_style((FONT, 12))
            .draw()
            .map_err(|e| err(e.to_string()))?;
        let y = |idx: usize| (n - 1 - idx) as f64;
        chart
            .draw_series(rows.iter().enumerate().map(|(idx, row)| {
                Rectangle::new(
                    [
                        (-row.delta_pct, y(idx) - 0.4),
                        (row.delta_pct, y(idx) + 0.4),
                    ],
                    BAND.filled(),
                )
            }))
            .map_err(|e| err(e.to_string()))?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(0.0, -0.5), (0.0, n as f64 - 0.5)],
                INK.stroke_width(1),
            )))
            .map_err(|e| err(e.to_string()))?;
        for (idx, row) in rows.iter().enumerate() {
            let color = verdict_color(row.verdict);
            if let Some((a, b)) = row.interval {
                let yy = y(idx);
                chart
                    .draw_series([
                        PathElement::new(vec![(a, yy), (b, yy)], color.stroke_width(2)),
                        PathElement::new(vec![(a, yy - 0.2), (a, yy + 0.2)], color.stroke_width(2)),
                        PathElement::new(vec![(b, yy - 0.2), (b, yy + 0.2)], color.stroke_width(2)),
                    ])
                    .map_err(|e| err(e.to_string()))?;
            }
            chart
                .draw_series(std::iter::once(Circle::new(
                    (row.estimate, y(idx)),
                    4,
                    color.filled(),
                )))
                .map_err(|e| err(e.to_string()))?;
        }
        let label_style = TextStyle::from((FONT, 12).into_font())
            .color(&INK)
            .pos(Pos::new(HPos::Right, VPos::Center));
        for (idx, row) in rows.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(lo, y(idx)));
            let text = format!("{} — {}", row.label, row.verdict);
            root.draw(&Text::new(text, (px - 6, py), label_style.clone()))
                .map_err(|e| err(e.to_string()))?;
        }
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(Some(svg))
}

/// Outcome shares per candidate and control, as stacked horizontal bars (percent of tasks).
pub(crate) fn outcome_bars(model: &ReportModel) -> Result<Option<String>, RenderError> {
    let tables: Vec<_> = model.outcomes.iter().filter(|t| t.total > 0).collect();
    if tables.is_empty() {
        return Ok(None);
    }
    let err = chart_error("outcomes");
    let n = tables.len();
    let labels: Vec<String> = tables
        .iter()
        .map(|t| format!("{} vs {} (n={})", t.candidate, t.control, t.total))
        .collect();
    let left = label_width(labels.iter().map(|l| l.chars().count()), 12.0);
    let (width, height) = (960u32, 100 + 40 * n as u32);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let (plot, legend) = root.split_vertically(height - 34);
        let mut chart = ChartBuilder::on(&plot)
            .margin(10)
            .margin_right(24)
            .x_label_area_size(36)
            .y_label_area_size(left)
            .build_cartesian_2d(0.0f64..100.0, -0.5f64..(n as f64 - 0.5))
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .max_light_lines(1)
            .light_line_style(LIGHT)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .x_desc("share of usable tasks, %")
            .label_style((FONT, 12))
            .draw()
            .map_err(|e| err(e.to_string()))?;
        let y = |idx: usize| (n - 1 - idx) as f64;
        let count_style = TextStyle::from((FONT, 11).into_font())
            .color(&WHITE)
            .pos(Pos::new(HPos::Center, VPos::Center));
        for (idx, table) in tables.iter().enumerate() {
            let mut acc = 0.0;
            for outcome in Outcome::ALL {
                let count = table.counts.get(&outcome).copied().unwrap_or(0);
                if count == 0 {
                    continue;
                }
                let share = count as f64 * 100.0 / table.total as f64;
                let yy = y(idx);
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(acc, yy - 0.35), (acc + share, yy + 0.35)],
                        outcome_color(outcome).filled(),
                    )))
                    .map_err(|e| err(e.to_string()))?;
                if share >= 6.0 {
                    chart
                        .draw_series(std::iter::once(Text::new(
                            count.to_string(),
                            (acc + share / 2.0, yy),
                            count_style.clone(),
                        )))
                        .map_err(|e| err(e.to_string()))?;
                }
                acc += share;
            }
        }
        let label_style = TextStyle::from((FONT, 12).into_font())
            .color(&INK)
            .pos(Pos::new(HPos::Right, VPos::Center));
        for (idx, label) in labels.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(0.0, y(idx)));
            plot.draw(&Text::new(label.clone(), (px - 6, py), label_style.clone()))
                .map_err(|e| err(e.to_string()))?;
        }
        let legend_style = TextStyle::from((FONT, 12).into_font())
            .color(&INK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        let mut x = left as i32 + 10;
        for outcome in Outcome::ALL {
            legend
                .draw(&Rectangle::new(
                    [(x, 10), (x + 14, 24)],
                    outcome_color(outcome).filled(),
                ))
                .map_err(|e| err(e.to_string()))?;
            let text = outcome.as_str().replace('_', " ");
            let advance = (text.chars().count() as f64 * 7.0) as i32 + 34;
            legend
                .draw(&Text::new(text, (x + 19, 17), legend_style.clone()))
                .map_err(|e| err(e.to_string()))?;
            x += advance;
        }
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(Some(svg))
}

/// Quartiles by linear interpolation (type 7), for the box plot.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// One task's variants: every value as a dot (strip plot) over a box of its quartiles.
pub(crate) fn distribution(
    task: &TaskReport,
    primary: &str,
) -> Result<Option<String>, RenderError> {
    if task.measured.variants.iter().all(|v| v.values.is_empty()) {
        return Ok(None);
    }
    let err = chart_error("distribution");
    let n = task.measured.variants.len();
    let all = task
        .measured
        .variants
        .iter()
        .flat_map(|v| v.values.iter().copied());
    let (mut lo, mut hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let pad = ((hi - lo) * 0.1).max(hi.abs() * 0.01).max(1e-9);
    lo -= pad;
    hi += pad;
    let width = (160 + 120 * n as u32).max(420);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, 280)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), lo..hi)
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .max_light_lines(1)
            .light_line_style(LIGHT)
            .y_desc(primary.to_string())
            .y_label_formatter(&|y| crate::fmt_num(*y))
            .label_style((FONT, 11))
            .draw()
            .map_err(|e| err(e.to_string()))?;
        for (idx, variant) in task.measured.variants.iter().enumerate() {
            let x = idx as f64;
            let color = if variant.values.is_empty() {
                ORANGE
            } else {
                BLUE
            };
            if !variant.values.is_empty() {
                let mut sorted = variant.values.clone();
                sorted.sort_by(|a, b| a.total_cmp(b));
                let (q1, q2, q3) = (
                    quantile(&sorted, 0.25),
                    quantile(&sorted, 0.5),
                    quantile(&sorted, 0.75),
                );
                let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
                chart
                    .draw_series([
                        PathElement::new(vec![(x, min), (x, q1)], GREY.stroke_width(1)),
                        PathElement::new(vec![(x, q3), (x, max)], GREY.stroke_width(1)),
                        PathElement::new(
                            vec![(x - 0.12, min), (x + 0.12, min)],
                            GREY.stroke_width(1),
                        ),
                        PathElement::new(
                            vec![(x - 0.12, max), (x + 0.12, max)],
                            GREY.stroke_width(1),
                        ),
                    ])
                    .map_err(|e| err(e.to_string()))?;
                chart
                    .draw_series([Rectangle::new(
                        [(x - 0.25, q1), (x + 0.25, q3)],
                        BAND.filled(),
                    )])
                    .map_err(|e| err(e.to_string()))?;
                chart
                    .draw_series([Rectangle::new(
                        [(x - 0.25, q1), (x + 0.25, q3)],
                        GREY.stroke_width(1),
                    )])
                    .map_err(|e| err(e.to_string()))?;
                chart
                    .draw_series([PathElement::new(
                        vec![(x - 0.25, q2), (x + 0.25, q2)],
                        INK.stroke_width(2),
                    )])
                    .map_err(|e| err(e.to_string()))?;
                // A deterministic jitter so equal values stay visible.
                chart
                    .draw_series(variant.values.iter().enumerate().map(|(k, value)| {
                        let jitter = ((k * 7 % 11) as f64 / 10.0 - 0.5) * 0.3;
                        Circle::new((x + jitter, *value), 3, color.mix(0.8).filled())
                    }))
                    .map_err(|e| err(e.to_string()))?;
            }
            let (px, py) = chart.backend_coord(&(x, lo));
            let name = TextStyle::from((FONT, 12).into_font())
                .color(&INK)
                .pos(Pos::new(HPos::Center, VPos::Top));
            root.draw(&Text::new(variant.variant.to_string(), (px, py + 6), name))
                .map_err(|e| err(e.to_string()))?;
            let status = if variant.values.is_empty() {
                variant.status.to_string()
            } else {
                format!("n={}", variant.values.len())
            };
            let small = TextStyle::from((FONT, 11).into_font())
                .color(&color)
                .pos(Pos::new(HPos::Center, VPos::Top));
            root.draw(&Text::new(status, (px, py + 21), small))
                .map_err(|e| err(e.to_string()))?;
        }
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(Some(svg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quartiles_interpolate() {
        let values = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&values, 0.5), 2.5);
        assert_eq!(quantile(&values, 0.25), 1.75);
        assert_eq!(quantile(&[5.0], 0.75), 5.0);
    }
}
