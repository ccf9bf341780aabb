//! TensorFlow's default histogram buckets and binning.

use std::sync::OnceLock;

use crate::proto::HistogramProto;

/// TensorFlow's default histogram bucket limits (right edges), increasing.
///
/// Built as TensorFlow's `histogram.cc` builds them: starting at `1e-12`,
/// each limit is the previous times `1.1` while below `1e20` (774 limits),
/// then `f64::MAX`; the same limits negated come first in reverse order,
/// and `0.0` sits in the middle. 1551 limits in all, from `-f64::MAX` to
/// `f64::MAX`.
///
/// ```
/// let limits = htsr_tensorboard::default_bucket_limits();
/// assert_eq!(limits.len(), 1551);
/// assert_eq!(limits[775], 0.0);
/// assert_eq!(limits[776], 1e-12);
/// assert_eq!(*limits.last().unwrap(), f64::MAX);
/// ```
pub fn default_bucket_limits() -> &'static [f64] {
    static LIMITS: OnceLock<Vec<f64>> = OnceLock::new();
    LIMITS.get_or_init(|| {
        let mut positive = Vec::new();
        let mut v = 1.0e-12_f64;
        while v < 1.0e20 {
            positive.push(v);
            v *= 1.1;
        }
        positive.push(f64::MAX);
        let mut limits: Vec<f64> = positive.iter().rev().map(|&x| -x).collect();
        limits.push(0.0);
        limits.extend_from_slice(&positive);
        limits
    })
}

/// Bins `values` into the default buckets and encodes the result as
/// TensorFlow's `Histogram::EncodeToProto` does with
/// `preserve_zero_buckets = false` (each run of empty buckets becomes one
/// empty bucket whose limit is the run's last limit), except that the empty
/// runs before the first and after the last non-empty bucket are dropped.
///
/// Returns an error message when a value is NaN or infinite.
pub(crate) fn histogram_from_values(values: &[f64]) -> Result<HistogramProto, String> {
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(format!(
            "value {} at index {i} is not finite; histograms take finite values only",
            values[i]
        ));
    }
    if values.is_empty() {
        // Not TensorFlow's empty histogram (min = f64::MAX, max = -f64::MAX,
        // one empty bucket up to f64::MAX): TensorBoard's Rust data server
        // turns that into one bucket spanning [f64::MAX, -f64::MAX]. With
        // no buckets, both of TensorBoard's loaders show an empty histogram.
        return Ok(HistogramProto::default());
    }
    let limits = default_bucket_limits();
    let mut counts = vec![0.0_f64; limits.len()];
    let mut min = f64::MAX;
    let mut max = -f64::MAX;
    let mut sum = 0.0;
    let mut sum_squares = 0.0;
    for &v in values {
        // std::upper_bound: the first limit greater than v. The last limit
        // is f64::MAX, so a finite v always finds one.
        let b = limits.partition_point(|&limit| limit <= v);
        counts[b.min(limits.len() - 1)] += 1.0;
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
        sum += v;
        sum_squares += v * v;
    }

    let mut bucket_limit = Vec::new();
    let mut bucket = Vec::new();
    let mut i = 0;
    while i < counts.len() {
        let mut end = limits[i];
        let mut count = counts[i];
        i += 1;
        if count <= 0.0 {
            while i < counts.len() && counts[i] <= 0.0 {
                end = limits[i];
                count = counts[i];
                i += 1;
            }
        }
        bucket_limit.push(end);
        bucket.push(count);
    }
    // Unlike TensorFlow, drop the empty run at each end. TensorBoard draws the first bucket from `min` and the
    // last to `max`; its Rust data server (the default loader) keeps the
    // outer empty buckets, which then run backwards ([min, limit < min] and
    // [limit > max, max]). Its Python loader drops them itself. Interior
    // empty runs stay: their limit is the next bucket's left edge. (Some
    // bucket is non-empty: `values` is not empty.)
    if bucket.last() == Some(&0.0) {
        bucket.pop();
        bucket_limit.pop();
    }
    if bucket.first() == Some(&0.0) {
        bucket.remove(0);
        bucket_limit.remove(0);
    }

    Ok(HistogramProto {
        min,
        max,
        num: values.len() as f64,
        sum,
        sum_squares,
        bucket_limit,
        bucket,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_symmetric_and_increasing() {
        let l = default_bucket_limits();
        assert_eq!(l.len(), 2 * 775 + 1);
        assert!(l.windows(2).all(|w| w[0] < w[1]));
        for k in 0..l.len() {
            assert_eq!(l[k], -l[l.len() - 1 - k]);
        }
        assert_eq!(l[0], -f64::MAX);
        // Last finite limit below 1e20, and the next one would not be.
        let last = l[l.len() - 2];
        assert!(last < 1e20 && last * 1.1 >= 1e20, "{last}");
    }

    #[test]
    fn bins_like_upper_bound() {
        let l = default_bucket_limits();
        let zero = 775;
        // 0.0 and -0.0 fall in [0, 1e-12), whose right edge is 1e-12.
        // A value equal to a limit goes to the bucket on its right.
        let h = histogram_from_values(&[0.0, -0.0, 1e-12, -1e-12, 5.0]).unwrap();
        let count_at = |limit: f64| {
            let i = h.bucket_limit.iter().position(|&x| x == limit).unwrap();
            h.bucket[i]
        };
        assert_eq!(count_at(l[zero + 1]), 2.0); // 0.0, -0.0
        assert_eq!(count_at(l[zero + 2]), 1.0); // 1e-12
        assert_eq!(count_at(l[zero]), 1.0); // -1e-12 in [-1e-12, 0)
        let five = l.partition_point(|&x| x <= 5.0);
        assert!(l[five - 1] <= 5.0 && 5.0 < l[five]);
        assert_eq!(count_at(l[five]), 1.0);
        assert_eq!(h.bucket.iter().sum::<f64>(), 5.0);
        assert_eq!((h.min, h.max, h.num), (-1e-12, 5.0, 5.0));
    }

    #[test]
    fn empty_runs_collapse_and_outer_runs_go() {
        let h = histogram_from_values(&[1.0, 1.0, 2.0]).unwrap();
        // [1.0's bucket], one empty run, [2.0's bucket]; no outer runs.
        assert_eq!(h.bucket, vec![2.0, 0.0, 1.0]);
        let l = default_bucket_limits();
        let right_edge = |v: f64| l[l.partition_point(|&x| x <= v)];
        let left_edge = |v: f64| l[l.partition_point(|&x| x <= v) - 1];
        assert_eq!(
            h.bucket_limit,
            vec![right_edge(1.0), left_edge(2.0), right_edge(2.0)]
        );
        assert!(left_edge(1.0) <= 1.0 && 1.0 < right_edge(1.0));
        assert_eq!((h.sum, h.sum_squares), (4.0, 6.0));

        // Adjacent buckets: no empty run at all.
        let a = 1.0;
        let b = right_edge(a); // lands in the next bucket
        let h = histogram_from_values(&[a, b]).unwrap();
        assert_eq!(h.bucket, vec![1.0, 1.0]);
        assert_eq!(h.bucket_limit, vec![b, right_edge(b)]);

        // Values at the extremes: first and last default buckets.
        let h = histogram_from_values(&[-f64::MAX, f64::MAX]).unwrap();
        assert_eq!(h.bucket.first(), Some(&1.0));
        assert_eq!(h.bucket.last(), Some(&1.0));
        assert_eq!(h.bucket.len(), 3);
        assert_eq!(h.bucket_limit[0], l[1]);
        assert_eq!(*h.bucket_limit.last().unwrap(), f64::MAX);
    }

    #[test]
    fn empty_input_has_no_buckets() {
        let h = histogram_from_values(&[]).unwrap();
        assert!(h.bucket.is_empty() && h.bucket_limit.is_empty());
        assert_eq!(
            (h.min, h.max, h.num, h.sum, h.sum_squares),
            (0.0, 0.0, 0.0, 0.0, 0.0)
        );
    }

    #[test]
    fn non_finite_is_rejected() {
        let err = histogram_from_values(&[1.0, f64::NAN]).unwrap_err();
        assert!(err.contains("index 1"), "{err}");
        assert!(histogram_from_values(&[f64::INFINITY]).is_err());
        assert!(histogram_from_values(&[f64::MAX, -f64::MAX]).is_ok());
    }
}
