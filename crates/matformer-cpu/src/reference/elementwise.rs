//! Reference element-wise ops: residual add, bias add, embedding lookup.

use crate::shape::check_len;
use crate::WeightElem;

/// `a += b` element-wise (residual connection).
pub fn add_inplace(a: &mut [f32], b: &[f32]) {
    check_len("add_inplace", "b", b.len(), a.len());
    for (x, &y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

/// `y[n,m] += bias[m]` on every row.
pub fn add_bias<W: WeightElem>(y: &mut [f32], bias: &[W], n: usize, m: usize) {
    check_len("add_bias", "y", y.len(), n * m);
    check_len("add_bias", "bias", bias.len(), m);
    for row in y.chunks_exact_mut(m.max(1)).take(n) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v += b.to_f32();
        }
    }
}

/// `out[i, :] = table[ids[i], :]` widened to `f32`; `table` is `[vocab, d]`.
/// The caller validates ids (an out-of-range id panics on indexing).
pub fn embedding<W: WeightElem>(table: &[W], ids: &[u32], d: usize, out: &mut [f32]) {
    check_len("embedding", "out", out.len(), ids.len() * d);
    for (i, &id) in ids.iter().enumerate() {
        let row = &table[id as usize * d..(id as usize + 1) * d];
        for (o, w) in out[i * d..(i + 1) * d].iter_mut().zip(row) {
            *o = w.to_f32();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basics() {
        let mut a = [1.0, 2.0];
        add_inplace(&mut a, &[0.5, 0.5]);
        assert_eq!(a, [1.5, 2.5]);
        let mut y = [0.0; 4];
        add_bias(&mut y, &[1.0f32, 2.0], 2, 2);
        assert_eq!(y, [1.0, 2.0, 1.0, 2.0]);
        let table = [0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0];
        let mut out = [0.0; 4];
        embedding(&table, &[2, 0], 2, &mut out);
        assert_eq!(out, [4.0, 5.0, 0.0, 1.0]);
    }
}
