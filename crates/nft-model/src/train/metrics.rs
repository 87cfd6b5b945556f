//! The metrics every task can report, each with its name, unit and direction, and their
//! streaming accumulation over evaluation batches: accuracy, MSE, mean absolute error, R² and
//! Kendall's τ-b (the one copy in the workspace; the CNN-zoo metric, docs/design.md §6.3).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// Which way a metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Larger is better (accuracy, R², τ).
    Higher,
    /// Smaller is better (losses and errors).
    Lower,
}

impl Direction {
    /// Whether `a` is strictly better than `b` (a NaN is never better).
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            Direction::Higher => a > b,
            Direction::Lower => a < b,
        }
    }

    /// An arrow for table headers.
    pub fn arrow(self) -> &'static str {
        match self {
            Direction::Higher => "↑",
            Direction::Lower => "↓",
        }
    }
}

/// A metric over one split. Every evaluation reports [`Metric::Loss`]; a task adds the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// The task's own loss, averaged over networks.
    Loss,
    /// Percentage of networks whose arg-max output is the target class.
    Accuracy,
    /// Mean squared error over every output element (pixels and channels for images).
    Mse,
    /// Mean absolute error over every output element.
    Mae,
    /// Coefficient of determination `1 - SS_res / SS_tot` over every output element.
    R2,
    /// Kendall's τ-b between outputs and targets over the whole split ([`kendall_tau_b`]).
    KendallTau,
}

impl Metric {
    /// Every metric, in table order.
    pub const ALL: [Metric; 6] =
        [Metric::Loss, Metric::Accuracy, Metric::Mse, Metric::Mae, Metric::R2, Metric::KendallTau];

    /// The key in `metrics.jsonl`, `summary.json` and configs.
    pub fn key(self) -> &'static str {
        match self {
            Metric::Loss => "loss",
            Metric::Accuracy => "accuracy",
            Metric::Mse => "mse",
            Metric::Mae => "mae",
            Metric::R2 => "r2",
            Metric::KendallTau => "kendall_tau",
        }
    }

    /// A human name for tables.
    pub fn label(self) -> &'static str {
        match self {
            Metric::Loss => "loss",
            Metric::Accuracy => "accuracy",
            Metric::Mse => "MSE",
            Metric::Mae => "MAE",
            Metric::R2 => "R²",
            Metric::KendallTau => "Kendall τ-b",
        }
    }

    /// The unit of the value (`%` for accuracy, empty for plain numbers).
    pub fn unit(self) -> &'static str {
        match self {
            Metric::Accuracy => "%",
            _ => "",
        }
    }

    /// Which way the metric improves.
    pub fn direction(self) -> Direction {
        match self {
            Metric::Accuracy | Metric::R2 | Metric::KendallTau => Direction::Higher,
            Metric::Loss | Metric::Mse | Metric::Mae => Direction::Lower,
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

/// The metrics of one split: every requested metric's value and the number of networks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Networks evaluated.
    pub count: i64,
    /// Each metric's value ([`Metric::Loss`] always present).
    pub values: BTreeMap<Metric, f64>,
}

impl Evaluation {
    /// The value of `metric`, if it was computed.
    pub fn get(&self, metric: Metric) -> Option<f64> {
        self.values.get(&metric).copied()
    }

    /// The mean loss.
    pub fn loss(&self) -> f64 {
        self.get(Metric::Loss).unwrap_or(f64::NAN)
    }

    /// `metric=value` pairs for a progress line, e.g. `accuracy 81.2%, loss 0.53`.
    pub fn describe(&self, metrics: &[Metric]) -> String {
        metrics
            .iter()
            .filter_map(|&m| {
                self.get(m).map(|v| format!("{} {}{}", m.label(), fmt_value(v), m.unit()))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A metric value with the digits a table needs: one decimal at 1 and above, four decimals below
/// (errors such as an MSE), and two significant digits in scientific notation below 0.001.
pub fn fmt_value(v: f64) -> String {
    if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1e-3 || v == 0.0 {
        format!("{v:.4}")
    } else {
        format!("{v:.1e}")
    }
}

/// Streaming sums over evaluation batches, from which every [`Metric`] follows; only τ keeps the
/// values themselves.
#[derive(Debug, Clone, Default)]
pub struct MetricAccumulator {
    metrics: Vec<Metric>,
    count: i64,
    loss_sum: f64,
    correct: i64,
    elements: i64,
    sq_err: f64,
    abs_err: f64,
    target_sum: f64,
    target_sq: f64,
    pairs: (Vec<f64>, Vec<f64>),
}

impl MetricAccumulator {
    /// An accumulator for `metrics` (the loss is always included).
    pub fn new(metrics: &[Metric]) -> Self {
        let mut metrics: Vec<Metric> = metrics.to_vec();
        metrics.push(Metric::Loss);
        metrics.sort();
        metrics.dedup();
        MetricAccumulator { metrics, ..Default::default() }
    }

    /// Add a batch: its mean loss, and outputs with their targets.
    ///
    /// # Shapes
    /// For [`Metric::Accuracy`], `outputs` `[b, k]` scores and `targets` `[b]` class indices; for the
    /// others, `outputs` and `targets` of one shape with the batch first.
    pub fn add(&mut self, loss: f64, outputs: &Tensor, targets: &Tensor) {
        let b = targets.size().first().copied().unwrap_or(0);
        self.count += b;
        self.loss_sum += loss * b as f64;
        let has = |m| self.metrics.contains(&m);
        if has(Metric::Accuracy) {
            let hits = outputs.argmax(-1, false).eq_tensor(targets).sum(Kind::Int64);
            self.correct += hits.int64_value(&[]);
        }
        if [Metric::Mse, Metric::Mae, Metric::R2, Metric::KendallTau].iter().any(|&m| has(m)) {
            let (o, t) = (outputs.to_kind(Kind::Double), targets.to_kind(Kind::Double));
            let err = &o - &t;
            self.elements += t.numel() as i64;
            self.sq_err += err.square().sum(Kind::Double).double_value(&[]);
            self.abs_err += err.abs().sum(Kind::Double).double_value(&[]);
            self.target_sum += t.sum(Kind::Double).double_value(&[]);
            self.target_sq += t.square().sum(Kind::Double).double_value(&[]);
            if has(Metric::KendallTau) {
                let flat = |x: &Tensor| {
                    Vec::<f64>::try_from(x.to_device(Device::Cpu).reshape([-1]))
                        .expect("a flattened f64 tensor converts")
                };
                self.pairs.0.extend(flat(&o));
                self.pairs.1.extend(flat(&t));
            }
        }
    }

    /// The value of every metric over what was added.
    pub fn finish(&self) -> Evaluation {
        let n = self.elements.max(1) as f64;
        let values = self
            .metrics
            .iter()
            .map(|&m| {
                let v = match m {
                    Metric::Loss => self.loss_sum / self.count.max(1) as f64,
                    Metric::Accuracy => 100.0 * self.correct as f64 / self.count.max(1) as f64,
                    Metric::Mse => self.sq_err / n,
                    Metric::Mae => self.abs_err / n,
                    Metric::R2 => {
                        let ss_tot = self.target_sq - self.target_sum * self.target_sum / n;
                        1.0 - self.sq_err / ss_tot
                    }
                    Metric::KendallTau => kendall_tau_b(&self.pairs.0, &self.pairs.1),
                };
                (m, v)
            })
            .collect();
        Evaluation { count: self.count, values }
    }
}

/// Kendall's τ-b of paired samples (scipy's default, with ties): `(P - Q) / sqrt((n0 - n1) (n0 - n2))` with `P`/`Q` the
/// concordant/discordant pairs, `n0 = n(n-1)/2`, and `n1`, `n2` the pairs tied in `xs`, in `ys`.
/// O(n²) pair counting (a 15 000-network split takes well under a second). Returns `NaN` when
/// fewer than two pairs or when either side is constant (as scipy does).
///
/// # Panics
/// If `xs` and `ys` differ in length.
pub fn kendall_tau_b(xs: &[f64], ys: &[f64]) -> f64 {
    assert_eq!(xs.len(), ys.len(), "kendall_tau_b needs paired samples");
    let n = xs.len();
    let (mut concordant, mut discordant, mut ties_x, mut ties_y) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..n {
        for j in i + 1..n {
            let dx = xs[i] - xs[j];
            let dy = ys[i] - ys[j];
            match (dx == 0.0, dy == 0.0) {
                (true, true) => {
                    ties_x += 1;
                    ties_y += 1;
                }
                (true, false) => ties_x += 1,
                (false, true) => ties_y += 1,
                (false, false) if (dx > 0.0) == (dy > 0.0) => concordant += 1,
                (false, false) => discordant += 1,
            }
        }
    }
    let n0 = (n as i64) * (n as i64 - 1) / 2;
    let denom = ((n0 - ties_x) as f64 * (n0 - ties_y) as f64).sqrt();
    if denom == 0.0 {
        return f64::NAN;
    }
    (concordant - discordant) as f64 / denom
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulated_metrics_match_direct_formulas() {
        let o = Tensor::from_slice(&[0.1f64, 0.4, 0.35, 0.8]);
        let t = Tensor::from_slice(&[0.0f64, 0.5, 0.3, 1.0]);
        let mut acc =
            MetricAccumulator::new(&[Metric::Mse, Metric::Mae, Metric::R2, Metric::KendallTau]);
        acc.add(2.0, &o.narrow(0, 0, 3), &t.narrow(0, 0, 3));
        acc.add(1.0, &o.narrow(0, 3, 1), &t.narrow(0, 3, 1));
        let e = acc.finish();
        let err = [0.1f64, -0.1, 0.05, -0.2];
        let mse = err.iter().map(|e| e * e).sum::<f64>() / 4.0;
        let mean_t = 1.8 / 4.0;
        let ss_tot: f64 = [0.0f64, 0.5, 0.3, 1.0].iter().map(|t| (t - mean_t).powi(2)).sum();
        assert!((e.get(Metric::Mse).expect("reported") - mse).abs() < 1e-12);
        assert!((e.get(Metric::Mae).expect("reported") - 0.45 / 4.0).abs() < 1e-12);
        assert!((e.get(Metric::R2).expect("reported") - (1.0 - 4.0 * mse / ss_tot)).abs() < 1e-12);
        assert!((e.get(Metric::KendallTau).expect("reported") - 1.0).abs() < 1e-12);
        assert!((e.loss() - 7.0 / 4.0).abs() < 1e-12, "loss is weighted by batch size");
        assert_eq!(e.count, 4);
    }

    #[test]
    fn accuracy_is_a_percentage_over_all_networks() {
        let logits = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0, 1.0, 0.0]).view([3, 2]);
        let mut acc = MetricAccumulator::new(&[Metric::Accuracy]);
        acc.add(0.5, &logits, &Tensor::from_slice(&[0i64, 1, 1]));
        assert!((acc.finish().get(Metric::Accuracy).expect("reported") - 200.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn values_keep_their_digits() {
        assert_eq!(fmt_value(81.234), "81.2");
        assert_eq!(fmt_value(0.01942), "0.0194");
        assert_eq!(fmt_value(8.7e-9), "8.7e-9");
        assert_eq!(fmt_value(0.0), "0.0000");
    }

    #[test]
    fn directions() {
        assert!(Metric::Accuracy.direction().better(2.0, 1.0));
        assert!(Metric::Mse.direction().better(1.0, 2.0));
        assert!(!Metric::KendallTau.direction().better(f64::NAN, 0.0));
        assert!(!Metric::Loss.direction().better(f64::NAN, 0.0));
    }

    #[test]
    fn perfect_and_reversed_orders() {
        let xs = [1.0, 2.0, 3.0, 4.0];
        assert!((kendall_tau_b(&xs, &[10.0, 20.0, 30.0, 40.0]) - 1.0).abs() < 1e-12);
        assert!((kendall_tau_b(&xs, &[4.0, 3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
    }

    #[test]
    fn hand_computed_without_ties() {
        // Pairs of (1,2,3,4,5) vs (3,1,2,5,4): P = 7, Q = 3 over 10 pairs -> 0.4.
        let t = kendall_tau_b(&[1.0, 2.0, 3.0, 4.0, 5.0], &[3.0, 1.0, 2.0, 5.0, 4.0]);
        assert!((t - 0.4).abs() < 1e-12, "{t}");
    }

    #[test]
    fn hand_computed_with_ties() {
        // xs = (1,1,2,3), ys = (1,2,2,3): n0 = 6; tied in x: (0,1); tied in y: (1,2);
        // the other 4 pairs are concordant: P = 4, Q = 0; tau_b = 4 / sqrt(5 * 5) = 0.8.
        let t = kendall_tau_b(&[1.0, 1.0, 2.0, 3.0], &[1.0, 2.0, 2.0, 3.0]);
        assert!((t - 0.8).abs() < 1e-12, "{t}");
        // A pair tied on both sides counts in n1 and n2: xs = (1,1,2), ys = (5,5,6):
        // P = 2, n1 = n2 = 1, tau_b = 2 / sqrt(2 * 2) = 1.
        let t = kendall_tau_b(&[1.0, 1.0, 2.0], &[5.0, 5.0, 6.0]);
        assert!((t - 1.0).abs() < 1e-12, "{t}");
    }

    #[test]
    fn constant_side_is_nan() {
        assert!(kendall_tau_b(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_nan());
        assert!(kendall_tau_b(&[1.0], &[1.0]).is_nan());
    }
}
