//! The human-readable table printed after a benchmark run.

use serde_json::Value;

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// Print the results (and the PyTorch comparison when present) as tables.
pub fn print(j: &Value) {
    if !j["cpu"].is_null() {
        print_cpu(j);
    }
    if !j["elastic"].is_null() {
        print_elastic(&j["elastic"]);
        if !j["cpu"].is_null() {
            print_speculative_projection(j);
        }
    }
    if !j["training"].is_null() {
        print_training(&j["training"]);
    }
    if !j["gpu"].is_null() {
        print_gpu(&j["gpu"]);
    }
}

fn print_cpu(j: &Value) {
    let cpu = &j["cpu"];
    println!("\n== CPU ({} threads) ==", j["threads"]);
    println!("memory bandwidth: {:.1} GB/s", f(&cpu["bandwidth_gbs"]));
    println!("\nGEMM y[n,m] = x[n,768]·W[m,768]^T, GFLOP/s");
    let torch_gemm = j["torch"]["gemm"]["float32"].as_array();
    println!("{:>5} {:>5} {:>10} {:>12} {:>12} {:>8}", "n", "m", "ours f32", "ours f16-w", "torch f32", "ratio");
    for r in cpu["gemm"].as_array().into_iter().flatten() {
        let t = torch_gemm
            .and_then(|rows| rows.iter().find(|t| t["n"] == r["n"] && t["m"] == r["m"]))
            .map(|t| f(&t["gflops"]));
        let ours = f(&r["f32_gflops"]);
        println!(
            "{:>5} {:>5} {:>10.1} {:>12.1} {:>12} {:>8}",
            r["n"],
            r["m"],
            ours,
            f(&r["f16_weights_gflops"]),
            t.map_or("-".into(), |t| format!("{t:.1}")),
            t.map_or("-".into(), |t| format!("{:.2}x", ours / t))
        );
    }
    println!("\nFFN (up, GELU, down) for one token, time relative to xl (ideal = width ratio)");
    for r in cpu["ffn_scaling"].as_array().into_iter().flatten() {
        println!(
            "  width {:>5}: {:>8.1} us  ratio {:.3}  (ideal {:.3})",
            r["width"],
            f(&r["us"]),
            f(&r["ratio_to_xl"]),
            f(&r["ideal"])
        );
    }
    let d = &cpu["decode"];
    println!("\nDecode, random MatLM {} params: ms/token and fraction of the bandwidth roofline", d["model"]["params"]);
    println!("{:>5} {:>4} {:>12} {:>10} {:>10} {:>10}", "dtype", "sub", "params", "ms/token", "tok/s", "roofline");
    for r in d["rows"].as_array().into_iter().flatten() {
        println!(
            "{:>5} {:>4} {:>12} {:>10.2} {:>10.1} {:>9.0}%",
            r["dtype"].as_str().unwrap_or(""),
            r["submodel"].as_str().unwrap_or(""),
            r["params"],
            f(&r["ms_per_token"]),
            f(&r["tokens_per_s"]),
            100.0 * f(&r["roofline_fraction"])
        );
    }
    if let Some(models) = j["torch"]["hf_decode"]["models"].as_array() {
        println!("\nPyTorch {} / transformers eager decode, same shapes:", j["torch"]["torch_version"]);
        for m in models {
            println!("  {:<12} {:>8.2} ms/token", m["label"].as_str().unwrap_or(""), f(&m["ms_per_token"]));
        }
    } else {
        println!("\n(PyTorch comparison not run: create .venv-ref as scripts/README.md says)");
    }
}

fn print_elastic(e: &Value) {
    println!("\n== Elastic inference on {} ==", e["model"].as_str().unwrap_or("?"));
    let s = &e["speculative"];
    println!("self-speculative decoding (xl greedy {:.1} tokens/s):", f(&s["xl_tokens_per_s"]));
    for r in s["rows"].as_array().into_iter().flatten() {
        println!(
            "  draft {:<12} k={}: acceptance {:5.1}%  speedup {:.2}x  identical output: {}  (per xl step: draft \
             token {:.2}, verify pass {:.2}; {:.2} tokens per round)",
            r["draft"].as_str().unwrap_or(""),
            r["k"],
            100.0 * f(&r["acceptance"]),
            f(&r["speedup"]),
            r["identical"],
            f(&r["draft_cost"]),
            f(&r["verify_cost"]),
            f(&r["tokens_per_round"])
        );
    }
    let w = &e["switch"];
    println!(
        "submodel switch: {:.1} ns, {} allocations over {} switches",
        f(&w["ns_per_switch"]),
        w["allocations"],
        w["iterations"]
    );
    println!("planner (params budget -> best Mix'n'Match spec by validation loss, vs nearest named granularity):");
    for r in e["planner"].as_array().into_iter().flatten() {
        println!(
            "  <= {:>9}: {:<28} {:>9} params loss {:.4}  (named {} loss {})  {:.2} ms/token",
            r["budget_params"],
            r["spec"].as_str().unwrap_or(""),
            r["params"],
            f(&r["loss"]),
            r["named"].as_str().unwrap_or("-"),
            r["named_loss"].as_f64().map_or("-".into(), |l| format!("{l:.4}")),
            f(&r["ms_per_token"])
        );
    }
    let g = &e["governor"];
    let trace = g["trace"].as_array().cloned().unwrap_or_default();
    let (a, b) = (g["load_steps"][0].as_u64().unwrap_or(0) as usize, g["load_steps"][1].as_u64().unwrap_or(0) as usize);
    println!(
        "governor: target {:.1} tokens/s (xl idle {:.1}); load from step {a} to {b}",
        f(&g["target_tps"]),
        f(&g["xl_idle_tps"])
    );
    for (name, lo, hi) in [("before", 0, a), ("load", a, b), ("after", b, trace.len())] {
        let part = &trace[lo.min(trace.len())..hi.min(trace.len())];
        if part.is_empty() {
            continue;
        }
        let ms: f64 = part.iter().map(|t| f(&t["ms"])).sum();
        let mut shares: Vec<(String, usize)> = vec![];
        for t in part {
            let sub = t["submodel"].as_str().unwrap_or("?");
            match shares.iter_mut().find(|(n, _)| n == sub) {
                Some(e) => e.1 += 1,
                None => shares.push((sub.to_string(), 1)),
            }
        }
        let shares: Vec<String> =
            shares.iter().map(|(n, c)| format!("{n} {:.0}%", 100.0 * *c as f64 / part.len() as f64)).collect();
        println!(
            "  {name:<6}: {:7.1} tokens/s over {} steps, steps per submodel: {}",
            part.len() as f64 * 1e3 / ms,
            part.len(),
            shares.join(", ")
        );
    }
}

/// What self-speculative decoding would gain on the memory-bound 124M decode model: the shipped model's
/// measured acceptance per (draft, k), with that model's measured draft-step and verify-pass costs.
/// Expected tokens per round with acceptance a: (1 − a^(k+1)) / (1 − a).
fn print_speculative_projection(j: &Value) {
    let d = &j["cpu"]["decode"];
    let ms = |dtype: &str, sub: &str| {
        d["rows"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["dtype"] == dtype && r["submodel"] == sub)
            .map(|r| f(&r["ms_per_token"]))
    };
    println!(
        "\nspeculative decoding projected for the {}-param decode model (acceptance from the shipped model):",
        d["model"]["params"]
    );
    for v in d["verify"].as_array().into_iter().flatten() {
        let (dtype, k) = (v["dtype"].as_str().unwrap_or(""), v["k"].as_u64().unwrap_or(0) as usize);
        let Some(xl) = ms(dtype, "xl") else { continue };
        let mut parts = vec![];
        for draft in ["s", "m", "l"] {
            let row = j["elastic"]["speculative"]["rows"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| r["draft"] == draft && r["k"] == k as u64);
            let (Some(row), Some(dm)) = (row, ms(dtype, draft)) else { continue };
            let a = f(&row["acceptance"]).min(0.999_999);
            let tokens = (1.0 - a.powi(k as i32 + 1)) / (1.0 - a);
            let cost = k as f64 * dm / xl + f(&v["xl_steps"]);
            parts.push(format!("{draft} {:.2}x", tokens / cost));
        }
        println!(
            "  {dtype} k={k}: verify pass {:.2} xl steps; projected speedup {}",
            f(&v["xl_steps"]),
            parts.join(", ")
        );
    }
}

fn print_training(t: &Value) {
    println!("\n== Training on the CPU ({} threads) ==", rayon::current_num_threads());
    for fam in ["matlm", "matvit"] {
        let r = &t[fam];
        if let Some(why) = r["skipped"].as_str() {
            println!("  {fam}: skipped ({why})");
            continue;
        }
        let unit = r["unit"].as_str().unwrap_or("items");
        println!(
            "  {:<18} joint {:8.1} {unit} ({:.1} ms/step)  xl-only {:8.1} {unit} ({:.1} ms/step)  joint/xl step cost {:.2}x",
            r["preset"].as_str().unwrap_or(fam),
            f(&r["joint_items_per_s"]),
            1e3 * f(&r["joint_s_per_step"]),
            f(&r["xl_items_per_s"]),
            1e3 * f(&r["xl_s_per_step"]),
            f(&r["joint_over_xl"])
        );
    }
}

fn print_gpu(g: &Value) {
    if let Some(why) = g["skipped"].as_str() {
        println!("\n== GPU: skipped ({why}) ==");
        return;
    }
    println!("\n== GPU: {} ({}) ==", g["adapter"].as_str().unwrap_or("?"), g["timing"].as_str().unwrap_or(""));
    println!("FFN kernels (up + down), time relative to xl (ideal: 0.125, 0.25, 0.5, 1)");
    for r in g["ffn"].as_array().into_iter().flatten() {
        let ws: Vec<String> = r["widths"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| format!("{}: {:.0}us ({:.3})", w["width"], f(&w["us"]), f(&w["ratio_to_xl"])))
            .collect();
        println!("  {} n={:<3} {}", r["dtype"].as_str().unwrap_or(""), r["n"], ws.join("  "));
    }
    let e = &g["e2e"];
    if let Some(why) = e["skipped"].as_str() {
        println!("end-to-end: skipped ({why})");
        return;
    }
    println!("end-to-end greedy decode, random MatLM {} params: tokens/s GPU vs CPU", e["model_params"]);
    for r in e["decode"].as_array().into_iter().flatten() {
        println!(
            "  {:<3} GPU {:>8.1}  CPU {:>8.1}",
            r["submodel"].as_str().unwrap_or(""),
            f(&r["gpu_tokens_per_s"]),
            f(&r["cpu_tokens_per_s"])
        );
    }
    println!("per-op device time (timestamp queries), decode, relative to xl:");
    for r in e["profile"].as_array().into_iter().flatten() {
        let ops = r["ops"].as_object().cloned().unwrap_or_default();
        let parts: Vec<String> = ops.iter().map(|(k, v)| format!("{k} {:.3}", f(&v["ratio_to_xl"]))).collect();
        println!(
            "  {:<3} all FFN {:.3} | {} (timestamps: {})",
            r["submodel"].as_str().unwrap_or(""),
            f(&r["ffn_ratio_to_xl"]),
            parts.join(", "),
            r["timestamps"]
        );
    }
}
