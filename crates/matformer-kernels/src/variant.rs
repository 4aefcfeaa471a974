//! Shader variants: (op, weight load path, weight chunk count, optional inputs),
//! their rendered WGSL, binding layout, required capabilities and naga validation.

use crate::error::{KernelError, Result};
use crate::ops;
use crate::weight::WeightLoad;

/// Every kernel of the catalogue (one `shaders/<op>.wgsl` each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// Tiled y = x·Wᵀ (prefill).
    MatmulNt,
    /// Row-reduction y = x·Wᵀ (decode).
    MatvecNt,
    /// Tiled y = x·W (FFN down projection, prefill).
    MatmulNn,
    /// Column-parallel y = x·W (FFN down projection, decode).
    MatvecNn,
    /// Token embedding gather.
    Embedding,
    /// LayerNorm.
    LayerNorm,
    /// RMSNorm.
    RmsNorm,
    /// Rotary position embedding (HF rotate_half).
    Rope,
    /// Causal / bidirectional attention over a KV cache.
    Attention,
    /// Row softmax.
    Softmax,
    /// GELU (erf or tanh).
    Gelu,
    /// Gated activation act(gate) * up.
    SiluMul,
    /// Residual add.
    Add,
    /// Row bias add.
    BiasAdd,
    /// KV cache row write.
    KvWrite,
    /// Row argmax.
    Argmax,
    /// Temperature / top-k / top-p sampling.
    Sample,
}

/// Optional typed input `bias` (matmul kernels) is bound.
pub const FLAG_BIAS: u8 = 1;
/// Optional typed input `beta` (layernorm) is bound.
pub const FLAG_BETA: u8 = 2;

/// Most weight bindings (row chunks) a kernel variant can have.
pub const MAX_WEIGHT_CHUNKS: u8 = 8;

impl OpKind {
    /// All ops.
    pub const ALL: [OpKind; 17] = [
        OpKind::MatmulNt,
        OpKind::MatvecNt,
        OpKind::MatmulNn,
        OpKind::MatvecNn,
        OpKind::Embedding,
        OpKind::LayerNorm,
        OpKind::RmsNorm,
        OpKind::Rope,
        OpKind::Attention,
        OpKind::Softmax,
        OpKind::Gelu,
        OpKind::SiluMul,
        OpKind::Add,
        OpKind::BiasAdd,
        OpKind::KvWrite,
        OpKind::Argmax,
        OpKind::Sample,
    ];

    /// File stem of the shader (`shaders/<name>.wgsl`).
    pub const fn name(self) -> &'static str {
        match self {
            OpKind::MatmulNt => "matmul_nt",
            OpKind::MatvecNt => "matvec_nt",
            OpKind::MatmulNn => "matmul_nn",
            OpKind::MatvecNn => "matvec_nn",
            OpKind::Embedding => "embedding",
            OpKind::LayerNorm => "layernorm",
            OpKind::RmsNorm => "rmsnorm",
            OpKind::Rope => "rope",
            OpKind::Attention => "attention",
            OpKind::Softmax => "softmax",
            OpKind::Gelu => "gelu",
            OpKind::SiluMul => "silu_mul",
            OpKind::Add => "add",
            OpKind::BiasAdd => "bias_add",
            OpKind::KvWrite => "kv_write",
            OpKind::Argmax => "argmax",
            OpKind::Sample => "sample",
        }
    }

    /// The template source (with markers) embedded from `shaders/`.
    pub const fn template(self) -> &'static str {
        match self {
            OpKind::MatmulNt => ops::matmul_nt::TEMPLATE,
            OpKind::MatvecNt => ops::matvec_nt::TEMPLATE,
            OpKind::MatmulNn => ops::matmul_nn::TEMPLATE,
            OpKind::MatvecNn => ops::matvec_nn::TEMPLATE,
            OpKind::Embedding => ops::embedding::TEMPLATE,
            OpKind::LayerNorm => ops::layernorm::TEMPLATE,
            OpKind::RmsNorm => ops::rmsnorm::TEMPLATE,
            OpKind::Rope => ops::rope::TEMPLATE,
            OpKind::Attention => ops::attention::TEMPLATE,
            OpKind::Softmax => ops::softmax::TEMPLATE,
            OpKind::Gelu => ops::gelu::TEMPLATE,
            OpKind::SiluMul => ops::silu_mul::TEMPLATE,
            OpKind::Add => ops::add::TEMPLATE,
            OpKind::BiasAdd => ops::bias_add::TEMPLATE,
            OpKind::KvWrite => ops::kv_write::TEMPLATE,
            OpKind::Argmax => ops::argmax::TEMPLATE,
            OpKind::Sample => ops::sample::TEMPLATE,
        }
    }

    /// Whether the op reads typed (f32/f16/bf16) inputs, so its variants vary by load path.
    pub fn is_typed(self) -> bool {
        let t = self.template();
        t.contains("//!typed") || t.contains("//!weights")
    }

    /// Whether the op reads a row-split weight matrix (`//!weights`).
    pub fn has_weights(self) -> bool {
        self.template().contains("//!weights")
    }

    /// The optional-input flags this op understands (from its `//!typed NAME B optional` markers).
    pub fn optional_flags(self) -> u8 {
        self.template()
            .lines()
            .filter_map(|l| {
                let rest = l.trim().strip_prefix("//!typed")?;
                let parts: Vec<&str> = rest.split_whitespace().collect();
                (parts.get(2) == Some(&"optional")).then(|| flag_of(parts[0]))
            })
            .fold(0, |a, b| a | b)
    }
}

/// The `FLAG_*` bit of an optional typed input name.
fn flag_of(name: &str) -> u8 {
    match name {
        "bias" => FLAG_BIAS,
        "beta" => FLAG_BETA,
        _ => 0,
    }
}

/// Kind of one binding slot of a kernel's bind group 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BindingKind {
    /// `var<uniform>` parameters.
    Uniform,
    /// `var<storage, read>`.
    ReadOnly,
    /// `var<storage, read_write>`.
    ReadWrite,
}

/// One compiled-shader configuration; the pipeline cache key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShaderVariant {
    /// The op.
    pub op: OpKind,
    /// How typed inputs are widened (always `F32` for untyped ops).
    pub load: WeightLoad,
    /// Number of weight bindings (1 for ops without weights).
    pub chunks: u8,
    /// Bound optional inputs (`FLAG_*`).
    pub flags: u8,
}

impl ShaderVariant {
    /// The plain variant of `op`: f32, one weight chunk, no optional inputs.
    pub fn new(op: OpKind) -> Self {
        ShaderVariant { op, load: WeightLoad::F32, chunks: 1, flags: 0 }
    }

    /// Sets the load path (ignored for untyped ops, which always use `F32`).
    pub fn with_load(mut self, load: WeightLoad) -> Self {
        if self.op.is_typed() {
            self.load = load;
        }
        self
    }

    /// Sets the number of weight chunks (ignored for ops without weights).
    pub fn with_chunks(mut self, chunks: u8) -> Self {
        if self.op.has_weights() {
            self.chunks = chunks.max(1);
        }
        self
    }

    /// Sets the optional-input flags (masked to those the op understands).
    pub fn with_flags(mut self, flags: u8) -> Self {
        self.flags = flags & self.op.optional_flags();
        self
    }

    /// Whether the optional input `name` (`bias`, `beta`) is bound.
    pub fn has_optional(&self, name: &str) -> bool {
        let f = flag_of(name);
        f != 0 && self.flags & f != 0
    }

    /// Human-readable label, e.g. `matmul_nt/f16packed/c2/bias`.
    pub fn label(&self) -> String {
        let mut s = format!("{}/{}/c{}", self.op.name(), self.load.name(), self.chunks);
        if self.has_optional("bias") {
            s.push_str("/bias");
        }
        if self.has_optional("beta") {
            s.push_str("/beta");
        }
        s
    }

    /// The rendered WGSL.
    pub fn source(&self) -> String {
        crate::template::render(self.op.template(), self)
    }

    /// wgpu features a device needs to run this variant.
    pub fn required_features(&self) -> wgpu::Features {
        if self.load.needs_shader_f16() {
            wgpu::Features::SHADER_F16
        } else {
            wgpu::Features::empty()
        }
    }

    /// naga capabilities the variant needs to validate.
    pub fn capabilities(&self) -> naga::valid::Capabilities {
        let mut caps = naga::valid::Capabilities::empty();
        if self.load.needs_shader_f16() {
            caps |= naga::valid::Capabilities::SHADER_FLOAT16;
        }
        if self.load.needs_f16_in_f32() {
            caps |= naga::valid::Capabilities::SHADER_FLOAT16_IN_FLOAT32;
        }
        caps
    }

    /// Parses the rendered source with naga.
    pub fn parse(&self) -> Result<naga::Module> {
        let src = self.source();
        naga::front::wgsl::parse_str(&src)
            .map_err(|e| KernelError::Shader { name: self.label(), message: e.emit_to_string(&src) })
    }

    /// Parses and validates the variant with exactly the capabilities it needs.
    pub fn validate(&self) -> Result<naga::Module> {
        let module = self.parse()?;
        let mut validator = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), self.capabilities());
        validator
            .validate(&module)
            .map_err(|e| KernelError::Shader { name: self.label(), message: e.emit_to_string(&self.source()) })?;
        Ok(module)
    }

    /// The bind group 0 layout `(binding, kind)` declared by the shader, sorted by binding.
    pub fn bindings(&self) -> Result<Vec<(u32, BindingKind)>> {
        let module = self.parse()?;
        Ok(bindings_of(&module))
    }
}

/// Extracts `(binding, kind)` of every group-0 resource of a module.
pub(crate) fn bindings_of(module: &naga::Module) -> Vec<(u32, BindingKind)> {
    let mut out: Vec<(u32, BindingKind)> = module
        .global_variables
        .iter()
        .filter_map(|(_, var)| {
            let rb = var.binding.as_ref()?;
            let kind = match var.space {
                naga::AddressSpace::Uniform => BindingKind::Uniform,
                naga::AddressSpace::Storage { access } => {
                    if access.contains(naga::StorageAccess::STORE) {
                        BindingKind::ReadWrite
                    } else {
                        BindingKind::ReadOnly
                    }
                }
                _ => return None,
            };
            Some((rb.binding, kind))
        })
        .collect();
    out.sort_by_key(|(b, _)| *b);
    out
}

/// Every variant worth validating: each op × each applicable load path ×
/// {1, 2, MAX} weight chunks × every optional-input combination.
pub fn all_variants() -> Vec<ShaderVariant> {
    let mut out = Vec::new();
    for op in OpKind::ALL {
        let loads: &[WeightLoad] = if op.is_typed() { &WeightLoad::ALL } else { &[WeightLoad::F32] };
        let chunk_counts: &[u8] = if op.has_weights() { &[1, 2, MAX_WEIGHT_CHUNKS] } else { &[1] };
        let opt = op.optional_flags();
        for &load in loads {
            for &chunks in chunk_counts {
                for flags in 0..=opt {
                    if flags & !opt != 0 {
                        continue;
                    }
                    out.push(ShaderVariant::new(op).with_load(load).with_chunks(chunks).with_flags(flags));
                }
            }
        }
    }
    out
}
