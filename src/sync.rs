//! Locks that outlive a panic. A thread that panics holding a std lock
//! poisons it; every lock of this crate guards data that each update leaves
//! consistent before it unlocks (each site says why), so the next user
//! takes the data as it is rather than panicking in turn. A leaf: imports
//! nothing of the crate.

use std::sync::{LockResult, Mutex, MutexGuard, PoisonError};

/// [`Mutex::lock`], poisoned or not.
pub trait LockExt<T: ?Sized> {
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T: ?Sized> LockExt<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unpoisoned()
    }
}

/// The guard of any lock or condition-variable wait, poisoned or not.
pub trait Unpoisoned<G> {
    fn unpoisoned(self) -> G;
}

impl<G> Unpoisoned<G> for LockResult<G> {
    fn unpoisoned(self) -> G {
        self.unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, RwLock};

    #[test]
    fn a_poisoned_lock_still_gives_its_data() {
        let m = Arc::new(Mutex::new(1));
        let r = Arc::new(RwLock::new(2));
        let (m2, r2) = (Arc::clone(&m), Arc::clone(&r));
        let _ = std::thread::spawn(move || {
            let _m = m2.lock();
            let _r = r2.write();
            panic!("poisoning on purpose");
        })
        .join();
        assert!(m.is_poisoned() && r.is_poisoned());
        *m.locked() += 1;
        assert_eq!(*m.locked(), 2);
        assert_eq!(*r.read().unpoisoned(), 2);
    }
}
