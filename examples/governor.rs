//! Dynamic deployment: a governor holds a target tokens/s while another workload takes CPU away mid-generation.
//! Writes the per-step trace to `target/governor_trace.csv` and a plot to `target/governor_trace.png`.
//!
//! `cargo run --release --example governor [MODEL] [TOKENS]`

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use matformer::graph::{ModelConfig, ModelWeights};
use matformer::runtime::{generate_governed, load_model, CpuLm, Governor, SamplingParams};
use matformer_train::log::{line_plot, Series};

fn busy(stop: Arc<AtomicBool>) {
    let mut x = 1.0f64;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..10_000 {
            x = (x * 1.000001).sqrt() + 1.0;
        }
    }
    std::hint::black_box(x);
}

pub fn main() {
    let path = std::env::args()
        .nth(1)
        .filter(|a| !a.starts_with('-'))
        .unwrap_or_else(|| "models/matlm-shakespeare.safetensors".into());
    let tokens: usize =
        std::env::args().nth(2).filter(|a| !a.starts_with('-')).and_then(|t| t.parse().ok()).unwrap_or(150);
    let weights = match load_model(path.as_ref()) {
        Ok(m) => m.weights,
        Err(_) => ModelWeights::random(ModelConfig::gpt2_style(256, 128, 4, 4, 1024, 512), 0).unwrap(),
    };
    // Stay inside the context: the governed run does not slide the window.
    let tokens = tokens.min(weights.config.max_seq_len() - 3);
    let mut exec = CpuLm::new(Arc::new(weights)).unwrap();
    // Calibrate: the target is 80% of what xl achieves on an idle machine.
    let ladder = Governor::measured_ladder(&mut exec, 8).unwrap();
    let mut probe = Governor::new(ladder.clone(), 1e-9).unwrap(); // never steps: measures xl alone
    let (_, t) =
        generate_governed(&mut exec, &[1, 2, 3], &mut probe, 20, &SamplingParams::default(), |_, _| {}).unwrap();
    let xl_secs = t[5..].iter().map(|s| s.secs).sum::<f64>() / (t.len() - 5) as f64;
    let target = 0.8 / xl_secs;
    println!("xl alone: {:.1} tokens/s; target {:.1} tokens/s", 1.0 / xl_secs, target);
    let mut gov = Governor::new(ladder, target).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut load: Vec<std::thread::JoinHandle<()>> = Vec::new();
    let started = Instant::now();
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2) * 2;
    let (g, trace) =
        generate_governed(&mut exec, &[1, 2, 3], &mut gov, tokens, &SamplingParams::default(), |_, step| {
            if step.step == tokens / 3 {
                println!("step {}: starting {threads} busy threads", step.step);
                for _ in 0..threads {
                    let s = stop.clone();
                    load.push(std::thread::spawn(move || busy(s)));
                }
            }
            if step.step == 2 * tokens / 3 {
                println!("step {}: stopping the load", step.step);
                stop.store(true, Ordering::Relaxed);
            }
        })
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    for h in load {
        h.join().unwrap();
    }
    let mut csv = String::from("step,submodel,ms,tokens_per_s,target_tps,load\n");
    for s in &trace {
        let loaded = s.step >= tokens / 3 && s.step < 2 * tokens / 3;
        csv.push_str(&format!(
            "{},{},{:.3},{:.2},{:.2},{}\n",
            s.step,
            s.submodel,
            s.secs * 1e3,
            1.0 / s.secs,
            target,
            loaded as u8
        ));
    }
    std::fs::create_dir_all("target").unwrap();
    std::fs::write("target/governor_trace.csv", csv).unwrap();
    let decode = || trace.iter().skip(1);
    let series = [
        Series::line("tokens/s", decode().map(|t| (t.step as f64, 1.0 / t.secs)).collect()),
        Series::line("target", decode().map(|t| (t.step as f64, target)).collect()),
    ];
    line_plot("target/governor_trace.png".as_ref(), "governor under a CPU load", "step", "tokens/s", &series).unwrap();
    let phase = |lo: usize, hi: usize| {
        let s = &trace[lo.max(1).min(trace.len())..hi.min(trace.len())];
        let tps = s.len() as f64 / s.iter().map(|t| t.secs).sum::<f64>();
        let mut names: Vec<&str> = s.iter().map(|t| t.submodel.as_str()).collect();
        names.dedup();
        (tps, names.join("→"))
    };
    for (name, lo, hi) in
        [("before", 0, tokens / 3), ("under load", tokens / 3, 2 * tokens / 3), ("after", 2 * tokens / 3, tokens)]
    {
        let (tps, subs) = phase(lo, hi);
        println!("{name:>10}: {tps:6.1} tokens/s, submodels {subs}");
    }
    println!(
        "{} tokens in {:.2}s; trace in target/governor_trace.csv",
        g.tokens.len(),
        started.elapsed().as_secs_f64()
    );
}
