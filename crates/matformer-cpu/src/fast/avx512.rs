//! AVX-512 matrix-vector kernels (`n == 1`, decode), used when the CPU has
//! `avx512f`, `avx512bw` and `avx512vl` (see [`available`]).
//!
//! Sixteen lanes per register, ragged edges handled with masked loads (so an
//! edge element is computed exactly like an interior one), `f16`/`bf16`
//! weights widened in registers (`vcvtph2ps` / a 16-bit shift). Both kernels
//! give every output element a fixed operation order that depends only on
//! `k` (and not on how the caller splits the output between tasks), so the
//! callers may split by thread count and stay deterministic.

use half::{bf16, f16};

/// True when the CPU has the AVX-512 subsets these kernels use (cached by std).
#[inline]
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vl")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `y[i·y_stride + j] = Σ_l w[j·k + l]·x[i·k + l]` for every row `i < x.len() / k` of `x` and every
/// `j < m`: one matrix-vector product per row of `x`, with each block of weight rows loaded from memory
/// once and reused from L1 for every row of `x`. Each output gets the same operation order as a
/// single-row product (the result for a row does not depend on the other rows).
///
/// # Safety
/// [`available`] must be true. `w` must hold at least `m·k` elements and `x` a whole number of rows
/// (checked); `y` must be valid for writes at `i·y_stride + j` for every such `i` and `j`.
#[inline]
pub(crate) unsafe fn dot_rows<T: Load16>(w: &[T], x: &[f32], k: usize, y: *mut f32, y_stride: usize, m: usize) {
    assert!(w.len() >= m * k, "dot_rows: weight too short");
    assert!(k > 0 && x.len().is_multiple_of(k), "dot_rows: x is not whole rows of k");
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: the caller guarantees the CPU features and `y`; lengths checked above.
        unsafe { imp::dot_rows(w, x, k, y, y_stride, m) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("avx512 kernels on a non-x86 target")
}

/// `y[c] += Σ_r a[r]·w[r·stride + c]` for every `c < y.len()`.
///
/// Rows are taken eight at a time in two interleaved FMA chains; the order
/// for one column depends only on `a.len()`, so splitting `y` into column
/// stripes does not change any result.
///
/// # Safety
/// [`available`] must be true. `w` must hold `(a.len() − 1)·stride + y.len()`
/// elements when `a` and `y` are non-empty (checked).
#[inline]
pub(crate) unsafe fn axpy_cols<T: Load16>(y: &mut [f32], a: &[f32], w: &[T], stride: usize) {
    assert!(y.is_empty() || a.is_empty() || w.len() >= (a.len() - 1) * stride + y.len(), "axpy_cols: weight too short");
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: the caller guarantees the CPU features; lengths checked above.
        unsafe { imp::axpy_cols(y, a, w, stride) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("avx512 kernels on a non-x86 target")
}

/// A weight element loadable 16 at a time as `f32` (sealed to the three
/// weight types).
pub(crate) trait Load16: Copy {
    /// Loads 16 elements from `p`, widened to `f32`.
    ///
    /// # Safety
    /// `p` must be valid for 16 reads; the CPU must have avx512f/bw/vl.
    #[cfg(target_arch = "x86_64")]
    unsafe fn load16(p: *const Self) -> std::arch::x86_64::__m512;

    /// Loads the elements of `p` selected by `mask` (others are 0; the
    /// unselected ones are not read and may be out of bounds).
    ///
    /// # Safety
    /// The selected elements must be valid for reads; the CPU must have
    /// avx512f/bw/vl.
    #[cfg(target_arch = "x86_64")]
    unsafe fn load_mask(p: *const Self, mask: u16) -> std::arch::x86_64::__m512;
}

#[cfg(target_arch = "x86_64")]
mod loads {
    use std::arch::x86_64::{
        __m512, _mm256_loadu_si256, _mm256_maskz_loadu_epi16, _mm512_castsi512_ps, _mm512_cvtepu16_epi32,
        _mm512_cvtph_ps, _mm512_loadu_ps, _mm512_maskz_loadu_ps, _mm512_slli_epi32,
    };

    use super::{bf16, f16, Load16};

    impl Load16 for f32 {
        #[inline(always)]
        unsafe fn load16(p: *const Self) -> __m512 {
            // SAFETY: forwarded from the caller.
            unsafe { _mm512_loadu_ps(p) }
        }
        #[inline(always)]
        unsafe fn load_mask(p: *const Self, mask: u16) -> __m512 {
            // SAFETY: forwarded from the caller (masked lanes are not read).
            unsafe { _mm512_maskz_loadu_ps(mask, p) }
        }
    }

    impl Load16 for f16 {
        #[inline(always)]
        unsafe fn load16(p: *const Self) -> __m512 {
            // SAFETY: forwarded from the caller.
            unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(p.cast())) }
        }
        #[inline(always)]
        unsafe fn load_mask(p: *const Self, mask: u16) -> __m512 {
            // SAFETY: forwarded from the caller (masked lanes are not read).
            unsafe { _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, p.cast())) }
        }
    }

    impl Load16 for bf16 {
        #[inline(always)]
        unsafe fn load16(p: *const Self) -> __m512 {
            // SAFETY: forwarded from the caller.
            unsafe { _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(p.cast())), 16)) }
        }
        #[inline(always)]
        unsafe fn load_mask(p: *const Self, mask: u16) -> __m512 {
            // SAFETY: forwarded from the caller (masked lanes are not read).
            unsafe {
                let raw = _mm256_maskz_loadu_epi16(mask, p.cast());
                _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16))
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
impl Load16 for f32 {}
#[cfg(not(target_arch = "x86_64"))]
impl Load16 for f16 {}
#[cfg(not(target_arch = "x86_64"))]
impl Load16 for bf16 {}

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::arch::x86_64::*;

    use super::Load16;

    /// Mask selecting the first `n < 16` lanes.
    #[inline(always)]
    fn tail_mask(n: usize) -> u16 {
        ((1u32 << n) - 1) as u16
    }

    /// `R` dot products of rows `rows[..R]` (each `k` long) with `x`, two
    /// accumulators per row (even/odd 16-lane blocks). While it runs it
    /// prefetches the `R·k` elements from `pf` on (the next block of rows:
    /// several short interleaved row streams defeat the hardware
    /// prefetcher when the weight comes from memory). `pf` may point
    /// anywhere (prefetches never fault).
    #[inline(always)]
    unsafe fn dot_r<T: Load16, const R: usize>(
        rows: [*const T; R],
        xp: *const f32,
        k: usize,
        pf: *const T,
    ) -> [f32; R] {
        // SAFETY (whole body): the caller guarantees every row and `xp` are
        // valid for `k` reads and that the CPU has avx512f/bw/vl; every load
        // below stays below `k` (masked for the tail).
        unsafe {
            let mut a0 = [_mm512_setzero_ps(); R];
            let mut a1 = [_mm512_setzero_ps(); R];
            let mut i = 0;
            // Bytes of the next block to prefetch per 32 columns.
            let step = R * 32 * std::mem::size_of::<T>();
            let mut pfb = pf.cast::<i8>();
            while i + 32 <= k {
                let mut off = 0;
                while off < step {
                    _mm_prefetch::<_MM_HINT_T0>(pfb.wrapping_add(off));
                    off += 64;
                }
                pfb = pfb.wrapping_add(step);
                let x0 = _mm512_loadu_ps(xp.add(i));
                let x1 = _mm512_loadu_ps(xp.add(i + 16));
                for r in 0..R {
                    a0[r] = _mm512_fmadd_ps(T::load16(rows[r].add(i)), x0, a0[r]);
                    a1[r] = _mm512_fmadd_ps(T::load16(rows[r].add(i + 16)), x1, a1[r]);
                }
                i += 32;
            }
            if i + 16 <= k {
                let x0 = _mm512_loadu_ps(xp.add(i));
                for r in 0..R {
                    a0[r] = _mm512_fmadd_ps(T::load16(rows[r].add(i)), x0, a0[r]);
                }
                i += 16;
            }
            if i < k {
                let mask = tail_mask(k - i);
                let x1 = _mm512_maskz_loadu_ps(mask, xp.add(i));
                for r in 0..R {
                    a1[r] = _mm512_fmadd_ps(T::load_mask(rows[r].add(i), mask), x1, a1[r]);
                }
            }
            std::array::from_fn(|r| _mm512_reduce_add_ps(_mm512_add_ps(a0[r], a1[r])))
        }
    }

    /// See [`super::dot_rows`]; four weight rows share each load of `x`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub(super) unsafe fn dot_rows<T: Load16>(w: &[T], x: &[f32], k: usize, y: *mut f32, ys: usize, m: usize) {
        let n = x.len() / k;
        let (wp, xp) = (w.as_ptr(), x.as_ptr());
        let mut j = 0;
        // SAFETY: `w` holds m·k elements and `x` n·k (checked by the caller), so rows j..j+R and every
        // x row are in bounds; the caller guarantees `y`; the CPU features are enabled on this fn.
        unsafe {
            while j + 4 <= m {
                let rows = std::array::from_fn(|r| wp.add((j + r) * k));
                let next = wp.wrapping_add((j + 4) * k);
                for i in 0..n {
                    // Rows after the first find the block in L1: prefetch it again instead of the next.
                    let pf = if i == 0 { next } else { rows[0] };
                    let s = dot_r::<T, 4>(rows, xp.add(i * k), k, pf);
                    std::ptr::copy_nonoverlapping(s.as_ptr(), y.add(i * ys + j), 4);
                }
                j += 4;
            }
            while j < m {
                for i in 0..n {
                    *y.add(i * ys + j) =
                        dot_r::<T, 1>([wp.add(j * k)], xp.add(i * k), k, wp.wrapping_add((j + 1) * k))[0];
                }
                j += 1;
            }
        }
    }

    /// See [`super::axpy_cols`].
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub(super) unsafe fn axpy_cols<T: Load16>(y: &mut [f32], a: &[f32], w: &[T], stride: usize) {
        let m = y.len();
        let yp = y.as_mut_ptr();
        let wp = w.as_ptr();
        // One 16-column block of `R` rows starting at row `r`: loads with
        // `ld`, which is a full or a masked load.
        // SAFETY (whole body): `w` holds (a.len()−1)·stride + m elements
        // (checked by the caller), `y` holds m; every access below is at a
        // column < m of a row < a.len() (the last block is masked).
        unsafe {
            let block8 = |c: usize, rows: &[*const T; 8], av: &[__m512; 8], mask: u16| {
                let ld = |p: *const T| if mask == u16::MAX { T::load16(p) } else { T::load_mask(p, mask) };
                let yv = _mm512_maskz_loadu_ps(mask, yp.add(c));
                let mut s0 = _mm512_fmadd_ps(av[0], ld(rows[0].add(c)), yv);
                let mut s1 = _mm512_mul_ps(av[1], ld(rows[1].add(c)));
                for u in 1..4 {
                    s0 = _mm512_fmadd_ps(av[2 * u], ld(rows[2 * u].add(c)), s0);
                    s1 = _mm512_fmadd_ps(av[2 * u + 1], ld(rows[2 * u + 1].add(c)), s1);
                }
                _mm512_mask_storeu_ps(yp.add(c), mask, _mm512_add_ps(s0, s1));
            };
            let mut r = 0;
            while r + 8 <= a.len() {
                let rows: [*const T; 8] = std::array::from_fn(|u| wp.add((r + u) * stride));
                let av: [__m512; 8] = std::array::from_fn(|u| _mm512_set1_ps(a[r + u]));
                let mut c = 0;
                while c + 16 <= m {
                    block8(c, &rows, &av, u16::MAX);
                    c += 16;
                }
                if c < m {
                    block8(c, &rows, &av, tail_mask(m - c));
                }
                r += 8;
            }
            while r < a.len() {
                let row = wp.add(r * stride);
                let av = _mm512_set1_ps(a[r]);
                let mut c = 0;
                while c + 16 <= m {
                    let s = _mm512_fmadd_ps(av, T::load16(row.add(c)), _mm512_loadu_ps(yp.add(c)));
                    _mm512_storeu_ps(yp.add(c), s);
                    c += 16;
                }
                if c < m {
                    let mask = tail_mask(m - c);
                    let s = _mm512_fmadd_ps(av, T::load_mask(row.add(c), mask), _mm512_maskz_loadu_ps(mask, yp.add(c)));
                    _mm512_mask_storeu_ps(yp.add(c), mask, s);
                }
                r += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{rng, to_w, uniform};
    use crate::WeightElem;

    /// Both kernels against an `f64` loop for sizes around every unroll and
    /// mask boundary, all three weight types. Tolerance `1e-6·Σ|a·b|`
    /// (an `f32` sum of ≤ 100 terms errs by at most `100·2⁻²⁴ ≈ 6e-6`
    /// relative in the worst case, ~`1e-7` typically); splitting `y` gives
    /// bit-identical results.
    fn check<W: WeightElem + Load16>() {
        if !available() {
            eprintln!("skipped: no avx512");
            return;
        }
        let mut r = rng(5);
        for k in [1, 15, 16, 17, 31, 32, 33, 48, 63, 100] {
            for m in [1, 3, 4, 5, 9, 16, 17, 40] {
                let x = uniform(&mut r, k);
                let w: Vec<W> = to_w(&uniform(&mut r, m * k));
                let wf: Vec<f64> = w.iter().map(|v| v.to_f32() as f64).collect();
                // dot_rows, one row of x and three (the second is x again: rows are independent).
                let mut y = vec![f32::NAN; m];
                // SAFETY: avx512 checked above; w holds m·k; y holds m.
                unsafe { dot_rows(&w, &x, k, y.as_mut_ptr(), m, m) };
                for j in 0..m {
                    let s: f64 = (0..k).map(|l| wf[j * k + l] * x[l] as f64).sum();
                    let mag: f64 = (0..k).map(|l| (wf[j * k + l] * x[l] as f64).abs()).sum();
                    assert!((y[j] as f64 - s).abs() <= 1e-6 * mag + 1e-30, "dot_rows k={k} m={m} j={j}");
                }
                let x3: Vec<f32> = [uniform(&mut r, k), x.clone(), uniform(&mut r, k)].concat();
                let stride = m + 3;
                let mut y3 = vec![f32::NAN; 3 * stride];
                // SAFETY: as above; y3 holds 3 rows of `stride >= m`.
                unsafe { dot_rows(&w, &x3, k, y3.as_mut_ptr(), stride, m) };
                assert_eq!(&y3[stride..stride + m], &y[..], "dot_rows: a row's result depends on the other rows");
                for i in [0, 2] {
                    for j in 0..m {
                        let xi = &x3[i * k..(i + 1) * k];
                        let s: f64 = (0..k).map(|l| wf[j * k + l] * xi[l] as f64).sum();
                        let mag: f64 = (0..k).map(|l| (wf[j * k + l] * xi[l] as f64).abs()).sum();
                        let got = y3[i * stride + j] as f64;
                        assert!((got - s).abs() <= 1e-6 * mag + 1e-30, "dot_rows x row {i} k={k} m={m} j={j}");
                    }
                    assert!(y3[i * stride + m..(i + 1) * stride].iter().all(|v| v.is_nan()), "wrote past m");
                }
                // axpy_cols over w viewed as [k rows, m cols]; also split.
                let y0 = uniform(&mut r, m);
                let mut y = y0.clone();
                // SAFETY: avx512 checked above; w holds k·m.
                unsafe { axpy_cols(&mut y, &x, &w, m) };
                for c in 0..m {
                    let s: f64 = y0[c] as f64 + (0..k).map(|l| wf[l * m + c] * x[l] as f64).sum::<f64>();
                    let mag: f64 =
                        y0[c].abs() as f64 + (0..k).map(|l| (wf[l * m + c] * x[l] as f64).abs()).sum::<f64>();
                    assert!((y[c] as f64 - s).abs() <= 1e-6 * mag + 1e-30, "axpy_cols k={k} m={m} c={c}");
                }
                let split = m / 2;
                let mut y2 = y0.clone();
                let (lo, hi) = y2.split_at_mut(split);
                // SAFETY: as above; the second call starts at column `split`.
                unsafe {
                    axpy_cols(lo, &x, &w, m);
                    axpy_cols(hi, &x, &w[split..], m);
                }
                assert_eq!(y, y2, "axpy_cols split k={k} m={m}");
            }
        }
    }

    #[test]
    fn kernels_match_f64_all_types() {
        check::<f32>();
        check::<f16>();
        check::<bf16>();
    }
}
