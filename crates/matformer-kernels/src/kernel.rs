//! The shared machinery of every op: a pipeline, its bind group and its own
//! uniform buffer, plus `BufSlice` for binding (parts of) buffers.

use std::sync::{Arc, Mutex};

use crate::context::GpuContext;
use crate::error::{KernelError, Result};
use crate::pipeline::Pipeline;
use crate::variant::{BindingKind, ShaderVariant};
use crate::weight::WeightBuffer;

/// A byte range of a buffer to bind (`size: None` = to the end).
#[derive(Clone, Copy, Debug)]
pub struct BufSlice<'a> {
    /// The buffer.
    pub buffer: &'a wgpu::Buffer,
    /// Byte offset; must be a multiple of `min_storage_buffer_offset_alignment`.
    pub offset: u64,
    /// Byte length, or the rest of the buffer.
    pub size: Option<u64>,
}

impl<'a> BufSlice<'a> {
    /// A byte range `[offset, offset + size)` of `buffer`.
    pub fn range(buffer: &'a wgpu::Buffer, offset: u64, size: u64) -> Self {
        BufSlice { buffer, offset, size: Some(size) }
    }

    /// Bound length in bytes.
    pub fn bytes(&self) -> u64 {
        self.size.unwrap_or_else(|| self.buffer.size().saturating_sub(self.offset))
    }

    /// Bound length in 4-byte elements (f32 / u32).
    pub fn len(&self) -> usize {
        (self.bytes() / 4) as usize
    }

    /// True when nothing is bound.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn resource(&self) -> wgpu::BindingResource<'a> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: self.buffer,
            offset: self.offset,
            size: self.size.and_then(wgpu::BufferSize::new),
        })
    }
}

impl<'a> From<&'a wgpu::Buffer> for BufSlice<'a> {
    fn from(buffer: &'a wgpu::Buffer) -> Self {
        BufSlice { buffer, offset: 0, size: None }
    }
}

/// One bound kernel instance: pipeline + bind group + a private uniform buffer.
///
/// Parameters are written with `Queue::write_buffer` when the op is recorded,
/// so all dispatches of ONE instance inside one submission see the parameters
/// of its last `record`. Recording an instance again with DIFFERENT parameters
/// before [`GpuContext::submit`] is therefore refused with an error instead of
/// silently computing with the wrong uniforms; use one instance per dispatch
/// site (one per layer and op) or submit in between.
#[derive(Debug)]
pub(crate) struct Kernel {
    pipeline: Arc<Pipeline>,
    bind_group: wgpu::BindGroup,
    params: wgpu::Buffer,
    /// Submission epoch and bytes of the last recorded parameters.
    last: Mutex<Option<(u64, Vec<u8>)>>,
}

impl Kernel {
    /// Binds `resources` (binding number, slice) after the uniform at binding 0.
    pub(crate) fn new(
        ctx: &GpuContext,
        variant: ShaderVariant,
        params_size: usize,
        resources: &[(u32, BufSlice<'_>)],
    ) -> Result<Self> {
        let pipeline = ctx.pipeline(variant)?;
        let params = ctx.create_buffer(
            &format!("{} params", variant.label()),
            params_size as u64,
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        )?;
        let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: params.as_entire_binding() }];
        for (binding, slice) in resources {
            entries.push(wgpu::BindGroupEntry { binding: *binding, resource: slice.resource() });
        }
        let mut expected: Vec<u32> = pipeline.bindings.iter().map(|(b, _)| *b).collect();
        let mut given: Vec<u32> = entries.iter().map(|e| e.binding).collect();
        expected.sort_unstable();
        given.sort_unstable();
        if expected != given || pipeline.bindings.first().map(|b| b.1) != Some(BindingKind::Uniform) {
            return Err(KernelError::Internal(format!(
                "{}: shader declares bindings {expected:?}, op binds {given:?}",
                variant.label()
            )));
        }
        let align = ctx.limits().min_storage_buffer_offset_alignment as u64;
        if let Some((b, s)) = resources.iter().find(|(_, s)| s.offset % align != 0) {
            return Err(KernelError::Shape(format!(
                "{}: binding {b} offset {} is not a multiple of {align}",
                variant.label(),
                s.offset
            )));
        }
        let bind_group = ctx.scoped(|| {
            ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&variant.label()),
                layout: &pipeline.layout,
                entries: &entries,
            })
        })?;
        Ok(Kernel { pipeline, bind_group, params, last: Mutex::new(None) })
    }

    /// Writes `params` and records one dispatch of `groups` workgroups.
    pub(crate) fn record<P: bytemuck::Pod>(
        &self,
        ctx: &GpuContext,
        pass: &mut wgpu::ComputePass<'_>,
        params: &P,
        groups: [u32; 3],
    ) -> Result<()> {
        if groups.contains(&0) {
            return Ok(());
        }
        let bytes = bytemuck::bytes_of(params);
        let epoch = ctx.submission_epoch();
        {
            let mut last = self.last.lock().map_err(|_| KernelError::Internal("kernel state poisoned".into()))?;
            match last.as_mut() {
                Some((e, prev)) if *e == epoch => {
                    if prev.as_slice() != bytes {
                        return Err(KernelError::Shape(format!(
                            "{}: this op instance was already recorded with other parameters \
                             in the current submission (uniforms are per instance); \
                             use another instance or submit first",
                            self.pipeline.variant.label()
                        )));
                    }
                }
                Some((e, prev)) => {
                    *e = epoch;
                    prev.clear();
                    prev.extend_from_slice(bytes);
                }
                None => *last = Some((epoch, bytes.to_vec())),
            }
        }
        ctx.queue.write_buffer(&self.params, 0, bytes);
        pass.set_pipeline(&self.pipeline.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        Ok(())
    }
}

/// Binding entries for the weight chunks of `w`, starting at `first`.
pub(crate) fn weight_entries(w: &WeightBuffer, first: u32) -> Vec<(u32, BufSlice<'_>)> {
    w.buffers().iter().enumerate().map(|(i, b)| (first + i as u32, BufSlice::from(b))).collect()
}

/// Checks that a single-binding typed vector has the same load path as the
/// variant and at least `len` elements.
pub(crate) fn check_vector(name: &str, v: &WeightBuffer, load: crate::WeightLoad, len: usize) -> Result<()> {
    if v.chunk_count() != 1 {
        return Err(KernelError::Shape(format!("{name} must be a single binding, got {} chunks", v.chunk_count())));
    }
    if v.load() != load {
        return Err(KernelError::Shape(format!(
            "{name} is loaded as {}, the kernel as {}",
            v.load().name(),
            load.name()
        )));
    }
    if v.len() < len {
        return Err(KernelError::Shape(format!("{name} has {} elements, needs {len}", v.len())));
    }
    Ok(())
}
