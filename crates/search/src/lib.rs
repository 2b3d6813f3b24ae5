//! Built-in search specialists: proposers over a surface's typed knobs that need no model.

pub mod bandit;
mod opening;
mod tpe;

pub use opening::{Opening, Search};
pub use tpe::{Slice, Tpe, TpeSettings};

use postdoc_core::{Edit, KnobSpec, KnobValue, KnobValues, Proposal, ProposalRequest, ProposeError, Specialist};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// Draws one value of a knob.
pub fn sample(spec: &KnobSpec, rng: &mut impl Rng) -> KnobValue {
    match spec {
        KnobSpec::Float([lo, hi]) => KnobValue::Float(lo + (hi - lo) * rng.random::<f64>()),
        KnobSpec::LogFloat([lo, hi]) => {
            let (a, b) = (lo.ln(), hi.ln());
            KnobValue::Float((a + (b - a) * rng.random::<f64>()).exp().clamp(*lo, *hi))
        }
        KnobSpec::Int([lo, hi]) => KnobValue::Int(rng.random_range(*lo..=*hi)),
        KnobSpec::Choice(options) => options[rng.random_range(0..options.len())].clone(),
    }
}

/// Random search: every knob drawn afresh from its range. The baseline strategy every smarter
/// one must beat.
pub struct RandomSearch {
    name: String,
    knobs: BTreeMap<String, KnobSpec>,
}

impl RandomSearch {
    pub fn new(name: impl Into<String>, knobs: BTreeMap<String, KnobSpec>) -> RandomSearch {
        RandomSearch { name: name.into(), knobs }
    }
}

/// "lr 0.01 -> 0.0031, warmup 250 (new)": what changes against the best, in one line.
pub fn describe_change(before: &KnobValues, after: &KnobValues) -> String {
    let parts: Vec<String> = after
        .iter()
        .filter_map(|(k, v)| match before.get(k) {
            Some(old) if old == v => None,
            Some(old) => Some(format!("{k} {old} -> {v}")),
            None => Some(format!("{k} = {v}")),
        })
        .collect();
    if parts.is_empty() { "the best recipe's knob values again".into() } else { parts.join(", ") }
}

/// A built-in search's proposal: knob values on the current best, with the one line that says
/// what they change and why.
fn knob_proposal(specialist: &str, hypothesis: String, values: KnobValues) -> Proposal {
    Proposal {
        specialist: specialist.to_string(),
        hypothesis,
        expected_delta: None,
        parent: None,
        edit: Edit::Knobs { values },
        cites: Vec::new(),
    }
}

#[async_trait::async_trait]
impl Specialist for RandomSearch {
    fn name(&self) -> &str {
        &self.name
    }

    async fn propose(&self, request: ProposalRequest<'_>) -> Result<Proposal, ProposeError> {
        let mut rng = ChaCha8Rng::seed_from_u64(request.seed);
        let values: KnobValues = self.knobs.iter().map(|(k, spec)| (k.clone(), sample(spec, &mut rng))).collect();
        let hypothesis = format!("random search: {}", describe_change(request.best_knobs, &values));
        Ok(knob_proposal(&self.name, hypothesis, values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postdoc_core::LineageView;
    use postdoc_core::manifest::{Direction, Objective};
    use proptest::prelude::*;

    fn knobs() -> BTreeMap<String, KnobSpec> {
        BTreeMap::from([
            ("lr".to_string(), KnobSpec::LogFloat([1e-4, 1e-1])),
            ("steps".to_string(), KnobSpec::Int([10, 20])),
            (
                "schedule".to_string(),
                KnobSpec::Choice(vec![KnobValue::Text("cos".into()), KnobValue::Text("lin".into())]),
            ),
            ("dropout".to_string(), KnobSpec::Float([0.0, 0.5])),
        ])
    }

    proptest! {
        #[test]
        fn samples_stay_in_range(seed in any::<u64>()) {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            for spec in knobs().values() {
                let v = sample(spec, &mut rng);
                prop_assert!(spec.admits(&v), "{v:?} outside {spec:?}");
            }
        }
    }

    #[test]
    fn log_float_spreads_over_decades() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let spec = KnobSpec::LogFloat([1e-4, 1e-1]);
        let below_1e3 =
            (0..1000).filter(|_| matches!(sample(&spec, &mut rng), KnobValue::Float(x) if x < 1e-3)).count();
        // A third of the log range lies below 1e-3; uniform sampling would put 0.9% there.
        assert!((250..420).contains(&below_1e3), "{below_1e3}");
    }

    #[tokio::test]
    async fn proposals_are_reproducible_from_the_seed() {
        let rs = RandomSearch::new("optimizer", knobs());
        let objective = Objective { metric: "acc".into(), direction: Direction::Maximize };
        let view = LineageView::build("s", &objective, &[], Some("optimizer"));
        let best = KnobValues::from([("steps".to_string(), KnobValue::Int(10))]);
        let req = |seed| ProposalRequest {
            seed,
            turn: 0,
            view: &view,
            best_knobs: &best,
            start_knobs: &best,
            recipe_knobs: &best,
            history: &[],
            bench: None,
        };
        let a = rs.propose(req(1)).await.unwrap();
        assert_eq!(a, rs.propose(req(1)).await.unwrap());
        assert_ne!(a.edit, rs.propose(req(2)).await.unwrap().edit);
        assert!(a.hypothesis.starts_with("random search: "), "{}", a.hypothesis);
        assert_eq!(a.specialist, "optimizer");
    }

    #[test]
    fn change_descriptions_name_only_what_moves() {
        let before =
            KnobValues::from([("lr".to_string(), KnobValue::Float(0.01)), ("steps".to_string(), KnobValue::Int(10))]);
        let after =
            KnobValues::from([("lr".to_string(), KnobValue::Float(0.0031)), ("steps".to_string(), KnobValue::Int(10))]);
        assert_eq!(describe_change(&before, &after), "lr 0.01 -> 0.0031");
        assert_eq!(describe_change(&after, &after), "the best recipe's knob values again");
    }
}
