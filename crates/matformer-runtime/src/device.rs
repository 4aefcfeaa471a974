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
use matformer_kernels::{wgpu, NATIVE_BACKENDS};

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
        DeviceKind::Auto => {
            // Look at the adapters before creating a device: a software-only machine (CI, lavapipe) then
            // costs no device creation (and none of the driver's worker threads) just to pick the CPU.
            let infos = adapter_infos();
            if infos.is_empty() {
                return Ok((Device::Cpu, "auto: no Vulkan, Metal or DX12 adapter".into()));
            }
            if infos.iter().all(|i| i.device_type == wgpu::DeviceType::Cpu) {
                let sw = &infos[0];
                return Ok((
                    Device::Cpu,
                    format!(
                        "auto: the only GPU adapter is the software {} ({:?}), slower than the CPU path; \
                         use --device gpu or {DEVICE_ENV}=gpu to run on it anyway",
                        sw.name, sw.backend
                    ),
                ));
            }
            match GpuContext::new() {
                Ok(ctx) if ctx.is_software() => Ok((
                    Device::Cpu,
                    format!("auto: only the software adapter {} could be opened", ctx.adapter_info().name),
                )),
                Ok(ctx) => Ok((Device::Gpu(Arc::new(ctx)), "auto: hardware adapter found".into())),
                Err(e) => Ok((Device::Cpu, format!("auto: {e}"))),
            }
        }
    }
}

/// The native (Vulkan, Metal, DX12) adapters, without creating a device.
pub fn adapter_infos() -> Vec<wgpu::AdapterInfo> {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = NATIVE_BACKENDS;
    let instance = wgpu::Instance::new(desc);
    block_on(instance.enumerate_adapters(NATIVE_BACKENDS)).iter().map(|a| a.get_info()).collect()
}

/// Polls a future to completion on this thread (wgpu's native futures are ready at once or nearly so).
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
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

/// The forward calls whose keys and values are in an executor's cache: enough to rebuild that cache on
/// another executor by replaying them with the same grouping and submodels.
#[derive(Default)]
struct History {
    /// Cached tokens, in order (their count is the cache length).
    tokens: Vec<u32>,
    /// `(end, submodel index)` of each call; a call starts where the previous one ended.
    spans: Vec<(usize, usize)>,
    /// Distinct submodels seen.
    subs: Vec<Submodel>,
}

impl History {
    fn push(&mut self, tokens: &[u32], sub: &Submodel) {
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

    fn truncate(&mut self, len: usize) {
        if len >= self.tokens.len() {
            return;
        }
        self.tokens.truncate(len);
        while let Some(&(end, si)) = self.spans.last() {
            if end <= len {
                break;
            }
            self.spans.pop();
            let start = self.spans.last().map_or(0, |s| s.0);
            if start < len {
                self.spans.push((len, si));
                break;
            }
        }
    }

    fn replay(&self, exec: &mut dyn LmExecutor) -> Result<()> {
        exec.reset();
        let mut start = 0;
        for &(end, si) in &self.spans {
            exec.forward(&self.tokens[start..end], &self.subs[si], Logits::Last)?;
            start = end;
        }
        Ok(())
    }
}

/// A GPU executor that switches to the CPU on its first GPU error (see [`lm_executor_with_fallback`]).
pub struct FallbackLm {
    weights: Arc<ModelWeights>,
    gpu: Option<GpuLm>,
    cpu: Option<CpuLm>,
    history: History,
}

impl FallbackLm {
    /// Wraps a GPU executor over `weights` (the same weights it was built from).
    pub fn new(gpu: GpuLm, weights: Arc<ModelWeights>) -> Self {
        FallbackLm { weights, gpu: Some(gpu), cpu: None, history: History::default() }
    }

    /// Whether the GPU has failed and the CPU runs instead.
    pub fn fell_back(&self) -> bool {
        self.cpu.is_some()
    }

    fn switch_to_cpu(&mut self, e: &str) -> Result<&mut CpuLm> {
        warn_fallback(e);
        self.gpu = None;
        let mut cpu = CpuLm::new(self.weights.clone())?;
        self.history.replay(&mut cpu)?;
        self.history = History::default();
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
                self.history.push(tokens, sub);
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
        } else if let Some(g) = &mut self.gpu {
            g.truncate(len);
            self.history.truncate(len);
        }
    }

    fn device_name(&self) -> String {
        match (&self.cpu, &self.gpu) {
            (Some(c), _) => format!("{} (GPU failed)", c.device_name()),
            (None, Some(g)) => g.device_name(),
            (None, None) => "none".into(),
        }
    }

    fn fork(&self) -> Result<Box<dyn LmExecutor>> {
        match &self.gpu {
            Some(g) if self.cpu.is_none() => match g.fork() {
                Ok(g) => Ok(Box::new(FallbackLm::new(g, self.weights.clone()))),
                Err(RuntimeError::Gpu(e)) => {
                    warn_fallback(&e);
                    Ok(Box::new(CpuLm::new(self.weights.clone())?))
                }
                Err(e) => Err(e),
            },
            _ => Ok(Box::new(CpuLm::new(self.weights.clone())?)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_kinds_parse() {
        assert_eq!("auto".parse::<DeviceKind>().unwrap(), DeviceKind::Auto);
        assert_eq!(" CPU ".parse::<DeviceKind>().unwrap(), DeviceKind::Cpu);
        assert_eq!("gpu".parse::<DeviceKind>().unwrap(), DeviceKind::Gpu);
        assert!("cuda".parse::<DeviceKind>().unwrap_err().to_string().contains("auto, cpu or gpu"));
        for k in [DeviceKind::Auto, DeviceKind::Cpu, DeviceKind::Gpu] {
            assert_eq!(k.to_string().parse::<DeviceKind>().unwrap(), k);
        }
        // An explicit kind is never overridden by the environment.
        assert_eq!(DeviceKind::Cpu.resolve().unwrap(), (DeviceKind::Cpu, false));
        assert_eq!(DeviceKind::Gpu.resolve().unwrap(), (DeviceKind::Gpu, false));
        let (d, why) = choose_device(DeviceKind::Cpu).unwrap();
        assert!(matches!(d, Device::Cpu) && why == "requested");
    }

    /// The history a fallback replays rebuilds the same cache: after pushes, a rollback and more pushes,
    /// a fresh executor that replays it continues with the same logits as the original. (Not with skipped
    /// layers: a layer skipped at a position leaves that cache row as it was, and a rolled-back call may
    /// have written it, so only an identical call history reproduces such rows.)
    #[test]
    fn fallback_history_replays_the_cache() {
        let cfg = ModelConfig::llama_style(32, 16, 2, 2, 1, 32, 24);
        let w = Arc::new(ModelWeights::random(cfg.clone(), 3).unwrap());
        let subs: Vec<Submodel> = ["xl", "s", "13,27"].iter().map(|s| Submodel::parse(&cfg, s).unwrap()).collect();
        let mut orig = CpuLm::new(w.clone()).unwrap();
        let mut h = History::default();
        let run = |toks: &[u32], si: usize, orig: &mut CpuLm, h: &mut History| {
            orig.forward(toks, &subs[si], Logits::Last).unwrap();
            h.push(toks, &subs[si]);
        };
        run(&[1, 2, 3, 4], 0, &mut orig, &mut h);
        run(&[5], 1, &mut orig, &mut h);
        run(&[6, 7, 8], 2, &mut orig, &mut h);
        orig.truncate(6);
        h.truncate(6);
        assert_eq!(h.tokens, [1, 2, 3, 4, 5, 6]);
        assert_eq!(h.spans, [(4, 0), (5, 1), (6, 2)]);
        run(&[9, 10], 1, &mut orig, &mut h);
        orig.truncate(3);
        h.truncate(3);
        assert_eq!(h.spans, [(3, 0)]);
        run(&[11], 2, &mut orig, &mut h);
        let mut fresh = CpuLm::new(w).unwrap();
        h.replay(&mut fresh).unwrap();
        assert_eq!(fresh.cached_len(), orig.cached_len());
        let a = orig.forward(&[12], &subs[1], Logits::All).unwrap();
        let b = fresh.forward(&[12], &subs[1], Logits::All).unwrap();
        assert_eq!(a, b);
    }
}
