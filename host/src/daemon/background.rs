//! Low-priority threads for work that must yield the CPU to everything else.
//!
//! A backlog inherited from a previous run (thousands of notices that were
//! already due when the daemon started) is delivered on these threads. The
//! kernel's scheduler then gives intake and new incidents' notices the CPU
//! first whenever they want it, and the backlog every cycle they leave idle:
//! it drains at full speed on a quiet machine and never slows intake on a
//! busy one. Only the calls run here; the journal writes around them stay on
//! the ordinary threads, so a preempted low-priority thread never holds the
//! journal's writer.

use std::future::Future;
use std::time::Duration;

/// How much nicer than the daemon these threads run: the lowest priority, so
/// a busy thread of normal priority gets some 70 times their share of a core.
const NICE: i32 = 19;

/// A pool of low-priority threads, with its own runtime for the calls' I/O.
pub(crate) struct Background {
    rt: Option<tokio::runtime::Runtime>,
}

impl Background {
    /// Starts a pool of up to `threads` low-priority threads; an error means
    /// the threads could not be created.
    pub(crate) fn start(threads: usize) -> std::io::Result<Background> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(threads.max(1))
            .thread_keep_alive(Duration::from_secs(10))
            .thread_name("crisis-backlog")
            .on_thread_start(lower_priority)
            .enable_all()
            .build()?;
        Ok(Background { rt: Some(rt) })
    }

    /// Runs the blocking `f` on one of the pool's threads.
    pub(crate) fn run<T, F>(&self, f: F) -> impl Future<Output = Result<T, tokio::task::JoinError>> + use<T, F>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.rt.as_ref().expect("the pool runs until dropped").spawn_blocking(f)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // Dropped from async code too, where waiting for the threads is not
        // allowed; calls still running end with the process.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Lowers the calling thread's priority (on Linux the nice value is per thread).
fn lower_priority() {
    let now = rustix::process::getpriority_process(None).unwrap_or(0);
    if let Err(e) = rustix::process::setpriority_process(None, now.max(NICE)) {
        tracing::warn!("cannot lower the backlog threads' priority; they compete with intake: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_on_threads_of_the_lowest_priority_and_the_callers_keeps_its_own() {
        let before = rustix::process::getpriority_process(None).unwrap();
        let pool = Background::start(2).unwrap();
        let (nice, name) = pool
            .run(|| {
                (rustix::process::getpriority_process(None).unwrap(), std::thread::current().name().map(String::from))
            })
            .await
            .unwrap();
        assert_eq!(nice, NICE.max(before));
        assert_eq!(name.as_deref(), Some("crisis-backlog"));
        assert_eq!(rustix::process::getpriority_process(None).unwrap(), before, "only the pool's threads are lowered");
        drop(pool);
    }
}
