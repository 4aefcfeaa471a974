//! Fast element-wise ops: residual add, bias add, embedding lookup.

use super::par;
use crate::elem::widen;
use crate::shape::check_len;
use crate::WeightElem;

/// `a += b` element-wise (residual connection).
pub fn add_inplace(a: &mut [f32], b: &[f32]) {
    check_len("add_inplace", "b", b.len(), a.len());
    par::chunks_mut(a, |off, c| {
        for (x, &y) in c.iter_mut().zip(&b[off..]) {
            *x += y;
        }
    });
}

/// `y[n,m] += bias[m]` on every row.
pub fn add_bias<W: WeightElem>(y: &mut [f32], bias: &[W], n: usize, m: usize) {
    check_len("add_bias", "y", y.len(), n * m);
    check_len("add_bias", "bias", bias.len(), m);
    let b = widen(bias);
    par::rows_mut(y, m, m, |_, rows| {
        for row in rows.chunks_exact_mut(m) {
            for (v, &bv) in row.iter_mut().zip(&b) {
                *v += bv;
            }
        }
    });
}

/// `out[i, :] = table[ids[i], :]` widened to `f32`; `table` is `[vocab, d]`.
/// The caller validates ids (an out-of-range id panics on indexing).
pub fn embedding<W: WeightElem>(table: &[W], ids: &[u32], d: usize, out: &mut [f32]) {
    check_len("embedding", "out", out.len(), ids.len() * d);
    par::rows_mut(out, d, d, |row0, rows| {
        for (r, o) in rows.chunks_exact_mut(d).enumerate() {
            let id = ids[row0 + r] as usize;
            W::to_f32_slice(&table[id * d..(id + 1) * d], o);
        }
    });
}

#[cfg(test)]
mod tests {
    use half::{bf16, f16};

    use super::*;
    use crate::reference;
    use crate::testutil::{ids, rng, to_w, uniform};

    /// These ops are exact (one rounding per element, same as the
    /// reference), so results must be identical.
    fn run<W: WeightElem>() {
        let mut r = rng(9);
        for &(n, d) in &[(1, 1), (7, 33), (33, 130), (130, 600)] {
            let x = uniform(&mut r, n * d);
            let y = uniform(&mut r, n * d);
            let b: Vec<W> = to_w(&uniform(&mut r, d));
            let (mut a1, mut a2) = (x.clone(), x.clone());
            add_inplace(&mut a1, &y);
            reference::add_inplace(&mut a2, &y);
            assert_eq!(a1, a2);
            add_bias(&mut a1, &b, n, d);
            reference::add_bias(&mut a2, &b, n, d);
            assert_eq!(a1, a2);
            let vocab = 50;
            let table: Vec<W> = to_w(&uniform(&mut r, vocab * d));
            let tok = ids(&mut r, n, vocab);
            let (mut e1, mut e2) = (vec![0.0; n * d], vec![1.0; n * d]);
            embedding(&table, &tok, d, &mut e1);
            reference::embedding(&table, &tok, d, &mut e2);
            assert_eq!(e1, e2);
        }
    }

    #[test]
    fn matches_reference() {
        run::<f32>();
        run::<f16>();
        run::<bf16>();
    }
}
