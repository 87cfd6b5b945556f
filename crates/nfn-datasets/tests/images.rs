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
