//! The weight element types: `f32`, `f16` and `bf16`.

use half::{bf16, f16};

use crate::fast::{avx512, simd};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for half::f16 {}
    impl Sealed for half::bf16 {}
}

/// A type weights may be stored in: `f32`, [`half::f16`] or [`half::bf16`]
/// (the trait is sealed to these three). Widening to `f32` is exact for all
/// three, so a kernel with half weights computes exactly what it would with
/// the widened `f32` weights.
pub trait WeightElem: Copy + Send + Sync + 'static + sealed::Sealed {
    /// Widens one value to `f32` (exact).
    fn to_f32(self) -> f32;

    /// Narrows an `f32` to this type, rounding to nearest even.
    fn from_f32(v: f32) -> Self;

    /// Widens `src` into `dst` (same length; panics otherwise). Vectorized
    /// (F16C for `f16` where the CPU has it).
    fn to_f32_slice(src: &[Self], dst: &mut [f32]);

    /// `Some(src)` viewed as `f32` when `Self` is `f32` (no copy), else `None`.
    fn as_f32_slice(src: &[Self]) -> Option<&[f32]>;

    /// Kernel hook: `Σ w[i] * x[i]` accumulated in `f32`.
    #[doc(hidden)]
    fn dot(w: &[Self], x: &[f32]) -> f32;

    /// Kernel hook: `y += Σ_r a[r] * w[r, :]` where `w` holds `a.len()` rows
    /// of `y.len()` elements.
    #[doc(hidden)]
    fn axpy_rows(y: &mut [f32], a: &[f32], w: &[Self]);

    /// Kernel hook: AVX-512 `y[i·y_stride + j] = Σ_l w[j·k + l]·x[i·k + l]` for each row `i` of `x`
    /// and `j < m`.
    ///
    /// # Safety
    /// The CPU must have avx512f, avx512bw and avx512vl; `y` must be valid for those writes.
    #[doc(hidden)]
    unsafe fn dot_rows_avx512(w: &[Self], x: &[f32], k: usize, y: *mut f32, y_stride: usize, m: usize);

    /// Kernel hook: AVX-512 `y[c] += Σ_r a[r]·w[r·stride + c]`.
    ///
    /// # Safety
    /// The CPU must have avx512f, avx512bw and avx512vl.
    #[doc(hidden)]
    unsafe fn axpy_cols_avx512(y: &mut [f32], a: &[f32], w: &[Self], stride: usize);
}

impl WeightElem for f32 {
    #[inline]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline]
    fn from_f32(v: f32) -> Self {
        v
    }
    fn to_f32_slice(src: &[Self], dst: &mut [f32]) {
        dst.copy_from_slice(src);
    }
    #[inline]
    fn as_f32_slice(src: &[Self]) -> Option<&[f32]> {
        Some(src)
    }
    #[inline]
    fn dot(w: &[Self], x: &[f32]) -> f32 {
        simd::dot(w, x)
    }
    #[inline]
    fn axpy_rows(y: &mut [f32], a: &[f32], w: &[Self]) {
        simd::axpy_rows(y, a, w)
    }
    #[inline]
    unsafe fn dot_rows_avx512(w: &[Self], x: &[f32], k: usize, y: *mut f32, y_stride: usize, m: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { avx512::dot_rows(w, x, k, y, y_stride, m) }
    }
    #[inline]
    unsafe fn axpy_cols_avx512(y: &mut [f32], a: &[f32], w: &[Self], stride: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { avx512::axpy_cols(y, a, w, stride) }
    }
}

impl WeightElem for f16 {
    #[inline]
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    #[inline]
    fn from_f32(v: f32) -> Self {
        f16::from_f32(v)
    }
    fn to_f32_slice(src: &[Self], dst: &mut [f32]) {
        simd::f16_to_f32_slice(src, dst);
    }
    #[inline]
    fn as_f32_slice(_src: &[Self]) -> Option<&[f32]> {
        None
    }
    #[inline]
    fn dot(w: &[Self], x: &[f32]) -> f32 {
        simd::dot_f16(w, x)
    }
    #[inline]
    fn axpy_rows(y: &mut [f32], a: &[f32], w: &[Self]) {
        simd::axpy_rows_f16(y, a, w)
    }
    #[inline]
    unsafe fn dot_rows_avx512(w: &[Self], x: &[f32], k: usize, y: *mut f32, y_stride: usize, m: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { avx512::dot_rows(w, x, k, y, y_stride, m) }
    }
    #[inline]
    unsafe fn axpy_cols_avx512(y: &mut [f32], a: &[f32], w: &[Self], stride: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { avx512::axpy_cols(y, a, w, stride) }
    }
}

impl WeightElem for bf16 {
    #[inline]
    fn to_f32(self) -> f32 {
        bf16::to_f32(self)
    }
    #[inline]
    fn from_f32(v: f32) -> Self {
        bf16::from_f32(v)
    }
    fn to_f32_slice(src: &[Self], dst: &mut [f32]) {
        simd::bf16_to_f32_slice(src, dst);
    }
    #[inline]
    fn as_f32_slice(_src: &[Self]) -> Option<&[f32]> {
        None
    }
    #[inline]
    fn dot(w: &[Self], x: &[f32]) -> f32 {
        simd::dot_bf16(w, x)
    }
    #[inline]
    fn axpy_rows(y: &mut [f32], a: &[f32], w: &[Self]) {
        simd::axpy_rows_bf16(y, a, w)
    }
    #[inline]
    unsafe fn dot_rows_avx512(w: &[Self], x: &[f32], k: usize, y: *mut f32, y_stride: usize, m: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { avx512::dot_rows(w, x, k, y, y_stride, m) }
    }
    #[inline]
    unsafe fn axpy_cols_avx512(y: &mut [f32], a: &[f32], w: &[Self], stride: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { avx512::axpy_cols(y, a, w, stride) }
    }
}

/// Widens a small weight vector (gamma, bias) into a fresh `f32` vector.
pub(crate) fn widen<W: WeightElem>(src: &[W]) -> Vec<f32> {
    let mut out = vec![0.0; src.len()];
    W::to_f32_slice(src, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widening_is_exact_and_matches_scalar() {
        let vals: Vec<f32> = (0..1000).map(|i| (i as f32 - 500.0) * 0.37).collect();
        let h: Vec<f16> = vals.iter().map(|&v| f16::from_f32(v)).collect();
        let b: Vec<bf16> = vals.iter().map(|&v| bf16::from_f32(v)).collect();
        let mut out = vec![0.0; vals.len()];
        f16::to_f32_slice(&h, &mut out);
        for (o, x) in out.iter().zip(&h) {
            assert_eq!(*o, x.to_f32());
        }
        bf16::to_f32_slice(&b, &mut out);
        for (o, x) in out.iter().zip(&b) {
            assert_eq!(*o, x.to_f32());
        }
        let nan = [bf16::NAN, bf16::INFINITY, bf16::NEG_INFINITY];
        let mut o3 = [0.0f32; 3];
        bf16::to_f32_slice(&nan, &mut o3);
        assert!(o3[0].is_nan() && o3[1] == f32::INFINITY && o3[2] == f32::NEG_INFINITY);
    }
}
