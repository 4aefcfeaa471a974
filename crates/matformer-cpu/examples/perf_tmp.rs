use half::{bf16, f16};
use matformer_cpu::{fast, WeightElem};
use std::time::Instant;

fn time<F: FnMut()>(mut f: F, reps: usize) -> f64 {
    f();
    let mut best = f64::MAX;
    for _ in 0..reps.max(3) {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

fn mv<W: WeightElem>(name: &str, k: usize, m: usize) {
    let x: Vec<f32> = (0..k).map(|i| (i % 7) as f32 * 0.1).collect();
    let w: Vec<W> = (0..k * m).map(|i| W::from_f32((i % 13) as f32 * 0.01)).collect();
    let mut y = vec![0.0; m];
    let bytes = (k * m * std::mem::size_of::<W>()) as f64;
    let t = time(|| fast::matmul_nt(&x, &w, None, &mut y, 1, k, m), 20);
    println!("matvec nt {name} {k}x{m}: {:.3} ms {:.1} GB/s", t * 1e3, bytes / t / 1e9);
    let mut y = vec![0.0; k];
    let t = time(
        || {
            fast::matmul_nn(
                &x[..m.min(k)].iter().cycle().take(m).cloned().collect::<Vec<_>>(),
                &w,
                None,
                &mut y,
                1,
                m,
                k,
            )
        },
        20,
    );
    println!("matvec nn {name} {m}x{k}: {:.3} ms {:.1} GB/s", t * 1e3, bytes / t / 1e9);
}

fn mm<W: WeightElem>(name: &str, n: usize, k: usize, m: usize) {
    let x: Vec<f32> = (0..n * k).map(|i| (i % 7) as f32 * 0.1).collect();
    let w: Vec<W> = (0..k * m).map(|i| W::from_f32((i % 13) as f32 * 0.01)).collect();
    let mut y = vec![0.0; n * m];
    let fl = 2.0 * (n * k * m) as f64;
    let t = time(|| fast::matmul_nt(&x, &w, None, &mut y, n, k, m), 5);
    println!("gemm nt {name} n={n} k={k} m={m}: {:.2} ms {:.1} GFLOP/s", t * 1e3, fl / t / 1e9);
    let t = time(|| fast::matmul_nn(&x, &w, None, &mut y, n, k, m), 5);
    println!("gemm nn {name} n={n} k={k} m={m}: {:.2} ms {:.1} GFLOP/s", t * 1e3, fl / t / 1e9);
}

fn main() {
    println!("threads {}", rayon::current_num_threads());
    // bandwidth roofline: sum over 256MB
    let big = vec![1.0f32; 64 << 20];
    let t = time(
        || {
            let s: f32 = big.chunks(1 << 16).map(|c| c.iter().sum::<f32>()).sum();
            std::hint::black_box(s);
        },
        5,
    );
    println!("seq sum 256MB: {:.1} GB/s", 256.0 * 1.048576e6 / t / 1e9);
    use rayon::prelude::*;
    let t = time(
        || {
            let s: f32 = big
                .par_chunks(1 << 16)
                .map(|c| {
                    let mut a = [0f32; 32];
                    for ch in c.chunks_exact(32) {
                        for i in 0..32 {
                            a[i] += ch[i];
                        }
                    }
                    a.iter().sum::<f32>()
                })
                .sum();
            std::hint::black_box(s);
        },
        5,
    );
    println!("par sum 256MB: {:.1} GB/s", 256.0 * 1.048576e6 / t / 1e9);
    drop(big);
    mv::<f32>("f32", 4096, 4096);
    mv::<f16>("f16", 4096, 4096);
    mv::<bf16>("bf16", 4096, 4096);
    mv::<f32>("f32", 1024, 512);
    if std::env::var("ONLY_SKINNY").is_err() {
        mm::<f32>("f32", 512, 1024, 1024);
        mm::<f16>("f16", 512, 1024, 1024);
        mm::<bf16>("bf16", 512, 1024, 1024);
        mm::<f32>("f32", 512, 2048, 4096);
        mm::<bf16>("bf16", 512, 2048, 4096);
    }
    for n in [4, 8, 16] {
        mm::<f16>("f16", n, 2048, 4096);
        mm::<f32>("f32", n, 2048, 4096);
    }
    if std::env::var("ONLY_SKINNY").is_ok() {
        return;
    }
    // elementwise
    let mut v: Vec<f32> = (0..1 << 22).map(|i| (i % 1000) as f32 * 0.01 - 5.0).collect();
    let t = time(|| fast::gelu(&mut v), 10);
    println!("gelu 4M: {:.2} ms ({:.2} ns/elem)", t * 1e3, t * 1e9 / (1 << 22) as f64);
    let t = time(|| fast::gelu_tanh(&mut v), 10);
    println!("gelu_tanh 4M: {:.2} ms", t * 1e3);
    let t = time(|| fast::softmax(&mut v, 1024, 4096), 10);
    println!("softmax 4M: {:.2} ms", t * 1e3);
    let mut v2 = v.clone();
    let t = time(|| matformer_cpu::reference::gelu(&mut v2), 2);
    println!("reference gelu 4M: {:.2} ms", t * 1e3);
    // attention prefill
    let (n, nh, hd) = (512, 8, 64);
    let q: Vec<f32> = (0..n * nh * hd).map(|i| ((i % 17) as f32 - 8.0) * 0.05).collect();
    let mut o = vec![0.0; q.len()];
    let fl = 4.0 * (n * n / 2 * nh * hd) as f64;
    let t = time(|| fast::attention(&q, &q, &q, &mut o, n, n, nh, nh, hd, Some(0)), 5);
    println!("attention prefill 512: {:.2} ms {:.1} GFLOP/s", t * 1e3, fl / t / 1e9);
    let t = time(|| fast::attention(&q[..nh * hd], &q, &q, &mut o[..nh * hd], 1, n, nh, nh, hd, Some(n - 1)), 50);
    println!("attention decode kv=512: {:.3} ms", t * 1e3);
    let mut dq = vec![0.0; q.len()];
    let mut dk = dq.clone();
    let mut dv = dq.clone();
    let t = time(
        || {
            matformer_cpu::backward::attention_backward(
                &q,
                &q,
                &q,
                &q,
                &mut dq,
                &mut dk,
                &mut dv,
                n,
                n,
                nh,
                nh,
                hd,
                Some(0),
            )
        },
        3,
    );
    println!("attention backward 512: {:.2} ms {:.1} GFLOP/s", t * 1e3, 2.5 * fl / t / 1e9);
}
