//! Memory read-bandwidth probe: how fast the worker pool can stream a buffer, the ceiling a
//! memory-bound kernel (decode's mat-vecs) is compared against. Used by the mat-vec benchmark
//! and `kaiyuan bench --bandwidth`.
//!
//! Method: each thread sums its contiguous share of a `u64` buffer with four independent
//! accumulators (so the loop is bound by loads, not by the add chain); the best time of
//! repeated passes over the whole buffer gives bytes ÷ seconds. A buffer much larger than the
//! last-level cache measures DRAM; one that fits measures that cache level. The buffer sits
//! in huge pages where the OS offers them, like the weights the kernels stream.

use std::hint::black_box;
use std::time::{Duration, Instant};

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
            let mut acc = [0u64; 4];
            for c in part.chunks_exact(4) {
                for k in 0..4 {
                    acc[k] = acc[k].wrapping_add(c[k]);
                }
            }
            black_box(acc);
        })
    });
    (buf.len() * 8) as f64 / t.as_secs_f64().max(1e-12) / 1e9
}

/// Transparent huge pages are 2 MiB on x86-64 and on most aarch64 kernels.
const HUGE_PAGE: usize = 2 << 20;

/// A probe buffer: `u64`s in an anonymous mapping aligned to 2 MiB and, on Linux, advised
/// to use transparent huge pages, as the model loader keeps weights
/// (`GgufFile::open_resident`), so the probe measures the same kind of memory the kernels
/// read.
pub struct ProbeBuffer {
    map: memmap2::MmapMut,
    start: usize,
    words: usize,
}

impl std::ops::Deref for ProbeBuffer {
    type Target = [u64];
    fn deref(&self) -> &[u64] {
        // SAFETY: `start` is a multiple of 2 MiB from a page-aligned mapping, so the pointer
        // is aligned for u64; `start + 8·words` bytes lie inside the mapping (checked when
        // it was made), every word was written by `probe_buffer`, and the slice borrows
        // `self`, which owns the mapping.
        unsafe {
            std::slice::from_raw_parts(self.map.as_ptr().add(self.start) as *const u64, self.words)
        }
    }
}

/// A buffer of `bytes` (rounded down to whole `u64`s, at least one) with every page written,
/// so that timing does not include first-touch page faults. Panics if the OS refuses the
/// memory.
pub fn probe_buffer(bytes: usize) -> ProbeBuffer {
    let words = (bytes / 8).max(1);
    let mut map = memmap2::MmapMut::map_anon(words * 8 + HUGE_PAGE)
        .unwrap_or_else(|e| panic!("probe buffer of {bytes} bytes: {e}"));
    let start = (HUGE_PAGE - map.as_ptr() as usize % HUGE_PAGE) % HUGE_PAGE;
    #[cfg(target_os = "linux")]
    {
        // Only advice: without transparent huge pages the probe still runs.
        let _ = map.advise_range(memmap2::Advice::HugePage, start, words * 8);
    }
    for (i, w) in map[start..start + words * 8]
        .chunks_exact_mut(8)
        .enumerate()
    {
        w.copy_from_slice(&(i as u64).to_ne_bytes());
    }
    ProbeBuffer { map, start, words }
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
