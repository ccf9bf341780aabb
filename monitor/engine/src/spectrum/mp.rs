//! The Marchenko-Pastur bulk fit, by WeightWatcher's procedure (WW `mp_fit`, docs/ALGORITHMS.md section 5): rescale
//! the ESD to unit mean, estimate its density with a linear-kernel KDE (bandwidth 0.1), brute-force sigma over
//! [0.05, 2) * s0 in steps of 0.01 * s0, polish with Nelder-Mead, and count spikes above the bulk edge plus
//! sqrt(Tracy-Widom).

/// KDE bandwidth in unit-mean units (WW: sklearn `KernelDensity(kernel='linear', bandwidth=0.1)`).
const KDE_BANDWIDTH: f64 = 0.1;
/// Points of the density grid over [0, lambda_max + 0.5] (WW `fit_density_with_range`).
const GRID_POINTS: usize = 1000;
/// Grid points where the KDE is at most this are ignored by the residual.
const DENSITY_FLOOR: f64 = 0.01;
/// The residual assigned to every point when the bulk is placed impossibly (WW's penalty).
const PENALTY: f64 = 1000.0;

/// A Marchenko-Pastur fit. `sigma`, `bulk_min`, `bulk_max`, `threshold` are in unit-mean units.
#[derive(Debug, Clone, PartialEq)]
pub struct MpResult {
    /// Scale sigma of the fitted MP law, in unit-mean units (WeightWatcher `sigma_mp`).
    pub sigma: f64,
    /// sqrt(n / sum(lambda)): multiplying W by this gives a unit-mean ESD (WW's `W_scale`).
    pub w_scale: f64,
    /// Lower bulk edge sigma^2 (1 - 1/sqrt(Q))^2, unit-mean units.
    pub bulk_min: f64,
    /// Upper bulk edge sigma^2 (1 + 1/sqrt(Q))^2, unit-mean units.
    pub bulk_max: f64,
    /// Tracy-Widom scale at the bulk edge, Q^(-1/2) * bulk_max^(2/3) * M^(-2/3) (Johnstone 2001).
    pub tracy_widom: f64,
    /// bulk_max + sqrt(TW): eigenvalues above it are spikes (WW's margin, ~10x the TW scale).
    pub threshold: f64,
    /// Eigenvalues above `threshold` (WeightWatcher `num_spikes`).
    pub num_spikes: usize,
    /// bulk_max / lambda_max, in unit-mean units; can exceed 1 for a random layer.
    pub mp_softrank: f64,
    /// lambda_max in unit-mean units.
    pub lambda_max: f64,
}

impl MpResult {
    /// The unit-mean factor: lambda_rescaled = lambda * w_scale^2.
    pub fn rescale(&self) -> f64 {
        self.w_scale * self.w_scale
    }

    /// The fit as stored: bulk edges converted back to the layer's units, sigma and mp_softrank in unit-mean units.
    pub fn to_record(&self) -> htsr_contracts::MpFit {
        let s2 = self.rescale();
        htsr_contracts::MpFit {
            sigma_mp: self.sigma,
            bulk_min: self.bulk_min / s2,
            bulk_max: self.bulk_max / s2,
            num_spikes: self.num_spikes,
            mp_softrank: self.mp_softrank,
            w_scale: self.w_scale,
        }
    }
}

/// The law itself (density and bulk edges) is htsr-contracts', which the views draw with.
pub use htsr_contracts::marchenko_pastur::{density as mp_density, edges as mp_edges};

/// How a square layer (Q = 1) gets its MP fit. WeightWatcher fits the quarter-circle law to singular values there
/// with the support fixed at [0, 2] whatever sigma is (`RMT.quarter_circle_fun`); htsr can also fit the law with
/// sigma in its support, (1/(pi sigma^2)) sqrt(4 sigma^2 - nu^2) on [0, 2 sigma]. The planted-spike study in
/// docs/ALGORITHMS.md section 5.6 decides the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SquareMp {
    /// WeightWatcher 0.7.7's fit, reproduced exactly.
    Ww,
    /// The quarter-circle law with sigma in its support, and the out-of-range penalty of the Q > 1 fit: the
    /// default, because it recovers planted spikes and the noise's sigma better (the study in section 5.6).
    #[default]
    Htsr,
}

/// WeightWatcher's quarter-circle model (`RMT.quarter_circle_fun`): (1/(pi sigma^2)) sqrt(4 - nu^2), 0 above 2.
fn quarter_circle_ww(nu: f64, sigma: f64) -> f64 {
    let v = 1.0 / (std::f64::consts::PI * sigma * sigma) * (4.0 - nu * nu).sqrt();
    if v.is_nan() {
        0.0
    } else {
        v
    }
}

/// The quarter-circle density of singular values with sigma in its support, on [0, 2 sigma].
fn quarter_circle_htsr(nu: f64, sigma: f64) -> f64 {
    let s2 = sigma * sigma;
    let r2 = 4.0 * s2 - nu * nu;
    if nu < 0.0 || r2 <= 0.0 {
        return 0.0;
    }
    r2.sqrt() / (std::f64::consts::PI * s2)
}

/// The bulk edges (lower, upper) as `RMT.resid_mp` computes them, with sqrt(1/Q).
fn ww_edges(sigma: f64, q: f64) -> (f64, f64) {
    let r = (1.0 / q).sqrt();
    ((sigma * (1.0 - r)).powi(2), (sigma * (1.0 + r)).powi(2))
}

/// The MP model of `RMT.resid_mp` for Q != 1 with edges `(a, b)`, in WeightWatcher's own arithmetic, with
/// `np.nan_to_num`'s treatment of the values outside the support.
fn mp_model_ww(x: f64, sigma: f64, q: f64, (a, b): (f64, f64)) -> f64 {
    let v = 1.0 / (2.0 * std::f64::consts::PI * sigma * sigma * x * (1.0 / q))
        * ((b - x) * (x - a)).sqrt();
    if v.is_nan() {
        0.0
    } else if v.is_infinite() {
        f64::MAX.copysign(v)
    } else {
        v
    }
}

/// Linear-kernel density estimate on sorted data, evaluated with prefix sums in O(log n) per point.
struct LinearKde<'a> {
    sorted: &'a [f64],
    prefix: Vec<f64>,
}

impl<'a> LinearKde<'a> {
    fn new(sorted: &'a [f64]) -> Self {
        let mut prefix = Vec::with_capacity(sorted.len() + 1);
        prefix.push(0.0);
        for v in sorted {
            prefix.push(prefix.last().copied().unwrap_or(0.0) + v);
        }
        LinearKde { sorted, prefix }
    }

    /// (1 / (n h)) * sum over |x - x_i| < h of (1 - |x - x_i| / h): sklearn's normalized linear kernel.
    fn density(&self, x: f64, h: f64) -> f64 {
        let lo = self.sorted.partition_point(|v| *v <= x - h);
        let mid = self.sorted.partition_point(|v| *v <= x);
        let hi = self.sorted.partition_point(|v| *v < x + h);
        let left_n = (mid - lo) as f64;
        let right_n = (hi - mid) as f64;
        let left_sum = self.prefix[mid] - self.prefix[lo];
        let right_sum = self.prefix[hi] - self.prefix[mid];
        // sum (1 - (x - v)/h) on the left, (1 - (v - x)/h) on the right
        let total = left_n - (x * left_n - left_sum) / h + right_n - (right_sum - x * right_n) / h;
        total.max(0.0) / (self.sorted.len() as f64 * h)
    }
}

/// Fits the MP bulk to `evals` (any order) of a layer with aspect ratio `q` = N/M and per-slice side `m`, by
/// WeightWatcher's `mp_fit` step for step and with its arithmetic (docs/ALGORITHMS.md section 5). Returns None
/// when the ESD has no positive mass.
pub fn fit_mp(evals: &[f64], q: f64, m: usize, square: SquareMp) -> Option<MpResult> {
    let n = evals.len();
    let sum: f64 = evals.iter().sum();
    if n == 0 || !(sum.is_finite() && sum > 0.0) {
        return None;
    }
    // Unit-mean rescaling (WW: Ws = sqrt(n) / sqrt(sum)).
    let w_scale = (n as f64).sqrt() / sum.sqrt();
    let s2 = w_scale * w_scale;
    let mut scaled: Vec<f64> = evals.iter().map(|l| s2 * l).collect();
    scaled.sort_by(f64::total_cmp);
    let lambda_max = *scaled.last()?;
    let quarter_circle = q == 1.0;
    // WW fits the quarter-circle law to singular values when Q == 1.
    let data: Vec<f64> = if quarter_circle {
        scaled.iter().map(|l| l.sqrt()).collect()
    } else {
        scaled.clone()
    };
    let data_max = *data.last()?;
    let kde = LinearKde::new(&data);
    // np.linspace(0, max + 0.5, 1000): x_j = j * (L / 999).
    let grid_max = data_max + 0.5;
    let dx = grid_max / (GRID_POINTS - 1) as f64;
    let mut xs = Vec::new();
    let mut dens = Vec::new();
    for j in 0..GRID_POINTS {
        let x = if j == GRID_POINTS - 1 {
            grid_max
        } else {
            j as f64 * dx
        };
        let d = kde.density(x, KDE_BANDWIDTH);
        if d > DENSITY_FLOOR {
            xs.push(x);
            dens.push(d);
        }
    }
    if xs.is_empty() {
        return None;
    }
    let x_peak = xs[dens
        .iter()
        .enumerate()
        .fold(0, |best, (i, d)| if *d > dens[best] { i } else { best })];
    let kept_max = *xs.last()?;
    let penalized = PENALTY * PENALTY * xs.len() as f64;
    let objective = |sigma: f64| -> f64 {
        if quarter_circle {
            let model: fn(f64, f64) -> f64 = match square {
                SquareMp::Ww => quarter_circle_ww,
                SquareMp::Htsr => {
                    let hi = 2.0 * sigma.abs();
                    if hi < x_peak || hi > kept_max {
                        return penalized;
                    }
                    quarter_circle_htsr
                }
            };
            return xs
                .iter()
                .zip(&dens)
                .map(|(x, d)| (model(*x, sigma) - d).powi(2))
                .sum();
        }
        let (lo, hi) = ww_edges(sigma, q);
        if hi < x_peak || hi > kept_max || lo > x_peak {
            return penalized;
        }
        xs.iter()
            .zip(&dens)
            .map(|(x, d)| (mp_model_ww(*x, sigma, q, (lo, hi)) - d).powi(2))
            .sum()
    };
    // s0 puts the bulk edge exactly at lambda_max (WW `RMT.calc_sigma`, on eigenvalues even when Q == 1).
    let inv = 1.0 / q.sqrt();
    let s0 = (lambda_max / (1.0 + inv).powi(2)).sqrt();
    // scipy.optimize.brute over np.arange(0.05 s0, 2 s0, 0.01 s0): numpy fills a[i] = start + i * (a[1] - a[0]).
    let start = 0.05 * s0;
    let stop = 2.0 * s0;
    let step = 0.01 * s0;
    let count = ((stop - start) / step).ceil() as usize;
    let delta = (start + step) - start;
    let mut best = (start, f64::INFINITY);
    for j in 0..count {
        let sigma = start + j as f64 * delta;
        let f = objective(sigma);
        if f < best.1 {
            best = (sigma, f);
        }
    }
    // scipy.optimize.brute polishes its grid optimum with fmin (Nelder-Mead) by default.
    let sigma = nelder_mead_1d(&objective, best.0).abs();
    // The outputs use the MP edges with 1/sqrt(Q) for every Q (for Q = 1: 0 and 4 sigma^2).
    let bulk_max = (sigma * (1.0 + inv)).powi(2);
    let bulk_min = (sigma * (1.0 - inv)).powi(2);
    let tracy_widom = inv * bulk_max.powf(2.0 / 3.0) * (m as f64).powf(-2.0 / 3.0);
    let threshold = bulk_max + tracy_widom.sqrt();
    let num_spikes = scaled.iter().filter(|l| **l > threshold).count();
    Some(MpResult {
        sigma,
        w_scale,
        bulk_min,
        bulk_max,
        tracy_widom,
        threshold,
        num_spikes,
        mp_softrank: bulk_max / lambda_max,
        lambda_max,
    })
}

/// scipy.optimize.fmin in one dimension, with its defaults: initial step 5%, xtol = ftol = 1e-4, at most 200
/// iterations and evaluations, coefficients rho 1, chi 2, psi 0.5, sigma 0.5.
pub fn nelder_mead_1d(f: &dyn Fn(f64) -> f64, x0: f64) -> f64 {
    const XTOL: f64 = 1e-4;
    const FTOL: f64 = 1e-4;
    const MAX: usize = 200;
    let x1 = if x0 != 0.0 { x0 * 1.05 } else { 0.00025 };
    let mut sim = [(x0, f(x0)), (x1, f(x1))];
    let mut calls = 2;
    let sort = |s: &mut [(f64, f64); 2]| {
        if s[1].1 < s[0].1 {
            s.swap(0, 1);
        }
    };
    sort(&mut sim);
    let mut iterations = 1;
    while calls < MAX && iterations < MAX {
        if (sim[1].0 - sim[0].0).abs() <= XTOL && (sim[0].1 - sim[1].1).abs() <= FTOL {
            break;
        }
        let xbar = sim[0].0;
        let worst = sim[1].0;
        let xr = 2.0 * xbar - worst;
        let fxr = f(xr);
        calls += 1;
        let mut shrink = false;
        if fxr < sim[0].1 {
            let xe = 3.0 * xbar - 2.0 * worst;
            let fxe = f(xe);
            calls += 1;
            sim[1] = if fxe < fxr { (xe, fxe) } else { (xr, fxr) };
        } else {
            // With two vertices the "second worst" is the best, so a reflection that is not better than the
            // best is never accepted: contract outside or inside.
            if fxr < sim[1].1 {
                let xc = 1.5 * xbar - 0.5 * worst;
                let fxc = f(xc);
                calls += 1;
                if fxc <= fxr {
                    sim[1] = (xc, fxc);
                } else {
                    shrink = true;
                }
            } else {
                let xcc = 0.5 * xbar + 0.5 * worst;
                let fxcc = f(xcc);
                calls += 1;
                if fxcc < sim[1].1 {
                    sim[1] = (xcc, fxcc);
                } else {
                    shrink = true;
                }
            }
            if shrink {
                let x = sim[0].0 + 0.5 * (sim[1].0 - sim[0].0);
                sim[1] = (x, f(x));
                calls += 1;
            }
        }
        iterations += 1;
        sort(&mut sim);
    }
    sim[0].0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kde_matches_direct_sum() {
        let data = [0.1, 0.15, 0.4, 0.42, 0.43, 1.0];
        let kde = LinearKde::new(&data);
        for x in [0.0, 0.12, 0.41, 0.5, 0.95, 2.0] {
            let direct: f64 = data
                .iter()
                .map(|v| (1.0 - (x - v).abs() / 0.1).max(0.0))
                .sum::<f64>()
                / (data.len() as f64 * 0.1);
            assert!((kde.density(x, 0.1) - direct).abs() < 1e-12, "x={x}");
        }
    }

    #[test]
    fn nelder_mead_reproduces_scipy_fmin() {
        // Final x of scipy 1.17.1 `optimize.fmin(f, x0, disp=0)` on these objectives (same arithmetic, so equal
        // to rounding): a bumpy well, a penalty plateau like the MP objective's, and a flat quartic.
        // (objective, x0, scipy's answer)
        type Case<'a> = (&'a dyn Fn(f64) -> f64, f64, f64);
        let cases: [Case<'_>; 3] = [
            (
                &|x: f64| (x - 2.5).powi(2) + 0.3 * (5.0 * x).sin(),
                1.0,
                2.263281250000003,
            ),
            (
                &|x: f64| if x < 0.8 { 1e6 } else { (x - 1.3).powi(2) },
                0.9,
                1.2999902343749992,
            ),
            (
                &|x: f64| (x - 0.7).powi(4) + 0.01 * x,
                3.0,
                0.5642578124999942,
            ),
        ];
        for (f, x0, scipy) in cases {
            let x = nelder_mead_1d(f, x0);
            assert!(
                (x - scipy).abs() <= 1e-12 * scipy.abs(),
                "{x} vs scipy {scipy}"
            );
        }
    }

    #[test]
    fn nelder_mead_finds_a_parabola_minimum() {
        let x = nelder_mead_1d(&|x| (x - 2.5).powi(2), 1.0);
        assert!((x - 2.5).abs() < 1e-3, "{x}");
    }
}
