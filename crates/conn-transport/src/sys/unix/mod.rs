//! Unix: sockets and pipes as file descriptors, readiness by `poll(2)` and mio (epoll, kqueue).

pub(crate) mod calls;
pub(crate) mod handle;
pub(crate) mod listener;
pub(crate) mod poller;
pub(crate) mod sentinel;
pub(crate) mod stream;
