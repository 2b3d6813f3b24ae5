use super::*;
use crate::{RandomSearch, sample};
use postdoc_core::Usage;
use proptest::prelude::*;
use rand::Rng;

fn knobs() -> BTreeMap<String, KnobSpec> {
    BTreeMap::from([
        ("lr".to_string(), KnobSpec::LogFloat([1e-4, 1.0])),
        ("width".to_string(), KnobSpec::Int([1, 64])),
        (
            "act".to_string(),
            KnobSpec::Choice(["relu", "tanh", "gelu"].iter().map(|s| KnobValue::Text(s.to_string())).collect()),
        ),
    ])
}

fn num(v: &KnobValues, k: &str) -> f64 {
    match v[k] {
        KnobValue::Float(x) => x,
        KnobValue::Int(i) => i as f64,
        _ => panic!("{k} is not a number"),
    }
}

/// A recipe in miniature: best at lr 0.01, width 54, gelu; too wide is `size_blocked`, too
/// fast a learning rate `crash`es. The optimum sits by the size cap, as it does in practice.
fn recipe(v: &KnobValues) -> Observation {
    let (lr, width) = (num(v, "lr"), num(v, "width"));
    let label = if width > 56.0 {
        Label::SizeBlocked
    } else if lr > 0.3 {
        Label::Crash
    } else {
        Label::Discard
    };
    let gain = (!label.is_failure()).then(|| {
        let bonus = if v["act"] == KnobValue::Text("gelu".into()) { 0.3 } else { 0.0 };
        -((lr.log10() + 2.0).powi(2) + ((width - 54.0) / 20.0).powi(2)) + bonus
    });
    // The artifact grows with the width; the harness measures it on every run.
    let usage = Usage { artifact: Some(Share { used: width / 56.5, at_least: false }), train_time: None };
    Observation { knobs: v.clone(), gain, label, usage }
}

/// `trials` proposals in a row, each seeing all the earlier outcomes.
fn study(propose: impl Fn(&[Observation], u64) -> KnobValues, trials: usize, seed: u64) -> Vec<Observation> {
    let mut history = Vec::new();
    for i in 0..trials {
        let values = propose(&history, seed.wrapping_mul(1000).wrapping_add(i as u64));
        history.push(recipe(&values));
    }
    history
}

fn tpe_study(trials: usize, seed: u64) -> Vec<Observation> {
    let tpe = Tpe::new("s", knobs(), TpeSettings::default());
    study(
        |h, s| tpe.suggest(h, &KnobValues::new(), &KnobValues::new(), &mut ChaCha8Rng::seed_from_u64(s)).0,
        trials,
        seed,
    )
}

/// The same study with the harness's measurements hidden: only labels and scores to learn from.
fn blind_tpe_study(trials: usize, seed: u64) -> Vec<Observation> {
    let tpe = Tpe::new("s", knobs(), TpeSettings::default());
    let mut history: Vec<Observation> = Vec::new();
    for i in 0..trials {
        let blind: Vec<Observation> =
            history.iter().map(|o| Observation { usage: Usage::default(), ..o.clone() }).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(1000).wrapping_add(i as u64));
        history.push(recipe(&tpe.suggest(&blind, &KnobValues::new(), &KnobValues::new(), &mut rng).0));
    }
    history
}

fn random_study(trials: usize, seed: u64) -> Vec<Observation> {
    let specs = knobs();
    study(
        |_, s| {
            let mut rng = ChaCha8Rng::seed_from_u64(s);
            specs.iter().map(|(k, spec)| (k.clone(), sample(spec, &mut rng))).collect()
        },
        trials,
        seed,
    )
}

fn best(h: &[Observation]) -> f64 {
    h.iter().filter_map(|o| o.gain).fold(f64::NEG_INFINITY, f64::max)
}

fn failures(h: &[Observation]) -> usize {
    h.iter().filter(|o| o.label.is_failure()).count()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

#[test]
fn finds_better_recipes_than_random_search_with_the_same_budget() {
    let seeds = 0..9u64;
    let tpe = median(seeds.clone().map(|s| best(&tpe_study(40, s))).collect());
    let random = median(seeds.map(|s| best(&random_study(40, s))).collect());
    eprintln!("median best after 40 trials: tpe {tpe:.3}, random {random:.3}");
    // The optimum is 0.3; random search's median after 40 trials is well below it.
    assert!(tpe > random + 0.1, "tpe {tpe:.3} vs random {random:.3}");
    assert!(tpe > 0.1, "tpe {tpe:.3}");
}

#[test]
fn kernels_narrow_where_good_trials_crowd() {
    let knobs = BTreeMap::from([("x".to_string(), KnobSpec::Float([0.0, 1.0]))]);
    let space = Space::new(&knobs);
    // Ten trials crowd about 0.5; two lie far out.
    let mut xs: Vec<f64> = (0..10).map(|i| 0.5 + 0.01 * i as f64).collect();
    xs.extend([0.1, 0.95]);
    let points: Vec<Vec<f64>> = xs.iter().map(|x| vec![*x]).collect();
    let refs: Vec<&[f64]> = points.iter().map(|p| p.as_slice()).collect();
    let widths = gap_widths(&space, &refs);
    let (least, most) = (1.0 / 14.0, bandwidth(12, 1));
    assert!(least < most);
    for (x, w) in xs.iter().zip(&widths) {
        // Beside a wide gap a kernel is as broad as one width for all would make it; in the
        // crowd, as narrow as the clip allows.
        let expected = if [0.1, 0.5, 0.59, 0.95].contains(x) { most } else { least };
        assert!((w[0] - expected).abs() < 1e-9, "width at {x}: {} (expected {expected})", w[0]);
    }
    // Gaps between the two bounds are followed.
    let even: Vec<Vec<f64>> = (0..15).map(|i| vec![0.07 * i as f64]).collect();
    let refs: Vec<&[f64]> = even.iter().map(|p| p.as_slice()).collect();
    for w in gap_widths(&space, &refs) {
        assert!((w[0] - 0.07).abs() < 1e-9, "{w:?} between {} and {}", 1.0 / 17.0, bandwidth(15, 1));
    }
}

#[test]
fn learns_from_failures_and_wastes_far_fewer_trials() {
    let seeds = 0..9u64;
    // After the first 10 trials, how many of the next 30 fail.
    let tpe: usize = seeds.clone().map(|s| failures(&tpe_study(40, s)[10..])).sum();
    let random: usize = seeds.map(|s| failures(&random_study(40, s)[10..])).sum();
    eprintln!("failures after the 10th trial: tpe {tpe}, random {random}");
    assert!(2 * tpe <= random, "failures after the 10th trial: tpe {tpe}, random {random} (of 270 each)");
}

#[test]
fn measured_sizes_teach_the_cap_before_it_is_crossed() {
    let size_blocked = |h: Vec<Observation>| h.iter().filter(|o| o.label == Label::SizeBlocked).count();
    let seeds = 0..9u64;
    let measured: usize = seeds.clone().map(|s| size_blocked(tpe_study(40, s))).sum();
    let blind: usize = seeds.clone().map(|s| size_blocked(blind_tpe_study(40, s))).sum();
    eprintln!("size_blocked in 9 studies of 40: with the sizes {measured}, from labels alone {blind}");
    assert!(2 * measured <= blind, "with the sizes {measured}, from labels alone {blind}");
    // And it does not buy safety by staying small: its best is no worse.
    let best_of =
        |study: fn(usize, u64) -> Vec<Observation>| median(seeds.clone().map(|s| best(&study(40, s))).collect());
    let (m, b) = (best_of(tpe_study), best_of(blind_tpe_study));
    assert!(m >= b - 0.05, "median best with the sizes {m:.3}, from labels alone {b:.3}");
}

/// A run's seconds are its width times its steps, and the steps are another specialist's knob.
/// The study has mostly run 1,000 steps, where every width fits; the best recipe now runs 8,000,
/// where widths above 12 overrun.
#[test]
fn caps_are_judged_on_the_recipe_the_proposal_will_run() {
    let steps_spec = BTreeMap::from([("steps".to_string(), KnobSpec::Int([100, 10_000]))]);
    let trial = |lr: f64, width: i64, steps: i64| {
        let knobs = KnobValues::from([
            ("lr".to_string(), KnobValue::Float(lr)),
            ("width".to_string(), KnobValue::Int(width)),
            ("act".to_string(), KnobValue::Text("gelu".into())),
            ("steps".to_string(), KnobValue::Int(steps)),
        ]);
        let used = (width * steps) as f64 / 100_000.0;
        let label = if used > 1.0 { Label::TrainOverrun } else { Label::Discard };
        // Wider trains better, as far as the time allows.
        let gain = (!label.is_failure()).then(|| -(lr.log10() + 2.0).powi(2) + width as f64 / 64.0);
        let usage = Usage { artifact: None, train_time: Some(Share { used: used.min(1.0), at_least: used > 1.0 }) };
        Observation { knobs, gain, label, usage }
    };
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut history: Vec<Observation> =
        (0..12).map(|_| trial(10f64.powf(rng.random_range(-3.0..-1.0)), rng.random_range(1..=64), 1000)).collect();
    history.extend([trial(0.01, 2, 8000), trial(0.01, 4, 8000), trial(0.01, 6, 8000)]);
    let steps = |n: i64| KnobValues::from([("steps".to_string(), KnobValue::Int(n))]);
    // The widths 50 proposals choose on the recipe of `n` steps.
    let widths = |tpe: &Tpe, n: i64| -> Vec<f64> {
        (0..50u64)
            .map(|seed| {
                let (values, _) =
                    tpe.suggest(&history, &KnobValues::new(), &steps(n), &mut ChaCha8Rng::seed_from_u64(seed));
                num(&values, "width")
            })
            .collect()
    };
    let within_the_cap = |widths: Vec<f64>| widths.iter().filter(|w| *w * 8000.0 <= 100_000.0).count();
    let knowing_tpe = Tpe::new("model", knobs(), TpeSettings::default()).with_others(steps_spec);
    let knowing = within_the_cap(widths(&knowing_tpe, 8000));
    let alone = within_the_cap(widths(&Tpe::new("model", knobs(), TpeSettings::default()), 8000));
    eprintln!("proposals within the time cap at 8,000 steps, of 50: knowing the steps {knowing}, alone {alone}");
    assert!(knowing >= 40, "knowing the steps: {knowing} of 50 within the cap");
    assert!(alone < 25, "its own knobs alone: {alone} of 50 within the cap");
    // On the recipe of 1,000 steps, the wide models are safe again.
    let wide = widths(&knowing_tpe, 1000).iter().filter(|w| **w > 12.0).count();
    assert!(wide >= 25, "at 1,000 steps only {wide} of 50 proposals were wider than 12");
}

/// One trial that failed is not evidence against each of its knob values alone; the same value
/// of one knob failing under different settings of the others is.
#[test]
fn one_failure_is_blamed_on_its_knobs_together_and_repeated_ones_on_the_knob_they_share() {
    let space = Space::new(&knobs());
    let point = |lr: f64, width: i64, act: &str| {
        let values = KnobValues::from([
            ("lr".to_string(), KnobValue::Float(lr)),
            ("width".to_string(), KnobValue::Int(width)),
            ("act".to_string(), KnobValue::Text(act.into())),
        ]);
        space.encode(&values).expect("in range")
    };
    let completed = [
        point(1e-3, 10, "relu"),
        point(3e-3, 20, "relu"),
        point(1e-2, 30, "tanh"),
        point(3e-2, 16, "relu"),
        point(5e-3, 40, "tanh"),
        point(2e-3, 8, "relu"),
        point(8e-3, 36, "relu"),
        point(1.5e-3, 14, "tanh"),
    ];
    let completed: Vec<&[f64]> = completed.iter().map(|p| p.as_slice()).collect();
    let risk = |failed: &[Vec<f64>], x: &[f64]| {
        let failed: Vec<(&[f64], Label)> = failed.iter().map(|p| (p.as_slice(), Label::GateMiss)).collect();
        Classifier::new(&space, &failed, &completed).fail(x)
    };

    // A trial that changed every knob at once missed its gate.
    let once = [point(2e-4, 60, "gelu")];
    // Its width, or its activation, on an otherwise proven recipe, is not likely to fail...
    let width_alone = risk(&once, &point(3e-3, 60, "relu"));
    let act_alone = risk(&once, &point(3e-3, 20, "gelu"));
    assert!(width_alone < 0.5 && act_alone < 0.5, "width alone {width_alone:.2}, act alone {act_alone:.2}");
    // ...while the trial itself stays the riskiest place.
    let itself = risk(&once, &once[0]);
    assert!(itself > width_alone.max(act_alone), "the failed setting {itself:.2}");

    // A learning rate that failed three times, whatever the width and activation were, is blamed.
    let thrice = [point(0.5, 60, "gelu"), point(0.6, 12, "relu"), point(0.45, 28, "tanh")];
    let fast = risk(&thrice, &point(0.5, 20, "relu"));
    let slow = risk(&thrice, &point(3e-3, 60, "gelu"));
    eprintln!(
        "one failure: width alone {width_alone:.2}, act alone {act_alone:.2}, itself {itself:.2}; three: {fast:.2}, {slow:.2}"
    );
    assert!(fast > 0.5, "a learning rate that failed three times: {fast:.2}");
    assert!(slow < 0.5, "the other knobs of those failures: {slow:.2}");
}

#[test]
fn says_how_risky_its_choice_is_once_trials_have_failed() {
    let tpe = Tpe::new("s", knobs(), TpeSettings::default());
    let history = (0..20).map(|s| tpe_study(12, s)).find(|h| failures(h) > 0).expect("the fixture needs a failure");
    let (_, note) = tpe.suggest(&history, &KnobValues::new(), &KnobValues::new(), &mut ChaCha8Rng::seed_from_u64(1));
    assert!(note.contains("predicted failure risk"), "{note}");
    let (_, first) = tpe.suggest(&[], &KnobValues::new(), &KnobValues::new(), &mut ChaCha8Rng::seed_from_u64(1));
    assert_eq!(first, "exploring (0 of 4 trials so far)");
}

#[test]
fn runs_stopped_early_count_towards_the_start() {
    let tpe = Tpe::new("s", knobs(), TpeSettings::default());
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let stopped = |rng: &mut ChaCha8Rng| Observation {
        knobs: knobs().iter().map(|(k, spec)| (k.clone(), sample(spec, rng))).collect(),
        gain: None,
        label: Label::Discard,
        usage: Usage::default(),
    };
    let mut history: Vec<Observation> = (0..4).map(|_| stopped(&mut rng)).collect();
    // Four trials, the start's worth, but nothing to model the good region on yet.
    let (_, note) = tpe.suggest(&history, &KnobValues::new(), &KnobValues::new(), &mut rng);
    assert_eq!(note, "exploring (no trial has a score yet)");
    history[0] = recipe(&history[0].knobs);
    assert!(history[0].gain.is_some(), "the fixture needs a scored trial");
    let (_, note) = tpe.suggest(&history, &KnobValues::new(), &KnobValues::new(), &mut rng);
    assert_eq!(note, "modelled on the best 1 of 1 scored trials and 3 stopped early");
}

#[test]
fn a_small_share_of_the_budget_shortens_the_random_start() {
    let start = |settings: TpeSettings| {
        let tpe = Tpe::new("s", knobs(), settings);
        tpe.suggest(&[], &KnobValues::new(), &KnobValues::new(), &mut ChaCha8Rng::seed_from_u64(1)).1
    };
    // Three knobs start with four random trials; a specialist expecting six trials of the
    // study spends half of them, three, at random; a large share changes nothing.
    assert_eq!(start(TpeSettings::default()), "exploring (0 of 4 trials so far)");
    assert_eq!(start(TpeSettings::with_share(6)), "exploring (0 of 3 trials so far)");
    assert_eq!(start(TpeSettings::with_share(2)), "exploring (0 of 2 trials so far)");
    assert_eq!(start(TpeSettings::with_share(40)), "exploring (0 of 4 trials so far)");
    // A start the researcher set is kept.
    assert_eq!(
        start(TpeSettings { startup: Some(9), ..TpeSettings::with_share(6) }),
        "exploring (0 of 9 trials so far)"
    );
    // And the search models after those three: the fourth proposal is no longer random.
    let tpe = Tpe::new("s", knobs(), TpeSettings::with_share(6));
    let history =
        study(|h, s| tpe.suggest(h, &KnobValues::new(), &KnobValues::new(), &mut ChaCha8Rng::seed_from_u64(s)).0, 3, 4);
    let (_, note) = tpe.suggest(&history, &KnobValues::new(), &KnobValues::new(), &mut ChaCha8Rng::seed_from_u64(9));
    assert!(note.starts_with("modelled on the best"), "{note}");
}

#[test]
fn a_search_that_has_not_beaten_the_starting_recipe_keeps_exploring() {
    let tpe = Tpe::new("s", knobs(), TpeSettings::with_share(6));
    let setting = |lr: f64, width: i64, act: &str| {
        KnobValues::from([
            ("lr".to_string(), KnobValue::Float(lr)),
            ("width".to_string(), KnobValue::Int(width)),
            ("act".to_string(), KnobValue::Text(act.into())),
        ])
    };
    let start = setting(1e-3, 20, "relu");
    // The starting recipe, and four changes of these knobs that all did worse.
    let mut history: Vec<Observation> =
        [setting(1e-3, 20, "relu"), setting(1e-4, 5, "relu"), setting(3e-4, 10, "tanh"), setting(2e-4, 8, "gelu")]
            .iter()
            .map(recipe)
            .collect();
    let far = |start: &KnobValues| {
        (0..200u64)
            .filter(|&seed| {
                let (values, _) =
                    tpe.suggest(&history, start, &KnobValues::new(), &mut ChaCha8Rng::seed_from_u64(seed));
                (num(&values, "lr").log10() + 3.0).abs() > 1.0
            })
            .count()
    };
    let (_, note) = tpe.suggest(&history, &start, &KnobValues::new(), &mut ChaCha8Rng::seed_from_u64(1));
    assert!(note.starts_with("exploring (no setting of these knobs has beaten the recipe's own yet)"), "{note}");
    // Refining the start would keep the learning rate within a factor of ten of it; exploring
    // draws it anywhere in its four decades.
    let (exploring, refining) = (far(&start), far(&KnobValues::new()));
    assert!(exploring > 50 && refining * 4 < exploring, "exploring {exploring}, refining {refining}");
    // Once a change does better, the search models on it.
    history.push(recipe(&setting(0.01, 50, "gelu")));
    let (_, note) = tpe.suggest(&history, &start, &KnobValues::new(), &mut ChaCha8Rng::seed_from_u64(1));
    assert!(note.starts_with("modelled on the best"), "{note}");
}

#[tokio::test]
async fn proposals_are_reproducible_and_name_their_strategy() {
    let tpe = Tpe::new("optimizer", knobs(), TpeSettings::default());
    let history = tpe_study(15, 5);
    let objective = postdoc_core::Objective { metric: "acc".into(), direction: postdoc_core::Direction::Maximize };
    let view = postdoc_core::LineageView::build("s", &objective, &[], Some("optimizer"));
    let best = history[0].knobs.clone();
    let req = |seed| ProposalRequest {
        seed,
        turn: 0,
        view: &view,
        best_knobs: &best,
        start_knobs: &best,
        recipe_knobs: &best,
        history: &history,
        bench: None,
    };
    let a = tpe.propose(req(1)).await.unwrap();
    assert_eq!(a, tpe.propose(req(1)).await.unwrap());
    assert_ne!(a.edit, tpe.propose(req(2)).await.unwrap().edit);
    assert!(a.hypothesis.starts_with("tpe: "), "{}", a.hypothesis);
    assert!(a.hypothesis.contains("modelled on the best"), "{}", a.hypothesis);
    // Random search proposes through the same interface.
    let r = RandomSearch::new("optimizer", knobs()).propose(req(1)).await.unwrap();
    assert!(r.hypothesis.starts_with("random search: "));
}

proptest! {
    /// Whatever the history (values out of range, missing knobs, any labels), suggestions stay
    /// inside every knob's range.
    #[test]
    fn suggestions_stay_in_range(
        seed in any::<u64>(),
        raw in proptest::collection::vec((-1.0f64..2.0, -10i64..80, 0usize..4, any::<bool>(), -5.0f64..5.0), 0..30),
    ) {
        let specs = knobs();
        let acts = ["relu", "tanh", "gelu", "swish"];
        let history: Vec<Observation> = raw
            .iter()
            .map(|(lr, w, a, failed, g)| Observation {
                knobs: KnobValues::from([
                    ("lr".to_string(), KnobValue::Float(*lr)),
                    ("width".to_string(), KnobValue::Int(*w)),
                    ("act".to_string(), KnobValue::Text(acts[*a].to_string())),
                ]),
                gain: (!failed).then_some(*g),
                label: if *failed { Label::TrainOverrun } else { Label::Discard },
                usage: Usage {
                    artifact: None,
                    train_time: Some(Share { used: (*lr).abs() + 0.01, at_least: *failed }),
                },
            })
            .collect();
        let tpe = Tpe::new("s", specs.clone(), TpeSettings::default());
        let (values, _) = tpe.suggest(&history, &KnobValues::new(), &KnobValues::new(), &mut ChaCha8Rng::seed_from_u64(seed));
        for (k, spec) in &specs {
            prop_assert!(spec.admits(&values[k]), "{k} = {:?} outside {spec:?}", values[k]);
        }
    }
}
