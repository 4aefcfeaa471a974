//! Weight element types, their shader load paths, and row-split weight buffers.

/// Storage format of weight bytes in device memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WeightType {
    /// IEEE f32.
    F32,
    /// IEEE f16 (`half::f16`).
    F16,
    /// bfloat16 (`half::bf16`).
    Bf16,
}

impl WeightType {
    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            WeightType::F32 => 4,
            WeightType::F16 | WeightType::Bf16 => 2,
        }
    }

    /// Short lowercase name (`f32`, `f16`, `bf16`).
    pub const fn name(self) -> &'static str {
        match self {
            WeightType::F32 => "f32",
            WeightType::F16 => "f16",
            WeightType::Bf16 => "bf16",
        }
    }
}

/// How a shader variant widens a weight element to f32. The device bytes of all
/// f16 paths are identical; only the generated `load_*` functions differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WeightLoad {
    /// `array<f32>`.
    F32,
    /// `array<f16>` with `enable f16;` (needs `Features::SHADER_F16`).
    F16Native,
    /// `array<u32>` of packed pairs widened with `unpack2x16float`
    /// (needs `DownlevelFlags::SHADER_F16_IN_F32`, present on all native backends).
    F16Packed,
    /// `array<u32>` of packed pairs widened with integer bit manipulation only
    /// (fallback when `unpack2x16float` is unavailable).
    F16Bits,
    /// `array<u32>` of packed bf16 pairs widened by shifting into the high half.
    Bf16,
}

impl WeightLoad {
    /// Every load path.
    pub const ALL: [WeightLoad; 5] =
        [WeightLoad::F32, WeightLoad::F16Native, WeightLoad::F16Packed, WeightLoad::F16Bits, WeightLoad::Bf16];

    /// The storage format this path reads.
    pub const fn weight_type(self) -> WeightType {
        match self {
            WeightLoad::F32 => WeightType::F32,
            WeightLoad::F16Native | WeightLoad::F16Packed | WeightLoad::F16Bits => WeightType::F16,
            WeightLoad::Bf16 => WeightType::Bf16,
        }
    }

    /// Short name used in pipeline labels.
    pub const fn name(self) -> &'static str {
        match self {
            WeightLoad::F32 => "f32",
            WeightLoad::F16Native => "f16",
            WeightLoad::F16Packed => "f16packed",
            WeightLoad::F16Bits => "f16bits",
            WeightLoad::Bf16 => "bf16",
        }
    }

    /// Whether the variant needs `enable f16;` / `Features::SHADER_F16`.
    pub const fn needs_shader_f16(self) -> bool {
        matches!(self, WeightLoad::F16Native)
    }

    /// Whether the variant uses `unpack2x16float`.
    pub const fn needs_f16_in_f32(self) -> bool {
        matches!(self, WeightLoad::F16Packed)
    }
}

/// A host element type that can be uploaded as weights.
pub trait GpuWeight: bytemuck::Pod {
    /// Device storage format of this element type.
    const TYPE: WeightType;
}

impl GpuWeight for f32 {
    const TYPE: WeightType = WeightType::F32;
}

impl GpuWeight for half::f16 {
    const TYPE: WeightType = WeightType::F16;
}

impl GpuWeight for half::bf16 {
    const TYPE: WeightType = WeightType::Bf16;
}

/// A row-major `[rows, row_len]` weight matrix (or a vector: `rows = 1`) in
/// device memory, split by row ranges over one or more buffers so that no
/// binding exceeds `max_storage_buffer_binding_size`. Every chunk except the
/// last holds exactly `rows_per_chunk` rows. Created by
/// [`crate::GpuContext::upload_weights`].
#[derive(Debug)]
pub struct WeightBuffer {
    pub(crate) chunks: Vec<wgpu::Buffer>,
    pub(crate) load: WeightLoad,
    pub(crate) rows: usize,
    pub(crate) row_len: usize,
    pub(crate) rows_per_chunk: usize,
}

impl WeightBuffer {
    /// Storage format.
    pub fn weight_type(&self) -> WeightType {
        self.load.weight_type()
    }

    /// Load path the kernels bound to this buffer will use.
    pub fn load(&self) -> WeightLoad {
        self.load
    }

    /// Selects another load path for the same bytes (e.g. to test the packed
    /// f16 path on an adapter with `shader-f16`). Fails if the storage format
    /// differs. Device support is checked when a pipeline is built.
    pub fn with_load(mut self, load: WeightLoad) -> crate::Result<Self> {
        if load.weight_type() != self.weight_type() {
            return Err(crate::KernelError::Shape(format!(
                "load path {} cannot read {} weights",
                load.name(),
                self.weight_type().name()
            )));
        }
        self.load = load;
        Ok(self)
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Elements per row.
    pub fn row_len(&self) -> usize {
        self.row_len
    }

    /// Total number of elements.
    pub fn len(&self) -> usize {
        self.rows * self.row_len
    }

    /// True when the buffer holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of device buffers (= weight bindings) the rows are split over.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Rows per chunk (all chunks but the last are full).
    pub fn rows_per_chunk(&self) -> usize {
        self.rows_per_chunk
    }

    /// Elements per chunk, the `w_chunk` uniform of weight-reading kernels.
    pub fn chunk_elems(&self) -> u32 {
        (self.rows_per_chunk * self.row_len) as u32
    }

    /// The device buffers, in row order.
    pub fn buffers(&self) -> &[wgpu::Buffer] {
        &self.chunks
    }

    /// Total device bytes.
    pub fn size_bytes(&self) -> u64 {
        self.chunks.iter().map(|b| b.size()).sum()
    }
}

/// How a weight matrix is split over bindings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeightSplit {
    /// Rows per binding (all but the last chunk are full).
    pub rows_per_chunk: usize,
    /// Number of bindings.
    pub chunks: usize,
}

/// Plans the row split of a `[rows, row_len]` matrix of `ty` so that each
/// binding holds at most `max_chunk_bytes`. 16-bit chunks keep an even element
/// count (packed u32 words never straddle two bindings). Fails with
/// [`crate::KernelError::Limit`] when more than [`crate::MAX_WEIGHT_CHUNKS`]
/// bindings would be needed or rows do not fit at all.
pub fn plan_weight_split(
    ty: WeightType,
    rows: usize,
    row_len: usize,
    max_chunk_bytes: u64,
) -> crate::Result<WeightSplit> {
    use crate::KernelError;
    let row_bytes = (row_len * ty.size()) as u64;
    if rows == 0 || row_bytes == 0 {
        return Ok(WeightSplit { rows_per_chunk: rows.max(1), chunks: 1 });
    }
    if (rows * row_len) as u64 > u32::MAX as u64 {
        return Err(KernelError::Limit(format!("weight [{rows}, {row_len}] has more than 2^32 elements")));
    }
    let mut per = (max_chunk_bytes / row_bytes) as usize;
    if ty.size() == 2 && row_len % 2 == 1 {
        // An odd row length needs an even row count per chunk so the chunk
        // holds whole u32 words (and a byte size that is a multiple of 4).
        per -= per % 2;
    }
    if per == 0 {
        return Err(KernelError::Limit(format!(
            "weight rows of {row_bytes} bytes do not fit a binding of {max_chunk_bytes} bytes"
        )));
    }
    let per = per.min(rows);
    let chunks = rows.div_ceil(per);
    if chunks > crate::MAX_WEIGHT_CHUNKS as usize {
        return Err(KernelError::Limit(format!(
            "weight [{rows}, {row_len}] of {} bytes needs {chunks} bindings of <= {max_chunk_bytes} bytes; \
             at most {} are supported",
            rows as u64 * row_bytes,
            crate::MAX_WEIGHT_CHUNKS
        )));
    }
    Ok(WeightSplit { rows_per_chunk: per, chunks })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_plans() {
        let mib = 1u64 << 20;
        // Fits: one binding.
        let s = plan_weight_split(WeightType::F32, 1000, 1000, 128 * mib).unwrap();
        assert_eq!(s, WeightSplit { rows_per_chunk: 1000, chunks: 1 });
        // 2.5x the binding limit: 3 bindings.
        let rows = (320 * mib / 4096) as usize;
        let s = plan_weight_split(WeightType::F32, rows, 1024, 128 * mib).unwrap();
        assert_eq!(s.chunks, 3);
        assert!(s.rows_per_chunk as u64 * 4096 <= 128 * mib);
        // Odd f16 rows: an even row count per chunk.
        let s = plan_weight_split(WeightType::F16, 100, 33, 33 * 2 * 41).unwrap();
        assert_eq!(s, WeightSplit { rows_per_chunk: 40, chunks: 3 });
        // A 256k x 2048 bf16 embedding (1 GiB) fits 8 bindings of 128 MiB.
        let s = plan_weight_split(WeightType::Bf16, 262_144, 2048, 128 * mib).unwrap();
        assert_eq!(s.chunks, 8);
        // Too many bindings or a row that does not fit: errors.
        assert!(plan_weight_split(WeightType::F32, 9, 4, 16).is_err());
        assert!(plan_weight_split(WeightType::F32, 1, 8, 16).is_err());
    }
}
