//! Compute pipelines built from shader variants, cached by variant.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::context::GpuContext;
use crate::error::{KernelError, Result};
use crate::variant::{bindings_of, BindingKind, ShaderVariant};

/// A compiled kernel: pipeline, its explicit bind group layout and the binding
/// slots (taken from the shader itself, so they cannot drift apart).
#[derive(Debug)]
pub struct Pipeline {
    /// The variant it was built from.
    pub variant: ShaderVariant,
    /// The compute pipeline (entry point `main`).
    pub pipeline: wgpu::ComputePipeline,
    /// Layout of bind group 0.
    pub layout: wgpu::BindGroupLayout,
    /// `(binding, kind)` of every slot of group 0, sorted.
    pub bindings: Vec<(u32, BindingKind)>,
}

/// Pipelines by variant. Building is lazy; [`GpuContext::pipeline`] builds once.
#[derive(Default)]
pub(crate) struct PipelineCache {
    map: Mutex<HashMap<ShaderVariant, Arc<Pipeline>>>,
}

impl GpuContext {
    /// The cached pipeline of `variant`, compiling it on first use.
    pub fn pipeline(&self, variant: ShaderVariant) -> Result<Arc<Pipeline>> {
        if let Some(p) = self.lock_pipelines()?.get(&variant) {
            return Ok(p.clone());
        }
        // Built outside the lock: compiling can take a while on software adapters.
        let built = Arc::new(self.build_pipeline(variant)?);
        Ok(self.lock_pipelines()?.entry(variant).or_insert(built).clone())
    }

    /// Number of pipelines compiled so far.
    pub fn pipeline_count(&self) -> usize {
        self.lock_pipelines().map(|m| m.len()).unwrap_or(0)
    }

    fn lock_pipelines(&self) -> Result<std::sync::MutexGuard<'_, HashMap<ShaderVariant, Arc<Pipeline>>>> {
        self.pipelines.map.lock().map_err(|_| KernelError::Internal("pipeline cache poisoned".into()))
    }

    fn build_pipeline(&self, variant: ShaderVariant) -> Result<Pipeline> {
        let missing = variant.required_features() - self.features();
        if !missing.is_empty() || !self.supports_load(variant.load) {
            return Err(KernelError::Limit(format!(
                "{} needs {:?} / load path {}, which this device lacks",
                variant.label(),
                missing,
                variant.load.name()
            )));
        }
        let source = variant.source();
        let module = naga::front::wgsl::parse_str(&source)
            .map_err(|e| KernelError::Shader { name: variant.label(), message: e.emit_to_string(&source) })?;
        let bindings = bindings_of(&module);
        let storage = bindings.iter().filter(|(_, k)| *k != BindingKind::Uniform).count() as u32;
        if storage > self.limits().max_storage_buffers_per_shader_stage {
            return Err(KernelError::Limit(format!(
                "{} binds {storage} storage buffers, the device allows {}",
                variant.label(),
                self.limits().max_storage_buffers_per_shader_stage
            )));
        }
        let label = variant.label();
        self.scoped(|| {
            let shader = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(&label),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
            let entries: Vec<wgpu::BindGroupLayoutEntry> = bindings
                .iter()
                .map(|&(binding, kind)| wgpu::BindGroupLayoutEntry {
                    binding,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: match kind {
                            BindingKind::Uniform => wgpu::BufferBindingType::Uniform,
                            BindingKind::ReadOnly => wgpu::BufferBindingType::Storage { read_only: true },
                            BindingKind::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                        },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                })
                .collect();
            let layout = self
                .device
                .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(&label), entries: &entries });
            let pipeline_layout = self.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(&label),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
            let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&label),
                layout: Some(&pipeline_layout),
                module: &shader,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            });
            Pipeline { variant, pipeline, layout, bindings: bindings.clone() }
        })
    }
}
