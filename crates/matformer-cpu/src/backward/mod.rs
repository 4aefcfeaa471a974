//! Hand-written backward passes (llm.c style), `f32` only, multithreaded.
//!
//! # Accumulation semantics
//!
//! **Every backward op accumulates (`+=`) into every gradient buffer it is
//! given**: weight gradients (`dw`, `dbias`, `dgamma`, `dbeta`, `dtable`)
//! *and* input gradients (`dx`, `dq`, `dk`, `dv`, `dgate`, `dup`,
//! `dlogits`). Zero the buffers before the first contribution of a step.
//! This makes residual branches, tied weights and several losses (e.g. the
//! granularities of a MatFormer step) compose by simply calling the ops in
//! turn. The one exception is [`rope_backward`], which transforms a
//! gradient in place (RoPE is a rotation; its backward is the inverse
//! rotation).
//!
//! Forward intermediates are recomputed from the forward inputs (norm
//! statistics, attention probabilities), so callers keep only the inputs.
//! Reductions across rows (weight gradients) use a fixed, shape-determined
//! order, so results do not depend on the thread count.
//!
//! Shapes are the same as the corresponding forward op; mismatches panic.

mod activation;
mod attention;
mod embedding;
mod loss;
mod matmul;
mod norm;
mod rope;

pub use activation::{gelu_backward, gelu_tanh_backward, silu_mul_backward};
pub use attention::attention_backward;
pub use embedding::embedding_backward;
pub use loss::{cross_entropy_backward, softmax_backward};
pub use matmul::{matmul_nn_backward, matmul_nt_backward};
pub use norm::{layernorm_backward, rmsnorm_backward};
pub use rope::rope_backward;
