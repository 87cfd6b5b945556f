//! Models: shipped and trained classifiers (`predict`, `embed`), editors (`edit`), and trainable
//! models and layers whose gradients flow back into the caller's PyTorch graph.

use std::path::PathBuf;
use std::sync::Mutex;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyList;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use nfn_cli::experiments::edit::Editor as RunEditor;
use nfn_cli::experiments::ExperimentKind;
use nfn_cli::inrs_input::InrClassifier;
use nfn_layers::WsModuleT;
use nfn_weightspace::{NetworkSpec, WeightSpaceFeatures};
use nft_model::{InvariantModel, ModelConfig, Run};

use crate::bridge::{borrow, export};
use crate::{borrow_ws, export_ws, must_exist, to_py, Capsules};

/// A poisoned lock means an earlier call panicked inside LibTorch: say so instead of panicking.
fn poisoned<T>(_: T) -> PyErr {
    PyRuntimeError::new_err("an earlier call on this object failed midway; load it again")
}

/// Features on the model's device with the model's dtype, checked against its spec.
fn prepare(
    wsfeat: &WeightSpaceFeatures,
    spec: &NetworkSpec,
    device: Device,
) -> anyhow::Result<WeightSpaceFeatures> {
    let got = wsfeat.spec()?;
    if got != *spec {
        anyhow::bail!(
            "the networks are {}; the model reads {}",
            nfn_cli::inrs_input::describe(&got),
            nfn_cli::inrs_input::describe(spec)
        );
    }
    wsfeat.check_finite().map_err(|e| anyhow::anyhow!("the weights: {e}"))?;
    Ok(wsfeat.to_kind(Kind::Float)?.to_device(device))
}

// ---------------------------------------------------------------------------------------------
// Classifiers
// ---------------------------------------------------------------------------------------------

/// A trained INR classifier: a shipped pretrained model or a run's best checkpoint.
#[pyclass(module = "nfn_rs._native")]
struct Classifier {
    inner: Mutex<Box<dyn InrClassifier>>,
    #[pyo3(get)]
    name: String,
    #[pyo3(get)]
    dims: Vec<i64>,
    #[pyo3(get)]
    num_classes: Option<i64>,
    #[pyo3(get)]
    test_accuracy: Option<f64>,
}

/// `f` of the model in `inner` over the INRs, `batch_size` at a time, without the GIL; the INRs are
/// checked against the model's spec (`spec`) first.
fn map_batches<'py, T: Send>(
    py: Python<'py>,
    inner: &Mutex<T>,
    (weights, biases): (&Bound<'py, PyList>, &Bound<'py, PyList>),
    batch_size: i64,
    spec: fn(&T) -> &NetworkSpec,
    f: impl Fn(&T, &WeightSpaceFeatures) -> anyhow::Result<Tensor> + Send,
) -> PyResult<Bound<'py, PyAny>> {
    let (wsfeat, held) = borrow_ws(weights, biases)?;
    let out = py
        .detach(move || -> anyhow::Result<Tensor> {
            let m = inner.lock().map_err(|_| anyhow::anyhow!("an earlier call failed midway"))?;
            let x = prepare(&wsfeat, spec(&m), Device::Cpu)?;
            let (n, batch) = (x.batch_size(), batch_size.max(1));
            let parts = (0..n)
                .step_by(batch as usize)
                .map(|start| {
                    let len = batch.min(n - start);
                    let idx = Tensor::arange_start(start, start + len, (Kind::Int64, Device::Cpu));
                    f(&m, &x.index_batch(&idx))
                })
                .collect::<anyhow::Result<Vec<Tensor>>>()?;
            Ok(Tensor::cat(&parts, 0))
        })
        .map_err(to_py)?;
    drop(held);
    export(py, out)
}

#[pymethods]
impl Classifier {
    /// Class logits `[n, classes]` of 1-channel SIRENs, `batch_size` at a time.
    #[pyo3(signature = (weights, biases, batch_size=256))]
    fn logits<'py>(
        &self,
        py: Python<'py>,
        weights: &Bound<'py, PyList>,
        biases: &Bound<'py, PyList>,
        batch_size: i64,
    ) -> PyResult<Bound<'py, PyAny>> {
        map_batches(
            py,
            &self.inner,
            (weights, biases),
            batch_size,
            |m| m.spec(),
            |m, b| Ok(m.logits(b)),
        )
    }

    /// Inr2Array latent arrays `[n, M, D]` (models with an Inr2Array encoder only).
    #[pyo3(signature = (weights, biases, batch_size=256))]
    fn embed<'py>(
        &self,
        py: Python<'py>,
        weights: &Bound<'py, PyList>,
        biases: &Bound<'py, PyList>,
        batch_size: i64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let name = &self.name;
        map_batches(
            py,
            &self.inner,
            (weights, biases),
            batch_size,
            |m| m.spec(),
            move |m, b| {
                m.latents(b).ok_or_else(|| {
                    anyhow::anyhow!("the {name} model has no Inr2Array encoder: embed needs one")
                })
            },
        )
    }

    /// A warning when these INRs' weight statistics lie outside what the model was trained on
    /// (`nfn predict`'s), else `None`.
    fn check_range(
        &self,
        weights: &Bound<'_, PyList>,
        biases: &Bound<'_, PyList>,
    ) -> PyResult<Option<String>> {
        let (wsfeat, _held) = borrow_ws(weights, biases)?;
        let m = self.inner.lock().map_err(poisoned)?;
        Ok(m.trained_range().and_then(|r| r.check(&wsfeat)))
    }
}

/// The model `model` (default: the card's) shipped for `dataset` (`fashion-mnist`, `mnist`).
#[pyfunction]
#[pyo3(signature = (dataset, model=None))]
fn load_pretrained(py: Python<'_>, dataset: &str, model: Option<&str>) -> PyResult<Classifier> {
    let (m, card, name) = py.detach(|| nfn_cli::pretrained::load(dataset, model)).map_err(to_py)?;
    let test_accuracy =
        card.models.get(&name).and_then(|r| r.get("test_accuracy")).and_then(|v| v.as_f64());
    Ok(Classifier {
        dims: m.spec().dims(),
        inner: Mutex::new(m),
        name,
        num_classes: Some(card.num_classes),
        test_accuracy,
    })
}

/// A trained run: an INR classifier (`inr_classification`, `inr2array_classify`), an Inr2Array
/// encoder (`inr2array_pretrain`) or an editor (`inr_editing`).
#[pyfunction]
fn load_run(py: Python<'_>, path: PathBuf) -> PyResult<Py<PyAny>> {
    must_exist(&path)?;
    let run = Run::open(&path).map_err(|e| to_py(e.into()))?;
    let kind = ExperimentKind::of_config(&run.config()).map_err(to_py)?;
    let name = path.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned());
    match kind {
        ExperimentKind::Classify | ExperimentKind::Inr2ArrayClassify => {
            let m: Box<dyn InrClassifier> = py
                .detach(|| -> anyhow::Result<Box<dyn InrClassifier>> {
                    Ok(match kind {
                        ExperimentKind::Classify => Box::new(
                            nfn_cli::experiments::classify::TrainedClassifier::load(&run)?,
                        ),
                        _ => Box::new(
                            nfn_cli::experiments::inr2array_classify::TrainedLatentClassifier::load(
                                &run,
                            )?,
                        ),
                    })
                })
                .map_err(to_py)?;
            let c = Classifier {
                dims: m.spec().dims(),
                inner: Mutex::new(m),
                name,
                num_classes: None,
                test_accuracy: None,
            };
            Ok(Py::new(py, c)?.into_any())
        }
        ExperimentKind::Edit => {
            let e = py.detach(|| RunEditor::load(&path)).map_err(to_py)?;
            let [h, w] = e.image_size();
            let ed =
                Editor { dims: e.spec().dims(), image_size: (h, w), inner: Mutex::new(e), name };
            Ok(Py::new(py, ed)?.into_any())
        }
        ExperimentKind::Inr2ArrayPretrain => {
            let (_, set, vs, autoencoder) = py
                .detach(|| {
                    nfn_cli::experiments::inr2array_pretrain::load_pretrained(&path, Device::Cpu)
                })
                .map_err(to_py)?;
            let spec = set.manifest.spec.clone();
            let e = Encoder {
                dims: spec.dims(),
                inner: Mutex::new(EncoderInner { spec, autoencoder, _vs: vs }),
                name,
            };
            Ok(Py::new(py, e)?.into_any())
        }
        other => Err(PyValueError::new_err(format!(
            "{}: a {other:?} run has nothing to apply to INRs here (classification, pretraining or \
             editing runs)",
            path.display()
        ))),
    }
}

struct EncoderInner {
    spec: NetworkSpec,
    autoencoder: inr2array::Inr2ArrayAutoencoder,
    _vs: VarStore,
}

/// The encoder of an Inr2Array pretraining run.
#[pyclass(module = "nfn_rs._native")]
struct Encoder {
    inner: Mutex<EncoderInner>,
    #[pyo3(get)]
    name: String,
    #[pyo3(get)]
    dims: Vec<i64>,
}

#[pymethods]
impl Encoder {
    /// Inr2Array latent arrays `[n, M, D]` (what `nfn embed --run` writes).
    #[pyo3(signature = (weights, biases, batch_size=256))]
    fn embed<'py>(
        &self,
        py: Python<'py>,
        weights: &Bound<'py, PyList>,
        biases: &Bound<'py, PyList>,
        batch_size: i64,
    ) -> PyResult<Bound<'py, PyAny>> {
        map_batches(
            py,
            &self.inner,
            (weights, biases),
            batch_size,
            |m| &m.spec,
            |m, b| {
                Ok(tch::no_grad(|| m.autoencoder.encoder().forward_t(b, false))
                    .to_kind(Kind::Float))
            },
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Editors
// ---------------------------------------------------------------------------------------------

/// A trained INR editor.
#[pyclass(module = "nfn_rs._native")]
struct Editor {
    inner: Mutex<RunEditor>,
    #[pyo3(get)]
    name: String,
    #[pyo3(get)]
    dims: Vec<i64>,
    #[pyo3(get)]
    image_size: (i64, i64),
}

#[pymethods]
impl Editor {
    /// The edited SIRENs (θ + Δθ) of 1-channel SIRENs: `(weights, biases)`.
    fn edit<'py>(
        &self,
        py: Python<'py>,
        weights: &Bound<'py, PyList>,
        biases: &Bound<'py, PyList>,
    ) -> PyResult<(Capsules<'py>, Capsules<'py>)> {
        let (wsfeat, held) = borrow_ws(weights, biases)?;
        let inner = &self.inner;
        let out = py
            .detach(move || -> anyhow::Result<WeightSpaceFeatures> {
                let e =
                    inner.lock().map_err(|_| anyhow::anyhow!("an earlier call failed midway"))?;
                wsfeat.check_finite().map_err(|err| anyhow::anyhow!("the weights: {err}"))?;
                e.apply(&wsfeat.to_kind(Kind::Float)?)
            })
            .map_err(to_py)?;
        drop(held);
        export_ws(py, out)
    }
}

// ---------------------------------------------------------------------------------------------
// Trainable models and layers
// ---------------------------------------------------------------------------------------------

/// What a trainable module computes: an invariant model (`[b, outputs]`) or an equivariant layer
/// (weight-space features).
enum Net {
    Invariant(Box<dyn InvariantModel>),
    Equivariant(Box<dyn WsModuleT>),
}

impl Net {
    fn forward(&self, x: &WeightSpaceFeatures, train: bool) -> Vec<Tensor> {
        match self {
            Net::Invariant(m) => vec![m.forward_t(x, train)],
            Net::Equivariant(m) => {
                let (w, b) = m.forward_t(x, train).into_parts();
                w.into_iter().chain(b).collect()
            }
        }
    }
}

struct ModuleInner {
    vs: VarStore,
    net: Net,
    spec: NetworkSpec,
    c_in: i64,
}

impl ModuleInner {
    /// The variables, sorted by name (the order `parameters` and gradients use).
    fn variables(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn check(&self, wsfeat: &WeightSpaceFeatures) -> anyhow::Result<()> {
        let got = wsfeat.spec()?;
        if got != self.spec || wsfeat.channels() != self.c_in {
            anyhow::bail!(
                "the input is {} with {} channel(s); the module reads {} with {}",
                nfn_cli::inrs_input::describe(&got),
                wsfeat.channels(),
                nfn_cli::inrs_input::describe(&self.spec),
                self.c_in
            );
        }
        Ok(())
    }
}

/// A trainable nfn-rs model or layer whose parameters are shared with PyTorch (`nfn_rs.Module`
/// wraps it in a `torch.nn.Module`).
#[pyclass(module = "nfn_rs._native")]
struct Module {
    inner: Mutex<ModuleInner>,
    #[pyo3(get)]
    kind: String,
    #[pyo3(get)]
    equivariant: bool,
}

/// The spec of the example features `(weights, biases)` (any batch and channel count).
fn spec_of(
    weights: &Bound<'_, PyList>,
    biases: &Bound<'_, PyList>,
) -> PyResult<(NetworkSpec, i64)> {
    let (wsfeat, _held) = borrow_ws(weights, biases)?;
    let spec =
        wsfeat.spec().map_err(|e| PyValueError::new_err(format!("not a weight space: {e}")))?;
    Ok((spec, wsfeat.channels()))
}

#[pymethods]
impl Module {
    /// An invariant model from its config (the `[model]` table of an experiment config, as TOML
    /// text or JSON), for networks shaped like the example `(weights, biases)`.
    #[staticmethod]
    #[pyo3(signature = (config, weights, biases, num_outputs, seed=0))]
    fn model(
        config: &str,
        weights: &Bound<'_, PyList>,
        biases: &Bound<'_, PyList>,
        num_outputs: i64,
        seed: i64,
    ) -> PyResult<Self> {
        let (spec, c_in) = spec_of(weights, biases)?;
        let cfg: ModelConfig = serde_json::from_str(config).or_else(|json_err| {
            toml::from_str(config).map_err(|toml_err| {
                PyValueError::new_err(format!(
                    "model config: neither JSON ({json_err}) nor TOML ({})",
                    toml_err.message()
                ))
            })
        })?;
        cfg.validate().map_err(|e| to_py(e.into()))?;
        if c_in != 1 {
            return Err(PyValueError::new_err(format!(
                "a model reads 1-channel (raw) weights; the example has {c_in} channels"
            )));
        }
        tch::manual_seed(seed);
        let vs = VarStore::new(Device::Cpu);
        let model = cfg.build(&vs.root(), &spec, num_outputs).map_err(|e| to_py(e.into()))?;
        Ok(Module {
            inner: Mutex::new(ModuleInner { vs, net: Net::Invariant(model), spec, c_in }),
            kind: cfg.name().into(),
            equivariant: false,
        })
    }

    /// One equivariant layer, `kind` `"hnp"` or `"np"`, from `c_in` to `c_out` channels, for
    /// networks shaped like the example.
    #[staticmethod]
    #[pyo3(signature = (kind, weights, biases, c_out, seed=0))]
    fn layer(
        kind: &str,
        weights: &Bound<'_, PyList>,
        biases: &Bound<'_, PyList>,
        c_out: i64,
        seed: i64,
    ) -> PyResult<Self> {
        let (spec, c_in) = spec_of(weights, biases)?;
        tch::manual_seed(seed);
        let vs = VarStore::new(Device::Cpu);
        let layer: Box<dyn WsModuleT> = match kind {
            "hnp" => Box::new(
                nfn_layers::HnpLinear::new(
                    &vs.root(),
                    &spec,
                    &nfn_layers::HnpLinearConfig { c_in, c_out },
                )
                .map_err(|e| PyValueError::new_err(e.to_string()))?,
            ),
            "np" => Box::new(
                nfn_layers::NpLinear::new(
                    &vs.root(),
                    &spec,
                    &nfn_layers::NpLinearConfig { c_in, c_out, io_embed: false },
                )
                .map_err(|e| PyValueError::new_err(e.to_string()))?,
            ),
            other => {
                return Err(PyValueError::new_err(format!(
                    "layer {other:?}: expected \"hnp\" or \"np\""
                )))
            }
        };
        Ok(Module {
            inner: Mutex::new(ModuleInner { vs, net: Net::Equivariant(layer), spec, c_in }),
            kind: kind.into(),
            equivariant: true,
        })
    }

    /// `(name, tensor)` per parameter, sorted by name, sharing memory with the module: a PyTorch
    /// optimizer that updates them in place updates the module.
    fn parameters<'py>(&self, py: Python<'py>) -> PyResult<Vec<(String, Bound<'py, PyAny>)>> {
        let m = self.inner.lock().map_err(poisoned)?;
        m.variables().into_iter().map(|(name, t)| Ok((name, export(py, t.detach())?))).collect()
    }

    /// The output without a graph: `[b, outputs]` for a model, `(weights, biases)` for a layer.
    #[pyo3(signature = (weights, biases, train=false))]
    fn forward<'py>(
        &self,
        py: Python<'py>,
        weights: &Bound<'py, PyList>,
        biases: &Bound<'py, PyList>,
        train: bool,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let (wsfeat, held) = borrow_ws(weights, biases)?;
        let inner = &self.inner;
        let outs = py
            .detach(move || -> anyhow::Result<Vec<Tensor>> {
                let m =
                    inner.lock().map_err(|_| anyhow::anyhow!("an earlier call failed midway"))?;
                m.check(&wsfeat)?;
                let x = wsfeat.to_kind(Kind::Float)?;
                Ok(tch::no_grad(|| m.net.forward(&x, train)))
            })
            .map_err(to_py)?;
        drop(held);
        outs.into_iter().map(|t| export(py, t)).collect()
    }

    /// The output and the graph that gives its gradients: `(outputs, graph)`; `graph.backward`
    /// takes the gradients of the outputs and returns those of the inputs (weights then biases)
    /// and of the parameters (in `parameters()` order).
    #[pyo3(signature = (weights, biases, train=true))]
    fn forward_graph<'py>(
        &self,
        py: Python<'py>,
        weights: &Bound<'py, PyList>,
        biases: &Bound<'py, PyList>,
        train: bool,
    ) -> PyResult<(Capsules<'py>, Graph)> {
        let (wsfeat, held) = borrow_ws(weights, biases)?;
        let inner = &self.inner;
        let (outs, leaves) = py
            .detach(move || -> anyhow::Result<(Vec<Tensor>, Vec<Tensor>)> {
                let m =
                    inner.lock().map_err(|_| anyhow::anyhow!("an earlier call failed midway"))?;
                m.check(&wsfeat)?;
                // Leaves over the caller's memory; the float copy (if any) stays in the graph.
                // Recorded whatever the caller's grad mode (PyTorch runs an autograd function's
                // forward with it off, on this thread, in this same LibTorch).
                let (outs, inputs) = tch::with_grad(|| -> anyhow::Result<_> {
                    let (w, b) = wsfeat.shallow_clone().into_parts();
                    let inputs: Vec<Tensor> =
                        w.iter().chain(&b).map(|t| t.detach().set_requires_grad(true)).collect();
                    let n = w.len();
                    let x = WeightSpaceFeatures::new(
                        inputs[..n].iter().map(|t| t.to_kind(Kind::Float)).collect(),
                        inputs[n..].iter().map(|t| t.to_kind(Kind::Float)).collect(),
                    )?;
                    Ok((m.net.forward(&x, train), inputs))
                })?;
                let leaves =
                    inputs.into_iter().chain(m.variables().into_iter().map(|(_, v)| v)).collect();
                Ok((outs, leaves))
            })
            .map_err(to_py)?;
        // The input leaves alias the caller's tensors: `nfn_rs.Module`'s autograd function keeps
        // those alive in its context for as long as the graph.
        drop(held);
        let exported = outs.iter().map(|t| export(py, t.detach())).collect::<PyResult<Vec<_>>>()?;
        Ok((exported, Graph { inner: Mutex::new(Some(GraphInner { outs, leaves })) }))
    }

    /// Save the parameters as safetensors (`nfn`'s checkpoint format), atomically.
    fn save(&self, path: PathBuf) -> PyResult<()> {
        let m = self.inner.lock().map_err(poisoned)?;
        nft_model::save_model(&m.vs, &path).map_err(|e| to_py(e.into()))
    }

    /// Load parameters saved by `save` (or a run's `model.safetensors` of the same config).
    fn load(&self, path: PathBuf) -> PyResult<()> {
        must_exist(&path)?;
        let mut m = self.inner.lock().map_err(poisoned)?;
        nft_model::load_model(&mut m.vs, &path).map_err(|e| to_py(e.into()))
    }
}

struct GraphInner {
    outs: Vec<Tensor>,
    leaves: Vec<Tensor>,
}

/// The autograd graph of one `forward_graph` call (used once).
#[pyclass(module = "nfn_rs._native")]
struct Graph {
    inner: Mutex<Option<GraphInner>>,
}

#[pymethods]
impl Graph {
    /// Gradients of the inputs (weights then biases) and of the parameters, given the gradients
    /// of the outputs (`None` where an output got none); `None` where no gradient reaches.
    fn backward<'py>(
        &self,
        py: Python<'py>,
        grads: &Bound<'py, PyList>,
    ) -> PyResult<Vec<Option<Bound<'py, PyAny>>>> {
        let g = self.inner.lock().map_err(poisoned)?.take().ok_or_else(|| {
            PyRuntimeError::new_err("backward through this graph was already done")
        })?;
        if grads.len() != g.outs.len() {
            return Err(PyValueError::new_err(format!(
                "expected {} output gradients, got {}",
                g.outs.len(),
                grads.len()
            )));
        }
        let mut held = Vec::new();
        let mut terms = Vec::new();
        for (i, (out, grad)) in g.outs.iter().zip(grads.iter()).enumerate() {
            if grad.is_none() {
                continue;
            }
            let b = borrow(&grad, &format!("grad[{i}]"))?;
            if b.tensor.size() != out.size() {
                return Err(PyValueError::new_err(format!(
                    "grad[{i}]: shape {:?}, the output's is {:?}",
                    b.tensor.size(),
                    out.size()
                )));
            }
            terms.push((out.shallow_clone(), b.tensor.shallow_clone()));
            held.push(b);
        }
        let leaves: Vec<Tensor> = g.leaves.iter().map(Tensor::shallow_clone).collect();
        let n_leaves = leaves.len();
        let grads = py
            .detach(move || -> anyhow::Result<Vec<Tensor>> {
                if terms.is_empty() {
                    return Ok(Vec::new());
                }
                tch::with_grad(|| {
                    let total = terms
                        .iter()
                        .map(|(o, g)| (o * g.to_kind(o.kind())).sum(o.kind()))
                        .reduce(|a, b| a + b)
                        .expect("at least one term");
                    Ok(Tensor::f_run_backward(&[total], &leaves, false, false)?)
                })
            })
            .map_err(to_py)?;
        drop(held);
        drop(g);
        if grads.is_empty() {
            // no output had a gradient: none for any input or parameter
            return Ok((0..n_leaves).map(|_| None).collect());
        }
        grads
            .into_iter()
            .map(|t| if t.defined() { export(py, t).map(Some) } else { Ok(None) })
            .collect()
    }
}

/// Add this file's classes and functions to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Classifier>()?;
    m.add_class::<Editor>()?;
    m.add_class::<Encoder>()?;
    m.add_class::<Module>()?;
    m.add_class::<Graph>()?;
    m.add_function(wrap_pyfunction!(load_pretrained, m)?)?;
    m.add_function(wrap_pyfunction!(load_run, m)?)?;
    Ok(())
}
