//! Buffer creation, uploads (including row-split weights) and readback.

use crate::context::GpuContext;
use crate::error::{KernelError, Result};
use crate::weight::{plan_weight_split, GpuWeight, WeightBuffer, WeightSplit};

/// Usage of activation / weight buffers: bindable as storage, copyable both ways.
pub const STORAGE_USAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC).union(wgpu::BufferUsages::COPY_DST);

impl GpuContext {
    /// Creates a buffer of `bytes` (rounded up to 4), checking `max_buffer_size`
    /// and capturing out-of-memory as `Err`.
    pub fn create_buffer(&self, label: &str, bytes: u64, usage: wgpu::BufferUsages) -> Result<wgpu::Buffer> {
        let size = bytes.max(4).next_multiple_of(4);
        if size > self.max_buffer_size() {
            return Err(KernelError::Limit(format!(
                "buffer {label:?} of {size} bytes exceeds max_buffer_size {}",
                self.max_buffer_size()
            )));
        }
        self.scoped(|| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        })
    }

    /// A zero-initialised storage buffer for `len` f32 (or u32) elements.
    pub fn storage_buffer(&self, label: &str, len: usize) -> Result<wgpu::Buffer> {
        self.create_buffer(label, (len * 4) as u64, STORAGE_USAGE)
    }

    /// Uploads f32 data into a new storage buffer.
    pub fn upload_f32(&self, label: &str, data: &[f32]) -> Result<wgpu::Buffer> {
        self.upload_bytes(label, bytemuck::cast_slice(data))
    }

    /// Uploads u32 data (token ids, ...) into a new storage buffer.
    pub fn upload_u32(&self, label: &str, data: &[u32]) -> Result<wgpu::Buffer> {
        self.upload_bytes(label, bytemuck::cast_slice(data))
    }

    /// Uploads raw bytes (zero-padded to a multiple of 4) into a new storage buffer.
    pub fn upload_bytes(&self, label: &str, bytes: &[u8]) -> Result<wgpu::Buffer> {
        let buf = self.create_buffer(label, bytes.len() as u64, STORAGE_USAGE)?;
        self.write_bytes(&buf, 0, bytes)?;
        Ok(buf)
    }

    /// Writes f32 data at element offset `offset` of `buffer` (ordered before the next submit).
    pub fn write_f32(&self, buffer: &wgpu::Buffer, offset: usize, data: &[f32]) -> Result<()> {
        self.write_bytes(buffer, (offset * 4) as u64, bytemuck::cast_slice(data))
    }

    /// Writes u32 data at element offset `offset` of `buffer`.
    pub fn write_u32(&self, buffer: &wgpu::Buffer, offset: usize, data: &[u32]) -> Result<()> {
        self.write_bytes(buffer, (offset * 4) as u64, bytemuck::cast_slice(data))
    }

    /// Writes bytes at byte offset `offset` (a multiple of 4), zero-padding the
    /// tail to a multiple of 4.
    pub fn write_bytes(&self, buffer: &wgpu::Buffer, offset: u64, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let padded;
        let data = if bytes.len().is_multiple_of(4) {
            bytes
        } else {
            let mut v = bytes.to_vec();
            v.resize(bytes.len().next_multiple_of(4), 0);
            padded = v;
            &padded
        };
        if !offset.is_multiple_of(4) || offset + data.len() as u64 > buffer.size() {
            return Err(KernelError::Shape(format!(
                "write of {} bytes at {offset} does not fit a {}-byte buffer",
                data.len(),
                buffer.size()
            )));
        }
        self.scoped(|| self.queue.write_buffer(buffer, offset, data))
    }

    /// Uploads a row-major `[rows, row_len]` weight matrix, split by rows over
    /// as many bindings as `max_storage_buffer_binding_size` / `max_buffer_size`
    /// require. The load path is the device's best one for `W`.
    pub fn upload_weights<W: GpuWeight>(
        &self,
        label: &str,
        data: &[W],
        rows: usize,
        row_len: usize,
    ) -> Result<WeightBuffer> {
        let max = self.max_storage_buffer_binding_size().min(self.max_buffer_size());
        self.upload_weights_split(label, data, rows, row_len, max)
    }

    /// Uploads a 1-D parameter vector (bias, norm gain) as a `[1, len]` weight.
    pub fn upload_vector<W: GpuWeight>(&self, label: &str, data: &[W]) -> Result<WeightBuffer> {
        self.upload_weights(label, data, 1, data.len())
    }

    /// Like [`GpuContext::upload_weights`] with an explicit cap on the bytes per
    /// binding (used by tests to exercise the split path with small matrices).
    pub fn upload_weights_split<W: GpuWeight>(
        &self,
        label: &str,
        data: &[W],
        rows: usize,
        row_len: usize,
        max_chunk_bytes: u64,
    ) -> Result<WeightBuffer> {
        if data.len() != rows * row_len {
            return Err(KernelError::Shape(format!(
                "weight {label:?}: {} elements for [{rows}, {row_len}]",
                data.len()
            )));
        }
        let WeightSplit { rows_per_chunk, chunks } = plan_weight_split(W::TYPE, rows, row_len, max_chunk_bytes)?;
        let mut buffers = Vec::with_capacity(chunks);
        for c in 0..chunks {
            let r0 = c * rows_per_chunk;
            let r1 = ((c + 1) * rows_per_chunk).min(rows);
            let part = &data[r0 * row_len..r1 * row_len];
            buffers.push(self.upload_bytes(&format!("{label}[{c}]"), bytemuck::cast_slice(part))?);
        }
        Ok(WeightBuffer { chunks: buffers, load: self.weight_load(W::TYPE), rows, row_len, rows_per_chunk })
    }

    /// Reads `len` f32 elements starting at element `offset` of `buffer`
    /// (which needs `COPY_SRC`). Waits for all submitted work.
    pub fn read_f32(&self, buffer: &wgpu::Buffer, offset: usize, len: usize) -> Result<Vec<f32>> {
        let bytes = self.read_bytes(buffer, (offset * 4) as u64, (len * 4) as u64)?;
        Ok(bytemuck::cast_slice(&bytes).to_vec())
    }

    /// Reads `len` u32 elements starting at element `offset` of `buffer`.
    pub fn read_u32(&self, buffer: &wgpu::Buffer, offset: usize, len: usize) -> Result<Vec<u32>> {
        let bytes = self.read_bytes(buffer, (offset * 4) as u64, (len * 4) as u64)?;
        Ok(bytemuck::cast_slice(&bytes).to_vec())
    }

    /// Reads `len` bytes (a multiple of 4) at byte `offset` (a multiple of 4)
    /// through a pooled staging buffer.
    pub fn read_bytes(&self, buffer: &wgpu::Buffer, offset: u64, len: u64) -> Result<Vec<u8>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        if !offset.is_multiple_of(4) || !len.is_multiple_of(4) || offset + len > buffer.size() {
            return Err(KernelError::Shape(format!(
                "read of {len} bytes at {offset} from a {}-byte buffer",
                buffer.size()
            )));
        }
        let usage = wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST;
        let staging = self.acquire(len, usage)?;
        let result = self.read_via(buffer, offset, len, &staging);
        self.release(staging);
        result
    }

    fn read_via(&self, buffer: &wgpu::Buffer, offset: u64, len: u64, staging: &wgpu::Buffer) -> Result<Vec<u8>> {
        let mut encoder = self.encoder("matformer readback");
        encoder.copy_buffer_to_buffer(buffer, offset, staging, 0, len);
        self.submit(encoder)?;
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, 0..len, move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|e| KernelError::Readback(e.to_string()))?
            .map_err(|e| KernelError::Readback(e.to_string()))?;
        let out = {
            let view = staging.get_mapped_range(0..len).map_err(|e| KernelError::Readback(format!("{e:?}")))?;
            view.to_vec()
        };
        staging.unmap();
        Ok(out)
    }
}
