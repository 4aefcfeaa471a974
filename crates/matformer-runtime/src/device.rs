//! Device selection: a wgpu GPU (native backends only: Vulkan, Metal, DX12) or the CPU, with one log line
//! saying which and why, plus constructors of executors for the chosen device.
//!
//! Precedence: an explicit [`DeviceKind::Cpu`] / [`DeviceKind::Gpu`] (the CLI's `--device`) wins; with
//! [`DeviceKind::Auto`] the `MATFORMER_DEVICE` environment variable (`auto`, `cpu` or `gpu`) decides; with
//! neither, a hardware GPU adapter is used when there is one and the CPU otherwise. A software adapter
//! (Mesa's lavapipe/llvmpipe, WARP) is correct but 10-100x slower than the native CPU path, so `auto`
//! chooses the CPU over it; ask for it with `gpu`.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use matformer_graph::{ModelConfig, ModelWeights, Submodel};

use crate::cpu_lm::CpuLm;
use crate::cpu_vit::{vit_forward, VitOutput};
use crate::error::{Result, RuntimeError};
use crate::executor::{LmExecutor, Logits};
use crate::gpu::{GpuContext, GpuLm, GpuVit};

/// Environment variable that picks the device when none is requested explicitly.
pub const DEVICE_ENV: &str = "MATFORMER_DEVICE";

/// Which device the caller asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// `MATFORMER_DEVICE` if set, else a hardware GPU if there is one, else the CPU.
    #[default]
    Auto,
    /// The multithreaded CPU path.
    Cpu,
    /// A wgpu adapter (software ones included); failing to create one is an error.
    Gpu,
}

impl FromStr for DeviceKind {
    type Err = RuntimeError;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(DeviceKind::Auto),
            "cpu" => Ok(DeviceKind::Cpu),
            "gpu" => Ok(DeviceKind::Gpu),
            other => Err(RuntimeError::InvalidInput(format!("unknown device `{other}`: use auto, cpu or gpu"))),
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceKind::Auto => "auto",
            DeviceKind::Cpu => "cpu",
            DeviceKind::Gpu => "gpu",
        })
    }
}

impl DeviceKind {
    /// Applies `MATFORMER_DEVICE` to `Auto` (explicit kinds are returned unchanged); returns the kind and
    /// whether the environment decided it.
    pub fn resolve(self) -> Result<(DeviceKind, bool)> {
        if self != DeviceKind::Auto {
            return Ok((self, false));
        }
        match std::env::var(DEVICE_ENV) {
            Ok(v) if !v.trim().is_empty() => {
                let k: DeviceKind = v.parse().map_err(|_| {
                    RuntimeError::InvalidInput(format!("{DEVICE_ENV}={v:?} is not one of auto, cpu, gpu"))
                })?;
                Ok((k, k != DeviceKind::Auto))
            }
            _ => Ok((DeviceKind::Auto, false)),
        }
    }
}

/// A chosen device.
#[derive(Clone, Debug)]
pub enum Device {
    /// The CPU executors.
    Cpu,
    /// A wgpu device, shared by every executor built on it (one pipeline cache).
    Gpu(Arc<GpuContext>),
}

impl Device {
    /// Short description: `cpu` or `gpu: <adapter info line>`.
    pub fn describe(&self) -> String {
        match self {
            Device::Cpu => format!("cpu ({} threads)", rayon::current_num_threads()),
            Device::Gpu(ctx) => format!("gpu: {}", ctx.info_line()),
        }
    }

    /// The GPU context, if this is a GPU.
    pub fn gpu(&self) -> Option<&Arc<GpuContext>> {
        match self {
            Device::Gpu(c) => Some(c),
            Device::Cpu => None,
        }
    }
}

/// Chooses the device for `kind` (see the module docs for the precedence) and returns it with the reason,
/// without logging. `DeviceKind::Gpu` without a usable adapter is an error; `Auto` then falls back to the CPU.
pub fn choose_device(kind: DeviceKind) -> Result<(Device, String)> {
    let (kind, from_env) = kind.resolve()?;
    let why = |requested: &str| if from_env { format!("{DEVICE_ENV}={requested}") } else { "requested".to_string() };
    match kind {
        DeviceKind::Cpu => Ok((Device::Cpu, why("cpu"))),
        DeviceKind::Gpu => {
            let ctx = GpuContext::new()?;
            let mut reason = why("gpu");
            if ctx.is_software() {
                reason.push_str("; software adapter: correct but slow");
            }
            Ok((Device::Gpu(Arc::new(ctx)), reason))
        }
        DeviceKind::Auto => match GpuContext::new() {
            Ok(ctx) if ctx.is_software() => Ok((
                Device::Cpu,
                format!(
                    "the only GPU adapter is the software {} ({:?}), slower than the CPU path; \
                     use --device gpu or {DEVICE_ENV}=gpu to run on it anyway",
                    ctx.adapter_info().name,
                    ctx.adapter_info().backend
                ),
            )),
            Ok(ctx) => Ok((Device::Gpu(Arc::new(ctx)), "auto: hardware adapter found".into())),
            Err(e) => Ok((Device::Cpu, format!("auto: {e}"))),
        },
    }
}

/// Chooses the device for `kind` and logs one line to stderr saying which and why, e.g.
/// `[matformer] device: gpu: NVIDIA ... [Vulkan, DiscreteGpu] ... (auto: hardware adapter found)` or
/// `[matformer] device: cpu (8 threads) (auto: no GPU adapter: ...)`.
pub fn select_device(kind: DeviceKind) -> Result<Device> {
    let (device, reason) = choose_device(kind)?;
    eprintln!("[matformer] device: {} ({reason})", device.describe());
    Ok(device)
}

/// An LM executor on `device` over shared `weights`. GPU errors are returned as [`RuntimeError::Gpu`].
pub fn lm_executor(device: &Device, weights: Arc<ModelWeights>) -> Result<Box<dyn LmExecutor>> {
    Ok(match device {
        Device::Cpu => Box::new(CpuLm::new(weights)?),
        Device::Gpu(ctx) => Box::new(GpuLm::new(ctx.clone(), &weights)?),
    })
}

/// Like [`lm_executor`], but a GPU that fails (building the executor, or any later step with a
/// [`RuntimeError::Gpu`]) is replaced by the CPU with a warning on stderr: the CPU executor replays the
/// cached tokens (with the submodel each was run with) and the failed call is retried, so callers see no
/// error. What the auto device mode of the CLI uses.
pub fn lm_executor_with_fallback(device: &Device, weights: Arc<ModelWeights>) -> Result<Box<dyn LmExecutor>> {
    match device {
        Device::Cpu => Ok(Box::new(CpuLm::new(weights)?)),
        Device::Gpu(ctx) => match GpuLm::new(ctx.clone(), &weights) {
            Ok(gpu) => Ok(Box::new(FallbackLm::new(gpu, weights))),
            Err(RuntimeError::Gpu(e)) => {
                warn_fallback(&e);
                Ok(Box::new(CpuLm::new(weights)?))
            }
            Err(e) => Err(e),
        },
    }
}

fn warn_fallback(e: &str) {
    eprintln!("[matformer] warning: the GPU failed ({e}); falling back to the CPU");
}

/// A GPU executor that switches to the CPU on its first GPU error (see [`lm_executor_with_fallback`]).
pub struct FallbackLm {
    weights: Arc<ModelWeights>,
    gpu: Option<GpuLm>,
    cpu: Option<CpuLm>,
    /// Cached tokens, in order (their count is always the cache length).
    tokens: Vec<u32>,
    /// `(end, submodel index)` of each forward call still in the cache; calls start where the previous ended.
    spans: Vec<(usize, usize)>,
    subs: Vec<Submodel>,
}

impl FallbackLm {
    /// Wraps a GPU executor over `weights` (the same weights it was built from).
    pub fn new(gpu: GpuLm, weights: Arc<ModelWeights>) -> Self {
        FallbackLm { weights, gpu: Some(gpu), cpu: None, tokens: Vec::new(), spans: Vec::new(), subs: Vec::new() }
    }

    /// Whether the GPU has failed and the CPU runs instead.
    pub fn fell_back(&self) -> bool {
        self.cpu.is_some()
    }

    fn remember(&mut self, tokens: &[u32], sub: &Submodel) {
        let si = match self.subs.iter().position(|s| s == sub) {
            Some(i) => i,
            None => {
                self.subs.push(sub.clone());
                self.subs.len() - 1
            }
        };
        self.tokens.extend_from_slice(tokens);
        self.spans.push((self.tokens.len(), si));
    }

    fn switch_to_cpu(&mut self, e: &str) -> Result<&mut CpuLm> {
        warn_fallback(e);
        self.gpu = None;
        let mut cpu = CpuLm::new(self.weights.clone())?;
        let mut start = 0;
        for &(end, si) in &self.spans {
            cpu.forward(&self.tokens[start..end], &self.subs[si], Logits::Last)?;
            start = end;
        }
        Ok(self.cpu.insert(cpu))
    }
}

impl LmExecutor for FallbackLm {
    fn config(&self) -> &ModelConfig {
        &self.weights.config
    }

    fn forward(&mut self, tokens: &[u32], sub: &Submodel, which: Logits) -> Result<Vec<f32>> {
        if let Some(cpu) = &mut self.cpu {
            return cpu.forward(tokens, sub, which);
        }
        let gpu = self.gpu.as_mut().expect("either the GPU or the CPU executor exists");
        match gpu.forward(tokens, sub, which) {
            Ok(logits) => {
                self.remember(tokens, sub);
                Ok(logits)
            }
            Err(RuntimeError::Gpu(e)) => self.switch_to_cpu(&e)?.forward(tokens, sub, which),
            Err(e) => Err(e),
        }
    }

    fn cached_len(&self) -> usize {
        match (&self.cpu, &self.gpu) {
            (Some(c), _) => c.cached_len(),
            (None, Some(g)) => g.cached_len(),
            (None, None) => 0,
        }
    }

    fn truncate(&mut self, len: usize) {
        if let Some(c) = &mut self.cpu {
            c.truncate(len);
            return;
        }
        if let Some(g) = &mut self.gpu {
            g.truncate(len);
        }
        if len < self.tokens.len() {
            self.tokens.truncate(len);
            while self.spans.last().is_some_and(|&(end, _)| end > len) {
                let (_, si) = self.spans.pop().expect("checked");
                let start = self.spans.last().map_or(0, |s| s.0);
                if start < len {
                    self.spans.push((len, si));
                    break;
                }
            }
        }
    }

    fn device_name(&self) -> String {
        match (&self.cpu, &self.gpu) {
            (Some(c), _) => format!("{} (GPU failed)", c.device_name()),
            (None, Some(g)) => g.device_name(),
            (None, None) => "none".into(),
        }
    }
}

/// A MatViT on a chosen device (see [`vit_runner`]).
pub struct VitRunner {
    weights: Arc<ModelWeights>,
    gpu: Option<GpuVit>,
    fallback: bool,
}

impl VitRunner {
    /// Runs a batch like [`vit_forward`]; with fallback on, a GPU error switches this runner to the CPU
    /// (with a warning) and the batch is recomputed there.
    pub fn forward(&mut self, sub: &Submodel, images: &[f32], batch: usize) -> Result<VitOutput> {
        if let Some(g) = &mut self.gpu {
            match g.forward(sub, images, batch) {
                Err(RuntimeError::Gpu(e)) if self.fallback => {
                    warn_fallback(&e);
                    self.gpu = None;
                }
                other => return other,
            }
        }
        vit_forward(&self.weights, sub, images, batch)
    }

    /// `cpu` or `gpu (<adapter>)`.
    pub fn device_name(&self) -> String {
        match &self.gpu {
            Some(g) => format!("gpu ({})", g.context().adapter_info().name),
            None => "cpu".into(),
        }
    }
}

/// A ViT runner on `device`; with `fallback`, GPU failures (now or later) switch to the CPU with a warning.
pub fn vit_runner(device: &Device, weights: Arc<ModelWeights>, fallback: bool) -> Result<VitRunner> {
    let gpu = match device {
        Device::Cpu => None,
        Device::Gpu(ctx) => match GpuVit::new(ctx.clone(), &weights) {
            Ok(g) => Some(g),
            Err(RuntimeError::Gpu(e)) if fallback => {
                warn_fallback(&e);
                None
            }
            Err(e) => return Err(e),
        },
    };
    Ok(VitRunner { weights, gpu, fallback })
}
