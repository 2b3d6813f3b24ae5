//! The built-in search on standard test functions, in process: many seeds in a second, for
//! judging a change to the search before the slower side-by-side benchmark through real trials
//! (`bench/optuna_compare.py`).
//!
//!     cargo run --release -p postdoc-search --example synthetic -- [seeds] [trials]
//!
//! Each study starts from the recipe's values (as the bench recipes do), proposes `trials`
//! points one at a time and prints, per function, the median and quartiles of the best value
//! found (both functions are minimised).

use postdoc_core::{KnobSpec, KnobValue, KnobValues, Label, Observation, Usage};
use postdoc_search::{Tpe, TpeSettings};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

struct Function {
    name: &'static str,
    ranges: Vec<[f64; 2]>,
    start: Vec<f64>,
    value: fn(&[f64]) -> f64,
}

fn branin(x: &[f64]) -> f64 {
    let (x1, x2) = (x[0], x[1]);
    let pi = std::f64::consts::PI;
    let (b, c) = (5.1 / (4.0 * pi * pi), 5.0 / pi);
    (x2 - b * x1 * x1 + c * x1 - 6.0).powi(2) + 10.0 * (1.0 - 1.0 / (8.0 * pi)) * x1.cos() + 10.0
}

fn hartmann6(x: &[f64]) -> f64 {
    const ALPHA: [f64; 4] = [1.0, 1.2, 3.0, 3.2];
    const A: [[f64; 6]; 4] = [
        [10.0, 3.0, 17.0, 3.5, 1.7, 8.0],
        [0.05, 10.0, 17.0, 0.1, 8.0, 14.0],
        [3.0, 3.5, 1.7, 10.0, 17.0, 8.0],
        [17.0, 8.0, 0.05, 10.0, 0.1, 14.0],
    ];
    const P: [[f64; 6]; 4] = [
        [0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886],
        [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
        [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650],
        [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381],
    ];
    -(0..4).map(|i| ALPHA[i] * (-(0..6).map(|j| A[i][j] * (x[j] - P[i][j]).powi(2)).sum::<f64>()).exp()).sum::<f64>()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seeds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(100);
    let trials: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(40);
    let functions = [
        Function { name: "branin", ranges: vec![[-5.0, 10.0], [0.0, 15.0]], start: vec![2.5, 7.5], value: branin },
        Function { name: "hartmann6", ranges: vec![[0.0, 1.0]; 6], start: vec![0.5; 6], value: hartmann6 },
    ];
    for f in &functions {
        let names: Vec<String> = (1..=f.ranges.len()).map(|i| format!("x{i}")).collect();
        let knobs: BTreeMap<String, KnobSpec> =
            names.iter().zip(&f.ranges).map(|(n, r)| (n.clone(), KnobSpec::Float(*r))).collect();
        let tpe = Tpe::new("point", knobs, TpeSettings::with_share(trials));
        let values =
            |x: &[f64]| -> KnobValues { names.iter().zip(x).map(|(n, v)| (n.clone(), KnobValue::Float(*v))).collect() };
        let point = |k: &KnobValues| -> Vec<f64> {
            names.iter().map(|n| if let Some(KnobValue::Float(v)) = k.get(n) { *v } else { f64::NAN }).collect()
        };
        let mut bests: Vec<f64> = (0..seeds)
            .map(|seed| {
                let start = values(&f.start);
                let observe = |k: KnobValues, label| {
                    let y = (f.value)(&point(&k));
                    (y, Observation { knobs: k, gain: Some(-y), label, usage: Usage::default() })
                };
                let (mut best, first) = observe(start.clone(), Label::Keep);
                let mut best_knobs = start.clone();
                let mut history = vec![first];
                for t in 0..trials {
                    let mut rng = ChaCha8Rng::seed_from_u64(seed * 1_000_003 + t as u64);
                    let (proposed, _) = tpe.suggest(&history, &start, &best_knobs, &mut rng);
                    let (y, mut o) = observe(proposed.clone(), Label::Discard);
                    if y < best {
                        best = y;
                        best_knobs = proposed;
                        o.label = Label::Keep;
                    }
                    history.push(o);
                }
                best
            })
            .collect();
        bests.sort_by(f64::total_cmp);
        // Quantiles between order statistics, as Python's `statistics.quantiles(method="inclusive")`.
        let q = |p: f64| {
            let h = (bests.len() - 1) as f64 * p;
            let i = h.floor() as usize;
            bests[i] + h.fract() * (bests[(i + 1).min(bests.len() - 1)] - bests[i])
        };
        println!(
            "{:<10} {seeds} seeds, {trials} trials: median best {:.4} (quartiles {:.4}, {:.4}), mean {:.4}",
            f.name,
            q(0.5),
            q(0.25),
            q(0.75),
            bests.iter().sum::<f64>() / bests.len() as f64
        );
    }
}
