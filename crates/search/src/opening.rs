//! A study's opening: its first trials draw the knobs of every built-in search together.
//!
//! Each specialist owns a few knobs and, on its own, starts its search with a few random draws
//! of them, every other knob held at the best recipe's values. With three specialists that is
//! three short starts, each learning one corner of the recipe, and a specialist whose first
//! draws land badly (a learning rate where nothing trains) loses its turns before its search
//! has learnt anything. Drawing every knob at once in the first trials, as a single joint search
//! does, makes each of them a draw of every knob: every specialist's search then learns from all
//! of them, through its own knobs, before it takes its first turn.

use crate::{Tpe, TpeSettings, describe_change, knob_proposal};
use postdoc_core::{KnobSpec, OPENING_SPECIALIST, Proposal, ProposalRequest, ProposeError, Specialist};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// Proposes the opening's trials, each a draw at random of every knob it is given (avoiding
/// where trials failed).
pub struct Opening {
    draws: Tpe,
    trials: u64,
}

impl Opening {
    /// The opening of a study of `max_trials` over the knobs of `searches` built-in searches;
    /// `None` when there is nothing to open: a single search starts with random draws anyway.
    pub fn new(knobs: BTreeMap<String, KnobSpec>, searches: usize, max_trials: u64) -> Option<Opening> {
        let trials = Opening::length(searches, max_trials);
        (trials > 0 && !knobs.is_empty())
            .then(|| Opening { draws: Tpe::new(OPENING_SPECIALIST, knobs, TpeSettings::default()), trials })
    }

    /// How many trials open a study: a third of its budget, at least 2 and at most 10 (Optuna's
    /// TPE draws its first 10 at random), and none for a single search.
    pub fn length(searches: usize, max_trials: u64) -> u64 {
        if searches < 2 { 0 } else { (max_trials / 3).clamp(2, 10) }
    }

    /// The number of opening trials.
    pub fn trials(&self) -> u64 {
        self.trials
    }
}

#[async_trait::async_trait]
impl Specialist for Opening {
    fn name(&self) -> &str {
        OPENING_SPECIALIST
    }

    async fn propose(&self, request: ProposalRequest<'_>) -> Result<Proposal, ProposeError> {
        let mut rng = ChaCha8Rng::seed_from_u64(request.seed);
        let (values, risk) = self.draws.explore(request.history, &mut rng);
        let change = describe_change(request.best_knobs, &values);
        // Shown after the specialist's name ("opening: every search knob at random: lr ...").
        let hypothesis = match risk {
            Some(risk) => format!("every search knob at random: {change} ({risk})"),
            None => format!("every search knob at random: {change}"),
        };
        Ok(knob_proposal(OPENING_SPECIALIST, hypothesis, values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postdoc_core::manifest::{Direction, Objective};
    use postdoc_core::{Edit, KnobValue, KnobValues, LineageView};

    #[test]
    fn a_study_opens_with_a_third_of_its_budget_when_several_searches_share_it() {
        assert_eq!(Opening::length(1, 40), 0);
        assert_eq!(Opening::length(2, 16), 5);
        assert_eq!(Opening::length(3, 4), 2);
        assert_eq!(Opening::length(3, 300), 10);
    }

    #[tokio::test]
    async fn each_opening_trial_draws_every_knob() {
        let knobs = BTreeMap::from([
            ("lr".to_string(), KnobSpec::LogFloat([1e-4, 1e-1])),
            ("mix".to_string(), KnobSpec::Float([0.0, 1.0])),
            (
                "loss_on".to_string(),
                KnobSpec::Choice(vec![KnobValue::Text("all".into()), KnobValue::Text("answer".into())]),
            ),
        ]);
        let opening = Opening::new(knobs.clone(), 2, 16).unwrap();
        let objective = Objective { metric: "acc".into(), direction: Direction::Maximize };
        let view = LineageView::build("s", &objective, &[], Some(OPENING_SPECIALIST));
        let best = KnobValues::new();
        let mut draws = Vec::new();
        for seed in 0..2 {
            let request = ProposalRequest { seed, view: &view, best_knobs: &best, history: &[], bench: None };
            let proposal = opening.propose(request).await.unwrap();
            assert_eq!(proposal.specialist, OPENING_SPECIALIST);
            assert!(proposal.hypothesis.starts_with("every search knob at random: "), "{}", proposal.hypothesis);
            let Edit::Knobs { values } = proposal.edit else { panic!("a knob edit") };
            assert_eq!(values.keys().collect::<Vec<_>>(), knobs.keys().collect::<Vec<_>>());
            assert!(values.iter().all(|(k, v)| knobs[k].admits(v)), "{values:?}");
            draws.push(values);
        }
        assert_ne!(draws[0], draws[1], "each seed draws afresh");
        assert!(Opening::new(BTreeMap::new(), 3, 16).is_none());
    }
}
