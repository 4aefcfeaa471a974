//! The human-readable table printed after a benchmark run.

use serde_json::Value;

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// Print the results (and the PyTorch comparison when present) as tables.
pub fn print(j: &Value) {
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
