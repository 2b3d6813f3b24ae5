//! Tree-structured Parzen estimation over a specialist's knobs, aware of failures.
//!
//! The specialist's earlier trials are split into a good group (the best-scoring fraction) and a
//! bad group (the rest, with every failure and every run stopped early). Each group becomes a
//! density over the knob space, a mixture of one kernel per trial and a uniform prior, taken
//! jointly over all knobs (multivariate), so knobs that only work together are learned
//! together. Candidates are drawn from the good density and the one maximising
//! `l(x) / g(x) * (1 - p_fail(x))` is proposed, where `p_fail` comes from a kernel classifier of
//! failed against completed trials: the search steers away from the regions that ended
//! `size_blocked`, `train_overrun`, `gate_miss` or `crash`, and says how risky its choice is.
//!
//! All densities live in the unit cube (each float knob scaled to [0, 1], log-floats in log
//! space, integers as cells of equal width, choices as categories), so one bandwidth rule
//! serves every knob.

use crate::describe_change;
use postdoc_core::{
    Edit, KnobSpec, KnobValue, KnobValues, Label, Observation, Proposal, ProposalRequest, ProposeError, Specialist,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// How the search trades exploration for exploitation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TpeSettings {
    /// Trials drawn at random (avoiding known failures) before the densities are trusted; `None`
    /// picks one more than the number of knobs, between 3 and 10.
    pub startup: Option<usize>,
    /// Candidates drawn from the good density per proposal.
    pub candidates: usize,
    /// Share of scored trials in the good group (at least one, at most `max_good`).
    pub gamma: f64,
    pub max_good: usize,
}

impl Default for TpeSettings {
    fn default() -> TpeSettings {
        TpeSettings { startup: None, candidates: 24, gamma: 0.15, max_good: 25 }
    }
}

pub struct Tpe {
    name: String,
    knobs: BTreeMap<String, KnobSpec>,
    settings: TpeSettings,
}

impl Tpe {
    pub fn new(name: impl Into<String>, knobs: BTreeMap<String, KnobSpec>, settings: TpeSettings) -> Tpe {
        Tpe { name: name.into(), knobs, settings }
    }

    /// The next knob values and a one-line account of why.
    pub fn suggest(&self, history: &[Observation], rng: &mut impl Rng) -> (KnobValues, String) {
        let space = Space::new(&self.knobs);
        let points: Vec<(Vec<f64>, &Observation)> =
            history.iter().filter_map(|o| space.encode(&o.knobs).map(|p| (p, o))).collect();
        let failed: Vec<(&[f64], Label)> =
            points.iter().filter(|(_, o)| o.label.is_failure()).map(|(p, o)| (p.as_slice(), o.label)).collect();
        let completed: Vec<&[f64]> =
            points.iter().filter(|(_, o)| !o.label.is_failure()).map(|(p, _)| p.as_slice()).collect();
        let risk = (!failed.is_empty()).then(|| Risk::new(&space, &failed, &completed));

        let mut scored: Vec<(&[f64], f64)> = points
            .iter()
            .filter(|(_, o)| !o.label.is_failure())
            .filter_map(|(p, o)| Some((p.as_slice(), o.gain?)))
            .collect();
        let startup = self.settings.startup.unwrap_or((space.dims.len() + 1).clamp(3, 10));
        let candidates = self.settings.candidates.max(1);
        // A run stopped early counts towards the start as a scored one does (it is evidence of a
        // region that is behind); otherwise a study that stops many runs never leaves it.
        let observed = completed.len();

        let (chosen, how) = if observed < startup || scored.is_empty() {
            let draws: Vec<Vec<f64>> = (0..candidates).map(|_| space.uniform(rng)).collect();
            let best = match &risk {
                // Random, but not where trials already failed.
                Some(r) => pick_max(&draws, |x| -r.fail(x)),
                None => 0,
            };
            let how = if observed < startup {
                format!("exploring ({observed} of {startup} trials so far)")
            } else {
                "exploring (no trial has a score yet)".to_string()
            };
            (draws[best].clone(), how)
        } else {
            scored.sort_by(|a, b| b.1.total_cmp(&a.1));
            let n_good = ((self.settings.gamma * scored.len() as f64).ceil() as usize).clamp(1, self.settings.max_good);
            let good: Vec<&[f64]> = scored[..n_good].iter().map(|(p, _)| *p).collect();
            let mut bad: Vec<&[f64]> = scored[n_good..].iter().map(|(p, _)| *p).collect();
            // Failures and trials without a score are evidence of where not to go.
            bad.extend(
                points.iter().filter(|(_, o)| o.label.is_failure() || o.gain.is_none()).map(|(p, _)| p.as_slice()),
            );
            let l = Parzen::new(&space, &good);
            let g = Parzen::new(&space, &bad);
            let draws: Vec<Vec<f64>> = (0..candidates).map(|_| l.sample(rng)).collect();
            // Candidates more likely to fail than not are passed over while any other remains.
            let risky = |x: &[f64]| risk.as_ref().is_some_and(|r| r.fail(x) > 0.5);
            let any_safe = draws.iter().any(|x| !risky(x));
            let best = pick_max(&draws, |x| {
                if any_safe && risky(x) {
                    return f64::NEG_INFINITY;
                }
                let feasible = risk.as_ref().map_or(0.0, |r| (1.0 - r.fail(x)).max(1e-9).ln());
                l.log_density(x) - g.log_density(x) + feasible
            });
            let stopped = match observed - scored.len() {
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
}

#[async_trait::async_trait]
impl Specialist for Tpe {
    fn name(&self) -> &str {
        &self.name
    }

    async fn propose(&self, request: ProposalRequest<'_>) -> Result<Proposal, ProposeError> {
        let mut rng = ChaCha8Rng::seed_from_u64(request.seed);
        let (values, note) = self.suggest(request.history, &mut rng);
        Ok(Proposal {
            specialist: self.name.clone(),
            hypothesis: format!("tpe: {} ({note})", describe_change(request.best_knobs, &values)),
            expected_delta: None,
            parent: None,
            edit: Edit::Knobs { values },
        })
    }
}

/// Index of the draw with the largest `score` (the first on ties).
fn pick_max(draws: &[Vec<f64>], score: impl Fn(&[f64]) -> f64) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, x) in draws.iter().enumerate() {
        let s = score(x);
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

struct Space {
    names: Vec<String>,
    dims: Vec<Dim>,
    specs: Vec<KnobSpec>,
}

impl Space {
    fn new(knobs: &BTreeMap<String, KnobSpec>) -> Space {
        let dims = knobs
            .values()
            .map(|spec| match spec {
                KnobSpec::Float([lo, hi]) => Dim::Number { lo: *lo, hi: *hi, log: false },
                KnobSpec::LogFloat([lo, hi]) => Dim::Number { lo: lo.ln(), hi: hi.ln(), log: true },
                // Each integer owns a cell of equal width.
                KnobSpec::Int([lo, hi]) => Dim::Number { lo: *lo as f64 - 0.5, hi: *hi as f64 + 0.5, log: false },
                KnobSpec::Choice(options) => Dim::Choice(options.clone()),
            })
            .collect();
        Space { names: knobs.keys().cloned().collect(), dims, specs: knobs.values().cloned().collect() }
    }

    /// A trial's values as a point; `None` when a value is missing or outside today's ranges.
    fn encode(&self, values: &KnobValues) -> Option<Vec<f64>> {
        self.names
            .iter()
            .zip(&self.dims)
            .zip(&self.specs)
            .map(|((name, dim), spec)| {
                let v = values.get(name)?;
                if !spec.admits(v) {
                    return None;
                }
                match dim {
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
            })
            .collect()
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
        self.dims
            .iter()
            .map(|d| match d {
                Dim::Number { .. } => rng.random::<f64>(),
                Dim::Choice(options) => rng.random_range(0..options.len()) as f64,
            })
            .collect()
    }
}

/// Kernel width for `n` points in `d` dimensions: Scott's rule for a product kernel, bounded so
/// that a handful of trials neither collapse onto a point nor blur into the prior.
fn bandwidth(n: usize, d: usize) -> f64 {
    (0.2 * (n.max(1) as f64).powf(-1.0 / (d as f64 + 4.0))).clamp(0.03, 0.5)
}

/// A mixture of one kernel per point plus the uniform prior (density 1 on the unit cube), all
/// of equal weight.
struct Parzen<'s> {
    space: &'s Space,
    centers: Vec<Vec<f64>>,
    /// Kernel width on numeric dimensions.
    sigma: f64,
    /// Probability a categorical kernel spreads evenly over the options instead of its own.
    spread: f64,
}

impl<'s> Parzen<'s> {
    fn new(space: &'s Space, points: &[&[f64]]) -> Parzen<'s> {
        Parzen::with_bandwidth(space, points, bandwidth(points.len(), space.dims.len()))
    }

    fn with_bandwidth(space: &'s Space, points: &[&[f64]], sigma: f64) -> Parzen<'s> {
        let spread = (1.0 / (points.len() as f64 + 1.0).sqrt()).clamp(0.1, 0.5);
        Parzen { space, centers: points.iter().map(|p| p.to_vec()).collect(), sigma, spread }
    }

    fn log_kernel(&self, x: &[f64], c: &[f64]) -> f64 {
        self.space
            .dims
            .iter()
            .enumerate()
            .map(|(i, dim)| match dim {
                Dim::Number { .. } => log_truncated_normal(x[i], c[i], self.sigma),
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
        let terms: Vec<f64> = self.centers.iter().map(|c| self.log_kernel(x, c)).chain([0.0]).collect();
        log_sum_exp(&terms) - ((self.centers.len() + 1) as f64).ln()
    }

    fn sample(&self, rng: &mut impl Rng) -> Vec<f64> {
        let j = rng.random_range(0..=self.centers.len());
        let Some(c) = self.centers.get(j) else {
            return self.space.uniform(rng);
        };
        self.space
            .dims
            .iter()
            .enumerate()
            .map(|(i, dim)| match dim {
                Dim::Number { .. } => sample_truncated_normal(c[i], self.sigma, rng),
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

/// The chance a point fails, from kernel classifiers of failed against completed trials (each
/// side smoothed by the uniform prior): one over all knobs jointly, for failures that come from
/// knobs together, and one per knob, because a cap is often crossed by one knob whatever the
/// others are (too wide a model is too big at any learning rate), which a joint kernel, diluted
/// over the other knobs, learns slowly. The risk is the largest of them.
struct Risk<'s> {
    failed: Parzen<'s>,
    labels: Vec<Label>,
    completed: Parzen<'s>,
    /// Kernel width of the one-knob classifiers.
    sigma1: f64,
}

impl<'s> Risk<'s> {
    fn new(space: &'s Space, failed: &[(&[f64], Label)], completed: &[&[f64]]) -> Risk<'s> {
        // One bandwidth for both sides, from all the trials, so that their masses compare.
        let n = failed.len() + completed.len();
        let sigma = bandwidth(n, space.dims.len());
        let points: Vec<&[f64]> = failed.iter().map(|(p, _)| *p).collect();
        Risk {
            failed: Parzen::with_bandwidth(space, &points, sigma),
            labels: failed.iter().map(|(_, l)| *l).collect(),
            completed: Parzen::with_bandwidth(space, completed, sigma),
            sigma1: (0.15 * (n.max(1) as f64).powf(-0.2)).clamp(0.02, 0.3),
        }
    }

    /// Sum of kernels over a side's trials plus one prior unit, as a log.
    fn log_mass(p: &Parzen<'_>, x: &[f64]) -> f64 {
        let terms: Vec<f64> = p.centers.iter().map(|c| p.log_kernel(x, c)).chain([0.0]).collect();
        log_sum_exp(&terms)
    }

    /// The same along knob `d` alone.
    fn log_mass_along(&self, p: &Parzen<'_>, d: usize, x: &[f64]) -> f64 {
        let kernel = |c: &[f64]| match &p.space.dims[d] {
            Dim::Number { .. } => log_truncated_normal(x[d], c[d], self.sigma1),
            // Trials with the same option, as a share of a uniform spread over the options.
            Dim::Choice(options) => {
                if x[d] == c[d] {
                    (options.len() as f64).ln()
                } else {
                    f64::NEG_INFINITY
                }
            }
        };
        let terms: Vec<f64> = p.centers.iter().map(|c| kernel(c)).chain([0.0]).collect();
        log_sum_exp(&terms)
    }

    fn fail(&self, x: &[f64]) -> f64 {
        let odds = |f: f64, c: f64| 1.0 / (1.0 + (c - f).exp());
        let joint = odds(Self::log_mass(&self.failed, x), Self::log_mass(&self.completed, x));
        (0..x.len())
            .map(|d| odds(self.log_mass_along(&self.failed, d, x), self.log_mass_along(&self.completed, d, x)))
            .fold(joint, f64::max)
    }

    /// "predicted failure risk 8%, mostly size_blocked".
    fn describe(&self, x: &[f64]) -> String {
        let p = self.fail(x);
        let mut weight: BTreeMap<Label, f64> = BTreeMap::new();
        for (c, label) in self.failed.centers.iter().zip(&self.labels) {
            *weight.entry(*label).or_default() += self.failed.log_kernel(x, c).exp();
        }
        let top = weight.iter().max_by(|a, b| a.1.total_cmp(b.1)).map(|(l, _)| *l);
        match top {
            Some(label) if p >= 0.05 => format!("predicted failure risk {:.0}%, mostly {label}", 100.0 * p),
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

fn normal_cdf(z: f64) -> f64 {
    0.5 * (1.0 + statrs::function::erf::erf(z / std::f64::consts::SQRT_2))
}

#[cfg(test)]
mod tests;
