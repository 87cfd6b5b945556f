//! IDX and CIFAR-10 readers on small files the tests write, plus bad-file errors.

use std::path::Path;

use anyhow::Result;
use nfn_datasets::idx::{read_idx, write_idx};
use nfn_datasets::images::{read_cifar10_batch, ImageSet, CIFAR10_BATCHES};

fn write_split(dir: &Path, split: &str, n: usize, first: u8, gzip: bool) -> Result<()> {
    let ext = if gzip { ".gz" } else { "" };
    let pixels: Vec<u8> = (0..n * 4 * 3).map(|i| first.wrapping_add(i as u8)).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    write_idx(dir.join(format!("{split}-images-idx3-ubyte{ext}")), &[n, 4, 3], &pixels, gzip)?;
    write_idx(dir.join(format!("{split}-labels-idx1-ubyte{ext}")), &[n], &labels, gzip)?;
    Ok(())
}

#[test]
fn idx_dir_loads_train_then_test_scaled() -> Result<()> {
    let dir = tempfile::tempdir()?;
    write_split(dir.path(), "train", 5, 0, true)?;
    write_split(dir.path(), "t10k", 2, 255, false)?;
    let set = ImageSet::fashion_mnist(dir.path())?;
    assert_eq!(set.images.size(), vec![7, 1, 4, 3]);
    assert_eq!((set.len(), set.n_train, set.image_shape()), (7, 5, [1, 4, 3]));
    assert_eq!(Vec::<i64>::try_from(&set.labels)?, vec![0, 1, 2, 3, 4, 0, 1]);
    // pixel 0 -> -1, pixel 255 -> +1 (the first test image starts at 255).
    assert!((set.images.double_value(&[0, 0, 0, 0]) + 1.0).abs() < 1e-6);
    assert!((set.images.double_value(&[5, 0, 0, 0]) - 1.0).abs() < 1e-6);
    assert!((set.images.double_value(&[0, 0, 0, 1]) - (1.0 / 127.5 - 1.0)).abs() < 1e-6);
    Ok(())
}

#[test]
fn truncated_and_garbage_idx_files_name_the_file() -> Result<()> {
    let dir = tempfile::tempdir()?;
    write_split(dir.path(), "train", 5, 0, false)?;
    write_split(dir.path(), "t10k", 2, 0, false)?;
    let images = dir.path().join("train-images-idx3-ubyte");
    let bytes = std::fs::read(&images)?;
    std::fs::write(&images, &bytes[..bytes.len() - 3])?;
    let err = ImageSet::mnist(dir.path()).expect_err("truncated").to_string();
    assert!(err.contains("train-images-idx3-ubyte") && err.contains("truncated"), "{err}");
    std::fs::write(&images, b"garbage, not an idx file")?;
    let err = ImageSet::mnist(dir.path()).expect_err("garbage").to_string();
    assert!(err.contains("train-images-idx3-ubyte"), "{err}");
    // A broken gzip stream.
    let gz = dir.path().join("x.gz");
    std::fs::write(&gz, [0x1f, 0x8b, 8, 0, 1, 2, 3])?;
    let err = read_idx(&gz).expect_err("broken gzip").to_string();
    assert!(err.contains("x.gz") && err.contains("gzip"), "{err}");
    // A gzip bomb: 128 MiB of zeros in ~130 kB is refused, not inflated.
    let bomb = dir.path().join("bomb.gz");
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&bomb)?, Default::default());
    for _ in 0..128 {
        std::io::Write::write_all(&mut gz, &[0u8; 1 << 20])?;
    }
    gz.finish()?;
    let err = read_idx(&bomb).expect_err("gzip bomb").to_string();
    assert!(err.contains("bomb.gz") && err.contains("gzip bomb"), "{err}");
    // Label count differs from image count.
    write_split(dir.path(), "train", 5, 0, false)?;
    write_idx(dir.path().join("train-labels-idx1-ubyte"), &[4], &[0, 1, 2, 3], false)?;
    let err = ImageSet::mnist(dir.path()).expect_err("count mismatch").to_string();
    assert!(err.contains("train-labels-idx1-ubyte"), "{err}");
    Ok(())
}

#[test]
fn missing_folder_names_the_file() {
    let err = ImageSet::fashion_mnist("/nonexistent/fmnist").expect_err("missing").to_string();
    assert!(err.contains("/nonexistent/fmnist/train-images-idx3-ubyte"), "{err}");
}

#[test]
fn cifar10_batches_load_in_order() -> Result<()> {
    let dir = tempfile::tempdir()?;
    for (b, name) in CIFAR10_BATCHES.iter().enumerate() {
        let mut bytes = Vec::new();
        for r in 0..2u8 {
            bytes.push((b as u8 + r) % 10);
            bytes.extend((0..3072).map(|i| if i < 1024 { b as u8 * 40 } else { (i % 256) as u8 }));
        }
        std::fs::write(dir.path().join(name), bytes)?;
    }
    let set = ImageSet::cifar10(dir.path())?;
    assert_eq!(set.images.size(), vec![12, 3, 32, 32]);
    assert_eq!(set.n_train, 10);
    assert_eq!(Vec::<i64>::try_from(&set.labels)?, vec![0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6]);
    // Red plane of batch 5 (test_batch) is 200 -> 200/127.5 - 1.
    assert!((set.images.double_value(&[10, 0, 5, 5]) - (200.0 / 127.5 - 1.0)).abs() < 1e-6);
    // Green plane pixel (0, 0) is byte 1024 % 256 = 0 -> -1.
    assert!((set.images.double_value(&[0, 1, 0, 0]) + 1.0).abs() < 1e-6);

    let bad = dir.path().join("test_batch.bin");
    std::fs::write(&bad, vec![0u8; 3072])?;
    let err = read_cifar10_batch(&bad).expect_err("truncated").to_string();
    assert!(err.contains("test_batch.bin") && err.contains("truncated"), "{err}");
    std::fs::write(&bad, [vec![11u8], vec![0u8; 3072]].concat())?;
    assert!(read_cifar10_batch(&bad).expect_err("label 11").to_string().contains("label 11"));
    Ok(())
}

#[test]
#[ignore = "slow: reads the installed FashionMNIST (70 000 images)"]
fn installed_fashion_mnist() -> Result<()> {
    let set = ImageSet::fashion_mnist(nfn_datasets::DEFAULT_FASHION_MNIST_DIR)?;
    assert_eq!(set.images.size(), vec![70000, 1, 28, 28]);
    assert_eq!(set.n_train, 60000);
    Ok(())
}

/// SVHN's `.mat` layout through our writer and reader, compressed and not: train then test,
/// MATLAB's column-major pixels in our `[n, 3, 32, 32]` order, digit 0 stored as 10; and bad files
/// named in their errors.
#[test]
fn svhn_mat_files_round_trip_and_bad_ones_name_the_file() -> Result<()> {
    use nfn_datasets::images::{read_svhn_mat, write_svhn_mat, SVHN_FILES};
    let dir = tempfile::tempdir()?;
    let image =
        |i: usize| -> Vec<u8> { (0..3072).map(|p| ((p * 7 + i * 31) % 251) as u8).collect() };
    let (train, test): (Vec<usize>, Vec<usize>) = ((0..3).collect(), (3..5).collect());
    let pixels = |ids: &[usize]| ids.iter().flat_map(|&i| image(i)).collect::<Vec<u8>>();
    for compress in [false, true] {
        write_svhn_mat(dir.path().join(SVHN_FILES[0]), &pixels(&train), &[0, 1, 9], compress)?;
        write_svhn_mat(dir.path().join(SVHN_FILES[1]), &pixels(&test), &[5, 0], compress)?;
        let (px, labels) = read_svhn_mat(dir.path().join(SVHN_FILES[0]))?;
        assert_eq!((px, labels), (pixels(&train), vec![0, 1, 9]));
        let set = ImageSet::svhn(dir.path())?;
        assert_eq!(set.images.size(), vec![5, 3, 32, 32]);
        assert_eq!((set.n_train, Vec::<i64>::try_from(&set.labels)?), (3, vec![0, 1, 9, 5, 0]));
        // image 4, channel 2, row 5, column 7, scaled to [-1, 1]
        let want = image(4)[(2 * 32 + 5) * 32 + 7] as f64 / 127.5 - 1.0;
        assert!((set.images.double_value(&[4, 2, 5, 7]) - want).abs() < 1e-6);
    }
    // the column-major layout itself: X(h, w, c, i) sits at h + 32 (w + 32 (c + 3 i)) in the file
    let raw = std::fs::read(dir.path().join(SVHN_FILES[1]))?;
    assert!(raw.starts_with(b"MATLAB 5.0 MAT-file") && &raw[126..128] == b"IM");
    // bad files
    let bad = dir.path().join("bad.mat");
    let err = read_svhn_mat(dir.path().join("missing.mat")).unwrap_err().to_string();
    assert!(err.contains("missing.mat"), "{err}");
    std::fs::write(&bad, b"not a mat file at all")?;
    let err = read_svhn_mat(&bad).unwrap_err().to_string();
    assert!(err.contains("bad.mat") && err.contains("MATLAB"), "{err}");
    let whole = std::fs::read(dir.path().join(SVHN_FILES[0]))?;
    std::fs::write(&bad, &whole[..whole.len() - 100])?;
    let err = read_svhn_mat(&bad).unwrap_err().to_string();
    assert!(err.contains("bad.mat"), "{err}");
    assert!(write_svhn_mat(&bad, &[0; 3072], &[10], false).is_err(), "label 10 is not a digit");
    Ok(())
}

/// Files SciPy wrote (`tests/fixtures/svhn/gen.py`): our reader agrees with MATLAB's own layout,
/// not only with our writer.
#[test]
fn svhn_reader_matches_scipy_written_files() -> Result<()> {
    use nfn_datasets::images::read_svhn_mat;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/svhn");
    for name in ["compressed.mat", "plain.mat"] {
        let (pixels, labels) = read_svhn_mat(dir.join(name))?;
        assert_eq!(labels, vec![0, 3], "{name}");
        for (i, c, h, w) in [(0, 0, 0, 0), (1, 2, 31, 0), (0, 1, 3, 17), (1, 0, 30, 31)] {
            let want = ((h + 2 * w + 5 * c + 7 * i) % 256) as u8;
            assert_eq!(pixels[((i * 3 + c) * 32 + h) * 32 + w], want, "{name} {i} {c} {h} {w}");
        }
    }
    Ok(())
}
