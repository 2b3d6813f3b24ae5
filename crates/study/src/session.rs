//! A session: one `postdoc run` of a study. It opens or resumes the study, recovers what a killed
//! session left, runs setup and the baseline, then keeps the executor's slots busy with trials
//! until a budget is spent or it is told to stop.

use crate::StudyError;
use crate::early_stop::RungTable;
use crate::layout::Layout;
use crate::recipe::Recipe;
use crate::summary::active_seconds_in;
use crate::trial;
use crate::workbench::Draft;
use postdoc_core::knobs_file;
use postdoc_core::lineage::{baseline, current_best, overtaken, study_noise};
use postdoc_core::manifest::{BrainSpec, Manifest, Provider, SpecialistSpec, Strategy};
use postdoc_core::{
    BASELINE_SPECIALIST, Edit, Finding, KnobSpec, KnobValues, Label, LineageView, OPENING_SPECIALIST, Observation,
    PathSet, Proposal, ProposalRequest, ProposeError, Specialist, TrialNo, TrialRecord, TrialStatus, Verdict, classify,
};
use postdoc_data::contamination::EvalIndex;
use postdoc_eval::{Pristine, ProtectedFile};
use postdoc_exec::{Executor, LocalExecutor, ProcessHandle, ProcessSpec, Unwatched};
use postdoc_search::{Opening, RandomSearch, Search, Tpe, TpeSettings, bandit};
use postdoc_store::{Lease, RecentOutcome, Store, StudyRecord, Tally, now_ms};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinSet;

/// How often the lease is renewed; a lease older than [`LEASE_STALE`] may be taken over.
/// The event that holds an agent's transcript, recorded with the trial it proposed.
pub const TRANSCRIPT_EVENT: &str = "transcript";

const HEARTBEAT: Duration = Duration::from_secs(5);
const LEASE_STALE: Duration = Duration::from_secs(30);
/// How many of the latest trials a lineage view lists.
const LINEAGE_RECENT: usize = 10;
/// An infrastructure fault is retried this many times before the proposal is given up.
const MAX_RETRIES: usize = 2;

/// What the researcher may override from the command line.
#[derive(Clone, Default)]
pub struct RunOptions {
    pub max_trials: Option<u64>,
    pub parallel: Option<usize>,
    /// Between SIGTERM and SIGKILL at a budget's end.
    pub grace: Option<Duration>,
    /// Specialists that replace the manifest's of the same name (tests, embedding programs).
    pub specialists: Vec<Arc<dyn Specialist>>,
    /// Which proposals wait for the researcher before they run.
    pub approve: Approval,
    /// A brain for every agent in place of the manifest's (`--brain`).
    pub brain: Option<postdoc_core::manifest::BrainSpec>,
}

/// Which proposals wait for `postdoc approve` before they run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Approval {
    /// None: the loop runs on its own.
    #[default]
    None,
    /// Proposals that change code (a patch) rather than knobs: they risk the most compute on
    /// what nobody has tried.
    Expensive,
    /// Every proposal.
    Each,
}

impl Approval {
    /// Whether a proposal with `edit` waits; `knobs_file` is its specialist's, whose changes
    /// are only knob settings.
    fn needed(self, edit: &Edit, knobs_file: Option<&str>) -> bool {
        match (self, edit) {
            (Approval::None, _) => false,
            (Approval::Each, _) => true,
            (Approval::Expensive, Edit::Patch { diff }) => match postdoc_git::paths_of_diff(diff) {
                Some(paths) => paths.iter().any(|p| Some(p.as_str()) != knobs_file),
                None => true, // names git had to quote: not worth guessing
            },
            (Approval::Expensive, _) => false,
        }
    }
}

/// What the loop tells whoever watches it.
#[derive(Debug, Clone)]
pub enum Progress {
    Note(String),
    TrialStarted { number: TrialNo, specialist: String, hypothesis: String },
    RunStarted { number: TrialNo, run: u32, seed: u64, purpose: &'static str },
    TrialFinished(Box<TrialRecord>),
}

pub trait Reporter: Send + Sync {
    fn report(&self, progress: Progress);
}

pub struct SilentReporter;

impl Reporter for SilentReporter {
    fn report(&self, _: Progress) {}
}

/// Why a session stopped proposing.
#[derive(Debug, Clone, PartialEq)]
pub enum StopReason {
    MaxTrials(u64),
    WallClock(f64),
    ComputeSeconds(f64),
    Interrupted,
    NothingToPropose,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::MaxTrials(n) => write!(f, "reached the budget of {n} trials"),
            StopReason::WallClock(s) => write!(f, "reached the wall-clock budget ({s:.0}s)"),
            StopReason::ComputeSeconds(s) => write!(f, "reached the compute budget ({s:.0}s)"),
            StopReason::Interrupted => write!(f, "interrupted; running trials were stopped and will be retried"),
            StopReason::NothingToPropose => write!(f, "no specialist can propose"),
        }
    }
}

/// Everything a trial needs from its session.
pub(crate) struct Ctx {
    pub recipe: Recipe,
    pub store: Store,
    pub study: StudyRecord,
    pub layout: Layout,
    pub pristine: Pristine,
    /// The benchmark the contamination rule checks training examples against, if it applies.
    pub benchmark: Option<Arc<EvalIndex>>,
    /// Every run's metric at each early-stopping rung, if the recipe stops runs early.
    pub rungs: Option<RungTable>,
    pub protected: PathSet,
    pub executor: Arc<dyn Executor>,
    pub specialists: Vec<Arc<dyn Specialist>>,
    /// The study's opening trials, drawn over the knobs of every built-in search, if it opens.
    pub opening: Option<OpeningPlan>,
    pub surfaces: BTreeMap<String, PathSet>,
    pub grace: Duration,
    /// Serializes keep decisions, so two trials cannot both beat the same best.
    pub decide: Mutex<()>,
    /// The trials whose screening run beat the best while their confirmation seeds run, with
    /// that run's gain: the searches build on the best of them (see `Session::candidate`).
    pub confirming: std::sync::Mutex<BTreeMap<TrialNo, f64>>,
    pub reporter: Arc<dyn Reporter>,
}

/// Who proposes a study's opening trials, and whose knobs they draw.
pub(crate) struct OpeningPlan {
    pub proposer: Arc<Opening>,
    /// The searches whose knobs the opening draws.
    pub members: Vec<String>,
}

impl Ctx {
    /// The specialists whose knobs a trial by `specialist` may set: its own, or for an opening
    /// trial, those of every search the opening draws for.
    pub(crate) fn knob_owners(&self, specialist: &str) -> Vec<&SpecialistSpec> {
        let manifest = &self.recipe.manifest;
        match &self.opening {
            Some(plan) if specialist == OPENING_SPECIALIST => {
                plan.members.iter().filter_map(|m| manifest.specialist(m)).collect()
            }
            _ => manifest.specialist(specialist).into_iter().collect(),
        }
    }

    /// The commit holding the recipe `trial` ran: its own, or the study's starting one for a
    /// trial that has none (a baseline run on the starting recipe as it stands).
    pub(crate) fn commit_of(&self, trial: &TrialRecord) -> String {
        trial.commit.clone().unwrap_or_else(|| self.study.base_commit.clone())
    }
}

/// Trials of a specialist its search learns from: enough for the densities, bounded so a long
/// study's proposals cost the same as a short one's.
const HISTORY: usize = 300;
/// The position the opening's proposer takes among the specialists, for its seeds.
const OPENING_INDEX: u64 = u64::MAX - 1;
/// Files read at commits that a session keeps: the knob files of more than [`HISTORY`] trials.
const FILES_KEPT: usize = 4 * HISTORY;

/// What asking for a proposal came to.
enum Asked {
    /// A trial is queued and may run now.
    Trial(TrialNo),
    /// An agent is drafting; its slot is taken until it submits.
    Drafting,
    /// The proposal waits for the researcher; its slot is taken until then.
    Waiting,
    /// No specialist has anything to propose now.
    Nothing,
}

/// A specialist's answer, to be recorded.
struct Drafted {
    specialist: String,
    /// The trial it was asked to build on (the best, or one being confirmed): the parent
    /// unless it chose another.
    base: TrialNo,
    outcome: Result<Proposal, ProposeError>,
    transcript: Option<postdoc_core::Transcript>,
}

enum Recorded {
    Trial(TrialNo),
    /// Held for the researcher's approval; it holds a slot meanwhile.
    Waiting,
    Invalid,
    Paused,
}

/// Agents drafting their proposals, each holding a slot, and their names.
#[derive(Default)]
struct Drafting {
    tasks: JoinSet<Drafted>,
    busy: BTreeSet<String>,
}

pub struct Session {
    ctx: Arc<Ctx>,
    lease: Lease,
    /// Seconds earlier sessions drove the study, and when this one began: the wall-clock budget
    /// is their sum with this session's time so far.
    earlier_active_s: f64,
    began: std::time::Instant,
    files_at: Mutex<BTreeMap<(String, String), String>>,
    /// Dollars the agents' providers have cost the study, all sessions included.
    dollars: std::sync::Mutex<f64>,
    approve: Approval,
    max_trials: u64,
    parallel: usize,
}

fn io<'a>(what: &'static str, path: &'a std::path::Path) -> impl FnOnce(std::io::Error) -> StudyError + 'a {
    move |source| StudyError::Io { what, path: path.to_path_buf(), source }
}

impl Session {
    /// Opens (or resumes) the manifest's study on `store`: takes its lease, recovers what an
    /// earlier session left running, and runs the setup command if it has not run yet.
    pub async fn start(
        recipe: Recipe,
        store: Store,
        options: RunOptions,
        reporter: Arc<dyn Reporter>,
    ) -> Result<Session, StudyError> {
        let manifest = recipe.manifest.clone();
        let layout = Layout::new(recipe.root(), &manifest.study.name);
        layout.ensure().map_err(io("cannot create", layout.dot_postdoc()))?;
        let protected = PathSet::new(&manifest.evaluate.protected).expect("validated with the manifest");

        let study = match store.find_study(&manifest.study.name).await? {
            None => {
                let base = clean_head(&recipe).await?;
                let pristine = snapshot(&recipe, &base, &manifest.evaluate.protected).await?;
                let record = StudyRecord {
                    id: 0,
                    name: manifest.study.name.clone(),
                    recipe: recipe.root().display().to_string(),
                    base_commit: base,
                    manifest: recipe.manifest_text.clone(),
                    comparability: manifest.comparability_key(),
                    protected_hash: pristine.hash().to_string(),
                    created_ms: now_ms(),
                };
                store.create_study(&record).await?
            }
            Some(existing) => {
                let trials = store.trials(existing.id).await?;
                let has_baseline = baseline(&trials).is_some_and(|b| b.is_kept());
                let has_candidates = trials.iter().any(|t| !t.is_baseline());
                if !has_baseline && !has_candidates && trials.iter().all(|t| t.status == TrialStatus::Finished) {
                    // Nothing was learned from the old starting point: start again from HEAD.
                    let base = clean_head(&recipe).await?;
                    let pristine = snapshot(&recipe, &base, &manifest.evaluate.protected).await?;
                    let rebased = StudyRecord {
                        base_commit: base,
                        manifest: recipe.manifest_text.clone(),
                        comparability: manifest.comparability_key(),
                        protected_hash: pristine.hash().to_string(),
                        ..existing
                    };
                    store.rebase_study(&rebased).await?;
                    rebased
                } else if existing.comparability != manifest.comparability_key() {
                    return Err(StudyError::Incomparable { study: existing.name });
                } else {
                    existing
                }
            }
        };
        let pristine = snapshot(&recipe, &study.base_commit, &manifest.evaluate.protected).await?;
        if pristine.hash() != study.protected_hash {
            return Err(StudyError::Incomparable { study: study.name });
        }
        recipe.repo.update_ref(&layout.study_ref("base"), &study.base_commit).await?;
        crate::datasets::register_evaluation_data(
            &store,
            study.id,
            &study.base_commit,
            &pristine,
            &layout.study_dir().join("scratch"),
        )
        .await?;
        let rungs = match &manifest.early_stop {
            Some(spec) => Some(RungTable::load(spec.clone(), &store, study.id).await?),
            None => None,
        };
        let benchmark = match &manifest.evaluate.contamination {
            Some(spec) => Some(Arc::new(crate::contamination::benchmark_index(&pristine, spec)?)),
            None => None,
        };

        let lease = take_lease(&store, &study).await?;
        let parallel = options.parallel.unwrap_or(manifest.study.parallel).max(1);
        let max_trials = options.max_trials.unwrap_or(manifest.study.budget.max_trials);
        // Searches are built once every specialist is known: each expects its share of the trials.
        let mut specialists: Vec<Option<Arc<dyn Specialist>>> = Vec::new();
        let mut searches = Vec::new();
        let mut surfaces = BTreeMap::new();
        let mut sitting_out = Vec::new();
        for spec in &manifest.specialists {
            let mut globs = spec.surface.clone();
            globs.extend(spec.knobs_file.clone());
            surfaces.insert(spec.name.clone(), PathSet::new(&globs).expect("validated with the manifest"));
            let custom = options.specialists.iter().find(|s| s.name() == spec.name).cloned();
            let built: Arc<dyn Specialist> = match (custom, spec.strategy) {
                (Some(custom), _) => custom,
                (None, Strategy::Tpe) => {
                    searches.push((specialists.len(), spec));
                    specialists.push(None);
                    continue;
                }
                (None, Strategy::Random) => Arc::new(RandomSearch::new(spec.name.clone(), spec.knobs.clone())),
                (None, Strategy::Agent) => {
                    let own = spec.brain.clone().unwrap_or_default();
                    let brain = options.brain.as_ref().map(|given| given.over(&own)).unwrap_or(own);
                    // A recipe may declare agents for when a model is given.
                    if brain.provider.is_none() {
                        sitting_out.push(spec.name.clone());
                        continue;
                    }
                    let brain_error = |reason: String| StudyError::Brain { specialist: spec.name.clone(), reason };
                    if let Some((key, why)) = brain.problem() {
                        return Err(brain_error(format!("{key}: {why}")));
                    }
                    // A local model's file is named relative to the recipe.
                    let brain = match (brain.provider, &brain.model) {
                        (Some(Provider::Local), Some(file)) => {
                            BrainSpec { model: Some(recipe.root().join(file).display().to_string()), ..brain }
                        }
                        _ => brain,
                    };
                    let (brain, settings) = postdoc_agent::connect(&brain).map_err(brain_error)?;
                    let role = spec.role.as_deref().unwrap_or("Improve the recipe's score within your surface.");
                    let brief = postdoc_agent::Brief::new(&manifest, spec, role);
                    Arc::new(postdoc_agent::Agent::new(brief, brain, settings))
                }
            };
            specialists.push(Some(built));
        }
        let share = (max_trials as usize).div_ceil(specialists.len().max(1));
        let opening = open(&searches, max_trials, manifest.study.seed);
        if let Some(plan) = &opening {
            let files: Vec<String> =
                plan.members.iter().filter_map(|m| manifest.specialist(m)?.knobs_file.clone()).collect();
            surfaces.insert(OPENING_SPECIALIST.to_string(), PathSet::new(&files).expect("validated with the manifest"));
        }
        // Each search learns its caps over every knob of the recipe: a run's seconds depend on
        // the steps another specialist sets as much as on its own knobs.
        let recipe_knobs: BTreeMap<String, KnobSpec> =
            recipe_knob_owners(&manifest).iter().flat_map(|s| s.knobs.clone()).collect();
        for (slot, spec) in searches {
            let tpe = Tpe::new(spec.name.clone(), spec.knobs.clone(), TpeSettings::with_share(share))
                .with_others(recipe_knobs.clone());
            specialists[slot] = Some(Arc::new(tpe));
        }
        let specialists: Vec<Arc<dyn Specialist>> = specialists.into_iter().flatten().collect();
        if specialists.is_empty() {
            return Err(StudyError::Brain {
                specialist: sitting_out.join(", "),
                reason: "no model provider is named for the agents: give --brain (e.g. --brain local) or add a \
                         [brain] section to postdoc.toml"
                    .into(),
            });
        }
        if options.brain.is_some() && !manifest.specialists.iter().any(|s| s.strategy == Strategy::Agent) {
            reporter.report(Progress::Note(
                "--brain is not used: postdoc.toml declares no agent specialist (strategy = \"agent\")".into(),
            ));
        }
        if !sitting_out.is_empty() {
            reporter.report(Progress::Note(format!(
                "{} sit{} out: no model provider is named (give --brain, e.g. --brain local)",
                sitting_out.join(", "),
                if sitting_out.len() == 1 { "s" } else { "" }
            )));
        }
        // Read before this session's own marker: an earlier session left open was killed.
        let earlier_active_s = active_seconds_in(&store, study.id).await?;
        let dollars: f64 = crate::summary::model_spend(&store, study.id).await?.values().map(|s| s.dollars).sum();
        store
            .record_event(
                study.id,
                None,
                "session_started",
                &serde_json::json!({
                    "manifest": recipe.manifest_text, "max_trials": max_trials, "parallel": parallel,
                    "owner": lease.owner,
                }),
            )
            .await?;
        let ctx = Arc::new(Ctx {
            recipe,
            store,
            study,
            layout,
            pristine,
            benchmark,
            rungs,
            protected,
            executor: Arc::new(LocalExecutor::new(parallel)),
            specialists,
            opening,
            surfaces,
            grace: options.grace.unwrap_or(Duration::from_secs(5)),
            decide: Mutex::new(()),
            confirming: std::sync::Mutex::new(BTreeMap::new()),
            reporter,
        });
        let session = Session {
            ctx,
            lease,
            earlier_active_s,
            began: std::time::Instant::now(),
            files_at: Mutex::new(BTreeMap::new()),
            dollars: std::sync::Mutex::new(dollars),
            approve: options.approve,
            max_trials,
            parallel,
        };
        let started = async {
            session.recover().await?;
            session.setup().await
        };
        if let Err(e) = started.await {
            session.release().await;
            return Err(e);
        }
        Ok(session)
    }

    pub fn study(&self) -> &StudyRecord {
        &self.ctx.study
    }

    pub fn store(&self) -> &Store {
        &self.ctx.store
    }

    async fn release(&self) {
        let _ = self.ctx.store.release_lease(self.ctx.study.id, &self.lease.owner).await;
    }

    /// Labels what an earlier session left running as `harness_abort` (after killing its
    /// processes) and queues a retry of each; clears stale worktrees.
    async fn recover(&self) -> Result<(), StudyError> {
        let ctx = &self.ctx;
        let trials = ctx.store.trials(ctx.study.id).await?;
        let events = ctx.store.events(ctx.study.id, None).await?;
        for t in trials.iter().filter(|t| t.status == TrialStatus::Running) {
            for e in events.iter().filter(|e| e.trial == Some(t.number) && e.kind == "process_started") {
                if let Ok(handle) = serde_json::from_value::<ProcessHandle>(e.payload.clone())
                    && postdoc_exec::kill_leftover(handle)
                {
                    tracing::info!(trial = t.number, pid = handle.pid, "killed a process left by an earlier session");
                }
            }
            let verdict = Verdict {
                label: Label::HarnessAbort,
                reason: "the orchestrator stopped while this trial was running".into(),
                excerpt: None,
            };
            abort_and_retry(ctx, t, verdict).await?;
        }
        // Worktrees of this study belong to no running trial now.
        if let Ok(entries) = std::fs::read_dir(ctx.layout.worktrees()) {
            let prefix = format!("{}-", ctx.study.name);
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = ctx.recipe.repo.remove_worktree(&entry.path()).await;
                }
            }
        }
        Ok(())
    }

    /// Runs the setup command once per study (again only if the command changed or failed).
    async fn setup(&self) -> Result<(), StudyError> {
        let ctx = &self.ctx;
        let Some(setup) = &ctx.recipe.manifest.setup else { return Ok(()) };
        let events = ctx.store.events(ctx.study.id, None).await?;
        let done = events.iter().any(|e| e.kind == "setup_done" && e.payload["command"] == setup.command.as_str());
        if done {
            return Ok(());
        }
        ctx.reporter.report(Progress::Note(format!("setting up: {}", setup.command)));
        let env_dir = ctx.layout.env_dir();
        if env_dir.exists() {
            std::fs::remove_dir_all(&env_dir).map_err(io("cannot clear", &env_dir))?;
        }
        std::fs::create_dir_all(&env_dir).map_err(io("cannot create", &env_dir))?;
        let tree = ctx.layout.worktree("setup");
        let _ = ctx.recipe.repo.remove_worktree(&tree).await;
        ctx.recipe.repo.add_worktree(&tree, &ctx.study.base_commit).await?;
        let log = ctx.layout.study_dir().join("setup.log");
        let budget = postdoc_core::manifest::ProcessBudget { seconds: setup.seconds, memory: None, file_size: None };
        let spec = ProcessSpec { log_file: Some(log), ..trial::process(ctx, &setup.command, &tree, &budget, []) };
        let outcome = ctx.executor.run(spec, &Unwatched).await;
        let _ = ctx.recipe.repo.remove_worktree(&tree).await;
        let outcome = outcome.map_err(|e| StudyError::Setup { reason: e.to_string(), excerpt: String::new() })?;
        if !outcome.succeeded() {
            let reason = if outcome.timed_out {
                format!("it ran past its {:.0}s budget", setup.seconds.0)
            } else {
                trial::describe_exit(&outcome)
            };
            return Err(StudyError::Setup {
                reason,
                excerpt: postdoc_core::label::log_excerpt(&outcome.log_tail, 2000),
            });
        }
        ctx.store
            .record_event(
                ctx.study.id,
                None,
                "setup_done",
                &serde_json::json!({"command": setup.command, "seconds": outcome.wall_seconds}),
            )
            .await?;
        Ok(())
    }

    /// Runs trials until a budget is spent, nothing can be proposed, or `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) -> Result<StopReason, StudyError> {
        let result = self.run_inner(&mut stop).await;
        // The slots' worktrees go with the session, unless another session has taken the study
        // over (and with it the slots of the same names).
        if !matches!(result, Err(StudyError::LeaseLost)) {
            let drafts = self.ctx.recipe.manifest.specialists.iter().filter(|s| s.strategy == Strategy::Agent);
            let trees = (0..self.parallel)
                .map(|slot| self.ctx.layout.slot_worktree(slot))
                .chain(drafts.map(|s| self.ctx.layout.worktree(&format!("draft-{}", s.name))));
            for tree in trees {
                if tree.exists() {
                    let _ = self.ctx.recipe.repo.remove_worktree(&tree).await;
                }
            }
        }
        let ended = serde_json::json!({"result": match &result { Ok(r) => r.to_string(), Err(e) => e.to_string() }});
        let _ = self.ctx.store.record_event(self.ctx.study.id, None, "session_ended", &ended).await;
        self.release().await;
        result
    }

    async fn run_inner(&self, stop: &mut watch::Receiver<bool>) -> Result<StopReason, StudyError> {
        let ctx = &self.ctx;
        let mut running: JoinSet<(TrialNo, Result<Box<TrialRecord>, StudyError>)> = JoinSet::new();
        // Trial number to the executor slot (and so the worktree) it runs in.
        let mut in_flight: BTreeMap<TrialNo, usize> = BTreeMap::new();
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        let mut stop_reason: Option<StopReason> = None;
        // A dropped sender can never say stop; stop listening rather than wake on it forever.
        let mut stop_open = true;
        let mut unavailable: BTreeMap<String, String> = BTreeMap::new();
        let mut drafting = Drafting::default();
        loop {
            if *stop.borrow() {
                stop_reason = Some(StopReason::Interrupted);
            }
            // A scheduling pass reads aggregates and short lists, never the whole lineage, so its
            // cost does not grow with the study.
            let baselines = ctx.store.baselines(ctx.study.id).await?;
            let baseline_ok = self.baseline(&baselines).is_some_and(|b| b.is_kept());
            if let Some(b) = self.baseline(&baselines).filter(|b| b.status == TrialStatus::Finished && !b.is_kept()) {
                // Candidates cannot be judged without the unmodified recipe's score.
                return Err(StudyError::Baseline {
                    label: b.label.unwrap_or(Label::HarnessAbort),
                    reason: b.reason.clone().unwrap_or_default(),
                    excerpt: b.log_excerpt.clone(),
                });
            }
            let mut tally = ctx.store.tally(ctx.study.id).await?;
            if stop_reason.is_none() {
                stop_reason = self.budget_spent(&tally);
            }
            self.mind_the_dollars(&mut unavailable).await?;
            if stop_reason.is_some() && !drafting.tasks.is_empty() {
                // No trial will run after a stop: drafts in progress would be work for nothing.
                drafting.tasks.abort_all();
                while drafting.tasks.join_next().await.is_some() {}
                drafting.busy.clear();
            }
            // Fill free slots: queued trials first (retries, proposals of a killed session), then
            // the baseline, then new proposals once the baseline has been judged.
            let mut fresh = true;
            // Proposals waiting for the researcher hold their slots: the loop does not pile up more.
            let mut waiting = ctx.store.waiting(ctx.study.id).await?.len();
            while stop_reason.is_none() && running.len() + drafting.tasks.len() + waiting < self.parallel {
                // Fresh for every slot: the proposal just made changes whose turn it is.
                if !fresh {
                    tally = ctx.store.tally(ctx.study.id).await?;
                }
                fresh = false;
                let queued = ctx.store.queued(ctx.study.id).await?;
                let pending = queued.into_iter().find(|n| !in_flight.contains_key(n));
                let next = if let Some(n) = pending {
                    let is_baseline = baselines.iter().any(|b| b.number == n);
                    if !is_baseline && !baseline_ok {
                        break;
                    }
                    n
                } else if self.baseline(&baselines).is_none()
                    && !baselines.iter().any(|t| t.status != TrialStatus::Finished)
                {
                    let proposal = Proposal {
                        specialist: BASELINE_SPECIALIST.into(),
                        hypothesis: "the unmodified recipe, run on several seeds to measure its score and noise".into(),
                        expected_delta: None,
                        parent: None,
                        edit: Edit::Unchanged,
                        cites: Vec::new(),
                    };
                    ctx.store.propose(ctx.study.id, &proposal, None, None).await?
                } else if !baseline_ok {
                    break;
                } else {
                    // Queued and running trials are in the store already, so they count here; drafts
                    // will be trials.
                    if tally.counted + drafting.tasks.len() as u64 >= self.max_trials {
                        if running.is_empty() && drafting.tasks.is_empty() && waiting == 0 {
                            stop_reason = Some(StopReason::MaxTrials(self.max_trials));
                        }
                        break;
                    }
                    match self.propose(&tally, &mut unavailable, &mut drafting).await? {
                        Asked::Trial(n) => n,
                        Asked::Drafting => continue,
                        Asked::Waiting => {
                            waiting += 1;
                            continue;
                        }
                        Asked::Nothing => {
                            if running.is_empty() && drafting.tasks.is_empty() && waiting == 0 {
                                stop_reason = Some(StopReason::NothingToPropose);
                            }
                            break;
                        }
                    }
                };
                let slot = (0..self.parallel).find(|s| !in_flight.values().any(|used| used == s)).expect("a free slot");
                in_flight.insert(next, slot);
                let ctx2 = Arc::clone(ctx);
                running.spawn(async move { (next, trial::run(ctx2, next, slot).await) });
                if !baseline_ok {
                    break; // the baseline runs alone
                }
            }
            let awaiting = stop_reason.is_none() && waiting > 0;
            if running.is_empty() && drafting.tasks.is_empty() && !awaiting {
                return Ok(stop_reason.unwrap_or(StopReason::NothingToPropose));
            }
            tokio::select! {
                done = running.join_next(), if !running.is_empty() => {
                    let Some(done) = done else { continue };
                    let (number, result) = done.map_err(|e| StudyError::Io {
                        what: "a trial task failed", path: ctx.layout.study_dir(), source: std::io::Error::other(e.to_string()),
                    })?;
                    in_flight.remove(&number);
                    ctx.reporter.report(Progress::TrialFinished(result?));
                }
                drafted = drafting.tasks.join_next(), if !drafting.tasks.is_empty() => {
                    let Some(drafted) = drafted else { continue };
                    let drafted = drafted.map_err(|e| StudyError::Io {
                        what: "an agent's drafting task failed", path: ctx.layout.study_dir(),
                        source: std::io::Error::other(e.to_string()),
                    })?;
                    drafting.busy.remove(&drafted.specialist);
                    // A queued trial is picked up by the next pass.
                    self.record(drafted, &mut unavailable).await?;
                }
                _ = heartbeat.tick() => {
                    if !ctx.store.heartbeat(ctx.study.id, &self.lease.owner).await? {
                        running.abort_all();
                        return Err(StudyError::LeaseLost);
                    }
                }
                changed = stop.changed(), if stop_open => {
                    if changed.is_err() {
                        stop_open = false;
                    } else if *stop.borrow() {
                        // Stop now: kill what runs, label it, queue its retry for the next session.
                        drafting.tasks.abort_all();
                        running.abort_all();
                        while running.join_next().await.is_some() {}
                        for (number, slot) in std::mem::take(&mut in_flight) {
                            let t = ctx.store.trial(&ctx.study, number).await?;
                            if t.status != TrialStatus::Finished {
                                let verdict = Verdict { label: Label::HarnessAbort, reason: "interrupted by the researcher".into(), excerpt: None };
                                abort_and_retry(ctx, &t, verdict).await?;
                            }
                            let _ = ctx.recipe.repo.remove_worktree(&ctx.layout.slot_worktree(slot)).await;
                        }
                        return Ok(StopReason::Interrupted);
                    }
                }
            }
        }
    }

    /// What a search has to learn from: the study's latest finished trials (`trials`), whoever
    /// proposed them, each as the values `owners`' knobs had in its recipe, with its gain, label
    /// and what it used of the caps; the current best first if it is older.
    async fn history(
        &self,
        trials: &[TrialRecord],
        owners: &[&SpecialistSpec],
        best: &TrialRecord,
        best_knobs: &KnobValues,
    ) -> Vec<Observation> {
        let observe = |knobs: KnobValues, t: &TrialRecord| {
            let label = t.label.unwrap_or(Label::Discard);
            Observation::of_trial(
                knobs,
                label,
                t.score,
                t.artifact_bytes,
                t.train_seconds,
                t.runs,
                &self.ctx.recipe.manifest,
            )
        };
        let mut history = Vec::with_capacity(trials.len() + 1);
        if !best_knobs.is_empty() && !trials.iter().any(|t| t.number == best.number) {
            history.push(observe(best_knobs.clone(), best));
        }
        for t in trials {
            // A trial refused before it was committed ran no recipe.
            let Some(commit) = &t.commit else { continue };
            let knobs = self.knobs_at(commit, owners).await;
            if !knobs.is_empty() {
                history.push(observe(knobs, t));
            }
        }
        history
    }

    /// The values `owners`' knobs have in the recipe at `commit`.
    async fn knobs_at(&self, commit: &str, owners: &[&SpecialistSpec]) -> KnobValues {
        let mut values = KnobValues::new();
        for owner in owners {
            if let Some(file) = &owner.knobs_file {
                values.extend(knobs_file::read_knobs(&self.file_at(commit, file).await, owner.knobs.keys()));
            }
        }
        values
    }

    /// The baseline of the study's current starting commit (a rebased study's old, failed
    /// baseline no longer counts).
    fn baseline<'t>(&self, trials: &'t [TrialRecord]) -> Option<&'t TrialRecord> {
        baseline(trials).filter(|b| b.commit.as_deref().is_none_or(|c| c == self.ctx.study.base_commit))
    }

    /// Once the agents have spent the study's dollars, they propose no more (built-in
    /// specialists cost nothing and go on); said once, in the progress and the lineage.
    async fn mind_the_dollars(&self, unavailable: &mut BTreeMap<String, String>) -> Result<(), StudyError> {
        let manifest = &self.ctx.recipe.manifest;
        let Some(cap) = manifest.study.budget.max_dollars else { return Ok(()) };
        let spent = *self.dollars.lock().unwrap_or_else(|e| e.into_inner());
        if spent < cap {
            return Ok(());
        }
        let why = format!("the study's model budget is spent (${spent:.4} of ${cap})");
        let mut paused = Vec::new();
        let agents = manifest.specialists.iter().filter(|s| s.strategy == Strategy::Agent);
        // Agents sitting out this session (no model) are not paused: they never ran.
        for spec in agents.filter(|s| self.ctx.specialists.iter().any(|built| built.name() == s.name)) {
            if !unavailable.contains_key(&spec.name) {
                unavailable.insert(spec.name.clone(), why.clone());
                paused.push(spec.name.clone());
            }
        }
        if !paused.is_empty() {
            self.ctx.reporter.report(Progress::Note(format!("{why}: {} propose no more", paused.join(", "))));
            let payload = serde_json::json!({"spent": spent, "max_dollars": cap, "paused": paused});
            self.ctx.store.record_event(self.ctx.study.id, None, "model_budget_spent", &payload).await?;
        }
        Ok(())
    }

    fn budget_spent(&self, tally: &Tally) -> Option<StopReason> {
        let budget = &self.ctx.recipe.manifest.study.budget;
        if let Some(limit) = budget.compute_seconds
            && tally.compute_seconds >= limit.0
        {
            return Some(StopReason::ComputeSeconds(limit.0));
        }
        if let Some(limit) = budget.wall_clock
            && self.earlier_active_s + self.began.elapsed().as_secs_f64() >= limit.0
        {
            return Some(StopReason::WallClock(limit.0));
        }
        None
    }

    /// A file's text at a commit (empty if absent). Commits never change, and every proposal
    /// reads the knob files of the trials its search learns from, so reads are kept rather
    /// than asked of git again (knob files are small; the cache is bounded all the same).
    async fn file_at(&self, commit: &str, path: &str) -> String {
        let key = (commit.to_string(), path.to_string());
        if let Some(text) = self.files_at.lock().await.get(&key) {
            return text.clone();
        }
        let read = self.ctx.recipe.repo.read_files(commit, &[path.to_string()]).await;
        let text =
            read.ok().and_then(|mut v| v.pop()).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        let mut cache = self.files_at.lock().await;
        if cache.len() >= FILES_KEPT {
            cache.clear();
        }
        cache.insert(key, text.clone());
        text
    }

    /// The specialist the bandit gives the free slot to, among those not paused or drafting,
    /// with its position (for its seeds); `None` when none can propose.
    async fn bandit_choice(
        &self,
        tally: &Tally,
        unavailable: &BTreeMap<String, String>,
        drafting: &Drafting,
    ) -> Result<Option<(u64, Arc<dyn Specialist>)>, StudyError> {
        let ctx = &self.ctx;
        let manifest = &ctx.recipe.manifest;
        let proposals_of = |name: &str| tally.proposals.get(name).copied().unwrap_or(0);
        // A specialist drafting already is busy: one proposal at a time each.
        let available: Vec<(usize, &Arc<dyn Specialist>)> = ctx
            .specialists
            .iter()
            .enumerate()
            .filter(|(_, s)| !unavailable.contains_key(s.name()) && !drafting.busy.contains(s.name()))
            .collect();
        let outcomes = ctx.store.recent_outcomes(ctx.study.id, bandit::WINDOW * ctx.specialists.len()).await?;
        let direction = manifest.study.objective.direction;
        // A failure's score, if the evaluator gave one, is not to be trusted. A run stopped early
        // was behind, by how much is not known: it is left out rather than counted as a failure,
        // since a specialist's first, random draws are often the ones stopped, and they say
        // nothing of what its search will find.
        let moved = |o: &RecentOutcome| match (o.label.is_failure(), o.score, o.parent_score) {
            (true, ..) => Some(None),
            (false, Some(score), Some(parent)) => Some(Some(direction.gain(score) - direction.gain(parent))),
            _ => None,
        };
        let mut recent: Vec<Vec<Option<f64>>> = Vec::with_capacity(available.len());
        let mut counts: Vec<(u64, u64)> = Vec::with_capacity(available.len());
        for (_, s) in &available {
            // The opening's trials that drew a specialist's knobs are its first tries too: they
            // count as its moves and as its first turns, so a specialist whose knobs the opening
            // found worthless does not take two more turns to show it. Not the opening's draws
            // that failed: most of a box of model shapes is over a size cap, and its search,
            // which learns where the caps lie from those very failures, steers clear of them.
            // Counted, they judged tiny-golf's model specialist on three random failures, and
            // it got no turn of its own.
            let owners = ctx.knob_owners(s.name());
            let (mut mine, mut drawn, mut stopped) = (Vec::new(), 0, 0);
            for o in &outcomes {
                let opening = o.specialist == OPENING_SPECIALIST;
                let theirs = o.specialist == s.name() || (opening && self.changed(o, &owners).await);
                if !theirs || (opening && o.label.is_failure()) {
                    continue;
                }
                drawn += u64::from(opening);
                match moved(o) {
                    Some(m) => mine.push(m),
                    None => stopped += 1,
                }
            }
            recent.push(mine);
            counts.push((proposals_of(s.name()) + drawn, stopped));
        }
        let arms: Vec<bandit::Arm<'_>> = recent
            .iter()
            .zip(&counts)
            .map(|(recent, &(proposals, stopped))| bandit::Arm { proposals, stopped, recent })
            .collect();
        let total: u64 = tally.proposals.values().sum();
        let chosen = bandit::choose(&arms, mix(manifest.study.seed, u64::MAX, total));
        Ok(chosen.map(|i| (available[i].0 as u64, Arc::clone(available[i].1))))
    }

    /// Whether a trial set `owners`' knobs to other values than the trial it built on had.
    async fn changed(&self, o: &RecentOutcome, owners: &[&SpecialistSpec]) -> bool {
        match (&o.commit, &o.parent_commit) {
            (Some(commit), Some(parent)) if !owners.is_empty() => {
                self.knobs_at(commit, owners).await != self.knobs_at(parent, owners).await
            }
            _ => false,
        }
    }

    /// Gives the free slot to a specialist (the opening's trials first; then each takes its first
    /// turns in order, and a bandit over how far their recent moves took the recipe decides),
    /// asks it for its next proposal, and records it.
    async fn propose(
        &self,
        tally: &Tally,
        unavailable: &mut BTreeMap<String, String>,
        drafting: &mut Drafting,
    ) -> Result<Asked, StudyError> {
        let ctx = &self.ctx;
        let manifest = &ctx.recipe.manifest;
        let proposals_of = |name: &str| tally.proposals.get(name).copied().unwrap_or(0);
        // The latest finished trials, read once: the combination and the chosen search's
        // history both look back on them.
        let finished = ctx.store.finished_trials(ctx.study.id, HISTORY).await?;
        // The opening's trials come first; then the bandit decides.
        let opening = ctx.opening.as_ref().filter(|plan| proposals_of(OPENING_SPECIALIST) < plan.proposer.trials());
        let (index, specialist) = match opening {
            Some(plan) => (OPENING_INDEX, Arc::clone(&plan.proposer) as Arc<dyn Specialist>),
            None => {
                if let Some(drafted) = self.combination(&finished, unavailable).await? {
                    return self.queue(drafted, unavailable, drafting).await;
                }
                match self.bandit_choice(tally, unavailable, drafting).await? {
                    Some(chosen) => chosen,
                    None => return Ok(Asked::Nothing),
                }
            }
        };
        let name = specialist.name().to_string();
        let view = lineage_view(&ctx.store, &ctx.study, &manifest.study.objective, Some(&name)).await?;
        let best = view.best.as_ref().expect("a kept baseline exists before any proposal");
        let agent = manifest.specialist(&name).is_some_and(|s| s.strategy == Strategy::Agent);
        // An agent's draft takes minutes, by which time a confirmation has ended: it starts
        // from the best, which its lineage view names.
        let candidate = if agent { None } else { self.candidate(best).await? };
        let base = candidate.as_ref().unwrap_or(best);
        let owners = ctx.knob_owners(&name);
        let base_commit = ctx.commit_of(base);
        let best_knobs = self.knobs_at(&base_commit, &owners).await;
        let start_knobs = self.knobs_at(&ctx.study.base_commit, &owners).await;
        let everyone = recipe_knob_owners(manifest);
        let recipe_knobs = self.knobs_at(&base_commit, &everyone).await;
        let best_recipe = self.knobs_at(&ctx.commit_of(best), &everyone).await;
        let history = self.history(&finished, &everyone, best, &best_recipe).await;
        let turn = proposals_of(&name);
        let seed = mix(manifest.study.seed, index, turn);
        if agent {
            // An agent drafts in a worktree of its own, at the current best, while the loop goes
            // on: its session may take minutes.
            let tree = ctx.layout.worktree(&format!("draft-{name}"));
            let draft = Draft::open(Arc::clone(ctx), tree, best.number).await.map_err(|e| StudyError::Io {
                what: "cannot prepare the draft worktree",
                path: ctx.layout.worktrees(),
                source: std::io::Error::other(e.to_string()),
            })?;
            let best_number = best.number;
            drafting.busy.insert(name.clone());
            drafting.tasks.spawn(async move {
                let request = ProposalRequest {
                    seed,
                    turn,
                    view: &view,
                    best_knobs: &best_knobs,
                    start_knobs: &start_knobs,
                    recipe_knobs: &recipe_knobs,
                    history: &history,
                    bench: Some(&draft as &dyn postdoc_core::Workbench),
                };
                let outcome = specialist.propose(request).await;
                Drafted { specialist: name, base: best_number, outcome, transcript: draft.take_transcript() }
            });
            return Ok(Asked::Drafting);
        }
        let request = ProposalRequest {
            seed,
            turn,
            view: &view,
            best_knobs: &best_knobs,
            start_knobs: &start_knobs,
            recipe_knobs: &recipe_knobs,
            history: &history,
            bench: None,
        };
        let outcome = specialist.propose(request).await;
        let drafted = Drafted { specialist: name, base: base.number, outcome, transcript: None };
        self.queue(drafted, unavailable, drafting).await
    }

    /// The trial being confirmed whose screening run beat the best by the most, if any: the
    /// recipe a search's proposal builds on while it runs its fresh seeds. Most such trials are
    /// kept, and a change tried meanwhile on the best they are about to replace is judged on a
    /// recipe left behind: in tiny-golf a new model shape proposed while a tuned optimizer was
    /// being confirmed ran with the starting optimizer, scored worse than the tuned recipe and
    /// was dropped. If the candidate is not kept, what was built on it is judged like any
    /// trial, against the best.
    async fn candidate(&self, best: &TrialRecord) -> Result<Option<TrialRecord>, StudyError> {
        let direction = self.ctx.recipe.manifest.study.objective.direction;
        let best_gain = best.score.map(|s| direction.gain(s)).unwrap_or(f64::NEG_INFINITY);
        let leading = {
            let confirming = self.ctx.confirming.lock().unwrap_or_else(|e| e.into_inner());
            // The best may have moved past a candidate since its screening run.
            confirming.iter().filter(|(_, gain)| **gain > best_gain).max_by(|a, b| a.1.total_cmp(b.1)).map(|(n, _)| *n)
        };
        match leading {
            Some(n) => Ok(Some(self.ctx.store.trial(&self.ctx.study, n).await?).filter(|t| t.commit.is_some())),
            None => Ok(None),
        }
    }

    /// Records a proposal made on the spot and says what became of the slot.
    async fn queue(
        &self,
        drafted: Drafted,
        unavailable: &mut BTreeMap<String, String>,
        drafting: &mut Drafting,
    ) -> Result<Asked, StudyError> {
        let ctx = &self.ctx;
        match self.record(drafted, unavailable).await? {
            Recorded::Trial(number) => Ok(Asked::Trial(number)),
            Recorded::Waiting => Ok(Asked::Waiting),
            // The slot is still free: ask again, unless the invalid proposal spent the budget.
            Recorded::Invalid | Recorded::Paused => {
                let tally = ctx.store.tally(ctx.study.id).await?;
                if tally.counted >= self.max_trials {
                    return Ok(Asked::Nothing);
                }
                Box::pin(self.propose(&tally, unavailable, drafting)).await
            }
        }
    }

    /// A change that beat the trial it built on but is not in the best's line (another line
    /// overtook it), proposed again on the current best by the specialist that made it (see
    /// [`overtaken`]): only the values it changed, and only where the best has not moved those
    /// knobs itself.
    async fn combination(
        &self,
        finished: &[TrialRecord],
        unavailable: &BTreeMap<String, String>,
    ) -> Result<Option<Drafted>, StudyError> {
        let ctx = &self.ctx;
        let manifest = &ctx.recipe.manifest;
        let kept = ctx.store.kept_trials(ctx.study.id).await?;
        let Some(best) = current_best(&kept) else { return Ok(None) };
        let mut trials = finished.to_vec();
        // Every kept trial, so that the best's line is known however far back it reaches.
        trials.extend(kept.iter().filter(|k| !finished.iter().any(|f| f.number == k.number)).cloned());
        trials.extend(ctx.store.running(ctx.study.id).await?);
        for n in ctx.store.queued(ctx.study.id).await? {
            trials.push(ctx.store.trial(&ctx.study, n).await?);
        }
        let direction = manifest.study.objective.direction;
        let best_commit = ctx.commit_of(best);
        for o in overtaken(&trials, best, direction, study_noise(&kept), &manifest.noise) {
            let name = &o.trial.specialist;
            let known = manifest.specialist(name).is_some() || (name == OPENING_SPECIALIST && ctx.opening.is_some());
            let Edit::Knobs { values } = &o.trial.edit else { continue };
            if !known || unavailable.contains_key(name) {
                continue;
            }
            // Only the values it changed: an edit also names the knobs it left as its parent had
            // them, and those would undo the best's own changes.
            let owners = ctx.knob_owners(name);
            let before = self.knobs_at(&ctx.commit_of(o.parent), &owners).await;
            let at_best = self.knobs_at(&best_commit, &owners).await;
            let change: KnobValues = values
                .iter()
                .filter(|(k, v)| before.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            // Where the best has moved one of these knobs itself, the two changes compete
            // rather than add up: that is a search's business, not a combination.
            if change.is_empty() || change.keys().any(|k| at_best.get(k) != before.get(k)) {
                continue;
            }
            // In the objective's own units, as a proposal states it.
            let moved = o.trial.score.zip(o.parent.score).map(|(mine, theirs)| mine - theirs);
            let hypothesis = format!(
                "combine: trial {}'s change (it moved the score of trial {}, which it built on, by {:+.4}) on the current best, trial {}, which overtook it",
                o.trial.number,
                o.parent.number,
                moved.unwrap_or(f64::NAN),
                best.number
            );
            let proposal = Proposal {
                specialist: name.clone(),
                hypothesis,
                expected_delta: moved,
                parent: Some(best.number),
                edit: Edit::Knobs { values: change },
                cites: Vec::new(),
            };
            return Ok(Some(Drafted {
                specialist: name.clone(),
                base: best.number,
                outcome: Ok(proposal),
                transcript: None,
            }));
        }
        Ok(None)
    }

    /// Records what a specialist came back with: a queued trial, an `invalid_proposal` trial, or
    /// (its provider being down) a pause for the rest of the session.
    async fn record(
        &self,
        drafted: Drafted,
        unavailable: &mut BTreeMap<String, String>,
    ) -> Result<Recorded, StudyError> {
        let ctx = &self.ctx;
        let Drafted { specialist: name, base, outcome, transcript } = drafted;
        if let Some(t) = &transcript {
            *self.dollars.lock().unwrap_or_else(|e| e.into_inner()) += t.spend.dollars;
        }
        let (proposal, invalid) = match outcome {
            Ok(p) => (p, None),
            Err(ProposeError::Invalid(why)) => (
                Proposal {
                    specialist: name.clone(),
                    hypothesis: "(no usable proposal)".into(),
                    expected_delta: None,
                    parent: None,
                    edit: Edit::Unchanged,
                    cites: Vec::new(),
                },
                Some(why),
            ),
            Err(ProposeError::Unavailable(why)) => {
                ctx.reporter.report(Progress::Note(format!("specialist {name} is paused: {why}")));
                ctx.store
                    .record_event(
                        ctx.study.id,
                        None,
                        "specialist_unavailable",
                        &serde_json::json!({"specialist": name, "reason": why, "transcript": transcript}),
                    )
                    .await?;
                // Paused for the rest of the session: a provider that is down does not burn trials.
                unavailable.insert(name, why);
                return Ok(Recorded::Paused);
            }
        };
        let parent = proposal.parent.unwrap_or(base);
        let proposal = Proposal { specialist: name, ..proposal };
        let number = ctx.store.propose(ctx.study.id, &proposal, Some(parent), None).await?;
        if let Some(t) = &transcript {
            let mut payload = serde_json::json!(t);
            payload["specialist"] = serde_json::json!(proposal.specialist);
            ctx.store.record_event(ctx.study.id, Some(number), TRANSCRIPT_EVENT, &payload).await?;
        }
        if let Some(why) = invalid {
            let verdict = classify(&[Finding::InvalidProposal { reason: why }], None);
            ctx.store.finish(ctx.study.id, number, &verdict).await?;
            let record = ctx.store.trial(&ctx.study, number).await?;
            ctx.reporter.report(Progress::TrialFinished(Box::new(record)));
            return Ok(Recorded::Invalid);
        }
        let knobs_file = ctx.recipe.manifest.specialist(&proposal.specialist).and_then(|s| s.knobs_file.as_deref());
        if self.approve.needed(&proposal.edit, knobs_file) {
            ctx.store.hold(ctx.study.id, number).await?;
            ctx.reporter.report(Progress::Note(format!(
                "trial {number} by {} waits for your approval: {} (postdoc approve {number}, or postdoc reject {number} --note \"...\")",
                proposal.specialist, proposal.hypothesis
            )));
            return Ok(Recorded::Waiting);
        }
        Ok(Recorded::Trial(number))
    }
}

/// What `specialist` is shown before it proposes (and what `postdoc lineage` prints), read from
/// a bounded slice of the lineage plus the study-wide label counts.
pub async fn lineage_view(
    store: &Store,
    study: &StudyRecord,
    objective: &postdoc_core::Objective,
    specialist: Option<&str>,
) -> Result<LineageView, StudyError> {
    let trials = store.lineage_trials(study.id, specialist, LINEAGE_RECENT).await?;
    let mut view = LineageView::build(&study.name, objective, &trials, specialist);
    view.label_counts = store.tally(study.id).await?.labels;
    view.notes = store.notes(study.id).await?;
    // The slice holds only the latest children of the best; count the earlier ones in the store.
    if let Some(best) = &view.best {
        let mut earlier = store.children_labels(study.id, best.number).await?;
        for shown in &view.children_of_best {
            if let Some(l) = shown.label
                && let Some(n) = earlier.get_mut(&l)
            {
                *n -= 1;
            }
        }
        earlier.retain(|_, n| *n > 0);
        view.earlier_children = earlier;
    }
    Ok(view)
}

/// Finishes `t` with an infrastructure verdict and, unless it has been retried too often,
/// queues the same proposal again.
pub(crate) async fn abort_and_retry(ctx: &Ctx, t: &TrialRecord, verdict: Verdict) -> Result<(), StudyError> {
    ctx.store.finish(ctx.study.id, t.number, &verdict).await?;
    let mut chain = 0;
    let mut cursor = t.retry_of;
    while let Some(n) = cursor {
        chain += 1;
        cursor = ctx.store.trial(&ctx.study, n).await?.retry_of;
    }
    if chain >= MAX_RETRIES {
        ctx.reporter.report(Progress::Note(format!(
            "trial {} hit infrastructure faults {} times; giving it up",
            t.number,
            chain + 1
        )));
        return Ok(());
    }
    let proposal = Proposal {
        specialist: t.specialist.clone(),
        hypothesis: t.hypothesis.clone(),
        expected_delta: t.expected_delta,
        parent: t.parent,
        edit: t.edit.clone(),
        cites: ctx.store.cards_of_trial(ctx.study.id, t.number).await?.iter().map(|c| c.id).collect(),
    };
    ctx.store.propose(ctx.study.id, &proposal, t.parent, Some(t.number)).await?;
    Ok(())
}

/// The recipe's HEAD, refusing uncommitted changes to tracked files.
async fn clean_head(recipe: &Recipe) -> Result<String, StudyError> {
    let dirty = recipe.repo.uncommitted().await?;
    if !dirty.is_empty() {
        return Err(StudyError::Uncommitted(dirty));
    }
    Ok(recipe.repo.head().await?)
}

/// The protected files at `commit`, each glob required to match something.
async fn snapshot(recipe: &Recipe, commit: &str, globs: &[String]) -> Result<Pristine, StudyError> {
    let files = recipe.repo.list_files(commit).await?;
    for glob in globs {
        let one = PathSet::new(std::slice::from_ref(glob)).expect("validated with the manifest");
        if !files.iter().any(|f| one.matches(&f.path)) {
            return Err(StudyError::ProtectedMissing(glob.clone()));
        }
    }
    let all = PathSet::new(globs).expect("validated with the manifest");
    let chosen: Vec<_> = files.into_iter().filter(|f| all.matches(&f.path)).collect();
    let paths: Vec<String> = chosen.iter().map(|f| f.path.clone()).collect();
    let contents = recipe.repo.read_files(commit, &paths).await?;
    Ok(Pristine::new(
        chosen
            .into_iter()
            .zip(contents)
            .map(|(f, contents)| ProtectedFile { path: f.path, executable: f.executable, contents })
            .collect(),
    ))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

fn pid_alive(pid: i64) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    pid > 0
        && (unsafe { libc::kill(pid as i32, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

async fn take_lease(store: &Store, study: &StudyRecord) -> Result<Lease, StudyError> {
    let host = hostname();
    let pid = std::process::id() as i64;
    let me = Lease {
        owner: format!("pid {pid} on {host} at {}", now_ms()),
        host: host.clone(),
        pid,
        heartbeat_ms: now_ms(),
    };
    for _ in 0..3 {
        let current = store.lease(study.id).await?;
        let taken = match &current {
            None => store.take_lease(study.id, &me, None).await?,
            Some(held) => {
                let age_ms = now_ms() - held.heartbeat_ms;
                let gone = (held.host == host && !pid_alive(held.pid)) || age_ms > LEASE_STALE.as_millis() as i64;
                if !gone {
                    return Err(StudyError::Busy {
                        study: study.name.clone(),
                        owner: held.owner.clone(),
                        age_s: age_ms as f64 / 1000.0,
                    });
                }
                store.take_lease(study.id, &me, Some(held)).await?
            }
        };
        if taken {
            return Ok(me);
        }
    }
    let held = store.lease(study.id).await?;
    Err(StudyError::Busy {
        study: study.name.clone(),
        owner: held.map(|h| h.owner).unwrap_or_else(|| "another session".into()),
        age_s: 0.0,
    })
}

/// The opening over the built-in searches' knobs, if the study opens. A search with a knob of
/// the same name as another's (in another knob file) is left out of it: an edit names its knobs
/// only by name.
fn open(searches: &[(usize, &SpecialistSpec)], max_trials: u64, seed: u64) -> Option<OpeningPlan> {
    let mut drawn: Vec<Search> = Vec::new();
    for (_, spec) in searches {
        if spec.knobs.keys().any(|k| drawn.iter().any(|s| s.knobs.contains_key(k))) {
            continue;
        }
        drawn.push(Search { name: spec.name.clone(), knobs: spec.knobs.clone() });
    }
    let members = drawn.iter().map(|s| s.name.clone()).collect();
    let proposer = Opening::new(drawn, max_trials, mix(seed, OPENING_INDEX, u64::MAX))?;
    Some(OpeningPlan { proposer: Arc::new(proposer), members })
}

/// The specialists whose knobs make up the recipe's knob files: every search's, and any agent's
/// that names some.
fn recipe_knob_owners(manifest: &Manifest) -> Vec<&SpecialistSpec> {
    manifest.specialists.iter().filter(|s| s.knobs_file.is_some() && !s.knobs.is_empty()).collect()
}

/// A well-spread seed from a few integers (splitmix64 over their combination).
pub(crate) fn mix(a: u64, b: u64, c: u64) -> u64 {
    let mut z = a.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ b.wrapping_mul(0xBF58_476D_1CE4_E5B9)
        ^ c.wrapping_add(0x94D0_49BB_1331_11EB);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
