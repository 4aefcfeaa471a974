//! Dense host tensors in f32, f16 or bf16.

use half::{bf16, f16};
use serde::{Deserialize, Serialize};

/// Element type of stored weights. Activations are always f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// 32-bit IEEE float.
    F32,
    /// 16-bit IEEE float.
    F16,
    /// bfloat16.
    Bf16,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::Bf16 => 2,
        }
    }

    /// Parse `f32`, `f16` or `bf16`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" => Some(DType::F32),
            "f16" | "float16" | "half" => Some(DType::F16),
            "bf16" | "bfloat16" => Some(DType::Bf16),
            _ => None,
        }
    }
}

/// Owned element storage.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    /// f32 elements.
    F32(Vec<f32>),
    /// f16 elements.
    F16(Vec<f16>),
    /// bf16 elements.
    Bf16(Vec<bf16>),
}

/// Borrowed element storage, what kernels take.
#[derive(Clone, Copy, Debug)]
pub enum TensorRef<'a> {
    /// f32 elements.
    F32(&'a [f32]),
    /// f16 elements.
    F16(&'a [f16]),
    /// bf16 elements.
    Bf16(&'a [bf16]),
}

/// A row-major tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Elements, `shape.iter().product()` of them.
    pub data: TensorData,
}

impl Tensor {
    /// An f32 tensor; panics if the length does not match the shape (a programmer error).
    pub fn from_f32(shape: Vec<usize>, data: Vec<f32>) -> Self {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "tensor data length does not match shape {shape:?}");
        Tensor { shape, data: TensorData::F32(data) }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        match self.data {
            TensorData::F32(_) => DType::F32,
            TensorData::F16(_) => DType::F16,
            TensorData::Bf16(_) => DType::Bf16,
        }
    }

    /// Borrow all elements.
    pub fn as_ref(&self) -> TensorRef<'_> {
        match &self.data {
            TensorData::F32(v) => TensorRef::F32(v),
            TensorData::F16(v) => TensorRef::F16(v),
            TensorData::Bf16(v) => TensorRef::Bf16(v),
        }
    }

    /// Borrow the first `rows` rows (of the outermost dimension): a neuron-major prefix.
    pub fn prefix_rows(&self, rows: usize) -> TensorRef<'_> {
        let row = self.shape[1..].iter().product::<usize>();
        self.as_ref().slice(0, rows * row)
    }

    /// All elements widened to f32.
    pub fn to_f32_vec(&self) -> Vec<f32> {
        match &self.data {
            TensorData::F32(v) => v.clone(),
            TensorData::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
            TensorData::Bf16(v) => v.iter().map(|x| x.to_f32()).collect(),
        }
    }

    /// f32 elements when stored as f32 (training works on f32 only).
    pub fn f32_slice(&self) -> Option<&[f32]> {
        match &self.data {
            TensorData::F32(v) => Some(v),
            _ => None,
        }
    }

    /// Mutable f32 elements when stored as f32.
    pub fn f32_slice_mut(&mut self) -> Option<&mut [f32]> {
        match &mut self.data {
            TensorData::F32(v) => Some(v),
            _ => None,
        }
    }

    /// Convert to another element type (round to nearest even).
    pub fn to_dtype(&self, dtype: DType) -> Tensor {
        if dtype == self.dtype() {
            return self.clone();
        }
        let v = self.to_f32_vec();
        let data = match dtype {
            DType::F32 => TensorData::F32(v),
            DType::F16 => TensorData::F16(v.iter().map(|&x| f16::from_f32(x)).collect()),
            DType::Bf16 => TensorData::Bf16(v.iter().map(|&x| bf16::from_f32(x)).collect()),
        };
        Tensor { shape: self.shape.clone(), data }
    }

    /// Keep the first `rows` rows of the outermost dimension (extraction of a neuron-major prefix).
    pub fn truncate_rows(&self, rows: usize) -> Tensor {
        let mut shape = self.shape.clone();
        shape[0] = rows;
        let n: usize = shape.iter().product();
        let data = match &self.data {
            TensorData::F32(v) => TensorData::F32(v[..n].to_vec()),
            TensorData::F16(v) => TensorData::F16(v[..n].to_vec()),
            TensorData::Bf16(v) => TensorData::Bf16(v[..n].to_vec()),
        };
        Tensor { shape, data }
    }

    /// Little-endian bytes of the elements (safetensors layout).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match &self.data {
            TensorData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::F16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::Bf16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
}

impl<'a> TensorRef<'a> {
    /// Sub-range of elements.
    pub fn slice(self, start: usize, end: usize) -> TensorRef<'a> {
        match self {
            TensorRef::F32(v) => TensorRef::F32(&v[start..end]),
            TensorRef::F16(v) => TensorRef::F16(&v[start..end]),
            TensorRef::Bf16(v) => TensorRef::Bf16(&v[start..end]),
        }
    }

    /// Number of elements.
    pub fn len(self) -> usize {
        match self {
            TensorRef::F32(v) => v.len(),
            TensorRef::F16(v) => v.len(),
            TensorRef::Bf16(v) => v.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}
