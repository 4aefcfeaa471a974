//! Buffer creation, uploads (including row-split weights) and readback.

use crate::context::GpuContext;
use crate::error::{KernelError, Result};
use crate::variant::MAX_WEIGHT_CHUNKS;
use crate::weight::{GpuWeight, WeightBuffer, WeightType};

/// Usage of activation / weight buffers: bindable as storage, copyable both ways.
pub const STORAGE_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

impl GpuContext {
    /// Creates a buffer of `bytes` (rounded up to 4), checking `max_buffer_size`
    /// and capturing out-of-memory as `Err`.
    pub fn create_buffer(
        &self,
        label: &str,
        bytes: u64,
        usage: wgpu::BufferUsages,
    ) -> Result<wgpu::Buffer> {
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
        let data = if bytes.len() % 4 == 0 {
            bytes
        } else {
            let mut v = bytes.to_vec();
            v.resize(bytes.len().next_multiple_of(4), 0);
            padded = v;
            &padded
        };
        if offset % 4 != 0 || offset + data.len() as u64 > buffer.size() {
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
        let max = self
            .max_storage_buffer_binding_size()
            .min(self.max_buffer_size());
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
        let rows_per_chunk = rows_per_chunk(W::TYPE, rows, row_len, max_chunk_bytes)?;
        let chunks = rows.div_ceil(rows_per_chunk).max(1);
        if chunks > MAX_WEIGHT_CHUNKS as usize {
            return Err(KernelError::Limit(format!(
                "weight {label:?} of {} bytes needs {chunks} bindings of <= {max_chunk_bytes} bytes; \
                 at most {MAX_WEIGHT_CHUNKS} are supported",
                std::mem::size_of_val(data)
            )));
        }
        if (rows * row_len) as u64 > u32::MAX as u64 {
            return Err(KernelError::Limit(format!(
                "weight {label:?} has more than 2^32 elements"
            )));
        }
        let mut buffers = Vec::with_capacity(chunks);
        for c in 0..chunks {
            let r0 = c * rows_per_chunk;
            let r1 = ((c + 1) * rows_per_chunk).min(rows);
            let part = &data[r0 * row_len..r1 * row_len];
            buffers.push(self.upload_bytes(&format!("{label}[{c}]"), bytemuck::cast_slice(part))?);
        }
        Ok(WeightBuffer {
            chunks: buffers,
            load: self.weight_load(W::TYPE),
            rows,
            row_len,
            rows_per_chunk,
        })
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
        if offset % 4 != 0 || len % 4 != 0 || offset + len > buffer.size() {
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

    fn read_via(
        &self,
        buffer: &wgpu::Buffer,
        offset: u64,
        len: u64,
        staging: &wgpu::Buffer,
    ) -> Result<Vec<u8>> {
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
            let view = staging
                .get_mapped_range(0..len)
                .map_err(|e| KernelError::Readback(format!("{e:?}")))?;
            view.to_vec()
        };
        staging.unmap();
        Ok(out)
    }
}

/// Rows per binding so that a chunk fits `max_bytes`, keeping 16-bit chunks an
/// even number of elements (packed u32 words never straddle two chunks).
fn rows_per_chunk(ty: WeightType, rows: usize, row_len: usize, max_bytes: u64) -> Result<usize> {
    let row_bytes = (row_len * ty.size()) as u64;
    if rows == 0 || row_bytes == 0 {
        return Ok(rows.max(1));
    }
    let mut per = (max_bytes / row_bytes) as usize;
    if ty.size() == 2 && row_len % 2 == 1 {
        per -= per % 2;
    }
    // A chunk's byte size must stay a multiple of 4 for binding.
    if ty.size() == 2 && per * row_len % 2 == 1 {
        per -= 1;
    }
    if per == 0 {
        return Err(KernelError::Limit(format!(
            "one weight row of {row_bytes} bytes does not fit a binding of {max_bytes} bytes"
        )));
    }
    Ok(per.min(rows))
}
