//! The chart: for every comparison, how many times better worker-threads is (log scale).

use std::path::Path;

use plotters::prelude::*;

/// One bar: its label, the factor by which ours is better, and whether it is against Node.
pub(crate) struct Bar {
    pub(crate) label: String,
    pub(crate) ratio: f64,
    pub(crate) node: bool,
}

const NODE: RGBColor = RGBColor(67, 133, 61);
const BARE_RUST: RGBColor = RGBColor(206, 92, 40);

/// Draws one horizontal bar per compared implementation: right of 1x, ours is better by
/// that factor; left of 1x, worse.
pub(crate) fn draw(path: &Path, machine: &str, bars: &[Bar]) -> anyhow::Result<()> {
    let rows = bars.len().max(1);
    let height = 150 + 30 * rows as u32;
    let root = SVGBackend::new(path, (1200, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(height - 50);
    let lowest = bars.iter().map(|b| b.ratio).fold(1.0f64, f64::min).min(0.5) / 2.0;
    let highest = bars.iter().map(|b| b.ratio).fold(1.0f64, f64::max).max(2.0) * 3.0;
    let mut chart = ChartBuilder::on(&top)
        .caption(
            "worker-threads: how many times better than each alternative (log scale)",
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(470)
        .build_cartesian_2d((lowest..highest).log_scale(), (0..rows).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(rows)
        .y_label_formatter(&|row| match row {
            SegmentValue::CenterOf(row) => {
                bars.get(*row).map(|b| b.label.clone()).unwrap_or_default()
            }
            _ => String::new(),
        })
        .x_desc("factor (1x = equal; right of it, worker-threads is better)")
        .x_label_formatter(&|x| format!("{x}x"))
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(row, bar)| {
        let color = if bar.node { NODE } else { BARE_RUST };
        let (from, to) = if bar.ratio >= 1.0 {
            (1.0, bar.ratio)
        } else {
            (bar.ratio, 1.0)
        };
        let mut rectangle = Rectangle::new(
            [
                (from, SegmentValue::Exact(row)),
                (to, SegmentValue::Exact(row + 1)),
            ],
            color.filled(),
        );
        rectangle.set_margin(3, 3, 0, 0);
        rectangle
    }))?;
    chart.draw_series(bars.iter().enumerate().map(|(row, bar)| {
        Text::new(
            format!("{:.2}x", bar.ratio),
            (bar.ratio.max(1.0) * 1.08, SegmentValue::CenterOf(row)),
            ("sans-serif", 14),
        )
    }))?;
    bottom.draw_text(
        "green: against Node (worker_threads, piscina)   orange: against bare Rust",
        &("sans-serif", 15).into_font().color(&BLACK),
        (20, 4),
    )?;
    bottom.draw_text(
        machine,
        &("sans-serif", 13).into_font().color(&BLACK),
        (20, 26),
    )?;
    root.present()?;
    Ok(())
}
