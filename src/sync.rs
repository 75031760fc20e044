//! Locks shared between threads.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `m`, taking its data even if a thread panicked while holding it.
///
/// Every mutex in nasperf guards data that each critical section leaves
/// whole (a map changed by one call, collected results, a failure slot),
/// so another thread's panic does not make it wrong; that panic reaches its
/// own caller (a scope's join, a task's handle) and is not hidden by this.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The data of a mutex no thread holds any more, poisoned or not (as
/// [`lock`]).
pub fn into_inner<T>(m: Mutex<T>) -> T {
    m.into_inner().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_poisoned_by_a_panicking_thread_still_gives_its_data() {
        let m = Mutex::new(vec![1]);
        let poisoned = std::thread::scope(|s| {
            s.spawn(|| {
                let mut v = lock(&m);
                v.push(2);
                panic!("a worker fails while holding the lock");
            })
            .join()
        });
        assert!(poisoned.is_err());
        assert!(m.is_poisoned());
        assert_eq!(*lock(&m), vec![1, 2]);
        assert_eq!(into_inner(m), vec![1, 2]);
    }
}
