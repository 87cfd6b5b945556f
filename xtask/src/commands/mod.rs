//! One module per xtask command.
pub mod demo;
pub mod setup;
pub mod test;
