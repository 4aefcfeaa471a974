//! Plain, obviously-correct single-threaded kernels: the oracle.
//!
//! Every reduction (dot products, norm statistics, softmax sums) accumulates
//! in `f64` and rounds once to `f32` at the end, so these results are as
//! accurate as an `f32` output can be. The [`crate::fast`] module has the
//! same functions with the same signatures.

mod activation;
mod attention;
mod elementwise;
mod matmul;
mod norm;
mod rope;
mod softmax;

pub use activation::{gelu, gelu_tanh, silu_mul};
pub use attention::attention;
pub use elementwise::{add_bias, add_inplace, embedding};
pub use matmul::{matmul_nn, matmul_nt};
pub use norm::{layernorm, rmsnorm};
pub use rope::rope;
pub use softmax::{argmax, cross_entropy, log_softmax, softmax};

pub(crate) use activation::{GELU_TANH_C, SQRT_2_OVER_PI};
pub(crate) use matmul::check_shapes as check_matmul;
pub(crate) use norm::check_norm;
pub(crate) use rope::{rope_cos_sin, rope_inv_freq};
