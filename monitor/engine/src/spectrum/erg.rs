//! The determinant condition of the SETOL theory (Martin & Hinrichs 2025), as WeightWatcher 0.7.7's
//! `analyze(ERG=True)` computes it (`apply_detX`, `RMT.detX_constraint`; docs/ALGORITHMS.md section 7): rescale the
//! ESD to unit mean, scan tails from the top down, and stop at the first whose eigenvalue product falls below 1.

use htsr_contracts::Erg;

/// `detX_num`, and the index of the tail's smallest eigenvalue, of an ascending ESD rescaled to unit mean.
///
/// WeightWatcher's exact rule, quirks included: fewer than 2 values or all values equal give (0, 0); index 0 is
/// never a candidate, so a spectrum whose every proper top tail has a product of at least 1 gives (n, 1); each
/// tail's product is formed afresh, multiplied in ascending order (as `np.prod` over the slice does), so that an
/// underflow or overflow happens where WeightWatcher's does.
fn scan(scaled: &[f64]) -> (usize, usize) {
    let n = scaled.len();
    if n < 2 || scaled[0] >= scaled[n - 1] {
        return (0, 0);
    }
    for idx in (1..n).rev() {
        let product = scaled[idx..].iter().fold(1.0, |p, v| p * v);
        if product < 1.0 {
            return (n - idx, idx);
        }
    }
    (n, 1)
}

/// The ERG columns of an ascending ESD `evals` (every eigenvalue of the layer, near-zero ones included, as
/// WeightWatcher uses them), with the power-law tail size when that fit succeeded.
pub fn erg(evals: &[f64], num_pl_spikes: Option<usize>) -> Erg {
    let n = evals.len();
    // WeightWatcher's `RMT.rescale_eigenvalues`: Ws = sqrt(n) / sqrt(sum), lambda * Ws^2 has mean 1.
    let sum: f64 = evals.iter().sum();
    let w_scale = (n as f64).sqrt() / sum.sqrt();
    let c = w_scale * w_scale;
    let scaled: Vec<f64> = evals.iter().map(|l| c * l).collect();
    let (num, idx) = scan(&scaled);
    let (val, val_unrescaled) = match scaled.get(idx) {
        Some(&v) => (v / c, v),
        None => (f64::NAN, f64::NAN),
    };
    Erg {
        detX_num: num,
        detX_val: val,
        detX_val_unrescaled: val_unrescaled,
        ERG_gap: num_pl_spikes.map(|k| num as i64 - k as i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_stops_where_its_product_first_falls_below_one() {
        // Unit mean already (sum 5 over 5 values): products of top tails 2.0, 2.0*1.2 = 2.4, 0.9*1.2*2.0 = 2.16,
        // 0.5*0.9*1.2*2.0 = 1.08; index 0 is never tried, so no crossing: WW's (n, 1).
        let e = erg(&[0.4, 0.5, 0.9, 1.2, 2.0], Some(2));
        assert_eq!((e.detX_num, e.ERG_gap), (5, Some(3)));
        assert_eq!(e.detX_val, 0.5);
        // A crossing: 0.1, 0.2, 0.3, 0.4, 4.0 (mean 1): tails 4.0, 1.6, 0.48 -> three eigenvalues, from 0.3.
        let e = erg(&[0.1, 0.2, 0.3, 0.4, 4.0], None);
        assert_eq!((e.detX_num, e.ERG_gap), (3, None));
        assert!((e.detX_val - 0.3).abs() < 1e-15);
        // Degenerate spectra.
        assert_eq!(erg(&[1.0, 1.0, 1.0], None).detX_num, 0);
        assert_eq!(erg(&[2.0], None).detX_num, 0);
    }
}
