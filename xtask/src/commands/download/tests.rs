//! Download tests against a loopback HTTP server (std `TcpListener`, `Range` support) serving
//! files written by the test: a good file, one whose first transfer breaks off, a wrong checksum,
//! and a whole set (FashionMNIST) fetched into its folder.
//! Nothing here touches the network.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use super::*;

/// Served files, and how many first transfers of each to cut off half-way.
#[derive(Default)]
struct State {
    files: HashMap<String, Vec<u8>>,
    break_first: HashMap<String, usize>,
    /// `(path, Range header)` of every request.
    log: Vec<(String, Option<String>)>,
}

fn serve(stream: TcpStream, state: &Mutex<State>) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut range = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            if k.eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            }
        }
    }
    let mut st = state.lock().unwrap();
    st.log.push((path.clone(), range.clone()));
    let mut out = stream;
    let Some(body) = st.files.get(&path).cloned() else {
        return out.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    };
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok())
        .unwrap_or(0);
    let cut = st.break_first.get_mut(&path).is_some_and(|n| {
        let cut = *n > 0;
        *n = n.saturating_sub(1);
        cut
    });
    drop(st);
    if start >= body.len() && start > 0 {
        return out.write_all(
            b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    }
    let rest = &body[start..];
    let head = if start > 0 {
        format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{}\r\nConnection: close\r\n\r\n",
            rest.len(),
            body.len() - 1,
            body.len()
        )
    } else {
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", rest.len())
    };
    out.write_all(head.as_bytes())?;
    let send = if cut { &rest[..rest.len() / 2] } else { rest };
    out.write_all(send)?;
    out.flush()
}

/// Start the server on 127.0.0.1; returns its base URL and shared state.
fn server() -> (String, Arc<Mutex<State>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = Arc::new(Mutex::new(State::default()));
    let st = state.clone();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = serve(stream, &st);
        }
    });
    (url, state)
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

fn md5_of(bytes: &[u8]) -> String {
    format!("{:x}", Md5::digest(bytes))
}

#[test]
fn good_file_is_placed_and_verified() {
    let (url, state) = server();
    let body = payload(200_000);
    state.lock().unwrap().files.insert("/good.bin".into(), body.clone());
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("good.bin");
    fetch(&agent(), &format!("{url}/good.bin"), &dest, Some(&md5_of(&body)), false, 1).unwrap();
    assert_eq!(fs::read(&dest).unwrap(), body);
    assert!(!part_path(&dest).exists());
    // A second call keeps the verified file and makes no request.
    let before = state.lock().unwrap().log.len();
    fetch(&agent(), &format!("{url}/good.bin"), &dest, Some(&md5_of(&body)), false, 1).unwrap();
    assert_eq!(state.lock().unwrap().log.len(), before);
}

#[test]
fn broken_transfer_resumes_with_range() {
    let (url, state) = server();
    let body = payload(300_001);
    {
        let mut st = state.lock().unwrap();
        st.files.insert("/trunc.bin".into(), body.clone());
        st.break_first.insert("/trunc.bin".into(), 1);
    }
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("trunc.bin");
    let full_url = format!("{url}/trunc.bin");
    // One attempt: the transfer breaks, the part file keeps what arrived, nothing is placed.
    assert!(fetch(&agent(), &full_url, &dest, Some(&md5_of(&body)), false, 1).is_err());
    assert!(!dest.exists());
    let kept = fs::metadata(part_path(&dest)).unwrap().len();
    assert!(kept > 0 && kept < body.len() as u64, "kept {kept} bytes");
    // The next call resumes from there with a Range request and completes the file.
    fetch(&agent(), &full_url, &dest, Some(&md5_of(&body)), false, 1).unwrap();
    assert_eq!(fs::read(&dest).unwrap(), body);
    let log = state.lock().unwrap().log.clone();
    assert_eq!(log.last().unwrap().1.as_deref(), Some(format!("bytes={kept}-").as_str()));
}

#[test]
fn retries_within_one_call() {
    let (url, state) = server();
    let body = payload(100_000);
    {
        let mut st = state.lock().unwrap();
        st.files.insert("/flaky.bin".into(), body.clone());
        st.break_first.insert("/flaky.bin".into(), 2);
    }
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("flaky.bin");
    fetch(&agent(), &format!("{url}/flaky.bin"), &dest, Some(&md5_of(&body)), false, 5).unwrap();
    assert_eq!(fs::read(&dest).unwrap(), body);
    assert_eq!(state.lock().unwrap().log.len(), 3);
}

#[test]
fn wrong_checksum_places_nothing() {
    let (url, state) = server();
    state.lock().unwrap().files.insert("/bad.bin".into(), payload(10_000));
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("bad.bin");
    let err = fetch(&agent(), &format!("{url}/bad.bin"), &dest, Some(&md5_of(b"other")), false, 1)
        .unwrap_err();
    assert!(format!("{err:#}").contains("MD5"), "{err:#}");
    assert!(!dest.exists());
    assert!(!part_path(&dest).exists());
}

#[test]
fn missing_file_is_an_error() {
    let (url, _state) = server();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("none.bin");
    assert!(fetch(&agent(), &format!("{url}/none.bin"), &dest, None, false, 1).is_err());
    assert!(!dest.exists());
}

#[test]
fn tar_gz_unpacks_and_truncated_archive_fails() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("set.tar.gz");
    {
        let gz = flate2::write::GzEncoder::new(
            File::create(&archive).unwrap(),
            flate2::Compression::fast(),
        );
        let mut tar = tar::Builder::new(gz);
        let data = payload(5000);
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "set/a.bin", data.as_slice()).unwrap();
        tar.into_inner().unwrap().finish().unwrap();
    }
    let out = dir.path().join("out");
    fs::create_dir_all(&out).unwrap();
    unpack(&archive, &out).unwrap();
    assert_eq!(fs::read(out.join("set/a.bin")).unwrap(), payload(5000));
    assert!(!out.join(".unpacking").exists());

    let bytes = fs::read(&archive).unwrap();
    let cut = dir.path().join("cut.tar.gz");
    fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out2 = dir.path().join("out2");
    fs::create_dir_all(&out2).unwrap();
    let err = unpack(&cut, &out2).unwrap_err();
    assert!(format!("{err:#}").contains("cut.tar.gz"), "{err:#}");
}

#[test]
fn siren_sets_need_from_and_names_are_known() {
    for name in
        ["mnist", "fashion-mnist", "cifar10", "svhn", "siren-mnist", "siren-fashion", "siren-cifar"]
    {
        assert_eq!(dataset(name).unwrap().name, name);
    }
    assert!(dataset("cnn-zoo-svhn").unwrap().files[0].url.ends_with("svhn_cropped.tar.xz"));
    let splits = dataset("cnn-zoo-splits").unwrap();
    assert_eq!(splits.files.len(), 4);
    for f in &splits.files {
        // pinned to the reference commit, each checked against its MD5
        assert!(f.url.contains("/ce783221fd7c511596220d805c7a5beccd764ee8/"), "{}", f.url);
        assert!(f.url.ends_with(f.file) && f.md5.is_some_and(|m| m.len() == 32), "{f:?}");
    }
    assert!(dataset("imagenet").is_err());
    let dir = tempfile::tempdir().unwrap();
    let args = Args { dataset: "siren-mnist".into(), dir: Some(dir.path().into()), from: None };
    let err = run(&args).unwrap_err().to_string();
    assert!(err.contains("--from") && err.contains("drive.google.com"), "{err}");
}

#[test]
fn tar_xz_unpacks() {
    let dir = tempfile::tempdir().unwrap();
    let mut tar_bytes = Vec::new();
    {
        let mut tar = tar::Builder::new(&mut tar_bytes);
        let data = payload(3000);
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "cifar10/weights.npy", data.as_slice()).unwrap();
        tar.finish().unwrap();
    }
    let archive = dir.path().join("cifar10.tar.xz");
    let mut xz = Vec::new();
    lzma_rs::xz_compress(&mut tar_bytes.as_slice(), &mut xz).unwrap();
    fs::write(&archive, xz).unwrap();
    let out = dir.path().join("zoo");
    fs::create_dir_all(&out).unwrap();
    unpack(&archive, &out).unwrap();
    assert_eq!(fs::read(out.join("cifar10/weights.npy")).unwrap(), payload(3000));
    assert!(!out.join(".unpacking.tar").exists());
}

/// A `&'static str` for a `Remote` field (the catalogue holds literals); tests leak a few.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// The FashionMNIST set with its files served by the loopback server at `url`: each file gets a
/// payload of its own, and the MD5 of that payload unless it is named in `keep_md5` (those keep
/// the official MD5, which the payload does not have). Returns the set and the payloads.
fn served_fashion_mnist(
    url: &str,
    state: &Mutex<State>,
    keep_md5: &[&str],
) -> (Dataset, Vec<Vec<u8>>) {
    let mut set = dataset("fashion-mnist").unwrap();
    let mut bodies = Vec::new();
    for (i, remote) in set.files.iter_mut().enumerate() {
        let body = payload(20_000 + 7 * i);
        remote.url = leak(format!("{url}/fashion/{}", remote.file));
        if !keep_md5.contains(&remote.file) {
            remote.md5 = Some(leak(md5_of(&body)));
        }
        state.lock().unwrap().files.insert(format!("/fashion/{}", remote.file), body.clone());
        bodies.push(body);
    }
    (set, bodies)
}

#[test]
fn fashion_mnist_is_zalandos_files_with_their_md5s() {
    let set = dataset("fashion-mnist").unwrap();
    assert_eq!((set.name, set.subdir, set.manual), ("fashion-mnist", "fashion-mnist", None));
    let want = [
        ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    ];
    assert_eq!(set.files.len(), want.len());
    for (remote, (file, md5)) in set.files.iter().zip(want) {
        assert_eq!((remote.file, remote.md5), (file, Some(md5)));
        let base =
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/";
        assert_eq!(remote.url, format!("{base}{file}"));
    }
    // The last file fetched marks the set ready.
    assert_eq!(set.ready, set.files.last().unwrap().file);
    // `nfn fit-inrs --dataset cifar10` looks in data/cifar10/cifar-10-batches-bin by default.
    let cifar = dataset("cifar10").unwrap();
    assert_eq!(
        Path::new(cifar.subdir).join(cifar.ready),
        Path::new("cifar10/cifar-10-batches-bin/test_batch.bin")
    );
}

#[test]
fn fashion_mnist_download_verifies_and_lands_in_place() {
    let (url, state) = server();
    let (set, bodies) = served_fashion_mnist(&url, &state, &[]);
    let root = tempfile::tempdir().unwrap();
    let dir = install(&set, root.path(), None, false).unwrap();
    assert_eq!(dir, root.path().join("fashion-mnist"));
    for (remote, body) in set.files.iter().zip(&bodies) {
        assert_eq!(&fs::read(dir.join(remote.file)).unwrap(), body, "{}", remote.file);
        assert!(!part_path(&dir.join(remote.file)).exists());
    }
    assert_eq!(state.lock().unwrap().log.len(), 4);
    // A second run finds the set ready and asks the server nothing.
    install(&set, root.path(), None, false).unwrap();
    assert_eq!(state.lock().unwrap().log.len(), 4);
}

#[test]
fn corrupt_fashion_mnist_file_is_refused_naming_it() {
    let (url, state) = server();
    // t10k-images keeps its official MD5, which the served bytes do not match.
    let bad = "t10k-images-idx3-ubyte.gz";
    let (set, _) = served_fashion_mnist(&url, &state, &[bad]);
    let root = tempfile::tempdir().unwrap();
    let err = format!("{:#}", install(&set, root.path(), None, false).unwrap_err());
    assert!(err.contains(bad) && err.contains("bef4ecab320f06d8554ea6380940ec79"), "{err}");
    let dir = root.path().join("fashion-mnist");
    // The files before it were verified and placed; it and the files after it were not.
    assert!(dir.join("train-images-idx3-ubyte.gz").exists());
    assert!(dir.join("train-labels-idx1-ubyte.gz").exists());
    assert!(!dir.join(bad).exists() && !part_path(&dir.join(bad)).exists());
    assert!(!dir.join(set.ready).exists());
}

/// The MNIST catalog entry with test payloads in place of its files: a mirror folder `from` holding
/// the first two plain and the last two gzipped, and the set with their MD5s recorded.
fn mnist_mirror(from: &Path) -> (Dataset, Vec<Vec<u8>>) {
    let mut set = dataset("mnist").unwrap();
    let mut bodies = Vec::new();
    for (i, content) in set.contents.iter_mut().enumerate() {
        let body = payload(10_000 + 13 * i);
        content.md5 = leak(md5_of(&body));
        if i < 2 {
            fs::write(from.join(content.path), &body).unwrap();
        } else {
            let mut gz = flate2::write::GzEncoder::new(
                File::create(from.join(format!("{}.gz", content.path))).unwrap(),
                flate2::Compression::fast(),
            );
            gz.write_all(&body).unwrap();
            gz.finish().unwrap();
        }
        bodies.push(body);
    }
    (set, bodies)
}

#[test]
fn mirror_folder_plain_and_gzip_are_accepted_and_land_as_they_came() {
    let from = tempfile::tempdir().unwrap();
    let (set, bodies) = mnist_mirror(from.path());
    let root = tempfile::tempdir().unwrap();
    let dir = install(&set, root.path(), Some(from.path()), false).unwrap();
    assert_eq!(dir, root.path().join("mnist"));
    for (i, (content, body)) in set.contents.iter().zip(&bodies).enumerate() {
        let landed = if i < 2 {
            fs::read(dir.join(content.path)).unwrap()
        } else {
            let mut out = Vec::new();
            let file = File::open(dir.join(format!("{}.gz", content.path))).unwrap();
            flate2::read::GzDecoder::new(file).read_to_end(&mut out).unwrap();
            out
        };
        assert_eq!(&landed, body, "{}", content.path);
    }
    assert!(fs::read_dir(&dir).unwrap().all(|e| !e
        .unwrap()
        .path()
        .to_string_lossy()
        .ends_with(".part")));
    // Ready now: a second run takes nothing (an empty mirror would be refused).
    let empty = tempfile::tempdir().unwrap();
    install(&set, root.path(), Some(empty.path()), false).unwrap();
}

#[test]
fn mirror_folder_with_a_flipped_byte_or_a_missing_file_is_refused_naming_it() {
    let from = tempfile::tempdir().unwrap();
    let (set, _) = mnist_mirror(from.path());
    // One flipped byte in a plain file: refused, named, nothing placed (not even the good files).
    let victim = from.path().join(set.contents[1].path);
    let mut bytes = fs::read(&victim).unwrap();
    bytes[100] ^= 0x01;
    fs::write(&victim, &bytes).unwrap();
    let root = tempfile::tempdir().unwrap();
    let err = format!("{:#}", install(&set, root.path(), Some(from.path()), false).unwrap_err());
    assert!(
        err.contains(&victim.display().to_string()) && err.contains(set.contents[1].md5),
        "{err}"
    );
    assert_eq!(fs::read_dir(root.path().join("mnist")).unwrap().count(), 0);
    // Mended, the same mirror is taken.
    bytes[100] ^= 0x01;
    fs::write(&victim, &bytes).unwrap();
    install(&set, root.path(), Some(from.path()), false).unwrap();
    // A missing file is named with the paths looked at.
    let from2 = tempfile::tempdir().unwrap();
    let (set2, _) = mnist_mirror(from2.path());
    fs::remove_file(from2.path().join(format!("{}.gz", set2.contents[3].path))).unwrap();
    let root2 = tempfile::tempdir().unwrap();
    let err = format!("{:#}", install(&set2, root2.path(), Some(from2.path()), false).unwrap_err());
    assert!(err.contains("t10k-labels-idx1-ubyte") && err.contains("missing"), "{err}");
}

#[test]
fn mirror_gzip_with_corrupt_content_is_refused() {
    let from = tempfile::tempdir().unwrap();
    let (mut set, _) = mnist_mirror(from.path());
    // The gzipped file is intact but its content is not the catalog's.
    set.contents[2].md5 = leak(md5_of(b"another content"));
    let root = tempfile::tempdir().unwrap();
    let err = format!("{:#}", install(&set, root.path(), Some(from.path()), false).unwrap_err());
    assert!(err.contains("t10k-images-idx3-ubyte.gz") && err.contains("uncompressed"), "{err}");
}

/// The real mirror of this project's machines, against the catalog's canonical MD5s: MNIST, and
/// the CIFAR-10 subset. Skipped (saying so) where `../shared/data` is absent.
#[test]
fn shared_data_mirror_matches_the_catalog() {
    let shared = crate::util::root().join("../shared/data");
    if !shared.join("mnist").is_dir() {
        eprintln!("SKIPPED: {} is absent on this machine", shared.display());
        return;
    }
    for (name, folder) in [("mnist", "mnist"), ("cifar10-subset", "cifar10-subset")] {
        let set = dataset(name).unwrap();
        let root = tempfile::tempdir().unwrap();
        let dir = install(&set, root.path(), Some(&shared.join(folder)), false).unwrap();
        assert!(dir.join(set.ready).exists() || local::has_contents(&set, &dir), "{name}");
    }
}
