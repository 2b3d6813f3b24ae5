//! Data a study trains and evaluates on: reading dataset files of every common format as a
//! stream of rows (`read.rs`), what is in them (`inspect.rs`, with near duplicates from
//! `minhash.rs`), and the contamination engine that compares a training set with evaluation
//! sets, used by the loop's `contaminated` label (`contamination.rs`) and by `clean.rs` to write
//! a decontaminated copy of a training set.

pub mod clean;
pub mod contamination;
pub mod inspect;
pub mod minhash;
pub mod read;

pub use inspect::{InspectSettings, Inspection, inspect};
pub use minhash::{NearDuplicates, NearSettings};
pub use read::{FileFormat, OnMalformed, ReadError, Row, Rows, Skipped};
