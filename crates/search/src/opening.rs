//! A study's opening: its first trials draw the knobs of several built-in searches together.
//!
//! Each specialist owns a few knobs and, on its own, starts its search with a few random draws
//! of them, every other knob held at the best recipe's values. With three specialists that is
//! three short starts, each learning one corner of the recipe, and a specialist whose first
//! draws land badly (a learning rate where nothing trains) loses its turns before its search
//! has learnt anything. The opening's trials each draw the knobs of several searches at once,
//! and every specialist's search learns from all of them, through its own knobs, before it
//! takes its first turn.
//!
//! An opening trial does not draw every search's knobs: each takes a different combination of
//! the searches, and the knobs of the others keep the recipe's values. The recipe's values are
//! the researcher's working settings, and a draw of every knob at once is rarely a working
//! recipe: on tiny-posttrain four in five such draws put enough reinforcement learning on top
//! of whatever else they drew to score nothing, which hid every good learning rate drawn with
//! them. Combinations keep a good draw of one search's knobs from being masked by a bad draw of
//! another's, and still draw several together where their knobs interact.

use crate::tpe::Slice;
use crate::{Tpe, TpeSettings, describe_change, knob_proposal};
use postdoc_core::{KnobSpec, OPENING_SPECIALIST, Proposal, ProposalRequest, ProposeError, Specialist};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// The knobs one built-in search owns, under its specialist's name.
#[derive(Debug, Clone)]
pub struct Search {
    pub name: String,
    pub knobs: BTreeMap<String, KnobSpec>,
}

/// Proposes the opening's trials. Each draws the knobs of a combination of the searches; for
/// each search, the trials that draw its knobs are a Latin hypercube over them, so that each
/// knob's range is covered slice by slice however few the trials are (five independent draws
/// of a learning rate miss its top fifth a third of the time; five cells of a Latin hypercube
/// never do). Within its cell each trial is drawn at random, avoiding where trials failed.
pub struct Opening {
    draws: Tpe,
    searches: Vec<Search>,
    /// For each opening trial, the searches whose knobs it draws, by index.
    drawn: Vec<Vec<usize>>,
    /// For each opening trial, for each knob in name order: the slice of its range (or the
    /// option) the trial draws from, `None` for a knob it keeps at the recipe's value.
    design: Vec<Vec<Option<Slice>>>,
}

impl Opening {
    /// The opening of a study of `max_trials` shared by `searches` (whose knobs do not
    /// overlap), laid out from the study's `seed`; `None` when there is nothing to open: a
    /// single search starts with random draws anyway.
    pub fn new(searches: Vec<Search>, max_trials: u64, seed: u64) -> Option<Opening> {
        let trials = Opening::length(searches.len(), max_trials) as usize;
        let knobs: BTreeMap<String, KnobSpec> = searches.iter().flat_map(|s| s.knobs.clone()).collect();
        if trials == 0 || knobs.is_empty() {
            return None;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let drawn = combinations(searches.len(), trials, &mut rng);
        let mut design = vec![vec![None; knobs.len()]; trials];
        for (s, search) in searches.iter().enumerate() {
            let rows: Vec<usize> = (0..trials).filter(|r| drawn[*r].contains(&s)).collect();
            let cells = latin_hypercube(&search.knobs, rows.len(), &mut rng);
            for (row, cell) in rows.iter().zip(cells) {
                for (name, slice) in search.knobs.keys().zip(cell) {
                    let column = knobs.keys().position(|k| k == name).expect("a knob of the union");
                    design[*row][column] = Some(slice);
                }
            }
        }
        Some(Opening { draws: Tpe::new(OPENING_SPECIALIST, knobs, TpeSettings::default()), searches, drawn, design })
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

/// For each of `rows` trials, the searches (of `searches`) it draws: the non-empty
/// combinations in a random order, dealt out again in a new order when the rows outnumber
/// them, so that every search is drawn about as often as every other and in different company.
fn combinations(searches: usize, rows: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<usize>> {
    // Beyond a dozen searches there are too many combinations to list: each trial draws each
    // search with even odds, and again if it drew none.
    if searches > 12 {
        return (0..rows)
            .map(|_| {
                loop {
                    let drawn: Vec<usize> = (0..searches).filter(|_| rng.random_bool(0.5)).collect();
                    if !drawn.is_empty() {
                        break drawn;
                    }
                }
            })
            .collect();
    }
    let members = |mask: u64| (0..searches).filter(|s| (mask >> s) & 1 == 1).collect::<Vec<_>>();
    let all: Vec<u64> = (1..1u64 << searches).collect();
    let mut dealt = Vec::with_capacity(rows);
    while dealt.len() < rows {
        let mut round = all.clone();
        round.shuffle(rng);
        dealt.extend(round.into_iter().take(rows - dealt.len()).map(members));
    }
    dealt
}

/// `rows` cells of a Latin hypercube over `knobs` (in name order): each number's range is cut
/// into `rows` equal slices and every slice is some row's; a choice's options are dealt out as
/// evenly as `rows` allows.
fn latin_hypercube(knobs: &BTreeMap<String, KnobSpec>, rows: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<Slice>> {
    let columns: Vec<Vec<Slice>> = knobs
        .values()
        .map(|spec| {
            let mut column: Vec<Slice> = match spec {
                KnobSpec::Choice(options) => {
                    let mut order: Vec<usize> = (0..options.len()).collect();
                    order.shuffle(rng);
                    (0..rows).map(|r| Slice { index: order[r % order.len()], of: options.len() }).collect()
                }
                _ => (0..rows).map(|r| Slice { index: r, of: rows }).collect(),
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
        let turn = request.turn as usize;
        let (values, risk) = match self.design.get(turn) {
            Some(cell) => self.draws.explore_in(request.history, cell, request.best_knobs, &mut rng),
            // Asked beyond its length (a study resumed with a larger budget): a plain draw.
            None => self.draws.explore(request.history, &mut rng),
        };
        let whose = match self.drawn.get(turn) {
            Some(drawn) if drawn.len() < self.searches.len() => {
                let names: Vec<&str> = drawn.iter().map(|s| self.searches[*s].name.as_str()).collect();
                format!("the knobs of {} at random", names.join(" and "))
            }
            _ => "every search knob at random".to_string(),
        };
        let change = describe_change(request.best_knobs, &values);
        // Shown after the specialist's name ("opening: the knobs of optimizer at random: lr ...").
        let hypothesis = match risk {
            Some(risk) => format!("{whose}: {change} ({risk})"),
            None => format!("{whose}: {change}"),
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

    #[test]
    fn many_searches_are_drawn_at_random_but_never_none() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let rows = combinations(70, 10, &mut rng);
        assert_eq!(rows.len(), 10);
        assert!(rows.iter().all(|r| !r.is_empty() && r.iter().all(|s| *s < 70)), "{rows:?}");
        assert!(rows.iter().any(|r| r.iter().any(|s| *s >= 64)), "every search can be drawn: {rows:?}");
    }

    fn search(name: &str, knobs: &[(&str, KnobSpec)]) -> Search {
        Search { name: name.into(), knobs: knobs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect() }
    }

    #[tokio::test]
    async fn the_opening_draws_combinations_of_searches_and_covers_each_knobs_range() {
        let searches = vec![
            search("optimizer", &[("lr", KnobSpec::LogFloat([1e-4, 1e-1])), ("steps", KnobSpec::Int([100, 1099]))]),
            search(
                "data",
                &[
                    ("mix", KnobSpec::Float([0.0, 1.0])),
                    (
                        "loss_on",
                        KnobSpec::Choice(vec![KnobValue::Text("all".into()), KnobValue::Text("answer".into())]),
                    ),
                ],
            ),
        ];
        let objective = Objective { metric: "acc".into(), direction: Direction::Maximize };
        let view = LineageView::build("s", &objective, &[], Some(OPENING_SPECIALIST));
        let best = KnobValues::from([
            ("lr".to_string(), KnobValue::Float(1e-3)),
            ("steps".to_string(), KnobValue::Int(500)),
            ("mix".to_string(), KnobValue::Float(0.5)),
            ("loss_on".to_string(), KnobValue::Text("all".into())),
        ]);
        let mut designs = Vec::new();
        for study_seed in [1, 2] {
            let opening = Opening::new(searches.clone(), 16, study_seed).unwrap();
            assert_eq!(opening.trials(), 5);
            let mut draws = Vec::new();
            for turn in 0..opening.trials() {
                let request = ProposalRequest {
                    seed: 100 + turn,
                    turn,
                    view: &view,
                    best_knobs: &best,
                    start_knobs: &best,
                    recipe_knobs: &best,
                    history: &[],
                    bench: None,
                };
                let proposal = opening.propose(request).await.unwrap();
                assert_eq!(proposal.specialist, OPENING_SPECIALIST);
                let Edit::Knobs { values } = proposal.edit else { panic!("a knob edit") };
                assert!(
                    values.iter().all(|(k, v)| best.contains_key(k)
                        && searches.iter().any(|s| s.knobs.get(k).is_some_and(|spec| spec.admits(v)))),
                    "{values:?}"
                );
                // A trial draws all of a search's knobs or none of them, and says whose.
                let drawn: Vec<&Search> =
                    searches.iter().filter(|s| s.knobs.keys().any(|k| values.contains_key(k))).collect();
                assert!(!drawn.is_empty(), "{values:?}");
                for s in &drawn {
                    assert!(s.knobs.keys().all(|k| values.contains_key(k)), "{values:?}");
                }
                let whose = if drawn.len() == searches.len() {
                    "every search knob at random: ".to_string()
                } else {
                    format!("the knobs of {} at random: ", drawn[0].name)
                };
                assert!(proposal.hypothesis.starts_with(&whose), "{}", proposal.hypothesis);
                draws.push(values);
            }
            // Two searches make three combinations; five trials deal them out twice over.
            let alone = |name: &str| {
                draws
                    .iter()
                    .filter(|d| {
                        d.len() == 2
                            && searches.iter().any(|s| s.name == name && s.knobs.keys().all(|k| d.contains_key(k)))
                    })
                    .count()
            };
            assert!(
                [alone("optimizer"), alone("data"), draws.iter().filter(|d| d.len() == 4).count()]
                    .iter()
                    .all(|n| (1..=2).contains(n)),
                "{draws:?}"
            );
            // Of the trials that draw a knob, one lies in each slice of its range.
            let slices = |knob: &str, at: &dyn Fn(f64) -> f64| {
                let got: Vec<f64> = draws
                    .iter()
                    .filter_map(|d| match d.get(knob)? {
                        KnobValue::Float(x) => Some(at(*x)),
                        KnobValue::Int(i) => Some(at(*i as f64)),
                        other => panic!("{other:?}"),
                    })
                    .collect();
                let mut which: Vec<usize> = got.iter().map(|x| (x * got.len() as f64).floor() as usize).collect();
                which.sort();
                (which, got.len())
            };
            // (Whole numbers are left out: rounding can carry a value across a slice's edge.)
            let checks: [(&str, &dyn Fn(f64) -> f64); 2] = [("lr", &|x| (x.log10() + 4.0) / 3.0), ("mix", &|x| x)];
            for (knob, at) in checks {
                let (which, n) = slices(knob, at);
                assert!(n >= 3, "{knob} is drawn in most trials: {draws:?}");
                assert_eq!(which, (0..n).collect::<Vec<_>>(), "{knob}: {draws:?}");
            }
            designs.push(opening.design);
        }
        assert_ne!(designs[0], designs[1], "each study lays its opening out afresh");
        assert!(Opening::new(Vec::new(), 16, 1).is_none());
        assert!(Opening::new(vec![searches[0].clone()], 16, 1).is_none(), "a single search opens on its own");
    }
}
