// matvec_nt: y[n, m] = x[n, k] · W[m, k]ᵀ (+ bias[m]) for small n (decode).
//
// One 64-invocation workgroup per output row j of W (folded over x/y of the
// dispatch grid). Invocations stride over k, so each row of W is read once,
// coalesced, for up to 4 tokens at a time; partial sums are reduced in
// workgroup memory. Same bindings and uniforms as matmul_nt.wgsl.
//!enable

struct Params {
    n: u32,
    k: u32,
    m: u32,
    w_chunk: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
//!typed bias 3 optional
//!weights 4

const WG: u32 = 64u;
var<workgroup> red: array<vec4<f32>, 64>;

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let j = wid.x + wid.y * nwg.x;
    if (j >= p.m) {
        return;
    }
    let wrow = j * p.k;
    for (var t0 = 0u; t0 < p.n; t0 += 4u) {
        // Token indices clamped into range; results for clamped lanes are discarded.
        let r0 = t0 * p.k;
        let r1 = min(t0 + 1u, p.n - 1u) * p.k;
        let r2 = min(t0 + 2u, p.n - 1u) * p.k;
        let r3 = min(t0 + 3u, p.n - 1u) * p.k;
        var acc = vec4<f32>(0.0);
        for (var kk = t; kk < p.k; kk += WG) {
            let w = load_w(wrow + kk);
            acc = fma(vec4<f32>(w), vec4<f32>(x[r0 + kk], x[r1 + kk], x[r2 + kk], x[r3 + kk]), acc);
        }
        red[t] = acc;
        workgroupBarrier();
        for (var s = WG / 2u; s > 0u; s >>= 1u) {
            if (t < s) {
                red[t] += red[t + s];
            }
            workgroupBarrier();
        }
        if (t < 4u && t0 + t < p.n) {
            var v = red[0][t];
            if (HAS_BIAS) {
                v += load_bias(j);
            }
            y[(t0 + t) * p.m + j] = v;
        }
        workgroupBarrier();
    }
}
