//! The recipe manifest, `postdoc.toml`: parsed from text (no I/O here) and validated, with errors
//! that name the file, line, column and key.

use crate::early_stop::EarlyStopSpec;
use crate::gate::Gate;
use crate::knob::KnobSpec;
use crate::surface::PathSet;
use crate::units::{Bytes, Seconds};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use toml::de::{DeTable, DeValue};

/// A validated manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Manifest {
    pub study: StudySpec,
    pub setup: Option<SetupSpec>,
    pub run: RunSpec,
    pub evaluate: EvaluateSpec,
    pub noise: NoiseSpec,
    pub early_stop: Option<EarlyStopSpec>,
    /// The study's `[brain]`, the default of its agent specialists.
    pub brain: Option<BrainSpec>,
    pub specialists: Vec<SpecialistSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StudySpec {
    pub name: String,
    pub objective: Objective,
    pub budget: StudyBudget,
    pub parallel: usize,
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objective {
    pub metric: String,
    pub direction: Direction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Minimize,
    Maximize,
}

impl Direction {
    /// `score` turned so that larger is better.
    pub fn gain(self, score: f64) -> f64 {
        match self {
            Direction::Maximize => score,
            Direction::Minimize => -score,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StudyBudget {
    /// Candidate trials (the baseline and retried infrastructure faults do not count).
    pub max_trials: u64,
    pub wall_clock: Option<Seconds>,
    pub compute_seconds: Option<Seconds>,
    /// Dollars the agents' model providers may cost the study; once spent, agents propose no more.
    pub max_dollars: Option<f64>,
}

/// A model provider and what a specialist may spend with it: `[brain]`, which a specialist's
/// own `brain = { ... }` overrides field by field. Keys never appear here: `api_key_env` names
/// the environment variable that holds one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrainSpec {
    pub provider: Option<Provider>,
    pub model: Option<String>,
    /// Where the provider answers (default: the provider's public API).
    pub base_url: Option<String>,
    pub api_key_env: Option<String>,
    /// Dollars per million tokens in and out.
    pub price: Option<crate::transcript::Price>,
    /// Model replies per proposal.
    pub max_turns: Option<u32>,
    /// Tokens in and out per proposal.
    pub max_tokens: Option<u64>,
    pub temperature: Option<f32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Chat Completions: OpenAI and the servers that speak its API (vLLM, SGLang, Ollama,
    /// llama.cpp, OpenRouter, the Hugging Face router).
    Openai,
    /// Anthropic Messages.
    Anthropic,
    /// A GGUF instruct model run in-process on the CPU; `model` is the file's path (relative to
    /// the recipe), or absent for the default small model. No network at run time, no key.
    Local,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Openai => "openai",
            Provider::Anthropic => "anthropic",
            Provider::Local => "local",
        }
    }

    pub fn default_base_url(self) -> &'static str {
        match self {
            Provider::Openai => "https://api.openai.com/v1",
            Provider::Anthropic => "https://api.anthropic.com",
            Provider::Local => "",
        }
    }

    pub fn default_key_env(self) -> &'static str {
        match self {
            Provider::Openai => "OPENAI_API_KEY",
            Provider::Anthropic => "ANTHROPIC_API_KEY",
            Provider::Local => "",
        }
    }
}

impl BrainSpec {
    /// `self`'s fields where set, else `base`'s. Naming another provider starts afresh: the
    /// base's model, URL, key and prices belong to its own provider.
    pub fn over(&self, base: &BrainSpec) -> BrainSpec {
        if self.provider.is_some() && base.provider.is_some() && self.provider != base.provider {
            let limits = BrainSpec {
                provider: self.provider,
                max_turns: base.max_turns,
                max_tokens: base.max_tokens,
                temperature: base.temperature,
                ..BrainSpec::default()
            };
            return self.over(&limits);
        }
        BrainSpec {
            provider: self.provider.or(base.provider),
            model: self.model.clone().or_else(|| base.model.clone()),
            base_url: self.base_url.clone().or_else(|| base.base_url.clone()),
            api_key_env: self.api_key_env.clone().or_else(|| base.api_key_env.clone()),
            price: self.price.or(base.price),
            max_turns: self.max_turns.or(base.max_turns),
            max_tokens: self.max_tokens.or(base.max_tokens),
            temperature: self.temperature.or(base.temperature),
        }
    }

    /// Why this brain cannot be used, if it cannot, and at which key. One that names no provider
    /// is fine: the provider and model come from the session (`--brain`).
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if let Some(p) = &self.price
            && !(p.input_per_mtok >= 0.0
                && p.output_per_mtok >= 0.0
                && p.input_per_mtok.is_finite()
                && p.output_per_mtok.is_finite())
        {
            return Some(("price", "prices are dollars per million tokens, finite and not negative".into()));
        }
        if self.max_turns == Some(0) || self.max_tokens == Some(0) {
            return Some(("max_turns", "a proposal needs at least one turn and some tokens".into()));
        }
        if let Some(var) = &self.api_key_env {
            let valid = var.chars().next().is_some_and(|c| c.is_ascii_uppercase() || c == '_')
                && var.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if !valid {
                // Never echo it: it may be the key itself.
                return Some((
                    "api_key_env",
                    "must name an environment variable (like OPENAI_API_KEY); never put a key in postdoc.toml".into(),
                ));
            }
        }
        if let Some(url) = &self.base_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Some(("base_url", format!("`{url}` is not an http:// or https:// URL")));
        }
        // Without a provider the rest comes from the session (`--brain`).
        let provider = self.provider?;
        if provider == Provider::Local {
            if self.base_url.is_some() {
                return Some(("base_url", "a local model runs in-process: it has no URL".into()));
            }
            if self.api_key_env.is_some() {
                return Some(("api_key_env", "a local model needs no key".into()));
            }
            if self.model.as_deref().is_some_and(|m| m.trim().is_empty()) {
                return Some(("model", "name the GGUF file, or leave `model` out for the default model".into()));
            }
        } else if self.model.as_deref().is_none_or(|m| m.trim().is_empty()) {
            return Some(("model", format!("name the {} model the specialist talks to", provider.as_str())));
        }
        None
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SetupSpec {
    pub command: String,
    pub seconds: Seconds,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSpec {
    pub command: String,
    /// A cheap check run in the trial's tree before the real run (syntax check, smoke test).
    pub preflight: Option<String>,
    pub budget: ProcessBudget,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessBudget {
    pub seconds: Seconds,
    pub memory: Option<Bytes>,
    /// The largest file the process may write.
    pub file_size: Option<Bytes>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvaluateSpec {
    pub command: String,
    pub budget: ProcessBudget,
    pub protected: Vec<String>,
    pub gates: Vec<Gate>,
    pub artifact_max_bytes: Option<Bytes>,
    pub contamination: Option<ContaminationSpec>,
}

/// The contamination rule: the run writes the examples it trained on to a file in
/// `$POSTDOC_OUT`, and a trial whose examples hold more than `max_overlap` of the benchmark's
/// items is labelled `contaminated`, whatever its score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContaminationSpec {
    /// Protected files holding the benchmark: JSONL (an item per line, its string fields) or
    /// text (an item per non-empty line).
    pub benchmark: Vec<String>,
    /// The fields of a JSONL item to look for; all its string fields when empty.
    #[serde(default)]
    pub fields: Vec<String>,
    /// The training examples the run used, JSONL, relative to `$POSTDOC_OUT`.
    #[serde(default = "default_train_data")]
    pub train_data: String,
    /// Words in a shared run that counts as overlap.
    #[serde(default = "default_ngram")]
    pub ngram: usize,
    /// Benchmark texts shorter than this (in characters) are not looked for.
    #[serde(default = "default_min_chars")]
    pub min_chars: usize,
    /// The share of benchmark items that may appear by chance (a problem generator can draw
    /// a benchmark problem now and then).
    #[serde(default = "default_max_overlap")]
    pub max_overlap: f64,
}

fn default_train_data() -> String {
    "train_data.jsonl".into()
}
fn default_ngram() -> usize {
    13
}
fn default_min_chars() -> usize {
    8
}
fn default_max_overlap() -> f64 {
    0.01
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoiseSpec {
    /// How many seeds the unmodified recipe runs on before any candidate.
    #[serde(default = "default_baseline_repeats")]
    pub baseline_repeats: u32,
    /// Extra seeds a candidate that beat the best on its first run runs on before it is kept.
    #[serde(default = "default_confirm_seeds")]
    pub confirm_seeds: u32,
    /// One-sided confidence that a kept improvement is not noise.
    #[serde(default = "default_confidence")]
    pub confidence: f64,
    /// An improvement smaller than this is never kept, whatever the noise.
    #[serde(default)]
    pub min_delta: f64,
}

impl Default for NoiseSpec {
    fn default() -> Self {
        NoiseSpec {
            baseline_repeats: default_baseline_repeats(),
            confirm_seeds: default_confirm_seeds(),
            confidence: default_confidence(),
            min_delta: 0.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpecialistSpec {
    pub name: String,
    pub strategy: Strategy,
    /// File globs the specialist may change (its knob file is always included).
    pub surface: Vec<String>,
    pub knobs_file: Option<String>,
    pub knobs: BTreeMap<String, KnobSpec>,
    /// What an agent specialist is asked to work on, in the researcher's words.
    pub role: Option<String>,
    /// An agent's brain: the study's `[brain]` with the specialist's own fields over it. With no
    /// provider named (or none at all), the agent sits out unless a session is given a model
    /// (`--brain`).
    pub brain: Option<BrainSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Tree-structured Parzen estimation that learns from failures as well as scores.
    Tpe,
    /// Every knob drawn afresh: the baseline strategy.
    Random,
    /// A model that reads the lineage and edits the recipe's files and knobs through tools.
    Agent,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Tpe => "tpe",
            Strategy::Random => "random",
            Strategy::Agent => "agent",
        }
    }
}

/// A manifest that could not be read, with where the problem is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ManifestError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// Dotted path of the offending key, e.g. `specialist[0].knobs.lr`; empty for syntax errors.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

fn default_baseline_repeats() -> u32 {
    3
}
fn default_confirm_seeds() -> u32 {
    2
}
fn default_confidence() -> f64 {
    0.95
}
fn default_parallel() -> usize {
    1
}
fn default_setup_seconds() -> Seconds {
    Seconds(1800.0)
}

/// Trials a study runs when the manifest sets no budget at all, so no study runs forever by accident.
pub const DEFAULT_MAX_TRIALS: u64 = 50;

// The raw shapes serde reads; unknown keys anywhere are errors.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    study: RawStudy,
    setup: Option<RawSetup>,
    run: RawRun,
    evaluate: RawEvaluate,
    #[serde(default)]
    noise: NoiseSpec,
    early_stop: Option<RawEarlyStop>,
    brain: Option<BrainSpec>,
    #[serde(default)]
    specialist: Vec<RawSpecialist>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEarlyStop {
    metric: String,
    direction: Option<Direction>,
    rungs: Vec<i64>,
    #[serde(default = "default_keep")]
    keep: f64,
    #[serde(default = "default_min_runs")]
    min_runs: usize,
}

fn default_keep() -> f64 {
    1.0 / 3.0
}
fn default_min_runs() -> usize {
    4
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStudy {
    name: String,
    objective: Objective,
    #[serde(default)]
    budget: RawStudyBudget,
    #[serde(default = "default_parallel")]
    parallel: usize,
    #[serde(default)]
    seed: u64,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStudyBudget {
    max_trials: Option<u64>,
    wall_clock: Option<Seconds>,
    compute_seconds: Option<Seconds>,
    max_dollars: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSetup {
    command: String,
    #[serde(default)]
    budget: Option<RawSetupBudget>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSetupBudget {
    seconds: Seconds,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRun {
    command: String,
    preflight: Option<String>,
    budget: ProcessBudget,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvaluate {
    command: String,
    budget: ProcessBudget,
    #[serde(default)]
    protected: Vec<String>,
    #[serde(default)]
    gates: Vec<String>,
    artifact_max_bytes: Option<Bytes>,
    contamination: Option<ContaminationSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpecialist {
    name: String,
    #[serde(default = "default_strategy")]
    strategy: Strategy,
    #[serde(default)]
    surface: Vec<String>,
    knobs_file: Option<String>,
    #[serde(default)]
    knobs: BTreeMap<String, KnobSpec>,
    role: Option<String>,
    brain: Option<BrainSpec>,
}

fn default_strategy() -> Strategy {
    Strategy::Tpe
}

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn key(k: &str) -> Step {
    Step::Key(k.to_string())
}

struct Problem {
    path: Vec<Step>,
    message: String,
}

impl Manifest {
    /// Parses and validates manifest `text`; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Manifest, ManifestError> {
        let doc = DeTable::parse(text).map_err(|e| error_at_span(text, file, None, e.span(), e.message()))?;
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let message = e.message().trim_end().to_string();
            error_at_span(text, file, Some(doc.get_ref()), e.span(), &message)
        })?;
        validate(raw).map_err(|p| {
            let span = locate(doc.get_ref(), &p.path);
            let mut err = error_at_span(text, file, None, span, &p.message);
            err.key = render_path(&p.path);
            err
        })
    }

    /// What makes two sessions of a study comparable: the same objective, commands and protected
    /// files. A resumed study whose manifest changed any of these is refused.
    pub fn comparability_key(&self) -> String {
        serde_json::json!({
            "objective": self.study.objective,
            "run": self.run.command,
            "evaluate": self.evaluate.command,
            "protected": self.evaluate.protected,
        })
        .to_string()
    }

    pub fn specialist(&self, name: &str) -> Option<&SpecialistSpec> {
        self.specialists.iter().find(|s| s.name == name)
    }
}

fn validate(raw: Raw) -> Result<Manifest, Problem> {
    let problem = |path: Vec<Step>, message: String| Problem { path, message };
    let s = &raw.study;
    if let Some(why) = ref_component_problem(&s.name) {
        return Err(problem(vec![key("study"), key("name")], why));
    }
    if s.objective.metric.trim().is_empty() {
        return Err(problem(
            vec![key("study"), key("objective"), key("metric")],
            "the objective metric is empty".into(),
        ));
    }
    if s.parallel == 0 {
        return Err(problem(vec![key("study"), key("parallel")], "parallel must be at least 1".into()));
    }
    if s.budget.max_trials == Some(0) {
        return Err(problem(
            vec![key("study"), key("budget"), key("max_trials")],
            "max_trials must be at least 1".into(),
        ));
    }
    for (section, command) in [("run", &raw.run.command), ("evaluate", &raw.evaluate.command)] {
        if command.trim().is_empty() {
            return Err(problem(vec![key(section), key("command")], "the command is empty".into()));
        }
    }
    if let Some(setup) = &raw.setup
        && setup.command.trim().is_empty()
    {
        return Err(problem(vec![key("setup"), key("command")], "the command is empty".into()));
    }
    if raw.evaluate.protected.is_empty() {
        return Err(problem(
            vec![key("evaluate"), key("protected")],
            "list the evaluator's files (and its data): the evaluator runs only from a pristine copy of them".into(),
        ));
    }
    let protected = PathSet::new(&raw.evaluate.protected)
        .map_err(|(i, why)| problem(vec![key("evaluate"), key("protected"), Step::Index(i)], why))?;
    let mut gates = Vec::new();
    for (i, g) in raw.evaluate.gates.iter().enumerate() {
        gates.push(g.parse::<Gate>().map_err(|why| problem(vec![key("evaluate"), key("gates"), Step::Index(i)], why))?);
    }
    if let Some(c) = &raw.evaluate.contamination {
        let at = |k: &str| vec![key("evaluate"), key("contamination"), key(k)];
        if c.benchmark.is_empty() {
            return Err(problem(at("benchmark"), "name the protected files that hold the benchmark".into()));
        }
        for (i, path) in c.benchmark.iter().enumerate() {
            if !protected.matches(path) {
                return Err(problem(
                    vec![key("evaluate"), key("contamination"), key("benchmark"), Step::Index(i)],
                    format!("`{path}` is not among evaluate.protected: the benchmark must be protected"),
                ));
            }
        }
        let relative = std::path::Path::new(&c.train_data);
        if c.train_data.trim().is_empty()
            || relative.is_absolute()
            || relative.components().any(|p| matches!(p, std::path::Component::ParentDir))
        {
            return Err(problem(at("train_data"), "must be a path inside $POSTDOC_OUT".into()));
        }
        if c.ngram == 0 {
            return Err(problem(at("ngram"), "an n-gram has at least one word".into()));
        }
        if !(0.0..1.0).contains(&c.max_overlap) {
            return Err(problem(at("max_overlap"), "a share from 0 (none allowed) to below 1".into()));
        }
    }
    let early_stop = match &raw.early_stop {
        None => None,
        Some(e) => {
            let at = |k: &str| vec![key("early_stop"), key(k)];
            if e.metric.trim().is_empty() {
                return Err(problem(at("metric"), "name a metric the run reports in $POSTDOC_METRICS".into()));
            }
            if e.rungs.is_empty() || e.rungs[0] <= 0 || e.rungs.windows(2).any(|w| w[0] >= w[1]) {
                return Err(problem(at("rungs"), "rungs are positive steps in increasing order, at least one".into()));
            }
            if !(e.keep > 0.0 && e.keep < 1.0) {
                return Err(problem(at("keep"), "the share that goes on past a rung is between 0 and 1".into()));
            }
            if e.min_runs < 2 {
                return Err(problem(at("min_runs"), "a run is compared with at least one other".into()));
            }
            Some(EarlyStopSpec {
                metric: e.metric.clone(),
                direction: e.direction.unwrap_or(s.objective.direction),
                rungs: e.rungs.clone(),
                keep: e.keep,
                min_runs: e.min_runs,
            })
        }
    };
    let n = &raw.noise;
    if n.baseline_repeats == 0 {
        return Err(problem(vec![key("noise"), key("baseline_repeats")], "the baseline must run at least once".into()));
    }
    if !(n.confidence > 0.5 && n.confidence < 1.0) {
        return Err(problem(
            vec![key("noise"), key("confidence")],
            format!("confidence must lie between 0.5 and 1, got {}", n.confidence),
        ));
    }
    if !(n.min_delta >= 0.0 && n.min_delta.is_finite()) {
        return Err(problem(vec![key("noise"), key("min_delta")], "min_delta must be a finite number >= 0".into()));
    }
    if raw.specialist.is_empty() {
        return Err(problem(
            vec![],
            "no [[specialist]] is declared: add at least one, with the knobs or files it may change".into(),
        ));
    }
    let mut names = BTreeSet::new();
    // (knob file, knob) -> the specialist that owns it.
    let mut owners: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut specialists = Vec::new();
    for (i, sp) in raw.specialist.into_iter().enumerate() {
        let at = |k: &str| vec![key("specialist"), Step::Index(i), key(k)];
        if let Some(why) = ref_component_problem(&sp.name) {
            return Err(problem(at("name"), why));
        }
        if [crate::BASELINE_SPECIALIST, crate::OPENING_SPECIALIST].contains(&sp.name.as_str()) {
            return Err(problem(
                at("name"),
                format!("`{}` is the name postdoc gives its own trials of that kind: choose another", sp.name),
            ));
        }
        if !names.insert(sp.name.clone()) {
            return Err(problem(at("name"), format!("another specialist is already named `{}`", sp.name)));
        }
        for (j, glob) in sp.surface.iter().enumerate() {
            if glob.contains(':') {
                return Err(problem(
                    vec![key("specialist"), Step::Index(i), key("surface"), Step::Index(j)],
                    format!("`{glob}`: code regions (`file:function`) are not supported; name whole files or globs"),
                ));
            }
        }
        PathSet::new(&sp.surface).map_err(|(j, why)| {
            problem(vec![key("specialist"), Step::Index(i), key("surface"), Step::Index(j)], why)
        })?;
        for (name, spec) in &sp.knobs {
            if let Some(why) = spec.problem() {
                return Err(problem(vec![key("specialist"), Step::Index(i), key("knobs"), key(name)], why));
            }
            if name.is_empty() || name.split('.').any(|part| part.is_empty()) {
                return Err(problem(
                    vec![key("specialist"), Step::Index(i), key("knobs"), key(name)],
                    "a knob name must be a key or dotted key path".into(),
                ));
            }
        }
        match (&sp.knobs_file, sp.knobs.is_empty()) {
            (None, false) => {
                return Err(problem(
                    at("knobs_file"),
                    "knobs need a knobs_file to be written into (e.g. \"recipe.toml\")".into(),
                ));
            }
            (Some(f), _) if protected.matches(f) => {
                return Err(problem(at("knobs_file"), format!("`{f}` is protected: a specialist may not write it")));
            }
            _ => {}
        }
        if let Some(f) = &sp.knobs_file
            && !f.ends_with(".toml")
        {
            return Err(problem(at("knobs_file"), format!("`{f}`: knob files are TOML and must end in .toml")));
        }
        if let Some(f) = &sp.knobs_file {
            for name in sp.knobs.keys() {
                if let Some(owner) = owners.insert((f.clone(), name.clone()), sp.name.clone()) {
                    return Err(problem(
                        vec![key("specialist"), Step::Index(i), key("knobs"), key(name)],
                        format!(
                            "knob `{name}` in {f} already belongs to specialist `{owner}`: each knob has one owner"
                        ),
                    ));
                }
            }
        }
        match sp.strategy {
            Strategy::Random | Strategy::Tpe if sp.knobs.is_empty() => {
                return Err(problem(
                    at("knobs"),
                    format!("strategy `{}` searches knobs: declare at least one", sp.strategy.as_str()),
                ));
            }
            Strategy::Random | Strategy::Tpe => {
                if sp.role.is_some() || sp.brain.is_some() {
                    let k = if sp.role.is_some() { "role" } else { "brain" };
                    return Err(problem(
                        at(k),
                        "only agent specialists (strategy = \"agent\") have a role and a brain".into(),
                    ));
                }
            }
            Strategy::Agent => {
                if sp.surface.is_empty() && sp.knobs.is_empty() {
                    return Err(problem(
                        at("surface"),
                        "an agent needs files it may change (surface) or knobs it may set".into(),
                    ));
                }
            }
        }
        let brain = match sp.strategy {
            // Without any model named, the agent sits out until a session is given one.
            Strategy::Agent if sp.brain.is_none() && raw.brain.is_none() => None,
            Strategy::Agent => {
                let own = sp.brain.clone().unwrap_or_default();
                let merged = own.over(raw.brain.as_ref().unwrap_or(&BrainSpec::default()));
                if let Some((k, why)) = merged.problem() {
                    let top = raw.brain.as_ref();
                    let (path, why) = if own_sets(&own, k) {
                        (vec![key("specialist"), Step::Index(i), key("brain"), key(k)], why)
                    } else if top.is_some_and(|t| own_sets(t, k)) {
                        (vec![key("brain"), key(k)], why)
                    } else if sp.brain.is_some() {
                        (at("brain"), why)
                    } else {
                        (vec![key("brain")], why)
                    };
                    return Err(problem(path, why));
                }
                Some(merged)
            }
            _ => None,
        };
        specialists.push(SpecialistSpec {
            name: sp.name,
            strategy: sp.strategy,
            surface: sp.surface,
            knobs_file: sp.knobs_file,
            knobs: sp.knobs,
            role: sp.role.filter(|r| !r.trim().is_empty()),
            brain,
        });
    }
    let budget = StudyBudget {
        max_trials: raw.study.budget.max_trials.unwrap_or(DEFAULT_MAX_TRIALS),
        wall_clock: raw.study.budget.wall_clock,
        compute_seconds: raw.study.budget.compute_seconds,
        max_dollars: raw.study.budget.max_dollars,
    };
    if let Some(d) = budget.max_dollars
        && !(d.is_finite() && d > 0.0)
    {
        return Err(problem(
            vec![key("study"), key("budget"), key("max_dollars")],
            "a positive number of dollars".into(),
        ));
    }
    if let Some(top) = &raw.brain
        && let Some((k, why)) = top.problem().filter(|(k, _)| own_sets(top, k))
    {
        return Err(problem(vec![key("brain"), key(k)], why));
    }
    Ok(Manifest {
        study: StudySpec {
            name: raw.study.name,
            objective: raw.study.objective,
            budget,
            parallel: raw.study.parallel,
            seed: raw.study.seed,
        },
        setup: raw.setup.map(|s| SetupSpec {
            command: s.command,
            seconds: s.budget.map(|b| b.seconds).unwrap_or_else(default_setup_seconds),
        }),
        run: RunSpec {
            command: raw.run.command,
            preflight: raw.run.preflight.filter(|p| !p.trim().is_empty()),
            budget: raw.run.budget,
        },
        evaluate: EvaluateSpec {
            command: raw.evaluate.command,
            budget: raw.evaluate.budget,
            protected: raw.evaluate.protected,
            gates,
            artifact_max_bytes: raw.evaluate.artifact_max_bytes,
            contamination: raw.evaluate.contamination,
        },
        noise: raw.noise,
        early_stop,
        brain: raw.brain,
        specialists,
    })
}

/// Whether `brain` sets the key a problem was found at (so the error can point at it).
fn own_sets(brain: &BrainSpec, key: &str) -> bool {
    match key {
        "provider" => brain.provider.is_some(),
        "model" => brain.model.is_some(),
        "base_url" => brain.base_url.is_some(),
        "api_key_env" => brain.api_key_env.is_some(),
        "price" => brain.price.is_some(),
        "max_turns" => brain.max_turns.is_some() || brain.max_tokens.is_some(),
        _ => false,
    }
}

/// Names become git ref components (`refs/postdoc/<study>/...`), so they follow git's rules.
fn ref_component_problem(name: &str) -> Option<String> {
    let ok_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if name.is_empty() {
        Some("the name is empty".into())
    } else if !ok_chars || name.starts_with(['.', '-']) || name.contains("..") || name.ends_with(".lock") {
        Some(format!("`{name}` is not a valid name: use letters, digits, `-`, `_` and `.`, not leading `.` or `-`"))
    } else {
        None
    }
}

fn render_path(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) if out.is_empty() => out.push_str(k),
            Step::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The span of the value at `path`, or of the nearest ancestor that exists.
fn locate(doc: &DeTable<'_>, path: &[Step]) -> Option<std::ops::Range<usize>> {
    let mut table = doc;
    let mut array: Option<&[toml::Spanned<DeValue<'_>>]> = None;
    let mut best = None;
    for step in path {
        let value = match (step, array) {
            (Step::Key(k), None) => {
                let (kspan, v) = table.iter().find(|(name, _)| name.get_ref().as_ref() == k.as_str())?;
                best = Some(kspan.span());
                v
            }
            (Step::Index(i), Some(items)) => items.get(*i)?,
            _ => return best,
        };
        best = Some(match step {
            // Point at the key for tables (the header line), at the value otherwise.
            Step::Key(_) if matches!(value.get_ref(), DeValue::Table(_)) => best.unwrap_or(value.span()),
            _ => value.span(),
        });
        match value.get_ref() {
            DeValue::Table(t) => {
                table = t;
                array = None;
            }
            DeValue::Array(items) => array = Some(items),
            _ => array = None,
        }
    }
    best
}

/// The dotted key path whose key or value covers byte `offset`.
fn path_at(doc: &DeTable<'_>, offset: usize) -> Vec<Step> {
    fn walk(value: &DeValue<'_>, offset: usize, path: &mut Vec<Step>) {
        match value {
            DeValue::Table(t) => {
                for (k, v) in t.iter() {
                    let covers = |r: std::ops::Range<usize>| r.start <= offset && offset < r.end.max(r.start + 1);
                    if covers(k.span()) || covers(v.span()) || subtree_covers(v.get_ref(), offset) {
                        path.push(Step::Key(k.get_ref().to_string()));
                        walk(v.get_ref(), offset, path);
                        return;
                    }
                }
            }
            DeValue::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    if (v.span().start <= offset && offset < v.span().end) || subtree_covers(v.get_ref(), offset) {
                        path.push(Step::Index(i));
                        walk(v.get_ref(), offset, path);
                        return;
                    }
                }
            }
            _ => {}
        }
    }
    // Tables declared by `[header]` have spans of the header only, so look inside too.
    fn subtree_covers(value: &DeValue<'_>, offset: usize) -> bool {
        match value {
            DeValue::Table(t) => t.iter().any(|(k, v)| {
                (k.span().start <= offset && offset < k.span().end)
                    || (v.span().start <= offset && offset < v.span().end)
                    || subtree_covers(v.get_ref(), offset)
            }),
            DeValue::Array(items) => items
                .iter()
                .any(|v| (v.span().start <= offset && offset < v.span().end) || subtree_covers(v.get_ref(), offset)),
            _ => false,
        }
    }
    let mut path = Vec::new();
    walk(&DeValue::Table(doc.clone()), offset, &mut path);
    path
}

fn error_at_span(
    text: &str,
    file: &str,
    doc: Option<&DeTable<'_>>,
    span: Option<std::ops::Range<usize>>,
    message: &str,
) -> ManifestError {
    let offset = span.as_ref().map(|s| s.start).unwrap_or(0).min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map(|nl| offset - nl).unwrap_or(offset + 1);
    let key = match (doc, span) {
        (Some(doc), Some(_)) => render_path(&path_at(doc, offset)),
        _ => String::new(),
    };
    ManifestError { file: file.to_string(), line, column, key, message: message.to_string() }
}

#[cfg(test)]
mod tests;
