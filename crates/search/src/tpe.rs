//! Tree-structured Parzen estimation over a specialist's knobs, aware of failures.
//!
//! The specialist's earlier trials are split into a good group (the best-scoring fraction) and a
//! bad group (the rest, with every failure and every run stopped early). Each group becomes a
//! density over the knob space, a mixture of one kernel per trial and a uniform prior, taken
//! jointly over all knobs (multivariate), so knobs that only work together are learned
//! together. Candidates are drawn from the good density and the one maximising
//! `l(x) / g(x) * (1 - p_fail(x))` is proposed. `p_fail` combines two models: where the harness
//! measured how much of a cap each trial used (artifact bytes, training seconds), a regression of
//! that share on the knobs learns where the cap lies, before any trial crosses it, and lets the
//! search go close to it but not over (the best recipes are often just under a cap); every other
//! failure (`crash`, `gate_miss`, a cap not yet learnt) comes from a kernel classifier of failed
//! against completed trials. The search steers away from both and says how risky its choice is.
//!
//! A cap depends on the whole recipe, not on one specialist's knobs: a run's seconds are its
//! steps times the work of a step, and the steps may be another specialist's knob. So the caps
//! are learned over every knob of the recipe the trials measured, each trial on its own, and a
//! candidate is judged on the recipe it will run: its own knobs with the others at the current
//! best's values. Learned over its own knobs alone, the model's search on tiny-golf proposed
//! wider models on top of a best that trained for 17,000 steps, and they overran the time cap.
//!
//! All densities live in the unit cube (each float knob scaled to [0, 1], log-floats in log
//! space, integers as cells of equal width, choices as categories), so one bandwidth rule
//! serves every knob.

use crate::{describe_change, knob_proposal};
use limits::Limit;
use postdoc_core::{
    KnobSpec, KnobValue, KnobValues, Label, Observation, Proposal, ProposalRequest, ProposeError, Share, Specialist,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// How the search trades exploration for exploitation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TpeSettings {
    /// Trials drawn at random (avoiding known failures) before the densities are trusted; `None`
    /// picks one more than the number of knobs, between 3 and 10, and at most half of `share`.
    pub startup: Option<usize>,
    /// How many trials this specialist can expect of the study's budget (its share when several
    /// specialists split it), if known. A start as long as the whole share would leave the
    /// search random from first to last.
    pub share: Option<usize>,
    /// Candidates drawn from the good density per proposal.
    pub candidates: usize,
    /// Share of scored trials in the good group (at least one, at most `max_good`).
    pub gamma: f64,
    pub max_good: usize,
}

impl Default for TpeSettings {
    fn default() -> TpeSettings {
        TpeSettings { startup: None, share: None, candidates: 24, gamma: 0.15, max_good: 25 }
    }
}

impl TpeSettings {
    /// The settings for a specialist that can expect `share` of the study's trials.
    pub fn with_share(share: usize) -> TpeSettings {
        TpeSettings { share: Some(share), ..TpeSettings::default() }
    }

    /// The random start's length over `knobs` knobs.
    pub fn startup_over(&self, knobs: usize) -> usize {
        if let Some(startup) = self.startup {
            return startup;
        }
        let by_knobs = (knobs + 1).clamp(3, 10);
        match self.share {
            Some(share) => by_knobs.min((share / 2).max(2)),
            None => by_knobs,
        }
    }
}

/// Where a trial of a Latin hypercube draws one knob: in slice `index` of `of` equal slices of
/// its range, or for a choice, the option `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slice {
    pub index: usize,
    pub of: usize,
}

pub struct Tpe {
    name: String,
    knobs: BTreeMap<String, KnobSpec>,
    /// The recipe's other knobs (other specialists own them), which the caps depend on too.
    others: BTreeMap<String, KnobSpec>,
    settings: TpeSettings,
}

impl Tpe {
    pub fn new(name: impl Into<String>, knobs: BTreeMap<String, KnobSpec>, settings: TpeSettings) -> Tpe {
        Tpe { name: name.into(), knobs, others: BTreeMap::new(), settings }
    }

    /// The same search, knowing the recipe's other knobs: its caps are then learned over them
    /// too, from the values the trials of its history had for them.
    pub fn with_others(mut self, others: BTreeMap<String, KnobSpec>) -> Tpe {
        self.others = others.into_iter().filter(|(name, _)| !self.knobs.contains_key(name)).collect();
        self
    }

    /// The next knob values and a one-line account of why. `history` holds one observation per
    /// trial, with its values of this search's knobs and, where known, of the recipe's others;
    /// `start` the knobs' values in the recipe the study started from and `recipe` every knob's
    /// value in the recipe the proposal builds on (each empty when unknown).
    pub fn suggest(
        &self,
        history: &[Observation],
        start: &KnobValues,
        recipe: &KnobValues,
        rng: &mut impl Rng,
    ) -> (KnobValues, String) {
        let space = Space::new(&self.knobs);
        let start = space.encode(start);
        let settings = self.settings_of(history);
        let points = space.points(&settings);
        let completed = points.iter().filter(|(_, o)| !o.label.is_failure()).count();
        let frame = Frame::new(&self.knobs, &self.others, recipe);
        let risk = Risk::new(&space, &points, &frame, history);

        let mut scored: Vec<(&[f64], f64)> = points
            .iter()
            .filter(|(_, o)| !o.label.is_failure())
            .filter_map(|(p, o)| Some((p.as_slice(), o.gain?)))
            .collect();
        let startup = self.settings.startup_over(space.dims.len());
        let candidates = self.settings.candidates.max(1);
        // Every finished trial counts towards the start: a run stopped early is evidence of a
        // region that is behind, a failure of one not to go to. Counting only scored trials (as
        // Optuna does) keeps a study whose runs often fail or stop sampling blindly throughout.
        let observed = points.len();

        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        // While the best setting of these knobs is still the one the study started from, the
        // good group is that setting alone, and proposals drawn about it barely move the score
        // (on tiny-posttrain, learning rates a tenth either side of a weak starting one). The
        // search goes on exploring until one of its settings does better.
        let unbeaten = start.is_some() && scored.first().map(|(p, _)| *p) == start.as_deref();
        let (chosen, how) = if observed < startup || scored.is_empty() || unbeaten {
            let how = if observed < startup {
                format!("exploring ({observed} of {startup} trials so far)")
            } else if scored.is_empty() {
                "exploring (no trial has a score yet)".to_string()
            } else {
                "exploring (no setting of these knobs has beaten the recipe's own yet)".to_string()
            };
            (explore(risk.as_ref(), candidates, rng, |rng| space.uniform(rng)), how)
        } else {
            let n_good = ((self.settings.gamma * scored.len() as f64).ceil() as usize).clamp(1, self.settings.max_good);
            let good: Vec<&[f64]> = scored[..n_good].iter().map(|(p, _)| *p).collect();
            let mut bad: Vec<&[f64]> = scored[n_good..].iter().map(|(p, _)| *p).collect();
            // Failures and trials without a score are evidence of where not to go.
            bad.extend(
                points.iter().filter(|(_, o)| o.label.is_failure() || o.gain.is_none()).map(|(p, _)| p.as_slice()),
            );
            let l = Parzen::new(&space, &good);
            let g = Parzen::new(&space, &bad);
            let mut draws: Vec<Vec<f64>> = (0..candidates).map(|_| l.sample(rng)).collect();
            let mut fails = chances_of_failure(risk.as_ref(), &draws);
            // When every draw about the good trials would fail on the recipe it will run (the
            // other knobs moved and put the good region over a cap), the search looks further
            // afield before it settles for a likely failure.
            if fails.iter().all(|p| *p > 0.5) {
                let afield: Vec<Vec<f64>> = (0..candidates).map(|_| space.uniform(rng)).collect();
                fails.extend(chances_of_failure(risk.as_ref(), &afield));
                draws.extend(afield);
            }
            // Candidates more likely to fail than not are passed over while any other remains;
            // when none does, the least likely to fail is taken (among near-certain failures the
            // density ratio would pick the one most like the good trials).
            let any_safe = fails.iter().any(|p| *p <= 0.5);
            let best = if any_safe {
                index_of_max(draws.iter().zip(&fails).map(|(x, p)| {
                    if *p > 0.5 {
                        return f64::NEG_INFINITY;
                    }
                    l.log_density(x) - g.log_density(x) + (1.0 - p).max(1e-9).ln()
                }))
            } else {
                index_of_max(fails.iter().map(|p| -p))
            };
            let stopped = match completed - scored.len() {
                0 => String::new(),
                n => format!(" and {n} stopped early"),
            };
            (draws[best].clone(), format!("modelled on the best {n_good} of {} scored trials{stopped}", scored.len()))
        };
        let note = match &risk {
            Some(r) => format!("{how}; {}", r.describe(&chosen)),
            None => how,
        };
        (space.decode(&chosen), note)
    }

    /// The history as this search's knobs see it: trials that left them at the same values are
    /// one setting ([`Observation::best_per_setting`]).
    fn settings_of(&self, history: &[Observation]) -> Vec<Observation> {
        let own = |o: &Observation| Observation {
            knobs: o
                .knobs
                .iter()
                .filter(|(k, _)| self.knobs.contains_key(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            ..o.clone()
        };
        Observation::best_per_setting(history.iter().map(own).collect())
    }

    /// Knob values drawn at random as the start draws them, avoiding where trials failed, with
    /// the predicted risk of failure when there is one to predict.
    pub fn explore(&self, history: &[Observation], rng: &mut impl Rng) -> (KnobValues, Option<String>) {
        self.explore_drawn(history, rng, |space, rng| space.uniform(rng))
    }

    /// As [`Tpe::explore`], but within one cell of a Latin hypercube: for each knob, in name
    /// order, the slice of its range to draw in (for a choice, which option to take), or
    /// `None` to keep its value in `kept`. Only the knobs drawn are returned.
    pub fn explore_in(
        &self,
        history: &[Observation],
        cell: &[Option<Slice>],
        kept: &KnobValues,
        rng: &mut impl Rng,
    ) -> (KnobValues, Option<String>) {
        let (mut values, note) = self.explore_drawn(history, rng, |space, rng| space.within(cell, kept, rng));
        // A kept knob was drawn at its recipe value only so that the risk is judged on the
        // recipe the trial will run; it is not part of the edit.
        for (name, slice) in self.knobs.keys().zip(cell) {
            if slice.is_none() && kept.contains_key(name) {
                values.remove(name);
            }
        }
        (values, note)
    }

    /// The exploring step both of the above share; `draw` says where a candidate may fall.
    fn explore_drawn<R: Rng>(
        &self,
        history: &[Observation],
        rng: &mut R,
        draw: impl Fn(&Space, &mut R) -> Vec<f64>,
    ) -> (KnobValues, Option<String>) {
        let space = Space::new(&self.knobs);
        let settings = self.settings_of(history);
        let frame = Frame::new(&self.knobs, &self.others, &KnobValues::new());
        let risk = Risk::new(&space, &space.points(&settings), &frame, history);
        let chosen = explore(risk.as_ref(), self.settings.candidates.max(1), rng, |rng| draw(&space, rng));
        let note = risk.map(|r| r.describe(&chosen));
        (space.decode(&chosen), note)
    }
}

/// A random point (from `draw`), but not where trials already failed: of `candidates` draws,
/// each is taken with the chance it succeeds, so the start samples the box weighted by
/// predicted success rather than settling on its safest corner (the smallest, shortest runs),
/// which is rarely where the good recipes are.
fn explore<R: Rng>(
    risk: Option<&Risk<'_>>,
    candidates: usize,
    rng: &mut R,
    draw: impl Fn(&mut R) -> Vec<f64>,
) -> Vec<f64> {
    let draws: Vec<Vec<f64>> = (0..candidates).map(|_| draw(rng)).collect();
    let fails = chances_of_failure(risk, &draws);
    let best = match risk {
        Some(_) => match fails.iter().position(|p| rng.random::<f64>() >= *p) {
            Some(i) => i,
            None => index_of_max(fails.iter().map(|p| -p)),
        },
        None => 0,
    };
    draws.into_iter().nth(best).expect("at least one candidate")
}

#[async_trait::async_trait]
impl Specialist for Tpe {
    fn name(&self) -> &str {
        &self.name
    }

    async fn propose(&self, request: ProposalRequest<'_>) -> Result<Proposal, ProposeError> {
        let mut rng = ChaCha8Rng::seed_from_u64(request.seed);
        let (values, note) = self.suggest(request.history, request.start_knobs, request.recipe_knobs, &mut rng);
        let hypothesis = format!("tpe: {} ({note})", describe_change(request.best_knobs, &values));
        Ok(knob_proposal(&self.name, hypothesis, values))
    }
}

/// Each draw's chance of failing (none without a risk model), computed once per proposal.
fn chances_of_failure(risk: Option<&Risk<'_>>, draws: &[Vec<f64>]) -> Vec<f64> {
    draws.iter().map(|x| risk.map_or(0.0, |r| r.fail(x))).collect()
}

/// Index of the largest score (the first on ties; 0 when none is above minus infinity).
fn index_of_max(scores: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, s) in scores.enumerate() {
        if s > best.1 {
            best = (i, s);
        }
    }
    best.0
}

#[derive(Debug, Clone)]
enum Dim {
    /// A number scaled to [0, 1]: `lo + x (hi - lo)`, in log space when `log`.
    Number {
        lo: f64,
        hi: f64,
        log: bool,
    },
    Choice(Vec<KnobValue>),
}

impl Dim {
    /// A coordinate drawn uniformly: anywhere in [0, 1], or any option.
    fn uniform(&self, rng: &mut impl Rng) -> f64 {
        match self {
            Dim::Number { .. } => rng.random::<f64>(),
            Dim::Choice(options) => rng.random_range(0..options.len()) as f64,
        }
    }
}

struct Space {
    names: Vec<String>,
    dims: Vec<Dim>,
    specs: Vec<KnobSpec>,
}

impl Space {
    /// The space of `knobs`, in their order.
    fn new<'k>(knobs: impl IntoIterator<Item = (&'k String, &'k KnobSpec)>) -> Space {
        let (names, specs): (Vec<String>, Vec<KnobSpec>) =
            knobs.into_iter().map(|(name, spec)| (name.clone(), spec.clone())).unzip();
        let dims = specs
            .iter()
            .map(|spec| match spec {
                KnobSpec::Float([lo, hi]) => Dim::Number { lo: *lo, hi: *hi, log: false },
                KnobSpec::LogFloat([lo, hi]) => Dim::Number { lo: lo.ln(), hi: hi.ln(), log: true },
                // Each integer owns a cell of equal width.
                KnobSpec::Int([lo, hi]) => Dim::Number { lo: *lo as f64 - 0.5, hi: *hi as f64 + 0.5, log: false },
                KnobSpec::Choice(options) => Dim::Choice(options.clone()),
            })
            .collect();
        Space { names, dims, specs }
    }

    /// A trial's values as a point; `None` when a value is missing or outside today's ranges.
    fn encode(&self, values: &KnobValues) -> Option<Vec<f64>> {
        self.names.iter().enumerate().map(|(i, name)| self.encode_one(i, values.get(name)?)).collect()
    }

    /// One knob's value as its coordinate; `None` when outside today's range.
    fn encode_one(&self, i: usize, v: &KnobValue) -> Option<f64> {
        if !self.specs[i].admits(v) {
            return None;
        }
        match &self.dims[i] {
            Dim::Number { lo, hi, log, .. } => {
                let x = match v {
                    KnobValue::Float(x) => *x,
                    KnobValue::Int(i) => *i as f64,
                    _ => return None,
                };
                let x = if *log { x.ln() } else { x };
                Some(((x - lo) / (hi - lo)).clamp(0.0, 1.0))
            }
            Dim::Choice(options) => options.iter().position(|o| o == v).map(|i| i as f64),
        }
    }

    /// The trials of `history` that are points of this space, with their points.
    fn points<'o>(&self, history: &'o [Observation]) -> Vec<(Vec<f64>, &'o Observation)> {
        history.iter().filter_map(|o| self.encode(&o.knobs).map(|p| (p, o))).collect()
    }

    fn decode(&self, point: &[f64]) -> KnobValues {
        self.names
            .iter()
            .zip(&self.dims)
            .zip(&self.specs)
            .zip(point)
            .map(|(((name, dim), spec), &x)| {
                let value = match dim {
                    Dim::Number { lo, hi, .. } => {
                        let raw = lo + x.clamp(0.0, 1.0) * (hi - lo);
                        match spec {
                            KnobSpec::Int([a, b]) => KnobValue::Int((raw.round() as i64).clamp(*a, *b)),
                            KnobSpec::LogFloat([a, b]) => KnobValue::Float(raw.exp().clamp(*a, *b)),
                            KnobSpec::Float([a, b]) => KnobValue::Float(raw.clamp(*a, *b)),
                            KnobSpec::Choice(_) => unreachable!("choices are categorical dimensions"),
                        }
                    }
                    Dim::Choice(options) => options[(x as usize).min(options.len() - 1)].clone(),
                };
                (name.clone(), value)
            })
            .collect()
    }

    fn uniform(&self, rng: &mut impl Rng) -> Vec<f64> {
        self.dims.iter().map(|d| d.uniform(rng)).collect()
    }

    /// A uniform point of one cell: each number within its slice, each choice the option the
    /// slice names; a knob without a slice at its value in `kept` (drawn when `kept` lacks it).
    fn within(&self, cell: &[Option<Slice>], kept: &KnobValues, rng: &mut impl Rng) -> Vec<f64> {
        self.dims
            .iter()
            .zip(cell)
            .enumerate()
            .map(|(i, (d, slice))| match (slice, kept.get(&self.names[i]).and_then(|v| self.encode_one(i, v))) {
                (None, Some(x)) => x,
                (None, None) => d.uniform(rng),
                (Some(s), _) => match d {
                    Dim::Number { .. } => {
                        let of = s.of.max(1);
                        (s.index.min(of - 1) as f64 + rng.random::<f64>()) / of as f64
                    }
                    Dim::Choice(options) => s.index.min(options.len() - 1) as f64,
                },
            })
            .collect()
    }
}

/// Kernel width for `n` points in `d` dimensions: Scott's rule for a product kernel, bounded so
/// that a handful of trials neither collapse onto a point nor blur into the prior.
fn bandwidth(n: usize, d: usize) -> f64 {
    (0.2 * (n.max(1) as f64).powf(-1.0 / (d as f64 + 4.0))).clamp(0.03, 0.5)
}

/// Kernel widths that follow the points: along each number, a kernel is as wide as the larger
/// gap to its neighbours (an end of the range counts as a neighbour, except beside the outermost
/// of two or more points), as Optuna's TPE sets them, at least the range over (points + 2), and
/// never wider than the one width [`bandwidth`] gives every kernel (which wins when the two
/// bounds cross, as they do for a few points). Where good trials crowd together the density
/// sharpens about them and the search closes in on an optimum, which one width for every kernel
/// cannot do; where they are few it stays as broad as that width, not broader, since the gap to
/// the end of the range would spread a lone good trial's kernel over half of it. In process, 300
/// seeds of 40 trials (`cargo run --release -p postdoc-search --example synthetic`): Hartmann-6's
/// median best -2.67 with one width, -2.89 with gaps alone, -2.87 with both; after 16 trials
/// -1.75, -1.78 and -1.93.
fn gap_widths(space: &Space, points: &[&[f64]]) -> Vec<Vec<f64>> {
    let n = points.len();
    let least = 1.0 / (n as f64 + 2.0).min(100.0);
    let most = bandwidth(n, space.dims.len());
    let mut widths = vec![vec![1.0; space.dims.len()]; n];
    for d in 0..space.dims.len() {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|a, b| points[*a][d].total_cmp(&points[*b][d]));
        let at = |k: usize| points[order[k]][d];
        for k in 0..n {
            let left = match k {
                0 if n >= 2 => 0.0,
                0 => at(0),
                _ => at(k) - at(k - 1),
            };
            let right = match k + 1 {
                m if m == n && n >= 2 => 0.0,
                m if m == n => 1.0 - at(k),
                _ => at(k + 1) - at(k),
            };
            widths[order[k]][d] = left.max(right).max(least).min(most);
        }
    }
    widths
}

/// A mixture of one kernel per point plus the uniform prior (density 1 on the unit cube), all
/// of equal weight.
struct Parzen<'s> {
    space: &'s Space,
    centers: Vec<Vec<f64>>,
    /// Each kernel's width on each numeric dimension.
    sigmas: Vec<Vec<f64>>,
    /// Probability a categorical kernel spreads evenly over the options instead of its own.
    spread: f64,
}

impl<'s> Parzen<'s> {
    /// A density whose kernels are as wide as the gaps between `points` ([`gap_widths`]).
    fn new(space: &'s Space, points: &[&[f64]]) -> Parzen<'s> {
        Parzen::with_widths(space, points, gap_widths(space, points))
    }

    /// A density whose kernels all have width `sigma`.
    fn with_bandwidth(space: &'s Space, points: &[&[f64]], sigma: f64) -> Parzen<'s> {
        Parzen::with_widths(space, points, vec![vec![sigma; space.dims.len()]; points.len()])
    }

    fn with_widths(space: &'s Space, points: &[&[f64]], sigmas: Vec<Vec<f64>>) -> Parzen<'s> {
        let spread = (1.0 / (points.len() as f64 + 1.0).sqrt()).clamp(0.1, 0.5);
        Parzen { space, centers: points.iter().map(|p| p.to_vec()).collect(), sigmas, spread }
    }

    /// Log density at `x` of kernel `j`.
    fn log_kernel(&self, x: &[f64], j: usize) -> f64 {
        let c = &self.centers[j];
        self.space
            .dims
            .iter()
            .enumerate()
            .map(|(i, dim)| match dim {
                Dim::Number { .. } => log_truncated_normal(x[i], c[i], self.sigmas[j][i]),
                Dim::Choice(options) => {
                    let k = options.len() as f64;
                    let p = self.spread / k + if x[i] == c[i] { 1.0 - self.spread } else { 0.0 };
                    (p * k).ln()
                }
            })
            .sum()
    }

    fn log_density(&self, x: &[f64]) -> f64 {
        // The prior's log density is 0.
        let terms: Vec<f64> = (0..self.centers.len()).map(|j| self.log_kernel(x, j)).chain([0.0]).collect();
        log_sum_exp(&terms) - ((self.centers.len() + 1) as f64).ln()
    }

    fn sample(&self, rng: &mut impl Rng) -> Vec<f64> {
        let j = rng.random_range(0..=self.centers.len());
        let (Some(c), Some(sigmas)) = (self.centers.get(j), self.sigmas.get(j)) else {
            return self.space.uniform(rng);
        };
        self.space
            .dims
            .iter()
            .enumerate()
            .map(|(i, dim)| match dim {
                Dim::Number { .. } => sample_truncated_normal(c[i], sigmas[i], rng),
                Dim::Choice(options) => {
                    if rng.random::<f64>() < self.spread {
                        rng.random_range(0..options.len()) as f64
                    } else {
                        c[i]
                    }
                }
            })
            .collect()
    }
}

/// The chance a point fails, from kernel classifiers of failed against completed trials: one over
/// all knobs jointly, for failures that come from knobs together, and one per knob, because a cap
/// is often crossed by one knob whatever the others are (too wide a model is too big at any
/// learning rate), which a joint kernel, diluted over the other knobs, learns slowly. The risk is
/// the largest of them. Each estimate is shrunk towards the study's overall failure rate by one
/// trial's worth of evidence, so that where trials are few it says "as risky as anywhere" rather
/// than "even odds", and the largest of many per-knob estimates is not inflated by noise alone.
///
/// One failure is one failure, not one per knob: a per-knob estimate counts a failed trial only
/// for the share of the blame its knob takes, and a knob whose value there completed trials also
/// had takes little of it (that value ran elsewhere). Counted whole on every knob, one opening
/// trial that missed its gate for its learning rate made each of its context, width, depth and
/// precision look risky alone, and on tiny-golf the model search called every shape it drew
/// 88-96% likely to fail.
struct Classifier<'s> {
    failed: Parzen<'s>,
    labels: Vec<Label>,
    /// Each failure's share of the blame on each knob, summing to one over the knobs, as logs.
    log_blame: Vec<Vec<f64>>,
    completed: Parzen<'s>,
    /// Kernel width of the one-knob classifiers.
    sigma1: f64,
    /// The overall failure rate, smoothed.
    base: f64,
}

impl<'s> Classifier<'s> {
    fn new(space: &'s Space, failed: &[(&[f64], Label)], completed: &[&[f64]]) -> Classifier<'s> {
        // One bandwidth for both sides, from all the trials, so that their masses compare.
        let n = failed.len() + completed.len();
        let sigma = bandwidth(n, space.dims.len());
        let points: Vec<&[f64]> = failed.iter().map(|(p, _)| *p).collect();
        let mut classifier = Classifier {
            failed: Parzen::with_bandwidth(space, &points, sigma),
            labels: failed.iter().map(|(_, l)| *l).collect(),
            log_blame: Vec::new(),
            completed: Parzen::with_bandwidth(space, completed, sigma),
            sigma1: (0.15 * (n.max(1) as f64).powf(-0.2)).clamp(0.02, 0.3),
            base: (failed.len() as f64 + 0.5) / (n as f64 + 1.0),
        };
        // A knob's blame for a failure falls with how many completed trials had its value there.
        classifier.log_blame = points
            .iter()
            .map(|x| {
                let innocence: Vec<f64> = (0..space.dims.len())
                    .map(|d| 1.0 / (1.0 + classifier.log_mass_along(&classifier.completed, d, x, |_| 0.0).exp()))
                    .collect();
                let total: f64 = innocence.iter().sum();
                innocence.iter().map(|v| (v / total).ln()).collect()
            })
            .collect();
        classifier
    }

    /// Sum of kernels over a side's trials, counted in trials: each kernel relative to its value
    /// at its own trial, so that a trial at `x` counts one (see [`Classifier::log_mass_along`]).
    fn log_mass(p: &Parzen<'_>, x: &[f64]) -> f64 {
        let terms: Vec<f64> =
            (0..p.centers.len()).map(|j| p.log_kernel(x, j) - p.log_kernel(&p.centers[j], j)).collect();
        log_sum_exp(&terms)
    }

    /// The same along knob `d` alone, counted in trials: a trial at `x`'s value counts one, a
    /// trial further off less, each weighted by `log_weight(j)` (a log). In these units the
    /// shrinkage's one trial of evidence weighs as much as one trial; as densities, a trial's
    /// kernel peaked at three or four trials' worth and one failure outweighed it.
    fn log_mass_along(&self, p: &Parzen<'_>, d: usize, x: &[f64], log_weight: impl Fn(usize) -> f64) -> f64 {
        let kernel = |c: &[f64]| match &p.space.dims[d] {
            Dim::Number { .. } => -0.5 * ((x[d] - c[d]) / self.sigma1).powi(2),
            Dim::Choice(_) if x[d] == c[d] => 0.0,
            Dim::Choice(_) => f64::NEG_INFINITY,
        };
        let terms: Vec<f64> = p.centers.iter().enumerate().map(|(j, c)| kernel(c) + log_weight(j)).collect();
        log_sum_exp(&terms)
    }

    /// `(F + base) / (F + C + 1)` for the failed and completed masses `F` and `C`, given as logs.
    fn shrunk(&self, log_f: f64, log_c: f64) -> f64 {
        let m = log_f.max(log_c).max(0.0);
        let (f, c, one) = ((log_f - m).exp(), (log_c - m).exp(), (-m).exp());
        (f + self.base * one) / (f + c + one)
    }

    fn fail(&self, x: &[f64]) -> f64 {
        let joint = self.shrunk(Self::log_mass(&self.failed, x), Self::log_mass(&self.completed, x));
        (0..x.len())
            .map(|d| {
                let log_f = self.log_mass_along(&self.failed, d, x, |j| self.log_blame[j][d]);
                self.shrunk(log_f, self.log_mass_along(&self.completed, d, x, |_| 0.0))
            })
            .fold(joint, f64::max)
    }

    /// The label the failures nearest `x` mostly had.
    fn likeliest(&self, x: &[f64]) -> Option<Label> {
        let mut weight: BTreeMap<Label, f64> = BTreeMap::new();
        for (j, label) in self.labels.iter().enumerate() {
            *weight.entry(*label).or_default() += self.failed.log_kernel(x, j).exp();
        }
        weight.into_iter().max_by(|a, b| a.1.total_cmp(&b.1)).map(|(l, _)| l)
    }
}

/// Where the caps are learned: this search's knobs first, then those of the recipe's other knobs
/// that the recipe the proposal builds on has, held at its values.
struct Frame {
    space: Space,
    /// The other knobs' coordinates in the recipe the proposal builds on.
    kept: Vec<f64>,
}

impl Frame {
    fn new(own: &BTreeMap<String, KnobSpec>, others: &BTreeMap<String, KnobSpec>, recipe: &KnobValues) -> Frame {
        let known: Vec<(&String, &KnobSpec)> =
            others.iter().filter(|(name, spec)| recipe.get(*name).is_some_and(|v| spec.admits(v))).collect();
        let space = Space::new(own.iter().chain(known.iter().copied()));
        let kept = known
            .iter()
            .enumerate()
            .filter_map(|(j, (name, _))| space.encode_one(own.len() + j, &recipe[*name]))
            .collect();
        Frame { space, kept }
    }

    /// A point of the search's own space, on the recipe it will run.
    fn extend(&self, x: &[f64]) -> Vec<f64> {
        x.iter().chain(&self.kept).copied().collect()
    }
}

/// The chance a candidate fails: from the learned caps (size, time) where the trials measured
/// them, and from the classifier for every other failure, taken as independent.
struct Risk<'s> {
    frame: &'s Frame,
    limits: Vec<Limit>,
    classifier: Option<Classifier<'s>>,
}

impl<'s> Risk<'s> {
    /// `None` while nothing is known that could make one candidate riskier than another. The
    /// classifier learns from `points`, the settings of the search's own knobs; the caps from
    /// every trial of `history` in the frame.
    fn new(
        space: &'s Space,
        points: &[(Vec<f64>, &Observation)],
        frame: &'s Frame,
        history: &[Observation],
    ) -> Option<Risk<'s>> {
        let trials = frame.space.points(history);
        let shares = |share: fn(&Observation) -> Option<Share>| -> Vec<(&[f64], Share)> {
            trials.iter().filter_map(|(p, o)| Some((p.as_slice(), share(o)?))).collect()
        };
        let limits: Vec<Limit> = [
            Limit::fit(&frame.space, Label::SizeBlocked, &shares(|o| o.usage.artifact)),
            Limit::fit(&frame.space, Label::TrainOverrun, &shares(|o| o.usage.train_time)),
        ]
        .into_iter()
        .flatten()
        .collect();
        // A failure a learned cap explains is left to it: the classifier learns the rest.
        let explained = |l: Label| limits.iter().any(|m| m.label == l);
        let failed: Vec<(&[f64], Label)> = points
            .iter()
            .filter(|(_, o)| o.label.is_failure() && !explained(o.label))
            .map(|(p, o)| (p.as_slice(), o.label))
            .collect();
        let completed: Vec<&[f64]> =
            points.iter().filter(|(_, o)| !o.label.is_failure()).map(|(p, _)| p.as_slice()).collect();
        let classifier = (!failed.is_empty()).then(|| Classifier::new(space, &failed, &completed));
        (classifier.is_some() || !limits.is_empty()).then_some(Risk { frame, limits, classifier })
    }

    fn fail(&self, x: &[f64]) -> f64 {
        let other = self.classifier.as_ref().map_or(0.0, |c| c.fail(x));
        let x = self.frame.extend(x);
        let within = self.limits.iter().map(|l| 1.0 - l.predict(&self.frame.space, &x).1).product::<f64>();
        1.0 - (1.0 - other) * within
    }

    /// "predicted failure risk 8%, mostly size_blocked (artifact at 93% of the cap)".
    fn describe(&self, x: &[f64]) -> String {
        let p = self.fail(x);
        let mut top: Option<(f64, String)> =
            self.classifier.as_ref().and_then(|c| Some((c.fail(x), c.likeliest(x)?.to_string())));
        let extended = self.frame.extend(x);
        for limit in &self.limits {
            let (share, p_over) = limit.predict(&self.frame.space, &extended);
            if top.as_ref().is_none_or(|(q, _)| p_over > *q) {
                let what = if limit.label == Label::SizeBlocked { "artifact" } else { "training time" };
                top = Some((p_over, format!("{} ({what} at {:.0}% of the cap)", limit.label, 100.0 * share)));
            }
        }
        match top {
            Some((_, why)) if p >= 0.05 => format!("predicted failure risk {:.0}%, mostly {why}", 100.0 * p),
            _ => format!("predicted failure risk {:.0}%", 100.0 * p),
        }
    }
}

fn log_sum_exp(terms: &[f64]) -> f64 {
    let m = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + terms.iter().map(|t| (t - m).exp()).sum::<f64>().ln()
}

/// Log density at `x` of a normal centred on `mu` with width `sigma`, truncated to [0, 1].
fn log_truncated_normal(x: f64, mu: f64, sigma: f64) -> f64 {
    let z = (x - mu) / sigma;
    let mass = normal_cdf((1.0 - mu) / sigma) - normal_cdf(-mu / sigma);
    -0.5 * z * z - (sigma * (2.0 * std::f64::consts::PI).sqrt()).ln() - mass.max(1e-300).ln()
}

fn sample_truncated_normal(mu: f64, sigma: f64, rng: &mut impl Rng) -> f64 {
    for _ in 0..32 {
        // Box-Muller: two uniforms give one standard normal.
        let (u1, u2) = (rng.random::<f64>().max(1e-300), rng.random::<f64>());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        let x = mu + sigma * z;
        if (0.0..=1.0).contains(&x) {
            return x;
        }
    }
    mu.clamp(0.0, 1.0)
}

pub(crate) fn normal_cdf(z: f64) -> f64 {
    0.5 * (1.0 + statrs::function::erf::erf(z / std::f64::consts::SQRT_2))
}

mod limits;
#[cfg(test)]
mod tests;
