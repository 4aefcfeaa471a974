//! Shape checks shared by all kernels. A mismatch is a programmer error.

/// Panics with a readable message when `got != want`.
#[track_caller]
pub(crate) fn check_len(op: &str, what: &str, got: usize, want: usize) {
    assert_eq!(got, want, "{op}: `{what}` has length {got}, expected {want} from the sizes passed");
}

/// Validates the shapes of an attention call and returns the query heads per
/// kv head (the grouped-query factor).
#[track_caller]
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_attention(
    op: &str,
    q: usize,
    k: usize,
    v: usize,
    out: usize,
    n_q: usize,
    n_kv: usize,
    n_heads: usize,
    n_kv_heads: usize,
    head_dim: usize,
) -> usize {
    assert!(
        n_kv_heads > 0 && n_heads.is_multiple_of(n_kv_heads),
        "{op}: n_heads ({n_heads}) must be a positive multiple of n_kv_heads ({n_kv_heads})"
    );
    check_len(op, "q", q, n_q * n_heads * head_dim);
    check_len(op, "k", k, n_kv * n_kv_heads * head_dim);
    check_len(op, "v", v, n_kv * n_kv_heads * head_dim);
    check_len(op, "out", out, n_q * n_heads * head_dim);
    n_heads / n_kv_heads
}

/// Number of keys query `i` may attend to: all of them when bidirectional,
/// else keys `0..=p0 + i` (clamped to `n_kv`).
#[inline]
pub(crate) fn visible_keys(i: usize, n_kv: usize, causal_offset: Option<usize>) -> usize {
    match causal_offset {
        Some(p0) => (p0 + i + 1).min(n_kv),
        None => n_kv,
    }
}

/// Validates a rope call: `head_dim` even, one position per token.
#[track_caller]
pub(crate) fn check_rope(op: &str, x: usize, n_tokens: usize, n_heads: usize, head_dim: usize, positions: usize) {
    assert!(head_dim.is_multiple_of(2), "{op}: head_dim ({head_dim}) must be even");
    check_len(op, "x", x, n_tokens * n_heads * head_dim);
    check_len(op, "positions", positions, n_tokens);
}
