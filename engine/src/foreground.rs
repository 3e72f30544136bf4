//! Foreground commits, and the background copies that yield to them.
//!
//! A load's latency on one disk is mostly its fsyncs, and an fsync waits behind whatever write-back
//! is queued at the device in front of it. A BACKUP or RESTORE copying hundreds of megabytes keeps
//! the queue busy; pacing ([`crate::WritableFile::pace_writeback`]) bounds how much it queues, and
//! this bounds when: while a load or DDL is making its files and its manifest record durable, a
//! background copy holds its next chunk back (for at most a bounded wait, so a stream of loads
//! slows a backup down but never stops it). This is the I/O priority a scheduler would give
//! (ioprio classes need BFQ; the machines here run mq-deadline), kept inside the process that
//! knows which writes a user is waiting for.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How many foreground commits are making files durable; shared by an [`crate::Engine`]'s clones
/// ([`crate::Engine::foreground`]).
#[derive(Debug, Default)]
pub struct Foreground {
    active: Mutex<usize>,
    idle: Condvar,
}

/// Marks one foreground commit for as long as it lives.
#[derive(Debug)]
pub struct ForegroundGuard<'a> {
    foreground: &'a Foreground,
}

impl Foreground {
    fn count(&self) -> MutexGuard<'_, usize> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks a foreground commit until the guard is dropped.
    pub fn enter(&self) -> ForegroundGuard<'_> {
        *self.count() += 1;
        ForegroundGuard { foreground: self }
    }

    /// Foreground commits in progress.
    pub fn active(&self) -> usize {
        *self.count()
    }

    /// Waits while a foreground commit is in progress, for at most `max`; returns how long it
    /// waited. Called by a background copy before it queues its next chunk.
    pub fn yield_to(&self, max: Duration) -> Duration {
        let start = Instant::now();
        let count = self.count();
        if *count == 0 {
            return Duration::ZERO;
        }
        let _unused = self
            .idle
            .wait_timeout_while(count, max, |n| *n > 0)
            .unwrap_or_else(|p| p.into_inner());
        start.elapsed()
    }
}

impl Drop for ForegroundGuard<'_> {
    fn drop(&mut self) {
        let mut count = self.foreground.count();
        *count = count.saturating_sub(1);
        if *count == 0 {
            self.foreground.idle.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn yield_returns_at_once_when_idle() {
        let f = Foreground::default();
        assert_eq!(f.yield_to(Duration::from_secs(10)), Duration::ZERO);
    }

    #[test]
    fn yield_waits_for_the_last_guard_and_no_longer() {
        let f = Arc::new(Foreground::default());
        let released = Arc::new(AtomicBool::new(false));
        let g1 = f.enter();
        let g2 = f.enter();
        assert_eq!(f.active(), 2);
        let waiter = std::thread::spawn({
            let (f, released) = (f.clone(), released.clone());
            move || {
                let waited = f.yield_to(Duration::from_secs(60));
                (waited, released.load(Ordering::SeqCst))
            }
        });
        std::thread::sleep(Duration::from_millis(50));
        drop(g1);
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "one commit is still in progress");
        released.store(true, Ordering::SeqCst);
        drop(g2);
        let (waited, after_release) = waiter.join().unwrap();
        assert!(after_release, "returned before the last commit ended");
        assert!(waited < Duration::from_secs(60), "{waited:?}");
        assert_eq!(f.active(), 0);
    }

    #[test]
    fn yield_is_bounded_while_commits_go_on() {
        let f = Foreground::default();
        let _g = f.enter();
        let waited = f.yield_to(Duration::from_millis(30));
        assert!(waited >= Duration::from_millis(30), "{waited:?}");
    }
}
