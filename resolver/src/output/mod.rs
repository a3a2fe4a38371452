//! Writers of a [`crate::resolution::Resolution`]: each format in its own module.

pub mod nix;
