//! The report's figures (PNG, drawn with plotters): Kendall tau against the
//! train size per objective, ours beside the reference, and predicted
//! against true values for one seed.
//!
//! plotters draws text with a font it is given (no system font lookup, so
//! no fontconfig at build or run time): DejaVu Sans or Liberation Sans from
//! the usual places, or `$NASPERF_FONT`.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::{Scatter, report::Cell};

const FONT_CANDIDATES: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error(
        "no font for the figures: set NASPERF_FONT to a .ttf file (looked in {})",
        FONT_CANDIDATES.join(", ")
    )]
    NoFont,
    #[error("font {path}: {message}")]
    BadFont { path: PathBuf, message: String },
    #[error("drawing {path}: {message}")]
    Draw { path: PathBuf, message: String },
}

/// Registers the font once per process; later calls reuse it.
fn ensure_font() -> Result<(), PlotError> {
    static REGISTERED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let result = REGISTERED.get_or_init(|| {
        let path = std::env::var_os("NASPERF_FONT")
            .map(PathBuf::from)
            .or_else(|| {
                FONT_CANDIDATES
                    .iter()
                    .map(PathBuf::from)
                    .find(|p| p.is_file())
            })
            .ok_or_else(String::new)?;
        let bytes = std::fs::read(&path).map_err(|e| format!("{}\0{e}", path.display()))?;
        // plotters keeps the font for the life of the process.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| format!("{}\0not a TrueType font", path.display()))
    });
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.is_empty() => Err(PlotError::NoFont),
        Err(e) => {
            let (path, message) = e.split_once('\0').unwrap_or((e.as_str(), ""));
            Err(PlotError::BadFont {
                path: path.into(),
                message: message.to_owned(),
            })
        }
    }
}

fn draw_err(path: &Path) -> impl Fn(String) -> PlotError + '_ {
    move |message| PlotError::Draw {
        path: path.to_owned(),
        message,
    }
}

fn grid(n: usize) -> (usize, usize) {
    let cols = n.clamp(1, 3);
    (n.div_ceil(cols).max(1), cols)
}

const OURS: RGBColor = RGBColor(0, 90, 181);
const REFERENCE: RGBColor = RGBColor(220, 50, 32);

/// Kendall tau against N (log scale), one panel per objective, ours and the
/// best reference with one-standard-deviation bars.
pub fn tau_by_train_size(cells: &[Cell], path: &Path) -> Result<(), PlotError> {
    ensure_font()?;
    let err = draw_err(path);
    let mut objectives: Vec<&str> = cells.iter().map(|c| c.objective.as_str()).collect();
    objectives.dedup();
    let (rows, cols) = grid(objectives.len());
    let root = BitMapBackend::new(path, (420 * cols as u32, 320 * rows as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    for (panel, objective) in root.split_evenly((rows, cols)).iter().zip(&objectives) {
        let mine: Vec<&Cell> = cells.iter().filter(|c| c.objective == *objective).collect();
        // log2 N on a linear axis: whole-number ticks land on powers of two,
        // labelled as N.
        let sizes: Vec<f64> = mine.iter().map(|c| (c.train_size as f64).log2()).collect();
        let (x0, x1) = (
            sizes.iter().copied().fold(f64::INFINITY, f64::min) - 0.5,
            sizes.iter().copied().fold(0.0, f64::max) + 0.5,
        );
        let mut lows = Vec::new();
        let mut highs = Vec::new();
        for c in &mine {
            lows.push(c.kendall_tau.mean - c.kendall_tau.std);
            highs.push(c.kendall_tau.mean + c.kendall_tau.std);
            if let Some(r) = &c.reference {
                lows.push(r.kendall_tau.mean - r.kendall_tau.std);
                highs.push(r.kendall_tau.mean + r.kendall_tau.std);
            }
        }
        let y0 = lows.iter().copied().fold(1.0, f64::min).max(-1.0) - 0.02;
        let y1 = highs.iter().copied().fold(0.0, f64::max).min(1.0) + 0.02;
        let mut chart = ChartBuilder::on(panel)
            .caption(*objective, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(32)
            .y_label_area_size(46)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_desc("training networks (N)")
            .y_desc("Kendall tau")
            .x_label_formatter(&|x| format!("{:.0}", x.exp2()))
            .draw()
            .map_err(|e| err(e.to_string()))?;
        let series = |pick: &dyn Fn(&Cell) -> Option<(f64, f64)>| -> Vec<(f64, f64, f64)> {
            mine.iter()
                .filter_map(|c| pick(c).map(|(m, s)| ((c.train_size as f64).log2(), m, s)))
                .collect()
        };
        let ours = series(&|c| Some((c.kendall_tau.mean, c.kendall_tau.std)));
        let reference = series(&|c| {
            c.reference
                .as_ref()
                .map(|r| (r.kendall_tau.mean, r.kendall_tau.std))
        });
        for (points, color, label) in [
            (ours, OURS, "nasperf"),
            (reference, REFERENCE, "reference (best)"),
        ] {
            if points.is_empty() {
                continue;
            }
            chart
                .draw_series(LineSeries::new(
                    points.iter().map(|&(x, m, _)| (x, m)),
                    color.stroke_width(2),
                ))
                .map_err(|e| err(e.to_string()))?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            chart
                .draw_series(points.iter().map(|&(x, m, s)| {
                    ErrorBar::new_vertical(x, m - s, m, m + s, color.filled(), 8)
                }))
                .map_err(|e| err(e.to_string()))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(e.to_string()))?;
    }
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}

/// Predicted against true values on the test networks of one seed, one
/// panel per objective, with the diagonal.
pub fn predicted_vs_true(scatters: &[Scatter], path: &Path) -> Result<(), PlotError> {
    ensure_font()?;
    let err = draw_err(path);
    let (rows, cols) = grid(scatters.len());
    let root = BitMapBackend::new(path, (420 * cols as u32, 380 * rows as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    for (panel, s) in root.split_evenly((rows, cols)).iter().zip(scatters) {
        let all = s
            .predicted
            .iter()
            .chain(&s.truth)
            .copied()
            .filter(|v| v.is_finite());
        let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        if !lo.is_finite() || !hi.is_finite() {
            continue;
        }
        let pad = (hi - lo).max(1e-9) * 0.03;
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!("{} (N={}, seed {})", s.objective, s.train_size, s.seed),
                ("sans-serif", 15),
            )
            .margin(10)
            .x_label_area_size(32)
            .y_label_area_size(52)
            .build_cartesian_2d(lo - pad..hi + pad, lo - pad..hi + pad)
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .x_desc(format!("true ({})", s.unit))
            .y_desc(format!("predicted ({})", s.unit))
            .draw()
            .map_err(|e| err(e.to_string()))?;
        chart
            .draw_series(
                s.truth
                    .iter()
                    .zip(&s.predicted)
                    .map(|(&t, &p)| Circle::new((t, p), 1, OURS.mix(0.35).filled())),
            )
            .map_err(|e| err(e.to_string()))?;
        chart
            .draw_series(LineSeries::new([(lo, lo), (hi, hi)], BLACK.mix(0.6)))
            .map_err(|e| err(e.to_string()))?;
    }
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}
