//! `deeprl plot`: learning curves from run directories: the episode return against env
//! steps, smoothed, one line per run; runs of the same env and agent (several seeds) are drawn
//! as their mean with the min-max spread around it.

use anyhow::{bail, Result};
use deeprl::csv_log::read_scalars;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct PlotArgs {
    /// Run directories written by `deeprl train`, each optionally as `LABEL=DIR`: runs with
    /// the same label (by default `{env} / {agent}` from the directory name) form one line,
    /// their mean with the min-max spread.
    #[arg(required = true, value_name = "[LABEL=]RUN_DIR")]
    runs: Vec<String>,
    /// The PNG to write.
    #[arg(long)]
    out: PathBuf,
    /// The scalar to plot.
    #[arg(long, default_value = "rollout/episode_return")]
    tag: String,
    /// Episodes in the moving average.
    #[arg(long, default_value_t = 20)]
    smooth: usize,
}

/// DejaVu Sans (Bitstream Vera licence, see assets/fonts), so text renders on any machine.
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// A trailing moving average over `window` points.
fn smooth(points: &[(u64, f64)], window: usize) -> Vec<(f64, f64)> {
    let window = window.max(1);
    let mut sum = 0.0;
    points
        .iter()
        .enumerate()
        .map(|(i, &(step, v))| {
            sum += v;
            if i >= window {
                sum -= points[i - window].1;
            }
            (step as f64, sum / (i + 1).min(window) as f64)
        })
        .collect()
}

/// The value of a step curve at `x`: the last point at or before it.
fn at(curve: &[(f64, f64)], x: f64) -> Option<f64> {
    let i = curve.partition_point(|p| p.0 <= x);
    (i > 0).then(|| curve[i - 1].1)
}

/// `{env}__{agent}` from a run directory's name (`{env}__{agent}__{seed}__{time}`).
fn group_of(dir: &Path) -> String {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let parts: Vec<&str> = name.split("__").collect();
    if parts.len() >= 4 {
        format!("{} / {}", parts[0], parts[1])
    } else {
        name
    }
}

/// One line of the plot: a label, its points and, for groups, the spread.
struct Line {
    label: String,
    mean: Vec<(f64, f64)>,
    band: Option<Vec<(f64, f64, f64)>>,
}

fn lines(args: &PlotArgs) -> Result<Vec<Line>> {
    let mut groups: BTreeMap<String, Vec<Vec<(f64, f64)>>> = BTreeMap::new();
    for run in &args.runs {
        let (label, dir) = match run.split_once('=') {
            Some((label, dir)) if !Path::new(run).exists() => (Some(label), PathBuf::from(dir)),
            _ => (None, PathBuf::from(run)),
        };
        let csv = dir.join("scalars.csv");
        let points = read_scalars(&csv, &args.tag)?;
        if points.is_empty() {
            bail!("{} has no `{}` values", csv.display(), args.tag);
        }
        let group = label.map_or_else(|| group_of(&dir), String::from);
        groups.entry(group).or_default().push(smooth(&points, args.smooth));
    }
    let mut out = Vec::new();
    for (label, curves) in groups {
        if curves.len() == 1 {
            out.push(Line { label, mean: curves[0].clone(), band: None });
            continue;
        }
        // A common grid up to the shortest run's last step.
        let start = curves.iter().map(|c| c[0].0).fold(f64::MIN, f64::max);
        let end = curves.iter().map(|c| c[c.len() - 1].0).fold(f64::MAX, f64::min);
        let n = 200;
        let (mut band, mut mean) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for k in 0..n {
            let x = start + (end - start) * k as f64 / (n - 1) as f64;
            let values: Vec<f64> = curves.iter().filter_map(|c| at(c, x)).collect();
            let lo = values.iter().copied().fold(f64::MAX, f64::min);
            let hi = values.iter().copied().fold(f64::MIN, f64::max);
            band.push((x, lo, hi));
            mean.push((x, values.iter().sum::<f64>() / values.len() as f64));
        }
        let label = format!("{label} (mean of {} runs, min-max)", curves.len());
        out.push(Line { label, mean, band: Some(band) });
    }
    Ok(out)
}

fn draw(path: &Path, tag: &str, lines: &[Line]) -> Result<()> {
    let all = lines.iter().flat_map(|l| {
        l.mean.iter().map(|&(x, y)| (x, y, y)).chain(l.band.iter().flatten().copied())
    });
    let (mut x1, mut y0, mut y1) = (1.0f64, f64::MAX, f64::MIN);
    for (x, lo, hi) in all {
        x1 = x1.max(x);
        y0 = y0.min(lo);
        y1 = y1.max(hi);
    }
    if y1 <= y0 {
        (y0, y1) = (y0 - 1.0, y1 + 1.0);
    }
    let pad = 0.05 * (y1 - y0);
    let root = BitMapBackend::new(path, (960, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(tag, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x1, (y0 - pad)..(y1 + pad))?;
    chart.configure_mesh().x_desc("env steps").y_desc(tag).draw()?;
    for (i, line) in lines.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        if let Some(band) = &line.band {
            let polygon: Vec<(f64, f64)> = band
                .iter()
                .map(|&(x, _, hi)| (x, hi))
                .chain(band.iter().rev().map(|&(x, lo, _)| (x, lo)))
                .collect();
            chart.draw_series(std::iter::once(Polygon::new(polygon, color.mix(0.2).filled())))?;
        }
        chart
            .draw_series(LineSeries::new(line.mean.iter().copied(), color.stroke_width(2)))?
            .label(&line.label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

pub fn run(args: &PlotArgs) -> Result<ExitCode> {
    let lines = lines(args)?;
    let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    super::write_atomically(&args.out, |tmp| draw(tmp, &args.tag, &lines))?;
    println!("wrote {} ({} lines)", args.out.display(), lines.len());
    Ok(ExitCode::SUCCESS)
}
