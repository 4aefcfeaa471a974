//! GPU test helpers: one shared `GpuContext` per test binary and the
//! skip-or-fail policy. Include with `#[path = "common/gpu.rs"] mod gpu;`.
#![allow(dead_code)]

use std::sync::OnceLock;

use matformer_kernels::GpuContext;

static CTX: OnceLock<Result<GpuContext, String>> = OnceLock::new();

/// Whether `MATFORMER_REQUIRE_GPU=1` (CI): a missing adapter is then a failure.
pub fn gpu_required() -> bool {
    std::env::var("MATFORMER_REQUIRE_GPU").is_ok_and(|v| v == "1")
}

/// The shared context of this test binary, created on first use (pipelines
/// compile once per binary, which matters on the ~1 s/pipeline software
/// adapter). Returns `None` with a printed reason when there is no adapter,
/// and panics instead when `MATFORMER_REQUIRE_GPU=1`.
pub fn gpu_or_skip() -> Option<&'static GpuContext> {
    let ctx = CTX.get_or_init(|| {
        if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
            // Silences a harmless Vulkan loader warning (see DESIGN.md).
            std::env::set_var("XDG_RUNTIME_DIR", "/tmp");
        }
        match GpuContext::new() {
            Ok(c) => {
                eprintln!("GPU tests run on: {}", c.info_line());
                Ok(c)
            }
            Err(e) => Err(e.to_string()),
        }
    });
    match ctx {
        Ok(c) => Some(c),
        Err(reason) if gpu_required() => {
            panic!("MATFORMER_REQUIRE_GPU=1 but no GPU context: {reason}")
        }
        Err(reason) => {
            eprintln!("skipping GPU test: {reason} (set MATFORMER_REQUIRE_GPU=1 to fail instead)");
            None
        }
    }
}

/// Largest `|got - want| / (atol + rtol·|want|)`; within tolerance when <= 1.
/// NaN anywhere counts as infinitely wrong.
pub fn max_scaled_err(got: &[f32], want: &[f32], atol: f32, rtol: f32) -> f32 {
    assert_eq!(got.len(), want.len(), "length mismatch");
    got.iter()
        .zip(want)
        .map(|(g, w)| {
            let e = (g - w).abs() / (atol + rtol * w.abs());
            if e.is_nan() {
                f32::INFINITY
            } else {
                e
            }
        })
        .fold(0.0, f32::max)
}

/// Asserts `got ≈ want` elementwise with a readable message (first bad index).
#[track_caller]
pub fn assert_close(got: &[f32], want: &[f32], atol: f32, rtol: f32, what: &str) {
    let e = max_scaled_err(got, want, atol, rtol);
    if e > 1.0 {
        let (i, (g, w)) = got
            .iter()
            .zip(want)
            .enumerate()
            .find(|(_, (g, w))| max_scaled_err(&[**g], &[**w], atol, rtol) > 1.0)
            .expect("some element is out of tolerance");
        panic!("{what}: error {e:.3}x the tolerance (atol {atol}, rtol {rtol}); first at [{i}]: got {g}, want {w}");
    }
}
