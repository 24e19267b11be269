//! Memory read-bandwidth probe: how fast the worker pool can stream a buffer, the ceiling a
//! memory-bound kernel (decode's mat-vecs) is compared against. Used by the mat-vec benchmark
//! and `kaiyuan bench --bandwidth`.
//!
//! Method: each thread sums its contiguous share of a `u64` buffer as four sequential
//! streams (the quarters of its share, read side by side with software prefetch, as the
//! four-row mat-vec reads a matrix: one core keeps more lines in flight that way than on
//! one stream, 14–15 against 12.7 GB/s here), one accumulator per stream (so the loop is
//! bound by loads, not by the add chain); the best time of repeated passes over the whole
//! buffer gives bytes ÷ seconds. A buffer much larger than the
//! last-level cache measures DRAM; one that fits measures that cache level. The buffer sits
//! in huge pages where the OS offers them, like the weights the kernels stream.

use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::hugepage::HugePageBuffer;
use crate::threads::ThreadPool;

/// Runs `f` once to warm up, then repeatedly for about `budget`; returns the best time of one
/// call.
pub fn best_time(budget: Duration, mut f: impl FnMut()) -> Duration {
    f();
    let start = Instant::now();
    let mut best = Duration::MAX;
    while start.elapsed() < budget || best == Duration::MAX {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed());
    }
    best
}

/// Read bandwidth in GB/s (10⁹ bytes per second) over `buf`, split across the pool's threads;
/// the best of the passes made in about `budget`.
pub fn read_bandwidth(pool: &ThreadPool, buf: &[u64], budget: Duration) -> f64 {
    let t = best_time(budget, || {
        pool.run(|i, n| {
            let chunk = buf.len().div_ceil(n);
            let part = &buf[(i * chunk).min(buf.len())..((i + 1) * chunk).min(buf.len())];
            let quarter = part.len() / 4;
            let streams: [&[u64]; 4] = std::array::from_fn(|k| &part[k * quarter..][..quarter]);
            let mut acc = [0u64; 4];
            for j in 0..quarter {
                for k in 0..4 {
                    // One prefetch per cache line, 2 KiB ahead (the kernels' distance).
                    #[cfg(target_arch = "x86_64")]
                    if j % 8 == 0 {
                        crate::quant::x86::prefetch_at(
                            streams[k][j..].as_ptr() as *const u8,
                            crate::quant::x86::PREFETCH_AHEAD,
                        );
                    }
                    acc[k] = acc[k].wrapping_add(streams[k][j]);
                }
            }
            for &x in &part[4 * quarter..] {
                acc[0] = acc[0].wrapping_add(x);
            }
            black_box(acc);
        })
    });
    (buf.len() * 8) as f64 / t.as_secs_f64().max(1e-12) / 1e9
}

/// A probe buffer: `u64`s in a [`HugePageBuffer`], the kind of memory the model loader keeps
/// weights in (`GgufFile::open_resident`), so the probe measures what the kernels read.
pub struct ProbeBuffer(HugePageBuffer);

impl std::ops::Deref for ProbeBuffer {
    type Target = [u64];
    fn deref(&self) -> &[u64] {
        let bytes = self.0.as_slice();
        // SAFETY: the buffer starts on a 2 MiB boundary, so the pointer is aligned for u64;
        // its length is a whole number of u64s (made so by `probe_buffer`); any bit pattern
        // is a valid u64; the slice borrows `self`, which owns the memory.
        unsafe { std::slice::from_raw_parts(bytes.as_ptr() as *const u64, bytes.len() / 8) }
    }
}

/// A buffer of `bytes` (rounded down to whole `u64`s, at least one) with every page written,
/// so that timing does not include first-touch page faults. Panics if the OS refuses the
/// memory.
pub fn probe_buffer(bytes: usize) -> ProbeBuffer {
    let words = (bytes / 8).max(1);
    let mut buf = HugePageBuffer::zeroed(words * 8)
        .unwrap_or_else(|e| panic!("probe buffer of {bytes} bytes: {e}"));
    for (i, w) in buf.as_mut_slice().chunks_exact_mut(8).enumerate() {
        w.copy_from_slice(&(i as u64).to_ne_bytes());
    }
    ProbeBuffer(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bandwidth_is_positive_and_finite() {
        let pool = ThreadPool::new(2);
        let buf = probe_buffer(1 << 20);
        let gbs = read_bandwidth(&pool, &buf, Duration::from_millis(20));
        assert!(gbs.is_finite() && gbs > 0.0, "{gbs}");
    }

    #[test]
    fn tiny_buffers_and_zero_budget_work() {
        let pool = ThreadPool::new(3);
        let buf = probe_buffer(0);
        assert_eq!(buf.len(), 1);
        assert!(read_bandwidth(&pool, &buf, Duration::ZERO) > 0.0);
    }
}
