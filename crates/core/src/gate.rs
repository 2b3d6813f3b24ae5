//! Gates: conditions on the evaluator's metrics that a trial must pass to be kept
//! (`accuracy >= 0.5`, `val_loss < 3`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    #[serde(rename = ">=")]
    AtLeast,
    #[serde(rename = ">")]
    Above,
    #[serde(rename = "<=")]
    AtMost,
    #[serde(rename = "<")]
    Below,
    #[serde(rename = "==")]
    Equal,
    #[serde(rename = "!=")]
    NotEqual,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gate {
    pub metric: String,
    pub comparison: Comparison,
    pub threshold: f64,
}

/// How one gate went for one set of scores.
#[derive(Debug, Clone, PartialEq)]
pub enum GateCheck {
    Passed,
    Failed {
        value: f64,
    },
    /// The evaluator did not report the metric the gate reads.
    Missing,
}

impl Comparison {
    fn symbol(self) -> &'static str {
        match self {
            Comparison::AtLeast => ">=",
            Comparison::Above => ">",
            Comparison::AtMost => "<=",
            Comparison::Below => "<",
            Comparison::Equal => "==",
            Comparison::NotEqual => "!=",
        }
    }

    fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::AtLeast => value >= threshold,
            Comparison::Above => value > threshold,
            Comparison::AtMost => value <= threshold,
            Comparison::Below => value < threshold,
            Comparison::Equal => value == threshold,
            Comparison::NotEqual => value != threshold,
        }
    }
}

impl Gate {
    pub fn check(&self, scores: &BTreeMap<String, f64>) -> GateCheck {
        match scores.get(&self.metric) {
            None => GateCheck::Missing,
            Some(&v) if self.comparison.holds(v, self.threshold) => GateCheck::Passed,
            Some(&v) => GateCheck::Failed { value: v },
        }
    }
}

impl FromStr for Gate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        // Two-character operators first so `>=` is not read as `>` followed by `=`.
        const OPS: [(&str, Comparison); 6] = [
            (">=", Comparison::AtLeast),
            ("<=", Comparison::AtMost),
            ("==", Comparison::Equal),
            ("!=", Comparison::NotEqual),
            (">", Comparison::Above),
            ("<", Comparison::Below),
        ];
        let shape = || format!("gate `{text}` is not of the form `metric >= number` (operators: >= > <= < == !=)");
        let (at, op, comparison) = OPS
            .iter()
            .filter_map(|(op, c)| text.find(op).map(|at| (at, *op, *c)))
            .min_by_key(|(at, op, _)| (*at, std::cmp::Reverse(op.len())))
            .ok_or_else(shape)?;
        let metric = text[..at].trim();
        let number = text[at + op.len()..].trim();
        if metric.is_empty() || !metric.chars().all(|c| c.is_alphanumeric() || "_.-/".contains(c)) {
            return Err(shape());
        }
        let threshold: f64 = number.parse().map_err(|_| format!("gate `{text}`: `{number}` is not a number"))?;
        if !threshold.is_finite() {
            return Err(format!("gate `{text}`: the threshold must be finite"));
        }
        Ok(Gate { metric: metric.to_string(), comparison, threshold })
    }
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.metric, self.comparison.symbol(), self.threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn parses_and_checks() {
        let g: Gate = "accuracy >= 0.5".parse().unwrap();
        assert_eq!(g.comparison, Comparison::AtLeast);
        assert_eq!(g.check(&scores(&[("accuracy", 0.5)])), GateCheck::Passed);
        assert_eq!(g.check(&scores(&[("accuracy", 0.4)])), GateCheck::Failed { value: 0.4 });
        assert_eq!(g.check(&scores(&[])), GateCheck::Missing);
        let g: Gate = "val_loss<3".parse().unwrap();
        assert_eq!(g.comparison, Comparison::Below);
        assert_eq!(g.to_string(), "val_loss < 3");
    }

    #[test]
    fn rejects_malformed() {
        assert!("accuracy".parse::<Gate>().is_err());
        assert!(">= 3".parse::<Gate>().is_err());
        assert!("accuracy >= high".parse::<Gate>().unwrap_err().contains("not a number"));
        assert!("a b >= 1".parse::<Gate>().is_err());
    }
}
