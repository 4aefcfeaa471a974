// kv_write: copy n_rows new K or V rows into the cache at row dst_row0:
//   dst[(dst_row0 + r) * row_len + c] = src[r * row_len + c]
// (row_len = n_kv_heads * head_dim). Lets a whole decode step stay in one
// compute pass. One invocation per element (folded grid).

struct Params {
    n_rows: u32,
    row_len: u32,
    dst_row0: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let i = (wid.x + wid.y * nwg.x) * 256u + t;
    if (i >= p.n_rows * p.row_len) {
        return;
    }
    dst[p.dst_row0 * p.row_len + i] = src[i];
}
