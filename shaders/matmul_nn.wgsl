// matmul_nn: y[n, m] = x[n, k] · W[k, m] (+ bias[m]).
//
// Tiled prefill kernel for the FFN down projection stored neuron-major
// [d_ff, d_model]: k is the ACTIVE width (a uniform), so only the first k rows
// of W are read and the work is ∝ k. Each 16x16 workgroup computes a 64x64
// output tile with 4x4 register blocks; tiles of depth 16 in workgroup memory.
// Template markers: see matmul_nt.wgsl.
//!enable

struct Params {
    n: u32,
    k: u32,
    m: u32,
    // Elements per weight binding (rows_per_chunk * m); used by load_w.
    w_chunk: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
//!typed bias 3 optional
//!weights 4

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;

var<workgroup> xs: array<f32, 1024>;
var<workgroup> ws: array<f32, 1024>;

@compute @workgroup_size(16, 16, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let row0 = wid.y * BM;
    let col0 = wid.x * BN;
    var acc: array<f32, 16>;
    for (var i = 0u; i < 16u; i++) {
        acc[i] = 0.0;
    }

    for (var kt = 0u; kt < p.k; kt += BK) {
        for (var e = 0u; e < 4u; e++) {
            let idx = li + e * 256u;
            // x tile: row-major reads along k.
            let r = idx / BK;
            let kk = idx % BK;
            let gr = row0 + r;
            let gk = kt + kk;
            var xv = 0.0;
            if (gr < p.n && gk < p.k) {
                xv = x[gr * p.k + gk];
            }
            xs[kk * BM + r] = xv;
            // W tile: reads along m (coalesced) for one k row.
            let wk = idx / BN;
            let wc = idx % BN;
            let gwk = kt + wk;
            let gc = col0 + wc;
            var wv = 0.0;
            if (gwk < p.k && gc < p.m) {
                wv = load_w(gwk * p.m + gc);
            }
            ws[wk * BN + wc] = wv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            var a: array<f32, 4>;
            var b: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                a[i] = xs[kk * BM + lid.y * 4u + i];
                b[i] = ws[kk * BN + lid.x * 4u + i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i * 4u + j] = fma(a[i], b[j], acc[i * 4u + j]);
                }
            }
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < 4u; i++) {
        let r = row0 + lid.y * 4u + i;
        if (r >= p.n) {
            break;
        }
        for (var j = 0u; j < 4u; j++) {
            let c = col0 + lid.x * 4u + j;
            if (c < p.m) {
                var v = acc[i * 4u + j];
                if (HAS_BIAS) {
                    v += load_bias(c);
                }
                y[r * p.m + c] = v;
            }
        }
    }
}
