//! matformer-kernels
