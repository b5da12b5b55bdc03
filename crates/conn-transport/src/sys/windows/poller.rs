//! Waiting on Windows: [`wait_readable`], [`wait_readable_many`] and [`Poller`], all by arming
//! each handle's probe and waiting on the events (see `probe.rs`). A wait costs time in the
//! number of handles waited on, not only the ready ones: there is no Win32 primitive that
//! reports readiness of pipes, sockets and processes together in O(ready).

use std::io;
use std::os::windows::io::AsRawHandle;
use std::os::windows::io::AsRawSocket;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::Networking::WinSock::{
    FD_ACCEPT, FD_CLOSE, FD_READ, SOCKET, WSAEventSelect,
};

use super::calls;
use super::handle::Borrowed as WinRef;
use super::probe::{Probe, Raw};
use super::stream::socket_probe;
use crate::Handle;
use crate::os::Ready;

/// Sets nested deeper than this (a poller registered in a poller registered in …) are not
/// looked into: the bound that keeps a poller registered in itself from recursing forever.
const MAX_NESTING: usize = 8;

/// A registered handle.
#[derive(Debug)]
enum Entry {
    /// A kernel object, kept open by whoever registered it.
    Object(Raw),
    /// A bare socket, tied to an event of its own while registered.
    Socket(SOCKET, Arc<Probe>),
    Probe(Arc<Probe>),
    Set(Arc<PollSet>),
}

/// A poller's registrations, shared with the handles that stand for the poller.
#[derive(Debug, Default)]
pub(crate) struct PollSet {
    entries: Mutex<Vec<(Entry, usize, u64)>>,
}

impl PollSet {
    fn lock(&self) -> MutexGuard<'_, Vec<(Entry, usize, u64)>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Arms every registration and collects the events to wait on.
    fn arm(&self, events: &mut Vec<HANDLE>, depth: usize) {
        if depth > MAX_NESTING {
            return;
        }
        for (entry, _, _) in self.lock().iter() {
            entry.arm(events, depth);
        }
    }

    fn any_ready(&self, depth: usize) -> bool {
        depth <= MAX_NESTING && self.lock().iter().any(|(e, _, _)| e.ready(depth))
    }
}

impl Entry {
    fn arm(&self, events: &mut Vec<HANDLE>, depth: usize) {
        match self {
            Self::Object(h) => events.push(h.0),
            Self::Socket(_, p) | Self::Probe(p) => {
                p.arm();
                events.push(p.event());
            }
            Self::Set(s) => s.arm(events, depth + 1),
        }
    }

    fn ready(&self, depth: usize) -> bool {
        match self {
            Self::Object(h) => calls::is_signalled(h.0),
            Self::Socket(_, p) | Self::Probe(p) => calls::is_signalled(p.event()),
            Self::Set(s) => s.any_ready(depth + 1),
        }
    }

    fn of(handle: Handle<'_>) -> io::Result<Self> {
        Ok(match handle.inner {
            WinRef::Object(h) => Self::Object(Raw(h.as_raw_handle())),
            WinRef::Socket(s) => {
                let raw = s.as_raw_socket() as SOCKET;
                Self::Socket(
                    raw,
                    Arc::new(socket_probe(raw, FD_READ | FD_CLOSE | FD_ACCEPT)?),
                )
            }
            WinRef::Probe(p) => Self::Probe(Arc::clone(p)),
            WinRef::Set(s) => Self::Set(Arc::clone(s)),
        })
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Self::Socket(s, _) = self {
            // SAFETY: unties the socket from the entry's event (the socket stays non-blocking).
            unsafe { WSAEventSelect(*s, 0, 0) };
        }
    }
}

/// Whether `handle` is readable (a connection has data or end of file, a listener a client,
/// a process has exited), waiting at most `timeout` (`None`: forever; zero: just look).
pub(crate) fn wait_readable(handle: Handle<'_>, timeout: Option<Duration>) -> io::Result<bool> {
    Ok(!wait_readable_many(&[handle], timeout)?.is_empty())
}

/// Which of `handles` are readable (their indices), waiting at most `timeout` for the first.
/// Any number of handles. A bare socket waited on is made non-blocking (`WSAEventSelect`).
pub(crate) fn wait_readable_many(
    handles: &[Handle<'_>],
    timeout: Option<Duration>,
) -> io::Result<Vec<usize>> {
    let entries = handles
        .iter()
        .map(|h| Entry::of(*h))
        .collect::<io::Result<Vec<_>>>()?;
    let mut events = Vec::with_capacity(entries.len());
    for e in &entries {
        e.arm(&mut events, 0);
    }
    if !calls::wait_any(&events, timeout)? {
        return Ok(Vec::new());
    }
    Ok(entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.ready(0))
        .map(|(i, _)| i)
        .collect())
}

/// A persistent registry of handles to wait on, each under a key. Each wait arms every
/// registration and reports each ready one (level-triggered: a handle still ready is reported
/// again at the next wait).
#[derive(Debug)]
pub(crate) struct Poller {
    set: Arc<PollSet>,
    events: Vec<HANDLE>,
}

// SAFETY: `events` is scratch space of handle numbers, rebuilt on every wait.
unsafe impl Send for Poller {}
// SAFETY: as above; `&Poller` gives no access to `events`.
unsafe impl Sync for Poller {}

impl Poller {
    /// An empty registry.
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Self {
            set: Arc::default(),
            events: Vec::new(),
        })
    }

    /// The registry itself as a handle: ready when a registered handle is.
    pub(crate) fn handle(&self) -> Handle<'_> {
        Handle::set(&self.set)
    }

    /// Registers `handle` under `key`. A kernel object must stay open while registered.
    pub(crate) fn add(&mut self, handle: Handle<'_>, key: usize) -> io::Result<()> {
        let entry = Entry::of(handle)?;
        self.set.lock().push((entry, key, handle.id()));
        Ok(())
    }

    /// Deregisters `handle`.
    pub(crate) fn remove(&mut self, handle: Handle<'_>) -> io::Result<()> {
        let id = handle.id();
        self.set.lock().retain(|(_, _, i)| *i != id);
        Ok(())
    }

    /// Every wait re-arms every handle: nothing to do.
    pub(crate) fn rearm_now(&mut self, _handle: Handle<'_>, _key: usize) -> io::Result<()> {
        Ok(())
    }

    /// Every wait re-arms every handle: nothing to do.
    pub(crate) fn rearm(&mut self, _handle: Handle<'_>, _key: usize) {}

    /// Waits until a registered handle is ready or `timeout` passes, and appends one report
    /// per ready handle to `ready`.
    pub(crate) fn wait(
        &mut self,
        ready: &mut Vec<Ready>,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        self.events.clear();
        self.set.arm(&mut self.events, 0);
        if !calls::wait_any(&self.events, timeout)? {
            return Ok(());
        }
        for (entry, key, _) in self.set.lock().iter() {
            if entry.ready(0) {
                ready.push(Ready { key: *key });
            }
        }
        Ok(())
    }
}
