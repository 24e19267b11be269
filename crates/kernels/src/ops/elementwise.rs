//! Element-wise arithmetic on equal-length `f32` slices (residual adds, gating products,
//! scaling): plain loops the compiler vectorises.

fn check_len(op: &str, dst: &[f32], src: &[f32]) {
    assert_eq!(
        dst.len(),
        src.len(),
        "{op}: lengths differ ({} vs {})",
        dst.len(),
        src.len()
    );
}

/// `dst += src`.
pub fn add(dst: &mut [f32], src: &[f32]) {
    check_len("add", dst, src);
    for (d, &s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}

/// `dst *= src`, element by element.
pub fn mul(dst: &mut [f32], src: &[f32]) {
    check_len("mul", dst, src);
    for (d, &s) in dst.iter_mut().zip(src) {
        *d *= s;
    }
}

/// `dst *= s`.
pub fn scale(dst: &mut [f32], s: f32) {
    for d in dst.iter_mut() {
        *d *= s;
    }
}

/// `dst += s * src`.
pub fn add_scaled(dst: &mut [f32], src: &[f32], s: f32) {
    check_len("add_scaled", dst, src);
    for (d, &v) in dst.iter_mut().zip(src) {
        *d += s * v;
    }
}
