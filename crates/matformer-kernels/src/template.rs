//! Expands the template markers of `shaders/*.wgsl` into plain WGSL.
//!
//! Markers (each on its own line):
//! - `//!enable` becomes `enable f16;` when the variant loads native f16.
//! - `//!include NAME` splices a helper file (`activations`).
//! - `//!typed NAME BINDING [optional]` declares a typed read-only vector
//!   `NAME` at `BINDING`, a `fn load_NAME(i: u32) -> f32` that widens element
//!   `i`, and `const HAS_NAME: bool`. An optional vector absent from the
//!   variant gets a stub loader returning 0 and `HAS_NAME = false`.
//! - `//!weights BINDING` declares `chunks` bindings `w0..` starting at
//!   `BINDING` and a `fn load_w(i: u32) -> f32` that picks the chunk of flat
//!   element `i` using the `p.w_chunk` uniform (elements per chunk).

use crate::variant::ShaderVariant;
use crate::weight::WeightLoad;

const ACTIVATIONS: &str = include_str!("../../../shaders/activations.wgsl");

/// f16 bit pattern (low 16 bits of `h`) to f32 without `unpack2x16float`.
const F16_BITS_FN: &str = "
fn f16_bits_to_f32(h: u32) -> f32 {
    let sign = (h & 0x8000u) << 16u;
    let e = (h >> 10u) & 0x1fu;
    let m = h & 0x3ffu;
    if (e == 0u) {
        let v = f32(m) * 5.960464477539063e-8;
        return select(v, -v, sign != 0u);
    }
    if (e == 31u) {
        return bitcast<f32>(sign | 0x7f800000u | (m << 13u));
    }
    return bitcast<f32>(sign | ((e + 112u) << 23u) | (m << 13u));
}
";

/// Renders the WGSL of `variant` from its template `src`.
pub(crate) fn render(src: &str, variant: &ShaderVariant) -> String {
    let mut out = String::with_capacity(src.len() + 1024);
    let mut needs_bits_fn = false;
    for line in src.lines() {
        let trimmed = line.trim();
        let Some(marker) = trimmed.strip_prefix("//!") else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let parts: Vec<&str> = marker.split_whitespace().collect();
        match parts.as_slice() {
            ["enable"] => {
                if variant.load.needs_shader_f16() {
                    out.push_str("enable f16;\n");
                }
            }
            ["include", "activations"] => out.push_str(ACTIVATIONS),
            ["typed", name, binding, rest @ ..] => {
                let optional = rest.first() == Some(&"optional");
                let present = !optional || variant.has_optional(name);
                let binding: u32 = binding.parse().expect("typed marker binding");
                if present {
                    needs_bits_fn |= variant.load == WeightLoad::F16Bits;
                    out.push_str(&typed_vector(name, binding, variant.load));
                } else {
                    out.push_str(&format!("fn load_{name}(i: u32) -> f32 {{\n    return 0.0;\n}}\n"));
                }
                out.push_str(&format!("const HAS_{}: bool = {present};\n", name.to_uppercase()));
            }
            ["weights", binding] => {
                let binding: u32 = binding.parse().expect("weights marker binding");
                needs_bits_fn |= variant.load == WeightLoad::F16Bits;
                out.push_str(&weights(binding, variant.chunks.max(1), variant.load));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    if needs_bits_fn {
        out.push_str(F16_BITS_FN);
    }
    out
}

/// Declaration + loader of one typed read-only vector.
fn typed_vector(name: &str, binding: u32, load: WeightLoad) -> String {
    let (elem, body) = match load {
        WeightLoad::F32 => ("f32", format!("return {name}[i];")),
        WeightLoad::F16Native => ("f16", format!("return f32({name}[i]);")),
        WeightLoad::F16Packed => {
            ("u32", format!("let v = unpack2x16float({name}[i >> 1u]);\n    return select(v.x, v.y, (i & 1u) == 1u);"))
        }
        WeightLoad::F16Bits => {
            ("u32", format!("return f16_bits_to_f32(({name}[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu);"))
        }
        WeightLoad::Bf16 => (
            "u32",
            format!(
                "let w = {name}[i >> 1u];\n    return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u));"
            ),
        ),
    };
    format!(
        "@group(0) @binding({binding}) var<storage, read> {name}: array<{elem}>;\n\
         fn load_{name}(i: u32) -> f32 {{\n    {body}\n}}\n"
    )
}

/// Weight chunk bindings and the chunk-dispatching `load_w`.
fn weights(binding: u32, chunks: u8, load: WeightLoad) -> String {
    let mut s = String::new();
    for c in 0..chunks {
        s.push_str(&typed_vector(&format!("w{c}"), binding + c as u32, load));
    }
    if chunks == 1 {
        s.push_str("fn load_w(i: u32) -> f32 {\n    return load_w0(i);\n}\n");
        return s;
    }
    s.push_str(
        "fn load_w(i: u32) -> f32 {\n    let c = i / p.w_chunk;\n    let j = i - c * p.w_chunk;\n    var r = 0.0;\n    switch c {\n",
    );
    for c in 0..chunks - 1 {
        s.push_str(&format!("        case {c}u: {{\n            r = load_w{c}(j);\n        }}\n"));
    }
    s.push_str(&format!(
        "        default: {{\n            r = load_w{}(j);\n        }}\n    }}\n    return r;\n}}\n",
        chunks - 1
    ));
    s
}
