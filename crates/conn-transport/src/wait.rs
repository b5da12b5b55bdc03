//! `wait` over many objects (CPython's `multiprocessing.connection.wait`) and `WaitSet`, its
//! persistent form.

use std::time::Duration;

use crate::Handle;
use crate::os::{Poller, Ready, wait_readable_many};
use conn_framing::Codec;

use crate::slab::{Key, Slab};
use crate::{Connection, DefaultCodec, Error, Listener, Result};

/// Something `wait` can wait on: connections, receivers, listeners (ready when a client waits),
/// and raw handles and sockets.
pub trait Waitable {
    /// The handle to watch (opaque, the same type on every OS).
    fn wait_handle(&self) -> Result<Handle<'_>>;

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
    /// connections); a [`Listener`] first finishes the handshakes it can, and is ready only when
    /// `accept` would return at once.
    fn settle(&self) -> Result<bool> {
        Ok(true)
    }
}

impl Waitable for Handle<'_> {
    fn wait_handle(&self) -> Result<Handle<'_>> {
        Ok(*self)
    }
}

impl Waitable for crate::os::Sentinel {
    /// Ready once the process has exited (CPython: `wait([process.sentinel])`).
    fn wait_handle(&self) -> Result<Handle<'_>> {
        Ok(self.handle())
    }
}

#[cfg(unix)]
mod unix_impls {
    use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
    use std::os::unix::net::{UnixListener, UnixStream};

    use super::{Handle, Result, Waitable};

    macro_rules! waitable_as_fd {
        ($($t:ty),*) => {$(
            impl Waitable for $t {
                fn wait_handle(&self) -> Result<Handle<'_>> {
                    Ok(Handle::from(self.as_fd()))
                }
            }
        )*};
    }

    waitable_as_fd!(
        BorrowedFd<'_>,
        OwnedFd,
        std::net::TcpStream,
        std::net::TcpListener,
        UnixStream,
        UnixListener,
        std::process::ChildStdout,
        std::process::ChildStderr,
        std::io::PipeReader
    );
}

/// Windows: sockets are ready when readable (a listening socket when a client waits); waiting
/// on one ties it to an event for the wait, which leaves it non-blocking (`WSAEventSelect`).
/// Process handles are ready when the process has exited.
#[cfg(windows)]
mod windows_impls {
    use std::os::windows::io::{AsHandle, AsSocket, BorrowedHandle, BorrowedSocket};

    use super::{Handle, Result, Waitable};

    macro_rules! waitable_as_socket {
        ($($t:ty),*) => {$(
            impl Waitable for $t {
                fn wait_handle(&self) -> Result<Handle<'_>> {
                    Ok(Handle::from(self.as_socket()))
                }
            }
        )*};
    }

    waitable_as_socket!(
        BorrowedSocket<'_>,
        std::net::TcpStream,
        std::net::TcpListener
    );

    impl Waitable for BorrowedHandle<'_> {
        fn wait_handle(&self) -> Result<Handle<'_>> {
            Ok(Handle::from(self.as_handle()))
        }
    }

    impl Waitable for std::process::Child {
        fn wait_handle(&self) -> Result<Handle<'_>> {
            Ok(Handle::from(self.as_handle()))
        }
    }
}

impl<T: Waitable + ?Sized> Waitable for &T {
    fn wait_handle(&self) -> Result<Handle<'_>> {
        (**self).wait_handle()
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
            fn wait_handle(&self) -> Result<Handle<'_>> {
                (**self).wait_handle()
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

/// A listener or one of its connections: what a single-threaded server keeps in one
/// [`WaitSet`], with nothing to write (every [`Waitable`] method is forwarded, so no buffered
/// message can be missed).
///
/// ```no_run
/// # fn main() -> conn_transport::Result<()> {
/// use conn_transport::{Endpoint, Listener, WaitSet};
/// let mut set = WaitSet::new()?;
/// set.insert(Endpoint::from(Listener::bind("127.0.0.1:6000")?))?;
/// for key in set.wait(None)? {
///     match set.get_mut(key) {
///         Some(Endpoint::Listener(l)) => {
///             let c = l.accept()?;
///             set.insert(Endpoint::from(c))?;
///         }
///         Some(Endpoint::Connection(c)) => {
///             let msg: String = c.recv()?;
///             c.send(&msg)?;
///         }
///         _ => {}
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub enum Endpoint<C = DefaultCodec> {
    /// A listener (boxed: it is ten times a connection's size): ready when `accept` would
    /// return at once.
    Listener(Box<Listener<C>>),
    /// A connection: ready when a whole message (or EOF, or an error) is there.
    Connection(Connection<C>),
}

impl<C> From<Listener<C>> for Endpoint<C> {
    fn from(l: Listener<C>) -> Self {
        Self::Listener(Box::new(l))
    }
}

impl<C> From<Connection<C>> for Endpoint<C> {
    fn from(c: Connection<C>) -> Self {
        Self::Connection(c)
    }
}

impl<C: Codec + Clone> Waitable for Endpoint<C> {
    fn wait_handle(&self) -> Result<Handle<'_>> {
        match self {
            Self::Listener(l) => l.wait_handle(),
            Self::Connection(c) => c.wait_handle(),
        }
    }

    fn has_buffered(&self) -> bool {
        match self {
            Self::Listener(l) => l.has_buffered(),
            Self::Connection(c) => c.has_buffered(),
        }
    }

    fn pump(&mut self) -> Result<bool> {
        match self {
            Self::Listener(l) => l.pump(),
            Self::Connection(c) => c.pump(),
        }
    }

    fn settle(&self) -> Result<bool> {
        match self {
            Self::Listener(l) => l.settle(),
            Self::Connection(c) => c.settle(),
        }
    }
}

/// Waits until at least one object is ready, or `timeout` passes (CPython's `wait`), and returns
/// the positions of the ready ones, in input order.
///
/// `objects` is anything that lists waitable objects: `&[Connection]`, `&Vec<&Connection>`,
/// `[&a as &dyn Waitable, &b]` for a mix, an iterator.
///
/// Ready means a receive would not block: a message buffered, bytes waiting, or the peer hung
/// up (its EOF must be read). `timeout`: `None` waits with no limit; `Some(Duration::ZERO)` (what
/// CPython's zero or negative timeout means) just looks. An empty list sleeps for the timeout.
///
/// Errors: a closed object is [`Error::Closed`]; the same handle twice is
/// [`Error::DuplicateObject`] (CPython's `KeyError`).
///
/// Each call is one `poll(2)` over all the objects, O(n), as in CPython; to wait on the same
/// objects many times, a [`WaitSet`] (mio) costs O(ready) per wait instead. On Windows each
/// call arms every object and waits on their events (`WaitForMultipleObjects`, helper threads
/// above 64 objects, as CPython 3.12): O(n) there, for a `WaitSet` too.
pub fn wait<I>(objects: I, timeout: Option<Duration>) -> Result<Vec<usize>>
where
    I: IntoIterator,
    I::Item: Waitable,
{
    let objects: Vec<I::Item> = objects.into_iter().collect();
    let mut fds = Vec::with_capacity(objects.len());
    let mut buffered = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        fds.push(object.wait_handle()?);
        if object.has_buffered() {
            buffered.push(index);
        }
    }
    // The same handle twice is CPython's KeyError; report the later position.
    let mut sorted: Vec<(u64, usize)> = fds.iter().enumerate().map(|(i, h)| (h.id(), i)).collect();
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
    let deadline = crate::deadline_after(timeout);
    loop {
        let left = crate::time_left(deadline).or(timeout);
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

/// A key for an object in a [`WaitSet`]. Keys are never reused: once its object is removed, a
/// key addresses nothing, even after another object takes its place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WaitKey(Key);

/// Why [`WaitSet::insert`] refused an object, with the object given back.
pub struct InsertError<T> {
    object: T,
    error: Error,
}

impl<T> InsertError<T> {
    /// Why it was refused.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The object, given back.
    pub fn into_object(self) -> T {
        self.object
    }

    /// The object and why it was refused.
    pub fn into_parts(self) -> (T, Error) {
        (self.object, self.error)
    }
}

impl<T> std::fmt::Debug for InsertError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InsertError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<T> std::fmt::Display for InsertError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot add the object to the wait set: {}", self.error)
    }
}

impl<T> std::error::Error for InsertError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<T> From<InsertError<T>> for Error {
    /// Drops the object, keeps the reason.
    fn from(e: InsertError<T>) -> Self {
        e.error
    }
}

/// A persistent `wait`: objects are registered once and waited on many times, at a cost per
/// wait that grows with the objects ready, not with those registered (CPython rebuilds its poll
/// set on every call). On Windows, where no system call reports pipes, sockets and processes
/// together by readiness, each wait arms and waits on every registered object: O(registered).
///
/// The set owns its objects, so it sees every receive made through
/// [`get_mut`](Self::get_mut) and can count messages left buffered in user space. A listener
/// and its connections go in one set as [`Endpoint`]s.
///
/// Readiness is level-triggered as seen from here, over mio's edge-triggered reports: every
/// object reported by a wait, lent out by `get_mut`, or just inserted is re-armed before the
/// next wait (`EPOLL_CTL_MOD` / `EV_ADD` re-evaluates the handle's current state and reports
/// it if ready). An object can only have readiness left unreported after it was reported or
/// lent out (edges are only consumed by being reported), and those are exactly the objects
/// re-armed; so an object that is still ready is reported again, and none is lost.
pub struct WaitSet<T> {
    poller: Poller,
    objects: Slab<T>,
    /// Keys to look at again at the next wait: reported ready last time, or lent out mutably.
    recheck: Vec<WaitKey>,
    events: Vec<Ready>,
}

impl<T> std::fmt::Debug for WaitSet<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitSet")
            .field("len", &self.objects.len())
            .finish_non_exhaustive()
    }
}

impl<T: Waitable> WaitSet<T> {
    /// An empty set.
    pub fn new() -> Result<Self> {
        Ok(Self {
            poller: Poller::new()?,
            objects: Slab::default(),
            recheck: Vec::new(),
            events: Vec::new(),
        })
    }

    /// Adds an object. A closed object, or the same handle as an object already in the set
    /// ([`Error::DuplicateObject`]), is refused and given back in the error; the set is left
    /// as it was.
    pub fn insert(&mut self, object: T) -> std::result::Result<WaitKey, InsertError<T>> {
        let Some(key) = self.objects.vacant_key() else {
            let error = Error::Io(std::io::Error::other("wait set is full"));
            return Err(InsertError { object, error });
        };
        let added = match object.wait_handle() {
            Ok(handle) => self
                .poller
                .add(handle, key.token())
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::AlreadyExists => Error::DuplicateObject {
                        index: self.objects.len(),
                    },
                    _ => Error::Io(e),
                }),
            Err(e) => Err(e),
        };
        if let Err(error) = added {
            return Err(InsertError { object, error });
        }
        let key = match self.objects.insert(object) {
            Ok(key) => WaitKey(key),
            Err(object) => {
                let error = Error::Io(std::io::Error::other("wait set is full"));
                return Err(InsertError { object, error });
            }
        };
        // It may be ready (or hold buffered messages) already.
        self.recheck.push(key);
        Ok(key)
    }

    /// Removes an object and gives it back; `None` for a key whose object is gone.
    pub fn remove(&mut self, key: WaitKey) -> Option<T> {
        // The key is spent: a report still queued for it, or one from a duplicate of its
        // handle, no longer matches.
        let object = self.objects.remove(key.0)?;
        if let Ok(handle) = object.wait_handle() {
            let _ = self.poller.remove(handle);
        }
        Some(object)
    }

    /// The object under `key`.
    pub fn get(&self, key: WaitKey) -> Option<&T> {
        self.objects.get(key.0)
    }

    /// The object under `key`, to receive from.
    pub fn get_mut(&mut self, key: WaitKey) -> Option<&mut T> {
        let object = self.objects.get_mut(key.0)?;
        self.recheck.push(key);
        Some(object)
    }

    /// How many objects are registered.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether no object is registered.
    pub fn is_empty(&self) -> bool {
        self.objects.len() == 0
    }

    /// The keys and objects in the set.
    pub fn iter(&self) -> impl Iterator<Item = (WaitKey, &T)> {
        self.objects.iter().map(|(k, o)| (WaitKey(k), o))
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
        let deadline = crate::deadline_after(timeout);
        let mut ready = Vec::new();
        self.recheck.sort_unstable();
        self.recheck.dedup();
        let recheck = std::mem::take(&mut self.recheck);
        for &key in &recheck {
            let Some(object) = self.objects.get(key.0) else {
                continue;
            };
            if object.has_buffered() {
                ready.push(key);
            }
            // mio reports edges: ask for a fresh report if the handle is still readable.
            if let Ok(handle) = object.wait_handle() {
                self.poller.rearm(handle, key.0.token());
            }
        }
        loop {
            let left = if ready.is_empty() {
                crate::time_left(deadline).or(timeout)
            } else {
                Some(Duration::ZERO)
            };
            self.events.clear();
            self.poller.wait(&mut self.events, left)?;
            for i in 0..self.events.len() {
                let key = WaitKey(Key::from_token(self.events[i].key()));
                let Some(object) = self.objects.get_mut(key.0) else {
                    continue;
                };
                // An error is the object's to report when it is used: ready.
                if object.pump().unwrap_or(true) {
                    ready.push(key);
                } else {
                    // Part of a message: look again (a fresh report) at the next wait.
                    self.recheck.push(key);
                }
            }
            let expired = left.is_some_and(|l| l.is_zero())
                || deadline.is_some_and(|d| std::time::Instant::now() >= d);
            if !ready.is_empty() || expired {
                break;
            }
            for i in 0..self.recheck.len() {
                let key = self.recheck[i];
                if let Some(object) = self.objects.get(key.0) {
                    if let Ok(handle) = object.wait_handle() {
                        self.poller.rearm(handle, key.0.token());
                    }
                }
            }
        }
        ready.sort_unstable();
        ready.dedup();
        ready.retain(|&key| self.objects.get(key.0).is_some());
        self.recheck.extend_from_slice(&ready);
        Ok(ready)
    }
}
