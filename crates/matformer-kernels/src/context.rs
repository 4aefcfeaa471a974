//! `GpuContext`: adapter and device creation (native backends only), limits,
//! feature detection and error capture.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{KernelError, Result};
use crate::pipeline::PipelineCache;
use crate::pool::BufferPool;
use crate::weight::{WeightLoad, WeightType};

/// The only backends ever requested. GL is excluded on purpose: on a machine
/// with only GL it silently gives a much slower path without f16.
pub const NATIVE_BACKENDS: wgpu::Backends =
    wgpu::Backends::VULKAN.union(wgpu::Backends::METAL).union(wgpu::Backends::DX12);

/// Options for [`GpuContext::with_options`].
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Pick the first adapter whose name contains this (case-insensitive)
    /// substring instead of the best-ranked one.
    pub adapter_name: Option<String>,
    /// Do not request `shader-f16` even when the adapter has it, so f16
    /// weights use the packed-u32 path.
    pub disable_shader_f16: bool,
}

/// Shared state written by wgpu callbacks.
#[derive(Default)]
struct ErrorSink {
    first_error: Option<KernelError>,
    lost: Option<String>,
}

/// A wgpu device plus everything the kernels share: pipeline cache, buffer
/// pool, limits and captured errors. Cheap to share by reference (`Send + Sync`).
pub struct GpuContext {
    pub(crate) adapter: wgpu::Adapter,
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    features: wgpu::Features,
    downlevel: wgpu::DownlevelFlags,
    sink: Arc<Mutex<ErrorSink>>,
    pub(crate) pipelines: PipelineCache,
    pub(crate) pool: BufferPool,
    epoch: AtomicU64,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext").field("adapter", &self.info_line()).finish_non_exhaustive()
    }
}

/// Preference order of adapter types (lower is better).
fn rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

impl GpuContext {
    /// Creates a context on the best native adapter (discrete > integrated >
    /// virtual > software). Returns [`KernelError::NoAdapter`] with an
    /// explanation when there is none.
    pub fn new() -> Result<Self> {
        Self::with_options(GpuOptions::default())
    }

    /// Creates a context with explicit options.
    pub fn with_options(opts: GpuOptions) -> Result<Self> {
        pollster::block_on(Self::create(opts))
    }

    async fn create(opts: GpuOptions) -> Result<Self> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = NATIVE_BACKENDS;
        let instance = wgpu::Instance::new(desc);
        let mut adapters = instance.enumerate_adapters(NATIVE_BACKENDS).await;
        if adapters.is_empty() {
            return Err(KernelError::NoAdapter(
                "no Vulkan, Metal or DX12 adapter found (the GL backend is never used); \
                 on Linux without a GPU install `mesa-vulkan-drivers` for a software Vulkan device"
                    .into(),
            ));
        }
        adapters.sort_by_key(|a| rank(a.get_info().device_type));
        let adapter = match &opts.adapter_name {
            Some(name) => {
                let want = name.to_lowercase();
                let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
                let pos = adapters.iter().position(|a| a.get_info().name.to_lowercase().contains(&want)).ok_or_else(
                    || KernelError::NoAdapter(format!("no adapter name contains {name:?}; available: {names:?}")),
                )?;
                adapters.swap_remove(pos)
            }
            None => adapters.swap_remove(0),
        };
        let info = adapter.get_info();
        let mut wanted = wgpu::Features::TIMESTAMP_QUERY
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES;
        if !opts.disable_shader_f16 {
            wanted |= wgpu::Features::SHADER_F16;
        }
        let features = adapter.features() & wanted;
        let limits = adapter.limits();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("matformer"),
                required_features: features,
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| KernelError::RequestDevice(format!("{} ({:?}): {e}", info.name, info.backend)))?;

        let sink = Arc::new(Mutex::new(ErrorSink::default()));
        let s = sink.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut g) = s.lock() {
                g.first_error.get_or_insert(KernelError::from_wgpu(&e));
            }
        }));
        let s = sink.clone();
        device.set_device_lost_callback(move |reason, msg| {
            if let Ok(mut g) = s.lock() {
                g.lost = Some(format!("{reason:?}: {msg}"));
            }
        });
        let downlevel = adapter.get_downlevel_capabilities().flags;
        Ok(GpuContext {
            adapter,
            device,
            queue,
            info,
            limits,
            features,
            downlevel,
            sink,
            pipelines: PipelineCache::default(),
            pool: BufferPool::default(),
            epoch: AtomicU64::new(0),
        })
    }

    /// The wgpu device.
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The wgpu queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// The wgpu adapter.
    pub fn adapter(&self) -> &wgpu::Adapter {
        &self.adapter
    }

    /// Adapter name, vendor, backend, type and driver.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// One line for a CLI `info` command / log, e.g.
    /// `llvmpipe (LLVM 15.0.6, 256 bits) [Vulkan, Cpu] driver llvmpipe ...; shader-f16 yes; max binding 128 MiB`.
    pub fn info_line(&self) -> String {
        let i = &self.info;
        format!(
            "{} [{:?}, {:?}] driver {} {}; shader-f16 {}; timestamps {}; max storage binding {} MiB",
            i.name,
            i.backend,
            i.device_type,
            i.driver,
            i.driver_info,
            if self.supports_shader_f16() { "yes" } else { "no" },
            if self.supports_timestamps() { "yes" } else { "no" },
            self.max_storage_buffer_binding_size() >> 20
        )
    }

    /// True for software adapters (lavapipe/llvmpipe, WARP): correct but slow.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// The device limits (= the adapter's own limits).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// Enabled device features.
    pub fn features(&self) -> wgpu::Features {
        self.features
    }

    /// Largest storage binding in bytes; weights above it are split by rows.
    pub fn max_storage_buffer_binding_size(&self) -> u64 {
        self.limits.max_storage_buffer_binding_size
    }

    /// Largest single buffer in bytes.
    pub fn max_buffer_size(&self) -> u64 {
        self.limits.max_buffer_size
    }

    /// Whether `shader-f16` is enabled (native f16 weight loads).
    pub fn supports_shader_f16(&self) -> bool {
        self.features.contains(wgpu::Features::SHADER_F16)
    }

    /// Whether compute passes can write timestamps (for benchmarks).
    pub fn supports_timestamps(&self) -> bool {
        self.features.contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// Whether timestamps can be written between dispatches inside a pass.
    pub fn supports_timestamps_inside_passes(&self) -> bool {
        self.features.contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES)
    }

    /// Nanoseconds per timestamp tick.
    pub fn timestamp_period(&self) -> f32 {
        self.queue.get_timestamp_period()
    }

    /// Whether the device can run `load` at all.
    pub fn supports_load(&self, load: WeightLoad) -> bool {
        match load {
            WeightLoad::F16Native => self.supports_shader_f16(),
            WeightLoad::F16Packed => self.downlevel.contains(wgpu::DownlevelFlags::SHADER_F16_IN_F32),
            _ => true,
        }
    }

    /// The best load path for weights stored as `ty` on this device.
    pub fn weight_load(&self, ty: WeightType) -> WeightLoad {
        match ty {
            WeightType::F32 => WeightLoad::F32,
            WeightType::Bf16 => WeightLoad::Bf16,
            WeightType::F16 if self.supports_load(WeightLoad::F16Native) => WeightLoad::F16Native,
            WeightType::F16 if self.supports_load(WeightLoad::F16Packed) => WeightLoad::F16Packed,
            WeightType::F16 => WeightLoad::F16Bits,
        }
    }

    /// Returns (and clears) the first error wgpu reported outside an error
    /// scope, or `DeviceLost` once the device is gone.
    pub fn check(&self) -> Result<()> {
        let mut g = self.sink.lock().map_err(|_| KernelError::Internal("error sink poisoned".into()))?;
        if let Some(reason) = &g.lost {
            return Err(KernelError::DeviceLost(reason.clone()));
        }
        match g.first_error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Runs `f` inside validation, out-of-memory and internal error scopes and
    /// turns a captured error into `Err`.
    pub fn scoped<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let value = f();
        let errors =
            [pollster::block_on(validation.pop()), pollster::block_on(oom.pop()), pollster::block_on(internal.pop())];
        if let Some(e) = errors.into_iter().flatten().next() {
            return Err(KernelError::from_wgpu(&e));
        }
        self.check()?;
        Ok(value)
    }

    /// A new command encoder.
    pub fn encoder(&self, label: &str) -> wgpu::CommandEncoder {
        self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
    }

    /// Finishes and submits an encoder, reporting validation errors as `Err`.
    /// Submit recorded ops through here (not `Queue::submit`): it also starts
    /// a new submission epoch, after which every op instance may be recorded
    /// with new parameters.
    pub fn submit(&self, encoder: wgpu::CommandEncoder) -> Result<wgpu::SubmissionIndex> {
        let index = self.scoped(|| self.queue.submit([encoder.finish()]));
        self.epoch.fetch_add(1, Ordering::AcqRel);
        index
    }

    /// Counter of submissions made through [`GpuContext::submit`].
    pub fn submission_epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Starts a new submission epoch without submitting: call it after
    /// dropping a partly recorded encoder, so its op instances may be recorded
    /// again with other parameters.
    pub fn discard_recording(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Blocks until all submitted work has finished.
    pub fn wait(&self) -> Result<()> {
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| KernelError::Readback(e.to_string()))?;
        self.check()
    }

    /// Records `f` into one compute pass of a fresh encoder and submits it.
    /// Convenient for tests and one-off ops; a model executor records a whole
    /// step into one encoder itself.
    pub fn run_pass(&self, f: impl FnOnce(&mut wgpu::ComputePass<'_>) -> Result<()>) -> Result<wgpu::SubmissionIndex> {
        let mut encoder = self.encoder("matformer pass");
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("matformer pass"),
                timestamp_writes: None,
            });
            f(&mut pass)?;
        }
        self.submit(encoder)
    }
}
