//! Vector kernels on slices: dot products, row-axpy and reductions for the
//! three weight types, with runtime dispatch to AVX2+FMA code on x86-64.
//!
//! The hot reductions are written with explicit AVX2 intrinsics (module
//! `x86`): LLVM's auto-vectorizer turns lane-accumulator loops into poor
//! 2-wide code. `f16`/`bf16` weights are widened in registers (F16C /
//! shift), so weights are streamed from memory exactly once. Elsewhere the
//! portable kernels below are used; [`dispatch!`] compiles an element-wise
//! loop a second time with `avx2,fma` enabled and picks it at runtime.

use half::{bf16, f16};

use crate::WeightElem;

/// Number of independent accumulators in the portable reductions.
const LANES: usize = 16;

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

/// True when the CPU has AVX2, FMA and F16C (the `x86` kernels' needs).
#[cfg(target_arch = "x86_64")]
#[inline]
fn has_x86_kernels() -> bool {
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

/// Calls the AVX2 kernel `$fast` when available, else evaluates `$slow`.
macro_rules! x86_or {
    ($fast:expr, $slow:expr) => {{
        #[cfg(target_arch = "x86_64")]
        {
            if has_x86_kernels() {
                // SAFETY: avx2, fma and f16c are available (checked above).
                return unsafe { $fast };
            }
        }
        $slow
    }};
}

/// Sum of lane accumulators (halving tree).
#[inline(always)]
fn hsum(acc: &[f32; LANES]) -> f32 {
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

/// `Σ a[i]·b[i]` in `f32` (over the shorter length).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    x86_or!(x86::dot(a, b), portable_dot(a, b))
}

fn portable_dot(a: &[f32], b: &[f32]) -> f32 {
    let len = a.len().min(b.len());
    let (ca, ra) = a[..len].as_chunks::<LANES>();
    let (cb, rb) = b[..len].as_chunks::<LANES>();
    let mut acc = [0.0f32; LANES];
    for (xa, xb) in ca.iter().zip(cb) {
        for i in 0..LANES {
            acc[i] += xa[i] * xb[i];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    hsum(&acc) + tail
}

/// `Σ x[i]`.
pub(crate) fn sum(x: &[f32]) -> f32 {
    x86_or!(x86::sum_sq_dev::<false>(x, 0.0), {
        let (c, r) = x.as_chunks::<LANES>();
        let mut acc = [0.0f32; LANES];
        for xc in c {
            for i in 0..LANES {
                acc[i] += xc[i];
            }
        }
        hsum(&acc) + r.iter().sum::<f32>()
    })
}

/// `Σ (x[i] − mean)²` (`mean = 0` gives `Σ x²`).
pub(crate) fn sum_sq_dev(x: &[f32], mean: f32) -> f32 {
    x86_or!(x86::sum_sq_dev::<true>(x, mean), {
        let (c, r) = x.as_chunks::<LANES>();
        let mut acc = [0.0f32; LANES];
        for xc in c {
            for i in 0..LANES {
                acc[i] += (xc[i] - mean) * (xc[i] - mean);
            }
        }
        hsum(&acc) + r.iter().map(|&v| (v - mean) * (v - mean)).sum::<f32>()
    })
}

/// Largest element, ignoring NaNs (`-inf` for an empty or all-NaN slice).
pub(crate) fn max(x: &[f32]) -> f32 {
    x86_or!(x86::max(x), x.iter().fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a }))
}

/// `y += Σ_r a[r]·w[r·stride ..][..y.len()]` (rows of a strided matrix).
pub(crate) fn axpy_rows_strided(y: &mut [f32], a: &[f32], w: &[f32], stride: usize) {
    check_rows(y.len(), a.len(), w.len(), stride);
    x86_or!(x86::axpy_rows(y, a, w, stride), portable_axpy_rows(y, a, w, stride))
}

/// `y += Σ_r a[r]·w[r, :]`, `w` holding `a.len()` rows of `y.len()`.
#[inline]
pub(crate) fn axpy_rows(y: &mut [f32], a: &[f32], w: &[f32]) {
    axpy_rows_strided(y, a, w, y.len());
}

/// `out[j] = q · k[j·stride ..][..q.len()]` for every `j`.
pub(crate) fn dot_rows_strided(out: &mut [f32], q: &[f32], k: &[f32], stride: usize) {
    let d = q.len();
    for (j, o) in out.iter_mut().enumerate() {
        *o = dot(q, &k[j * stride..j * stride + d]);
    }
}

#[track_caller]
fn check_rows(m: usize, rows: usize, len: usize, stride: usize) {
    assert!(m == 0 || rows == 0 || len >= (rows - 1) * stride + m, "axpy_rows: weight block too short");
}

fn portable_axpy_rows(y: &mut [f32], a: &[f32], w: &[f32], stride: usize) {
    let m = y.len();
    for (r, &ar) in a.iter().enumerate() {
        for (yc, &x) in y.iter_mut().zip(&w[r * stride..r * stride + m]) {
            *yc += ar * x;
        }
    }
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
    x86_or!(x86::widen(src, dst), {
        use half::slice::HalfFloatSliceExt;
        src.convert_to_f32_slice(dst)
    })
}

/// Portable half-precision dot: widen a chunk into an L1 buffer, then dot.
fn dot_chunked<W: WeightElem>(w: &[W], x: &[f32]) -> f32 {
    let mut buf = [0.0f32; CHUNK];
    let mut total = 0.0;
    for (wc, xc) in w.chunks(CHUNK).zip(x.chunks(CHUNK)) {
        let b = &mut buf[..wc.len()];
        W::to_f32_slice(wc, b);
        total += portable_dot(b, xc);
    }
    total
}

/// Portable half-precision row-axpy: widen row chunks, then axpy.
fn axpy_rows_chunked<W: WeightElem>(y: &mut [f32], a: &[f32], w: &[W]) {
    let m = y.len();
    let mut buf = [0.0f32; CHUNK];
    for (r, &ar) in a.iter().enumerate() {
        let row = &w[r * m..(r + 1) * m];
        for (wc, yc) in row.chunks(CHUNK).zip(y.chunks_mut(CHUNK)) {
            let b = &mut buf[..wc.len()];
            W::to_f32_slice(wc, b);
            portable_axpy_rows(yc, &[ar], b, 0);
        }
    }
}

/// `Σ w[i]·x[i]` for `f16` weights.
pub(crate) fn dot_f16(w: &[f16], x: &[f32]) -> f32 {
    x86_or!(x86::dot(w, x), dot_chunked(w, x))
}

/// `Σ w[i]·x[i]` for `bf16` weights.
pub(crate) fn dot_bf16(w: &[bf16], x: &[f32]) -> f32 {
    x86_or!(x86::dot(w, x), dot_chunked(w, x))
}

/// Row-axpy for `f16` weights.
pub(crate) fn axpy_rows_f16(y: &mut [f32], a: &[f32], w: &[f16]) {
    check_rows(y.len(), a.len(), w.len(), y.len());
    x86_or!(x86::axpy_rows(y, a, w, y.len()), axpy_rows_chunked(y, a, w))
}

/// Row-axpy for `bf16` weights.
pub(crate) fn axpy_rows_bf16(y: &mut [f32], a: &[f32], w: &[bf16]) {
    check_rows(y.len(), a.len(), w.len(), y.len());
    x86_or!(x86::axpy_rows(y, a, w, y.len()), axpy_rows_chunked(y, a, w))
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! AVX2 kernels; 16-bit weights are widened in registers.
    use std::arch::x86_64::*;

    use half::{bf16, f16};

    /// An element that can be loaded 8 at a time as `f32`.
    pub(super) trait Load8: Copy {
        /// Loads 8 elements from `p` widened to `f32`.
        ///
        /// # Safety
        /// `p` must be valid for 8 reads; the CPU must have avx2 and f16c.
        unsafe fn load8(p: *const Self) -> __m256;
        /// Widens one element.
        fn widen1(self) -> f32;
    }

    impl Load8 for f32 {
        #[inline(always)]
        unsafe fn load8(p: *const Self) -> __m256 {
            _mm256_loadu_ps(p)
        }
        #[inline(always)]
        fn widen1(self) -> f32 {
            self
        }
    }

    impl Load8 for f16 {
        #[inline(always)]
        unsafe fn load8(p: *const Self) -> __m256 {
            _mm256_cvtph_ps(_mm_loadu_si128(p.cast()))
        }
        #[inline(always)]
        fn widen1(self) -> f32 {
            self.to_f32()
        }
    }

    impl Load8 for bf16 {
        #[inline(always)]
        unsafe fn load8(p: *const Self) -> __m256 {
            let raw = _mm_loadu_si128(p.cast());
            _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16))
        }
        #[inline(always)]
        fn widen1(self) -> f32 {
            f32::from_bits((self.to_bits() as u32) << 16)
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

    /// Widens `src` into `dst` (over the shorter length).
    ///
    /// # Safety
    /// The CPU must support avx2, fma and f16c.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn widen<T: Load8>(src: &[T], dst: &mut [f32]) {
        let len = src.len().min(dst.len());
        let (sp, dp) = (src.as_ptr(), dst.as_mut_ptr());
        let mut i = 0;
        while i + 8 <= len {
            _mm256_storeu_ps(dp.add(i), T::load8(sp.add(i)));
            i += 8;
        }
        while i < len {
            *dp.add(i) = (*sp.add(i)).widen1();
            i += 1;
        }
    }

    /// `Σ w[i]·x[i]` over the shorter length, four accumulators.
    ///
    /// # Safety
    /// The CPU must support avx2, fma and f16c.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot<T: Load8>(w: &[T], x: &[f32]) -> f32 {
        let len = w.len().min(x.len());
        let (wp, xp) = (w.as_ptr(), x.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= len {
            for (u, a) in acc.iter_mut().enumerate() {
                let wv = T::load8(wp.add(i + 8 * u));
                *a = _mm256_fmadd_ps(wv, _mm256_loadu_ps(xp.add(i + 8 * u)), *a);
            }
            i += 32;
        }
        while i + 8 <= len {
            acc[0] = _mm256_fmadd_ps(T::load8(wp.add(i)), _mm256_loadu_ps(xp.add(i)), acc[0]);
            i += 8;
        }
        let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut total = hsum256(s);
        while i < len {
            total = (*wp.add(i)).widen1().mul_add(*xp.add(i), total);
            i += 1;
        }
        total
    }

    /// `Σ (x[i] − mean)²`, or `Σ x[i]` when `!SQUARE`.
    ///
    /// # Safety
    /// The CPU must support avx2, fma and f16c.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn sum_sq_dev<const SQUARE: bool>(x: &[f32], mean: f32) -> f32 {
        let (len, xp) = (x.len(), x.as_ptr());
        let mv = _mm256_set1_ps(mean);
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        let term = |v: __m256, a: __m256| {
            if SQUARE {
                let d = _mm256_sub_ps(v, mv);
                _mm256_fmadd_ps(d, d, a)
            } else {
                _mm256_add_ps(v, a)
            }
        };
        while i + 32 <= len {
            for (u, a) in acc.iter_mut().enumerate() {
                *a = term(_mm256_loadu_ps(xp.add(i + 8 * u)), *a);
            }
            i += 32;
        }
        while i + 8 <= len {
            acc[0] = term(_mm256_loadu_ps(xp.add(i)), acc[0]);
            i += 8;
        }
        let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut total = hsum256(s);
        while i < len {
            let v = *xp.add(i);
            total += if SQUARE { (v - mean) * (v - mean) } else { v };
            i += 1;
        }
        total
    }

    /// Largest element ignoring NaNs (`-inf` if none).
    ///
    /// # Safety
    /// The CPU must support avx2, fma and f16c.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn max(x: &[f32]) -> f32 {
        let (len, xp) = (x.len(), x.as_ptr());
        // max_ps returns its second operand when either is NaN, so NaNs in
        // `x` (the first operand) are skipped.
        let mut acc = [_mm256_set1_ps(f32::NEG_INFINITY); 2];
        let mut i = 0;
        while i + 16 <= len {
            acc[0] = _mm256_max_ps(_mm256_loadu_ps(xp.add(i)), acc[0]);
            acc[1] = _mm256_max_ps(_mm256_loadu_ps(xp.add(i + 8)), acc[1]);
            i += 16;
        }
        let v = _mm256_max_ps(acc[0], acc[1]);
        let mut lanes = [0.0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), v);
        let mut m = f32::NEG_INFINITY;
        for &l in lanes.iter().chain(&x[i..]) {
            if l > m {
                m = l;
            }
        }
        m
    }

    /// `y += Σ_r a[r]·w[r·stride ..][..y.len()]`, eight rows per pass.
    ///
    /// # Safety
    /// The CPU must support avx2, fma and f16c, and `w` must hold
    /// `(a.len() − 1)·stride + y.len()` elements (checked by the callers).
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn axpy_rows<T: Load8>(y: &mut [f32], a: &[f32], w: &[T], stride: usize) {
        let m = y.len();
        let yp = y.as_mut_ptr();
        let mut r = 0;
        // Eight rows per pass over y, in two independent FMA chains.
        while r + 8 <= a.len() {
            let rows: [*const T; 8] = std::array::from_fn(|u| w.as_ptr().add((r + u) * stride));
            let av: [__m256; 8] = std::array::from_fn(|u| _mm256_set1_ps(a[r + u]));
            let mut c = 0;
            while c + 8 <= m {
                let mut s0 = _mm256_fmadd_ps(av[0], T::load8(rows[0].add(c)), _mm256_loadu_ps(yp.add(c)));
                let mut s1 = _mm256_mul_ps(av[1], T::load8(rows[1].add(c)));
                for u in 1..4 {
                    s0 = _mm256_fmadd_ps(av[2 * u], T::load8(rows[2 * u].add(c)), s0);
                    s1 = _mm256_fmadd_ps(av[2 * u + 1], T::load8(rows[2 * u + 1].add(c)), s1);
                }
                _mm256_storeu_ps(yp.add(c), _mm256_add_ps(s0, s1));
                c += 8;
            }
            while c < m {
                let mut s = *yp.add(c);
                for u in 0..8 {
                    s = a[r + u].mul_add((*rows[u].add(c)).widen1(), s);
                }
                *yp.add(c) = s;
                c += 1;
            }
            r += 8;
        }
        while r < a.len() {
            let row = w.as_ptr().add(r * stride);
            let av = _mm256_set1_ps(a[r]);
            let mut c = 0;
            while c + 8 <= m {
                let s = _mm256_fmadd_ps(av, T::load8(row.add(c)), _mm256_loadu_ps(yp.add(c)));
                _mm256_storeu_ps(yp.add(c), s);
                c += 8;
            }
            while c < m {
                *yp.add(c) = a[r].mul_add((*row.add(c)).widen1(), *yp.add(c));
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

    /// Dispatched and portable kernels agree with an `f64` loop for lengths
    /// around every unroll boundary. Tolerance: `len · 2⁻²⁴ · Σ|a·b|` is the
    /// textbook bound for an `f32` dot product; we assert `1e-6 · Σ|a·b|`,
    /// above it for `len ≤ 100`.
    #[test]
    fn dot_and_axpy_all_types() {
        let mut r = rng(1);
        for len in [0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 100] {
            let a = uniform(&mut r, len);
            let b = uniform(&mut r, len);
            let h: Vec<f16> = b.iter().map(|&v| f16::from_f32(v)).collect();
            let bb: Vec<bf16> = b.iter().map(|&v| bf16::from_f32(v)).collect();
            let want = |w: &dyn Fn(usize) -> f32| -> (f64, f64) {
                let s: f64 = (0..len).map(|i| a[i] as f64 * w(i) as f64).sum();
                let m: f64 = (0..len).map(|i| (a[i] as f64 * w(i) as f64).abs()).sum();
                (s, m)
            };
            let ok = |got: f32, (s, m): (f64, f64)| (got as f64 - s).abs() <= 1e-6 * m + 1e-30;
            assert!(ok(dot(&a, &b), want(&|i| b[i])));
            assert!(ok(portable_dot(&a, &b), want(&|i| b[i])));
            assert!(ok(dot_f16(&h, &a), want(&|i| h[i].to_f32())));
            assert!(ok(dot_chunked(&h, &a), want(&|i| h[i].to_f32())));
            assert!(ok(dot_bf16(&bb, &a), want(&|i| bb[i].to_f32())));
            assert!(ok(dot_chunked(&bb, &a), want(&|i| bb[i].to_f32())));
            // reductions
            let s64: f64 = a.iter().map(|&v| v as f64).sum();
            let abs: f64 = a.iter().map(|&v| (v as f64).abs()).sum();
            assert!((sum(&a) as f64 - s64).abs() <= 1e-6 * abs + 1e-30);
            let q64: f64 = a.iter().map(|&v| (v as f64 - 0.25).powi(2)).sum();
            assert!((sum_sq_dev(&a, 0.25) as f64 - q64).abs() <= 1e-6 * q64 + 1e-30);
            let mut with_nan = a.clone();
            with_nan.push(f32::NAN);
            let m = a.iter().fold(f32::NEG_INFINITY, |x, &y| x.max(y));
            assert_eq!(max(&with_nan), m);
            assert_eq!(max(&a), m);
            let mut h32 = vec![0.0; len];
            f16_to_f32_slice(&h, &mut h32);
            assert!(h32.iter().zip(&h).all(|(x, y)| *x == y.to_f32()));
        }
        for rows in [1, 3, 4, 5, 8, 9, 19] {
            for m in [1, 7, 8, 17, 40] {
                let a = uniform(&mut r, rows);
                let w = uniform(&mut r, rows * m);
                let y0 = uniform(&mut r, m);
                let h: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
                let bb: Vec<bf16> = w.iter().map(|&v| bf16::from_f32(v)).collect();
                let check = |got: &[f32], wv: &dyn Fn(usize) -> f32| {
                    for c in 0..m {
                        let want: f64 =
                            y0[c] as f64 + (0..rows).map(|q| a[q] as f64 * wv(q * m + c) as f64).sum::<f64>();
                        assert!((got[c] as f64 - want).abs() < 1e-5, "{rows}x{m}");
                    }
                };
                let mut y = y0.clone();
                axpy_rows(&mut y, &a, &w);
                check(&y, &|i| w[i]);
                let mut y = y0.clone();
                portable_axpy_rows(&mut y, &a, &w, m);
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
