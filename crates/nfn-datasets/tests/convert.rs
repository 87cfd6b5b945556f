//! Converting reference SIREN folders (design.md §6.1) into our INR-set format, read back by the
//! unchanged loader: values, labels, image indices and splits end to end, gaps and shards,
//! resuming, and typed errors naming the file for corrupt, wrong-shape and missing inputs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use nfn_datasets::convert::{
    convert_reference_inrs, ConversionPlan, ConvertEvent, ConvertOptions, InrEntry,
    REFERENCE_PTH_FORMAT,
};
use nfn_datasets::inr_set::{InrSetManifest, Split, SplitRanges};
use nfn_datasets::loader::{InrSet, InrSplit};
use nfn_datasets::pth::read_state_dict;
use nfn_datasets::{Error, InrSetOptions, SirenFitConfig};
use nfn_weightspace::{NetworkSpec, Shard};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pth").join(name)
}

fn options(dataset: &str, copies: u32, shard_size: i64) -> ConvertOptions {
    ConvertOptions { copies, shard_size, ..ConvertOptions::reference(dataset).unwrap() }
}

/// Convert, returning (written, skipped) shard counts.
fn convert(root: &Path, out: &Path, opts: &ConvertOptions) -> nfn_datasets::Result<(usize, usize)> {
    let (mut written, mut skipped) = (0, 0);
    convert_reference_inrs(root, out, opts, &mut |e| match e {
        ConvertEvent::Written { .. } => written += 1,
        ConvertEvent::Skipped { .. } => skipped += 1,
    })?;
    Ok((written, skipped))
}

fn ints(t: &tch::Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(t).unwrap()
}

/// The state dict of `path` concatenated in file order (`W0, b0, W1, b1, W2, b2`).
fn pth_params(path: &Path) -> Vec<f32> {
    read_state_dict(path).unwrap().into_iter().flat_map(|(_, t)| t.data).collect()
}

/// Every INR of `split` equals its source file exactly, in our layout: weight `l` of INR `i` is
/// `[1, out, in]` and holds the `.pth` tensor `(out, in)` row-major.
fn assert_matches_files(split: &InrSplit, file_of: &dyn Fn(i64, i64) -> PathBuf) {
    let ws = split.all_features().unwrap();
    let (index, copy) = (ints(&split.image_index), ints(&split.copy));
    for i in 0..split.len() {
        let sd = read_state_dict(file_of(index[i as usize], copy[i as usize])).unwrap();
        for (l, pair) in sd.chunks(2).enumerate() {
            let (w, b) = (&pair[0].1, &pair[1].1);
            let ours_w = ws.weight(l).get(i);
            assert_eq!(ours_w.size(), [&[1][..], &w.shape[..]].concat());
            assert_eq!(Vec::<f32>::try_from(ours_w.flatten(0, -1)).unwrap(), w.data);
            assert_eq!(Vec::<f32>::try_from(ws.bias(l).get(i).flatten(0, -1)).unwrap(), b.data);
        }
        let flat = Vec::<f32>::try_from(split.params.get(i)).unwrap();
        assert_eq!(flat, pth_params(&file_of(index[i as usize], copy[i as usize])));
    }
}

#[test]
fn converts_the_fixture_folder() -> Result<()> {
    let root = fixture("siren_mnist_wts");
    let out = tempfile::tempdir()?;
    // Shard size 1: three shards (base 2 and 5, copy 1 of 5).
    assert_eq!(convert(&root, out.path(), &options("mnist", 1, 1))?, (3, 0));
    let set = InrSet::open(out.path())?;
    let m = &set.manifest;
    assert_eq!((m.counts, m.copies, m.spec.clone()), ([3, 0, 0], 1, NetworkSpec::siren(1)));
    assert_eq!((m.fit.clone(), m.image_shape), (None, [1, 28, 28]));
    let source = m.source.as_ref().unwrap();
    assert_eq!((source.format.as_str(), source.dropped_copies), (REFERENCE_PTH_FORMAT, 0));

    let train = set.load(Split::Train, true)?;
    assert_eq!((ints(&train.image_index), ints(&train.copy)), (vec![2, 5, 5], vec![0, 0, 1]));
    assert_eq!(ints(&train.labels), [7, 3, 3]);
    assert!(Vec::<f32>::try_from(&train.psnr)?.iter().all(|p| p.is_nan()), "no fit PSNR");
    assert_matches_files(&train, &|idx, copy| {
        let folder = match (idx, copy) {
            (2, 0) => "randinit_smaller_7s",
            (5, 0) => "randinit_smaller_3s",
            _ => "randinit_smaller_aug0_3s",
        };
        root.join(folder).join(format!("net{idx}.pth"))
    });
    assert_eq!(set.load(Split::Train, false)?.len(), 2);
    assert!(set.load(Split::Val, false)?.is_empty() && set.load(Split::Test, true)?.is_empty());
    Ok(())
}

/// A reference folder in a temp dir: `(copy, label, idx)` files, copies of the fixture's MNIST
/// SIRENs (alternating the plain and the module state dict).
fn reference_folder(files: &[(u32, i64, i64)]) -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    for (n, &(copy, label, idx)) in files.iter().enumerate() {
        let folder = match copy {
            0 => format!("randinit_smaller_{label}s"),
            k => format!("randinit_smaller_aug{}_{label}s", k - 1),
        };
        std::fs::create_dir_all(dir.path().join(&folder))?;
        let src = ["siren_mnist_wts/randinit_smaller_3s/net5.pth", "strided.pth"][n % 2];
        std::fs::copy(fixture(src), dir.path().join(folder).join(format!("net{idx}.pth")))?;
    }
    Ok(dir)
}

#[test]
fn splits_gaps_shards_and_resume() -> Result<()> {
    // FashionMNIST splits [0,55000) / [55000,60000) / [60000,70000); listed out of order, with gaps.
    let files = [
        (0, 4, 61_234),
        (0, 1, 54_999),
        (0, 2, 7),
        (0, 9, 55_000),
        (0, 0, 3),
        (0, 5, 69_999),
        (0, 6, 60_000),
        (1, 2, 7),
        (1, 0, 3),
        (1, 9, 55_000), // a copy of a validation image: dropped
        (2, 1, 54_999),
    ];
    let root = reference_folder(&files)?;
    let out = tempfile::tempdir()?;
    let opts = options("fashion-mnist", 2, 2);
    // Shards: train c0 {3,7} {54999}, val c0 {55000}, test c0 {60000,61234} {69999},
    // train c1 {3,7}, train c2 {54999}.
    assert_eq!(convert(root.path(), out.path(), &opts)?, (7, 0));
    let set = InrSet::open(out.path())?;
    assert_eq!(set.manifest.counts, [3 + 2 + 1, 1, 3]);
    assert_eq!(set.manifest.source.as_ref().unwrap().dropped_copies, 1);
    let starts: Vec<(Split, u32, i64, i64)> =
        set.manifest.shards.iter().map(|s| (s.split, s.copy, s.start, s.len)).collect();
    assert_eq!(
        starts,
        [
            (Split::Train, 0, 3, 2),
            (Split::Train, 0, 54_999, 1),
            (Split::Val, 0, 55_000, 1),
            (Split::Test, 0, 60_000, 2),
            (Split::Test, 0, 69_999, 1),
            (Split::Train, 1, 3, 2),
            (Split::Train, 2, 54_999, 1),
        ]
    );
    let train = set.load(Split::Train, true)?;
    assert_eq!(ints(&train.image_index), [3, 7, 54_999, 3, 7, 54_999]);
    assert_eq!(ints(&train.copy), [0, 0, 0, 1, 1, 2]);
    assert_eq!(ints(&train.labels), [0, 2, 1, 0, 2, 1]);
    let val = set.load(Split::Val, true)?;
    assert_eq!((ints(&val.image_index), ints(&val.labels)), (vec![55_000], vec![9]));
    let test = set.load(Split::Test, false)?;
    assert_eq!(ints(&test.image_index), [60_000, 61_234, 69_999]);
    assert_eq!(ints(&test.labels), [6, 4, 5]);
    let by_key: HashMap<(i64, i64), PathBuf> = files
        .iter()
        .map(|&(copy, label, idx)| {
            let folder = match copy {
                0 => format!("randinit_smaller_{label}s"),
                k => format!("randinit_smaller_aug{}_{label}s", k - 1),
            };
            ((idx, copy as i64), root.path().join(folder).join(format!("net{idx}.pth")))
        })
        .collect();
    for split in [&train, &val, &test] {
        assert_matches_files(split, &|idx, copy| by_key[&(idx, copy)].clone());
    }

    // Resume: a finished set is skipped; a missing and a corrupt shard are rewritten.
    assert_eq!(convert(root.path(), out.path(), &opts)?, (0, 7));
    let shard = |i: usize| out.path().join(&set.manifest.shards[i].file);
    std::fs::remove_file(shard(1))?;
    let bytes = std::fs::read(shard(4))?;
    std::fs::write(shard(4), &bytes[..bytes.len() - 3])?;
    assert!(set.load(Split::Test, false).is_err());
    assert_eq!(convert(root.path(), out.path(), &opts)?, (2, 5));
    assert_eq!(ints(&set.load(Split::Test, false)?.image_index), [60_000, 61_234, 69_999]);
    assert_eq!(set.load(Split::Train, true)?.params, train.params);

    // A changed source or other options are refused, naming the manifest.
    let err = convert(root.path(), out.path(), &options("fashion-mnist", 2, 3)).unwrap_err();
    assert!(matches!(err, Error::Mismatch { .. }) && err.to_string().contains("manifest"), "{err}");
    std::fs::copy(
        fixture("strided.pth"),
        root.path().join("randinit_smaller_4s").join("net61235.pth"),
    )?;
    let err = convert(root.path(), out.path(), &opts).unwrap_err();
    assert!(matches!(err, Error::Mismatch { .. }), "{err}");
    Ok(())
}

#[test]
fn records_in_any_order_keep_their_values() -> Result<()> {
    // In-memory records: parameters encode (copy, image index), so any mix-up shows.
    let spec = NetworkSpec::siren(1);
    let p = spec.num_params() as usize;
    let value =
        |copy: u32, idx: i64, j: usize| (copy as f32) * 1e5 + idx as f32 + j as f32 / 2048.0;
    let indices = [9_i64, 0, 11, 4, 6, 5, 2];
    let mut entries: Vec<InrEntry> = indices
        .iter()
        .map(|&idx| InrEntry {
            copy: 0,
            image_index: idx,
            label: idx % 10,
            path: PathBuf::from(format!("mem/{idx}")),
        })
        .collect();
    entries.push(InrEntry { copy: 1, image_index: 4, label: 4, path: "mem/c1/4".into() });
    let opts = ConvertOptions {
        dataset: "tiny".into(),
        spec: spec.clone(),
        image_shape: [1, 8, 8],
        splits: SplitRanges { train: [0, 6], val: [6, 10], test: [10, 12] },
        copies: 1,
        shard_size: 2,
    };
    let plan = ConversionPlan::new(entries, &opts, "memory", "test")?;
    assert_eq!(plan.total(), 8);
    let out = tempfile::tempdir()?;
    let read = |e: &InrEntry| Ok((0..p).map(|j| value(e.copy, e.image_index, j)).collect());
    plan.write(out.path(), Shard::ALL, &read, &mut |_| {})?;
    let set = InrSet::open(out.path())?;
    for (split, want) in [(Split::Train, vec![0, 2, 4, 5, 4]), (Split::Val, vec![6, 9])] {
        let loaded = set.load(split, true)?;
        assert_eq!(ints(&loaded.image_index), want);
        assert_eq!(ints(&loaded.labels), want.iter().map(|i| i % 10).collect::<Vec<_>>());
        for (i, (&idx, copy)) in want.iter().zip(ints(&loaded.copy)).enumerate() {
            let row = Vec::<f32>::try_from(loaded.params.get(i as i64))?;
            assert_eq!(row, (0..p).map(|j| value(copy as u32, idx, j)).collect::<Vec<_>>());
        }
    }
    assert_eq!(ints(&set.load(Split::Test, false)?.image_index), [11]);

    // A wrong parameter count from the reader names the INR.
    let short = |_: &InrEntry| Ok(vec![0.0; 3]);
    let err = plan.write(tempfile::tempdir()?.path(), Shard::ALL, &short, &mut |_| {}).unwrap_err();
    assert!(matches!(err, Error::Mismatch { .. }) && err.to_string().contains("mem/"), "{err}");
    // Duplicates and base INRs outside every split are refused, naming the file.
    let dup = vec![
        InrEntry { copy: 0, image_index: 1, label: 1, path: "a/net1.pth".into() },
        InrEntry { copy: 0, image_index: 1, label: 1, path: "b/net1.pth".into() },
    ];
    let err = ConversionPlan::new(dup, &opts, "memory", "test").unwrap_err().to_string();
    assert!(err.contains("net1.pth") && err.contains("twice"), "{err}");
    let outside = vec![InrEntry { copy: 0, image_index: 12, label: 2, path: "net12.pth".into() }];
    let err = ConversionPlan::new(outside, &opts, "memory", "test").unwrap_err().to_string();
    assert!(err.contains("net12.pth") && err.contains("no split"), "{err}");
    Ok(())
}

/// `f`'s error is `kind`, and its message names `name` and says `what`.
fn assert_error(err: Error, kind: fn(&Error) -> bool, name: &str, what: &str) {
    let text = err.to_string();
    assert!(kind(&err) && text.contains(name) && text.contains(what), "{text}");
}

#[test]
fn bad_inputs_give_typed_errors_naming_the_file() -> Result<()> {
    let is_file = |e: &Error| matches!(e, Error::File { .. });
    let is_mismatch = |e: &Error| matches!(e, Error::Mismatch { .. });
    let opts = options("mnist", 0, 4);
    let out = tempfile::tempdir()?;

    // A truncated .pth among good ones.
    let root = reference_folder(&[(0, 1, 10), (0, 2, 20)])?;
    let bytes = std::fs::read(fixture("strided.pth"))?;
    std::fs::write(root.path().join("randinit_smaller_1s/net11.pth"), &bytes[..bytes.len() / 2])?;
    let err = convert(root.path(), out.path(), &opts).unwrap_err();
    assert_error(err, is_file, "net11.pth", "zip");

    // Hidden width 16 against the 32-wide SIREN spec.
    let root = reference_folder(&[(0, 1, 10)])?;
    std::fs::copy(fixture("narrow.pth"), root.path().join("randinit_smaller_1s/net12.pth"))?;
    let err = convert(root.path(), tempfile::tempdir()?.path(), &opts).unwrap_err();
    assert_error(err, is_mismatch, "net12.pth", "[16, 2]");
    // A CIFAR SIREN in an MNIST set.
    let root = reference_folder(&[(0, 1, 10)])?;
    std::fs::copy(fixture("cifar.pth"), root.path().join("randinit_smaller_1s/net13.pth"))?;
    let err = convert(root.path(), tempfile::tempdir()?.path(), &opts).unwrap_err();
    assert_error(err, is_mismatch, "net13.pth", "expected");

    // An empty folder, a missing one, and a copy that is not there.
    let empty = tempfile::tempdir()?;
    std::fs::create_dir(empty.path().join("unrelated"))?;
    let err = convert(empty.path(), out.path(), &opts).unwrap_err();
    let name = empty.path().file_name().unwrap().to_string_lossy().into_owned();
    assert_error(err, is_file, &name, "no reference SIRENs");
    let err = convert(&empty.path().join("absent"), out.path(), &opts).unwrap_err();
    assert_error(err, is_file, "absent", "");
    let err =
        convert(&fixture("siren_mnist_wts"), out.path(), &options("mnist", 2, 4)).unwrap_err();
    assert_error(err, is_file, "siren_mnist_wts", "randinit_smaller_aug1_");
    // Nothing was written for the failed conversions but the first manifest.
    assert!(!out.path().join("train-c00-000010.bin").exists());
    Ok(())
}

#[test]
fn manifests_without_source_still_load() -> Result<()> {
    // A manifest as fit-inrs writes it (and wrote before `source` existed): `fit`, no `source`.
    let options = InrSetOptions {
        dataset: "tiny".into(),
        splits: SplitRanges { train: [0, 4], val: [4, 6], test: [6, 8] },
        copies: 0,
        fit: SirenFitConfig { chunk: 4, ..Default::default() },
    };
    let planned = InrSetManifest::plan(&options, [1, 8, 8])?;
    let json = serde_json::to_value(&planned)?;
    assert!(json.get("source").is_none() && json.get("fit").is_some(), "{json}");
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("manifest.json"), serde_json::to_string(&json)?)?;
    let read = InrSetManifest::read(dir.path())?;
    assert_eq!((read.source.clone(), read.fit.clone()), (None, Some(options.fit)));
    assert_eq!(read, planned);
    Ok(())
}
