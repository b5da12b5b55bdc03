//! Async readiness on Windows, for any executor: [`EventWait`] wakes a task when a Win32 event
//! is signalled, through a one-shot thread-pool wait (`RegisterWaitForSingleObject` with
//! `WT_EXECUTEONLYONCE`) whose callback calls the task's `Waker`. Every waitable object of
//! this crate signals an event (see `probe.rs`), so one mechanism serves pipe reads, pipe
//! writes and both kinds of listener. tokio's reactor cannot take these: it watches sockets
//! and named pipes through mio, whose pipe reads lose message boundaries.

use std::ffi::c_void;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use windows_sys::Win32::Foundation::{HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::Threading::{
    INFINITE, RegisterWaitForSingleObject, UnregisterWaitEx, WT_EXECUTEONLYONCE,
};

use super::calls;
use super::handle::Borrowed;
use super::probe::Raw;
use crate::Handle;

/// What the thread-pool callback touches: the waker to call and whether it has run.
#[derive(Debug, Default)]
struct Shared {
    waker: Mutex<Option<Waker>>,
    fired: AtomicBool,
}

/// A registered one-shot wait: the wait object and the event it waits on.
#[derive(Debug)]
struct Registration {
    wait: Raw,
    event: Raw,
}

/// Wakes a task when an event is signalled (see the module docs). One per waiting party (a
/// reader, a writer, an acceptor); the events it waits on must stay open while it is
/// registered: drop it (or let [`poll_handle`](Self::poll_handle) report ready) before the
/// object that owns them goes.
#[derive(Debug, Default)]
pub struct EventWait {
    shared: Arc<Shared>,
    registered: Option<Registration>,
}

/// The thread pool's callback: wakes the task that last polled.
///
/// # Safety
/// `context` is the `Shared` of a registered `EventWait`, which keeps it alive until the wait
/// is unregistered with completion (`UnregisterWaitEx(.., INVALID_HANDLE_VALUE)` returns only
/// after any running callback has returned).
unsafe extern "system" fn fired(context: *mut c_void, _timed_out: bool) {
    // SAFETY: see the function's contract.
    let shared = unsafe { &*(context as *const Shared) };
    shared.fired.store(true, Ordering::SeqCst);
    let waker = shared
        .waker
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(waker) = waker {
        waker.wake();
    }
}

impl EventWait {
    /// A waiter with nothing registered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ready when `handle` is: a stream's or listener's readiness (armed first, so a pipe
    /// starts its next read and a socket is looked at), or a kernel object (a process) when
    /// signalled. Until then the task of `cx` is woken when it becomes ready. Sockets not owned
    /// by this crate and pollers cannot be waited on this way: `Unsupported`.
    pub fn poll_handle(
        &mut self,
        handle: Handle<'_>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        let event = match handle.inner {
            Borrowed::Probe(p) => {
                p.arm();
                p.event()
            }
            Borrowed::Object(h) => {
                use std::os::windows::io::AsRawHandle;
                h.as_raw_handle()
            }
            Borrowed::Socket(_) | Borrowed::Set(_) => {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "only this crate's streams, listeners and kernel objects can be awaited",
                )));
            }
        };
        self.poll_event(event, cx)
    }

    /// Ready once `event` is signalled; until then the task of `cx` is woken when it is.
    /// `event` must stay open while registered (see the type's docs).
    pub(crate) fn poll_event(
        &mut self,
        event: HANDLE,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        if calls::is_signalled(event) {
            self.unregister();
            return Poll::Ready(Ok(()));
        }
        // The waker is stored before `fired` is read: a callback that has not yet taken the
        // waker will take this one.
        *self
            .shared
            .waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
        let live = self
            .registered
            .as_ref()
            .is_some_and(|r| r.event.0 == event && !self.shared.fired.load(Ordering::SeqCst));
        if !live {
            // A spent registration (its event was reset since it fired) or one for another
            // event: wait anew. An event signalled meanwhile fires the new wait at once.
            self.unregister();
            self.shared.fired.store(false, Ordering::SeqCst);
            let mut wait: HANDLE = std::ptr::null_mut();
            // SAFETY: `event` is open (the caller's contract); the context is `shared`, kept
            // alive by `self` until `unregister` has waited the callback out.
            let ok = unsafe {
                RegisterWaitForSingleObject(
                    &mut wait,
                    event,
                    Some(fired),
                    Arc::as_ptr(&self.shared).cast(),
                    INFINITE,
                    WT_EXECUTEONLYONCE,
                )
            };
            if ok == 0 {
                return Poll::Ready(Err(calls::last_error()));
            }
            self.registered = Some(Registration {
                wait: Raw(wait),
                event: Raw(event),
            });
        }
        Poll::Pending
    }

    /// Cancels the registered wait, if any, waiting for a callback under way to return.
    fn unregister(&mut self) {
        if let Some(r) = self.registered.take() {
            // SAFETY: a wait object registered by `poll_event` and not unregistered yet; with
            // INVALID_HANDLE_VALUE the call returns once no callback for it is running, so
            // `shared` is not used after.
            unsafe { UnregisterWaitEx(r.wait.0, INVALID_HANDLE_VALUE) };
        }
    }
}

impl Drop for EventWait {
    fn drop(&mut self) {
        self.unregister();
    }
}
