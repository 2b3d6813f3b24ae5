//! The local executor against real processes.

use postdoc_exec::{
    Control, Executor, Exit, LocalExecutor, MetricLine, ProcessHandle, ProcessSpec, Unwatched, Watcher, kill_leftover,
};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

fn spec(dir: &Path, command: &str, seconds: f64) -> ProcessSpec {
    ProcessSpec {
        command: command.into(),
        cwd: dir.to_path_buf(),
        env: vec![("POSTDOC_TEST_VALUE".into(), "forty-two".into())],
        seconds,
        grace: Duration::from_millis(500),
        memory: None,
        file_size: None,
        log_file: Some(dir.join("run.log")),
        tail_bytes: 4096,
        metrics_file: None,
    }
}

async fn run(spec: ProcessSpec) -> postdoc_exec::ProcessOutcome {
    LocalExecutor::new(1).run(spec, &Unwatched).await.unwrap()
}

fn alive(pid: u32) -> bool {
    // A zombie counts as gone: it no longer runs.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| !s.contains(") Z ")).unwrap_or(false)
}

#[tokio::test]
async fn captures_exit_code_environment_and_interleaved_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(spec(dir.path(), "echo out-$POSTDOC_TEST_VALUE; echo err >&2; echo out2; exit 3", 10.0)).await;
    assert_eq!(out.exit, Exit::Code(3));
    assert!(!out.timed_out && !out.succeeded());
    assert_eq!(out.log_tail, "out-forty-two\nerr\nout2\n");
    assert_eq!(std::fs::read_to_string(dir.path().join("run.log")).unwrap(), out.log_tail);
}

#[tokio::test]
async fn a_silent_process_leaves_no_log_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(spec(dir.path(), "true", 10.0)).await;
    assert!(out.succeeded() && out.log_tail.is_empty());
    assert!(!dir.path().join("run.log").exists());
}

#[tokio::test]
async fn a_missing_command_could_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(spec(dir.path(), "no-such-command-postdoc --flag", 10.0)).await;
    assert!(out.could_not_start(), "{out:?}");
    assert!(out.log_tail.contains("not found"));
}

#[tokio::test]
async fn overrun_gets_sigterm_then_sigkill_for_the_whole_group() {
    let dir = tempfile::tempdir().unwrap();
    // The shell ignores SIGTERM and a background grandchild would outlive it without group kill.
    let cmd = "trap '' TERM; sleep 300 & echo $! > bg.pid; while true; do sleep 0.05; done";
    let out = run(spec(dir.path(), cmd, 0.5)).await;
    assert!(out.timed_out);
    assert_eq!(out.exit, Exit::Signal(libc::SIGKILL));
    assert!(
        out.wall_seconds >= 1.0 && out.wall_seconds < 10.0,
        "budget 0.5 s + grace 0.5 s, took {}",
        out.wall_seconds
    );
    let bg: u32 = std::fs::read_to_string(dir.path().join("bg.pid")).unwrap().trim().parse().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!alive(bg), "the background grandchild {bg} must be killed with its group");
}

#[tokio::test]
async fn a_polite_process_stops_at_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(spec(dir.path(), "exec sleep 30", 0.3)).await;
    assert!(out.timed_out);
    assert_eq!(out.exit, Exit::Signal(libc::SIGTERM));
}

#[tokio::test]
async fn memory_and_file_size_limits_hold() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path(), "python3 -c 'x = bytearray(800 * 1024 * 1024); print(len(x))'", 30.0);
    s.memory = Some(300 << 20);
    let out = run(s).await;
    assert_ne!(out.exit, Exit::Code(0), "{out:?}");
    assert!(out.log_tail.contains("MemoryError"), "{}", out.log_tail);

    let mut s = spec(dir.path(), "head -c 3000000 /dev/zero > big.bin", 30.0);
    s.file_size = Some(1 << 20);
    let out = run(s).await;
    assert!(!out.succeeded());
    assert!(std::fs::metadata(dir.path().join("big.bin")).unwrap().len() <= 1 << 20);
}

#[tokio::test]
async fn reports_peak_memory_and_cpu_time() {
    let dir = tempfile::tempdir().unwrap();
    let cmd =
        "python3 -c 'x = bytearray(120 * 1024 * 1024); x[::4096] = b\"1\" * len(x[::4096]); s = sum(range(3000000))'";
    let out = run(spec(dir.path(), cmd, 30.0)).await;
    assert!(out.succeeded(), "{out:?}");
    assert!(out.peak_rss_bytes > 100 << 20, "peak rss {}", out.peak_rss_bytes);
    assert!(out.cpu_seconds > 0.01);
}

#[tokio::test]
async fn keeps_a_bounded_tail() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path(), "seq 1 200000", 30.0);
    s.tail_bytes = 1000;
    let out = run(s).await;
    assert!(out.log_tail.len() <= 1000);
    assert!(out.log_tail.ends_with("199999\n200000\n"));
}

#[derive(Default)]
struct Recorder {
    handle: Mutex<Option<ProcessHandle>>,
    lines: Mutex<Vec<MetricLine>>,
    /// Asks for a stop once a line reaches this step.
    stop_at: Option<i64>,
}

impl Watcher for Recorder {
    fn started(&self, handle: ProcessHandle) {
        *self.handle.lock().unwrap() = Some(handle);
    }
    fn metrics(&self, lines: Vec<MetricLine>) -> Control {
        let reached = lines.iter().filter_map(|l| l.step).max();
        self.lines.lock().unwrap().extend(lines);
        match (self.stop_at, reached) {
            (Some(at), Some(step)) if step >= at => Control::Stop,
            _ => Control::Continue,
        }
    }
}

#[tokio::test]
async fn a_watcher_can_stop_a_run_that_is_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(
        dir.path(),
        "trap '' TERM; i=0; while true; do i=$((i+1)); echo \"{\\\"step\\\": $i, \\\"loss\\\": 1}\" >> metrics.jsonl; sleep 0.05; done",
        30.0,
    );
    s.metrics_file = Some(dir.path().join("metrics.jsonl"));
    let recorder = Recorder { stop_at: Some(3), ..Default::default() };
    let started = std::time::Instant::now();
    let out = LocalExecutor::new(1).run(s, &recorder).await.unwrap();
    assert!(out.stopped && !out.timed_out && !out.succeeded(), "{out:?}");
    // Ignoring SIGTERM buys the grace period, then SIGKILL.
    assert_eq!(out.exit, Exit::Signal(libc::SIGKILL));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[tokio::test]
async fn streams_metrics_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(
        dir.path(),
        "for i in 1 2 3 4; do echo \"{\\\"step\\\": $i, \\\"loss\\\": 0.$i}\" >> metrics.jsonl; sleep 0.3; done; printf 'garbage\\n' >> metrics.jsonl",
        30.0,
    );
    s.metrics_file = Some(dir.path().join("metrics.jsonl"));
    let recorder = Recorder::default();
    let out = LocalExecutor::new(1).run(s, &recorder).await.unwrap();
    assert!(out.succeeded());
    let lines = recorder.lines.lock().unwrap();
    assert_eq!(lines.iter().map(|l| l.step.unwrap()).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    assert_eq!(lines[3].values, vec![("loss".to_string(), 0.4)]);
    let handle = recorder.handle.lock().unwrap().unwrap();
    assert!(handle.pid > 0 && handle.start_ticks > 0);
}

#[test]
fn leftover_groups_are_killed_only_if_they_are_the_same_process() {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new("sleep");
    cmd.arg("300");
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ticks: u64 = ticks[ticks.rfind(')').unwrap() + 2..].split_whitespace().nth(19).unwrap().parse().unwrap();
    assert!(!kill_leftover(ProcessHandle { pid, start_ticks: ticks + 1 }), "a reused pid must be left alone");
    assert!(alive(pid));
    assert!(kill_leftover(ProcessHandle { pid, start_ticks: ticks }));
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
}

#[tokio::test]
async fn an_abandoned_run_takes_its_process_group_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), "sleep 300 & echo $! > bg.pid; sleep 300", 600.0);
    let executor = LocalExecutor::new(1);
    let run = executor.run(s, &Unwatched);
    // Give up on the run after half a second, as an interrupted trial does.
    assert!(tokio::time::timeout(Duration::from_millis(500), run).await.is_err());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let bg: u32 = std::fs::read_to_string(dir.path().join("bg.pid")).unwrap().trim().parse().unwrap();
    assert!(!alive(bg), "the background process {bg} must die with the abandoned run");
}
