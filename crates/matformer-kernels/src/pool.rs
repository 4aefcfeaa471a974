//! A simple buffer pool: buffers are recycled by (power-of-two size class, usage).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::context::GpuContext;
use crate::error::{KernelError, Result};

/// Free buffers by `(size class, usage bits)`.
#[derive(Default)]
pub(crate) struct BufferPool {
    free: Mutex<HashMap<(u64, u32), Vec<wgpu::Buffer>>>,
}

/// Size class of a request: the next power of two, at least 256 bytes.
pub(crate) fn size_class(bytes: u64) -> u64 {
    bytes.max(256).next_power_of_two()
}

impl GpuContext {
    /// A buffer of at least `bytes` bytes with `usage`, reused from the pool
    /// when one is free (its contents are then undefined). Return it with
    /// [`GpuContext::release`].
    pub fn acquire(&self, bytes: u64, usage: wgpu::BufferUsages) -> Result<wgpu::Buffer> {
        let class = size_class(bytes);
        if let Some(buf) = self
            .pool
            .free
            .lock()
            .map_err(|_| KernelError::Internal("buffer pool poisoned".into()))?
            .get_mut(&(class, usage.bits()))
            .and_then(Vec::pop)
        {
            return Ok(buf);
        }
        let size = if class > self.max_buffer_size() { bytes.next_multiple_of(4) } else { class };
        self.create_buffer("matformer pooled", size, usage)
    }

    /// Gives a buffer obtained from [`GpuContext::acquire`] back to the pool.
    pub fn release(&self, buffer: wgpu::Buffer) {
        let key = (size_class(buffer.size()), buffer.usage().bits());
        if let Ok(mut free) = self.pool.free.lock() {
            free.entry(key).or_default().push(buffer);
        }
    }

    /// Number of idle buffers held by the pool.
    pub fn pooled_buffers(&self) -> usize {
        self.pool.free.lock().map(|f| f.values().map(Vec::len).sum()).unwrap_or(0)
    }
}
