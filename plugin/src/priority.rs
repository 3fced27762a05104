//! Real-time scheduling for the threads whose deadline is the audio's.
//!
//! Hosts run their audio threads at real-time priority (JACK and most DAWs use 40 to 90). The
//! inference thread has the audio thread's deadline, so it asks for real-time priority too, below
//! the host's; the renderer's paced mode gives its simulated audio thread the same treatment as a
//! host would. Where the system refuses (no rtkit grant, no `ulimit -r`), the thread stays at
//! normal priority and the late-frame counter tells.

/// The inference thread: above everything that is not real time, below the host's audio threads.
pub const INFERENCE: i32 = 10;
/// The renderer's simulated audio thread in `--paced` mode, above the inference thread as a
/// host's is.
pub const SIMULATED_AUDIO: i32 = 40;

/// Asks for `SCHED_FIFO` at `priority` for the calling thread; returns whether it was granted.
pub fn promote(priority: i32) -> bool {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: priority };
        // SAFETY: `pthread_self` is the live calling thread and `param` outlives the call.
        unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = priority;
        false
    }
}
