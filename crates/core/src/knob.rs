//! Typed knobs: the named values of a recipe's knob file that a search specialist may set.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The range of one knob, as written in the manifest: `lr = { log_float = [1e-4, 1e-1] }`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum KnobSpec {
    /// Uniform over `[low, high]`.
    Float([f64; 2]),
    /// Uniform in log space over `[low, high]`; both positive.
    LogFloat([f64; 2]),
    /// Integers in `[low, high]`, both included.
    Int([i64; 2]),
    /// One of the listed values (strings, numbers or booleans).
    Choice(Vec<KnobValue>),
}

/// A value a knob takes, written into the recipe's knob file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum KnobValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

/// Knob name to value; ordered so that proposals and diffs are stable.
pub type KnobValues = BTreeMap<String, KnobValue>;

impl KnobSpec {
    /// Why this range cannot be searched, if it cannot.
    pub fn problem(&self) -> Option<String> {
        match self {
            KnobSpec::Float([lo, hi]) => (!(lo.is_finite() && hi.is_finite() && lo < hi))
                .then(|| format!("float range [{lo}, {hi}] needs finite low < high")),
            KnobSpec::LogFloat([lo, hi]) => (!(lo.is_finite() && hi.is_finite() && *lo > 0.0 && lo < hi))
                .then(|| format!("log_float range [{lo}, {hi}] needs 0 < low < high")),
            KnobSpec::Int([lo, hi]) => (lo > hi).then(|| format!("int range [{lo}, {hi}] needs low <= high")),
            KnobSpec::Choice(options) if options.is_empty() => Some("choice needs at least one option".into()),
            KnobSpec::Choice(_) => None,
        }
    }

    /// Whether `value` lies in this knob's range.
    pub fn admits(&self, value: &KnobValue) -> bool {
        match (self, value) {
            (KnobSpec::Float([lo, hi]) | KnobSpec::LogFloat([lo, hi]), KnobValue::Float(v)) => v >= lo && v <= hi,
            (KnobSpec::Float([lo, hi]) | KnobSpec::LogFloat([lo, hi]), KnobValue::Int(v)) => {
                (*v as f64) >= *lo && (*v as f64) <= *hi
            }
            (KnobSpec::Int([lo, hi]), KnobValue::Int(v)) => v >= lo && v <= hi,
            (KnobSpec::Choice(options), v) => options.contains(v),
            _ => false,
        }
    }
}

impl fmt::Display for KnobValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KnobValue::Bool(b) => write!(f, "{b}"),
            KnobValue::Int(i) => write!(f, "{i}"),
            KnobValue::Float(x) => write!(f, "{}", format_float(*x)),
            KnobValue::Text(s) => write!(f, "{s:?}"),
        }
    }
}

/// Short, exact-enough float formatting for hypotheses and tables (`0.0031`, `1.2e-5`).
pub fn format_float(x: f64) -> String {
    if x == 0.0 || (1e-3..1e6).contains(&x.abs()) {
        let s = format!("{x:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s.is_empty() || s == "-" { "0".into() } else { s.to_string() }
    } else {
        format!("{x:.3e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_checked() {
        assert!(KnobSpec::LogFloat([0.0, 1.0]).problem().is_some());
        assert!(KnobSpec::Float([2.0, 1.0]).problem().is_some());
        assert!(KnobSpec::Int([3, 3]).problem().is_none());
        assert!(KnobSpec::Choice(vec![]).problem().is_some());
        assert!(KnobSpec::Int([0, 10]).admits(&KnobValue::Int(10)));
        assert!(!KnobSpec::Int([0, 10]).admits(&KnobValue::Float(1.0)));
        assert!(KnobSpec::Float([0.0, 1.0]).admits(&KnobValue::Float(0.5)));
        assert!(KnobSpec::Choice(vec![KnobValue::Text("cos".into())]).admits(&KnobValue::Text("cos".into())));
    }

    #[test]
    fn floats_print_short() {
        assert_eq!(format_float(0.00312), "0.0031");
        assert_eq!(format_float(1.5e-5), "1.500e-5");
        assert_eq!(format_float(3.0), "3");
    }
}
