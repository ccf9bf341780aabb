//! What the spectrum is computed from: one or more equally shaped matrices ("slices") delivered block by block, so
//! that a tensor is never copied whole into f64 and a file is read once, in order.

use faer::{Mat, MatMut};

use crate::checkpoint::CheckpointError;

/// Non-finite values met while filling a block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NonFinite {
    /// NaN values seen.
    pub nan: usize,
    /// Infinite values seen (either sign).
    pub inf: usize,
}

impl NonFinite {
    /// True when any NaN or infinity was seen.
    pub fn any(&self) -> bool {
        self.nan + self.inf > 0
    }

    /// Counts the non-finite values of `v`.
    #[inline(always)]
    pub fn count(&mut self, v: f64) {
        if !v.is_finite() {
            if v.is_nan() {
                self.nan += 1;
            } else {
                self.inf += 1;
            }
        }
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: NonFinite) {
        self.nan += other.nan;
        self.inf += other.inf;
    }
}

/// A stack of `slices()` matrices of `rows()` x `cols()`.
pub trait SliceSource: Sync {
    /// Rows of each slice.
    fn rows(&self) -> usize;
    /// Columns of each slice.
    fn cols(&self) -> usize;
    /// Number of slices (WeightWatcher's `rf`).
    fn slices(&self) -> usize;

    /// Fills `block` (its first `len` rows, column-major) with samples `start..start + len` of slice `p`: the
    /// slice's rows when `features_are_cols` (block = `W[start.., :]`), else its columns (block =
    /// `W[:, start..]^T`). Any scaling is applied. Returns the non-finite values it met.
    fn fill_block(
        &self,
        p: usize,
        features_are_cols: bool,
        start: usize,
        len: usize,
        block: MatMut<'_, f64>,
    ) -> Result<NonFinite, CheckpointError>;

    /// The whole slice `p` as a `rows` x `cols` matrix (for the SVD path and shuffling), with its non-finite count.
    fn read_slice(&self, p: usize) -> Result<(Mat<f64>, NonFinite), CheckpointError> {
        let mut m = Mat::<f64>::zeros(self.rows(), self.cols());
        let nf = self.fill_block(p, true, 0, self.rows(), m.as_mut())?;
        Ok((m, nf))
    }

    /// WeightWatcher's N: the larger side of a slice.
    fn n(&self) -> usize {
        self.rows().max(self.cols())
    }

    /// WeightWatcher's M: the smaller side of a slice.
    fn m(&self) -> usize {
        self.rows().min(self.cols())
    }
}

/// One dense matrix held by the caller, for the library API.
pub struct ArraySource<'a> {
    /// The matrix, read as one slice of `nrows` x `ncols`.
    pub matrix: ndarray::ArrayView2<'a, f64>,
}

impl SliceSource for ArraySource<'_> {
    fn rows(&self) -> usize {
        self.matrix.nrows()
    }
    fn cols(&self) -> usize {
        self.matrix.ncols()
    }
    fn slices(&self) -> usize {
        1
    }
    fn fill_block(
        &self,
        _p: usize,
        features_are_cols: bool,
        start: usize,
        len: usize,
        mut block: MatMut<'_, f64>,
    ) -> Result<NonFinite, CheckpointError> {
        let mut nf = NonFinite::default();
        let features = if features_are_cols {
            self.cols()
        } else {
            self.rows()
        };
        for f in 0..features {
            for i in 0..len {
                let v = if features_are_cols {
                    self.matrix[[start + i, f]]
                } else {
                    self.matrix[[f, start + i]]
                };
                nf.count(v);
                block[(i, f)] = v;
            }
        }
        Ok(nf)
    }
}

/// Stacked slices held as owned matrices (shuffled copies for the randomization).
pub struct OwnedSlices {
    /// The slices, all of the same shape.
    pub slices: Vec<Mat<f64>>,
}

impl SliceSource for OwnedSlices {
    fn rows(&self) -> usize {
        self.slices.first().map_or(0, |s| s.nrows())
    }
    fn cols(&self) -> usize {
        self.slices.first().map_or(0, |s| s.ncols())
    }
    fn slices(&self) -> usize {
        self.slices.len()
    }
    fn fill_block(
        &self,
        p: usize,
        features_are_cols: bool,
        start: usize,
        len: usize,
        mut block: MatMut<'_, f64>,
    ) -> Result<NonFinite, CheckpointError> {
        let s = &self.slices[p];
        let mut nf = NonFinite::default();
        if features_are_cols {
            for f in 0..s.ncols() {
                for i in 0..len {
                    let v = s[(start + i, f)];
                    nf.count(v);
                    block[(i, f)] = v;
                }
            }
        } else {
            for f in 0..s.nrows() {
                for i in 0..len {
                    let v = s[(f, start + i)];
                    nf.count(v);
                    block[(i, f)] = v;
                }
            }
        }
        Ok(nf)
    }
}
