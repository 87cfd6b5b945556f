//! A minimal, non-executing reader of PyTorch `.pth` state dicts (design.md §6.1): the zip holds
//! `<name>/data.pkl` and raw storages `<name>/data/<key>`. The pickle is interpreted, never run:
//! only the opcodes `torch.save` emits for a dict of tensors are understood, and only the globals
//! `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2` and `torch.{Float,Double}Storage`
//! are accepted; anything else is refused with an error naming the file.
//!
//! It allocates no more than the file justifies: a zip entry may expand to at most twice the file's
//! size plus 1 MiB (`torch.save` stores entries uncompressed, so a zip bomb is refused before it is
//! inflated), pickle values nest at most [`MAX_DEPTH`] deep, the values the pickle builds (memo
//! copies included) are counted against a budget of four units per byte of the file plus 2^20, and a
//! tensor may not hold more elements than its storage (a header claiming 100 GB of a 1 KB storage is
//! an error, not an allocation). Each limit gives [`Error::File`] naming the file.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// One tensor of a state dict, as f32 in row-major (contiguous) order.
#[derive(Debug, Clone, PartialEq)]
pub struct PthTensor {
    /// The shape.
    pub shape: Vec<i64>,
    /// `shape.product()` values.
    pub data: Vec<f32>,
}

/// A pickle value, as far as state dicts need.
#[derive(Debug, Clone)]
enum Value {
    Mark,
    None,
    /// A bool or float: accepted (e.g. `requires_grad`), never needed.
    Scalar,
    Int(i64),
    Str(String),
    Tuple(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(&'static str),
    Storage {
        elem: usize,
        key: String,
        numel: usize,
    },
    Tensor(PthTensor),
}

/// How deep pickle values may nest (a state dict needs 4: dict, REDUCE arguments, size tuple, int).
pub const MAX_DEPTH: usize = 32;

/// Value units (nodes, string bytes, tensor elements) a pickle may build per byte of the file, on
/// top of [`BUDGET_BASE`].
const BUDGET_PER_BYTE: usize = 4;
/// Value units every file may build.
const BUDGET_BASE: usize = 1 << 20;

impl Value {
    /// Nesting depth (a scalar is 1). Recursion is safe: no value deeper than [`MAX_DEPTH`] is
    /// ever built.
    fn depth(&self) -> usize {
        match self {
            Value::Tuple(xs) => 1 + xs.iter().map(Value::depth).max().unwrap_or(0),
            Value::Dict(kv) => {
                1 + kv.iter().map(|(k, v)| k.depth().max(v.depth())).max().unwrap_or(0)
            }
            _ => 1,
        }
    }

    /// The value's `Debug` text cut to 120 characters, for error messages.
    fn short(&self) -> String {
        let text = format!("{self:?}");
        match text.char_indices().nth(120) {
            Some((i, _)) => format!("{}...", &text[..i]),
            None => text,
        }
    }

    /// What a copy of the value costs, in budget units.
    fn size(&self) -> usize {
        match self {
            Value::Str(s) => 1 + s.len(),
            Value::Tuple(xs) => 1 + xs.iter().map(Value::size).sum::<usize>(),
            Value::Dict(kv) => 1 + kv.iter().map(|(k, v)| k.size() + v.size()).sum::<usize>(),
            Value::Storage { key, .. } => 1 + key.len(),
            Value::Tensor(t) => 1 + t.shape.len() + t.data.len(),
            _ => 1,
        }
    }
}

const ALLOWED: [(&str, &str, &str); 4] = [
    ("collections", "OrderedDict", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2", "rebuild"),
    ("torch", "FloatStorage", "f32"),
    ("torch", "DoubleStorage", "f64"),
];

/// Read a `.pth` state dict: `(key, tensor)` pairs in file order.
///
/// # Errors
/// [`Error::File`] naming `path` if it is not a zip, is truncated, holds no `data.pkl`, or its
/// pickle uses an opcode or global outside the supported subset, or a storage is short.
pub fn read_state_dict(path: impl AsRef<Path>) -> Result<Vec<(String, PthTensor)>> {
    let path = path.as_ref();
    let bad = |m: String| Error::file(path, m);
    let file = std::fs::File::open(path).map_err(|e| bad(format!("cannot open: {e}")))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| bad(format!("not a PyTorch zip checkpoint (truncated?): {e}")))?;
    let pkl_name = zip
        .file_names()
        .find(|n| n.ends_with("/data.pkl"))
        .map(str::to_string)
        .ok_or_else(|| bad("no <name>/data.pkl in the zip".into()))?;
    let prefix = pkl_name.trim_end_matches("data.pkl").to_string();
    let file_len =
        usize::try_from(std::fs::metadata(path).map_or(0, |m| m.len())).unwrap_or(usize::MAX);
    // torch.save stores entries uncompressed: nothing may expand past the file itself (twice, for
    // slack) plus 1 MiB
    let max_entry = file_len.saturating_mul(2).saturating_add(1 << 20);
    let mut read_entry = |name: &str| -> Result<Vec<u8>> {
        let entry = zip.by_name(name).map_err(|e| bad(format!("{name}: {e}")))?;
        if usize::try_from(entry.size()).map_or(true, |n| n > max_entry) {
            return Err(bad(format!(
                "{name} claims {} bytes, more than a {file_len}-byte file can hold (zip bomb?)",
                entry.size()
            )));
        }
        let mut bytes = Vec::new();
        // the header's size may lie: read one byte past the limit at most
        entry
            .take(max_entry as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| bad(format!("{name}: {e}")))?;
        if bytes.len() > max_entry {
            return Err(bad(format!("{name} expands past {max_entry} bytes (zip bomb?)")));
        }
        Ok(bytes)
    };
    let pickle = read_entry(&pkl_name)?;
    let mut storages: HashMap<String, std::rc::Rc<[u8]>> = HashMap::new();
    let budget = file_len.saturating_mul(BUDGET_PER_BYTE).saturating_add(BUDGET_BASE);
    let unpickler = Unpickler { bytes: &pickle, pos: 0, path, budget };
    let root = unpickler.run(&mut |key: &str| {
        if !storages.contains_key(key) {
            let bytes = read_entry(&format!("{prefix}data/{key}"))?;
            storages.insert(key.to_string(), bytes.into());
        }
        Ok(storages[key].clone())
    })?;
    match root {
        Value::Dict(items) => items
            .into_iter()
            .map(|(k, v)| match (k, v) {
                (Value::Str(k), Value::Tensor(t)) => Ok((k, t)),
                (k, _) => Err(bad(format!("state-dict entry {} is not a tensor", k.short()))),
            })
            .collect(),
        other => Err(bad(format!("the pickle is not a dict of tensors but {}", other.short()))),
    }
}

struct Unpickler<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
    /// Value units left to build (see [`BUDGET_PER_BYTE`]).
    budget: usize,
}

/// The raw bytes of a storage (`data/<key>`), shared by every tensor that views it.
type StorageFn<'s> = dyn FnMut(&str) -> Result<std::rc::Rc<[u8]>> + 's;

impl Unpickler<'_> {
    fn err(&self, m: impl std::fmt::Display) -> Error {
        Error::file(self.path, format!("data.pkl at byte {}: {m}", self.pos))
    }

    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| self.err("truncated pickle"))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn uint(&mut self, n: usize) -> Result<usize> {
        let b = self.take(n)?;
        Ok(b.iter().rev().fold(0usize, |acc, &x| (acc << 8) | x as usize))
    }

    fn line(&mut self) -> Result<String> {
        let rest = &self.bytes[self.pos..];
        let n = rest.iter().position(|&b| b == b'\n').ok_or_else(|| self.err("truncated"))?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }

    fn string(&mut self, n: usize) -> Result<Value> {
        let b = self.take(n)?.to_vec();
        String::from_utf8(b).map(Value::Str).map_err(|_| self.err("invalid UTF-8 string"))
    }

    fn global(&self, module: &str, name: &str) -> Result<Value> {
        ALLOWED
            .iter()
            .find(|(m, n, _)| *m == module && *n == name)
            .map(|(_, _, tag)| Value::Global(tag))
            .ok_or_else(|| self.err(format!("refusing unsupported global {module}.{name}")))
    }

    /// Spend `units` of the budget.
    fn charge(&mut self, units: usize) -> Result<()> {
        self.budget = self.budget.checked_sub(units).ok_or_else(|| {
            self.err(
                "the pickle builds more than the file's size justifies (memo or nesting bomb?)",
            )
        })?;
        Ok(())
    }

    /// A tuple of `items`, refused past [`MAX_DEPTH`].
    fn tuple(&mut self, items: Vec<Value>) -> Result<Value> {
        self.charge(1)?;
        let value = Value::Tuple(items);
        if value.depth() > MAX_DEPTH {
            return Err(self.err(format!("values nest deeper than {MAX_DEPTH}")));
        }
        Ok(value)
    }

    fn pop(&self, stack: &mut Vec<Value>) -> Result<Value> {
        stack.pop().ok_or_else(|| self.err("stack underflow"))
    }

    fn pop_mark(&self, stack: &mut Vec<Value>) -> Result<Vec<Value>> {
        let at = stack.iter().rposition(|v| matches!(v, Value::Mark));
        let at = at.ok_or_else(|| self.err("no MARK on the stack"))?;
        let items = stack.split_off(at + 1);
        stack.pop();
        Ok(items)
    }

    fn set_items(&self, stack: &mut [Value], items: Vec<Value>) -> Result<()> {
        let Some(Value::Dict(dict)) = stack.last_mut() else {
            return Err(self.err("SETITEM(S) on a non-dict"));
        };
        let deepest = items.iter().map(Value::depth).max().unwrap_or(0);
        if deepest >= MAX_DEPTH {
            return Err(self.err(format!("values nest deeper than {MAX_DEPTH}")));
        }
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            dict.push((k, v));
        }
        Ok(())
    }

    /// Interpret the pickle; `storage(key)` returns the raw bytes of `data/<key>`.
    fn run(mut self, storage: &mut StorageFn<'_>) -> Result<Value> {
        let mut stack: Vec<Value> = Vec::new();
        let mut memo: HashMap<usize, Value> = HashMap::new();
        loop {
            let op = self.take(1)?[0];
            self.charge(1)?;
            match op {
                0x80 => drop(self.take(1)?),         // PROTO
                0x95 => drop(self.take(8)?),         // FRAME
                b'.' => return self.pop(&mut stack), // STOP
                b'(' => stack.push(Value::Mark),
                b'N' => stack.push(Value::None),
                0x88 | 0x89 => stack.push(Value::Scalar),
                b'K' => stack.push(Value::Int(self.uint(1)? as i64)),
                b'M' => stack.push(Value::Int(self.uint(2)? as i64)),
                b'J' => stack.push(Value::Int(self.uint(4)? as u32 as i32 as i64)),
                0x8a => {
                    // LONG1: little-endian two's complement of n <= 8 bytes.
                    let n = self.uint(1)?;
                    if n > 8 {
                        return Err(self.err("integer too large"));
                    }
                    let b = self.take(n)?;
                    let mut v = b.iter().rev().fold(0i64, |acc, &x| (acc << 8) | x as i64);
                    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    stack.push(Value::Int(v));
                }
                b'G' => {
                    self.take(8)?;
                    stack.push(Value::Scalar);
                }
                b'X' => {
                    let n = self.uint(4)?;
                    let v = self.string(n)?;
                    stack.push(v);
                }
                0x8c => {
                    let n = self.uint(1)?;
                    let v = self.string(n)?;
                    stack.push(v);
                }
                b'q' | b'r' | 0x94 => {
                    let idx = match op {
                        b'q' => self.uint(1)?,
                        b'r' => self.uint(4)?,
                        _ => memo.len(),
                    };
                    let top = stack.last().ok_or_else(|| self.err("PUT on empty stack"))?;
                    let top = top.clone();
                    self.charge(top.size())?;
                    memo.insert(idx, top);
                }
                b'h' | b'j' => {
                    let idx = if op == b'h' { self.uint(1)? } else { self.uint(4)? };
                    let v = memo.get(&idx).ok_or_else(|| self.err("GET of an unknown memo"))?;
                    let v = v.clone();
                    self.charge(v.size())?;
                    stack.push(v);
                }
                b'c' => {
                    let (module, name) = (self.line()?, self.line()?);
                    stack.push(self.global(&module, &name)?);
                }
                0x93 => {
                    let name = self.pop(&mut stack)?;
                    let module = self.pop(&mut stack)?;
                    let (Value::Str(m), Value::Str(n)) = (module, name) else {
                        return Err(self.err("STACK_GLOBAL needs two strings"));
                    };
                    stack.push(self.global(&m, &n)?);
                }
                b')' => stack.push(Value::Tuple(vec![])),
                b't' => {
                    let items = self.pop_mark(&mut stack)?;
                    let tuple = self.tuple(items)?;
                    stack.push(tuple);
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if stack.len() < n {
                        return Err(self.err("stack underflow"));
                    }
                    let items = stack.split_off(stack.len() - n);
                    let tuple = self.tuple(items)?;
                    stack.push(tuple);
                }
                b'}' => stack.push(Value::Dict(vec![])),
                b's' => {
                    let v = self.pop(&mut stack)?;
                    let k = self.pop(&mut stack)?;
                    self.set_items(&mut stack, vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark(&mut stack)?;
                    self.set_items(&mut stack, items)?;
                }
                b'Q' => {
                    let pid = self.pop(&mut stack)?;
                    stack.push(self.persistent(pid)?);
                }
                b'R' => {
                    let args = self.pop(&mut stack)?;
                    let func = self.pop(&mut stack)?;
                    stack.push(self.reduce(func, args, storage)?);
                }
                b'b' => {
                    // BUILD: only an OrderedDict's `_metadata` state, which is dropped.
                    let _state = self.pop(&mut stack)?;
                    if !matches!(stack.last(), Some(Value::Dict(_))) {
                        return Err(self.err("BUILD on something other than an OrderedDict"));
                    }
                }
                _ => return Err(self.err(format!("unsupported pickle opcode {op:#04x}"))),
            }
        }
    }

    /// `('storage', torch.FloatStorage, key, location, numel)`.
    fn persistent(&self, pid: Value) -> Result<Value> {
        if let Value::Tuple(items) = &pid {
            if let [Value::Str(tag), Value::Global(kind), Value::Str(key), _, Value::Int(numel)] =
                items.as_slice()
            {
                let elem = match *kind {
                    "f32" => 4,
                    "f64" => 8,
                    _ => 0,
                };
                if tag == "storage" && elem > 0 && *numel >= 0 {
                    return Ok(Value::Storage { elem, key: key.clone(), numel: *numel as usize });
                }
            }
        }
        Err(self.err(format!("unsupported persistent id {}", pid.short())))
    }

    fn reduce(&mut self, func: Value, args: Value, storage: &mut StorageFn<'_>) -> Result<Value> {
        let Value::Tuple(args) = args else {
            return Err(self.err("REDUCE arguments are not a tuple"));
        };
        match func {
            Value::Global("OrderedDict") if args.is_empty() => Ok(Value::Dict(vec![])),
            Value::Global("rebuild") => {
                let tensor = self.rebuild_tensor(&args, storage)?;
                self.charge(tensor.size())?;
                Ok(tensor)
            }
            other => Err(self.err(format!("refusing to call {}", other.short()))),
        }
    }

    /// `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`.
    fn rebuild_tensor(&self, args: &[Value], storage: &mut StorageFn<'_>) -> Result<Value> {
        let ints = |v: &Value| -> Option<Vec<i64>> {
            match v {
                Value::Tuple(xs) => {
                    xs.iter().map(|x| if let Value::Int(i) = x { Some(*i) } else { None }).collect()
                }
                _ => None,
            }
        };
        let (Some(Value::Storage { elem, key, numel }), Some(Value::Int(offset))) =
            (args.first(), args.get(1))
        else {
            return Err(self.err("_rebuild_tensor_v2 without a storage and offset"));
        };
        let shape = args.get(2).and_then(ints).ok_or_else(|| self.err("bad tensor size"))?;
        let stride = args.get(3).and_then(ints).ok_or_else(|| self.err("bad tensor stride"))?;
        if shape.len() != stride.len() || shape.iter().chain(&stride).any(|&x| x < 0) {
            return Err(self.err(format!("bad size {shape:?} / stride {stride:?}")));
        }
        let Some(need) = numel.checked_mul(*elem) else {
            return Err(self.err(format!("storage data/{key} claims {numel} elements")));
        };
        let count = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d as usize));
        // every element must exist in the storage: a size with zero strides over a tiny storage
        // would otherwise be an allocation the file does not justify
        let count = count.filter(|&c| c <= *numel).ok_or_else(|| {
            self.err(format!(
                "tensor of size {shape:?} is larger than its storage ({numel} elements)"
            ))
        })?;
        let bytes = storage(key)?;
        if bytes.len() < need {
            return Err(
                self.err(format!("storage data/{key} has {} bytes, expected {need}", bytes.len()))
            );
        }
        let mut data = Vec::with_capacity(count);
        let mut index = vec![0i64; shape.len()];
        for _ in 0..count {
            // in i128: hostile strides must not overflow
            let at = i128::from(*offset)
                + index
                    .iter()
                    .zip(&stride)
                    .map(|(&i, &s)| i128::from(i) * i128::from(s))
                    .sum::<i128>();
            if at < 0 || at >= *numel as i128 {
                return Err(self.err(format!("tensor reaches past storage data/{key}")));
            }
            let b = &bytes[at as usize * elem..(at as usize + 1) * elem];
            data.push(match elem {
                4 => f32::from_le_bytes(b.try_into().expect("4 bytes")),
                _ => f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32,
            });
            for d in (0..shape.len()).rev() {
                index[d] += 1;
                if index[d] < shape[d] {
                    break;
                }
                index[d] = 0;
            }
        }
        Ok(Value::Tensor(PthTensor { shape, data }))
    }
}

/// One reference SIREN: its image index, class label and flat parameters in our order
/// (design.md §1.4: `W0, b0, W1, b1, W2, b2`, weights `(out, in)` as stored).
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceInr {
    /// Index into the concatenated torchvision train + test set (from `net<idx>.pth`).
    pub idx: i64,
    /// Class label (from the folder name `<prefix>_<digit>s`).
    pub label: i64,
    /// The flat parameters.
    pub params: Vec<f32>,
}

/// One SIREN file of a reference folder, listed but not read: its path, image index and label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceFile {
    /// The `.pth` file.
    pub path: PathBuf,
    /// Index into the concatenated torchvision train + test set (from `net<idx>.pth`).
    pub idx: i64,
    /// Class label (from the folder name `<prefix>_<digit>s`).
    pub label: i64,
}

/// The folder-name prefix of one copy: `randinit_smaller_` (base, `None`) or
/// `randinit_smaller_aug<k>_` (`Some(k)`).
pub fn reference_prefix(copy: Option<u32>) -> String {
    match copy {
        None => "randinit_smaller_".to_string(),
        Some(k) => format!("randinit_smaller_aug{k}_"),
    }
}

/// List the SIREN files of one copy of a reference folder (design.md §6.1) without opening them:
/// `copy = None` lists the base fits `randinit_smaller_<d>s/net<idx>.pth`, `Some(k)` the augmented
/// copy `randinit_smaller_aug<k>_<d>s`. Only exact folder names match, so the base set does *not*
/// pick up `_aug` folders (the intended behaviour; design.md §8.5 describes the reference glob that
/// does). Other folders and files are ignored. Sorted by `idx` (stable, after the sorted folder
/// order).
///
/// # Errors
/// [`Error::File`] naming a folder that cannot be listed.
pub fn list_reference_inrs(
    root: impl AsRef<Path>,
    copy: Option<u32>,
) -> Result<Vec<ReferenceFile>> {
    let root = root.as_ref();
    let prefix = reference_prefix(copy);
    let list = |dir: &Path| -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        let entries = std::fs::read_dir(dir).map_err(|e| Error::file(dir, format!("{e}")))?;
        for entry in entries {
            out.push(entry.map_err(|e| Error::file(dir, format!("{e}")))?.path());
        }
        out.sort();
        Ok(out)
    };
    let mut files = Vec::new();
    for dir in list(root)? {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let digit = name.strip_prefix(&prefix).and_then(|r| r.strip_suffix('s'));
        let Some(label) = digit.filter(|d| d.len() == 1).and_then(|d| d.parse::<i64>().ok()) else {
            continue;
        };
        if !dir.is_dir() {
            continue;
        }
        for path in list(&dir)? {
            let fname = path.file_name().map(|n| n.to_string_lossy().into_owned());
            let idx = fname
                .as_deref()
                .and_then(|n| n.strip_prefix("net"))
                .and_then(|n| n.strip_suffix(".pth"))
                .and_then(|n| n.parse::<i64>().ok());
            let Some(idx) = idx else { continue };
            files.push(ReferenceFile { path, idx, label });
        }
    }
    files.sort_by_key(|f| f.idx);
    Ok(files)
}

/// Read one reference SIREN file into flat parameters in our order, checking that its tensors have
/// `spec`'s shapes in key order (`W0 (out, in), b0, W1, b1, ...`).
///
/// # Errors
/// [`Error::File`] naming `path` if it cannot be read (as [`read_state_dict`]);
/// [`Error::Mismatch`] naming it if its tensors do not have `spec`'s shapes.
pub fn read_reference_params(
    path: impl AsRef<Path>,
    spec: &nfn_weightspace::NetworkSpec,
) -> Result<Vec<f32>> {
    let path = path.as_ref();
    let mut shapes = Vec::new();
    for layer in spec.layers() {
        shapes.push(layer.weight_shape());
        shapes.push(vec![layer.n_out]);
    }
    let tensors = read_state_dict(path)?;
    let got: Vec<&Vec<i64>> = tensors.iter().map(|(_, t)| &t.shape).collect();
    if got.len() != shapes.len() || got.iter().zip(&shapes).any(|(g, s)| *g != s) {
        return Err(Error::mismatch(
            path,
            format!("tensor shapes {got:?}, expected {shapes:?} (SIREN spec)"),
        ));
    }
    Ok(tensors.into_iter().flat_map(|(_, t)| t.data).collect())
}

/// Read the SIRENs of one copy from a reference folder (design.md §6.1): the files
/// [`list_reference_inrs`] lists, each read by [`read_reference_params`]. Sorted by `idx`.
///
/// # Errors
/// [`Error::File`] naming the first unreadable or malformed file (or the folder);
/// [`Error::Mismatch`] naming a file whose tensors do not have `spec`'s shapes.
pub fn read_reference_inrs(
    root: impl AsRef<Path>,
    copy: Option<u32>,
    spec: &nfn_weightspace::NetworkSpec,
) -> Result<Vec<ReferenceInr>> {
    list_reference_inrs(root, copy)?
        .into_iter()
        .map(|f| {
            let params = read_reference_params(&f.path, spec)?;
            Ok(ReferenceInr { idx: f.idx, label: f.label, params })
        })
        .collect()
}
