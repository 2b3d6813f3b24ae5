//! Data a study trains and evaluates on: reading dataset files of every common format as a
//! stream of rows (`read.rs`), what is in them (`inspect.rs`, with near duplicates from
//! `minhash.rs`), and the contamination engine that compares a training set with evaluation
//! sets, used by the loop's `contaminated` label (`contamination.rs`) and by `clean.rs` to write
//! a decontaminated copy of a training set. `formats.rs` recognises the shapes post-training
//! data comes in (Alpaca, ShareGPT, messages, prompt/completion, preference pairs,
//! prompt/answer) and `convert.rs` converts a file between them; `write.rs` writes rows as
//! JSON Lines or Parquet through a temporary file; `version.rs` names a dataset by a hash of
//! its normalised rows; `page.rs` renders an inspection as an HTML page with plots.

pub mod clean;
pub mod contamination;
pub mod convert;
pub mod formats;
pub mod inspect;
pub mod minhash;
pub mod page;
pub mod read;
pub mod version;
pub mod write;

pub use inspect::{InspectSettings, Inspection, inspect};
pub use minhash::{NearDuplicates, NearSettings};
pub use read::{FileFormat, OnMalformed, ReadError, Row, Rows, Skipped};
