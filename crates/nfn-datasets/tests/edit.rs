//! INR-editing targets: every style against OpenCV's own output (fixtures written by
//! `tests/fixtures/edit/gen.py`), exactly on uint8; the Lab conversion on every 8-bit triple; the
//! target cache beside an INR set (round trip, resume, copies) and its errors.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nfn_datasets::edit::{bgr_to_lab, image_bytes, lab_to_bgr, scale_bytes};
use nfn_datasets::inr_set::{write_inr_set, InrSetOptions, Split, SplitRanges};
use nfn_datasets::siren_fit::SirenFitConfig;
use nfn_datasets::{edit_image, edit_images, edit_targets, EditStyle, EditTargets};
use nfn_datasets::{Error, ImageSet, InrSet};
use tch::Tensor;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/edit").join(format!("{name}.npy"))
}

/// A fixture `[n, c, h, w]` uint8 as (bytes, image shape, n).
fn read_fixture(name: &str) -> Result<(Vec<u8>, [i64; 3], usize)> {
    let path = fixture(name);
    let array: ndarray::Array4<u8> =
        ndarray_npy::read_npy(&path).with_context(|| format!("reading {path:?}"))?;
    let s = array.shape().to_vec();
    let bytes = array.as_standard_layout().iter().copied().collect();
    Ok((bytes, [s[1] as i64, s[2] as i64, s[3] as i64], s[0]))
}

/// Edit every image of fixture `<set>_input` and compare with `<set>_<style>`, byte for byte.
fn assert_matches_opencv(set: &str, style: EditStyle) -> Result<()> {
    let (input, shape, n) = read_fixture(&format!("{set}_input"))?;
    let (want, want_shape, _) = read_fixture(&format!("{set}_{}", style.name()))?;
    assert_eq!(shape, want_shape);
    let numel = input.len() / n;
    for (i, (img, expected)) in input.chunks(numel).zip(want.chunks(numel)).enumerate() {
        let got = edit_image(img, shape, style)?;
        if let Some(p) = (0..numel).find(|&p| got[p] != expected[p]) {
            let [_, h, w] = shape.map(|d| d as usize);
            let (c, y, x) = (p / (h * w), p / w % h, p % w);
            panic!(
                "{set} {} image {i}: pixel (c {c}, y {y}, x {x}) is {} but OpenCV gives {}",
                style.name(),
                got[p],
                expected[p]
            );
        }
    }
    // The parallel batch path gives the same bytes.
    assert_eq!(edit_images(&input, shape, style)?, want, "{set} {} batch", style.name());
    Ok(())
}

#[test]
fn morphology_matches_opencv_on_every_fixture() -> Result<()> {
    for set in ["mnist", "fashion", "cifar"] {
        for style in [EditStyle::Dilate, EditStyle::Erode, EditStyle::Gradient] {
            assert_matches_opencv(set, style)?;
        }
    }
    Ok(())
}

#[test]
fn contrast_matches_opencv_on_every_fixture() -> Result<()> {
    assert_matches_opencv("cifar", EditStyle::Contrast)?;
    // Sizes the 3 x 3 tiles do not divide, so CLAHE pads (one axis or both).
    for size in ["28x28", "30x32", "33x31"] {
        assert_matches_opencv(&format!("sizes_{size}"), EditStyle::Contrast)?;
    }
    Ok(())
}

#[test]
fn anchor_is_the_kernel_centre_and_the_border_is_ignored() -> Result<()> {
    // A lone bright pixel at (1, 1) of a 4 x 4 image, and one in the last corner.
    let mut img = vec![0u8; 16];
    img[5] = 200;
    img[15] = 90;
    let at = |v: &[u8], y: usize, x: usize| v[y * 4 + x];
    // 3 x 3 dilation: the 3 x 3 block around (1, 1), clipped at the border without wrapping.
    let d = edit_image(&img, [1, 4, 4], EditStyle::Dilate)?;
    assert!((0..3).all(|y| (0..3).all(|x| at(&d, y, x) == 200)));
    assert_eq!((at(&d, 3, 3), at(&d, 2, 3), at(&d, 3, 0)), (90, 90, 0));
    // 2 x 2 with anchor (1, 1) covers offsets {-1, 0}: output p = max / min over p - {0, 1}^2, so
    // the lone pixel's gradient is the block (1..=2, 1..=2), down and right of it.
    let g = edit_image(&img, [1, 4, 4], EditStyle::Gradient)?;
    let block: Vec<_> = (0..4).flat_map(|y| (0..4).map(move |x| (y, x))).collect();
    for (y, x) in block {
        let want = match (y, x) {
            (1..=2, 1..=2) => 200,
            (3, 3) => 90,
            _ => 0,
        };
        assert_eq!(at(&g, y, x), want, "gradient at ({y}, {x})");
    }
    // Erosion ignores the outside (a constant that never wins): a white image stays white.
    assert_eq!(edit_image(&[255; 16], [1, 4, 4], EditStyle::Erode)?, vec![255; 16]);
    let mut dark = vec![255u8; 16];
    dark[0] = 7;
    let e = edit_image(&dark, [1, 4, 4], EditStyle::Erode)?;
    assert_eq!(
        (at(&e, 0, 0), at(&e, 0, 1), at(&e, 1, 0), at(&e, 1, 1), at(&e, 2, 2)),
        (7, 7, 7, 7, 255)
    );
    Ok(())
}

/// CRC-32 of a conversion applied to every triple `(i >> 16, (i >> 8) & 255, i & 255)`.
fn crc_of_all_triples(convert: fn([u8; 3]) -> [u8; 3]) -> u32 {
    let mut crc = flate2::Crc::new();
    let mut buf = Vec::with_capacity(3 << 16);
    for hi in 0..=255u8 {
        buf.clear();
        for i in 0..=u16::MAX {
            buf.extend(convert([hi, (i >> 8) as u8, i as u8]));
        }
        crc.update(&buf);
    }
    crc.sum()
}

#[test]
fn lab_conversion_matches_opencv_on_every_triple() -> Result<()> {
    let path = fixture("lab_crc32").with_extension("json");
    let want: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    assert_eq!(Some(crc_of_all_triples(bgr_to_lab) as u64), want["bgr2lab"].as_u64(), "BGR2LAB");
    assert_eq!(Some(crc_of_all_triples(lab_to_bgr) as u64), want["lab2bgr"].as_u64(), "LAB2BGR");
    Ok(())
}

#[test]
fn bad_images_are_refused() {
    let err = edit_image(&[0; 10], [1, 4, 4], EditStyle::Dilate).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    let err = edit_image(&[0; 16], [1, 4, 4], EditStyle::Contrast).unwrap_err();
    assert!(err.to_string().contains("3-channel"), "{err}");
    let err = edit_images(&[0; 20], [1, 4, 4], EditStyle::Erode).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
}

/// `n` images `[c, 8, 8]` with a seeded pattern and labels `i % 10`.
fn pattern_images(n: i64, c: i64, seed: u64) -> Result<ImageSet> {
    let numel = (n * c * 64) as u64;
    let pixels: Vec<u8> = (0..numel).map(|i| ((i * 37 + seed * 101) % 251) as u8).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    Ok(ImageSet::from_bytes(&pixels, &labels, [n, c, 8, 8], n)?)
}

#[test]
fn scaling_is_undone_exactly_and_redone_as_image_sets_do() -> Result<()> {
    let all: Vec<u8> = (0..=255).collect();
    let set = ImageSet::from_bytes(&all, &[0], [1, 1, 16, 16], 1)?;
    assert_eq!(image_bytes(&set, &[0])?, all);
    assert!(scale_bytes(&all, [1, 16, 16])?.equal(&set.images));
    let set = pattern_images(5, 3, 1)?;
    let targets = edit_targets(&set, &[4, 0], EditStyle::Contrast)?;
    assert_eq!(targets.size(), [2, 3, 8, 8]);
    let want = edit_images(&image_bytes(&set, &[4, 0])?, [3, 8, 8], EditStyle::Contrast)?;
    assert!(targets.equal(&scale_bytes(&want, [3, 8, 8])?));
    assert!(targets.min().double_value(&[]) >= -1.0 && targets.max().double_value(&[]) <= 1.0);
    Ok(())
}

/// A tiny fitted INR set (2 Adam steps): train 6 images in 2 shards plus 1 copy, val 3, test 3.
fn inr_set(dir: &Path, images: &ImageSet) -> Result<InrSet> {
    let options = InrSetOptions {
        dataset: "tiny".into(),
        splits: SplitRanges { train: [0, 6], val: [6, 9], test: [9, 12] },
        copies: 1,
        fit: SirenFitConfig { steps: 2, chunk: 4, target_psnr: None, ..Default::default() },
    };
    write_inr_set(dir, images, &options, &mut |_| {})?;
    Ok(InrSet::open(dir)?)
}

fn modified(path: &Path) -> Result<std::time::SystemTime> {
    Ok(std::fs::metadata(path)?.modified()?)
}

#[test]
fn cache_round_trips_resumes_and_serves_copies() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let images = pattern_images(12, 1, 0)?;
    let set = inr_set(dir.path(), &images)?;
    let style = EditStyle::Gradient;
    let built = EditTargets::build_or_load(&set, &images, style)?;
    assert_eq!(built.dir(), dir.path().join("targets-gradient"));
    for split in Split::ALL {
        let inrs = set.load(split, false)?;
        let index = Vec::<i64>::try_from(&inrs.image_index)?;
        assert_eq!(built.image_index(split), index);
        let targets = built.targets(split)?;
        assert!(targets.equal(&edit_targets(&images, &index, style)?), "{}", split.name());
    }

    // Loading again reads the files; deleting one rebuilds it alone, byte for byte.
    let files: Vec<PathBuf> = Split::ALL.iter().map(|&s| built.path(s).to_path_buf()).collect();
    let before: Vec<Vec<u8>> = files.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    let train_time = modified(&files[0])?;
    std::fs::remove_file(&files[1])?;
    let again = EditTargets::build_or_load(&set, &images, style)?;
    let after: Vec<Vec<u8>> = files.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    assert_eq!(before, after);
    assert_eq!(modified(&files[0])?, train_time, "the train file is not rewritten");
    for split in Split::ALL {
        assert_eq!(again.bytes(split), built.bytes(split));
    }

    // With copies, a copy's target is its image's target.
    let train = set.load(Split::Train, true)?;
    let with_copies = again.targets_for(Split::Train, &train.image_index)?;
    assert_eq!(with_copies.size(), [12, 1, 8, 8]);
    assert!(with_copies.narrow(0, 6, 6).equal(&again.targets(Split::Train)?));
    let err = again.targets_for(Split::Val, &Tensor::from_slice(&[0i64])).unwrap_err();
    assert!(matches!(&err, Error::Mismatch { path, .. } if path == &files[1]), "{err}");
    Ok(())
}

#[test]
fn bad_caches_and_images_give_errors_naming_the_file() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let images = pattern_images(12, 1, 0)?;
    let set = inr_set(dir.path(), &images)?;

    // Images of another shape than the INR set's.
    let err = EditTargets::build_or_load(&set, &images_of_shape(12, 1, 4)?, EditStyle::Dilate)
        .unwrap_err();
    assert!(
        matches!(&err, Error::Mismatch { path, .. } if path.ends_with("manifest.json")),
        "{err}"
    );
    // A contrast edit of grey-scale images.
    let err = EditTargets::build_or_load(&set, &images, EditStyle::Contrast).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");

    // A truncated cache file.
    let targets = EditTargets::build_or_load(&set, &images, EditStyle::Dilate)?;
    let train = targets.path(Split::Train).to_path_buf();
    let bytes = std::fs::read(&train)?;
    std::fs::write(&train, &bytes[..bytes.len() - 10])?;
    let err = EditTargets::build_or_load(&set, &images, EditStyle::Dilate).unwrap_err();
    assert!(matches!(&err, Error::File { path, .. } if path == &train), "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");

    // A cache made from other images of the same shape.
    std::fs::write(&train, &bytes)?;
    let err = EditTargets::build_or_load(&set, &pattern_images(12, 1, 5)?, EditStyle::Dilate)
        .unwrap_err();
    assert!(matches!(&err, Error::Mismatch { path, .. } if path == &train), "{err}");
    assert!(err.to_string().contains("other images"), "{err}");
    Ok(())
}

fn images_of_shape(n: i64, c: i64, side: i64) -> Result<ImageSet> {
    let pixels = vec![0u8; (n * c * side * side) as usize];
    Ok(ImageSet::from_bytes(&pixels, &vec![0; n as usize], [n, c, side, side], n)?)
}
