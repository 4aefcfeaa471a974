//! Backward of the mean cross-entropy and of the softmax.

use crate::fast::math::exp_shift_sum;
use crate::fast::par::{rows_mut, with_scratch};
use crate::fast::simd;
use crate::shape::check_len;

/// Gradient of the mean loss [`crate::fast::cross_entropy`] with respect to
/// the logits: accumulates `dlogits[i,:] += (softmax(logits_i) − onehot(t_i)) / n`.
/// (To weight this loss, scale `dlogits` contributions afterwards or
/// accumulate into a zeroed buffer and combine.)
pub fn cross_entropy_backward(logits: &[f32], targets: &[u32], n: usize, v: usize, dlogits: &mut [f32]) {
    let op = "cross_entropy_backward";
    check_len(op, "logits", logits.len(), n * v);
    check_len(op, "targets", targets.len(), n);
    check_len(op, "dlogits", dlogits.len(), n * v);
    let inv_n = 1.0 / n.max(1) as f32;
    rows_mut(dlogits, v, 8 * v, |row0, rows| {
        with_scratch(v, |p| {
            for (r, dl) in rows.chunks_exact_mut(v).enumerate() {
                let i = row0 + r;
                p.copy_from_slice(&logits[i * v..(i + 1) * v]);
                let max = simd::max(p);
                let scale = inv_n / exp_shift_sum(p, max);
                for (d, &e) in dl.iter_mut().zip(p.iter()) {
                    *d += e * scale;
                }
                dl[targets[i] as usize] -= inv_n;
            }
        });
    });
}

/// Backward of the row softmax `y = softmax(x)` (rows of `d`): accumulates
/// `dx += y·(dy − Σ dy·y)` per row, from the forward *output* `y`.
pub fn softmax_backward(dy: &[f32], y: &[f32], dx: &mut [f32], n: usize, d: usize) {
    let op = "softmax_backward";
    check_len(op, "dy", dy.len(), n * d);
    check_len(op, "y", y.len(), n * d);
    check_len(op, "dx", dx.len(), n * d);
    rows_mut(dx, d, 4 * d, |row0, rows| {
        for (r, dxr) in rows.chunks_exact_mut(d).enumerate() {
            let s = (row0 + r) * d..(row0 + r + 1) * d;
            let (dyr, yr) = (&dy[s.clone()], &y[s]);
            let dot = simd::dot(dyr, yr);
            for ((o, &g), &p) in dxr.iter_mut().zip(dyr).zip(yr) {
                *o += p * (g - dot);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;
    use crate::testutil::{check_grad, ids, project, rng, uniform};

    /// Central differences (step 1e-2) of the `f64` reference forward; the
    /// loss is smooth with bounded derivatives, truncation ≲ 1e-5.
    /// Tolerance 1e-3 rel + 1e-4 abs (gradients are O(1/n)).
    #[test]
    fn cross_entropy_gradient_matches_finite_differences() {
        let mut r = rng(71);
        for &(n, v) in &[(1, 1), (1, 5), (4, 7), (3, 33)] {
            let logits: Vec<f32> = uniform(&mut r, n * v).iter().map(|x| x * 3.0).collect();
            let t = ids(&mut r, n, v);
            let mut g = vec![0.0; n * v];
            cross_entropy_backward(&logits, &t, n, v, &mut g);
            let mut f = |p: &[f32]| reference::cross_entropy(p, &t, n, v) as f64;
            check_grad("dlogits", &logits, &g, &mut f, 1e-2, 1e-3, 1e-4);
        }
    }

    #[test]
    fn softmax_gradient_matches_finite_differences() {
        let mut r = rng(72);
        let (n, d) = (3, 9);
        let x: Vec<f32> = uniform(&mut r, n * d).iter().map(|v| v * 3.0).collect();
        let rr = uniform(&mut r, n * d);
        let mut y = x.clone();
        reference::softmax(&mut y, n, d);
        let mut g = vec![0.0; n * d];
        softmax_backward(&rr, &y, &mut g, n, d);
        let mut f = |p: &[f32]| {
            let mut y = p.to_vec();
            reference::softmax(&mut y, n, d);
            project(&y, &rr)
        };
        check_grad("softmax", &x, &g, &mut f, 1e-2, 1e-3, 1e-4);
    }
}
