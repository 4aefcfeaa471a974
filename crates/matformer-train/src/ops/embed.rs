//! Embedding lookup and its backward pass (a sequential, hence deterministic, scatter-add).

/// `out[i] = table[ids[i]]`, rows of width `d`.
pub fn embedding_forward(table: &[f32], ids: &[u32], d: usize, out: &mut [f32]) {
    assert_eq!(out.len(), ids.len() * d, "embedding: out has the wrong length");
    for (o, &id) in out.chunks_exact_mut(d.max(1)).zip(ids) {
        o.copy_from_slice(&table[id as usize * d..][..d]);
    }
}

/// `dtable[ids[i]] += dout[i]`.
pub fn embedding_backward(dout: &[f32], ids: &[u32], d: usize, dtable: &mut [f32]) {
    assert_eq!(dout.len(), ids.len() * d, "embedding_backward: dout has the wrong length");
    for (g, &id) in dout.chunks_exact(d.max(1)).zip(ids) {
        for (a, &v) in dtable[id as usize * d..][..d].iter_mut().zip(g) {
            *a += v;
        }
    }
}
