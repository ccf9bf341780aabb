//! A layer's alpha history for the Layers table's sparkline, in bounded memory however long the run grows.
//!
//! Points are averaged into buckets; when `CAPACITY` buckets are full, neighbours are merged pairwise and the
//! bucket width doubles. So memory is O(CAPACITY) per layer and new checkpoints are appended without rereading
//! the layer's whole trajectory from the store.

/// Buckets kept per layer; a sparkline is at most a few dozen cells wide.
pub const CAPACITY: usize = 64;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct History {
    /// (sum of finite alphas, count of finite alphas) per finished bucket.
    buckets: Vec<(f64, u32)>,
    /// The bucket being filled: sum, finite count, points seen.
    open: (f64, u32, u64),
    /// Points per bucket.
    width: u64,
    /// Step of the last point pushed.
    pub last_step: Option<u64>,
    /// Points pushed in all.
    pub len: u64,
}

impl History {
    pub fn new() -> Self {
        History {
            width: 1,
            ..Default::default()
        }
    }

    pub fn push(&mut self, step: u64, alpha: Option<f64>) {
        let a = alpha.filter(|v| v.is_finite());
        self.open.0 += a.unwrap_or(0.0);
        self.open.1 += u32::from(a.is_some());
        self.open.2 += 1;
        self.len += 1;
        self.last_step = Some(step);
        if self.open.2 >= self.width {
            self.buckets.push((self.open.0, self.open.1));
            self.open = (0.0, 0, 0);
            if self.buckets.len() >= CAPACITY {
                self.buckets = self
                    .buckets
                    .chunks(2)
                    .map(|c| c.iter().fold((0.0, 0), |a, b| (a.0 + b.0, a.1 + b.1)))
                    .collect();
                self.width *= 2;
            }
        }
    }

    /// Mean alpha per bucket, oldest first (the open bucket included); NaN where a bucket had no finite alpha.
    pub fn values(&self) -> Vec<f64> {
        let mean = |(s, n): (f64, u32)| if n == 0 { f64::NAN } else { s / n as f64 };
        let mut v: Vec<f64> = self.buckets.iter().map(|&b| mean(b)).collect();
        if self.open.2 > 0 {
            v.push(mean((self.open.0, self.open.1)));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_histories_are_kept_exactly() {
        let mut h = History::new();
        for (i, a) in [2.0, 3.0, 4.0].into_iter().enumerate() {
            h.push(i as u64, Some(a));
        }
        h.push(3, None);
        let v = h.values();
        assert_eq!(&v[..3], &[2.0, 3.0, 4.0]);
        assert!(v[3].is_nan());
        assert_eq!((h.last_step, h.len), (Some(3), 4));
    }

    #[test]
    fn long_histories_stay_bounded_and_keep_their_mean() {
        let mut h = History::new();
        for i in 0..10_000u64 {
            h.push(i, Some(i as f64));
        }
        let v = h.values();
        assert!(v.len() <= CAPACITY + 1, "{}", v.len());
        assert!(
            v.windows(2).all(|w| w[1] > w[0]),
            "buckets stay in step order"
        );
        // The first bucket averages the first `width` steps, so it starts near 0 and the last is near 9999.
        assert!(v[0] < 200.0 && *v.last().unwrap() > 9_500.0);
    }
}
