//! Workgroup-count math shared by the ops.

use crate::error::{KernelError, Result};

/// Spreads `groups` workgroups over x and y so that neither exceeds
/// `max_per_dim` (`Limits::max_compute_workgroups_per_dimension`). Kernels
/// recover the linear index as `wid.x + wid.y * num_workgroups.x` and skip
/// indices past the end.
pub fn fold(groups: u64, max_per_dim: u32) -> Result<[u32; 3]> {
    let max = max_per_dim.max(1) as u64;
    if groups <= max {
        return Ok([groups as u32, 1, 1]);
    }
    let y = groups.div_ceil(max);
    if y > max {
        return Err(KernelError::Limit(format!("{groups} workgroups exceed {max}² per dispatch")));
    }
    Ok([max as u32, y as u32, 1])
}

/// Workgroups of `size` invocations covering `elems` elements, folded.
pub fn elementwise(elems: u64, size: u32, max_per_dim: u32) -> Result<[u32; 3]> {
    fold(elems.div_ceil(size as u64), max_per_dim)
}

/// Converts a size to `u32`, naming it in the error.
pub fn to_u32(v: usize, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| KernelError::Limit(format!("{what} = {v} exceeds u32")))
}
