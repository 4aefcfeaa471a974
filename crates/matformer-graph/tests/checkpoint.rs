//! Checkpoint round trips and every way a checkpoint can be bad.

use std::collections::BTreeMap;
use std::path::PathBuf;

use matformer_graph::checkpoint::{load, parse_safetensors, save, to_bytes};
use matformer_graph::{DType, ModelConfig, ModelWeights, Tensor};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("matformer-graph-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn small() -> ModelWeights {
    ModelWeights::random(ModelConfig::llama_style(50, 16, 2, 4, 2, 32, 16), 7).unwrap()
}

#[test]
fn every_dtype_round_trips_exactly() {
    for dtype in [DType::F32, DType::F16, DType::Bf16] {
        let w = small().to_dtype(dtype);
        let p = tmp(&format!("rt-{dtype:?}.safetensors"));
        save(&w, &p).unwrap();
        let back = load(&p).unwrap();
        assert_eq!(back, w, "{dtype:?} round trip");
        assert_eq!(back.dtype(), dtype);
    }
    let vit = ModelWeights::random(ModelConfig::vit(8, 4, 1, 3, 16, 1, 2, 32), 3).unwrap();
    let p = tmp("vit.safetensors");
    save(&vit, &p).unwrap();
    assert_eq!(load(&p).unwrap(), vit);
}

fn load_err(bytes: &[u8], name: &str) -> String {
    let p = tmp(name);
    std::fs::write(&p, bytes).unwrap();
    load(&p).unwrap_err().to_string()
}

#[test]
fn truncated_corrupted_or_lying_files_are_errors() {
    let bytes = to_bytes(&small(), &BTreeMap::new());
    for cut in [0, 4, 8, 20, bytes.len() / 2, bytes.len() - 1] {
        let e = load_err(&bytes[..cut], "trunc.safetensors");
        assert!(e.contains("bad checkpoint"), "cut {cut}: {e}");
    }
    // A header that claims more data than the file has.
    let hlen = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = String::from_utf8(bytes[8..8 + hlen].to_vec()).unwrap();
    let lying = header.replacen("\"data_offsets\":[0,", "\"data_offsets\":[4,", 1);
    let mut bad = bytes.clone();
    bad[8..8 + hlen].copy_from_slice(lying.as_bytes());
    assert!(load_err(&bad, "lying.safetensors").contains("bad checkpoint"));
    // Garbage JSON header.
    let mut garbage = bytes.clone();
    garbage[8] = b'#';
    assert!(load_err(&garbage, "garbage.safetensors").contains("not a valid safetensors"));
    // Header length pointing past the end.
    let mut huge = bytes.clone();
    huge[..8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    assert!(load_err(&huge, "huge.safetensors").contains("bad checkpoint"));
    assert!(load(&tmp("does-not-exist.safetensors")).unwrap_err().to_string().contains("does-not-exist"));
}

#[test]
fn missing_wrong_shape_or_unexpected_tensors_are_errors() {
    let w = small();
    let mut map: BTreeMap<String, Tensor> = w.named_tensors().into_iter().map(|(n, t)| (n, t.clone())).collect();
    let mut missing = map.clone();
    missing.remove("layers.1.ffn.gate.weight");
    let e = ModelWeights::from_tensors(w.config.clone(), missing).unwrap_err().to_string();
    assert!(e.contains("layers.1.ffn.gate.weight") && e.contains("missing"), "{e}");
    let mut wrong = map.clone();
    wrong.insert("layers.0.attn.q.weight".into(), Tensor::from_f32(vec![3, 16], vec![0.0; 48]));
    let e = ModelWeights::from_tensors(w.config.clone(), wrong).unwrap_err().to_string();
    assert!(e.contains("[3, 16]") && e.contains("[16, 16]"), "{e}");
    map.insert("extra.weight".into(), Tensor::from_f32(vec![1], vec![0.0]));
    let e = ModelWeights::from_tensors(w.config.clone(), map).unwrap_err().to_string();
    assert!(e.contains("extra.weight") && e.contains("unexpected"), "{e}");
    // A safetensors file with no matformer config.
    let bare = safetensors::serialize(Vec::<(String, safetensors::tensor::TensorView<'_>)>::new(), None).unwrap();
    assert!(parse_safetensors(&bare).is_ok());
    assert!(load_err(&bare, "bare.safetensors").contains("matformer_config"));
}

#[test]
fn failed_atomic_write_keeps_the_old_file() {
    let w = small();
    let p = tmp("keep.safetensors");
    save(&w, &p).unwrap();
    let before = std::fs::read(&p).unwrap();
    // Saving into a path whose parent is a file fails; the original elsewhere is untouched and no temp is left.
    let blocked = p.join("child.safetensors");
    assert!(save(&w, &blocked).is_err());
    assert_eq!(std::fs::read(&p).unwrap(), before);
}
