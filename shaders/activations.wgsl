// activations: shared WGSL helpers (no entry point), spliced into gelu.wgsl and
// silu_mul.wgsl by the `//!include activations` template marker.

// erf(x) by Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7); WGSL has no erf.
fn erf_approx(x: f32) -> f32 {
    let ax = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * ax);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let r = 1.0 - poly * exp(-ax * ax);
    return select(r, -r, x < 0.0);
}

// Exact GELU: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)).
fn gelu_erf(x: f32) -> f32 {
    return 0.5 * x * (1.0 + erf_approx(x * 0.7071067811865476));
}

// tanh GELU: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x³))). The tanh argument is
// clamped to [-10, 10] (tanh = ±1 in f32 there) so no backend overflows exp.
fn gelu_tanh(x: f32) -> f32 {
    let u = clamp(0.7978845608028654 * (x + 0.044715 * x * x * x), -10.0, 10.0);
    return 0.5 * x * (1.0 + tanh(u));
}

// SiLU: x * sigmoid(x), written to avoid exp overflow for large |x|.
fn silu(x: f32) -> f32 {
    let e = exp(-abs(x));
    let sig = select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
    return x * sig;
}
