//! A thin wrapper over the `gemm` crate for `f32` with explicit strides.

use gemm::Parallelism;

/// Strides of a matrix in elements: element `(r, c)` is at `r·rs + c·cs`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
}

/// Row-major with leading dimension `ld`.
pub(crate) const fn row_major(ld: usize) -> Layout {
    Layout { rs: ld, cs: 1 }
}

/// Column-major with leading dimension `ld` (a transposed row-major matrix).
pub(crate) const fn col_major(ld: usize) -> Layout {
    Layout { rs: 1, cs: ld }
}

impl Layout {
    /// One past the largest offset of a `rows × cols` matrix (0 if empty).
    fn extent(self, rows: usize, cols: usize) -> usize {
        if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * self.rs + (cols - 1) * self.cs + 1
        }
    }
}

/// `dst[m×n] = (accumulate ? dst : 0) + alpha · lhs[m×k] · rhs[k×n]`.
///
/// # Safety
/// The pointers must be valid for the extents their layouts describe, `dst`
/// must not alias `lhs`/`rhs`, and no other thread may access the written
/// elements of `dst` concurrently.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_raw(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dl: Layout,
    lhs: *const f32,
    ll: Layout,
    rhs: *const f32,
    rl: Layout,
    accumulate: bool,
    alpha: f32,
    parallel: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                for c in 0..n {
                    *dst.add(r * dl.rs + c * dl.cs) = 0.0;
                }
            }
        }
        return;
    }
    let par = if parallel { Parallelism::Rayon(0) } else { Parallelism::None };
    // gemm computes dst := a·dst + b·lhs·rhs (dst not read when
    // read_dst is false). Argument order there is column stride first.
    gemm::gemm(
        m,
        n,
        k,
        dst,
        dl.cs as isize,
        dl.rs as isize,
        accumulate,
        lhs,
        ll.cs as isize,
        ll.rs as isize,
        rhs,
        rl.cs as isize,
        rl.rs as isize,
        1.0,
        alpha,
        false,
        false,
        false,
        par,
    );
}

/// Safe [`gemm_raw`] on slices (extents are checked).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    dl: Layout,
    lhs: &[f32],
    ll: Layout,
    rhs: &[f32],
    rl: Layout,
    accumulate: bool,
    alpha: f32,
    parallel: bool,
) {
    assert!(dl.extent(m, n) <= dst.len(), "gemm: dst too short");
    if m == 0 || n == 0 {
        return;
    }
    if k > 0 {
        assert!(ll.extent(m, k) <= lhs.len(), "gemm: lhs too short");
        assert!(rl.extent(k, n) <= rhs.len(), "gemm: rhs too short");
    }
    // SAFETY: extents checked above; `dst` is an exclusive borrow, so it
    // aliases neither input.
    unsafe {
        gemm_raw((m, n, k), dst.as_mut_ptr(), dl, lhs.as_ptr(), ll, rhs.as_ptr(), rl, accumulate, alpha, parallel)
    }
}
