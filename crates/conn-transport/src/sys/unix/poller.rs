//! Readiness: one handle with a timeout ([`wait_readable`]), and many handles in a persistent
//! mio registry ([`Poller`]).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::calls;
use crate::Handle;
use crate::os::Ready;

/// Whether `fd` is readable or hung up, waiting at most `timeout` (`None`: forever). One
/// `poll(2)` call; `EINTR` is retried with the time left.
pub(crate) fn wait_readable(handle: Handle<'_>, timeout: Option<Duration>) -> io::Result<bool> {
    calls::poll_readable(handle.fd(), timeout)
}

/// Which of `fds` are readable or hung up (positions, in input order), waiting at most `timeout`
/// (`None`: forever; zero: just look) until at least one is. One `poll(2)` call whatever the
/// number of fds: the cheapest way to wait once on many handles (a [`Poller`] pays one
/// registration per fd, which only pays off when it is waited on many times).
pub(crate) fn wait_readable_many(
    handles: &[Handle<'_>],
    timeout: Option<Duration>,
) -> io::Result<Vec<usize>> {
    calls::poll_many(handles, timeout)
}

/// A persistent registry of fds to wait on (mio: epoll on Linux, kqueue on BSD/macOS).
///
/// mio reports edges, not levels: an fd is reported when it becomes ready. To give `wait`'s
/// level semantics (an fd still readable is reported again), every fd reported by one
/// [`wait`](Self::wait) is re-armed at the start of the next, at a cost that grows with the
/// fds reported, not with the fds registered.
#[derive(Debug)]
pub(crate) struct Poller {
    poll: Poll,
    events: Events,
    rearm: Vec<(RawFd, usize)>,
}

impl std::os::fd::AsFd for Poller {
    /// The registry's own handle (an epoll or kqueue fd): readable when a registered fd has
    /// something to report, so a `Poller` can itself be waited on.
    fn as_fd(&self) -> BorrowedFd<'_> {
        calls::borrow_poll(&self.poll)
    }
}

impl Poller {
    /// The registry's own handle, readable when a registered handle has something to report.
    pub(crate) fn handle(&self) -> Handle<'_> {
        Handle::from(calls::borrow_poll(&self.poll))
    }
}

impl Poller {
    /// An empty registry.
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Self {
            poll: Poll::new()?,
            events: Events::with_capacity(1024),
            rearm: Vec::new(),
        })
    }

    /// Registers `fd` for readability under `key`. The same fd twice is `AlreadyExists`
    /// (CPython's `KeyError`). The fd must stay open until [`remove`](Self::remove).
    pub(crate) fn add(&mut self, handle: Handle<'_>, key: usize) -> io::Result<()> {
        self.poll.registry().register(
            &mut SourceFd(&handle.as_raw_fd()),
            Token(key),
            Interest::READABLE,
        )
    }

    /// Deregisters `fd`.
    pub(crate) fn remove(&mut self, handle: Handle<'_>) -> io::Result<()> {
        let raw = handle.as_raw_fd();
        self.rearm.retain(|(r, _)| *r != raw);
        self.poll.registry().deregister(&mut SourceFd(&raw))
    }

    /// Re-registers `fd` now, so that it is reported (and the registry's own handle is
    /// readable) if it is still ready.
    pub(crate) fn rearm_now(&mut self, handle: Handle<'_>, key: usize) -> io::Result<()> {
        self.poll.registry().reregister(
            &mut SourceFd(&handle.as_raw_fd()),
            Token(key),
            Interest::READABLE,
        )
    }

    /// Asks that `fd` be reported again at the next wait if it is still ready. mio reports edges:
    /// call this for every fd a wait reported (and not removed) to keep level semantics.
    pub(crate) fn rearm(&mut self, handle: Handle<'_>, key: usize) {
        self.rearm.push((handle.as_raw_fd(), key));
    }

    /// Waits until at least one fd is ready or `timeout` passes (`None`: forever; zero: just
    /// look), and appends the ready keys to `ready`. Readable, hung-up and errored fds all count.
    pub(crate) fn wait(
        &mut self,
        ready: &mut Vec<Ready>,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        for (fd, key) in self.rearm.drain(..) {
            // An fd deregistered meanwhile gives ENOENT; there is nothing to re-arm then.
            let _ =
                self.poll
                    .registry()
                    .reregister(&mut SourceFd(&fd), Token(key), Interest::READABLE);
        }
        let deadline = crate::deadline_after(timeout);
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            match self.poll.poll(&mut self.events, left) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let before = ready.len();
            for event in &self.events {
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    ready.push(Ready {
                        key: event.token().0,
                    });
                }
            }
            if ready.len() > before || left.is_some_and(|l| l.is_zero()) {
                break;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
        }
        Ok(())
    }
}

impl std::os::fd::AsFd for crate::os::Poller {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::AsFd;

    use super::super::stream::Stream;
    use super::*;

    #[test]
    fn reports_ready_fds_again_while_they_stay_ready() {
        let pairs: Vec<_> = (0..5).map(|_| Stream::pair().unwrap()).collect();
        let mut p = Poller::new().unwrap();
        for (i, (a, _)) in pairs.iter().enumerate() {
            p.add(a.as_fd().into(), i).unwrap();
        }
        let mut ready = Vec::new();
        p.wait(&mut ready, Some(Duration::ZERO)).unwrap();
        assert!(ready.is_empty());
        (&pairs[3].1).write_all(b"x").unwrap();
        p.wait(&mut ready, Some(Duration::from_secs(5))).unwrap();
        assert_eq!(ready, vec![Ready { key: 3 }]);
        // Not drained: without re-arming, an edge-triggered poller would stay silent.
        p.rearm(pairs[3].0.as_fd().into(), 3);
        ready.clear();
        p.wait(&mut ready, Some(Duration::ZERO)).unwrap();
        assert_eq!(ready, vec![Ready { key: 3 }]);
    }

    #[test]
    fn duplicates_are_refused_and_timeouts_end() {
        let (a, _b) = Stream::pair().unwrap();
        let mut p = Poller::new().unwrap();
        p.add(a.as_fd().into(), 0).unwrap();
        assert_eq!(
            p.add(a.as_fd().into(), 1).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        let mut ready = Vec::new();
        let start = Instant::now();
        p.wait(&mut ready, Some(Duration::from_millis(50))).unwrap();
        assert!(ready.is_empty());
        assert!(start.elapsed() >= Duration::from_millis(50));
    }
}
