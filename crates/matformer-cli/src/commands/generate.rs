//! `matformer generate`: plain sampling, governed (target tokens/s) and self-speculative decoding.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use matformer_graph::Submodel;
use matformer_runtime::{
    generate as run_generate, generate_governed, load_model, speculative_generate, Governor, SamplingParams,
    StopReason, Tokenizer,
};

use super::human;
use crate::DEFAULT_MODEL;

/// Arguments of `matformer generate`.
#[derive(Args)]
pub struct GenerateArgs {
    /// Model file or directory.
    #[arg(long, default_value = DEFAULT_MODEL)]
    model: PathBuf,
    /// Submodel spec: `s`, `m`, `l`, `xl`, a per-layer list (`s,m,l,xl`), `-` to skip a layer, `;skip=i,j`.
    #[arg(long, default_value = "xl")]
    submodel: String,
    /// Text to continue.
    #[arg(long, default_value = "ROMEO:\n")]
    prompt: String,
    /// Tokens to generate.
    #[arg(long, default_value_t = 200)]
    max_tokens: usize,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.8)]
    temperature: f32,
    /// Keep only the k most likely tokens (0 = all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// RNG seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stop at the end of the context instead of sliding the window to keep generating.
    #[arg(long)]
    no_slide: bool,
    /// Hold this many tokens/s: a governor picks the submodel at every step (overrides --submodel).
    #[arg(long)]
    target_tps: Option<f64>,
    /// With --target-tps: write the per-step trace (CSV, plus a PNG plot beside it).
    #[arg(long, requires = "target_tps")]
    trace: Option<PathBuf>,
    /// Self-speculative decoding: this submodel drafts, --submodel verifies (greedy).
    #[arg(long)]
    draft: Option<String>,
    /// Draft tokens per verification pass.
    #[arg(long, default_value_t = 4)]
    k: usize,
}

/// Prints whole characters only: byte tokens can split a UTF-8 sequence.
struct TextSink<'a> {
    tok: &'a Tokenizer,
    pending: Vec<u32>,
}

impl TextSink<'_> {
    fn push(&mut self, t: u32) {
        self.pending.push(t);
        if let Ok(s) = self.tok.decode(&self.pending) {
            if !s.ends_with('\u{FFFD}') {
                let mut out = std::io::stdout();
                let _ = write!(out, "{s}");
                let _ = out.flush();
                self.pending.clear();
            }
        }
    }
    fn finish(self) -> Result<()> {
        println!("{}", self.tok.decode(&self.pending)?);
        Ok(())
    }
}

/// `matformer generate`.
pub fn generate(a: GenerateArgs) -> Result<()> {
    let m = load_model(&a.model).with_context(|| format!("loading {}", a.model.display()))?;
    let cfg = m.weights.config.clone();
    let sub = Submodel::parse(&cfg, &a.submodel)?;
    let prompt = m.tokenizer.encode(&a.prompt)?;
    let params = SamplingParams { temperature: a.temperature, top_k: a.top_k, top_p: a.top_p, seed: a.seed };
    let weights = Arc::new(m.weights);
    let mut exec = super::device::lm(weights.clone())?;
    eprintln!(
        "[matformer] {} | submodel {} ({} params) | device {}",
        a.model.display(),
        sub.to_spec(&cfg),
        human(sub.params(&cfg)),
        matformer_runtime::LmExecutor::device_name(&exec)
    );
    let start = Instant::now();
    print!("{}", a.prompt);
    let mut sink = TextSink { tok: &m.tokenizer, pending: Vec::new() };
    let (n, stop) = if let Some(draft) = &a.draft {
        if a.target_tps.is_some() {
            bail!("--draft and --target-tps cannot be combined");
        }
        if a.temperature != 0.0 {
            eprintln!("[matformer] speculative decoding is greedy: ignoring --temperature");
        }
        let d = Submodel::parse(&cfg, draft)?;
        // The target shares the draft's weights (on the GPU: one upload) with a cache of its own.
        let mut target_exec = exec.fork()?;
        let g =
            speculative_generate(&mut exec, &mut target_exec, &prompt, &d, &sub, a.k, a.max_tokens, |t| sink.push(t))?;
        sink.finish()?;
        eprintln!(
            "[matformer] draft {} k={}: accepted {}/{} drafted tokens ({:.1}%), {} verify passes",
            d.to_spec(&cfg),
            a.k,
            g.stats.accepted,
            g.stats.drafted,
            100.0 * g.stats.acceptance(),
            g.stats.verify_passes
        );
        (g.tokens.len(), g.stop)
    } else if let Some(tps) = a.target_tps {
        let ladder = Governor::measured_ladder(&mut exec, 8)?;
        let mut rungs: Vec<(f64, String)> = ladder.iter().map(|r| (r.cost, r.name.clone())).collect();
        rungs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let rungs: Vec<String> = rungs.into_iter().map(|r| r.1).collect();
        let mut gov = Governor::new(ladder, tps)?;
        let (g, trace) = generate_governed(&mut exec, &prompt, &mut gov, a.max_tokens, &params, |t, _| sink.push(t))?;
        sink.finish()?;
        if let Some(path) = &a.trace {
            super::trace::write_trace(path, &trace, tps, &rungs)?;
            eprintln!("[matformer] governor trace written to {} (plots: .png, .rungs.png)", path.display());
        }
        (g.tokens.len(), g.stop)
    } else {
        // Past the context, slide: re-prefill the last half-context of text and keep going.
        let max_seq = cfg.max_seq_len();
        let mut all = prompt.clone();
        let mut produced = 0;
        let mut window = prompt;
        let mut p = params.clone();
        loop {
            let g = run_generate(&mut exec, &window, &sub, a.max_tokens - produced, &p, |t| sink.push(t))?;
            produced += g.tokens.len();
            all.extend_from_slice(&g.tokens);
            if g.stop != StopReason::ContextFull || produced >= a.max_tokens || a.no_slide {
                sink.finish()?;
                break (produced, g.stop);
            }
            window = all[all.len() - max_seq / 2..].to_vec();
            p.seed = p.seed.wrapping_add(1); // a fresh random stream per window, still reproducible
        }
    };
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "[matformer] {n} tokens in {secs:.2}s ({:.1} tokens/s){}",
        n as f64 / secs,
        if stop == StopReason::ContextFull { ", stopped: context full" } else { "" }
    );
    Ok(())
}
