//! `wait` over many objects (CPython's `multiprocessing.connection.wait`) and `WaitSet`, its
//! persistent form.

use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

use conn_transport::{Poller, Ready, wait_readable_many};

use crate::{Error, Result};

/// Something `wait` can wait on: connections, receivers, listeners (ready when a client waits),
/// and raw fds and sockets.
pub trait Waitable {
    /// The handle to watch; [`Error::Closed`] (or [`Error::ListenerClosed`]) for a closed object.
    fn wait_fd(&self) -> Result<BorrowedFd<'_>>;

    /// Whether the object is ready without looking at its handle: a whole message already
    /// buffered in user space.
    fn has_buffered(&self) -> bool {
        false
    }

    /// For a [`WaitSet`], which owns its objects: called when the handle is reported readable,
    /// it takes in what has arrived without waiting and says whether the object is now ready
    /// (a receive, or an accept, would not wait). A connection holding half a message is then
    /// not reported, so one slow peer never stalls a single-threaded server. The default trusts
    /// the handle.
    fn pump(&mut self) -> Result<bool> {
        Ok(true)
    }

    /// For [`wait`], which only borrows: called when the handle is reported readable, says
    /// whether the object is really ready. The default trusts the handle (CPython's readiness for
    /// connections); a [`Listener`](crate::Listener) first finishes the handshakes it can, and is
    /// ready only when `accept` would return at once.
    fn settle(&self) -> Result<bool> {
        Ok(true)
    }
}

macro_rules! waitable_as_fd {
    ($($t:ty),*) => {$(
        impl Waitable for $t {
            fn wait_fd(&self) -> Result<BorrowedFd<'_>> {
                Ok(self.as_fd())
            }
        }
    )*};
}

waitable_as_fd!(
    BorrowedFd<'_>,
    OwnedFd,
    TcpStream,
    TcpListener,
    UnixStream,
    UnixListener,
    std::process::ChildStdout,
    std::process::ChildStderr,
    std::io::PipeReader
);

impl<T: Waitable + ?Sized> Waitable for &T {
    fn wait_fd(&self) -> Result<BorrowedFd<'_>> {
        (**self).wait_fd()
    }

    fn has_buffered(&self) -> bool {
        (**self).has_buffered()
    }

    fn settle(&self) -> Result<bool> {
        (**self).settle()
    }
}

/// Owning and mutable handles forward everything, `pump` included.
macro_rules! forward_waitable {
    ($($t:ty),*) => {$(
        impl<T: Waitable + ?Sized> Waitable for $t {
            fn wait_fd(&self) -> Result<BorrowedFd<'_>> {
                (**self).wait_fd()
            }

            fn has_buffered(&self) -> bool {
                (**self).has_buffered()
            }

            fn pump(&mut self) -> Result<bool> {
                (**self).pump()
            }

            fn settle(&self) -> Result<bool> {
                (**self).settle()
            }
        }
    )*};
}

forward_waitable!(Box<T>, &mut T);

/// Waits until at least one object is ready, or `timeout` passes (CPython's `wait`), and returns
/// the positions of the ready ones, in input order.
///
/// Ready means a receive would not block: a message buffered, bytes waiting, or the peer hung
/// up (its EOF must be read). `timeout`: `None` waits with no limit; `Some(Duration::ZERO)` (what
/// CPython's zero or negative timeout means) just looks. An empty list sleeps for the timeout.
///
/// Errors: a closed connection is [`Error::Closed`]; the same fd twice is
/// [`Error::DuplicateObject`] (CPython's `KeyError`).
///
/// Each call is one `poll(2)` over all the objects, O(n), as in CPython; to wait on the same
/// objects many times, a [`WaitSet`] (mio) costs O(ready) per wait instead.
pub fn wait(objects: &[&dyn Waitable], timeout: Option<Duration>) -> Result<Vec<usize>> {
    let mut fds = Vec::with_capacity(objects.len());
    let mut buffered = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        fds.push(object.wait_fd()?);
        if object.has_buffered() {
            buffered.push(index);
        }
    }
    // The same fd twice is CPython's KeyError; report the later position.
    let mut sorted: Vec<(RawFd, usize)> = fds
        .iter()
        .enumerate()
        .map(|(i, fd)| (fd.as_raw_fd(), i))
        .collect();
    sorted.sort_unstable();
    if let Some(dup) = sorted.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(Error::DuplicateObject { index: dup[1].1 });
    }
    let timeout = if buffered.is_empty() {
        timeout
    } else {
        Some(Duration::ZERO)
    };
    if objects.is_empty() {
        if let Some(t) = timeout {
            std::thread::sleep(t);
        }
        return Ok(buffered);
    }
    let deadline = conn_transport::deadline_after(timeout);
    loop {
        let left = conn_transport::time_left(deadline).or(timeout);
        let mut ready = wait_readable_many(&fds, left)?;
        // A listener reported readable first finishes what it can.
        let mut settled = Vec::with_capacity(ready.len());
        for i in ready.drain(..) {
            if objects[i].settle()? {
                settled.push(i);
            }
        }
        settled.extend(buffered.iter().copied());
        settled.sort_unstable();
        settled.dedup();
        let expired = left.is_some_and(|l| l.is_zero())
            || deadline.is_some_and(|d| std::time::Instant::now() >= d);
        if !settled.is_empty() || expired {
            return Ok(settled);
        }
    }
}

/// A key for an object in a [`WaitSet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WaitKey(usize);

/// A persistent `wait`: objects are registered once and waited on many times, at a cost per
/// wait that grows with the objects ready, not with those registered (CPython rebuilds its poll
/// set on every call).
///
/// The set owns its objects, so it sees every receive made through
/// [`get_mut`](Self::get_mut) and can count messages left buffered in user space.
#[derive(Debug)]
pub struct WaitSet<T> {
    poller: Poller,
    slots: Vec<Option<T>>,
    free: Vec<usize>,
    /// Keys to look at again at the next wait: reported ready last time, or lent out mutably.
    recheck: Vec<usize>,
    events: Vec<Ready>,
}

impl<T: Waitable> WaitSet<T> {
    /// An empty set.
    pub fn new() -> Result<Self> {
        Ok(Self {
            poller: Poller::new()?,
            slots: Vec::new(),
            free: Vec::new(),
            recheck: Vec::new(),
            events: Vec::new(),
        })
    }

    /// Adds an object. The same fd twice is [`Error::DuplicateObject`].
    pub fn insert(&mut self, object: T) -> Result<WaitKey> {
        let key = self.free.pop().unwrap_or(self.slots.len());
        let added = self.poller.add(object.wait_fd()?, key);
        if let Err(e) = added {
            if key < self.slots.len() {
                self.free.push(key);
            }
            return Err(match e.kind() {
                std::io::ErrorKind::AlreadyExists => Error::DuplicateObject { index: key },
                _ => Error::Io(e),
            });
        }
        if key == self.slots.len() {
            self.slots.push(Some(object));
        } else {
            self.slots[key] = Some(object);
        }
        // It may be ready (or hold buffered messages) already.
        self.recheck.push(key);
        Ok(WaitKey(key))
    }

    /// Removes an object and gives it back.
    pub fn remove(&mut self, key: WaitKey) -> Option<T> {
        let object = self.slots.get_mut(key.0)?.take()?;
        if let Ok(fd) = object.wait_fd() {
            let _ = self.poller.remove(fd);
        }
        self.free.push(key.0);
        Some(object)
    }

    /// The object under `key`.
    pub fn get(&self, key: WaitKey) -> Option<&T> {
        self.slots.get(key.0)?.as_ref()
    }

    /// The object under `key`, to receive from.
    pub fn get_mut(&mut self, key: WaitKey) -> Option<&mut T> {
        let object = self.slots.get_mut(key.0)?.as_mut()?;
        self.recheck.push(key.0);
        Some(object)
    }

    /// How many objects are registered.
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Whether no object is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until at least one object is ready or `timeout` passes (`None`: no limit; zero: just
    /// look), and returns the ready keys in ascending order.
    ///
    /// Ready means a receive (or an accept) would not wait: when an object's handle is reported
    /// readable, the set lets it take in what has arrived ([`Waitable::pump`]); a connection
    /// holding only part of a message is not reported until the rest is there, so one peer that
    /// sends half a frame and stops delays no one. (The free function [`wait`] keeps CPython's
    /// handle readiness.)
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<Vec<WaitKey>> {
        let deadline = conn_transport::deadline_after(timeout);
        let mut ready = Vec::new();
        self.recheck.sort_unstable();
        self.recheck.dedup();
        for key in self.recheck.drain(..) {
            let Some(Some(object)) = self.slots.get(key) else {
                continue;
            };
            if object.has_buffered() {
                ready.push(key);
            }
            // mio reports edges: ask for a fresh report if the handle is still readable.
            if let Ok(fd) = object.wait_fd() {
                self.poller.rearm(fd, key);
            }
        }
        loop {
            let left = if ready.is_empty() {
                conn_transport::time_left(deadline).or(timeout)
            } else {
                Some(Duration::ZERO)
            };
            self.events.clear();
            self.poller.wait(&mut self.events, left)?;
            for event in &self.events {
                let Some(Some(object)) = self.slots.get_mut(event.key) else {
                    continue;
                };
                // An error is the object's to report when it is used: ready.
                if object.pump().unwrap_or(true) {
                    ready.push(event.key);
                } else {
                    // Part of a message: look again (a fresh report) at the next wait.
                    self.recheck.push(event.key);
                }
            }
            let expired = left.is_some_and(|l| l.is_zero())
                || deadline.is_some_and(|d| std::time::Instant::now() >= d);
            if !ready.is_empty() || expired {
                break;
            }
            for &key in &self.recheck {
                if let Some(Some(object)) = self.slots.get(key) {
                    if let Ok(fd) = object.wait_fd() {
                        self.poller.rearm(fd, key);
                    }
                }
            }
        }
        ready.sort_unstable();
        ready.dedup();
        ready.retain(|&key| matches!(self.slots.get(key), Some(Some(_))));
        self.recheck.extend_from_slice(&ready);
        Ok(ready.into_iter().map(WaitKey).collect())
    }
}
