//! Tensors to matrices with WeightWatcher 0.7.7's default conventions (docs/ALGORITHMS.md section 1): a 2-D tensor
//! is one dense matrix; a 4-D Conv2D kernel is kh*kw slices of (out, in), scaled by conv2d_norm; and, beyond
//! WeightWatcher, a 3-D Conv1D kernel is k slices of (out, in). Slices are pooled into one spectrum.

use htsr_contracts::LayerKind;

/// Where element (row, col) of slice `p` sits in the tensor's flat row-major data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SliceLayout {
    /// Elements between slice `p` and slice `p + 1` (0 for a single dense matrix).
    pub slice_stride: usize,
    /// Elements between consecutive rows of a slice.
    pub row_stride: usize,
    /// Elements between consecutive columns of a slice.
    pub col_stride: usize,
}

/// How one tensor is read as `slices` matrices of `rows` x `cols`.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixPlan {
    /// How the tensor was read: dense, Conv1D or Conv2D.
    pub kind: LayerKind,
    /// Rows of each slice: out channels for PyTorch kernels (`in` for a Keras-layout Conv2D).
    pub rows: usize,
    /// Columns of each slice: in channels for PyTorch kernels (`out` for a Keras-layout Conv2D).
    pub cols: usize,
    /// Number of slices (WeightWatcher's `rf`): kh*kw for Conv2D, k for Conv1D, 1 for dense.
    pub slices: usize,
    /// Where each slice's elements sit in the flat data.
    pub layout: SliceLayout,
    /// Every element is multiplied by this before the spectrum is taken.
    pub scale: f64,
}

impl MatrixPlan {
    /// The plan for a tensor of this shape, or the reason it is not a layer.
    pub fn for_shape(shape: &[usize]) -> Result<Self, String> {
        if shape.contains(&0) {
            return Err(format!("empty tensor (shape {shape:?})"));
        }
        match *shape {
            [] => Err("scalar: not a layer".into()),
            [_] => Err("1-D tensor (bias or norm scale): not a layer".into()),
            [rows, cols] => Ok(MatrixPlan {
                kind: LayerKind::Dense,
                rows,
                cols,
                slices: 1,
                layout: SliceLayout {
                    slice_stride: 0,
                    row_stride: cols,
                    col_stride: 1,
                },
                scale: 1.0,
            }),
            [out, inp, k] => {
                // Read as PyTorch's Conv1d layout (out, in, k), whatever the sizes: safetensors files come from
                // PyTorch, and no size rule tells (4, 256, 8) from a Keras (k, in, out) kernel. Not scaled:
                // WeightWatcher's conv2d_norm applies to Conv2D only, and it never slices Conv1D.
                Ok(MatrixPlan {
                    kind: LayerKind::Conv1d,
                    rows: out,
                    cols: inp,
                    slices: k,
                    layout: SliceLayout {
                        slice_stride: 1,
                        row_stride: inp * k,
                        col_stride: k,
                    },
                    scale: 1.0,
                })
            }
            [a, b, c, d] => {
                // WW's layout test: channel axes are the larger pair. conv2d_norm with pooling multiplies each
                // slice by sqrt(1/2), which halves every eigenvalue (WW `apply_normalize_Wmats`).
                let scale = std::f64::consts::FRAC_1_SQRT_2;
                if a + b >= c + d {
                    Ok(MatrixPlan {
                        kind: LayerKind::Conv2d,
                        rows: a,
                        cols: b,
                        slices: c * d,
                        layout: SliceLayout {
                            slice_stride: 1,
                            row_stride: b * c * d,
                            col_stride: c * d,
                        },
                        scale,
                    })
                } else {
                    Ok(MatrixPlan {
                        kind: LayerKind::Conv2d,
                        rows: c,
                        cols: d,
                        slices: a * b,
                        layout: SliceLayout {
                            slice_stride: c * d,
                            row_stride: d,
                            col_stride: 1,
                        },
                        scale,
                    })
                }
            }
            _ => Err(format!(
                "{}-D tensor: htsr reads 2-D (dense), 3-D (conv1d) and 4-D (conv2d) weights",
                shape.len()
            )),
        }
    }

    /// The larger side of one slice (WeightWatcher's N).
    pub fn n(&self) -> usize {
        self.rows.max(self.cols)
    }

    /// The smaller side of one slice (WeightWatcher's M).
    pub fn m(&self) -> usize {
        self.rows.min(self.cols)
    }

    /// Eigenvalues in the pooled spectrum, M * rf.
    pub fn num_evals(&self) -> usize {
        self.m() * self.slices
    }

    /// Flat index of element (row, col) of slice `p`.
    #[inline(always)]
    pub fn index(&self, p: usize, row: usize, col: usize) -> usize {
        p * self.layout.slice_stride + row * self.layout.row_stride + col * self.layout.col_stride
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pytorch_conv2d_slices_are_out_by_in() {
        let plan = MatrixPlan::for_shape(&[64, 32, 3, 3]).unwrap();
        assert_eq!((plan.rows, plan.cols, plan.slices), (64, 32, 9));
        assert_eq!(plan.num_evals(), 32 * 9);
        // element (o=1, i=2) of kernel position (0, 1) = slice 1
        assert_eq!(plan.index(1, 1, 2), (32 + 2) * 9 + 1);
    }

    #[test]
    fn keras_conv2d_slices_are_in_by_out() {
        let plan = MatrixPlan::for_shape(&[3, 3, 16, 8]).unwrap();
        assert_eq!((plan.rows, plan.cols, plan.slices), (16, 8, 9));
        assert_eq!(plan.index(4, 2, 3), 4 * 128 + 2 * 8 + 3);
    }

    #[test]
    fn conv1d_is_sliced_per_kernel_position() {
        let plan = MatrixPlan::for_shape(&[20, 10, 5]).unwrap();
        assert_eq!(plan.kind, LayerKind::Conv1d);
        assert_eq!((plan.rows, plan.cols, plan.slices), (20, 10, 5));
        assert_eq!(plan.index(3, 1, 2), (10 + 2) * 5 + 3);
    }

    #[test]
    fn conv1d_is_read_as_pytorch_even_with_few_outputs() {
        // (out=4, in=256, k=8): fewer outputs than kernel taps is still PyTorch's layout.
        let plan = MatrixPlan::for_shape(&[4, 256, 8]).unwrap();
        assert_eq!((plan.rows, plan.cols, plan.slices), (4, 256, 8));
        assert_eq!(plan.index(7, 3, 255), (3 * 256 + 255) * 8 + 7);
    }

    #[test]
    fn one_dimensional_tensors_are_not_layers() {
        assert!(MatrixPlan::for_shape(&[10]).unwrap_err().contains("1-D"));
        assert!(MatrixPlan::for_shape(&[2, 2, 2, 2, 2]).is_err());
        assert!(MatrixPlan::for_shape(&[0, 3]).is_err());
    }
}
