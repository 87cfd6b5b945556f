//! One part of a job split over processes or machines (`--shard i/n`).
//!
//! A job that writes many independent files (the shards of an INR set, the chunks of a latent
//! set, the parts of a CNN zoo) numbers them `0, 1, 2, ...` in its plan; shard `i` of `n` writes
//! the items `k` with `k % n == i`. Every process plans the same job, so the parts fit together
//! without a coordinator; a scheduler (a Slurm job array, a Kubernetes indexed job) only has to
//! start `n` processes with `i = 0..n`.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Items `k` with `k % count == index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    /// This part, `0..count`.
    pub index: usize,
    /// Number of parts.
    pub count: usize,
}

impl Shard {
    /// The whole job in one part.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Part `index` of `count`.
    ///
    /// # Errors
    /// [`Error::InvalidShard`] unless `0 <= index < count`.
    pub fn new(index: usize, count: usize) -> Result<Self> {
        if count == 0 || index >= count {
            return Err(Error::InvalidShard(format!(
                "{index}/{count}: shard i/n needs 0 <= i < n (e.g. 0/4 .. 3/4)"
            )));
        }
        Ok(Shard { index, count })
    }

    /// Whether item `k` of the plan belongs to this part.
    pub fn takes(&self, k: usize) -> bool {
        k % self.count == self.index
    }

    /// Whether this is the whole job.
    pub fn is_all(&self) -> bool {
        self.count == 1
    }
}

impl Default for Shard {
    fn default() -> Self {
        Shard::ALL
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = Error;

    /// Parse `i/n`, e.g. `0/4`.
    fn from_str(s: &str) -> Result<Self> {
        let bad =
            |what: &str| Error::InvalidShard(format!("{s:?}: {what}; expected i/n, e.g. 0/4"));
        let (i, n) = s.split_once('/').ok_or_else(|| bad("no `/`"))?;
        let i = i.trim().parse().map_err(|_| bad("bad index"))?;
        let n = n.trim().parse().map_err(|_| bad("bad count"))?;
        Shard::new(i, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_every_item_once() {
        let parts: Vec<Shard> = (0..3).map(|i| Shard::new(i, 3).expect("a part")).collect();
        for k in 0..20 {
            assert_eq!(parts.iter().filter(|s| s.takes(k)).count(), 1);
        }
        assert!((0..20).all(|k| Shard::ALL.takes(k)));
    }

    #[test]
    fn parses_and_refuses() {
        assert_eq!("2/5".parse::<Shard>().expect("parses"), Shard { index: 2, count: 5 });
        assert_eq!(" 0 / 1 ".parse::<Shard>().expect("parses").to_string(), "0/1");
        for bad in ["3/3", "0/0", "1", "a/2", "-1/2", ""] {
            let err = bad.parse::<Shard>().expect_err("refused").to_string();
            assert!(err.contains("shard"), "{bad}: {err}");
        }
    }
}
