//! Every signal is a clean stop. SIGINT, SIGTERM and SIGHUP cancel the work in progress: the
//! runner stops, the backend tears down what it started (process groups, containers, Slurm
//! jobs), the run is recorded as interrupted with the signal's name, and the command exits with
//! 128 + the signal's number (130, 143, 129), so that `--resume` continues.

use perfarena_backend::CancelToken;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// The signals that stop a run cleanly.
pub const STOP_SIGNALS: [i32; 3] = [SIGINT, SIGTERM, SIGHUP];

/// Makes each stop signal cancel `cancel` (and remember which signal it was).
pub fn install(cancel: &CancelToken) -> std::io::Result<()> {
    for signal in STOP_SIGNALS {
        let token = cancel.clone();
        // SAFETY: the handler only stores to atomics (`CancelToken::cancel_by_signal`): it
        // allocates nothing, takes no lock and is async-signal-safe.
        unsafe {
            signal_hook::low_level::register(signal, move || token.cancel_by_signal(signal))
        }?;
    }
    Ok(())
}

/// The name of a stop signal (`SIGINT`…).
pub fn name(signal: i32) -> Option<&'static str> {
    match signal {
        SIGINT => Some("SIGINT"),
        SIGTERM => Some("SIGTERM"),
        SIGHUP => Some("SIGHUP"),
        _ => None,
    }
}

/// The exit code after an interruption: 128 + the signal's number; 130 (as for Ctrl-C) when no
/// signal is known.
pub fn exit_code(signal: Option<i32>) -> u8 {
    match signal {
        Some(signal) if (1..128).contains(&signal) => 128 + signal as u8,
        _ => 130,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stop_signal_cancels_and_is_named() {
        let cancel = CancelToken::new();
        install(&cancel).unwrap();
        assert!(!cancel.is_cancelled());
        signal_hook::low_level::raise(SIGHUP).unwrap();
        assert!(cancel.is_cancelled());
        assert_eq!(cancel.signal(), Some(SIGHUP));
        // The first signal is the one remembered.
        signal_hook::low_level::raise(SIGTERM).unwrap();
        assert_eq!(cancel.signal().and_then(name), Some("SIGHUP"));
        assert_eq!(exit_code(cancel.signal()), 129);
        assert_eq!(exit_code(Some(SIGTERM)), 143);
        assert_eq!(exit_code(None), 130);
    }
}
