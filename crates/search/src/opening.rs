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
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// Proposes the opening's trials: together they are a Latin hypercube over every knob it is
/// given, so that each knob's range is covered slice by slice however few the trials are (five
/// independent draws of a learning rate miss its top fifth a third of the time; five cells of a
/// Latin hypercube never do). Within its cell each trial is drawn at random, avoiding where
/// trials failed.
pub struct Opening {
    draws: Tpe,
    /// For each opening trial, for each knob in name order: the slice of its range (or the
    /// option) the trial draws from.
    design: Vec<Vec<usize>>,
}

impl Opening {
    /// The opening of a study of `max_trials` over the knobs of `searches` built-in searches,
    /// laid out from the study's `seed`; `None` when there is nothing to open: a single search
    /// starts with random draws anyway.
    pub fn new(knobs: BTreeMap<String, KnobSpec>, searches: usize, max_trials: u64, seed: u64) -> Option<Opening> {
        let trials = Opening::length(searches, max_trials) as usize;
        if trials == 0 || knobs.is_empty() {
            return None;
        }
        let design = latin_hypercube(&knobs, trials, &mut ChaCha8Rng::seed_from_u64(seed));
        Some(Opening { draws: Tpe::new(OPENING_SPECIALIST, knobs, TpeSettings::default()), design })
    }

    /// How many trials open a study: a third of its budget, at least 2 and at most 10 (Optuna's
    /// TPE draws its first 10 at random), and none for a single search.
    pub fn length(searches: usize, max_trials: u64) -> u64 {
        if searches < 2 { 0 } else { (max_trials / 3).clamp(2, 10) }
    }

    /// The number of opening trials.
    pub fn trials(&self) -> u64 {
        self.design.len() as u64
    }
}

/// `rows` cells of a Latin hypercube over `knobs` (in name order): each number's range is cut
/// into `rows` equal slices and every slice is some row's; a choice's options are dealt out as
/// evenly as `rows` allows.
fn latin_hypercube(knobs: &BTreeMap<String, KnobSpec>, rows: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<usize>> {
    let columns: Vec<Vec<usize>> = knobs
        .values()
        .map(|spec| {
            let mut column: Vec<usize> = match spec {
                KnobSpec::Choice(options) => {
                    let mut order: Vec<usize> = (0..options.len()).collect();
                    order.shuffle(rng);
                    (0..rows).map(|r| order[r % order.len()]).collect()
                }
                _ => (0..rows).collect(),
            };
            column.shuffle(rng);
            column
        })
        .collect();
    (0..rows).map(|r| columns.iter().map(|c| c[r]).collect()).collect()
}

#[async_trait::async_trait]
impl Specialist for Opening {
    fn name(&self) -> &str {
        OPENING_SPECIALIST
    }

    async fn propose(&self, request: ProposalRequest<'_>) -> Result<Proposal, ProposeError> {
        let mut rng = ChaCha8Rng::seed_from_u64(request.seed);
        let (values, risk) = match self.design.get(request.turn as usize) {
            Some(cell) => self.draws.explore_in(request.history, cell, self.design.len(), &mut rng),
            // Asked beyond its length (a study resumed with a larger budget): a plain draw.
            None => self.draws.explore(request.history, &mut rng),
        };
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
    async fn the_opening_covers_every_slice_of_each_knobs_range() {
        let knobs = BTreeMap::from([
            ("lr".to_string(), KnobSpec::LogFloat([1e-4, 1e-1])),
            ("mix".to_string(), KnobSpec::Float([0.0, 1.0])),
            ("steps".to_string(), KnobSpec::Int([100, 1099])),
            (
                "loss_on".to_string(),
                KnobSpec::Choice(vec![KnobValue::Text("all".into()), KnobValue::Text("answer".into())]),
            ),
        ]);
        let objective = Objective { metric: "acc".into(), direction: Direction::Maximize };
        let view = LineageView::build("s", &objective, &[], Some(OPENING_SPECIALIST));
        let best = KnobValues::new();
        let mut designs = Vec::new();
        for study_seed in [1, 2] {
            let opening = Opening::new(knobs.clone(), 2, 16, study_seed).unwrap();
            assert_eq!(opening.trials(), 5);
            let mut draws = Vec::new();
            for turn in 0..opening.trials() {
                let request = ProposalRequest {
                    seed: 100 + turn,
                    turn,
                    view: &view,
                    best_knobs: &best,
                    history: &[],
                    bench: None,
                };
                let proposal = opening.propose(request).await.unwrap();
                assert_eq!(proposal.specialist, OPENING_SPECIALIST);
                assert!(proposal.hypothesis.starts_with("every search knob at random: "), "{}", proposal.hypothesis);
                let Edit::Knobs { values } = proposal.edit else { panic!("a knob edit") };
                assert_eq!(values.keys().collect::<Vec<_>>(), knobs.keys().collect::<Vec<_>>());
                assert!(values.iter().all(|(k, v)| knobs[k].admits(v)), "{values:?}");
                draws.push(values);
            }
            // Which fifth of its range each trial's value lies in: every fifth, once.
            let fifths = |knob: &str, at: &dyn Fn(f64) -> f64| {
                let mut got: Vec<usize> = draws
                    .iter()
                    .map(|d| match &d[knob] {
                        KnobValue::Float(x) => (at(*x) * 5.0).floor() as usize,
                        KnobValue::Int(i) => (at(*i as f64) * 5.0).floor() as usize,
                        other => panic!("{other:?}"),
                    })
                    .collect();
                got.sort();
                got
            };
            assert_eq!(fifths("lr", &|x| (x.log10() + 4.0) / 3.0), vec![0, 1, 2, 3, 4], "{draws:?}");
            assert_eq!(fifths("mix", &|x| x), vec![0, 1, 2, 3, 4], "{draws:?}");
            assert_eq!(fifths("steps", &|x| (x - 100.0) / 1000.0), vec![0, 1, 2, 3, 4], "{draws:?}");
            let answers = draws.iter().filter(|d| d["loss_on"] == KnobValue::Text("answer".into())).count();
            assert!(answers == 2 || answers == 3, "the options are dealt evenly: {draws:?}");
            designs.push(opening.design);
        }
        assert_ne!(designs[0], designs[1], "each study lays its opening out afresh");
        assert!(Opening::new(BTreeMap::new(), 3, 16, 1).is_none());
    }
}
