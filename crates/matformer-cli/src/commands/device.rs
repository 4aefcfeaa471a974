//! `--device auto|cpu|gpu`: one device per process, chosen (and logged) on first use. In auto mode a GPU
//! that fails, when the executor is built or at any later step, is replaced by the CPU with a warning.

use std::sync::{Arc, OnceLock};

use anyhow::Result;
use matformer_graph::ModelWeights;
use matformer_runtime::device::{choose_device, lm_executor, lm_executor_with_fallback, select_device, vit_runner};
use matformer_runtime::{Device, DeviceKind, LmExecutor, VitRunner};

static KIND: OnceLock<DeviceKind> = OnceLock::new();
static DEVICE: OnceLock<(Device, bool)> = OnceLock::new();

/// Records the `--device` flag (called once by `main`).
pub fn set_device(kind: DeviceKind) {
    let _ = KIND.set(kind);
}

fn kind() -> DeviceKind {
    KIND.get().copied().unwrap_or_default()
}

/// The device of this process and whether GPU failures fall back to the CPU (auto mode).
fn device() -> Result<&'static (Device, bool)> {
    if let Some(d) = DEVICE.get() {
        return Ok(d);
    }
    let (resolved, _) = kind().resolve()?;
    let device = select_device(kind())?;
    Ok(DEVICE.get_or_init(|| (device, resolved == DeviceKind::Auto)))
}

/// An LM executor on the selected device.
pub(crate) fn lm(weights: Arc<ModelWeights>) -> Result<Box<dyn LmExecutor>> {
    let (device, fallback) = device()?;
    Ok(if *fallback { lm_executor_with_fallback(device, weights)? } else { lm_executor(device, weights)? })
}

/// A ViT runner on the selected device.
pub(crate) fn vit(weights: Arc<ModelWeights>) -> Result<VitRunner> {
    let (device, fallback) = device()?;
    Ok(vit_runner(device, weights, *fallback)?)
}

/// The line `matformer info` prints: the device the other commands would use, and why.
pub(crate) fn describe() -> String {
    match choose_device(kind()) {
        Ok((d, why)) => format!("{} ({why})", d.describe()),
        Err(e) => format!("none ({e})"),
    }
}
