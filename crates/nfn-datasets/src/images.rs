//! Image sets as tensors in `[-1, 1]`: MNIST / FashionMNIST (IDX) and CIFAR-10 (binary batches).
//!
//! Index order follows the reference INR data sets (design.md §6.1): the training split first, then
//! the test split, so index `i` of an [`ImageSet`] is the image behind the reference's `net{i}.pth`.

use std::path::{Path, PathBuf};

use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::idx::{read_idx_rank, read_maybe_gz};
use crate::mat::MatData;

/// Where Debian's `dataset-fashion-mnist` package installs FashionMNIST.
pub const DEFAULT_FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// CIFAR-10 binary batch files (`cifar-10-batches-bin`), in index order.
pub const CIFAR10_BATCHES: [&str; 6] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
    "test_batch.bin",
];

/// Bytes per CIFAR-10 record: one label byte, then 3 x 32 x 32 pixels (R, G, B planes, row-major).
const CIFAR_RECORD: usize = 1 + 3 * 32 * 32;

/// A labelled image set held in memory.
#[derive(Debug)]
pub struct ImageSet {
    /// Images `[n, c, h, w]`, f32, `(pixel / 255 - 0.5) / 0.5` in `[-1, 1]`.
    pub images: Tensor,
    /// Class labels `[n]`, i64.
    pub labels: Tensor,
    /// How many leading images come from the source's training split (the rest are its test split).
    pub n_train: i64,
}

impl ImageSet {
    /// An image set from raw bytes `pixels` (`[n, c, h, w]` row-major) and labels.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the sizes disagree.
    pub fn from_bytes(pixels: &[u8], labels: &[u8], shape: [i64; 4], n_train: i64) -> Result<Self> {
        let numel: i64 = shape.iter().product();
        if shape.iter().any(|&d| d <= 0)
            || numel as usize != pixels.len()
            || shape[0] as usize != labels.len()
        {
            return Err(Error::InvalidArgument(format!(
                "image shape {shape:?} does not match {} pixel bytes and {} labels",
                pixels.len(),
                labels.len()
            )));
        }
        let images = Tensor::f_from_slice(pixels)?.f_reshape(shape)?.f_to_kind(Kind::Float)?;
        // (x / 255 - 0.5) / 0.5, written as the reference computes it.
        let images = ((images / 255.0) - 0.5) / 0.5;
        let labels = Tensor::f_from_slice(labels)?.f_to_kind(Kind::Int64)?;
        Ok(ImageSet { images, labels, n_train })
    }

    /// FashionMNIST from `dir` (see [`ImageSet::idx_dir`]); 70 000 images, train then test.
    ///
    /// # Errors
    /// As [`ImageSet::idx_dir`].
    pub fn fashion_mnist(dir: impl AsRef<Path>) -> Result<Self> {
        Self::idx_dir(dir)
    }

    /// MNIST from `dir` (the same file layout as FashionMNIST).
    ///
    /// # Errors
    /// As [`ImageSet::idx_dir`].
    pub fn mnist(dir: impl AsRef<Path>) -> Result<Self> {
        Self::idx_dir(dir)
    }

    /// An MNIST-layout folder: `{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`, loaded as the
    /// training split followed by the test split.
    ///
    /// # Errors
    /// [`Error::File`] naming the file that is missing, truncated or malformed;
    /// [`Error::Mismatch`] if image and label counts or the two splits' image sizes differ.
    pub fn idx_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let (train_px, train_lb, train_dims) = read_idx_split(dir, "train")?;
        let (test_px, test_lb, test_dims) = read_idx_split(dir, "t10k")?;
        if train_dims[1..] != test_dims[1..] {
            return Err(Error::mismatch(
                dir,
                format!("train images are {train_dims:?} but test images are {test_dims:?}"),
            ));
        }
        let n = (train_dims[0] + test_dims[0]) as i64;
        let shape = [n, 1, train_dims[1] as i64, train_dims[2] as i64];
        Self::from_bytes(
            &[train_px, test_px].concat(),
            &[train_lb, test_lb].concat(),
            shape,
            train_dims[0] as i64,
        )
    }

    /// CIFAR-10 from a `cifar-10-batches-bin` folder: `data_batch_1..5.bin` then `test_batch.bin`
    /// (60 000 images `[3, 32, 32]`).
    ///
    /// # Errors
    /// As [`read_cifar10_batch`].
    pub fn cifar10(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let mut pixels = Vec::new();
        let mut labels = Vec::new();
        let mut n_train = 0;
        for (i, name) in CIFAR10_BATCHES.iter().enumerate() {
            let (px, lb) = read_cifar10_batch(dir.join(name))?;
            if i < 5 {
                n_train += lb.len() as i64;
            }
            pixels.extend(px);
            labels.extend(lb);
        }
        Self::from_bytes(&pixels, &labels, [labels.len() as i64, 3, 32, 32], n_train)
    }

    /// SVHN's cropped digits (format 2) from `dir`: `train_32x32.mat` then `test_32x32.mat`
    /// (73 257 + 26 032 images `[3, 32, 32]`; digit 0 is stored as label 10 and read as 0).
    ///
    /// # Errors
    /// As [`read_svhn_mat`].
    pub fn svhn(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let (mut pixels, mut labels) = read_svhn_mat(dir.join(SVHN_FILES[0]))?;
        let n_train = labels.len() as i64;
        let (px, lb) = read_svhn_mat(dir.join(SVHN_FILES[1]))?;
        pixels.extend(px);
        labels.extend(lb);
        Self::from_bytes(&pixels, &labels, [labels.len() as i64, 3, 32, 32], n_train)
    }

    /// Number of images.
    pub fn len(&self) -> i64 {
        self.labels.size()[0]
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One image's shape `[c, h, w]`.
    pub fn image_shape(&self) -> [i64; 3] {
        let s = self.images.size();
        [s[1], s[2], s[3]]
    }

    /// Images and labels at `indices` (a new set with `n_train = 0`).
    ///
    /// # Errors
    /// [`Error::Tch`] for an index out of range.
    pub fn select(&self, indices: &[i64]) -> Result<ImageSet> {
        let idx = Tensor::from_slice(indices);
        Ok(ImageSet {
            images: self.images.f_index_select(0, &idx)?,
            labels: self.labels.f_index_select(0, &idx)?,
            n_train: 0,
        })
    }
}

/// The path of `stem` in `dir`, preferring `stem.gz`.
fn idx_path(dir: &Path, stem: &str) -> PathBuf {
    let gz = dir.join(format!("{stem}.gz"));
    if gz.exists() {
        gz
    } else {
        dir.join(stem)
    }
}

/// One split's pixels, labels and image dims `[n, h, w]`.
fn read_idx_split(dir: &Path, split: &str) -> Result<(Vec<u8>, Vec<u8>, Vec<usize>)> {
    let images_path = idx_path(dir, &format!("{split}-images-idx3-ubyte"));
    let labels_path = idx_path(dir, &format!("{split}-labels-idx1-ubyte"));
    let images = read_idx_rank(&images_path, 3)?;
    let labels = read_idx_rank(&labels_path, 1)?;
    if images.dims[0] != labels.dims[0] {
        return Err(Error::mismatch(
            &labels_path,
            format!(
                "{} labels for {} images in {}",
                labels.dims[0],
                images.dims[0],
                images_path.display()
            ),
        ));
    }
    Ok((images.data, labels.data, images.dims))
}

/// The SVHN files [`ImageSet::svhn`] reads, train then test.
pub const SVHN_FILES: [&str; 2] = ["train_32x32.mat", "test_32x32.mat"];

/// Read one SVHN `.mat` file (MATLAB v5, compressed or not, through [`crate::mat`]): `(pixels, labels)`, pixels
/// `[n, 3, 32, 32]` row-major. The file holds `X`, uint8 `32 x 32 x 3 x n` in MATLAB's
/// column-major order (row, column, channel, image), and `y`, `n x 1` labels 1..10 (10 is digit 0).
///
/// # Errors
/// [`Error::File`] naming the file if it is missing, not a MATLAB v5 file, lacks `X` or `y`, has
/// other shapes or types, or holds a label outside 1..10.
pub fn read_svhn_mat(path: impl AsRef<Path>) -> Result<(Vec<u8>, Vec<u8>)> {
    let path = path.as_ref();
    let bad = |m: String| Error::file(path, m);
    let arrays = crate::mat::read_mat(path)?;
    let find = |name: &str| arrays.iter().find(|a| a.name == name);
    let x = find("X").ok_or_else(|| bad("no array X (the images)".into()))?;
    let y = find("y").ok_or_else(|| bad("no array y (the labels)".into()))?;
    let MatData::U8(px) = &x.data else {
        return Err(bad(format!("X is stored as class {}, expected uint8 images", x.class)));
    };
    let n = match x.dims.as_slice() {
        [32, 32, 3, n] => *n,
        [32, 32, 3] => 1,
        other => return Err(bad(format!("X is {other:?}, expected [32, 32, 3, n]"))),
    };
    if px.len() != n * 3072 {
        return Err(bad(format!("X holds {} bytes, expected {}", px.len(), n * 3072)));
    }
    let raw: Vec<f64> = match &y.data {
        MatData::F64(v) => v.clone(),
        MatData::U8(v) => v.iter().map(|&l| f64::from(l)).collect(),
    };
    if raw.len() != n {
        return Err(bad(format!("y holds {} labels for {n} images", raw.len())));
    }
    let labels = raw
        .iter()
        .enumerate()
        .map(|(i, &v)| match v {
            v if v == v.round() && (1.0..=10.0).contains(&v) => Ok((v as u8) % 10),
            v => Err(bad(format!("label {v} of image {i} is not in 1..10"))),
        })
        .collect::<Result<Vec<u8>>>()?;
    let mut pixels = vec![0u8; px.len()];
    for (row_major, col_major) in svhn_layout(n) {
        pixels[row_major] = px[col_major];
    }
    Ok((pixels, labels))
}

/// For every pixel of `n` SVHN images: its offset in our row-major `[i, c, h, w]` layout and in the
/// file's column-major `32 x 32 x 3 x n` (row h, column w, channel c, image i).
fn svhn_layout(n: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n).flat_map(|i| {
        (0..3).flat_map(move |c| {
            (0..32).flat_map(move |h| {
                (0..32).map(move |w| {
                    (((i * 3 + c) * 32 + h) * 32 + w, h + 32 * (w + 32 * (c + 3 * i)))
                })
            })
        })
    })
}

/// Write `pixels` (`[n, 3, 32, 32]` row-major) and `labels` (0..9) as an SVHN `.mat` file (MATLAB
/// v5, the layout [`read_svhn_mat`] reads: `X` uint8 `32 x 32 x 3 x n` column-major, `y` double
/// `n x 1` with digit 0 as 10), each array zlib-compressed when `compress` (as the published files
/// are). For tests and for making small SVHN-format sets; written atomically.
///
/// # Errors
/// [`Error::InvalidArgument`] if the sizes disagree; [`Error::WeightSpace`] naming the file if it
/// cannot be written.
pub fn write_svhn_mat(
    path: impl AsRef<Path>,
    pixels: &[u8],
    labels: &[u8],
    compress: bool,
) -> Result<()> {
    let n = labels.len();
    if pixels.len() != n * 3072 || labels.iter().any(|&l| l > 9) {
        return Err(Error::InvalidArgument(format!(
            "{} pixel bytes and {n} labels (0..9) are not [n, 3, 32, 32] images",
            pixels.len()
        )));
    }
    let mut x = vec![0u8; pixels.len()];
    for (row_major, col_major) in svhn_layout(n) {
        x[col_major] = pixels[row_major];
    }
    let y: Vec<u8> =
        labels.iter().flat_map(|&l| f64::from(if l == 0 { 10 } else { l }).to_le_bytes()).collect();
    // mxUINT8_CLASS 9 with miUINT8 2, mxDOUBLE_CLASS 6 with miDOUBLE 9
    let arrays = [
        mat_matrix("X", 9, &[32, 32, 3, n as i32], 2, &x),
        mat_matrix("y", 6, &[n as i32, 1], 9, &y),
    ];
    let mut header =
        format!("MATLAB 5.0 MAT-file, written by nfn-rs, {n} SVHN-format images").into_bytes();
    header.resize(116, b' ');
    header.extend([0u8; 8]); // no subsystem data
    header.extend(0x0100u16.to_le_bytes()); // version
    header.extend(b"IM"); // little-endian
    nfn_weightspace::io::write_atomically(path.as_ref(), |out| {
        use std::io::Write as _;
        let e = |e: std::io::Error| e.to_string();
        out.write_all(&header).map_err(e)?;
        for array in &arrays {
            if compress {
                let mut z =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                z.write_all(array).map_err(e)?;
                let z = z.finish().map_err(e)?;
                out.write_all(&15u32.to_le_bytes()).map_err(e)?; // miCOMPRESSED
                out.write_all(&(z.len() as u32).to_le_bytes()).map_err(e)?;
                out.write_all(&z).map_err(e)?;
            } else {
                out.write_all(array).map_err(e)?;
            }
        }
        Ok(())
    })?;
    Ok(())
}

/// One MATLAB v5 data element: tag (type, byte count), data, padding to 8 bytes.
fn mat_element(data_type: u32, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend(data_type.to_le_bytes());
    out.extend((data.len() as u32).to_le_bytes());
    out.extend(data);
    out.resize(out.len().next_multiple_of(8), 0);
    out
}

/// A real numeric `miMATRIX` element: array flags (class), dimensions, name, real part.
fn mat_matrix(name: &str, class: u32, dims: &[i32], data_type: u32, data: &[u8]) -> Vec<u8> {
    let mut body = mat_element(6, &[class.to_le_bytes(), 0u32.to_le_bytes()].concat());
    body.extend(mat_element(5, &dims.iter().flat_map(|d| d.to_le_bytes()).collect::<Vec<_>>()));
    body.extend(mat_element(1, name.as_bytes()));
    body.extend(mat_element(data_type, data));
    mat_element(14, &body)
}

/// Read one CIFAR-10 binary batch (gzipped or not): `(pixels, labels)`, pixels `[n, 3, 32, 32]`
/// row-major.
///
/// # Errors
/// [`Error::File`] naming the file if it is missing, empty, not a whole number of 3073-byte
/// records, or holds a label above 9.
pub fn read_cifar10_batch(path: impl AsRef<Path>) -> Result<(Vec<u8>, Vec<u8>)> {
    let path = path.as_ref();
    let bytes = read_maybe_gz(path)?;
    if bytes.is_empty() || bytes.len() % CIFAR_RECORD != 0 {
        return Err(Error::file(
            path,
            format!(
                "truncated or not a CIFAR-10 binary batch: {} bytes is not a multiple of {CIFAR_RECORD}",
                bytes.len()
            ),
        ));
    }
    let n = bytes.len() / CIFAR_RECORD;
    let mut pixels = Vec::with_capacity(n * (CIFAR_RECORD - 1));
    let mut labels = Vec::with_capacity(n);
    for (i, record) in bytes.chunks_exact(CIFAR_RECORD).enumerate() {
        if record[0] > 9 {
            return Err(Error::file(path, format!("record {i} has label {} > 9", record[0])));
        }
        labels.push(record[0]);
        pixels.extend_from_slice(&record[1..]);
    }
    Ok((pixels, labels))
}
