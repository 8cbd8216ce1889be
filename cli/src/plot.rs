//! The `--plot` SVG: runway over time for a few traced sessions per policy, and drops per policy.

use std::path::Path;

use livepay_mock::sim::Comparison;
use plotters::prelude::*;

const COLORS: [RGBColor; 2] = [RGBColor(31, 119, 180), RGBColor(214, 39, 40)];

type PlotResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Draws `report` to `path`.
pub(crate) fn draw(path: &Path, report: &Comparison) -> PlotResult<()> {
    let root = SVGBackend::new(path, (1000, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(450);

    let max_t = report
        .policies
        .iter()
        .flat_map(|p| p.traces.iter().flatten())
        .map(|pt| pt.t_s)
        .fold(1.0_f64, f64::max);
    let max_runway = report
        .policies
        .iter()
        .flat_map(|p| p.traces.iter().flatten())
        .map(|pt| pt.runway_s)
        .fold(10.0_f64, f64::max);
    let mut chart = ChartBuilder::on(&top)
        .caption(
            format!(
                "runway over time · profile {} · seed {}",
                report.profile, report.seed
            ),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..max_t, 0.0..max_runway * 1.05)?;
    chart
        .configure_mesh()
        .x_desc("simulated time (s)")
        .y_desc("runway (s)")
        .draw()?;
    for (i, policy) in report.policies.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        for (n, trace) in policy.traces.iter().enumerate() {
            let series = chart.draw_series(LineSeries::new(
                trace.iter().map(|pt| (pt.t_s, pt.runway_s)),
                &color,
            ))?;
            if n == 0 {
                series
                    .label(policy.policy.name())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
            }
        }
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;

    let max_drops = report.policies.iter().map(|p| p.drops).max().unwrap_or(0).max(1);
    let names: Vec<&str> = report.policies.iter().map(|p| p.policy.name()).collect();
    let mut bars = ChartBuilder::on(&bottom)
        .caption(
            format!("drops ({} sessions × {:.2} h)", report.sessions, report.hours),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(
            (0..names.len().saturating_sub(1)).into_segmented(),
            0..max_drops + max_drops / 5 + 1,
        )?;
    bars.configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(*i).copied().unwrap_or("").to_owned(),
            _ => String::new(),
        })
        .y_desc("sessions dropped")
        .draw()?;
    bars.draw_series(report.policies.iter().enumerate().map(|(i, p)| {
        let color = COLORS[i % COLORS.len()];
        Rectangle::new(
            [(SegmentValue::Exact(i), 0), (SegmentValue::Exact(i + 1), p.drops)],
            color.filled(),
        )
    }))?;
    root.present()?;
    Ok(())
}
