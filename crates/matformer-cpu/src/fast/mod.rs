//! The multithreaded fast path. Same functions and signatures as
//! [`crate::reference`], checked against it in the tests with stated
//! tolerances.
//!
//! - Matrix products: `n == 1` uses hand-written SIMD matrix-vector kernels
//!   that stream each weight once (16-bit weights widened in registers;
//!   AVX-512 kernels (module `avx512`) where the CPU has them, AVX2 otherwise;
//!   weights under 1 MiB run on the calling thread);
//!   `n > 1` uses the `gemm` crate (built with its `x86-v4` feature, so it
//!   picks AVX-512 micro-kernels at runtime on CPUs that have them), as one parallel call for many rows or
//!   as parallel single-threaded calls on weight blocks for few rows and
//!   for large 16-bit weights (widened block by block into a reusable
//!   per-thread buffer, so the widened copy never exists in full).
//! - Everything else is split into fixed-size rayon tasks, with small
//!   inputs run inline on the calling thread.
//! - Results are deterministic run to run: every reduction has a fixed
//!   order given the shapes and the size of the rayon pool.
//! - Elementwise transcendental functions use vectorizable approximations
//!   (exp ~1 ulp, erfc ~1e-7 relative), compiled for AVX2+FMA when the CPU
//!   has it.

mod activation;
mod attention;
pub(crate) mod avx512;
mod blocked;
mod elementwise;
pub(crate) mod gemm;
pub(crate) mod math;
mod matmul;
mod matvec;
mod norm;
pub(crate) mod par;
mod rope;
pub(crate) mod simd;
mod softmax;

pub use activation::{gelu, gelu_tanh, silu_mul};
pub use attention::attention;
pub use elementwise::{add_bias, add_inplace, embedding};
pub use matmul::{matmul_nn, matmul_nt};
pub use norm::{layernorm, rmsnorm};
pub use rope::rope;
pub use softmax::{agreement_kl, argmax, cross_entropy, log_softmax, softmax, RowAgreement};

pub(crate) use norm::{layernorm_stats, rms_rstd};
pub(crate) use rope::rotate as rope_rotate;
