//! Mix'n'Match: candidate submodels between the trained granularities, budgets, and Gemma-3n-style slicing
//! tables (CSV: name, per-layer FFN widths, skipped layers).

use crate::config::ModelConfig;
use crate::error::{GraphError, Result};
use crate::submodel::Submodel;

/// A resource budget a submodel must fit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Budget {
    /// At most this many parameters.
    Params(u64),
    /// At most this many FLOPs per token (at half the context).
    Flops(u64),
    /// At most this many milliseconds per decoded token on the profiled device.
    LatencyMs(f64),
}

fn parse_scaled(v: &str) -> Option<f64> {
    let v = v.trim();
    let (num, mult) = match v.chars().last()? {
        'k' | 'K' => (&v[..v.len() - 1], 1e3),
        'm' | 'M' => (&v[..v.len() - 1], 1e6),
        'g' | 'G' | 'b' | 'B' => (&v[..v.len() - 1], 1e9),
        _ => (v, 1.0),
    };
    num.parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0).map(|x| x * mult)
}

impl Budget {
    /// Parse `params=5M`, `flops=2.5G`, `latency=12ms` (or `latency=12`, milliseconds).
    pub fn parse(s: &str) -> Result<Self> {
        let err = |why: &str| GraphError::Config(format!("budget `{s}`: {why}"));
        let (kind, value) = s.split_once('=').ok_or_else(|| err("expected <params|flops|latency>=<value>"))?;
        match kind.trim() {
            "params" => parse_scaled(value).map(|v| Budget::Params(v as u64)).ok_or_else(|| err("bad number")),
            "flops" => parse_scaled(value).map(|v| Budget::Flops(v as u64)).ok_or_else(|| err("bad number")),
            "latency" => {
                let v = value.trim().trim_end_matches("ms");
                v.parse::<f64>()
                    .ok()
                    .filter(|x| *x > 0.0 && x.is_finite())
                    .map(Budget::LatencyMs)
                    .ok_or_else(|| err("bad latency in milliseconds"))
            }
            other => Err(err(&format!("unknown budget kind `{other}` (use params, flops or latency)"))),
        }
    }
}

/// Candidate submodels by the paper's heuristic: widths change slowly across layers. For every pair of
/// neighbouring granularities (a, b) and every split layer j, layers < j use a and layers >= j use b
/// (and the reverse order), plus every uniform granularity.
pub fn candidates(cfg: &ModelConfig) -> Vec<(String, Submodel)> {
    let n = cfg.n_layers;
    let gs = &cfg.granularities;
    let mut out: Vec<(String, Submodel)> = Vec::new();
    for g in gs {
        if let Ok(s) = Submodel::named(cfg, &g.name) {
            out.push((g.name.clone(), s));
        }
    }
    for pair in gs.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        for j in 1..n {
            for (lo, hi) in [(a, b), (b, a)] {
                let names: Vec<&str> =
                    (0..n).map(|l| if l < j { lo.name.as_str() } else { hi.name.as_str() }).collect();
                let spec = names.join(",");
                if let Ok(s) = Submodel::parse(cfg, &spec) {
                    if !out.iter().any(|(_, o)| o == &s) {
                        out.push((spec, s));
                    }
                }
            }
        }
    }
    out
}

/// One row of a slicing table.
#[derive(Clone, Debug, PartialEq)]
pub struct SliceConfig {
    /// Name of the configuration.
    pub name: String,
    /// The submodel.
    pub submodel: Submodel,
}

fn parse_list(field: &str) -> std::result::Result<Vec<usize>, String> {
    let inner = field.trim().trim_start_matches('[').trim_end_matches(']');
    inner
        .split([',', ';', ' '])
        .filter(|t| !t.trim().is_empty())
        .map(|t| t.trim().parse::<usize>().map_err(|_| format!("`{t}` is not a number")))
        .collect()
}

/// Split one CSV line into fields, honouring double quotes.
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => fields.last_mut().expect("non-empty").push(c),
        }
    }
    fields.into_iter().map(|f| f.trim().to_string()).collect()
}

/// Read a slicing table: header `name,ffn_widths,skipped_layers`, lists like `"[512, 512, 1024]"`.
pub fn read_slicing_csv(cfg: &ModelConfig, text: &str) -> Result<Vec<SliceConfig>> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let err = |why: String| GraphError::Config(format!("slicing table line {}: {why}", i + 1));
        let f = csv_fields(line);
        if i == 0 && f.first().is_some_and(|h| h.eq_ignore_ascii_case("name")) {
            continue;
        }
        if f.len() < 2 || f.len() > 3 {
            return Err(err(format!("expected 2 or 3 fields (name, ffn_widths, skipped_layers), got {}", f.len())));
        }
        let widths = parse_list(&f[1]).map_err(err)?;
        if widths.len() != cfg.n_layers {
            return Err(err(format!("lists {} FFN widths but the model has {} layers", widths.len(), cfg.n_layers)));
        }
        let skipped = if f.len() == 3 { parse_list(&f[2]).map_err(err)? } else { vec![] };
        let spec = widths.iter().map(|w| w.to_string()).collect::<Vec<_>>().join(",")
            + &if skipped.is_empty() {
                String::new()
            } else {
                format!(";skip={}", skipped.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(","))
            };
        let submodel = Submodel::parse(cfg, &spec).map_err(|e| err(e.to_string()))?;
        rows.push(SliceConfig { name: f[0].clone(), submodel });
    }
    Ok(rows)
}

/// Write a slicing table in the format [`read_slicing_csv`] reads.
pub fn write_slicing_csv(rows: &[SliceConfig]) -> String {
    let mut s = String::from("name,ffn_widths,skipped_layers\n");
    for r in rows {
        let skip: Vec<String> =
            (0..r.submodel.skip.len()).filter(|&l| r.submodel.skip[l]).map(|l| l.to_string()).collect();
        let widths: Vec<String> = r.submodel.widths.iter().map(|w| w.to_string()).collect();
        s.push_str(&format!("{},\"[{}]\",\"[{}]\"\n", r.name, widths.join(", "), skip.join(", ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_parse() {
        assert_eq!(Budget::parse("params=5M").unwrap(), Budget::Params(5_000_000));
        assert_eq!(Budget::parse("flops=2.5G").unwrap(), Budget::Flops(2_500_000_000));
        assert_eq!(Budget::parse("latency=12ms").unwrap(), Budget::LatencyMs(12.0));
        assert!(Budget::parse("watts=3").unwrap_err().to_string().contains("unknown budget kind"));
        assert!(Budget::parse("params").is_err());
        assert!(Budget::parse("params=lots").is_err());
    }

    #[test]
    fn candidates_are_monotone_splits() {
        let cfg = ModelConfig::gpt2_style(64, 32, 4, 4, 64, 32);
        let c = candidates(&cfg);
        assert!(c.iter().any(|(n, _)| n == "s,s,m,m"));
        assert!(c.iter().any(|(n, _)| n == "xl"));
        // 4 uniform + 3 pairs x 3 splits x 2 orders.
        assert_eq!(c.len(), 4 + 3 * 3 * 2);
    }

    #[test]
    fn slicing_tables_round_trip_and_reject_wrong_layer_counts() {
        let cfg = ModelConfig::gpt2_style(64, 32, 3, 4, 64, 32);
        let rows = vec![
            SliceConfig { name: "tiny".into(), submodel: Submodel::parse(&cfg, "s,m,l;skip=1").unwrap() },
            SliceConfig { name: "full".into(), submodel: Submodel::full(&cfg) },
        ];
        let text = write_slicing_csv(&rows);
        assert_eq!(read_slicing_csv(&cfg, &text).unwrap(), rows);
        let bad = "name,ffn_widths,skipped_layers\nx,\"[8, 8]\",\"[]\"\n";
        assert!(read_slicing_csv(&cfg, bad).unwrap_err().to_string().contains("2 FFN widths but the model has 3"));
    }
}
