// sample: draw one token id from logits row `row` of x[.., d] on the device,
// so a decode step reads back a single u32 instead of the vocabulary.
//
//   temperature <= 0 or top_k == 1  -> greedy argmax (first index on ties)
//   otherwise p_i ∝ exp((x_i - max) / temperature), restricted to
//     top-k: the k largest logits (top_k = 0 disables), then
//     top-p: the smallest set of largest logits whose mass is >= top_p of the
//            top-k mass (top_p >= 1 disables),
//   and the token is the first index whose cumulative kept mass (in index
//   order) exceeds u * total, u in [0, 1) supplied by the host.
// Thresholds are found exactly by a 32-step bitwise search over the
// order-preserving u32 key of the logits (ties at the threshold are all kept).
// One 256-invocation workgroup; out[0] receives the token id.

struct Params {
    d: u32,
    row: u32,
    top_k: u32,
    _pad0: u32,
    temperature: f32,
    top_p: f32,
    u: f32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

const WG: u32 = 256u;
var<workgroup> redf: array<f32, 256>;
var<workgroup> redu: array<u32, 256>;

// Monotone map f32 -> u32: a < b (as floats) <=> key(a) < key(b).
fn key(v: f32) -> u32 {
    let b = bitcast<u32>(v);
    return select(b ^ 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn sum_f(v: f32, t: u32) -> f32 {
    redf[t] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (t < s) {
            redf[t] += redf[t + s];
        }
        workgroupBarrier();
    }
    let r = redf[0];
    workgroupBarrier();
    return r;
}

fn sum_u(v: u32, t: u32) -> u32 {
    redu[t] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (t < s) {
            redu[t] += redu[t + s];
        }
        workgroupBarrier();
    }
    let r = redu[0];
    workgroupBarrier();
    return r;
}

// Largest key among the row plus the first index holding it.
fn max_key(base: u32, t: u32) -> vec2<u32> {
    var bk = 0u;
    var bi = 0xffffffffu;
    for (var c = t; c < p.d; c += WG) {
        let kc = key(x[base + c]);
        if (bi == 0xffffffffu || kc > bk) {
            bk = kc;
            bi = c;
        }
    }
    redu[t] = bk;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (t < s) {
            redu[t] = max(redu[t], redu[t + s]);
        }
        workgroupBarrier();
    }
    let mk = redu[0];
    workgroupBarrier();
    var cand = 0xffffffffu;
    if (bi != 0xffffffffu && bk == mk) {
        cand = bi;
    }
    redu[t] = cand;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (t < s) {
            redu[t] = min(redu[t], redu[t + s]);
        }
        workgroupBarrier();
    }
    let mi = redu[0];
    workgroupBarrier();
    return vec2<u32>(mk, mi);
}

fn prob(v: f32, mx: f32) -> f32 {
    return exp((v - mx) / p.temperature);
}

// Number of logits with key >= k.
fn count_ge(base: u32, k: u32, t: u32) -> u32 {
    var n = 0u;
    for (var c = t; c < p.d; c += WG) {
        n += select(0u, 1u, key(x[base + c]) >= k);
    }
    return sum_u(n, t);
}

// Unnormalised probability mass of logits with key >= k.
fn mass_ge(base: u32, k: u32, mx: f32, t: u32) -> f32 {
    var m = 0.0;
    for (var c = t; c < p.d; c += WG) {
        let v = x[base + c];
        if (key(v) >= k) {
            m += prob(v, mx);
        }
    }
    return sum_f(m, t);
}

var<workgroup> chunk_mass: array<f32, 256>;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(local_invocation_index) t: u32) {
    if (p.d == 0u) {
        return;
    }
    let base = p.row * p.d;
    let mxk = max_key(base, t);
    if (p.temperature <= 0.0 || p.top_k == 1u) {
        if (t == 0u) {
            out[0] = mxk.y;
        }
        return;
    }
    let mx = x[base + mxk.y];

    // Top-k: the largest key K with count(key >= K) >= top_k.
    var kth = 0u;
    if (p.top_k > 0u && p.top_k < p.d) {
        for (var b = 31i; b >= 0i; b--) {
            let cand = kth | (1u << u32(b));
            if (count_ge(base, cand, t) >= p.top_k) {
                kth = cand;
            }
        }
    }
    // Top-p: the largest key K with mass(key >= K) >= top_p * mass(top-k set).
    var thr = kth;
    if (p.top_p < 1.0) {
        let target_mass = max(p.top_p, 0.0) * mass_ge(base, kth, mx, t);
        thr = 0u;
        for (var b = 31i; b >= 0i; b--) {
            let cand = thr | (1u << u32(b));
            if (mass_ge(base, cand, mx, t) >= target_mass) {
                thr = cand;
            }
        }
        thr = max(thr, kth);
    }

    // Inverse-CDF draw in index order: each invocation owns one contiguous chunk.
    let chunk = (p.d + WG - 1u) / WG;
    let c0 = min(t * chunk, p.d);
    let c1 = min(c0 + chunk, p.d);
    var cm = 0.0;
    for (var c = c0; c < c1; c++) {
        let v = x[base + c];
        if (key(v) >= thr) {
            cm += prob(v, mx);
        }
    }
    chunk_mass[t] = cm;
    workgroupBarrier();
    if (t == 0u) {
        var total = 0.0;
        for (var i = 0u; i < WG; i++) {
            total += chunk_mass[i];
        }
        let goal = clamp(p.u, 0.0, 1.0) * total;
        var cum = 0.0;
        var pick = mxk.y;
        var found = false;
        for (var i = 0u; i < WG && !found; i++) {
            if (cum + chunk_mass[i] > goal) {
                let s0 = min(i * chunk, p.d);
                let s1 = min(s0 + chunk, p.d);
                for (var c = s0; c < s1; c++) {
                    let v = x[base + c];
                    if (key(v) >= thr) {
                        pick = c;
                        cum += prob(v, mx);
                        if (cum > goal) {
                            found = true;
                            break;
                        }
                    }
                }
                // Rounding left the goal inside this chunk's tail: keep its last kept index.
                found = true;
            } else {
                cum += chunk_mass[i];
            }
        }
        out[0] = pick;
    }
}
