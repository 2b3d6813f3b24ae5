//! Where the study's caps lie, learned from what every trial used of them.
//!
//! The harness measures each run's artifact bytes and training seconds, whether or not it crossed
//! a cap, so the search need not wait for failures to learn where the caps are: a regression of
//! the log of the share used on the knobs predicts, with its uncertainty, the chance a candidate
//! ends `size_blocked` or `train_overrun`. Sizes and times grow as products of knobs (width times
//! depth times bytes per weight, steps times batch times width), so positive numeric knobs enter
//! as logarithms and the model is linear in them; choices enter as indicators. Ridge shrinkage on
//! standardised features keeps it sane with fewer trials than features.

use super::{Dim, Space, normal_cdf};
use postdoc_core::{Label, Share};

/// Exactly measured trials needed before the model is trusted.
const MIN_EXACT: usize = 3;
/// Prior spread of what the knobs do not explain (log scale, about 30%), worth two trials.
const PRIOR_SD: f64 = 0.3;
const PRIOR_WEIGHT: f64 = 2.0;
/// The least spread of the shares taken as signal, so that a cap the knobs never moved is not
/// modelled as moving wildly where they have not been.
const MIN_SIGNAL_SD: f64 = 0.05;

/// A cap, learned: the regression of `ln(share used)` on the knobs' features.
pub(super) struct Limit {
    pub(super) label: Label,
    mean: Vec<f64>,
    scale: Vec<f64>,
    intercept: f64,
    beta: Vec<f64>,
    /// `(Z'Z + ridge I)^-1`, for the uncertainty of a prediction.
    inverse: Vec<Vec<f64>>,
    /// Residual spread.
    sd: f64,
    n: usize,
}

impl Limit {
    /// The model of one cap from the trials that measured it; `None` until enough of them did
    /// exactly (a run stopped at or before the cap only says it would have used at least that).
    pub(super) fn fit(space: &Space, label: Label, shares: &[(&[f64], Share)]) -> Option<Limit> {
        let exact: Vec<(Vec<f64>, f64)> = shares
            .iter()
            .filter(|(_, s)| !s.at_least && s.used > 0.0)
            .map(|(x, s)| (features(space, x), s.used.ln()))
            .collect();
        if exact.len() < MIN_EXACT {
            return None;
        }
        let first = Limit::regress(label, &exact)?;
        // A stopped run enters at its bound or the prediction, whichever is larger; at a cap, a
        // little past it, since it was stopped there and not finished.
        let mut all = exact;
        for (x, s) in shares.iter().filter(|(_, s)| s.at_least && s.used > 0.0) {
            let f = features(space, x);
            let bound = s.used.ln() + if s.used >= 1.0 { 0.1 } else { 0.0 };
            let y = first.predict_features(&f).0.max(bound);
            all.push((f, y));
        }
        Limit::regress(label, &all)
    }

    fn regress(label: Label, rows: &[(Vec<f64>, f64)]) -> Option<Limit> {
        let n = rows.len();
        let p = rows.first()?.0.len();
        let mean: Vec<f64> = (0..p).map(|j| rows.iter().map(|r| r.0[j]).sum::<f64>() / n as f64).collect();
        let scale: Vec<f64> = (0..p)
            .map(|j| {
                let var = rows.iter().map(|r| (r.0[j] - mean[j]).powi(2)).sum::<f64>() / n as f64;
                // A knob that never moved carries no information: its column is zero.
                if var > 1e-12 { var.sqrt() } else { f64::INFINITY }
            })
            .collect();
        let z: Vec<Vec<f64>> = rows.iter().map(|r| standardise(&r.0, &mean, &scale)).collect();
        let intercept = rows.iter().map(|r| r.1).sum::<f64>() / n as f64;
        let mut a = vec![vec![0.0; p]; p];
        let mut b = vec![0.0; p];
        for (zi, (_, y)) in z.iter().zip(rows) {
            for j in 0..p {
                b[j] += zi[j] * (y - intercept);
                for k in 0..p {
                    a[j][k] += zi[j] * zi[k];
                }
            }
        }
        // Ridge regression is the posterior mean under a prior of coefficients of spread
        // `noise / sqrt(ridge)` on standardised knobs. No knob plausibly moves the share more
        // than the shares moved between trials, so that spread is the prior's: where the knobs
        // moved the share by factors (the width of a model, for its bytes) they may extrapolate
        // boldly, and where it never moved (the learning rate, for the bytes) a knob's untried
        // values are not called risky.
        let spread = (rows.iter().map(|r| (r.1 - intercept).powi(2)).sum::<f64>() / n as f64).sqrt();
        let ridge = (PRIOR_SD / spread.max(MIN_SIGNAL_SD)).powi(2).clamp(0.01, 100.0);
        for (j, row) in a.iter_mut().enumerate() {
            row[j] += ridge;
        }
        let inverse = invert(a)?;
        let beta: Vec<f64> = (0..p).map(|j| (0..p).map(|k| inverse[j][k] * b[k]).sum()).collect();
        let mut rss = 0.0;
        let mut df = 0.0;
        for (zi, (_, y)) in z.iter().zip(rows) {
            let fit = intercept + dot(&beta, zi);
            rss += (y - fit).powi(2);
            df += quadratic(&inverse, zi);
        }
        let dof = (n as f64 - 1.0 - df).max(0.0);
        let sd = ((rss + PRIOR_WEIGHT * PRIOR_SD * PRIOR_SD) / (dof + PRIOR_WEIGHT)).sqrt();
        Some(Limit { label, mean, scale, intercept, beta, inverse, sd, n })
    }

    /// Predicted `ln(share)` and its standard deviation.
    fn predict_features(&self, f: &[f64]) -> (f64, f64) {
        let z = standardise(f, &self.mean, &self.scale);
        let mean = self.intercept + dot(&self.beta, &z);
        let var = self.sd * self.sd * (1.0 + 1.0 / self.n as f64 + quadratic(&self.inverse, &z));
        (mean, var.sqrt())
    }

    /// The predicted share of the cap at `x`, and the chance it exceeds the cap.
    pub(super) fn predict(&self, space: &Space, x: &[f64]) -> (f64, f64) {
        let (mean, sd) = self.predict_features(&features(space, x));
        (mean.exp(), normal_cdf(mean / sd))
    }
}

/// A point of the unit cube as regression features: positive numeric knobs as logarithms of their
/// values, others as their position in the range, choices as one indicator per option but the
/// first.
fn features(space: &Space, x: &[f64]) -> Vec<f64> {
    let mut f = Vec::new();
    for (dim, &xi) in space.dims.iter().zip(x) {
        match dim {
            Dim::Number { lo, hi, log } => {
                let raw = lo + xi.clamp(0.0, 1.0) * (hi - lo);
                // A log-float's range is already in log space.
                f.push(if *log {
                    raw
                } else if *lo > 0.0 {
                    raw.ln()
                } else {
                    xi
                });
            }
            Dim::Choice(options) => f.extend((1..options.len()).map(|i| if xi as usize == i { 1.0 } else { 0.0 })),
        }
    }
    f
}

fn standardise(f: &[f64], mean: &[f64], scale: &[f64]) -> Vec<f64> {
    f.iter().zip(mean).zip(scale).map(|((v, m), s)| (v - m) / s).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `z' M z`.
fn quadratic(m: &[Vec<f64>], z: &[f64]) -> f64 {
    m.iter().zip(z).map(|(row, zi)| zi * dot(row, z)).sum()
}

/// The inverse of a symmetric positive definite matrix, by Gauss-Jordan elimination with partial
/// pivoting; `None` if it is singular.
fn invert(mut a: Vec<Vec<f64>>) -> Option<Vec<Vec<f64>>> {
    let n = a.len();
    let mut inv: Vec<Vec<f64>> = (0..n).map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect()).collect();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        inv.swap(col, pivot);
        let d = a[col][col];
        for k in 0..n {
            a[col][k] /= d;
            inv[col][k] /= d;
        }
        for row in 0..n {
            if row != col {
                let factor = a[row][col];
                if factor != 0.0 {
                    for k in 0..n {
                        a[row][k] -= factor * a[col][k];
                        inv[row][k] -= factor * inv[col][k];
                    }
                }
            }
        }
    }
    Some(inv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use postdoc_core::{KnobSpec, KnobValue};
    use std::collections::BTreeMap;

    /// A model's bytes: context times width times bytes per weight; float32 at full size is over
    /// the cap. Dimensions in order: context, dtype, lr, width.
    fn space() -> Space {
        Space::new(&BTreeMap::from([
            ("context".to_string(), KnobSpec::Int([2, 32])),
            ("width".to_string(), KnobSpec::Int([16, 512])),
            ("lr".to_string(), KnobSpec::LogFloat([1e-4, 1e-1])),
            ("dtype".to_string(), KnobSpec::Choice(vec![KnobValue::Text("f32".into()), KnobValue::Text("i8".into())])),
        ]))
    }

    fn share(space: &Space, x: &[f64]) -> f64 {
        let v = space.decode(x);
        let n = |k: &str| match v[k] {
            KnobValue::Int(i) => i as f64,
            _ => unreachable!(),
        };
        let bytes = if v["dtype"] == KnobValue::Text("i8".into()) { 1.0 } else { 4.0 };
        n("context") * n("width") * bytes / 40_000.0
    }

    #[test]
    fn predicts_a_cap_it_has_not_yet_crossed() {
        let space = space();
        // Small float32 and int8 models, all well under the cap.
        let points = [
            [0.05, 0.0, 0.3, 0.35],
            [0.35, 0.0, 0.8, 0.05],
            [0.2, 1.0, 0.1, 0.2],
            [0.4, 1.0, 0.6, 0.4],
            [0.1, 0.0, 0.9, 0.1],
            [0.3, 0.0, 0.2, 0.3],
            [0.25, 1.0, 0.45, 0.1],
            [0.15, 0.0, 0.55, 0.25],
        ];
        let shares: Vec<(&[f64], Share)> =
            points.iter().map(|p| (p.as_slice(), Share { used: share(&space, p), at_least: false })).collect();
        assert!(shares.iter().all(|(_, s)| s.used < 0.5), "the fixture stays under the cap");
        let limit = Limit::fit(&space, Label::SizeBlocked, &shares).expect("eight exact points are enough");
        let big = [0.9, 0.0, 0.5, 0.9];
        let small = [0.1, 0.0, 0.5, 0.1];
        let (big_share, p_big) = limit.predict(&space, &big);
        let (_, p_small) = limit.predict(&space, &small);
        assert!(share(&space, &big) > 1.0 && big_share > 1.0, "predicted {big_share:.2}");
        assert!(p_big > 0.6 && p_small < 0.05, "p(over) big {p_big:.2}, small {p_small:.2}");
        // The same model in int8 is a quarter of the size, under the cap.
        let (int8_share, p_int8) = limit.predict(&space, &[0.9, 1.0, 0.5, 0.9]);
        assert!((big_share / int8_share - 4.0).abs() < 1.0, "{big_share:.2} / {int8_share:.2}");
        assert!(p_int8 < p_big, "{p_int8:.2} vs {p_big:.2}");
    }

    #[test]
    fn a_cap_the_knobs_never_moved_is_not_called_risky_where_they_have_not_been() {
        let space = space();
        // An optimizer's trials: only the learning rate moves, the artifact stays at half the cap.
        let points: Vec<[f64; 4]> = (0..6).map(|i| [0.3, 0.0, 0.1 * i as f64, 0.3]).collect();
        let shares: Vec<(&[f64], Share)> = points
            .iter()
            .enumerate()
            .map(|(i, p)| (p.as_slice(), Share { used: 0.5 * (1.0 + 0.002 * i as f64), at_least: false }))
            .collect();
        let limit = Limit::fit(&space, Label::SizeBlocked, &shares).unwrap();
        let (share, p_over) = limit.predict(&space, &[0.3, 0.0, 1.0, 0.3]);
        assert!((share - 0.5).abs() < 0.05 && p_over < 0.05, "share {share:.2}, p(over) {p_over:.3}");
    }

    #[test]
    fn waits_for_exact_measurements() {
        let space = space();
        let at = [0.5, 0.0, 0.5, 0.5];
        let stopped = vec![(at.as_slice(), Share { used: 1.0, at_least: true }); 5];
        assert!(Limit::fit(&space, Label::TrainOverrun, &stopped).is_none());
        let two = vec![(at.as_slice(), Share { used: 0.5, at_least: false }); 2];
        assert!(Limit::fit(&space, Label::TrainOverrun, &two).is_none());
    }

    #[test]
    fn inverts_what_it_can_and_refuses_what_it_cannot() {
        let inv = invert(vec![vec![4.0, 1.0], vec![1.0, 3.0]]).unwrap();
        let expect = [[3.0 / 11.0, -1.0 / 11.0], [-1.0 / 11.0, 4.0 / 11.0]];
        for i in 0..2 {
            for j in 0..2 {
                assert!((inv[i][j] - expect[i][j]).abs() < 1e-12, "{inv:?}");
            }
        }
        assert!(invert(vec![vec![1.0, 2.0], vec![2.0, 4.0]]).is_none());
    }
}
