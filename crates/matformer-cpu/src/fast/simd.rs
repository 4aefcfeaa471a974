//! Vector kernels on slices: dot products and row-axpy for the three weight
//! types, plus runtime dispatch to AVX2+FMA code on x86-64.
//!
//! The portable kernels are written with independent lane accumulators so
//! LLVM vectorizes them without fast-math; [`dispatch!`] compiles such a
//! kernel a second time with `avx2,fma` enabled and picks it at runtime.
//! `f16`/`bf16` kernels widen in registers (F16C / shift) on AVX2 machines,
//! so weights are streamed from memory exactly once.

use half::{bf16, f16};

/// Number of independent accumulators in reductions (4 AVX registers).
const LANES: usize = 32;

/// Widened chunk size for the portable half-precision fallback (fits L1).
const CHUNK: usize = 1024;

/// `a * b + c`, fused when `FMA` (only instantiated inside `avx2,fma` code).
#[inline(always)]
pub(crate) fn fmadd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// True when the CPU has AVX2 and FMA (cached by std).
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// True when the CPU has AVX2, FMA and F16C.
#[cfg(target_arch = "x86_64")]
#[inline]
fn has_avx2_fma_f16c() -> bool {
    has_avx2_fma() && std::arch::is_x86_feature_detected!("f16c")
}

/// Defines `fn $name(args) -> ret` that calls `$imp::<true>` compiled with
/// `avx2,fma` when the CPU has them, else the portable `$imp::<false>`.
macro_rules! dispatch {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? => $imp:ident) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                if $crate::fast::simd::has_avx2_fma() {
                    #[target_feature(enable = "avx2,fma")]
                    unsafe fn fast($($arg: $ty),*) $(-> $ret)? {
                        $imp::<true>($($arg),*)
                    }
                    // SAFETY: the CPU supports avx2 and fma (checked above).
                    return unsafe { fast($($arg),*) };
                }
            }
            $imp::<false>($($arg),*)
        }
    };
}
pub(crate) use dispatch;

/// Pairwise sum of the lane accumulators.
#[inline(always)]
pub(crate) fn hsum(acc: &[f32; LANES]) -> f32 {
    let mut a = *acc;
    let mut w = LANES / 2;
    while w > 0 {
        for i in 0..w {
            a[i] += a[i + w];
        }
        w /= 2;
    }
    a[0]
}

#[inline(always)]
fn dot_impl<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    let len = a.len().min(b.len());
    let (ca, ra) = a[..len].as_chunks::<LANES>();
    let (cb, rb) = b[..len].as_chunks::<LANES>();
    let mut acc = [0.0f32; LANES];
    for (xa, xb) in ca.iter().zip(cb) {
        for i in 0..LANES {
            acc[i] = fmadd::<FMA>(xa[i], xb[i], acc[i]);
        }
    }
    let mut tail = 0.0;
    for (&x, &y) in ra.iter().zip(rb) {
        tail = fmadd::<FMA>(x, y, tail);
    }
    hsum(&acc) + tail
}

dispatch! {
    /// `Σ a[i]·b[i]` in `f32` (over the shorter length).
    pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 => dot_impl
}

#[inline(always)]
fn axpy_rows_strided_impl<const FMA: bool>(y: &mut [f32], a: &[f32], w: &[f32], stride: usize) {
    let m = y.len();
    if m == 0 || a.is_empty() {
        return;
    }
    assert!(
        w.len() >= (a.len() - 1) * stride + m,
        "axpy_rows: weight block too short"
    );
    let row = |r: usize| &w[r * stride..r * stride + m];
    let (quads, rest) = a.as_chunks::<4>();
    for (qi, aq) in quads.iter().enumerate() {
        let (w0, w1, w2, w3) = (row(4 * qi), row(4 * qi + 1), row(4 * qi + 2), row(4 * qi + 3));
        for ((((yc, &x0), &x1), &x2), &x3) in y.iter_mut().zip(w0).zip(w1).zip(w2).zip(w3) {
            let mut s = fmadd::<FMA>(aq[0], x0, *yc);
            s = fmadd::<FMA>(aq[1], x1, s);
            s = fmadd::<FMA>(aq[2], x2, s);
            *yc = fmadd::<FMA>(aq[3], x3, s);
        }
    }
    let base = quads.len() * 4;
    for (r, &ar) in rest.iter().enumerate() {
        for (yc, &x) in y.iter_mut().zip(row(base + r)) {
            *yc = fmadd::<FMA>(ar, x, *yc);
        }
    }
}

dispatch! {
    /// `y += Σ_r a[r]·w[r·stride ..][..y.len()]` (rows of a strided matrix).
    pub(crate) fn axpy_rows_strided(y: &mut [f32], a: &[f32], w: &[f32], stride: usize) => axpy_rows_strided_impl
}

/// `y += Σ_r a[r]·w[r, :]`, `w` holding `a.len()` rows of `y.len()`.
#[inline]
pub(crate) fn axpy_rows(y: &mut [f32], a: &[f32], w: &[f32]) {
    axpy_rows_strided(y, a, w, y.len());
}

/// `y += a·x`.
#[inline]
pub(crate) fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    axpy_rows_strided(y, &[a], x, y.len());
}

#[inline(always)]
fn dot_rows_strided_impl<const FMA: bool>(out: &mut [f32], q: &[f32], k: &[f32], stride: usize) {
    let d = q.len();
    for (j, o) in out.iter_mut().enumerate() {
        *o = dot_impl::<FMA>(q, &k[j * stride..j * stride + d]);
    }
}

dispatch! {
    /// `out[j] = q · k[j·stride ..][..q.len()]` for every `j`.
    pub(crate) fn dot_rows_strided(out: &mut [f32], q: &[f32], k: &[f32], stride: usize) => dot_rows_strided_impl
}

#[inline(always)]
fn sum_impl<const FMA: bool>(x: &[f32]) -> f32 {
    let (c, r) = x.as_chunks::<LANES>();
    let mut acc = [0.0f32; LANES];
    for xc in c {
        for i in 0..LANES {
            acc[i] += xc[i];
        }
    }
    hsum(&acc) + r.iter().sum::<f32>()
}

dispatch! {
    /// `Σ x[i]` with lane accumulators.
    pub(crate) fn sum(x: &[f32]) -> f32 => sum_impl
}

#[inline(always)]
fn sum_sq_dev_impl<const FMA: bool>(x: &[f32], mean: f32) -> f32 {
    let (c, r) = x.as_chunks::<LANES>();
    let mut acc = [0.0f32; LANES];
    for xc in c {
        for i in 0..LANES {
            let d = xc[i] - mean;
            acc[i] = fmadd::<FMA>(d, d, acc[i]);
        }
    }
    let mut tail = 0.0;
    for &v in r {
        tail = fmadd::<FMA>(v - mean, v - mean, tail);
    }
    hsum(&acc) + tail
}

dispatch! {
    /// `Σ (x[i] − mean)²` with lane accumulators (`mean = 0` gives `Σ x²`).
    pub(crate) fn sum_sq_dev(x: &[f32], mean: f32) -> f32 => sum_sq_dev_impl
}

#[inline(always)]
fn max_impl<const FMA: bool>(x: &[f32]) -> f32 {
    let (c, r) = x.as_chunks::<LANES>();
    let mut acc = [f32::NEG_INFINITY; LANES];
    for xc in c {
        for i in 0..LANES {
            acc[i] = if xc[i] > acc[i] { xc[i] } else { acc[i] };
        }
    }
    let mut m = r.iter().fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a });
    for &a in &acc {
        if a > m {
            m = a;
        }
    }
    m
}

dispatch! {
    /// Largest element, ignoring NaNs (`-inf` for an empty or all-NaN slice).
    pub(crate) fn max(x: &[f32]) -> f32 => max_impl
}

/// Widens `bf16` to `f32` with a shift (exact; vectorizes to integer ops).
pub(crate) fn bf16_to_f32_slice(src: &[bf16], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len(), "bf16_to_f32_slice: length mismatch");
    for (d, s) in dst.iter_mut().zip(src) {
        *d = f32::from_bits((s.to_bits() as u32) << 16);
    }
}

/// Widens `f16` to `f32` (exact): F16C on AVX2 machines, else `half`'s
/// slice conversion.
pub(crate) fn f16_to_f32_slice(src: &[f16], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len(), "f16_to_f32_slice: length mismatch");
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma_f16c() {
        // SAFETY: avx2, fma and f16c are available (checked above).
        return unsafe { x86::widen_f16(half_bits(src), dst) };
    }
    use half::slice::HalfFloatSliceExt;
    src.convert_to_f32_slice(dst);
}

/// Portable half-precision dot: widen a chunk into an L1 buffer, then dot.
fn dot_chunked<W: crate::WeightElem>(w: &[W], x: &[f32]) -> f32 {
    let mut buf = [0.0f32; CHUNK];
    let mut total = 0.0;
    for (wc, xc) in w.chunks(CHUNK).zip(x.chunks(CHUNK)) {
        let b = &mut buf[..wc.len()];
        W::to_f32_slice(wc, b);
        total += dot(b, xc);
    }
    total
}

/// Portable half-precision row-axpy: widen row chunks, then axpy.
fn axpy_rows_chunked<W: crate::WeightElem>(y: &mut [f32], a: &[f32], w: &[W]) {
    let m = y.len();
    let mut buf = [0.0f32; CHUNK];
    for (r, &ar) in a.iter().enumerate() {
        let row = &w[r * m..(r + 1) * m];
        for (wc, yc) in row.chunks(CHUNK).zip(y.chunks_mut(CHUNK)) {
            let b = &mut buf[..wc.len()];
            W::to_f32_slice(wc, b);
            axpy(yc, ar, b);
        }
    }
}

/// `Σ w[i]·x[i]` for `f16` weights.
pub(crate) fn dot_f16(w: &[f16], x: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma_f16c() {
        // SAFETY: avx2, fma and f16c are available (checked above).
        return unsafe { x86::dot_half::<false>(half_bits(w), x) };
    }
    dot_chunked(w, x)
}

/// `Σ w[i]·x[i]` for `bf16` weights.
pub(crate) fn dot_bf16(w: &[bf16], x: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma_f16c() {
        // SAFETY: avx2, fma and f16c are available (checked above).
        return unsafe { x86::dot_half::<true>(bf16_bits(w), x) };
    }
    dot_chunked(w, x)
}

/// Row-axpy for `f16` weights.
pub(crate) fn axpy_rows_f16(y: &mut [f32], a: &[f32], w: &[f16]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma_f16c() {
        // SAFETY: avx2, fma and f16c are available (checked above).
        return unsafe { x86::axpy_rows_half::<false>(y, a, half_bits(w)) };
    }
    axpy_rows_chunked(y, a, w)
}

/// Row-axpy for `bf16` weights.
pub(crate) fn axpy_rows_bf16(y: &mut [f32], a: &[f32], w: &[bf16]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma_f16c() {
        // SAFETY: avx2, fma and f16c are available (checked above).
        return unsafe { x86::axpy_rows_half::<true>(y, a, bf16_bits(w)) };
    }
    axpy_rows_chunked(y, a, w)
}

#[cfg(target_arch = "x86_64")]
fn half_bits(w: &[f16]) -> &[u16] {
    // SAFETY: f16 is a repr(transparent) wrapper around u16.
    unsafe { std::slice::from_raw_parts(w.as_ptr().cast::<u16>(), w.len()) }
}

#[cfg(target_arch = "x86_64")]
fn bf16_bits(w: &[bf16]) -> &[u16] {
    // SAFETY: bf16 is a repr(transparent) wrapper around u16.
    unsafe { std::slice::from_raw_parts(w.as_ptr().cast::<u16>(), w.len()) }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! AVX2 kernels that widen 16-bit weights in registers.
    use std::arch::x86_64::*;

    /// Loads 8 half values and widens them: bf16 by a 16-bit shift, f16 by
    /// F16C's `vcvtph2ps`.
    #[inline(always)]
    unsafe fn load8<const BF16: bool>(p: *const u16) -> __m256 {
        let raw = _mm_loadu_si128(p.cast());
        if BF16 {
            _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16))
        } else {
            _mm256_cvtph_ps(raw)
        }
    }

    #[inline(always)]
    fn widen1<const BF16: bool>(b: u16) -> f32 {
        if BF16 {
            f32::from_bits((b as u32) << 16)
        } else {
            half::f16::from_bits(b).to_f32()
        }
    }

    #[inline(always)]
    unsafe fn hsum256(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0b01));
        _mm_cvtss_f32(s)
    }

    /// Widens `src` into `dst` (same length, checked by the caller).
    ///
    /// # Safety
    /// The CPU must support avx2, fma and f16c.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn widen_f16(src: &[u16], dst: &mut [f32]) {
        let len = src.len().min(dst.len());
        let (sp, dp) = (src.as_ptr(), dst.as_mut_ptr());
        let mut i = 0;
        while i + 8 <= len {
            _mm256_storeu_ps(dp.add(i), load8::<false>(sp.add(i)));
            i += 8;
        }
        while i < len {
            *dp.add(i) = widen1::<false>(*sp.add(i));
            i += 1;
        }
    }

    /// `Σ w[i]·x[i]` over the shorter length.
    ///
    /// # Safety
    /// The CPU must support avx2, fma and (for f16) f16c.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_half<const BF16: bool>(w: &[u16], x: &[f32]) -> f32 {
        let len = w.len().min(x.len());
        let (wp, xp) = (w.as_ptr(), x.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= len {
            for (u, a) in acc.iter_mut().enumerate() {
                let wv = load8::<BF16>(wp.add(i + 8 * u));
                *a = _mm256_fmadd_ps(wv, _mm256_loadu_ps(xp.add(i + 8 * u)), *a);
            }
            i += 32;
        }
        while i + 8 <= len {
            let wv = load8::<BF16>(wp.add(i));
            acc[0] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(xp.add(i)), acc[0]);
            i += 8;
        }
        let s = _mm256_add_ps(
            _mm256_add_ps(acc[0], acc[1]),
            _mm256_add_ps(acc[2], acc[3]),
        );
        let mut total = hsum256(s);
        while i < len {
            total = widen1::<BF16>(w[i]).mul_add(x[i], total);
            i += 1;
        }
        total
    }

    /// `y += Σ_r a[r]·w[r, :]`, four rows per pass over `y`.
    ///
    /// # Safety
    /// The CPU must support avx2, fma and (for f16) f16c; `w` must hold
    /// `a.len() * y.len()` elements (checked).
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn axpy_rows_half<const BF16: bool>(y: &mut [f32], a: &[f32], w: &[u16]) {
        let m = y.len();
        assert!(w.len() >= a.len() * m, "axpy_rows: weight block too short");
        let yp = y.as_mut_ptr();
        let mut r = 0;
        while r + 4 <= a.len() {
            let rows = [0, 1, 2, 3].map(|u| w.as_ptr().add((r + u) * m));
            let av = [0, 1, 2, 3].map(|u| _mm256_set1_ps(a[r + u]));
            let mut c = 0;
            while c + 8 <= m {
                let mut s = _mm256_loadu_ps(yp.add(c));
                for u in 0..4 {
                    s = _mm256_fmadd_ps(av[u], load8::<BF16>(rows[u].add(c)), s);
                }
                _mm256_storeu_ps(yp.add(c), s);
                c += 8;
            }
            while c < m {
                let mut s = *yp.add(c);
                for u in 0..4 {
                    s = a[r + u].mul_add(widen1::<BF16>(*rows[u].add(c)), s);
                }
                *yp.add(c) = s;
                c += 1;
            }
            r += 4;
        }
        while r < a.len() {
            let row = w.as_ptr().add(r * m);
            let av = _mm256_set1_ps(a[r]);
            let mut c = 0;
            while c + 8 <= m {
                let s = _mm256_fmadd_ps(av, load8::<BF16>(row.add(c)), _mm256_loadu_ps(yp.add(c)));
                _mm256_storeu_ps(yp.add(c), s);
                c += 8;
            }
            while c < m {
                *yp.add(c) = a[r].mul_add(widen1::<BF16>(*row.add(c)), *yp.add(c));
                c += 1;
            }
            r += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{rng, uniform};

    /// Portable and dispatched kernels agree with an `f64` loop for lengths
    /// around every unroll boundary. Tolerance: `len · 2⁻²⁴ · Σ|a·b|` is the
    /// textbook bound for an `f32` dot product; we assert `1e-6 · Σ|a·b|`,
    /// comfortably above it for `len ≤ 100`.
    #[test]
    fn dot_and_axpy_all_types() {
        let mut r = rng(1);
        for len in [0, 1, 7, 8, 9, 31, 32, 33, 64, 100] {
            let a = uniform(&mut r, len);
            let b = uniform(&mut r, len);
            let h: Vec<f16> = b.iter().map(|&v| f16::from_f32(v)).collect();
            let bb: Vec<bf16> = b.iter().map(|&v| bf16::from_f32(v)).collect();
            let want = |w: &dyn Fn(usize) -> f32| -> (f64, f64) {
                let s: f64 = (0..len).map(|i| a[i] as f64 * w(i) as f64).sum();
                let m: f64 = (0..len).map(|i| (a[i] as f64 * w(i) as f64).abs()).sum();
                (s, m)
            };
            let (s, m) = want(&|i| b[i]);
            assert!((dot(&a, &b) as f64 - s).abs() <= 1e-6 * m + 1e-30);
            assert!((dot_impl::<false>(&a, &b) as f64 - s).abs() <= 1e-6 * m + 1e-30);
            let (s, m) = want(&|i| h[i].to_f32());
            assert!((dot_f16(&h, &a) as f64 - s).abs() <= 1e-6 * m + 1e-30);
            assert!((dot_chunked(&h, &a) as f64 - s).abs() <= 1e-6 * m + 1e-30);
            let (s, m) = want(&|i| bb[i].to_f32());
            assert!((dot_bf16(&bb, &a) as f64 - s).abs() <= 1e-6 * m + 1e-30);
            assert!((dot_chunked(&bb, &a) as f64 - s).abs() <= 1e-6 * m + 1e-30);
        }
        for rows in [1, 3, 4, 5, 9] {
            for m in [1, 7, 8, 17, 40] {
                let a = uniform(&mut r, rows);
                let w = uniform(&mut r, rows * m);
                let y0 = uniform(&mut r, m);
                let h: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
                let bb: Vec<bf16> = w.iter().map(|&v| bf16::from_f32(v)).collect();
                let check = |got: &[f32], wv: &dyn Fn(usize) -> f32| {
                    for c in 0..m {
                        let want: f64 = y0[c] as f64
                            + (0..rows).map(|q| a[q] as f64 * wv(q * m + c) as f64).sum::<f64>();
                        assert!((got[c] as f64 - want).abs() < 1e-5, "{rows}x{m}");
                    }
                };
                let mut y = y0.clone();
                axpy_rows(&mut y, &a, &w);
                check(&y, &|i| w[i]);
                let mut y = y0.clone();
                axpy_rows_f16(&mut y, &a, &h);
                check(&y, &|i| h[i].to_f32());
                let mut y = y0.clone();
                axpy_rows_chunked(&mut y, &a, &h);
                check(&y, &|i| h[i].to_f32());
                let mut y = y0.clone();
                axpy_rows_bf16(&mut y, &a, &bb);
                check(&y, &|i| bb[i].to_f32());
                let mut y = y0.clone();
                axpy_rows_chunked(&mut y, &a, &bb);
                check(&y, &|i| bb[i].to_f32());
            }
        }
    }
}
