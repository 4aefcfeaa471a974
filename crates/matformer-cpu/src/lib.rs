//! CPU kernels for MatFormer, on plain `f32` slices. The kernels know nothing
//! about models: they take flat row-major buffers and sizes.
//!
//! Three layers, each in its own module:
//!
//! - [`reference`](mod@reference): plain single-threaded loops that are obviously correct,
//!   accumulating in `f64`. This is the oracle every other implementation (the
//!   fast CPU path, the WGSL kernels) is tested against.
//! - [`fast`]: the multithreaded fast path (rayon, the `gemm` crate for matrix
//!   products, hand-written SIMD matrix-vector kernels for `n == 1` decode).
//!   Same signatures as [`reference`](mod@reference).
//! - [`backward`]: hand-written backward passes (`<op>_backward`), `f32` only.
//!
//! # Conventions
//!
//! - All matrices are row-major and tightly packed.
//! - Weights are generic over [`WeightElem`] (`f32`, [`half::f16`],
//!   [`half::bf16`]); activations are always `f32`. Half weights are widened
//!   exactly to `f32` and every product accumulates in `f32` (fast) or `f64`
//!   (reference).
//! - Work is proportional to the sizes passed: to run a MatFormer submodel,
//!   pass the prefix slice of a neuron-major weight (`&w[..active * d_model]`)
//!   and the active width; nothing beyond it is read.
//! - **Callers validate shapes.** Every kernel checks that slice lengths match
//!   the sizes it is given and panics (via `assert_eq!` with a message) on a
//!   mismatch: a mismatch is a programmer error, not a recoverable condition.
//!   Token ids and targets must be in range (they are checked by indexing).
//! - Output buffers of forward ops are overwritten; backward ops accumulate
//!   (`+=`) into every gradient buffer (see [`backward`]).

#![warn(missing_docs)]

pub mod backward;
mod elem;
pub mod fast;
pub mod reference;
mod shape;

#[cfg(test)]
mod testutil;

pub use elem::WeightElem;
