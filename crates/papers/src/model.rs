//! The literature's records live in the domain crate; this module names them for the clients.

pub use postdoc_core::literature::{Card, Citation, Evidence, Paper, Section, is_arxiv_id, parse_id, strip_version};
