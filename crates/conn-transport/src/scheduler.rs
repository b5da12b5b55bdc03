//! The accept engine's decisions, without sockets or a clock (sans-IO): which clients may start
//! a handshake (the pending cap), which pending handshake a readiness report is for (keys that
//! are never reused), when the next deadline falls and which handshakes have run out of time,
//! when `accept(2)` may be tried again after the process ran out of descriptors (a backoff that
//! doubles from 10 ms to 1 s), the queue of connections ready to hand out, and the bounded list
//! of reasons for failed handshakes. The listener's shell adds only the system calls (accept,
//! the poller, reads and writes) and `Instant::now()`; tests drive this core with made-up
//! instants.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::Error;
use crate::slab::{Key, Slab};

/// The first wait after running out of descriptors; it doubles up to [`MAX_FD_BACKOFF`].
pub(crate) const FIRST_FD_BACKOFF: Duration = Duration::from_millis(10);
/// The longest wait between accept attempts while out of descriptors.
pub(crate) const MAX_FD_BACKOFF: Duration = Duration::from_secs(1);
/// How many reasons for failed handshakes are kept; older ones are dropped and counted.
pub(crate) const KEPT_FAILURES: usize = 64;

/// A handshake in progress and its deadline.
#[derive(Debug)]
struct Pending<T> {
    handshake: T,
    deadline: Option<Instant>,
}

/// The accept engine's state: `T` is a handshake in progress, `R` a connection ready to hand out.
#[derive(Debug)]
pub struct Scheduler<T, R> {
    pending: Slab<Pending<T>>,
    max_pending: usize,
    ready: VecDeque<R>,
    /// Out of descriptors: no accept before this instant; the current backoff.
    backoff: Option<(Instant, Duration)>,
    /// The listening socket may have clients waiting (it was reported, or a round was full).
    listener_ready: bool,
    failures: u64,
    reasons: VecDeque<Error>,
    reasons_dropped: u64,
}

impl<T, R> Scheduler<T, R> {
    /// An engine that lets at most `max_pending` handshakes run at once.
    pub fn new(max_pending: usize) -> Self {
        Self {
            pending: Slab::default(),
            max_pending,
            ready: VecDeque::new(),
            backoff: None,
            listener_ready: false,
            failures: 0,
            reasons: VecDeque::new(),
            reasons_dropped: 0,
        }
    }

    /// Starts tracking a handshake that must end by `deadline`; its key (a poller token with
    /// [`Key::token`]) addresses it until it ends. A client beyond the pending cap is refused,
    /// counted as a failure, and given back to be closed.
    pub fn admit(&mut self, handshake: T, deadline: Option<Instant>) -> Result<Key, T> {
        if self.pending.len() >= self.max_pending {
            self.fail(Error::TooManyPendingHandshakes {
                max: self.max_pending,
            });
            return Err(handshake);
        }
        self.pending
            .insert(Pending {
                handshake,
                deadline,
            })
            .map_err(|p| p.handshake)
    }

    /// The handshake a readiness report with `token` is for; `None` for a report about a
    /// handshake that has ended (its key is spent, even if its slot is in use again).
    pub fn on_readable(&mut self, token: usize) -> Option<&mut T> {
        self.pending
            .get_mut(Key::from_token(token))
            .map(|p| &mut p.handshake)
    }

    /// The handshake under `key`.
    pub fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        self.pending.get_mut(key).map(|p| &mut p.handshake)
    }

    /// Ends the handshake under `key` (it succeeded, or the shell gives it up), handing it back.
    pub fn finish(&mut self, key: Key) -> Option<T> {
        self.pending.remove(key).map(|p| p.handshake)
    }

    /// Ends the handshake under `key` as failed for `reason`, handing it back to be closed.
    pub fn fail_pending(&mut self, key: Key, reason: Error) -> Option<T> {
        let handshake = self.finish(key)?;
        self.fail(reason);
        Some(handshake)
    }

    /// The earliest deadline of the handshakes in progress.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.iter().filter_map(|(_, p)| p.deadline).min()
    }

    /// How long a wait at `now` may last: at most `wait` (`None`: no limit), and no later than
    /// the next deadline.
    pub fn wait_limit(&self, wait: Option<Duration>, now: Instant) -> Option<Duration> {
        let until_deadline = self
            .next_deadline()
            .map(|d| d.saturating_duration_since(now));
        match (wait, until_deadline) {
            (Some(w), Some(d)) => Some(w.min(d)),
            (w, None) => w,
            (None, d) => d,
        }
    }

    /// Ends every handshake whose deadline has come by `now`, each counted as timed out, and
    /// hands them back to be closed.
    pub fn expire(&mut self, now: Instant) -> Vec<T> {
        let expired = self
            .pending
            .take_where(|p| p.deadline.is_some_and(|d| now >= d));
        for _ in &expired {
            self.fail(Error::Timeout {
                operation: crate::Operation::Handshake,
            });
        }
        expired.into_iter().map(|p| p.handshake).collect()
    }

    /// How many handshakes are in progress.
    pub fn in_progress(&self) -> usize {
        self.pending.len()
    }

    /// The listening socket was reported readable (or a round of accepts was cut short).
    pub fn listener_readable(&mut self) {
        self.listener_ready = true;
    }

    /// Whether `accept(2)` should be tried at `now`: not while backing off; afterwards, once
    /// whether or not the socket was reported; otherwise only when it was.
    pub fn may_accept(&self, now: Instant) -> bool {
        match self.backoff {
            Some((until, _)) => now >= until,
            None => self.listener_ready,
        }
    }

    /// The instant the current backoff ends (it may have passed: the backoff then still sets
    /// the next one's length until a client is accepted); `None` if not backing off.
    pub fn accept_after(&self) -> Option<Instant> {
        self.backoff.map(|(until, _)| until)
    }

    /// `accept(2)` gave a client: any backoff is over.
    pub fn accepted(&mut self) {
        self.backoff = None;
    }

    /// `accept(2)` found no client waiting.
    pub fn drained(&mut self) {
        self.listener_ready = false;
    }

    /// `accept(2)` failed for want of descriptors at `now`: no accept before the instant
    /// returned (the backoff doubles each time, from [`FIRST_FD_BACKOFF`] to
    /// [`MAX_FD_BACKOFF`]).
    pub fn out_of_fds(&mut self, now: Instant) -> Instant {
        let next = self
            .backoff
            .map_or(FIRST_FD_BACKOFF, |(_, d)| (d * 2).min(MAX_FD_BACKOFF));
        let until = now + next;
        self.backoff = Some((until, next));
        until
    }

    /// A connection ready to be handed out by `accept`.
    pub fn push_ready(&mut self, ready: R) {
        self.ready.push_back(ready);
    }

    /// The oldest connection ready to be handed out.
    pub fn pop_ready(&mut self) -> Option<R> {
        self.ready.pop_front()
    }

    /// Whether `accept` would return at once.
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// A client's handshake failed (or it was refused): counted, and its reason kept, the
    /// oldest kept reason dropped (and counted) beyond [`KEPT_FAILURES`].
    pub fn fail(&mut self, reason: Error) {
        self.failures += 1;
        if self.reasons.len() >= KEPT_FAILURES {
            self.reasons.pop_front();
            self.reasons_dropped += 1;
        }
        self.reasons.push_back(reason);
    }

    /// How many handshakes have failed.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// The oldest kept reason, taken.
    pub fn take_failure(&mut self) -> Option<Error> {
        self.reasons.pop_front()
    }

    /// Every kept reason, oldest first, taken.
    pub fn take_failures(&mut self) -> Vec<Error> {
        self.reasons.drain(..).collect()
    }

    /// How many reasons were dropped to keep the list bounded.
    pub fn failures_dropped(&self) -> u64 {
        self.reasons_dropped
    }

    /// Forgets every handshake in progress and every ready connection (the listener closes).
    pub fn clear(&mut self) {
        self.pending.clear();
        self.ready.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{FIRST_FD_BACKOFF, KEPT_FAILURES, MAX_FD_BACKOFF, Scheduler};
    use crate::{Error, Operation};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_pending_cap_refuses_and_counts_the_client_beyond_it() {
        let mut s: Scheduler<u32, u32> = Scheduler::new(2);
        let a = s.admit(1, None).unwrap();
        s.admit(2, None).unwrap();
        assert_eq!(
            s.admit(3, None),
            Err(3),
            "the third is given back to be closed"
        );
        assert_eq!(s.in_progress(), 2);
        assert_eq!(s.failures(), 1);
        assert!(matches!(
            s.take_failure(),
            Some(Error::TooManyPendingHandshakes { max: 2 })
        ));
        assert_eq!(s.finish(a), Some(1));
        assert!(
            s.admit(4, None).is_ok(),
            "a finished handshake frees its place"
        );
    }

    #[test]
    fn a_report_for_an_ended_handshake_reaches_no_one() {
        let mut s: Scheduler<&str, ()> = Scheduler::new(8);
        let old = s.admit("old", None).unwrap();
        assert_eq!(s.fail_pending(old, Error::Eof), Some("old"));
        let new = s.admit("new", None).unwrap();
        assert_eq!(s.on_readable(new.token()).copied(), Some("new"));
        if cfg!(target_pointer_width = "64") {
            assert_eq!(s.on_readable(old.token()), None, "a stale report");
        }
        assert_eq!(s.failures(), 1);
    }

    #[test]
    fn deadlines_bound_the_wait_and_expire_their_handshakes_only() {
        let t0 = Instant::now();
        let mut s: Scheduler<u32, u32> = Scheduler::new(8);
        s.admit(1, Some(t0 + ms(300))).unwrap();
        s.admit(2, Some(t0 + ms(100))).unwrap();
        s.admit(3, None).unwrap();
        assert_eq!(s.next_deadline(), Some(t0 + ms(100)));
        assert_eq!(s.wait_limit(None, t0), Some(ms(100)));
        assert_eq!(s.wait_limit(Some(ms(40)), t0), Some(ms(40)));
        assert_eq!(s.wait_limit(Some(ms(500)), t0 + ms(50)), Some(ms(50)));
        assert_eq!(s.expire(t0 + ms(99)), Vec::<u32>::new());
        assert_eq!(s.expire(t0 + ms(100)), vec![2]);
        assert_eq!(s.next_deadline(), Some(t0 + ms(300)));
        assert_eq!(s.expire(t0 + ms(1000)), vec![1]);
        assert_eq!(s.in_progress(), 1, "no deadline, no expiry");
        assert_eq!(s.wait_limit(None, t0), None);
        let reasons = s.take_failures();
        assert_eq!(reasons.len(), 2);
        assert!(reasons.iter().all(|e| matches!(
            e,
            Error::Timeout {
                operation: Operation::Handshake
            }
        )));
    }

    #[test]
    fn running_out_of_descriptors_backs_off_doubling_to_a_second() {
        let t0 = Instant::now();
        let mut s: Scheduler<(), ()> = Scheduler::new(1);
        assert!(!s.may_accept(t0), "nothing reported yet");
        s.listener_readable();
        assert!(s.may_accept(t0));
        let mut now = t0;
        let mut waits = Vec::new();
        for _ in 0..9 {
            let until = s.out_of_fds(now);
            waits.push(until - now);
            assert!(!s.may_accept(until - ms(1)));
            assert!(
                s.may_accept(until),
                "after the backoff, accept is tried again"
            );
            now = until;
        }
        assert_eq!(waits[0], FIRST_FD_BACKOFF);
        assert_eq!(waits[1], FIRST_FD_BACKOFF * 2);
        assert_eq!(*waits.last().unwrap(), MAX_FD_BACKOFF);
        assert!(waits.windows(2).all(|w| w[1] >= w[0]));
        s.accepted();
        s.drained();
        assert!(!s.may_accept(now), "over: back to waiting for a report");
        assert_eq!(
            s.out_of_fds(now) - now,
            FIRST_FD_BACKOFF,
            "and the backoff starts over"
        );
    }

    #[test]
    fn failure_reasons_are_bounded_oldest_dropped_first() {
        let mut s: Scheduler<(), ()> = Scheduler::new(1);
        for i in 0..(KEPT_FAILURES as u64 + 10) {
            s.fail(Error::TooManyPendingHandshakes { max: i as usize });
        }
        assert_eq!(s.failures(), KEPT_FAILURES as u64 + 10);
        assert_eq!(s.failures_dropped(), 10);
        let kept = s.take_failures();
        assert_eq!(kept.len(), KEPT_FAILURES);
        assert!(matches!(
            kept[0],
            Error::TooManyPendingHandshakes { max: 10 }
        ));
    }

    #[test]
    fn ready_connections_leave_in_order() {
        let mut s: Scheduler<(), u32> = Scheduler::new(1);
        assert!(!s.has_ready());
        s.push_ready(1);
        s.push_ready(2);
        assert!(s.has_ready());
        assert_eq!(s.pop_ready(), Some(1));
        assert_eq!(s.pop_ready(), Some(2));
        assert_eq!(s.pop_ready(), None);
    }
}
