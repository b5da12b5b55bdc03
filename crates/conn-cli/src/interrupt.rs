//! Ctrl-C for `conn listen`: the first sets a flag (the listener closes, removing its socket
//! file, and the program ends), a second ends the program at once.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

/// Installs the handler; the flag it sets.
pub(crate) fn install() -> &'static AtomicBool {
    imp::install();
    &STOP
}

#[cfg(unix)]
#[expect(unsafe_code, reason = "installing a signal handler")]
mod imp {
    use super::{Ordering, STOP};

    extern "C" fn on_interrupt(_: libc::c_int) {
        if STOP.swap(true, Ordering::Relaxed) {
            // SAFETY: _exit is async-signal-safe.
            unsafe { libc::_exit(130) };
        }
    }

    pub(super) fn install() {
        let handler: extern "C" fn(libc::c_int) = on_interrupt;
        // SAFETY: sigaction is plain data; the handler only touches an atomic and calls
        // _exit, both async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
            libc::sigaction(libc::SIGTERM, &action, std::ptr::null_mut());
        }
    }
}

#[cfg(windows)]
#[expect(unsafe_code, reason = "installing a console control handler")]
mod imp {
    use super::{Ordering, STOP};
    use windows_sys::Win32::System::Console::SetConsoleCtrlHandler;
    use windows_sys::core::BOOL;

    unsafe extern "system" fn on_control(_: u32) -> BOOL {
        // Handled the first time; the second time the default handler ends the process.
        i32::from(!STOP.swap(true, Ordering::Relaxed))
    }

    pub(super) fn install() {
        // SAFETY: a handler that only touches an atomic, for the life of the process.
        unsafe { SetConsoleCtrlHandler(Some(on_control), 1) };
    }
}
