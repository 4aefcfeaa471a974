//! Shared helpers of the GPU kernel test binaries (`gpu_kernels`, `gpu_kernels_ops`).
#![allow(dead_code)]

use matformer_cpu::WeightElem;
use matformer_kernels::*;
use rand::rngs::StdRng;
use rand::Rng;

pub fn rand_vec(rng: &mut StdRng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

pub fn narrow<W: WeightElem>(v: &[f32]) -> Vec<W> {
    v.iter().map(|&x| W::from_f32(x)).collect()
}

pub fn widen<W: WeightElem>(v: &[W]) -> Vec<f32> {
    v.iter().map(|x| x.to_f32()).collect()
}

/// Uploads `data` and reads back `len` f32 after recording `f` in one pass.
pub fn run(ctx: &GpuContext, f: impl FnOnce(&mut wgpu::ComputePass<'_>) -> Result<()>) {
    ctx.run_pass(f).expect("record + submit");
}

pub fn read(ctx: &GpuContext, buf: &wgpu::Buffer, len: usize) -> Vec<f32> {
    ctx.read_f32(buf, 0, len).expect("readback")
}

/// Which load path a case forces (None = the device default for the type).
pub fn upload<W: WeightElem + GpuWeight>(
    ctx: &GpuContext,
    data: &[W],
    rows: usize,
    row_len: usize,
    load: Option<WeightLoad>,
    max_chunk_bytes: Option<u64>,
) -> WeightBuffer {
    let w = match max_chunk_bytes {
        Some(max) => ctx.upload_weights_split("w", data, rows, row_len, max),
        None => ctx.upload_weights("w", data, rows, row_len),
    }
    .expect("upload weights");
    match load {
        Some(l) => w.with_load(l).expect("load path"),
        None => w,
    }
}

/// Whether the device can run `load`; prints why a case is skipped otherwise.
pub fn can_run(ctx: &GpuContext, load: Option<WeightLoad>) -> bool {
    match load {
        Some(l) if !ctx.supports_load(l) => {
            eprintln!("skipping {} case: not supported by this adapter", l.name());
            false
        }
        _ => true,
    }
}
