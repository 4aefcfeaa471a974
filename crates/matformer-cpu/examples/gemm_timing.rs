//! Temporary focused timing (to be deleted).
use std::hint::black_box;
use std::time::Instant;

use half::{bf16, f16};
use matformer_cpu::{fast, WeightElem};
use rayon::prelude::*;

fn med(reps: usize, min_s: f64, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let mut calls = 0;
            let s = Instant::now();
            loop {
                f();
                calls += 1;
                let e = s.elapsed().as_secs_f64();
                if e >= min_s {
                    return e / calls as f64;
                }
            }
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn rate<W: WeightElem>(n: usize, k: usize, m: usize, conv: impl Fn(f32) -> W, nn: bool) -> f64 {
    let x: Vec<f32> = (0..n * k).map(|i| ((i % 13) as f32 - 6.0) * 0.01).collect();
    let w: Vec<W> = (0..m * k).map(|i| conv(((i % 17) as f32 - 8.0) * 0.01)).collect();
    let mut y = vec![0.0f32; n * m];
    let s = if nn {
        // y[n,k] = x[n,m]... use k as output: x[n,m]·w[m,k]
        let x2: Vec<f32> = (0..n * m).map(|i| ((i % 13) as f32 - 6.0) * 0.01).collect();
        let mut y2 = vec![0.0f32; n * k];
        med(7, 0.02, || fast::matmul_nn(&x2, &w, None, &mut y2, n, m, k))
    } else {
        med(7, 0.02, || fast::matmul_nt(&x, &w, None, &mut y, n, k, m))
    };
    black_box(&y);
    2.0 * (n * k * m) as f64 / s / 1e9
}

fn bandwidth() -> f64 {
    let n = 64 << 20;
    let buf: Vec<f32> = (0..n).map(|i| (i % 7) as f32).collect();
    let s = med(5, 0.0, || {
        let s: f32 = buf.par_chunks(1 << 16).map(|c| c.iter().sum::<f32>()).sum();
        black_box(s);
    });
    (n * 4) as f64 / s / 1e9
}

/// GPT-2-small-like decode: matvecs only.
fn decode<W: WeightElem>(conv: impl Fn(f32) -> W, ffn: usize) -> (f64, f64) {
    let (d, dff, layers, vocab) = (768, 3072, 12, 50257);
    let mk = |len: usize| -> Vec<W> { (0..len).map(|i| conv(((i % 17) as f32 - 8.0) * 0.001)).collect() };
    let ws: Vec<(Vec<W>, Vec<W>, Vec<W>, Vec<W>)> =
        (0..layers).map(|_| (mk(3 * d * d), mk(d * d), mk(dff * d), mk(dff * d))).collect();
    let head = mk(vocab * d);
    let x = vec![0.01f32; d];
    let mut qkv = vec![0.0; 3 * d];
    let mut o = vec![0.0; d];
    let mut h = vec![0.0; dff];
    let mut logits = vec![0.0; vocab];
    let s = med(9, 0.0, || {
        for (a, b, u, dn) in &ws {
            fast::matmul_nt(&x, a, None, &mut qkv, 1, d, 3 * d);
            fast::matmul_nt(&qkv[..d], b, None, &mut o, 1, d, d);
            fast::matmul_nt(&o, &u[..ffn * d], None, &mut h[..ffn], 1, d, ffn);
            fast::matmul_nn(&h[..ffn], &dn[..ffn * d], None, &mut o, 1, ffn, d);
        }
        fast::matmul_nt(&x, &head, None, &mut logits, 1, d, vocab);
    });
    let bytes = ((layers * (4 * d * d + 2 * ffn * d) + vocab * d) * std::mem::size_of::<W>()) as f64;
    (s * 1e3, bytes / s / 1e9)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let what = args.get(1).map(String::as_str).unwrap_or("gemm");
    if what == "gemm" || what == "all" {
        for n in [1usize, 64, 512] {
            let mut line = format!("n={n:4}");
            for m in [384usize, 768, 1536, 3072] {
                line += &format!(" | m={m}: f32 {:6.1} f16 {:6.1} bf16 {:6.1} nn {:6.1}",
                    rate(n, 768, m, |v| v, false), rate(n, 768, m, f16::from_f32, false),
                    rate(n, 768, m, bf16::from_f32, false), rate(n, 768, m, |v| v, true));
            }
            println!("{line}");
        }
    }
    if what == "decode" || what == "all" {
        let bw = bandwidth();
        println!("bandwidth {bw:.1} GB/s");
        for ffn in [384, 3072] {
            let (ms, gbs) = decode(|v| v, ffn);
            println!("decode f32 ffn {ffn}: {ms:.2} ms {gbs:.1} GB/s {:.0}%", 100.0 * gbs / bw);
            let (ms, gbs) = decode(f16::from_f32, ffn);
            println!("decode f16 ffn {ffn}: {ms:.2} ms {gbs:.1} GB/s {:.0}%", 100.0 * gbs / bw);
        }
    }
}
