//! Backward of RoPE: the inverse rotation.

use crate::fast::rope_rotate;
use crate::shape::check_rope;

/// Backward of [`crate::fast::rope`], **in place**: turns the gradient with
/// respect to the rotated tensor into the gradient with respect to its
/// input by rotating every pair by `−angle` (RoPE is orthogonal, so its
/// backward is its transpose). Same layout and arguments as the forward.
pub fn rope_backward(
    dx: &mut [f32],
    n_tokens: usize,
    n_heads: usize,
    head_dim: usize,
    positions: &[usize],
    theta: f32,
) {
    check_rope("rope_backward", dx.len(), n_tokens, n_heads, head_dim, positions.len());
    rope_rotate(dx, n_heads, head_dim, positions, theta, true);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;
    use crate::testutil::{check_grad, project, rng, uniform};

    /// RoPE is linear, so central differences (step 1e-2) are exact up to
    /// `f32` rounding; tolerance 1e-3 rel + 1e-3 abs.
    #[test]
    fn gradient_matches_finite_differences() {
        let mut r = rng(41);
        let (n, h, hd) = (3, 2, 6);
        let pos = [0, 5, 77];
        let x = uniform(&mut r, n * h * hd);
        let rr = uniform(&mut r, n * h * hd);
        let mut g = rr.clone();
        rope_backward(&mut g, n, h, hd, &pos, 10000.0);
        let mut f = |p: &[f32]| {
            let mut y = p.to_vec();
            reference::rope(&mut y, n, h, hd, &pos, 10000.0);
            project(&y, &rr)
        };
        check_grad("rope", &x, &g, &mut f, 1e-2, 1e-3, 1e-3);
        // forward then backward is the identity (up to rounding)
        let mut y = x.clone();
        crate::fast::rope(&mut y, n, h, hd, &pos, 10000.0);
        rope_backward(&mut y, n, h, hd, &pos, 10000.0);
        crate::testutil::assert_close("roundtrip", &y, &x, 1e-6, 1e-6);
    }
}
