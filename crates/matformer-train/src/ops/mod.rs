//! Training kernels on f32 slices: forward ops that keep what their backward needs, and hand-written
//! `<op>_backward` passes in the style of llm.c.
//!
//! Conventions: row-major, tightly packed buffers; forward outputs are overwritten; backward ops
//! **accumulate** (`+=`) into every gradient buffer. Parallel work is split into tasks of a fixed size and
//! every reduction across tasks is summed in task order, so results never depend on thread scheduling
//! (seeded runs are bit-identical).

pub mod act;
pub mod attention;
pub mod embed;
pub mod loss;
pub mod matmul;
pub mod norm;
pub mod rope;

use rayon::prelude::*;

/// Rows per parallel task in row-wise kernels.
pub(crate) const ROW_CHUNK: usize = 64;
/// Elements per parallel task in element-wise kernels.
pub(crate) const ELEM_CHUNK: usize = 1 << 14;

/// `acc[m] += Σ_rows x[n, m]` (bias gradients), deterministic: fixed row blocks summed in order.
pub fn colsum_accumulate(x: &[f32], acc: &mut [f32], n: usize, m: usize) {
    assert_eq!(x.len(), n * m, "colsum: x has the wrong length");
    assert_eq!(acc.len(), m, "colsum: acc has the wrong length");
    if n == 0 || m == 0 {
        return;
    }
    let partials: Vec<Vec<f32>> = x
        .par_chunks(ROW_CHUNK * m)
        .map(|block| {
            let mut p = vec![0.0f32; m];
            for row in block.chunks_exact(m) {
                for (a, &v) in p.iter_mut().zip(row) {
                    *a += v;
                }
            }
            p
        })
        .collect();
    for p in &partials {
        for (a, &v) in acc.iter_mut().zip(p) {
            *a += v;
        }
    }
}

/// `a += b` element-wise.
pub fn add_inplace(a: &mut [f32], b: &[f32]) {
    assert_eq!(a.len(), b.len(), "add_inplace: lengths differ");
    a.par_chunks_mut(ELEM_CHUNK).zip(b.par_chunks(ELEM_CHUNK)).for_each(|(x, y)| {
        for (p, &q) in x.iter_mut().zip(y) {
            *p += q;
        }
    });
}

/// `y[r, :] += bias` for every row.
pub fn add_bias(y: &mut [f32], bias: &[f32], n: usize, m: usize) {
    assert_eq!(y.len(), n * m, "add_bias: y has the wrong length");
    assert_eq!(bias.len(), m, "add_bias: bias has the wrong length");
    if m == 0 {
        return;
    }
    y.par_chunks_mut(ROW_CHUNK * m).for_each(|block| {
        for row in block.chunks_exact_mut(m) {
            for (v, &b) in row.iter_mut().zip(bias) {
                *v += b;
            }
        }
    });
}
