//! The zoo generator end to end on a tiny synthetic task: two shards merged into Small CNN Zoo
//! files that `load_cnn_zoo` reads, recorded accuracies reproduced by `evaluate_cnn`, the TF
//! layout round trip, deterministic resumption, and errors naming what is wrong.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use nfn_datasets::cnn_zoo::generate::{
    generate_parts, merge_parts, part_path, sample_hyper, wsfeat_to_tf, zoo_layout, GenReport,
    ZooGenConfig, ZooOptimizer, GEN_MANIFEST, SPLIT_FILE,
};
use nfn_datasets::cnn_zoo::{load_cnn_zoo, tf_to_wsfeat, LayoutEntry, ZOO_NUM_PARAMS};
use nfn_datasets::{Error, Split};
use nfn_weightspace::{evaluate_cnn, Activation, WeightSpaceFeatures};
use tch::{Kind, Tensor};

/// LibTorch's random generator is global and tests run on parallel threads: the data draw from it
/// (and on a GPU the generator reseeds it per group for dropout), so every test takes this lock
/// (the byte-identical regeneration check is only meaningful without a concurrent draw).
static SEEDED: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn seeded() -> std::sync::MutexGuard<'static, ()> {
    SEEDED.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

const SIDE: i64 = 16;
const CLASSES: i64 = 4;

/// Stripes of period 4 in one of four orientations (the class), random phase, plus noise, in
/// `[-1, 1]`. The orientation survives global average pooling (the quadrant of a bright spot
/// would not, but through the zero padding).
fn stripes(n: i64, seed: i64) -> (Tensor, Tensor) {
    tch::manual_seed(seed);
    let labels = Tensor::randint(CLASSES, [n], (Kind::Int64, tch::Device::Cpu));
    let phase = Tensor::randint(4, [n, 1, 1], (Kind::Int64, tch::Device::Cpu));
    let r = Tensor::arange(SIDE, (Kind::Int64, tch::Device::Cpu)).view([1, SIDE, 1]);
    let c = Tensor::arange(SIDE, (Kind::Int64, tch::Device::Cpu)).view([1, 1, SIDE]);
    let coord = |k: i64| match k {
        0 => r.shallow_clone() + c.zeros_like(),
        1 => c.shallow_clone() + r.zeros_like(),
        2 => &r + &c,
        _ => &r - &c + SIDE,
    };
    let per_class: Vec<Tensor> = (0..CLASSES).map(|k| coord(k).squeeze_dim(0)).collect();
    let coords = Tensor::stack(&per_class, 0).index_select(0, &labels); // [n, SIDE, SIDE]
    let on = (coords + phase).remainder(4).lt(2).to_kind(Kind::Float);
    let noise = Tensor::randn([n, SIDE, SIDE], (Kind::Float, tch::Device::Cpu)) * 0.3;
    let images = (on * 1.6 - 0.8 + noise).clamp(-1.0, 1.0).unsqueeze(1);
    (images, labels)
}

fn config() -> ZooGenConfig {
    ZooGenConfig {
        dataset: "stripes".into(),
        networks: 24,
        seed: 3,
        group: 8,
        batch_size: 32,
        epochs: vec![0, 1, 2, 4],
        steps_per_epoch: None,
        eval_images: Some(200),
        train_eval_images: Some(128),
        eval_batch: 50,
        ..Default::default()
    }
}

struct Data {
    train: (Tensor, Tensor),
    test: (Tensor, Tensor),
}

fn data() -> Data {
    Data { train: stripes(512, 1), test: stripes(256, 2) }
}

fn generate(dir: &Path, d: &Data, cfg: &ZooGenConfig, shard: (usize, usize)) -> GenReport {
    let mut ticks = 0;
    let report = generate_parts(
        &d.train.0,
        &d.train.1,
        &d.test.0,
        &d.test.1,
        cfg,
        dir,
        Some(shard),
        &mut |_| ticks += 1,
    )
    .unwrap();
    assert!(ticks > 0);
    report
}

/// `metrics.csv.gz` as column name → values.
fn read_metrics(dir: &Path) -> HashMap<String, Vec<String>> {
    let mut text = String::new();
    let file = std::fs::File::open(dir.join("metrics.csv.gz")).unwrap();
    flate2::read::GzDecoder::new(file).read_to_string(&mut text).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let mut columns: HashMap<String, Vec<String>> = HashMap::new();
    for record in reader.records() {
        for (h, v) in headers.iter().zip(record.unwrap().iter()) {
            columns.entry(h.to_string()).or_default().push(v.to_string());
        }
    }
    columns
}

#[test]
fn generated_zoo_loads_reproduces_and_resumes() {
    let _guard = seeded();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (d, cfg) = (data(), config());
    let r0 = generate(dir, &d, &cfg, (0, 2));
    let r1 = generate(dir, &d, &cfg, (1, 2));
    assert_eq!((r0.groups_written.clone(), r1.groups_written.clone()), (vec![0, 2], vec![1]));

    // Resume: a finished shard is skipped; a deleted part comes back byte for byte.
    let again = generate(dir, &d, &cfg, (0, 2));
    assert_eq!((again.groups_written.len(), again.groups_skipped), (0, vec![0, 2]));
    let part1 = part_path(dir, 1);
    let bytes = std::fs::read(&part1).unwrap();
    std::fs::remove_file(&part1).unwrap();
    assert_eq!(generate(dir, &d, &cfg, (1, 2)).groups_written, vec![1]);
    assert_eq!(std::fs::read(&part1).unwrap(), bytes, "regenerated part differs");

    let report = merge_parts(dir).unwrap();
    let kept = cfg.networks - report.diverged.len();
    assert_eq!(report.train + report.val + report.test, kept);
    let metrics = read_metrics(dir);
    let rows = metrics["step"].len();
    assert_eq!(rows, report.rows);

    // Hyperparameters are those of (seed, index) wherever they were trained.
    for (r, modeldir) in metrics["modeldir"].iter().enumerate() {
        let index: usize = modeldir.trim_start_matches("net-").parse().unwrap();
        let h = sample_hyper(cfg.seed, index);
        assert_eq!(metrics["config.learning_rate"][r], h.learning_rate.to_string());
        assert_eq!(metrics["config.optimizer"][r], h.optimizer.name());
        assert_eq!(metrics["config.w_init"][r], h.w_init.name());
    }

    // All three splits load; no network is in two; sizes add up.
    let split_file = dir.join(SPLIT_FILE);
    let mut seen = HashSet::new();
    let mut test_zoo = None;
    for split in Split::ALL {
        let zoo = load_cnn_zoo(dir, &split_file, split).unwrap();
        for &row in &zoo.rows {
            assert_eq!(metrics["step"][row as usize], "4");
            assert!(
                seen.insert(metrics["modeldir"][row as usize].clone()),
                "network in two splits"
            );
        }
        if split == Split::Test {
            test_zoo = Some(zoo);
        }
    }
    assert_eq!(seen.len(), kept);

    // evaluate_cnn on the loaded test-split weights reproduces the recorded test accuracies.
    let zoo = test_zoo.unwrap();
    let n_eval = cfg.eval_images.unwrap() as i64;
    let (xs, ys) = (d.test.0.narrow(0, 0, n_eval), d.test.1.narrow(0, 0, n_eval));
    for (name, act) in [("relu", Activation::Relu), ("tanh", Activation::Tanh)] {
        let pick: Vec<i64> = (0..zoo.rows.len() as i64)
            .filter(|&i| metrics["config.activation"][zoo.rows[i as usize] as usize] == name)
            .collect();
        if pick.is_empty() {
            continue;
        }
        let sub = zoo.wsfeat.index_batch(&Tensor::from_slice(&pick));
        let logits = evaluate_cnn(&sub, &xs, act, 2).unwrap(); // [b, p, 10]
        let correct = logits.argmax(-1, false).eq_tensor(&ys.unsqueeze(0)).sum_dim_intlist(
            1,
            false,
            Kind::Int64,
        );
        let correct = Vec::<i64>::try_from(correct).unwrap();
        for (&i, &c) in pick.iter().zip(&correct) {
            let recorded = zoo.targets.double_value(&[i]);
            assert_eq!(
                (recorded * n_eval as f64).round() as i64,
                c,
                "network row {}",
                zoo.rows[i as usize]
            );
        }
    }

    // Training works and the zoo is diverse.
    let finals: Vec<f64> = (0..rows)
        .filter(|&r| metrics["laststep"][r] == "True")
        .map(|r| metrics["test_accuracy"][r].parse().unwrap())
        .collect();
    let best = finals.iter().copied().fold(0.0, f64::max);
    let worst = finals.iter().copied().fold(1.0, f64::min);
    assert!(best > 0.6, "best final test accuracy {best} (chance 0.25)");
    assert!(best - worst > 0.2, "accuracy spread {worst}..{best}");

    // Merging with a part missing names it.
    std::fs::remove_file(part_path(dir, 2)).unwrap();
    let err = merge_parts(dir).unwrap_err();
    assert!(
        matches!(err, Error::File { .. }) && err.to_string().contains("part-000002.bin"),
        "{err}"
    );
}

#[test]
fn diverging_networks_are_left_out_of_the_splits() {
    let _guard = seeded();
    let dir = tempfile::tempdir().unwrap();
    let d = data();
    let mut cfg = ZooGenConfig { networks: 8, epochs: vec![0, 1], ..config() };
    cfg.space.learning_rate = [1e-3, 1e9];
    cfg.space.optimizers = vec![ZooOptimizer::Sgd];
    let report = generate(dir.path(), &d, &cfg, (0, 1));
    let merged = merge_parts(dir.path()).unwrap();
    assert!(report.networks_diverged > 0 && report.networks_diverged < 8, "{report:?}");
    assert_eq!(merged.diverged.len(), report.networks_diverged);
    let kept: usize = Split::ALL
        .iter()
        .map(|&s| load_cnn_zoo(dir.path(), dir.path().join(SPLIT_FILE), s).unwrap().rows.len())
        .sum();
    assert_eq!(kept, 8 - merged.diverged.len());
    // Diverged networks keep their finite initial checkpoint: 8 rows at epoch 0.
    assert_eq!(merged.rows, 8 + kept);
}

#[test]
fn wsfeat_to_tf_inverts_tf_to_wsfeat() {
    let _guard = seeded();
    tch::manual_seed(0);
    let flat = Tensor::randn([5, ZOO_NUM_PARAMS], (Kind::Float, tch::Device::Cpu));
    let path = Path::new("layout.csv");
    // Our layout and one with every bias stored before its kernel.
    let mut swapped: Vec<LayoutEntry> = Vec::new();
    let mut start = 0;
    for pair in zoo_layout().chunks(2) {
        for e in [&pair[1], &pair[0]] {
            let len = e.end - e.start;
            swapped.push(LayoutEntry { start, end: start + len, ..e.clone() });
            start += len;
        }
    }
    for layout in [zoo_layout(), swapped] {
        let wsfeat = tf_to_wsfeat(&flat, &layout, path).unwrap();
        assert!(wsfeat_to_tf(&wsfeat, &layout).unwrap().equal(&flat));
        let spec = nfn_weightspace::NetworkSpec::small_cnn_zoo();
        let random = WeightSpaceFeatures::randn(&spec, 3, 1, (Kind::Float, tch::Device::Cpu));
        let back = tf_to_wsfeat(&wsfeat_to_tf(&random, &layout).unwrap(), &layout, path).unwrap();
        for (a, b) in back.iter().zip(random.iter()) {
            assert!(a.0.equal(b.0) && a.1.equal(b.1));
        }
    }
    let short = &zoo_layout()[..6];
    assert!(matches!(
        wsfeat_to_tf(&tf_to_wsfeat(&flat, &zoo_layout(), path).unwrap(), short),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn bad_configs_and_inputs_are_refused() {
    let _guard = seeded();
    let dir = tempfile::tempdir().unwrap();
    let d = data();
    let cfg = config();
    let run = |cfg: &ZooGenConfig, images: &Tensor, labels: &Tensor, shard| {
        generate_parts(images, labels, &d.test.0, &d.test.1, cfg, dir.path(), shard, &mut |_| {})
    };
    let bad = ZooGenConfig { epochs: vec![0, 2, 1], ..cfg.clone() };
    assert!(matches!(run(&bad, &d.train.0, &d.train.1, None), Err(Error::InvalidArgument(_))));
    let colour = d.train.0.repeat([1, 3, 1, 1]);
    assert!(matches!(run(&cfg, &colour, &d.train.1, None), Err(Error::InvalidArgument(_))));
    let wrong_labels = &d.train.1 + 10;
    assert!(matches!(run(&cfg, &d.train.0, &wrong_labels, None), Err(Error::InvalidArgument(_))));
    assert!(matches!(
        run(&cfg, &d.train.0, &d.train.1, Some((2, 2))),
        Err(Error::InvalidArgument(_))
    ));
    let tiny = d.train.0.narrow(0, 0, 100);
    let tiny_labels = d.train.1.narrow(0, 0, 100);
    assert!(matches!(run(&cfg, &tiny, &tiny_labels, None), Err(Error::InvalidArgument(_))));
    // Nothing generated: merging names the missing manifest.
    let err = merge_parts(dir.path()).unwrap_err();
    assert!(err.to_string().contains("config.json"), "{err}");
}

#[test]
fn parts_of_another_trainer_version_are_not_mixed_in() {
    let _guard = seeded();
    let dir = tempfile::tempdir().unwrap();
    let d = data();
    let cfg =
        ZooGenConfig { networks: 8, epochs: vec![0, 1], steps_per_epoch: Some(2), ..config() };
    generate(dir.path(), &d, &cfg, (0, 1));
    // A manifest written before the version field (trainer 0: LibTorch's dropout draws).
    let path = dir.path().join("parts").join(GEN_MANIFEST);
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    manifest.as_object_mut().unwrap().remove("trainer");
    std::fs::write(&path, manifest.to_string()).unwrap();
    let err = generate_parts(
        &d.train.0,
        &d.train.1,
        &d.test.0,
        &d.test.1,
        &cfg,
        dir.path(),
        None,
        &mut |_| {},
    )
    .unwrap_err();
    assert!(matches!(err, Error::Mismatch { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("config.json") && text.contains("trainer version 0"), "{text}");
}
