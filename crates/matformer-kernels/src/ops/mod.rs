//! One module per kernel: uniform struct, dispatch math and a bound op that
//! records itself into a compute pass.
//!
//! Every op follows the same pattern: `XxxOp::new(ctx, bindings…)` builds (or
//! fetches from the cache) the pipeline, creates the op's uniform buffer and
//! bind group once; `op.record(ctx, pass, &args)` writes the uniforms and
//! records the dispatch. Changing shapes, positions or the active FFN width is
//! a new `args` value: no pipeline, bind group or buffer is created.

pub mod add;
pub mod argmax;
pub mod attention;
pub mod bias_add;
pub mod embedding;
pub mod gelu;
pub mod kv_write;
pub mod layernorm;
pub mod linear;
pub mod matmul_nn;
pub mod matmul_nt;
pub mod matvec_nn;
pub mod matvec_nt;
pub mod rmsnorm;
pub mod rope;
pub mod sample;
pub mod silu_mul;
pub mod softmax;
