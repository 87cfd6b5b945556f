//! The Small CNN Zoo (design.md §6.3): `weights.npy` `[N, 4970]` f32 in TensorFlow layout,
//! `metrics.csv.gz` (one row per checkpoint) and `layout.csv` (where each variable sits), converted
//! into [`WeightSpaceFeatures`] of [`NetworkSpec::small_cnn_zoo`] with `test_accuracy` targets.
//!
//! Conversion (design.md §8.3): conv kernels `(kh, kw, in, out)` → `(out, in, kh, kw)`, the dense
//! kernel `(in, out)` → `(out, in)`, plus a channel axis. Split (as the reference): rows reordered
//! by the permutation file, kept where `step` is the final step, all finite; test = second half (in
//! permuted order); the first half is shuffled with Python's `random.Random(0)` (reproduced exactly
//! by [`PyRandom`]) and cut 80 % train / 20 % val. The permutation file is read without a header,
//! so its leading `0` (a pandas header artefact, design.md §8.4) stays: row 0 appears twice, as in
//! the reference, which this reader reproduces on purpose.
//!
//! The final step is the largest `step` present in `metrics.csv.gz`: [`FINAL_STEP`] (86) on the
//! real zoos, so their split is the reference's, while generated zoos trained for fewer epochs load
//! too.
//!
//! `weights.npy` (5.4 GB on the real zoo) is never read whole: the header is checked (C order,
//! `[N, 4970]`, little-endian `'<f4'`, or `'<f8'` converted to f32 row by row; anything else is an
//! error naming the file, as is a file shorter than its header says), then only the kept rows are
//! read, in file order, one at a time, checked finite and copied into the requested split's tensor.
//! Loading the CIFAR-10-GS test split so peaks at about twice that split's size (the flat rows and
//! the converted features). The rows are read with positioned reads rather than a memory map: the
//! workspace forbids `unsafe` (which mapping needs), and reads keep file pages out of the process's
//! resident memory and turn a file truncated while loading into an error, never a `SIGBUS`.

pub mod generate;
mod npy_rows;
mod py_random;

use npy_rows::NpyRows;

pub use py_random::PyRandom;

use std::io::Read;
use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};

use nfn_weightspace::{NetworkSpec, WeightSpaceFeatures};

use crate::error::{Error, Result};
use crate::inr_set::Split;

/// The `step` of the final checkpoints (epoch 86) of the real zoos. The loader keeps the rows of
/// the largest step present in the metrics, which is this one there.
pub const FINAL_STEP: i64 = 86;
/// Parameters per zoo network.
pub const ZOO_NUM_PARAMS: i64 = 4970;

/// One row of `layout.csv`: variable `varname` occupies columns `[start, end)` of `weights.npy`
/// with TensorFlow shape `shape`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutEntry {
    /// TensorFlow variable name, ending in `kernel:0` or `bias:0`.
    pub varname: String,
    /// First column.
    pub start: i64,
    /// One past the last column.
    pub end: i64,
    /// TensorFlow shape.
    pub shape: Vec<i64>,
}

/// The columns of `metrics.csv.gz` the task needs, one entry per checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct ZooMetrics {
    /// Training step of the checkpoint.
    pub step: Vec<i64>,
    /// Test accuracy in `[0, 1]` (the regression target).
    pub test_accuracy: Vec<f32>,
}

/// Row indices into `weights.npy` of the three splits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZooSplits {
    /// Training rows.
    pub train: Vec<i64>,
    /// Validation rows.
    pub val: Vec<i64>,
    /// Test rows.
    pub test: Vec<i64>,
}

impl ZooSplits {
    /// The rows of `split`.
    pub fn rows(&self, split: Split) -> &[i64] {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
            Split::Test => &self.test,
        }
    }
}

/// One split of the zoo, ready for training.
#[derive(Debug)]
pub struct CnnZoo {
    /// `[n, 1, ...]` features of [`NetworkSpec::small_cnn_zoo`], f32.
    pub wsfeat: WeightSpaceFeatures,
    /// `[n]` f32 test accuracies.
    pub targets: Tensor,
    /// The `weights.npy` row of every network.
    pub rows: Vec<i64>,
}

fn csv_reader<R: Read>(reader: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(reader)
}

fn column(headers: &csv::StringRecord, name: &str, path: &Path) -> Result<usize> {
    headers
        .iter()
        .position(|h| h.trim() == name)
        .ok_or_else(|| Error::file(path, format!("no column {name:?} in header {headers:?}")))
}

fn parse_field<T: std::str::FromStr>(
    record: &csv::StringRecord,
    col: usize,
    row: usize,
    path: &Path,
) -> Result<T> {
    let field = record.get(col).unwrap_or("").trim();
    // pandas writes integer columns of float dtype as "86.0".
    field
        .parse::<T>()
        .or_else(|e| match field.strip_suffix(".0") {
            Some(int) => int.parse::<T>().map_err(|_| e),
            None => Err(e),
        })
        .map_err(|_| {
            Error::file(path, format!("row {row}: cannot parse {field:?} in column {col}"))
        })
}

/// Parse a Python tuple string such as `"(3, 3, 1, 16)"` or `"(16,)"`.
fn parse_shape(text: &str, row: usize, path: &Path) -> Result<Vec<i64>> {
    let inner = text.trim().trim_start_matches(['(', '[']).trim_end_matches([')', ']']);
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<i64>()
                .map_err(|_| Error::file(path, format!("row {row}: bad shape {text:?}")))
        })
        .collect()
}

/// Read `layout.csv` (columns `varname`, `start_idx`, `end_idx`, `shape`; others ignored).
///
/// # Errors
/// [`Error::File`] naming the file if it is missing, lacks a column, or has an unparsable or
/// inconsistent row (`end - start` must equal the shape's size).
pub fn read_layout(path: impl AsRef<Path>) -> Result<Vec<LayoutEntry>> {
    let path = path.as_ref();
    let file =
        std::fs::File::open(path).map_err(|e| Error::file(path, format!("cannot open: {e}")))?;
    let mut reader = csv_reader(file);
    let headers = reader.headers().map_err(|e| Error::file(path, e))?.clone();
    let [c_name, c_start, c_end, c_shape] =
        ["varname", "start_idx", "end_idx", "shape"].map(|n| column(&headers, n, path));
    let (c_name, c_start, c_end, c_shape) = (c_name?, c_start?, c_end?, c_shape?);
    let mut entries = Vec::new();
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(|e| Error::file(path, e))?;
        let entry = LayoutEntry {
            varname: record.get(c_name).unwrap_or("").to_string(),
            start: parse_field(&record, c_start, row, path)?,
            end: parse_field(&record, c_end, row, path)?,
            shape: parse_shape(record.get(c_shape).unwrap_or(""), row, path)?,
        };
        // checked: a hostile row must not overflow (found by fuzzing: a shape of -88888 x ...)
        let size = entry
            .shape
            .iter()
            .try_fold(1i64, |acc, &d| if d < 0 { None } else { acc.checked_mul(d) });
        let span = entry.end.checked_sub(entry.start).filter(|_| entry.start >= 0);
        if size.is_none() || span != size {
            return Err(Error::file(
                path,
                format!("row {row}: [start, end) does not match {entry:?}"),
            ));
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// Read `metrics.csv.gz` (gzip CSV with a header; columns `step` and `test_accuracy` are used).
///
/// # Errors
/// [`Error::File`] naming the file if it is missing, not gzip, truncated, or lacks a column.
pub fn read_metrics(path: impl AsRef<Path>) -> Result<ZooMetrics> {
    let path = path.as_ref();
    let file =
        std::fs::File::open(path).map_err(|e| Error::file(path, format!("cannot open: {e}")))?;
    let mut reader = csv_reader(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
    let headers =
        reader.headers().map_err(|e| Error::file(path, format!("not a gzip CSV: {e}")))?;
    let headers = headers.clone();
    let c_step = column(&headers, "step", path)?;
    let c_acc = column(&headers, "test_accuracy", path)?;
    let mut metrics = ZooMetrics { step: Vec::new(), test_accuracy: Vec::new() };
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(|e| Error::file(path, format!("row {row}: {e}")))?;
        metrics.step.push(parse_field(&record, c_step, row, path)?);
        metrics.test_accuracy.push(parse_field(&record, c_acc, row, path)?);
    }
    Ok(metrics)
}

/// Read a split permutation file: one row index per line, no header (so the leading `0` of
/// design.md §8.4 is kept as a row, as in the reference).
///
/// # Errors
/// [`Error::File`] naming the file if it is missing or a line is not a non-negative integer.
pub fn read_permutation(path: impl AsRef<Path>) -> Result<Vec<i64>> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            l.trim()
                .parse::<u64>()
                .map(|v| v as i64)
                .map_err(|_| Error::file(path, format!("line {}: not a row index: {l:?}", i + 1)))
        })
        .collect()
}

/// The reference split (design.md §6.3) as `weights.npy` rows: permute, keep the rows of the final
/// step (the largest in `steps`, [`FINAL_STEP`] on the real zoos), second half = test, first half
/// shuffled by `random.Random(0)` and cut at `int(0.8 * h)`. `perm_path` names the permutation
/// file in errors.
///
/// # Errors
/// [`Error::Mismatch`] if a permutation entry is not a row of the metrics.
pub fn split_rows(perm: &[i64], steps: &[i64], perm_path: &Path) -> Result<ZooSplits> {
    let final_step = steps.iter().copied().max();
    let mut kept = Vec::new();
    for (i, &row) in perm.iter().enumerate() {
        let step = steps.get(row as usize).ok_or_else(|| {
            Error::mismatch(
                perm_path,
                format!("entry {i} = {row} is not a row of the {} checkpoints", steps.len()),
            )
        })?;
        if Some(*step) == final_step {
            kept.push(row);
        }
    }
    let half = kept.len() / 2; // int(0.5 * len)
    let mut trainval: Vec<usize> = (0..half).collect();
    PyRandom::new(0).shuffle(&mut trainval);
    let val_point = (0.8 * half as f64) as usize; // int(0.8 * len), same IEEE product as Python
    let rows = |positions: &[usize]| positions.iter().map(|&p| kept[p]).collect::<Vec<_>>();
    Ok(ZooSplits {
        train: rows(&trainval[..val_point]),
        val: rows(&trainval[val_point..]),
        test: kept[half..].to_vec(),
    })
}

/// Convert flat TensorFlow-layout weights `[n, 4970]` into `[n, 1, ...]` features of
/// [`NetworkSpec::small_cnn_zoo`]. Kernels and biases are taken in `start` order and paired;
/// `path` (the layout file) names errors.
///
/// # Shapes
/// `flat [n, 4970]` → weights `[n, 1, 16, 1, 3, 3]`, `[n, 1, 16, 16, 3, 3]` ×2, `[n, 1, 10, 16]`;
/// biases `[n, 1, 16]` ×3, `[n, 1, 10]`.
///
/// # Errors
/// [`Error::Mismatch`] if the layout does not describe the zoo network or exceeds `flat`.
pub fn tf_to_wsfeat(
    flat: &Tensor,
    layout: &[LayoutEntry],
    path: &Path,
) -> Result<WeightSpaceFeatures> {
    let spec = NetworkSpec::small_cnn_zoo();
    let cols = flat.size().get(1).copied().unwrap_or(0);
    let mut entries: Vec<&LayoutEntry> = layout.iter().collect();
    entries.sort_by_key(|e| e.start);
    let kernels: Vec<_> = entries.iter().filter(|e| e.varname.ends_with("kernel:0")).collect();
    let biases: Vec<_> = entries.iter().filter(|e| e.varname.ends_with("bias:0")).collect();
    if kernels.len() != spec.num_layers() || biases.len() != spec.num_layers() {
        return Err(Error::mismatch(
            path,
            format!(
                "expected {} kernels and biases, found {} and {}",
                spec.num_layers(),
                kernels.len(),
                biases.len()
            ),
        ));
    }
    let (mut weights, mut bs) = (Vec::new(), Vec::new());
    for (l, (k, b)) in kernels.iter().zip(&biases).enumerate() {
        let layer = spec.layer(l);
        let (n_out, n_in) = (layer.n_out, layer.n_in);
        let expected_k = match layer.kernel {
            Some([kh, kw]) => vec![kh, kw, n_in, n_out],
            None => vec![n_in, n_out],
        };
        if k.shape != expected_k || b.shape != [n_out] || k.end > cols || b.end > cols {
            return Err(Error::mismatch(
                path,
                format!(
                    "layer {l}: kernel {:?} / bias {:?} (columns up to {}), expected {expected_k:?} \
                     / [{n_out}] within {cols} columns",
                    k.shape,
                    b.shape,
                    k.end.max(b.end)
                ),
            ));
        }
        let mut shape = vec![-1];
        shape.extend(&k.shape);
        let kernel = flat.f_narrow(1, k.start, k.end - k.start)?.f_reshape(&shape)?;
        let w = match layer.kernel {
            Some(_) => kernel.f_permute([0, 4, 3, 1, 2])?, // [n, out, in, kh, kw]
            None => kernel.f_permute([0, 2, 1])?,          // [n, out, in]
        };
        weights.push(w.f_contiguous()?.f_unsqueeze(1)?);
        // A copy, so that the features do not keep `flat` alive.
        bs.push(flat.f_narrow(1, b.start, n_out)?.f_contiguous()?.f_unsqueeze(1)?);
        // [n, 1, out]
    }
    let wsfeat = WeightSpaceFeatures::new(weights, bs)?;
    wsfeat.check_spec(&spec)?;
    Ok(wsfeat)
}

/// Rows of one split being copied, in chunks, into a preallocated `[n, cols]` tensor.
struct Gather {
    flat: Tensor,
    chunk: Vec<f32>,
    positions: Vec<i64>,
}

impl Gather {
    /// Rows copied per tensor op.
    const CHUNK_ROWS: usize = 256;

    fn new(n: usize, cols: i64) -> Result<Self> {
        let flat = Tensor::f_zeros([n as i64, cols], (Kind::Float, Device::Cpu))?;
        Ok(Self { flat, chunk: Vec::new(), positions: Vec::new() })
    }

    /// Place `row` at position `pos` of the split.
    fn push(&mut self, pos: usize, row: &[f32]) -> Result<()> {
        self.chunk.extend_from_slice(row);
        self.positions.push(pos as i64);
        if self.positions.len() == Self::CHUNK_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.positions.is_empty() {
            return Ok(());
        }
        let src = Tensor::f_from_slice(&self.chunk)?.f_view([self.positions.len() as i64, -1])?;
        let _ = self.flat.f_index_copy_(0, &Tensor::f_from_slice(&self.positions)?, &src)?;
        self.chunk.clear();
        self.positions.clear();
        Ok(())
    }

    fn finish(mut self) -> Result<Tensor> {
        self.flush()?;
        Ok(self.flat)
    }
}

const ALL_SPLITS: [Split; 3] = [Split::Train, Split::Val, Split::Test];

/// A zoo folder with its small files read and `weights.npy` opened and checked.
struct ZooSource {
    weights: NpyRows,
    layout: Vec<LayoutEntry>,
    layout_path: PathBuf,
    metrics: ZooMetrics,
    splits: ZooSplits,
}

impl ZooSource {
    fn open(dir: &Path, split_file: &Path) -> Result<Self> {
        let metrics_path = dir.join("metrics.csv.gz");
        let layout_path = dir.join("layout.csv");
        let layout = read_layout(&layout_path)?;
        let metrics = read_metrics(&metrics_path)?;
        let perm = read_permutation(split_file)?;
        let weights = NpyRows::open(&dir.join("weights.npy"))?;
        let [rows, cols] = weights.shape;
        if cols != ZOO_NUM_PARAMS {
            return Err(Error::mismatch(
                &weights.path,
                format!("expected [N, {ZOO_NUM_PARAMS}] weights, found {:?}", weights.shape),
            ));
        }
        if rows != metrics.step.len() as i64 {
            return Err(Error::mismatch(
                &metrics_path,
                format!("{} metric rows for {rows} weight rows", metrics.step.len()),
            ));
        }
        let splits = split_rows(&perm, &metrics.step, split_file)?;
        Ok(Self { weights, layout, layout_path, metrics, splits })
    }

    /// Read every kept row once, in file order, check it is finite, and copy the rows of the
    /// `wanted` splits into one `[n, 4970]` tensor each (in the order of `wanted`).
    fn gather(&mut self, wanted: &[Split]) -> Result<Vec<Tensor>> {
        // (row, (index into `wanted`, position in that split) if wanted)
        let mut plan: Vec<(i64, Option<(usize, usize)>)> = Vec::new();
        for split in ALL_SPLITS {
            let slot = wanted.iter().position(|&w| w == split);
            let rows = self.splits.rows(split).iter().enumerate();
            plan.extend(rows.map(|(pos, &row)| (row, slot.map(|s| (s, pos)))));
        }
        plan.sort_unstable_by_key(|&(row, _)| row);
        let cols = self.weights.shape[1];
        let mut gathers: Vec<Gather> = wanted
            .iter()
            .map(|&s| Gather::new(self.splits.rows(s).len(), cols))
            .collect::<Result<_>>()?;
        let mut values = vec![0f32; cols as usize];
        let mut last = None;
        for (row, dest) in plan {
            if last != Some(row) {
                self.weights.read_row(row, &mut values)?;
                if !values.iter().all(|x| x.is_finite()) {
                    return Err(Error::file(
                        &self.weights.path,
                        format!("row {row}: non-finite weights among the final-step rows"),
                    ));
                }
                last = Some(row);
            }
            if let Some((slot, pos)) = dest {
                gathers[slot].push(pos, &values)?;
            }
        }
        gathers.into_iter().map(Gather::finish).collect()
    }

    /// The `wanted` splits, in that order.
    fn load(&mut self, wanted: &[Split]) -> Result<Vec<CnnZoo>> {
        let flats = self.gather(wanted)?;
        let mut zoos = Vec::with_capacity(wanted.len());
        for (&split, flat) in wanted.iter().zip(flats) {
            let wsfeat = tf_to_wsfeat(&flat, &self.layout, &self.layout_path)?;
            drop(flat); // the features hold copies
            let rows = self.splits.rows(split).to_vec();
            let acc: Vec<f32> =
                rows.iter().map(|&r| self.metrics.test_accuracy[r as usize]).collect();
            zoos.push(CnnZoo { wsfeat, targets: Tensor::f_from_slice(&acc)?, rows });
        }
        Ok(zoos)
    }
}

/// Load one split of a zoo folder (`weights.npy`, `metrics.csv.gz`, `layout.csv`) with the
/// permutation file `split_file`. Only the kept rows of `weights.npy` are read; memory peaks at
/// about twice the split's size.
///
/// # Errors
/// [`Error::File`] / [`Error::Mismatch`] naming the file at fault: missing or malformed files,
/// `weights.npy` not a C-order `[N, 4970]` `'<f4'` / `'<f8'` array or shorter than its header
/// says, metrics rows not `N`, a permutation entry out of range, or non-finite weights among the
/// kept rows of any split.
pub fn load_cnn_zoo(
    dir: impl AsRef<Path>,
    split_file: impl AsRef<Path>,
    split: Split,
) -> Result<CnnZoo> {
    let mut source = ZooSource::open(dir.as_ref(), split_file.as_ref())?;
    let mut zoos = source.load(&[split])?;
    Ok(zoos.pop().expect("one split was requested"))
}

/// Load all three splits, `[train, val, test]`, reading the small files once and each kept row of
/// `weights.npy` once.
///
/// # Errors
/// As [`load_cnn_zoo`].
pub fn load_cnn_zoo_splits(
    dir: impl AsRef<Path>,
    split_file: impl AsRef<Path>,
) -> Result<[CnnZoo; 3]> {
    let mut source = ZooSource::open(dir.as_ref(), split_file.as_ref())?;
    let zoos = source.load(&ALL_SPLITS)?;
    Ok(zoos.try_into().expect("three splits were requested"))
}
