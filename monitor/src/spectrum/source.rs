//! What the spectrum is computed from: one or more equally shaped matrices ("slices") read element by element,
//! so that a tensor never has to be copied whole into f64.

/// A stack of `slices()` matrices of `rows()` x `cols()`.
pub trait SliceSource: Sync {
    fn rows(&self) -> usize;
    fn cols(&self) -> usize;
    fn slices(&self) -> usize;
    /// Element (row, col) of slice `p`, with any scaling already applied.
    fn get(&self, p: usize, row: usize, col: usize) -> f64;

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
    fn get(&self, _p: usize, row: usize, col: usize) -> f64 {
        self.matrix[[row, col]]
    }
}

/// Stacked slices held as owned column-major matrices (used for shuffled copies).
pub struct OwnedSlices {
    pub slices: Vec<faer::Mat<f64>>,
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
    fn get(&self, p: usize, row: usize, col: usize) -> f64 {
        self.slices[p][(row, col)]
    }
}
