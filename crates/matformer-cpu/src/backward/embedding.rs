//! Backward of the embedding lookup.

use crate::shape::check_len;

/// Backward of [`crate::fast::embedding`]: accumulates
/// `dtable[ids[i], :] += dout[i, :]` (repeated ids add up). `dtable` is
/// `[vocab, d]`; ids are validated by the caller (out of range panics).
pub fn embedding_backward(dout: &[f32], ids: &[u32], d: usize, dtable: &mut [f32]) {
    check_len("embedding_backward", "dout", dout.len(), ids.len() * d);
    for (i, &id) in ids.iter().enumerate() {
        let row = &mut dtable[id as usize * d..(id as usize + 1) * d];
        for (t, &g) in row.iter_mut().zip(&dout[i * d..(i + 1) * d]) {
            *t += g;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;
    use crate::testutil::{check_grad, project, rng, uniform};

    /// The lookup is linear; central differences (step 1e-2) are exact up
    /// to rounding. Tolerance 1e-3 rel + 1e-3 abs. Ids repeat on purpose.
    #[test]
    fn gradient_matches_finite_differences() {
        let mut r = rng(51);
        let (vocab, d) = (5, 3);
        let ids = [1u32, 4, 1, 0];
        let table = uniform(&mut r, vocab * d);
        let rr = uniform(&mut r, ids.len() * d);
        let mut g = vec![0.0; vocab * d];
        embedding_backward(&rr, &ids, d, &mut g);
        let mut f = |t: &[f32]| {
            let mut y = vec![0.0; ids.len() * d];
            reference::embedding(t, &ids, d, &mut y);
            project(&y, &rr)
        };
        check_grad("dtable", &table, &g, &mut f, 1e-2, 1e-3, 1e-3);
    }
}
