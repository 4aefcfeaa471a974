//! Optional per-op GPU timing with timestamp queries written between dispatches.

use matformer_kernels::wgpu;
use matformer_kernels::{GpuContext, KernelError, Result as KResult};

/// Most timestamps one submission may write (wgpu's per-query-set cap).
const CAPACITY: u32 = wgpu::QUERY_SET_MAX_QUERIES;

/// Accumulated GPU time of every op recorded under one label.
#[derive(Clone, Debug, PartialEq)]
pub struct OpTiming {
    /// Op label: `embed`, `pos`, `attn.norm`, `attn.q`, `attn.k`, `attn.v`, `attn.rope`, `attn.kv_write`,
    /// `attn.core`, `attn.o`, `residual`, `ffn.norm`, `ffn.up`, `ffn.gate`, `ffn.act`, `ffn.down`,
    /// `final_norm`, `head`, `argmax`, `sample`.
    pub label: &'static str,
    /// Ops recorded under this label (one per layer and step for per-layer ops).
    pub count: u64,
    /// Total GPU time in nanoseconds.
    pub total_ns: f64,
}

/// What [`super::GpuLm::take_profile`] returns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Profile {
    /// Whether per-op timestamps were available; without them `ops` is empty.
    pub timestamps: bool,
    /// Submissions profiled.
    pub submissions: u64,
    /// Ops whose timestamps did not fit the query set (not counted in `ops`).
    pub dropped: u64,
    /// Per label, in first-recorded order.
    pub ops: Vec<OpTiming>,
}

impl Profile {
    /// Total GPU nanoseconds of the ops whose label starts with `prefix` (`""` for everything,
    /// `"ffn."` for the FFN).
    pub fn total_ns(&self, prefix: &str) -> f64 {
        self.ops.iter().filter(|o| o.label.starts_with(prefix)).map(|o| o.total_ns).sum()
    }
}

/// Timestamp state of one executor.
pub(crate) struct Profiler {
    set: Option<wgpu::QuerySet>,
    resolve: Option<wgpu::Buffer>,
    next: u32,
    labels: Vec<&'static str>,
    profile: Profile,
}

impl Profiler {
    /// A profiler; without `TIMESTAMP_QUERY_INSIDE_PASSES` it records nothing but counts submissions.
    pub(crate) fn new(ctx: &GpuContext) -> KResult<Self> {
        let ok = ctx.supports_timestamps() && ctx.supports_timestamps_inside_passes();
        let (set, resolve) = if ok {
            let set = ctx.scoped(|| {
                ctx.device().create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("matformer profile"),
                    ty: wgpu::QueryType::Timestamp,
                    count: CAPACITY,
                })
            })?;
            let usage = wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC;
            let resolve = ctx.create_buffer("matformer profile resolve", CAPACITY as u64 * 8, usage)?;
            (Some(set), Some(resolve))
        } else {
            (None, None)
        };
        Ok(Profiler {
            set,
            resolve,
            next: 0,
            labels: Vec::new(),
            profile: Profile { timestamps: ok, ..Profile::default() },
        })
    }

    /// Writes the opening timestamp of an op.
    pub(crate) fn begin(&mut self, pass: &mut wgpu::ComputePass<'_>, label: &'static str) {
        if let Some(set) = &self.set {
            if self.next + 2 <= CAPACITY {
                pass.write_timestamp(set, self.next);
                self.next += 1;
                self.labels.push(label);
            } else {
                self.profile.dropped += 1;
            }
        }
    }

    /// Writes the closing timestamp of the op opened last (if it fit).
    pub(crate) fn end(&mut self, pass: &mut wgpu::ComputePass<'_>) {
        if let Some(set) = &self.set {
            if self.next as usize == 2 * self.labels.len() - 1 {
                pass.write_timestamp(set, self.next);
                self.next += 1;
            }
        }
    }

    /// Resolves this submission's timestamps (call before submitting `encoder`).
    pub(crate) fn finish(&mut self, encoder: &mut wgpu::CommandEncoder) {
        if let (Some(set), Some(resolve)) = (&self.set, &self.resolve) {
            if self.next > 0 {
                encoder.resolve_query_set(set, 0..self.next, resolve, 0);
            }
        }
    }

    /// Reads the resolved timestamps after the submission and accumulates them per label.
    pub(crate) fn collect(&mut self, ctx: &GpuContext) -> KResult<()> {
        self.profile.submissions += 1;
        let n = std::mem::take(&mut self.next);
        let labels = std::mem::take(&mut self.labels);
        let Some(resolve) = &self.resolve else { return Ok(()) };
        if n == 0 {
            return Ok(());
        }
        if n as usize != 2 * labels.len() {
            return Err(KernelError::Internal(format!("profiler: {n} timestamps for {} ops", labels.len())));
        }
        let bytes = ctx.read_bytes(resolve, 0, n as u64 * 8)?;
        let ticks: Vec<u64> =
            bytes.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect();
        let period = ctx.timestamp_period() as f64;
        for (i, label) in labels.into_iter().enumerate() {
            let ns = ticks[2 * i + 1].saturating_sub(ticks[2 * i]) as f64 * period;
            match self.profile.ops.iter_mut().find(|o| o.label == label) {
                Some(o) => {
                    o.count += 1;
                    o.total_ns += ns;
                }
                None => self.profile.ops.push(OpTiming { label, count: 1, total_ns: ns }),
            }
        }
        Ok(())
    }

    /// Drops timestamps of a recording that was abandoned.
    pub(crate) fn discard(&mut self) {
        self.next = 0;
        self.labels.clear();
    }

    /// Returns the accumulated profile and starts a new one.
    pub(crate) fn take(&mut self) -> Profile {
        let timestamps = self.profile.timestamps;
        std::mem::replace(&mut self.profile, Profile { timestamps, ..Profile::default() })
    }
}
