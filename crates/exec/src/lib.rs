//! Executors run a trial's commands under hard budgets. The loop sees only the [`Executor`]
//! trait; [`LocalExecutor`] runs processes on this machine (cluster engines plug in beside it).

mod local;
mod metrics;

pub use local::LocalExecutor;
pub use metrics::{MetricsTail, parse_metrics_line};

use std::path::PathBuf;
use std::time::Duration;

/// One command to run, and the limits it runs under.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// Run by `/bin/sh -c`, so the recipe writes commands as in a terminal.
    pub command: String,
    pub cwd: PathBuf,
    /// Added to the inherited environment.
    pub env: Vec<(String, String)>,
    /// Wall-clock budget; past it the process group gets SIGTERM, then SIGKILL after `grace`.
    pub seconds: f64,
    pub grace: Duration,
    /// Address-space limit (RLIMIT_AS), bytes.
    pub memory: Option<u64>,
    /// Largest file the process may write (RLIMIT_FSIZE), bytes.
    pub file_size: Option<u64>,
    /// Where the combined stdout and stderr go, capped at [`LOG_FILE_CAP`]; made at the first
    /// output, so a process that prints nothing leaves no file.
    pub log_file: Option<PathBuf>,
    /// How much of the end of the output to keep in memory and return.
    pub tail_bytes: usize,
    /// A JSONL file the process may append metric lines to; read while it runs.
    pub metrics_file: Option<PathBuf>,
}

/// The longest log file kept on disk for one process; the tail is always kept besides.
pub const LOG_FILE_CAP: u64 = 16 << 20;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProcessOutcome {
    pub exit: Exit,
    /// The budget ran out and the harness stopped the process.
    pub timed_out: bool,
    /// The watcher asked for the process to stop (it was clearly behind), and it was stopped.
    pub stopped: bool,
    pub wall_seconds: f64,
    pub cpu_seconds: f64,
    pub peak_rss_bytes: u64,
    pub log_tail: String,
}

impl ProcessOutcome {
    pub fn succeeded(&self) -> bool {
        self.exit == Exit::Code(0) && !self.timed_out && !self.stopped
    }

    /// The shell's way of saying the command does not exist or cannot be executed.
    pub fn could_not_start(&self) -> bool {
        matches!(self.exit, Exit::Code(126 | 127)) && !self.timed_out
    }
}

/// A running process, as the harness records it so that a restarted orchestrator can kill what
/// a killed one left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessHandle {
    /// Also the process group id: every process runs in a session of its own.
    pub pid: u32,
    /// Start time in clock ticks since boot (field 22 of /proc/PID/stat), to tell a reused pid.
    pub start_ticks: u64,
}

/// One parsed line of a metrics file: `{"step": 10, "loss": 0.5}` gives one point per number.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricLine {
    pub step: Option<i64>,
    pub values: Vec<(String, f64)>,
}

/// What a watcher wants done with the process after reading its metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Continue,
    /// Stop it as an overrun is stopped (SIGTERM, grace, SIGKILL of the group).
    Stop,
}

/// Hears about a process while it runs.
pub trait Watcher: Send + Sync {
    fn started(&self, handle: ProcessHandle);
    fn metrics(&self, lines: Vec<MetricLine>) -> Control;
}

/// A watcher that ignores everything.
pub struct Unwatched;

impl Watcher for Unwatched {
    fn started(&self, _: ProcessHandle) {}
    fn metrics(&self, _: Vec<MetricLine>) -> Control {
        Control::Continue
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("could not start `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("lost track of a running process: {0}")]
    Lost(String),
}

#[async_trait::async_trait]
pub trait Executor: Send + Sync {
    /// How many trials may run at once.
    fn slots(&self) -> usize;

    async fn run(&self, spec: ProcessSpec, watcher: &dyn Watcher) -> Result<ProcessOutcome, ExecError>;
}

/// Kills a process group left behind by an earlier orchestrator, if it still runs and is the same
/// process (not a reused pid). Returns whether it was found.
pub fn kill_leftover(handle: ProcessHandle) -> bool {
    match local::start_ticks(handle.pid) {
        Some(ticks) if ticks == handle.start_ticks => {
            local::signal_group(handle.pid, libc::SIGKILL);
            true
        }
        _ => false,
    }
}
