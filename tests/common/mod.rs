//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// Path of a file under `tests/fixtures`.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(rel)
}

/// A fresh temporary directory for one test.
pub fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("matformer-e2e-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Largest |a-b| / (atol + rtol·|b|); the comparison passes when this is <= 1.
pub fn max_scaled_err(a: &[f32], b: &[f32], atol: f32, rtol: f32) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (x - y).abs() / (atol + rtol * y.abs())).fold(0.0, f32::max)
}

/// Assert closeness with a readable message.
pub fn assert_close(a: &[f32], b: &[f32], atol: f32, rtol: f32, what: &str) {
    let e = max_scaled_err(a, b, atol, rtol);
    assert!(e <= 1.0, "{what}: error {e:.3}x the tolerance (atol {atol}, rtol {rtol})");
}
