//! `nfn merge-set <dir>`: after N processes (or machines) wrote the parts of a set with
//! `--shard i/n`, check that the set is complete, and for a CNN zoo merge its parts into the zoo
//! files. It knows three kinds of folder: an INR set (`fit-inrs`, `convert-inrs`: every process
//! writes the same planned `manifest.json`, so the check is that every planned shard is there and
//! reads back), a zoo being made (`make-zoo`: `parts/`), and a latent cache (`latents`: `meta.json`
//! per split). It fails, exit code 2, naming what is missing.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nfn_datasets::inr_set::MANIFEST_FILE;
use nfn_datasets::{InrSetManifest, Split};
use nfn_weightspace::Shard;

/// Options of `merge-set`.
#[derive(clap::Args)]
pub struct Args {
    /// The shared output folder: an INR set, a zoo being made, or a latent cache
    /// (`<encoder_run>/latents` or one split of it).
    pub dir: PathBuf,
}

/// Check (and for zoos merge) the set in `dir`.
pub fn run(args: &Args) -> Result<()> {
    let dir = &args.dir;
    if dir.join(MANIFEST_FILE).exists() {
        let manifest = InrSetManifest::read(dir)?;
        manifest.check_complete(dir)?;
        let [train, val, test] = manifest.counts;
        let protocol = manifest.splits.protocol_of(&manifest.dataset);
        println!(
            "merge-set: {} is complete: {} INRs (train {train}, val {val}, test {test}) in {} \
             shards; splits {}",
            dir.display(),
            train + val + test,
            manifest.shards.len(),
            protocol.map_or("of no reference protocol (a subset?)".into(), |p| format!(
                "of the {} protocol",
                p.name()
            ))
        );
        Ok(())
    } else if dir.join("parts").is_dir() {
        crate::commands::make_zoo::merge(dir)
    } else if dir.join("meta.json").exists() {
        let line = latent_status(dir)?;
        println!("merge-set: {line}");
        Ok(())
    } else if Split::ALL.iter().any(|s| dir.join(s.name()).join("meta.json").exists()) {
        for split in Split::ALL {
            let line = latent_status(&dir.join(split.name()))?;
            println!("merge-set: {line}");
        }
        Ok(())
    } else {
        bail!(
            "{}: not an INR set (no {MANIFEST_FILE}), a zoo being made (no parts/) or a latent \
             cache (no meta.json)",
            dir.display()
        )
    }
}

/// `<dir>: N latents in C chunks, complete`, or an error naming the missing chunks.
fn latent_status(dir: &Path) -> Result<String> {
    let (meta, missing) = inr2array::missing_chunks(dir)?;
    if let Some(first) = missing.first() {
        bail!(
            "{}: {} of {} latent chunks missing (first chunk {first}); run the missing parts of \
             `nfn latents` again",
            dir.display(),
            missing.len(),
            meta.num_chunks()
        );
    }
    Ok(format!(
        "{}: {} latents of {}x{} in {} chunks, complete",
        dir.display(),
        meta.count,
        meta.num_latents,
        meta.latent_dim,
        meta.num_chunks()
    ))
}

/// After a sharded `fit-inrs`/`convert-inrs` part: say whether the set is complete.
pub fn report_part(out: &Path, part: Shard, manifest: &InrSetManifest) {
    let missing = manifest.missing_shards(out).len();
    if missing == 0 {
        eprintln!(
            "shard {part} done; the set in {} is complete ({} shards)",
            out.display(),
            manifest.shards.len()
        );
    } else {
        eprintln!(
            "shard {part} done; {missing} of {} shards still to come from the other parts; \
             `nfn merge-set {}` checks the set once all are done",
            manifest.shards.len(),
            out.display()
        );
    }
}

/// After `nfn latents`: one line per split of the cache in `root`, complete or how much is missing.
pub fn report_latents(root: &Path) -> Result<()> {
    for split in Split::ALL {
        let dir = root.join(split.name());
        let (meta, missing) = inr2array::missing_chunks(&dir)
            .with_context(|| format!("reading the latent cache {}", dir.display()))?;
        if missing.is_empty() {
            eprintln!("{}: {} latents, complete", dir.display(), meta.count);
        } else {
            eprintln!(
                "{}: {} of {} chunks still to come from the other parts",
                dir.display(),
                missing.len(),
                meta.num_chunks()
            );
        }
    }
    Ok(())
}
