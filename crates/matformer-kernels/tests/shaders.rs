//! Device-free checks of the shader catalogue: every variant parses and
//! validates in naga with exactly the capabilities it declares, and the
//! binding layouts agree with the Rust binding constants.

use matformer_kernels::ops;
use matformer_kernels::{
    all_variants, BindingKind, OpKind, ShaderVariant, WeightLoad, FLAG_BETA, FLAG_BIAS, MAX_WEIGHT_CHUNKS,
};

#[test]
fn every_variant_validates_in_naga() {
    let variants = all_variants();
    // 4 matrix ops × 5 loads × 3 chunk counts × 2 bias + embedding 5 × 3
    // + layernorm 5 × 2 + rmsnorm 5 + bias_add 5 + 9 untyped ops.
    assert_eq!(variants.len(), 4 * 5 * 3 * 2 + 15 + 10 + 5 + 5 + 9);
    let mut failures = Vec::new();
    for v in &variants {
        if let Err(e) = v.validate() {
            failures.push(e.to_string());
        }
    }
    assert!(failures.is_empty(), "{} invalid variants:\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn native_f16_needs_the_f16_capability() {
    let v = ShaderVariant::new(OpKind::MatmulNt).with_load(WeightLoad::F16Native);
    assert!(v.source().lines().any(|l| l == "enable f16;"));
    let module = v.parse().unwrap();
    let mut validator =
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty());
    assert!(validator.validate(&module).is_err(), "f16 must not validate without SHADER_FLOAT16");
    assert!(v.required_features().contains(wgpu::Features::SHADER_F16));
    // The packed path needs no device feature.
    let packed = v.with_load(WeightLoad::F16Packed);
    assert!(!packed.source().lines().any(|l| l == "enable f16;"));
    assert!(packed.required_features().is_empty());
}

#[test]
fn untyped_ops_ignore_load_and_chunks() {
    let v = ShaderVariant::new(OpKind::Softmax).with_load(WeightLoad::Bf16).with_chunks(4).with_flags(FLAG_BIAS);
    assert_eq!(v, ShaderVariant::new(OpKind::Softmax));
}

fn kinds(v: ShaderVariant) -> Vec<(u32, BindingKind)> {
    v.bindings().unwrap()
}

#[test]
fn matrix_bindings_match_rust_constants() {
    use ops::linear::binding;
    for op in [OpKind::MatmulNt, OpKind::MatvecNt, OpKind::MatmulNn, OpKind::MatvecNn] {
        let v = ShaderVariant::new(op).with_chunks(3).with_flags(FLAG_BIAS);
        assert_eq!(
            kinds(v),
            vec![
                (binding::PARAMS, BindingKind::Uniform),
                (binding::X, BindingKind::ReadOnly),
                (binding::Y, BindingKind::ReadWrite),
                (binding::BIAS, BindingKind::ReadOnly),
                (binding::W0, BindingKind::ReadOnly),
                (binding::W0 + 1, BindingKind::ReadOnly),
                (binding::W0 + 2, BindingKind::ReadOnly),
            ],
            "{op:?}"
        );
        let no_bias = kinds(ShaderVariant::new(op));
        assert_eq!(no_bias.len(), 4, "{op:?}: {no_bias:?}");
    }
}

#[test]
fn other_bindings_match_rust_constants() {
    use BindingKind::*;
    let cases: Vec<(ShaderVariant, Vec<(u32, BindingKind)>)> = vec![
        (
            ShaderVariant::new(OpKind::Embedding),
            vec![
                (0, Uniform),
                (ops::embedding::binding::IDS, ReadOnly),
                (ops::embedding::binding::OUT, ReadWrite),
                (ops::embedding::binding::W0, ReadOnly),
            ],
        ),
        (
            ShaderVariant::new(OpKind::LayerNorm).with_flags(FLAG_BETA),
            vec![
                (0, Uniform),
                (ops::layernorm::binding::X, ReadOnly),
                (ops::layernorm::binding::Y, ReadWrite),
                (ops::layernorm::binding::GAMMA, ReadOnly),
                (ops::layernorm::binding::BETA, ReadOnly),
            ],
        ),
        (
            ShaderVariant::new(OpKind::RmsNorm),
            vec![
                (0, Uniform),
                (ops::rmsnorm::binding::X, ReadOnly),
                (ops::rmsnorm::binding::Y, ReadWrite),
                (ops::rmsnorm::binding::GAMMA, ReadOnly),
            ],
        ),
        (
            ShaderVariant::new(OpKind::Attention),
            vec![
                (0, Uniform),
                (ops::attention::binding::Q, ReadOnly),
                (ops::attention::binding::K, ReadOnly),
                (ops::attention::binding::V, ReadOnly),
                (ops::attention::binding::OUT, ReadWrite),
            ],
        ),
        (
            ShaderVariant::new(OpKind::BiasAdd),
            vec![(0, Uniform), (ops::bias_add::binding::Y, ReadWrite), (ops::bias_add::binding::BIAS, ReadOnly)],
        ),
        (
            ShaderVariant::new(OpKind::SiluMul),
            vec![(0, Uniform), (ops::silu_mul::binding::GATE, ReadWrite), (ops::silu_mul::binding::UP, ReadOnly)],
        ),
        (
            ShaderVariant::new(OpKind::Sample),
            vec![(0, Uniform), (ops::sample::binding::X, ReadOnly), (ops::sample::binding::OUT, ReadWrite)],
        ),
    ];
    for (v, want) in cases {
        assert_eq!(kinds(v), want, "{}", v.label());
    }
}

#[test]
fn uniform_structs_are_16_byte_multiples() {
    use std::mem::size_of;
    let sizes = [
        size_of::<ops::linear::Params>(),
        size_of::<ops::embedding::Params>(),
        size_of::<ops::layernorm::Params>(),
        size_of::<ops::rope::Params>(),
        size_of::<ops::attention::Params>(),
        size_of::<ops::softmax::Params>(),
        size_of::<ops::gelu::Params>(),
        size_of::<ops::silu_mul::Params>(),
        size_of::<ops::add::Params>(),
        size_of::<ops::bias_add::Params>(),
        size_of::<ops::kv_write::Params>(),
        size_of::<ops::argmax::Params>(),
        size_of::<ops::sample::Params>(),
    ];
    for s in sizes {
        assert_eq!(s % 16, 0, "uniform struct of {s} bytes");
    }
}

#[test]
fn max_chunks_fit_default_storage_binding_limit() {
    // WebGPU's default max_storage_buffers_per_shader_stage is 8; the matrix
    // kernels bind x, y, bias + chunks, so more than 5 chunks need a larger limit.
    let v = ShaderVariant::new(OpKind::MatmulNt).with_chunks(MAX_WEIGHT_CHUNKS).with_flags(FLAG_BIAS);
    let storage = kinds(v).iter().filter(|(_, k)| *k != BindingKind::Uniform).count();
    assert_eq!(storage, 3 + MAX_WEIGHT_CHUNKS as usize);
}

#[test]
fn every_op_has_a_shader_file() {
    for op in OpKind::ALL {
        let path = format!("{}/../../shaders/{}.wgsl", env!("CARGO_MANIFEST_DIR"), op.name());
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(text, op.template());
    }
}

#[test]
fn dispatch_folding() {
    use matformer_kernels::{elementwise, fold};
    assert_eq!(fold(10, 65535).unwrap(), [10, 1, 1]);
    assert_eq!(fold(65536, 65535).unwrap(), [65535, 2, 1]);
    assert_eq!(elementwise(257, 256, 65535).unwrap(), [2, 1, 1]);
    assert!(fold(65535u64 * 65535 + 1, 65535).is_err());
}
