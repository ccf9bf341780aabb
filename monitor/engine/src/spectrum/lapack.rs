//! The optional OpenBLAS backend (cargo feature `openblas`): the Gram product by `dsyrk` and the eigenvalues by
//! `dsyevd` (eigenvalues only: tridiagonalization + root-free QR). 1.3x faster than faer on the 4096x4096 layer
//! of docs/BENCHMARKS.md; faer stays the portable default.
//!
//! Why two hand-written declarations rather than the maintained `blas-sys` / `lapack-sys` bindings: those omit
//! the hidden character-length arguments that gfortran's calling convention appends for `CHARACTER` arguments.
//! `dsyevd` is reference LAPACK compiled by gfortran inside OpenBLAS, and calling it without those arguments is
//! undefined behaviour that has corrupted stacks in practice (the 2019 gfortran 9 sibling-call change), unless the
//! library happened to be built with `-fno-optimize-sibling-calls`. The declarations below follow gfortran's ABI
//! exactly, and there are only two of them.

use std::os::raw::{c_char, c_int};

use faer::{Mat, MatRef};

#[link(name = "openblas")]
extern "C" {
    fn dsyrk_(
        uplo: *const c_char,
        trans: *const c_char,
        n: *const c_int,
        k: *const c_int,
        alpha: *const f64,
        a: *const f64,
        lda: *const c_int,
        beta: *const f64,
        c: *mut f64,
        ldc: *const c_int,
        uplo_len: usize,
        trans_len: usize,
    );
    #[allow(clippy::too_many_arguments)]
    fn dsyevd_(
        jobz: *const c_char,
        uplo: *const c_char,
        n: *const c_int,
        a: *mut f64,
        lda: *const c_int,
        w: *mut f64,
        work: *mut f64,
        lwork: *const c_int,
        iwork: *mut c_int,
        liwork: *const c_int,
        info: *mut c_int,
        jobz_len: usize,
        uplo_len: usize,
    );
    fn openblas_set_num_threads(n: c_int);
}

/// Sets OpenBLAS's thread count.
pub fn set_threads(n: usize) {
    // SAFETY: a plain setter of OpenBLAS's global thread count.
    unsafe { openblas_set_num_threads(n.max(1) as c_int) }
}

fn int(v: usize) -> c_int {
    c_int::try_from(v).expect("matrix dimension fits a LAPACK integer")
}

/// gram (lower triangle) = block^T block, or += when `accumulate`.
pub fn syrk_lower(gram: &mut Mat<f64>, block: MatRef<'_, f64>, accumulate: bool) {
    let n = int(gram.nrows());
    let k = int(block.nrows());
    assert_eq!(block.row_stride(), 1, "column-major block");
    assert_eq!(gram.row_stride(), 1, "column-major gram");
    let lda = int(block.col_stride().max(1) as usize);
    let ldc = int(gram.col_stride().max(1) as usize);
    let (alpha, beta) = (1.0f64, if accumulate { 1.0f64 } else { 0.0 });
    // SAFETY: pointers and leading dimensions describe the faer matrices exactly; C is n x n, A is k x n.
    unsafe {
        dsyrk_(
            c"L".as_ptr(),
            c"T".as_ptr(),
            &n,
            &k,
            &alpha,
            block.as_ptr(),
            &lda,
            &beta,
            gram.as_ptr_mut(),
            &ldc,
            1,
            1,
        );
    }
}

/// All eigenvalues of the symmetric matrix whose lower triangle `a` holds (destroyed), ascending.
pub fn eigenvalues_lower(mut a: Mat<f64>) -> Option<Vec<f64>> {
    let n = int(a.nrows());
    let lda = int(a.col_stride().max(1) as usize);
    let mut w = vec![0.0f64; a.nrows()];
    // One call shape for both passes: jobz = 'N' (eigenvalues only), lower triangle.
    let mut dsyevd =
        |work: &mut [f64], iwork: &mut [c_int], lwork: c_int, liwork: c_int| -> c_int {
            let mut info: c_int = 0;
            // SAFETY: `a` is n x n with leading dimension lda, `w` holds n values, and the work buffers hold at least
            // lwork / liwork entries (or one, for the size query with -1).
            unsafe {
                dsyevd_(
                    c"N".as_ptr(),
                    c"L".as_ptr(),
                    &n,
                    a.as_ptr_mut(),
                    &lda,
                    w.as_mut_ptr(),
                    work.as_mut_ptr(),
                    &lwork,
                    iwork.as_mut_ptr(),
                    &liwork,
                    &mut info,
                    1,
                    1,
                );
            }
            info
        };
    let (mut work_size, mut iwork_size) = ([0.0f64], [0 as c_int]);
    if dsyevd(&mut work_size, &mut iwork_size, -1, -1) != 0 {
        return None;
    }
    let mut work = vec![0.0f64; (work_size[0] as usize).max(1)];
    let mut iwork = vec![0 as c_int; (iwork_size[0] as usize).max(1)];
    let (lwork, liwork) = (int(work.len()), int(iwork.len()));
    (dsyevd(&mut work, &mut iwork, lwork, liwork) == 0).then_some(w)
}
