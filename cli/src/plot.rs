//! The `--plot` SVGs: for a single run, runway over time for a few traced sessions per policy and
//! drops per policy; for the grid, over-payment against session length and drops per profile, both
//! policies.

use std::path::Path;

use livepay_mock::sim::{Cell, CellReport, Comparison};
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

/// Shades of a policy's colour, one per EV.
fn shade(base: RGBColor, i: usize, n: usize) -> RGBColor {
    let t = if n > 1 {
        i as f64 / (n - 1) as f64 * 0.6
    } else {
        0.0
    };
    let mix = |c: u8| {
        (f64::from(c) + (255.0 - f64::from(c)) * t)
            .round()
            .clamp(0.0, 255.0) as u8
    };
    RGBColor(mix(base.0), mix(base.1), mix(base.2))
}

/// Draws the grid to `path`: over-payment against session length (the clean profile if it was
/// run, else the first; one line per policy and EV), and drops per profile for both policies
/// (summed over lengths and EVs).
pub(crate) fn draw_cells(path: &Path, report: &CellReport) -> PlotResult<()> {
    let root = SVGBackend::new(path, (1000, 800)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(450);
    let profile = if report.cells.iter().any(|c| c.profile == "clean") {
        "clean".to_owned()
    } else {
        report
            .cells
            .first()
            .map(|c| c.profile.clone())
            .unwrap_or_default()
    };
    let mut evs: Vec<f64> = Vec::new();
    let mut profiles: Vec<String> = Vec::new();
    for c in &report.cells {
        if !evs.contains(&c.ev_seconds) {
            evs.push(c.ev_seconds);
        }
        if !profiles.contains(&c.profile) {
            profiles.push(c.profile.clone());
        }
    }
    let minutes = |c: &Cell| c.length_s as f64 / 60.0;
    let shown: Vec<&Cell> = report.cells.iter().filter(|c| c.profile == profile).collect();
    let max_len = shown.iter().map(|c| minutes(c)).fold(1.0_f64, f64::max);
    let min_len = shown
        .iter()
        .map(|c| minutes(c))
        .fold(max_len, f64::min)
        .min(max_len / 2.0);
    let max_over = shown
        .iter()
        .flat_map(|c| [c.livepay.overpayment, c.sdk.overpayment])
        .fold(1.1_f64, f64::max);
    let mut chart = ChartBuilder::on(&top)
        .caption(
            format!(
                "over-payment (credit received ÷ debited) · profile {profile} · {} sessions · seed {}",
                report.sessions, report.seed
            ),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d((min_len..max_len * 1.05).log_scale(), 0.9..max_over * 1.05)?;
    chart
        .configure_mesh()
        .x_desc("session length (min, log scale)")
        .y_desc("over-payment")
        .draw()?;
    for (p, policy) in ["livepay", "sdk-1.0"].iter().enumerate() {
        for (i, &ev) in evs.iter().enumerate() {
            let color = shade(COLORS[p], i, evs.len());
            let mut points: Vec<(f64, f64)> = shown
                .iter()
                .filter(|c| c.ev_seconds == ev)
                .map(|c| {
                    let r = if p == 0 { &c.livepay } else { &c.sdk };
                    (minutes(c), r.overpayment)
                })
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            chart
                .draw_series(LineSeries::new(points, &color))?
                .label(format!("{policy} EV {ev} s"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        }
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;

    let drops: Vec<(u32, u32)> = profiles
        .iter()
        .map(|p| {
            report
                .cells
                .iter()
                .filter(|c| &c.profile == p)
                .fold((0, 0), |(a, b), c| (a + c.livepay.drops, b + c.sdk.drops))
        })
        .collect();
    let max_drops = drops.iter().map(|&(a, b)| a.max(b)).max().unwrap_or(0).max(1);
    let mut bars = ChartBuilder::on(&bottom)
        .caption(
            "drops per profile (summed over lengths and EVs): livepay, sdk-1.0",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(60)
        .y_label_area_size(56)
        .build_cartesian_2d(
            (0..profiles.len().saturating_sub(1)).into_segmented(),
            0..max_drops + max_drops / 5 + 1,
        )?;
    bars.configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => profiles.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_desc("sessions dropped")
        .draw()?;
    for (k, &color) in COLORS.iter().enumerate() {
        bars.draw_series(drops.iter().enumerate().map(|(i, &(ours, sdk))| {
            let value = if k == 0 { ours } else { sdk };
            let mut bar = Rectangle::new(
                [(SegmentValue::Exact(i), 0), (SegmentValue::Exact(i + 1), value)],
                color.filled(),
            );
            bar.set_margin(0, 0, 8 + k as u32 * 22, 30 - k as u32 * 22);
            bar
        }))?;
    }
    root.present()?;
    Ok(())
}
