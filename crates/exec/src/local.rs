//! Local processes: each in a session (and so a process group) of its own, with rlimits set
//! before exec, budgets enforced from outside, output captured through one pipe.

use crate::metrics::MetricsTail;
use crate::{Control, ExecError, Executor, Exit, LOG_FILE_CAP, ProcessHandle, ProcessOutcome, ProcessSpec, Watcher};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the metrics file is read while a process runs.
const METRICS_POLL: Duration = Duration::from_millis(250);

/// Runs commands as local processes, at most `slots` trials at once (the loop holds the slots).
#[derive(Debug, Clone)]
pub struct LocalExecutor {
    slots: usize,
}

impl LocalExecutor {
    pub fn new(slots: usize) -> LocalExecutor {
        LocalExecutor { slots: slots.max(1) }
    }
}

#[async_trait::async_trait]
impl Executor for LocalExecutor {
    fn slots(&self) -> usize {
        self.slots
    }

    async fn run(&self, spec: ProcessSpec, watcher: &dyn Watcher) -> Result<ProcessOutcome, ExecError> {
        run_process(spec, watcher).await
    }
}

pub(crate) fn signal_group(pgid: u32, signal: i32) {
    // SAFETY: kill(2) with a negative pid signals a process group; it has no memory effects.
    unsafe {
        libc::kill(-(pgid as i32), signal);
    }
}

/// Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot.
pub(crate) fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: split after its last ')'.
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Kills a running process group when dropped: if the future running a process is abandoned
/// (its trial was interrupted), the process must not run on unwatched.
struct GroupGuard {
    pgid: u32,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            signal_group(self.pgid, libc::SIGKILL);
        }
    }
}

/// The end of the output, kept in memory while the full log streams to a capped file.
struct Tail {
    bytes: VecDeque<u8>,
    cap: usize,
}

impl Tail {
    fn push(&mut self, data: &[u8]) {
        self.bytes.extend(data);
        let excess = self.bytes.len().saturating_sub(self.cap);
        self.bytes.drain(..excess);
    }

    fn text(&self) -> String {
        let (a, b) = self.bytes.as_slices();
        let mut v = Vec::with_capacity(a.len() + b.len());
        v.extend_from_slice(a);
        v.extend_from_slice(b);
        String::from_utf8_lossy(&v).into_owned()
    }
}

fn set_limit(resource: libc::__rlimit_resource_t, bytes: u64) -> std::io::Result<()> {
    let limit = libc::rlimit { rlim_cur: bytes as libc::rlim_t, rlim_max: bytes as libc::rlim_t };
    // SAFETY: setrlimit reads the struct we pass; called in the child between fork and exec.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

async fn run_process(spec: ProcessSpec, watcher: &dyn Watcher) -> Result<ProcessOutcome, ExecError> {
    let spawn_error = |source| ExecError::Spawn { command: spec.command.clone(), source };
    let (reader, writer) = std::io::pipe().map_err(spawn_error)?;
    let writer2 = writer.try_clone().map_err(spawn_error)?;
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(&spec.command)
        .current_dir(&spec.cwd)
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer2);
    let (memory, file_size) = (spec.memory, spec.file_size);
    // SAFETY: between fork and exec only async-signal-safe calls are made (setsid, setrlimit,
    // prctl), and no memory is allocated.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(m) = memory {
                set_limit(libc::RLIMIT_AS, m)?;
            }
            if let Some(f) = file_size {
                set_limit(libc::RLIMIT_FSIZE, f)?;
            }
            // If the orchestrator dies, its direct child dies with it; deeper descendants are
            // killed by group when the orchestrator resumes.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
            Ok(())
        });
    }
    let started = Instant::now();
    let child = cmd.spawn().map_err(spawn_error)?;
    drop(cmd); // closes our copies of the pipe's write end, so the reader sees EOF at exit
    let pid = child.id();
    let mut guard = GroupGuard { pgid: pid, armed: true };
    watcher.started(ProcessHandle { pid, start_ticks: start_ticks(pid).unwrap_or(0) });

    let tail = Arc::new(Mutex::new(Tail { bytes: VecDeque::new(), cap: spec.tail_bytes.max(1) }));
    let reader_thread = {
        let tail = Arc::clone(&tail);
        // Made at the first output: a silent process leaves no empty file behind.
        let log_path = spec.log_file.clone();
        let mut log: Option<File> = None;
        std::thread::spawn(move || {
            let mut reader = reader;
            let mut buf = [0u8; 16 * 1024];
            let mut written = 0u64;
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        tail.lock().expect("tail lock").push(&buf[..n]);
                        if log.is_none()
                            && let Some(path) = &log_path
                        {
                            log = File::create(path).ok();
                        }
                        if let Some(f) = log.as_mut()
                            && written < LOG_FILE_CAP
                        {
                            let take = n.min((LOG_FILE_CAP - written) as usize);
                            let _ = f.write_all(&buf[..take]);
                            written += take as u64;
                            if written >= LOG_FILE_CAP {
                                let _ = f.write_all(
                                    b"\n[postdoc: log truncated here; the end is kept in the trial's log tail]\n",
                                );
                            }
                        }
                    }
                }
            }
        })
    };

    let mut waiter = tokio::task::spawn_blocking(move || {
        let _child = child; // keep the handle alive; we reap with wait4 to get its rusage
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        loop {
            // SAFETY: wait4 writes only into the two out-pointers we own.
            let r = unsafe { libc::wait4(pid as i32, &mut status, 0, &mut usage) };
            if r == pid as i32 {
                return Ok((status, usage));
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    });

    let mut metrics = spec.metrics_file.clone().map(MetricsTail::new);
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(spec.seconds.max(0.0));
    let mut timed_out = false;
    let mut stopped = false;
    let mut killed_at: Option<tokio::time::Instant> = None;
    let mut poll = tokio::time::interval(METRICS_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let waited = loop {
        let next_kill = match killed_at {
            None => deadline,
            Some(t) => t + spec.grace,
        };
        tokio::select! {
            res = &mut waiter => break res,
            _ = poll.tick(), if metrics.is_some() => {
                if let Some(m) = metrics.as_mut() {
                    let lines = m.poll(false);
                    if !lines.is_empty() && watcher.metrics(lines) == Control::Stop && killed_at.is_none() {
                        stopped = true;
                        killed_at = Some(tokio::time::Instant::now());
                        signal_group(pid, libc::SIGTERM);
                    }
                }
            }
            _ = tokio::time::sleep_until(next_kill) => {
                if killed_at.is_none() {
                    timed_out = true;
                    killed_at = Some(tokio::time::Instant::now());
                    signal_group(pid, libc::SIGTERM);
                } else {
                    signal_group(pid, libc::SIGKILL);
                    killed_at = Some(tokio::time::Instant::now() + Duration::from_secs(3600));
                }
            }
        }
    };
    let wall_seconds = started.elapsed().as_secs_f64();
    // Whatever the recipe left running in its group goes now: nothing outlives its trial.
    signal_group(pid, libc::SIGKILL);
    guard.armed = false;
    let (status, usage) = waited
        .map_err(|e| ExecError::Lost(e.to_string()))?
        .map_err(|e| ExecError::Lost(format!("wait for pid {pid}: {e}")))?;
    // A descendant that left the group could hold the pipe open forever: do not wait on it long.
    let _ =
        tokio::time::timeout(Duration::from_secs(5), tokio::task::spawn_blocking(move || reader_thread.join())).await;
    if let Some(m) = metrics.as_mut() {
        let lines = m.poll(true);
        if !lines.is_empty() {
            // The process has ended: there is nothing left to stop.
            let _ = watcher.metrics(lines);
        }
    }
    let exit = if libc::WIFSIGNALED(status) {
        Exit::Signal(libc::WTERMSIG(status))
    } else {
        Exit::Code(libc::WEXITSTATUS(status))
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let log_tail = tail.lock().expect("tail lock").text();
    Ok(ProcessOutcome {
        exit,
        timed_out,
        stopped,
        wall_seconds,
        cpu_seconds: tv(usage.ru_utime) + tv(usage.ru_stime),
        peak_rss_bytes: usage.ru_maxrss.max(0) as u64 * 1024,
        log_tail,
    })
}
