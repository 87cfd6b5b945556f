//! `nfn curves --series LABEL=RUN ... --out curves.png`: learning curves of runs in one PNG, one
//! metric (`--metric val:accuracy`, `train:loss`, ...) against the step. A series is a run folder or
//! a `metrics.jsonl` in the runs' format (one JSON record per line with `split`, `step` and the
//! metrics), so curves written by other programs (the PyTorch reference's loop in `cargo xtask
//! bench learn`) plot beside ours. Series with the same label share a colour: the seeds of one side.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Options of `curves`.
#[derive(clap::Args)]
pub struct Args {
    /// `LABEL=PATH`: a run folder or a `metrics.jsonl` (repeat; a repeated label shares a colour).
    #[arg(long = "series", required = true, value_parser = parse_series)]
    pub series: Vec<(String, PathBuf)>,
    /// `SPLIT:NAME` of the records to plot, e.g. `val:accuracy`, `val:loss`, `train:loss`.
    #[arg(long, default_value = "val:accuracy")]
    pub metric: String,
    /// Average each point with the `smooth - 1` before it (noisy training losses).
    #[arg(long, default_value_t = 1)]
    pub smooth: usize,
    /// The plot's title (default: the metric).
    #[arg(long)]
    pub title: Option<String>,
    /// The x axis: the training `step`, or the training `minutes` so far (each record's
    /// `seconds`: wall time of the training loop, which validation records carry), to compare
    /// models by what they learn per CPU-minute.
    #[arg(long, value_enum, default_value = "step")]
    pub x: XAxis,
    /// The PNG to write.
    #[arg(long)]
    pub out: PathBuf,
}

/// What the x axis of `nfn curves` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum XAxis {
    /// The training step.
    Step,
    /// Minutes of training (the records' `seconds` / 60).
    Minutes,
}

fn parse_series(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((label, path)) if !label.is_empty() && !path.is_empty() => {
            Ok((label.to_string(), PathBuf::from(path)))
        }
        _ => Err(format!("expected LABEL=PATH, got {s:?}")),
    }
}

/// The `(x, value)` points of `split:name` in a metrics file, one per step (a resumed run logs
/// the steps after its last checkpoint twice; the later record wins), in step order; `x` is the
/// step, or the record's `seconds` / 60 for [`XAxis::Minutes`] (records without it are skipped).
///
/// # Errors
/// An unreadable file or a line that is not JSON, named with its line number.
pub fn read_curve(path: &Path, split: &str, name: &str, x: XAxis) -> Result<Vec<(f64, f64)>> {
    let file = if path.is_dir() { path.join("metrics.jsonl") } else { path.to_path_buf() };
    let text = std::fs::read_to_string(&file).with_context(|| format!("reading {file:?}"))?;
    let mut points = BTreeMap::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let record: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{file:?} line {}: not a JSON record", i + 1))?;
        if record.get("split").and_then(|v| v.as_str()) != Some(split) {
            continue;
        }
        let minutes = record.get("seconds").and_then(serde_json::Value::as_f64).map(|s| s / 60.0);
        if let (Some(step), Some(value)) = (
            record.get("step").and_then(serde_json::Value::as_u64),
            record.get(name).and_then(serde_json::Value::as_f64),
        ) {
            match x {
                XAxis::Step => points.insert(step, (step as f64, value)),
                XAxis::Minutes => match minutes {
                    Some(m) => points.insert(step, (m, value)),
                    None => continue,
                },
            };
        }
    }
    Ok(points.into_values().collect())
}

/// Each point averaged with up to `window - 1` points before it.
pub fn smooth(points: &[(f64, f64)], window: usize) -> Vec<(f64, f64)> {
    let window = window.max(1);
    (0..points.len())
        .map(|i| {
            let from = (i + 1).saturating_sub(window);
            let part = &points[from..=i];
            (points[i].0, part.iter().map(|p| p.1).sum::<f64>() / part.len() as f64)
        })
        .collect()
}

/// Draw the curves.
///
/// # Errors
/// A bad `--metric`, an unreadable series, a series without that metric, an unwritable PNG.
pub fn run(args: &Args) -> Result<()> {
    let Some((split, name)) = args.metric.split_once(':') else {
        bail!("--metric must be SPLIT:NAME (e.g. val:accuracy), got {:?}", args.metric);
    };
    let mut series = Vec::new();
    for (label, path) in &args.series {
        let points = read_curve(path, split, name, args.x)?;
        if points.is_empty() {
            bail!("{path:?} holds no {name:?} records of split {split:?}");
        }
        series.push((label.clone(), smooth(&points, args.smooth)));
    }
    let title = args.title.clone().unwrap_or_else(|| args.metric.clone());
    let xlabel = match args.x {
        XAxis::Step => "step",
        XAxis::Minutes => "training minutes",
    };
    let img = crate::plot::lines(&title, xlabel, &args.metric, &series);
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {dir:?}"))?;
    }
    img.save(&args.out).with_context(|| format!("writing {:?}", args.out))?;
    eprintln!("nfn: wrote {} ({} series of {})", args.out.display(), series.len(), args.metric);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_records_of_a_step_win_and_other_splits_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("metrics.jsonl");
        std::fs::write(
            &file,
            "{\"split\":\"val\",\"step\":20,\"accuracy\":30.0}\n\
             {\"split\":\"train\",\"step\":10,\"loss\":2.0}\n\
             {\"split\":\"val\",\"step\":10,\"accuracy\":10.0}\n\
             {\"split\":\"val\",\"step\":20,\"accuracy\":25.0}\n",
        )
        .unwrap();
        assert_eq!(
            read_curve(dir.path(), "val", "accuracy", XAxis::Step).unwrap(),
            [(10.0, 10.0), (20.0, 25.0)]
        );
        assert_eq!(read_curve(&file, "train", "loss", XAxis::Step).unwrap(), [(10.0, 2.0)]);
        std::fs::write(&file, "{\"split\":\n").unwrap();
        let err = read_curve(&file, "val", "accuracy", XAxis::Step).unwrap_err();
        assert!(format!("{err:#}").contains("line 1"), "{err:#}");
    }

    #[test]
    fn minutes_come_from_the_records_seconds() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("metrics.jsonl");
        std::fs::write(
            &file,
            "{\"split\":\"val\",\"step\":10,\"accuracy\":10.0,\"seconds\":30.0}\n\
             {\"split\":\"val\",\"step\":20,\"accuracy\":20.0}\n\
             {\"split\":\"val\",\"step\":30,\"accuracy\":30.0,\"seconds\":120.0}\n",
        )
        .unwrap();
        assert_eq!(
            read_curve(&file, "val", "accuracy", XAxis::Minutes).unwrap(),
            [(0.5, 10.0), (2.0, 30.0)]
        );
    }

    #[test]
    fn smoothing_averages_the_window_before_each_point() {
        let pts = [(1.0, 1.0), (2.0, 3.0), (3.0, 5.0)];
        assert_eq!(smooth(&pts, 2), [(1.0, 1.0), (2.0, 2.0), (3.0, 4.0)]);
        assert_eq!(smooth(&pts, 1), pts);
    }
}
