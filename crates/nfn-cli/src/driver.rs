//! The one path every experiment kind takes through a run: say what is trained, show progress,
//! train through [`nft_model::train()`], write `summary.json` through [`Run`], print the result; and
//! evaluate a finished run's best checkpoint the same way.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use nft_model::train::{
    evaluate_metrics, fmt_value, reported_metrics, BaselineRecord, BudgetRecord, DataRecord,
    MetricRecord, SelectionRecord,
};
use nft_model::{
    hardware, load_model, train, EvalSplits, Evaluation, Metric, PaperRef, Progress, Run,
    RunSummary, Task, TrainData, TrainerConfig,
};
use tch::nn::VarStore;
use tch::Device;

/// Whether commands keep their progress to themselves (a library caller that did not ask for it).
static QUIET: AtomicBool = AtomicBool::new(false);

/// Silence (or restore) the progress lines and bars of the commands run in this process: the
/// Python package runs them quietly unless asked for progress.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether progress is silenced ([`set_quiet`]).
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// `eprintln!` unless progress is silenced ([`set_quiet`]).
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {
        if !$crate::driver::quiet() {
            eprintln!($($arg)*);
        }
    };
}

/// What a run is, as the summary and the tables describe it.
#[derive(Debug, Clone)]
pub struct Experiment {
    /// The experiment (run folder) name.
    pub name: String,
    /// The config's `task`.
    pub kind: &'static str,
    /// The results page (`inr_classification`, `inr_reconstruction`, ...).
    pub page: &'static str,
    /// The model, as tables name it.
    pub model: String,
    /// Trainable parameters.
    pub params: i64,
    /// The data and its split sizes.
    pub data: DataRecord,
    /// Networks per training step.
    pub batch_size: i64,
    /// The metric the tables show and the paper number refers to.
    pub headline: Metric,
    /// The paper's number, if any.
    pub paper: Option<PaperRef>,
    /// Reference points on the test split, printed and recorded beside the result.
    pub baselines: Vec<BaselineRecord>,
}

/// The device chosen for this process by [`choose_device`] (unset: the default).
static DEVICE: std::sync::OnceLock<Device> = std::sync::OnceLock::new();

/// Parse a device name: `cpu`, `cuda` (the first GPU) or `cuda:N`.
///
/// # Errors
/// A one-line message naming the accepted forms.
pub fn parse_device(name: &str) -> Result<Device> {
    match name.trim() {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda(0)),
        other => other
            .strip_prefix("cuda:")
            .and_then(|n| n.parse::<usize>().ok())
            .map(Device::Cuda)
            .with_context(|| format!("unknown device `{other}`: use cpu, cuda or cuda:N")),
    }
}

/// Choose the device for every command of this process: `flag` (`--device`), else the
/// `NFN_DEVICE` environment variable, else the first GPU if LibTorch sees one, else the CPU. A GPU
/// that is asked for must exist.
///
/// # Errors
/// An unknown name, or a CUDA device LibTorch cannot see (no GPU, or an `nfn` built without the
/// `cuda` feature, which `cargo xtask` adds by itself on machines with an NVIDIA driver).
pub fn choose_device(flag: Option<&str>) -> Result<Device> {
    let from_env = std::env::var("NFN_DEVICE").ok().filter(|v| !v.trim().is_empty());
    let (asked, source) = match (flag, &from_env) {
        (Some(f), _) => (Some(f.to_string()), "--device "),
        (None, Some(e)) => (Some(e.clone()), "NFN_DEVICE="),
        (None, None) => (None, ""),
    };
    let device = match asked {
        None => Device::cuda_if_available(),
        Some(name) => {
            let device = parse_device(&name).with_context(|| format!("{source}{name}"))?;
            if let Device::Cuda(i) = device {
                let visible = tch::Cuda::device_count();
                if i64::try_from(i).map_or(true, |i| i >= visible) {
                    anyhow::bail!(
                        "{source}{name}: LibTorch sees {visible} CUDA device(s){}",
                        if visible == 0 {
                            " (no GPU here, or this nfn was built without `--features cuda`; \
                             `cargo xtask` adds it by itself where an NVIDIA driver is present)"
                        } else {
                            ""
                        }
                    );
                }
            }
            device
        }
    };
    Ok(*DEVICE.get_or_init(|| device))
}

/// The device every command runs on: the one [`choose_device`] chose, else the first GPU if there
/// is one.
pub fn device() -> Device {
    *DEVICE.get_or_init(Device::cuda_if_available)
}

/// Parse `--shard i/n` (clap value parser).
pub fn parse_shard(s: &str) -> std::result::Result<nfn_weightspace::Shard, String> {
    s.parse().map_err(|e: nfn_weightspace::Error| e.to_string())
}

/// The device as users write it: `cpu`, `cuda:0`.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cuda(i) => format!("cuda:{i}"),
        Device::Mps => "mps".into(),
        Device::Vulkan => "vulkan".into(),
        Device::Cpu => "cpu".into(),
    }
}

/// Trainable parameters in `vs`.
pub fn param_count(vs: &VarStore) -> i64 {
    vs.trainable_variables().iter().map(|t| t.numel() as i64).sum()
}

/// The chance level of a classification result: the accuracy (%) on `test_labels` of always
/// answering the most frequent class of `train_labels` (`[n]` i64 each).
pub fn majority_class_baseline(
    train_labels: &tch::Tensor,
    test_labels: &tch::Tensor,
) -> BaselineRecord {
    let counts = train_labels.bincount::<tch::Tensor>(None, 0);
    let majority = counts.argmax(0, false).int64_value(&[]);
    let hits = test_labels.eq(majority).sum(tch::Kind::Int64).int64_value(&[]);
    BaselineRecord {
        name: "majority-class accuracy".into(),
        description: "always answering the most frequent training class (chance level)".into(),
        metric: Metric::Accuracy,
        value: 100.0 * hits as f64 / test_labels.size()[0].max(1) as f64,
    }
}

/// A progress bar with the house style.
pub fn progress_bar(name: &str, len: u64) -> ProgressBar {
    if quiet() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed} < {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(name.to_string());
    bar.enable_steady_tick(Duration::from_millis(500));
    bar
}

/// `value` with its unit, e.g. `81.2%` or `0.0182`.
fn with_unit(metric: Metric, value: f64) -> String {
    format!("{}{}", fmt_value(value), metric.unit())
}

/// Train `task` in `run`: the header line, a progress bar, the trainer, `summary.json` and the
/// result line.
///
/// # Errors
/// Whatever the trainer or writing the summary raises.
#[allow(clippy::too_many_arguments)]
pub fn train_run<T: Task>(
    run: &Run,
    exp: &Experiment,
    task: &T,
    vs: &mut VarStore,
    trainer: &TrainerConfig,
    data: &mut dyn TrainData<T::Input>,
    splits: EvalSplits<'_, T::Input>,
) -> Result<RunSummary> {
    let d = &exp.data;
    eprintln!(
        "nfn: training {} ({}, {:.2} M params) on {} / {} / {} networks of {}, {} steps x {}, on {}",
        exp.name,
        exp.model,
        exp.params as f64 / 1e6,
        d.train,
        d.val,
        d.test,
        d.name,
        trainer.steps,
        exp.batch_size,
        device_name(vs.device())
    );
    let bar = progress_bar(&exp.name, trainer.steps);
    let headline = exp.headline;
    let outcome = train(task, vs, trainer, run, data, splits, &mut |p: &Progress<'_>| {
        bar.set_position(p.step);
        let val = p.val.and_then(|v| v.get(headline)).map_or(String::new(), |v| {
            format!(" val {} {}", headline.label(), with_unit(headline, v))
        });
        bar.set_message(format!("loss {:.4}{val}, {:.0} nets/s", p.loss, p.networks_per_second));
    });
    bar.finish();
    let outcome = outcome?;
    let select = trainer.select.unwrap_or_else(|| task.selection());
    let summary = RunSummary {
        experiment: exp.name.clone(),
        kind: exp.kind.into(),
        page: exp.page.into(),
        model: exp.model.clone(),
        params: exp.params,
        data: exp.data.clone(),
        headline,
        test: MetricRecord::all(&outcome.test),
        selection: SelectionRecord {
            metric: select,
            direction: select.direction(),
            value: outcome.best.map(|b| b.value),
            step: outcome.best.map(|b| b.step),
        },
        paper: exp.paper.clone(),
        baselines: exp.baselines.clone(),
        budget: BudgetRecord {
            planned_steps: trainer.steps,
            steps: outcome.steps,
            batch_size: exp.batch_size,
            time_limit_minutes: trainer.time_limit_minutes,
            train_seconds: outcome.train_seconds,
        },
        hardware: hardware(),
        finished: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    };
    run.write_summary(&summary)?;
    let baselines: String = exp
        .baselines
        .iter()
        .map(|b| format!("; {} {}", b.name, with_unit(b.metric, b.value)))
        .collect();
    println!(
        "{}: test {} {} on {} networks ({} steps, {:.1} min){baselines}",
        exp.name,
        headline.label(),
        outcome.test.get(headline).map_or("n/a".into(), |v| with_unit(headline, v)),
        outcome.test.count,
        outcome.steps,
        outcome.train_seconds / 60.0
    );
    Ok(summary)
}

/// Load the best checkpoint of `run` into `vs` and evaluate `task` on `test` with the metrics
/// the run reported.
///
/// # Errors
/// A missing or unfitting checkpoint, named.
pub fn eval_run<T: Task>(
    run: &Run,
    task: &T,
    vs: &mut VarStore,
    trainer: &TrainerConfig,
    test: &[nft_model::Batch<T::Input>],
) -> Result<Evaluation> {
    let best = run.best();
    load_model(vs, &best).with_context(|| format!("loading {best:?} (train the run first)"))?;
    Ok(evaluate_metrics(task, test, &reported_metrics(task, trainer)))
}

/// One line with every metric of `eval`, beside the value `summary.json` recorded where the run
/// has finished.
pub fn describe_eval(run: &Run, eval: &Evaluation) -> String {
    let summary = run.read_summary().ok();
    let name = run.path().file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let mut parts = Vec::new();
    for (&metric, &value) in &eval.values {
        let mut part = format!("{} {}", metric.label(), with_unit(metric, value));
        if let Some(recorded) = summary.as_ref().and_then(|s| s.test_value(metric)) {
            part.push_str(&format!(" (summary: {})", with_unit(metric, recorded)));
        }
        parts.push(part);
    }
    format!("{name}: on {} test networks: {}", eval.count, parts.join(", "))
}
