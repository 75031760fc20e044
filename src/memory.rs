//! Giving freed memory back to the operating system after a retraining
//! pass.
//!
//! A pass allocates its training sets and LightGBM's buffers (several MB
//! per objective at the NB201 scale) and frees them when it ends. glibc's
//! malloc returns freed memory to the system only from the top of a heap,
//! so what a pass freed in the middle stays resident: the server's floor
//! then sits wherever fragmentation left it and creeps up while the
//! training set grows (the soak runs in docs/reliability.md).
//! `malloc_trim(0)` hands every free page of every arena back.

/// Returns free heap pages to the system; whether any were. A no-op where
/// the allocator is not glibc's.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn release_free_memory() -> bool {
    // SAFETY: malloc_trim takes no pointer and only walks glibc's own
    // arenas, each under its lock, so it is sound from any thread at any
    // time; it frees nothing that is still allocated.
    unsafe { libc::malloc_trim(0) != 0 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() -> bool {
    false
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    fn resident_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS")
    }

    /// 80 MB in 4 KiB blocks (below glibc's mmap threshold, so on the
    /// heap), every hundredth kept: the rest is free but held between the
    /// survivors until trimmed.
    #[test]
    fn trimming_returns_memory_freed_between_live_blocks() {
        let blocks: Vec<Box<[u8; 4096]>> = (0..20_000).map(|i| Box::new([i as u8; 4096])).collect();
        let kept: Vec<Box<[u8; 4096]>> = blocks.into_iter().step_by(100).collect();
        let before = resident_kib();
        assert!(
            release_free_memory(),
            "nothing to release after freeing 79 MB"
        );
        let after = resident_kib();
        assert!(
            before.saturating_sub(after) > 30 * 1024,
            "resident {before} KiB before the trim, {after} KiB after"
        );
        assert!(
            kept.iter()
                .enumerate()
                .all(|(i, b)| b[4095] == (i * 100) as u8)
        );
    }
}
