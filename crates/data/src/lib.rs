//! Data a study trains and evaluates on. For now: the contamination engine that compares a
//! training set with evaluation sets, used by the loop's `contaminated` label.

pub mod contamination;
