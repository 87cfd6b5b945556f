//! A step of a `cargo xtask reproduce` plan: what it makes and the command line that makes it.

/// The program a step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    /// An xtask command: `cargo xtask <argv>`.
    Xtask,
    /// The release `nfn` binary (through [`Nfn`](crate::commands::nfn::Nfn)): `nfn <argv>`.
    Nfn,
}

/// One step of a plan: what it makes, and the command line that makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What the step makes, in words.
    pub what: String,
    /// The program it runs.
    pub runner: Runner,
    /// The arguments after the program (`["train", "xtask/configs/x.toml"]`).
    pub argv: Vec<String>,
}

impl Step {
    /// A `cargo xtask` step.
    pub fn xtask<S: AsRef<str>>(what: impl Into<String>, argv: &[S]) -> Self {
        let argv = argv.iter().map(|a| a.as_ref().to_string()).collect();
        Step { what: what.into(), runner: Runner::Xtask, argv }
    }

    /// An `nfn` step.
    pub fn nfn<S: AsRef<str>>(what: impl Into<String>, argv: &[S]) -> Self {
        let argv = argv.iter().map(|a| a.as_ref().to_string()).collect();
        Step { what: what.into(), runner: Runner::Nfn, argv }
    }

    /// The command line a person would type, e.g. `cargo xtask train xtask/configs/x.toml`.
    pub fn command_line(&self) -> String {
        let program = match self.runner {
            Runner::Xtask => "cargo xtask",
            Runner::Nfn => "nfn",
        };
        let words: Vec<String> = self.argv.iter().map(|a| shell_word(a)).collect();
        format!("{program} {}", words.join(" "))
    }
}

/// `word` as the shell reads it: as is when plain, else in single quotes.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word.chars().all(|c| c.is_ascii_alphanumeric() || "_-./,:=+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
