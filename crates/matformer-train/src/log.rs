//! CSV logs of a run (resumable: rows past the resumed step are dropped) and PNG plots of its loss curves.

use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result};
use plotters::prelude::*;

/// Append-only CSV file with a header.
pub struct Csv {
    file: std::fs::File,
}

impl Csv {
    /// Open `path` for appending, keeping only rows whose first column (a step) is `<= keep_until`;
    /// writes `header` when the file is new or has a different header.
    pub fn open(path: &Path, header: &str, keep_until: usize) -> Result<Self> {
        let mut kept = String::new();
        if let Ok(old) = std::fs::read_to_string(path) {
            let mut lines = old.lines();
            if lines.next() == Some(header) {
                kept.push_str(header);
                kept.push('\n');
                for l in lines {
                    let step = l.split(',').next().and_then(|s| s.parse::<usize>().ok());
                    if step.is_some_and(|s| s <= keep_until) {
                        kept.push_str(l);
                        kept.push('\n');
                    }
                }
            }
        }
        if kept.is_empty() {
            kept = format!("{header}\n");
        }
        std::fs::write(path, &kept).with_context(|| format!("writing {}", path.display()))?;
        let file = std::fs::OpenOptions::new().append(true).open(path)?;
        Ok(Csv { file })
    }

    /// Append one row.
    pub fn row(&mut self, cells: &[String]) -> Result<()> {
        writeln!(self.file, "{}", cells.join(","))?;
        Ok(())
    }
}

/// Parse a CSV written by [`Csv`] into its header and numeric rows (empty cells are NaN).
pub fn read_csv(path: &Path) -> Result<(Vec<String>, Vec<Vec<f64>>)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap_or_default().split(',').map(str::to_string).collect();
    let rows = lines.map(|l| l.split(',').map(|c| c.parse::<f64>().unwrap_or(f64::NAN)).collect()).collect();
    Ok((header, rows))
}

fn font_available() -> bool {
    static FONT: OnceLock<bool> = OnceLock::new();
    *FONT.get_or_init(|| {
        let candidates = [
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/TTF/DejaVuSans.ttf",
            "/usr/share/fonts/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        ];
        for c in candidates {
            if let Ok(bytes) = std::fs::read(c) {
                let leaked: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, leaked).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

/// How a [`Series`] is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// A line through the points.
    Line,
    /// Unconnected markers (a scatter plot).
    Points,
    /// A line with a marker at every point.
    LinePoints,
}

/// One named curve.
pub struct Series {
    /// Legend label.
    pub label: String,
    /// `(x, y)` points.
    pub points: Vec<(f64, f64)>,
    /// Line, markers or both.
    pub style: Style,
}

impl Series {
    /// A line through `points`.
    pub fn line(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series { label: label.into(), points, style: Style::Line }
    }

    /// `points` drawn as `style`.
    pub fn styled(label: impl Into<String>, points: Vec<(f64, f64)>, style: Style) -> Self {
        Series { label: label.into(), points, style }
    }
}

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Draw line plots to a PNG (text only when a system TrueType font is available; lines always).
pub fn line_plot(path: &Path, title: &str, x_label: &str, y_label: &str, series: &[Series]) -> Result<()> {
    let pts = series.iter().flat_map(|s| s.points.iter()).filter(|p| p.0.is_finite() && p.1.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        return Ok(());
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let pad = ((y1 - y0) * 0.05).max(1e-3);
    let (y0, y1) = (y0 - pad, y1 + pad);
    let text = font_available();
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("plotting {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(15).x_label_area_size(if text { 40 } else { 10 }).y_label_area_size(if text { 60 } else { 10 });
    if text {
        builder.caption(title, ("sans-serif", 22));
    }
    let mut chart = builder.build_cartesian_2d(x0..x1, y0..y1).map_err(|e| err(&e))?;
    let mut mesh = chart.configure_mesh();
    if text {
        mesh.x_desc(x_label).y_desc(y_label).label_style(("sans-serif", 14));
    } else {
        mesh.disable_x_axis().disable_y_axis();
    }
    mesh.draw().map_err(|e| err(&e))?;
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<(f64, f64)> = s.points.iter().copied().filter(|p| p.0.is_finite() && p.1.is_finite()).collect();
        if s.style != Style::Line {
            let marks = pts.iter().map(|&p| Circle::new(p, 4, color.filled()));
            let drawn = chart.draw_series(marks).map_err(|e| err(&e))?;
            if text && s.style == Style::Points {
                drawn.label(s.label.clone()).legend(move |(x, y)| Circle::new((x + 9, y), 4, color.filled()));
            }
        }
        if s.style == Style::Points {
            continue;
        }
        let drawn = chart.draw_series(LineSeries::new(pts, color.stroke_width(2))).map_err(|e| err(&e))?;
        if text {
            drawn
                .label(s.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3)));
        }
    }
    if text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// Exponential moving average of `ys` (NaNs skipped), for readable training curves.
pub fn smooth(points: &[(f64, f64)], alpha: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(points.len());
    let mut acc: Option<f64> = None;
    for &(x, y) in points {
        if !y.is_finite() {
            continue;
        }
        let a = match acc {
            None => y,
            Some(a) => a + alpha * (y - a),
        };
        acc = Some(a);
        out.push((x, a));
    }
    out
}
