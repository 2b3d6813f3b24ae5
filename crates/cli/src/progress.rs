//! What `postdoc run` shows while it works: a bar of trials against the budget, one line per
//! running trial, and a line for each trial as it finishes. Without a terminal, plain lines.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use postdoc_core::{Label, TrialRecord};
use postdoc_study::{Progress, Reporter};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

pub(crate) struct RunProgress {
    multi: MultiProgress,
    bar: ProgressBar,
    running: Mutex<BTreeMap<u64, ProgressBar>>,
    best: Mutex<Option<(u64, f64)>>,
    tty: bool,
    json: bool,
}

impl RunProgress {
    pub(crate) fn new(max_trials: u64, json: bool) -> RunProgress {
        let tty = std::io::stderr().is_terminal() && !json;
        let multi = MultiProgress::with_draw_target(if tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        let bar = multi.add(ProgressBar::new(max_trials));
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} trials  {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.set_message("measuring the baseline");
        bar.enable_steady_tick(Duration::from_millis(500));
        RunProgress { multi, bar, running: Mutex::new(BTreeMap::new()), best: Mutex::new(None), tty, json }
    }

    pub(crate) fn finish(&self) {
        for (_, spinner) in std::mem::take(&mut *self.running.lock().expect("lock")) {
            spinner.finish_and_clear();
        }
        self.bar.finish_and_clear();
    }

    /// A line said whatever the output format (it goes to standard error, never into JSON).
    pub(crate) fn note(&self, text: &str) {
        if self.tty {
            let _ = self.multi.println(text);
        } else {
            eprintln!("{text}");
        }
    }

    fn line(&self, text: String) {
        if !self.json {
            self.note(&text);
        }
    }

    fn finished(&self, t: &TrialRecord) {
        if let Some(spinner) = self.running.lock().expect("lock").remove(&t.number) {
            spinner.finish_and_clear();
        }
        if self.json {
            println!("{}", serde_json::to_string(t).expect("trials serialize"));
            return;
        }
        let label = t.label.map(|l| l.to_string()).unwrap_or_else(|| "?".into());
        let score = t.score.map(|s| format!("{s:.4}")).unwrap_or_else(|| "-".into());
        let reason = t.reason.clone().unwrap_or_default();
        self.line(format!(
            "trial {:>3} {:<16} {:>8}  {}: {}  ({reason})",
            t.number, label, score, t.specialist, t.hypothesis
        ));
        if t.label == Some(Label::Keep)
            && let Some(score) = t.score
        {
            *self.best.lock().expect("lock") = Some((t.number, score));
        }
        if t.is_counted() && t.label.is_some() {
            self.bar.inc(1);
        }
        if let Some((n, s)) = *self.best.lock().expect("lock") {
            self.bar.set_message(format!("best {s:.4} (trial {n})"));
        }
    }
}

impl Reporter for RunProgress {
    fn report(&self, progress: Progress) {
        match progress {
            Progress::Note(text) => self.line(text),
            Progress::TrialStarted { number, specialist, hypothesis } => {
                if self.tty {
                    let spinner = self.multi.add(ProgressBar::new_spinner());
                    spinner.set_style(
                        ProgressStyle::with_template("  {spinner} {elapsed:>4} {msg}").expect("a valid template"),
                    );
                    spinner.set_message(format!("trial {number} {specialist}: {hypothesis}"));
                    spinner.enable_steady_tick(Duration::from_millis(200));
                    self.running.lock().expect("lock").insert(number, spinner);
                }
            }
            Progress::RunStarted { number, run, seed, purpose } => {
                if let Some(spinner) = self.running.lock().expect("lock").get(&number) {
                    let msg = spinner.message();
                    let head = msg.split(" [").next().unwrap_or(&msg).to_string();
                    spinner.set_message(format!("{head} [{purpose} run {run}, seed {seed}]"));
                }
            }
            Progress::TrialFinished(t) => self.finished(&t),
        }
    }
}
