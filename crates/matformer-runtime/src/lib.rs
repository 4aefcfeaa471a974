//! matformer-runtime
