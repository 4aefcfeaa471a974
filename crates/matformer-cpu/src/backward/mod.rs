//! Backward passes.
