//! One trial, from its proposal to its label: prepare the worktree and commit, check the edit,
//! preflight, run on one or more seeds, evaluate each run from a pristine copy, then let the one
//! classifier and the keep rule decide.

use crate::StudyError;
use crate::early_stop::{RUNG_EVENT, RunRole, RunRungs, RungValue};
use crate::session::{Ctx, Progress, abort_and_retry, mix};
use postdoc_core::knobs_file;
use postdoc_core::label::log_excerpt;
use postdoc_core::lineage::{current_best, reference, study_noise};
use postdoc_core::manifest::ProcessBudget;
use postdoc_core::noise::{self, Screen};
use postdoc_core::surface::check_edit;
use postdoc_core::{
    Decision, Edit, Finding, KnobSpec, KnobValues, Label, MetricPoint, RunPurpose, RunRecord, TrialNo, TrialRecord,
    Verdict, classify,
};
use postdoc_eval::{artifact_bytes, parse_scores};
use postdoc_exec::{Control, Exit, MetricLine, ProcessHandle, ProcessOutcome, ProcessSpec, Watcher};
use postdoc_store::now_ms;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::mpsc;

/// How much of each process's output the lineage keeps.
const TAIL_BYTES: usize = 64 * 1024;
/// How much of a failure's log its label carries.
pub(crate) const EXCERPT_BYTES: usize = 3000;
/// A preflight gets at most this long.
pub(crate) const PREFLIGHT_SECONDS: f64 = 60.0;

/// Runs trial `number` to its label. Infrastructure faults (git, files) are labelled
/// `harness_abort` and retried; only a failing store ends the session. The trial runs in its
/// slot's worktree, which the next trial of the slot reuses.
pub(crate) async fn run(ctx: Arc<Ctx>, number: TrialNo, slot: usize) -> Result<Box<TrialRecord>, StudyError> {
    let t = ctx.store.trial(&ctx.study, number).await?;
    ctx.reporter.report(Progress::TrialStarted {
        number,
        specialist: t.specialist.clone(),
        hypothesis: t.hypothesis.clone(),
    });
    let tree = ctx.layout.slot_worktree(slot);
    let result = run_in_tree(&ctx, &t, &tree).await;
    if result.is_err() {
        // A fault may have left the worktree half made: the slot's next trial starts afresh.
        let _ = ctx.recipe.repo.remove_worktree(&tree).await;
    }
    match result {
        Ok(()) => {}
        Err(e @ (StudyError::Git(_) | StudyError::Io { .. })) => {
            tracing::warn!(trial = number, error = %e, "infrastructure fault");
            let current = ctx.store.trial(&ctx.study, number).await?;
            if current.status != postdoc_core::TrialStatus::Finished {
                let verdict = classify(&[Finding::HarnessFault { reason: e.to_string() }], None);
                abort_and_retry(&ctx, &current, verdict).await?;
            }
        }
        Err(e) => return Err(e),
    }
    Ok(Box::new(ctx.store.trial(&ctx.study, number).await?))
}

async fn finish(ctx: &Ctx, number: TrialNo, verdict: Verdict) -> Result<(), StudyError> {
    ctx.store.finish(ctx.study.id, number, &verdict).await?;
    Ok(())
}

async fn run_in_tree(ctx: &Ctx, t: &TrialRecord, tree: &Path) -> Result<(), StudyError> {
    let repo = &ctx.recipe.repo;
    let manifest = &ctx.recipe.manifest;
    let parent_commit = match t.parent {
        Some(p) => ctx.commit_of(&ctx.store.trial(&ctx.study, p).await?),
        None => ctx.study.base_commit.clone(),
    };
    // Reusing the slot's worktree costs a checkout; making one costs a worktree add and, later,
    // a removal: about twice as much per trial.
    let reused = tree.exists() && repo.reset_worktree(tree, &parent_commit).await.is_ok();
    if !reused {
        if tree.exists() {
            let _ = repo.remove_worktree(tree).await;
        }
        repo.add_worktree(tree, &parent_commit).await?;
    }

    // Apply the edit; a proposal that cannot be applied is the specialist's fault.
    let applied: Result<(), String> = match &t.edit {
        Edit::Unchanged => Ok(()),
        Edit::Knobs { values } => write_knobs(ctx, &t.specialist, values, tree)?,
        Edit::Patch { diff } => match repo.apply_patch(tree, diff).await {
            Ok(()) => Ok(()),
            Err(postdoc_git::GitError::Apply(why)) => Err(format!("the patch does not apply: {why}")),
            Err(e) => return Err(e.into()),
        },
    };
    if let Err(why) = applied {
        return finish(ctx, t.number, classify(&[Finding::InvalidProposal { reason: why }], None)).await;
    }
    let message = (t.edit != Edit::Unchanged).then(|| {
        format!(
            "postdoc trial {} ({}): {}\n\nPostdoc-Study: {}\nPostdoc-Trial: {}\n",
            t.number,
            t.specialist,
            t.hypothesis.lines().next().unwrap_or(""),
            ctx.study.name,
            t.number
        )
    });
    let trial_ref = ctx.layout.study_ref(&format!("trials/{}", t.number));
    let commit = repo.record_trial(tree, &parent_commit, message.as_deref(), &trial_ref).await?;
    let (patch, changed) = repo.diff_and_paths(&parent_commit, &commit).await?;
    ctx.store.start(ctx.study.id, t.number, &commit, &patch).await?;

    if !t.is_baseline() {
        let surface = ctx.surfaces.get(&t.specialist).expect("every specialist has a surface");
        if let Err(violation) = check_edit(&changed, surface, &ctx.protected, &t.specialist) {
            return finish(ctx, t.number, classify(&[Finding::IllegalEdit { reason: violation.to_string() }], None))
                .await;
        }
    }

    if let Some(preflight) = &manifest.run.preflight {
        let spec = ProcessSpec {
            seconds: PREFLIGHT_SECONDS.min(manifest.run.budget.seconds.0),
            ..process(ctx, preflight, tree, &manifest.run.budget, [])
        };
        let out = ctx.executor.run(spec, &postdoc_exec::Unwatched).await.map_err(harness)?;
        if !out.succeeded() {
            let reason = format!("the preflight `{preflight}` failed: {}", describe_exit(&out));
            let excerpt = log_excerpt(&out.log_tail, EXCERPT_BYTES);
            return finish(ctx, t.number, classify(&[Finding::PreflightCrash { reason, excerpt }], None)).await;
        }
    }

    if t.is_baseline() {
        return run_baseline(ctx, t, tree).await;
    }

    let screen_run = run_once(ctx, t, tree, 0, RunPurpose::Screen).await?;
    if !screen_run.findings.is_empty() {
        return finish(ctx, t.number, classify(&screen_run.findings, None)).await;
    }
    let score = screen_run.score.expect("a run without findings has a score");
    let gain = manifest.study.objective.direction.gain(score);
    let _confirming = {
        let _guard = ctx.decide.lock().await;
        let (best_ref, noise) = judge_against(ctx, None).await?;
        if let Screen::Decided(decision) = noise::screen(gain, best_ref, noise, &manifest.noise) {
            return decide(ctx, t, &commit, decision).await;
        }
        Confirming::new(ctx, t.number, gain)
    };
    let mut confirm_scores = Vec::new();
    for idx in 1..=manifest.noise.confirm_seeds {
        let run = run_once(ctx, t, tree, idx, RunPurpose::Confirm).await?;
        if !run.findings.is_empty() {
            // A candidate that fails on another seed is not robust: its failure is its label.
            return finish(ctx, t.number, classify(&run.findings, None)).await;
        }
        confirm_scores.push(manifest.study.objective.direction.gain(run.score.expect("scored")));
    }
    let _guard = ctx.decide.lock().await;
    let (best_ref, noise) = judge_against(ctx, Some(t.number)).await?;
    let decision = noise::confirm(&confirm_scores, best_ref, noise, &manifest.noise);
    decide(ctx, t, &commit, decision).await
}

/// Marks a trial as being confirmed for as long as it lives: until its decision is recorded,
/// or it fails, or its task is dropped.
struct Confirming<'a> {
    ctx: &'a Ctx,
    number: TrialNo,
}

impl<'a> Confirming<'a> {
    fn new(ctx: &'a Ctx, number: TrialNo, gain: f64) -> Confirming<'a> {
        ctx.confirming.lock().unwrap_or_else(|e| e.into_inner()).insert(number, gain);
        Confirming { ctx, number }
    }
}

impl Drop for Confirming<'_> {
    fn drop(&mut self) {
        self.ctx.confirming.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.number);
    }
}

/// Writes a knob edit by `specialist` into the worktree: each value into the knob file of the
/// specialist that owns it, among those whose knobs it may set. `Err` says why the edit is the
/// specialist's fault; an `Err` outside that is the harness's.
fn write_knobs(
    ctx: &Ctx,
    specialist: &str,
    values: &KnobValues,
    tree: &Path,
) -> Result<Result<(), String>, StudyError> {
    let owners = ctx.knob_owners(specialist);
    if owners.is_empty() {
        return Ok(Err(format!("no specialist `{specialist}` in the manifest owns these knobs")));
    }
    let knobs: BTreeMap<String, KnobSpec> = owners.iter().flat_map(|o| o.knobs.clone()).collect();
    if let Err(why) = knobs_file::check_values(values, &knobs) {
        return Ok(Err(why));
    }
    // Specialists may share a knob file: each file is written once, with all its knobs.
    let mut by_file: BTreeMap<&str, KnobValues> = BTreeMap::new();
    for owner in &owners {
        let mut mine = values.iter().filter(|(k, _)| owner.knobs.contains_key(*k)).peekable();
        if mine.peek().is_none() {
            continue;
        }
        let Some(file) = owner.knobs_file.as_deref() else {
            return Ok(Err(format!("specialist `{}` has no knobs_file", owner.name)));
        };
        by_file.entry(file).or_default().extend(mine.map(|(k, v)| (k.clone(), v.clone())));
    }
    for (file, values) in by_file {
        let path = tree.join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        match knobs_file::write_knobs(&text, &values) {
            Ok(new) => std::fs::write(&path, new).map_err(|source| StudyError::Io {
                what: "cannot write the knob file",
                path,
                source,
            })?,
            Err(why) => return Ok(Err(format!("{file}: {why}"))),
        }
    }
    Ok(Ok(()))
}

/// The current best's reference and the noise to judge `candidate` with, read fresh from the
/// store. Once the candidate has run on several seeds its own spread joins the pool.
async fn judge_against(
    ctx: &Ctx,
    candidate: Option<TrialNo>,
) -> Result<(postdoc_core::Reference, postdoc_core::Noise), StudyError> {
    // Only kept trials matter here, and there are few of them whatever the study's length.
    let kept = ctx.store.kept_trials(ctx.study.id).await?;
    let direction = ctx.recipe.manifest.study.objective.direction;
    let best = current_best(&kept).expect("candidates run only after the baseline is kept");
    let best_ref = reference(best, direction).expect("a kept trial has a score");
    let noise = match candidate {
        Some(n) => {
            let c = ctx.store.trial(&ctx.study, n).await?;
            postdoc_core::Noise::pooled(kept.iter().chain([&c]).map(|t| t.run_scores.as_slice()))
        }
        None => study_noise(&kept),
    };
    Ok((best_ref, noise))
}

async fn decide(ctx: &Ctx, t: &TrialRecord, commit: &str, decision: Decision) -> Result<(), StudyError> {
    let verdict = classify(&[], Some(&decision));
    if verdict.label == Label::Keep {
        ctx.recipe.repo.update_ref(&ctx.layout.study_ref("best"), commit).await?;
    }
    finish(ctx, t.number, verdict).await
}

async fn run_baseline(ctx: &Ctx, t: &TrialRecord, tree: &Path) -> Result<(), StudyError> {
    let repeats = ctx.recipe.manifest.noise.baseline_repeats;
    let mut missed_gates = Vec::new();
    for idx in 0..repeats {
        let run = run_once(ctx, t, tree, idx, RunPurpose::Baseline).await?;
        // Gates bind candidates; a baseline below them is still the reference to beat.
        let (gates, failures): (Vec<Finding>, Vec<Finding>) =
            run.findings.into_iter().partition(|f| matches!(f, Finding::GateMiss { .. }));
        if !failures.is_empty() {
            return finish(ctx, t.number, classify(&failures, None)).await;
        }
        missed_gates.extend(gates);
    }
    let record = ctx.store.trial(&ctx.study, t.number).await?;
    let noise = postdoc_core::Noise::pooled([record.run_scores.as_slice()]);
    let mut reason = format!(
        "baseline: {:.4} over {} seed(s), noise sigma {:.4}",
        record.score.unwrap_or(f64::NAN),
        record.runs,
        noise.sigma
    );
    if let Some(Finding::GateMiss { gate, .. }) = missed_gates.first() {
        reason.push_str(&format!("; below gate `{gate}`, which candidates must pass"));
    }
    let commit = ctx.commit_of(&record);
    ctx.recipe.repo.update_ref(&ctx.layout.study_ref("best"), &commit).await?;
    finish(ctx, t.number, Verdict { label: Label::Keep, reason, excerpt: None }).await
}

/// The environment every process of the study gets: its shared folder, with a virtual
/// environment there put on the PATH.
pub(crate) fn base_env(ctx: &Ctx) -> Vec<(String, String)> {
    let env_dir = ctx.layout.env_dir();
    let mut env = vec![
        ("POSTDOC_STUDY".to_string(), ctx.study.name.clone()),
        ("POSTDOC_ENV".to_string(), env_dir.display().to_string()),
    ];
    let bin = env_dir.join("bin");
    if bin.is_dir() {
        let path = std::env::var("PATH").unwrap_or_default();
        env.push(("PATH".into(), format!("{}:{path}", bin.display())));
        if env_dir.join("pyvenv.cfg").exists() {
            env.push(("VIRTUAL_ENV".into(), env_dir.display().to_string()));
        }
    }
    env
}

/// One of the study's processes: `command` in `cwd` under `budget`, with the study's environment
/// and `extra` variables; no log file and no metrics unless the caller adds them.
pub(crate) fn process<const N: usize>(
    ctx: &Ctx,
    command: &str,
    cwd: &Path,
    budget: &ProcessBudget,
    extra: [(&str, String); N],
) -> ProcessSpec {
    let mut env = base_env(ctx);
    env.extend(extra.into_iter().map(|(k, v)| (k.to_string(), v)));
    ProcessSpec {
        command: command.to_string(),
        cwd: cwd.to_path_buf(),
        env,
        seconds: budget.seconds.0,
        grace: ctx.grace,
        memory: budget.memory.map(|b| b.0),
        file_size: budget.file_size.map(|b| b.0),
        log_file: None,
        tail_bytes: TAIL_BYTES,
        metrics_file: None,
    }
}

fn harness(e: postdoc_exec::ExecError) -> StudyError {
    StudyError::Io { what: "could not run a process", path: ".".into(), source: std::io::Error::other(e.to_string()) }
}

pub(crate) fn describe_exit(out: &ProcessOutcome) -> String {
    match out.exit {
        Exit::Code(c) => format!("exit status {c}"),
        Exit::Signal(s) => format!("killed by signal {s}"),
    }
}

/// Forwards process starts, metric lines and rung values to the store without blocking the
/// executor, and stops a run that early stopping finds behind.
struct StoreWatcher<'t> {
    tx: mpsc::UnboundedSender<Watched>,
    rungs: Option<RunRungs<'t>>,
}

enum Watched {
    Started(ProcessHandle),
    Metrics(Vec<MetricLine>),
    Rung(RungValue),
}

impl Watcher for StoreWatcher<'_> {
    fn started(&self, handle: ProcessHandle) {
        let _ = self.tx.send(Watched::Started(handle));
    }
    fn metrics(&self, lines: Vec<MetricLine>) -> Control {
        let (reached, stop) = match &self.rungs {
            Some(r) => r.read(&lines),
            None => (Vec::new(), false),
        };
        let _ = self.tx.send(Watched::Metrics(lines));
        for value in reached {
            let _ = self.tx.send(Watched::Rung(value));
        }
        if stop { Control::Stop } else { Control::Continue }
    }
}

/// One run on one seed: train under budget, measure artifacts, evaluate from a pristine copy.
async fn run_once(
    ctx: &Ctx,
    t: &TrialRecord,
    tree: &Path,
    idx: u32,
    purpose: RunPurpose,
) -> Result<RunRecord, StudyError> {
    let manifest = &ctx.recipe.manifest;
    let seed = mix(manifest.study.seed, t.number, u64::from(idx)) & 0x7FFF_FFFF;
    let dir = ctx.layout.run_dir(t.number, idx);
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| StudyError::Io { what, path, source }
    };
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(io("cannot clear", &dir))?;
    }
    let (out_dir, eval_dir) = (dir.join("out"), dir.join("eval"));
    std::fs::create_dir_all(&out_dir).map_err(io("cannot create", &out_dir))?;
    std::fs::create_dir_all(&eval_dir).map_err(io("cannot create", &eval_dir))?;
    let metrics_path = dir.join("metrics.jsonl");
    ctx.reporter.report(Progress::RunStarted { number: t.number, run: idx, seed, purpose: purpose.as_str() });
    let started_ms = now_ms();

    let env = [
        ("POSTDOC_TRIAL", t.number.to_string()),
        ("POSTDOC_OUT", out_dir.display().to_string()),
        ("POSTDOC_METRICS", metrics_path.display().to_string()),
        ("POSTDOC_SEED", seed.to_string()),
        ("POSTDOC_BUDGET_S", format!("{}", manifest.run.budget.seconds.0)),
    ];
    let spec = ProcessSpec {
        log_file: Some(dir.join("train.log")),
        metrics_file: Some(metrics_path),
        ..process(ctx, &manifest.run.command, tree, &manifest.run.budget, env)
    };
    // Only a candidate's first run may be stopped early: the baseline is the reference, and a
    // confirmation run belongs to a trial that already beat the best once.
    let role = if t.is_baseline() {
        RunRole::Baseline
    } else if purpose == RunPurpose::Screen {
        RunRole::Screen
    } else {
        RunRole::Confirmation
    };
    let (train, stopped) = watched_run(ctx, t.number, idx, spec, role).await?;
    let mut record = RunRecord {
        idx,
        purpose,
        seed,
        exit_code: match train.exit {
            Exit::Code(c) => Some(c),
            Exit::Signal(_) => None,
        },
        signal: match train.exit {
            Exit::Signal(s) => Some(s),
            Exit::Code(_) => None,
        },
        timed_out: train.timed_out,
        train_seconds: train.wall_seconds,
        eval_seconds: 0.0,
        cpu_seconds: Some(train.cpu_seconds),
        peak_rss_bytes: Some(train.peak_rss_bytes),
        artifact_bytes: None,
        score: None,
        scores: Default::default(),
        findings: Vec::new(),
        log_tail: train.log_tail.clone(),
        eval_log_tail: String::new(),
        started_ms,
        finished_ms: started_ms,
    };
    record.findings = match stopped {
        Some(reason) if train.stopped => vec![Finding::StoppedEarly { reason }],
        _ => train_findings(&train, manifest.run.budget.seconds.0),
    };
    if record.findings.is_empty() {
        // Checked before the evaluation, which still runs: the lineage shows what the
        // contaminated recipe would have scored.
        if let (Some(index), Some(spec)) = (&ctx.benchmark, &manifest.evaluate.contamination) {
            let (index, rule, out) = (Arc::clone(index), spec.clone(), out_dir.clone());
            let finding = tokio::task::spawn_blocking(move || crate::contamination::check_run(&index, &rule, &out))
                .await
                .unwrap_or_else(|e| {
                    Some(Finding::HarnessFault { reason: format!("the contamination check failed: {e}") })
                });
            record.findings.extend(finding);
            let examples = out_dir.join(&spec.train_data);
            if examples.is_file() {
                crate::datasets::record_training_data(
                    &ctx.store,
                    ctx.study.id,
                    t.number,
                    idx,
                    &examples,
                    &spec.train_data,
                )
                .await?;
            }
        }
        evaluate(ctx, t, tree, &dir, seed, &mut record).await?;
    }
    record.finished_ms = now_ms();
    ctx.store.record_run(ctx.study.id, t.number, &record).await?;
    Ok(record)
}

fn train_findings(out: &ProcessOutcome, budget: f64) -> Vec<Finding> {
    let excerpt = || log_excerpt(&out.log_tail, EXCERPT_BYTES);
    let mut findings = Vec::new();
    if out.timed_out {
        findings.push(Finding::TrainOverrun { seconds: out.wall_seconds, budget });
    } else if out.could_not_start() {
        findings.push(Finding::PreflightCrash {
            reason: format!("the run command could not start ({})", describe_exit(out)),
            excerpt: excerpt(),
        });
    }
    if !out.succeeded() && !out.could_not_start() {
        findings
            .push(Finding::Crash { reason: format!("training failed: {}", describe_exit(out)), excerpt: excerpt() });
    }
    findings
}

async fn evaluate(
    ctx: &Ctx,
    t: &TrialRecord,
    tree: &Path,
    dir: &Path,
    seed: u64,
    record: &mut RunRecord,
) -> Result<(), StudyError> {
    let manifest = &ctx.recipe.manifest;
    let out_dir = dir.join("out");
    let bytes = artifact_bytes(&out_dir).map_err(|source| StudyError::Io {
        what: "cannot measure artifacts in",
        path: out_dir.clone(),
        source,
    })?;
    record.artifact_bytes = Some(bytes);
    if let Some(limit) = manifest.evaluate.artifact_max_bytes
        && bytes > limit.0
    {
        record.findings.push(Finding::SizeBlocked { bytes, limit: limit.0 });
        return Ok(());
    }
    let eval_dir = dir.join("eval");
    if let Err(e) = ctx.pristine.materialize(&eval_dir) {
        record.findings.push(Finding::HarnessFault { reason: e.to_string() });
        return Ok(());
    }
    let eval_out = dir.join("eval.json");
    let env = [
        ("POSTDOC_TRIAL", t.number.to_string()),
        ("POSTDOC_OUT", out_dir.display().to_string()),
        ("POSTDOC_EVAL_OUT", eval_out.display().to_string()),
        ("POSTDOC_TRIAL_DIR", tree.display().to_string()),
        ("POSTDOC_SEED", seed.to_string()),
        ("POSTDOC_BUDGET_S", format!("{}", manifest.evaluate.budget.seconds.0)),
    ];
    let spec = ProcessSpec {
        log_file: Some(dir.join("eval.log")),
        ..process(ctx, &manifest.evaluate.command, &eval_dir, &manifest.evaluate.budget, env)
    };
    let out = ctx.executor.run(spec, &postdoc_exec::Unwatched).await.map_err(harness)?;
    record.eval_seconds = out.wall_seconds;
    record.eval_log_tail = out.log_tail.clone();
    if out.timed_out {
        record
            .findings
            .push(Finding::EvalOverrun { seconds: out.wall_seconds, budget: manifest.evaluate.budget.seconds.0 });
        return Ok(());
    }
    if out.could_not_start() {
        record.findings.push(Finding::HarnessFault {
            reason: format!("the evaluator could not start ({}): {}", describe_exit(&out), last_line(&out.log_tail)),
        });
        return Ok(());
    }
    if !out.succeeded() {
        record.findings.push(Finding::Crash {
            reason: format!("the evaluator failed on this trial's artifacts: {}", describe_exit(&out)),
            excerpt: log_excerpt(&out.log_tail, EXCERPT_BYTES),
        });
        return Ok(());
    }
    let file = std::fs::read_to_string(&eval_out).ok();
    let objective = &manifest.study.objective.metric;
    match parse_scores(&out.log_tail, file.as_deref()) {
        Err(e) => record
            .findings
            .push(Finding::Crash { reason: format!("evaluator: {e}"), excerpt: last_line(&out.log_tail) }),
        Ok(scores) => match scores.get(objective) {
            None => record.findings.push(Finding::Crash {
                reason: format!("evaluator: {}", postdoc_eval::ScoreError::MissingObjective(objective.clone())),
                excerpt: last_line(&out.log_tail),
            }),
            Some(&score) => {
                record.score = Some(score);
                for gate in &manifest.evaluate.gates {
                    match gate.check(&scores) {
                        postdoc_core::gate::GateCheck::Passed => {}
                        postdoc_core::gate::GateCheck::Failed { value } => {
                            record.findings.push(Finding::GateMiss { gate: gate.to_string(), value: Some(value) })
                        }
                        postdoc_core::gate::GateCheck::Missing => {
                            record.findings.push(Finding::GateMiss { gate: gate.to_string(), value: None })
                        }
                    }
                }
                record.scores = scores;
            }
        },
    }
    Ok(())
}

fn last_line(text: &str) -> String {
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").chars().take(500).collect()
}

/// Runs a process while recording its handle (for recovery) and its live metrics.
async fn watched_run(
    ctx: &Ctx,
    trial: TrialNo,
    run_idx: u32,
    spec: ProcessSpec,
    role: RunRole,
) -> Result<(ProcessOutcome, Option<String>), StudyError> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let store = ctx.store.clone();
    let study = ctx.study.id;
    let sink = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            let result = match msg {
                Watched::Started(handle) => {
                    let payload = serde_json::to_value(handle).expect("handles serialize");
                    store.record_event(study, Some(trial), "process_started", &payload).await
                }
                Watched::Metrics(lines) => {
                    let at_ms = now_ms();
                    let points: Vec<MetricPoint> = lines
                        .into_iter()
                        .flat_map(|l| {
                            l.values.into_iter().map(move |(name, value)| MetricPoint {
                                run_idx,
                                step: l.step,
                                name,
                                value,
                                at_ms,
                            })
                        })
                        .collect();
                    store.record_metrics(study, trial, &points).await
                }
                Watched::Rung(value) => {
                    let payload = serde_json::to_value(value).expect("rung values serialize");
                    store.record_event(study, Some(trial), RUNG_EVENT, &payload).await
                }
            };
            if let Err(e) = result {
                tracing::warn!(trial, error = %e, "could not record a process event");
            }
        }
    });
    let rungs = ctx.rungs.as_ref().map(|table| RunRungs::new(table, run_idx, role));
    let watcher = StoreWatcher { tx, rungs };
    let outcome = ctx.executor.run(spec, &watcher).await.map_err(harness);
    let stopped = watcher.rungs.as_ref().and_then(RunRungs::stopped);
    drop(watcher);
    let _ = sink.await;
    Ok((outcome?, stopped))
}
