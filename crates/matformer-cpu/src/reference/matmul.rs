//! Reference matrix products: triple loops accumulating in `f64`.

use crate::shape::check_len;
use crate::WeightElem;

/// `y[n,m] = x[n,k] · w[m,k]ᵀ (+ bias[m])`; `w` in PyTorch-linear layout
/// `[out, in]`. Overwrites `y`.
#[allow(clippy::too_many_arguments)]
pub fn matmul_nt<W: WeightElem>(x: &[f32], w: &[W], bias: Option<&[W]>, y: &mut [f32], n: usize, k: usize, m: usize) {
    check_shapes("matmul_nt", x, w, bias, y, n, k, m);
    for i in 0..n {
        for j in 0..m {
            let mut acc = bias.map_or(0.0, |b| b[j].to_f32() as f64);
            for l in 0..k {
                acc += x[i * k + l] as f64 * w[j * k + l].to_f32() as f64;
            }
            y[i * m + j] = acc as f32;
        }
    }
}

/// `y[n,m] = x[n,k] · w[k,m] (+ bias[m])`. Used for the neuron-major FFN down
/// projection `[d_ff, d_model]` where `k` is the active width. Overwrites `y`.
#[allow(clippy::too_many_arguments)]
pub fn matmul_nn<W: WeightElem>(x: &[f32], w: &[W], bias: Option<&[W]>, y: &mut [f32], n: usize, k: usize, m: usize) {
    check_shapes("matmul_nn", x, w, bias, y, n, k, m);
    for i in 0..n {
        for j in 0..m {
            let mut acc = bias.map_or(0.0, |b| b[j].to_f32() as f64);
            for l in 0..k {
                acc += x[i * k + l] as f64 * w[l * m + j].to_f32() as f64;
            }
            y[i * m + j] = acc as f32;
        }
    }
}

/// Shape checks shared by the reference and fast matrix products.
#[track_caller]
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_shapes<W>(
    op: &str,
    x: &[f32],
    w: &[W],
    bias: Option<&[W]>,
    y: &[f32],
    n: usize,
    k: usize,
    m: usize,
) {
    check_len(op, "x", x.len(), n * k);
    check_len(op, "w", w.len(), k * m);
    check_len(op, "y", y.len(), n * m);
    if let Some(b) = bias {
        check_len(op, "bias", b.len(), m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_known_values() {
        // x = [[1, 2], [3, 4]], w (nt, [out=3, in=2])
        let x = [1.0, 2.0, 3.0, 4.0];
        let w = [1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0];
        let b = [0.5f32, -0.5, 0.0];
        let mut y = [0.0; 6];
        matmul_nt(&x, &w, Some(&b), &mut y, 2, 2, 3);
        assert_eq!(y, [1.5, 1.5, 3.0, 3.5, 3.5, 7.0]);
        // nn with w [in=2, out=3] = transpose of the above
        let wt = [1.0f32, 0.0, 1.0, 0.0, 1.0, 1.0];
        let mut y2 = [0.0; 6];
        matmul_nn(&x, &wt, Some(&b), &mut y2, 2, 2, 3);
        assert_eq!(y, y2);
    }

    #[test]
    #[should_panic(expected = "matmul_nt: `w` has length")]
    fn length_mismatch_panics() {
        let mut y = [0.0; 2];
        matmul_nt(&[1.0, 2.0], &[1.0f32; 3], None, &mut y, 1, 2, 2);
    }
}
