//! The workbench an agent drafts in: a worktree of the recipe at the trial it builds on, the
//! recipe's preflight and a smoke run, and the lineage's trials and diffs.

use crate::session::Ctx;
use crate::trial::{EXCERPT_BYTES, PREFLIGHT_SECONDS, describe_exit, process};
use postdoc_core::label::log_excerpt;
use postdoc_core::{BenchError, Transcript, TrialNo, Workbench};
use postdoc_data::inspect::Accumulator;
use postdoc_data::{InspectSettings, OnMalformed, Row, Rows};
use postdoc_hub::{DatasetQuery, Hub};
use std::fmt::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A smoke run stops after this long: enough to catch an import error, a shape mismatch or a
/// crash in the first steps.
const SMOKE_SECONDS: f64 = 20.0;

pub(crate) struct Draft {
    ctx: Arc<Ctx>,
    tree: PathBuf,
    /// Where the smoke run writes its outputs, outside the draft so they never join its diff.
    scratch: PathBuf,
    /// The trial the draft builds on and its commit.
    base: Mutex<(TrialNo, String)>,
    transcript: Mutex<Option<Transcript>>,
}

impl Draft {
    /// A draft in worktree `tree` (made or reset) at trial `parent`'s recipe.
    pub(crate) async fn open(ctx: Arc<Ctx>, tree: PathBuf, parent: TrialNo) -> Result<Draft, BenchError> {
        let scratch = tree.with_extension("smoke");
        let draft =
            Draft { ctx, tree, scratch, base: Mutex::new((parent, String::new())), transcript: Mutex::new(None) };
        draft.reset_to(parent).await?;
        Ok(draft)
    }

    pub(crate) fn take_transcript(&self) -> Option<Transcript> {
        self.transcript.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    async fn commit_of(&self, trial: TrialNo) -> Result<String, BenchError> {
        let t = self
            .ctx
            .store
            .trial(&self.ctx.study, trial)
            .await
            .map_err(|_| BenchError::Refused(format!("there is no trial {trial} in this study")))?;
        t.commit.ok_or_else(|| BenchError::Refused(format!("trial {trial} has no recipe yet (it never started)")))
    }

    async fn reset_to(&self, trial: TrialNo) -> Result<(), BenchError> {
        let commit = self.commit_of(trial).await?;
        let repo = &self.ctx.recipe.repo;
        let reused = self.tree.exists() && repo.reset_worktree(&self.tree, &commit).await.is_ok();
        if !reused {
            if self.tree.exists() {
                let _ = repo.remove_worktree(&self.tree).await;
            }
            repo.add_worktree(&self.tree, &commit).await.map_err(broken)?;
        }
        *self.base.lock().unwrap_or_else(|e| e.into_inner()) = (trial, commit);
        Ok(())
    }

    /// `path` inside the draft, refusing anything that leaves it.
    fn locate(&self, path: &str) -> Result<PathBuf, BenchError> {
        let rel = Path::new(path.trim_start_matches("./"));
        let inside =
            !path.is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_))) && !rel.starts_with(".git");
        if !inside {
            return Err(BenchError::Refused(format!("`{path}` is not a path inside the recipe")));
        }
        let full = self.tree.join(rel);
        // A symbolic link may point out of the recipe: follow it and look where it lands.
        if let (Ok(real), Ok(root)) = (full.canonicalize(), self.tree.canonicalize())
            && !real.starts_with(&root)
        {
            return Err(BenchError::Refused(format!("`{path}` leads outside the recipe")));
        }
        Ok(full)
    }
}

fn broken(e: impl std::fmt::Display) -> BenchError {
    BenchError::Broken(e.to_string())
}

#[async_trait::async_trait]
impl Workbench for Draft {
    fn parent(&self) -> TrialNo {
        self.base.lock().unwrap_or_else(|e| e.into_inner()).0
    }

    async fn start_from(&self, trial: TrialNo) -> Result<(), BenchError> {
        self.reset_to(trial).await
    }

    async fn list_files(&self) -> Result<Vec<(String, u64)>, BenchError> {
        let files = self.ctx.recipe.repo.worktree_files(&self.tree).await.map_err(broken)?;
        Ok(files
            .into_iter()
            .map(|f| {
                let size = std::fs::metadata(self.tree.join(&f)).map(|m| m.len()).unwrap_or(0);
                (f, size)
            })
            .collect())
    }

    async fn read_file(&self, path: &str) -> Result<String, BenchError> {
        let full = self.locate(path)?;
        let bytes = tokio::fs::read(&full).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => BenchError::Refused(format!("there is no file `{path}`")),
            _ => BenchError::Refused(format!("cannot read `{path}`: {e}")),
        })?;
        String::from_utf8(bytes).map_err(|_| BenchError::Refused(format!("`{path}` is not text")))
    }

    async fn write_file(&self, path: &str, text: &str) -> Result<(), BenchError> {
        let full = self.locate(path)?;
        if let Some(dir) = full.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(broken)?;
        }
        tokio::fs::write(&full, text).await.map_err(broken)
    }

    async fn diff(&self) -> Result<String, BenchError> {
        let base = self.base.lock().unwrap_or_else(|e| e.into_inner()).1.clone();
        self.ctx.recipe.repo.worktree_diff(&self.tree, &base).await.map_err(broken)
    }

    async fn preflight(&self) -> Result<String, BenchError> {
        let manifest = &self.ctx.recipe.manifest;
        let budget = &manifest.run.budget;
        let mut report = String::new();
        if let Some(check) = &manifest.run.preflight {
            let spec = process(&self.ctx, check, &self.tree, budget, []);
            let spec = postdoc_exec::ProcessSpec { seconds: PREFLIGHT_SECONDS.min(budget.seconds.0), ..spec };
            let out = self.ctx.executor.run(spec, &postdoc_exec::Unwatched).await.map_err(broken)?;
            if !out.succeeded() {
                return Ok(format!(
                    "preflight failed: `{check}` ended with {}:\n{}",
                    describe_exit(&out),
                    log_excerpt(&out.log_tail, EXCERPT_BYTES)
                ));
            }
            report.push_str(&format!("syntax check `{check}` passed.\n"));
        }
        let _ = std::fs::remove_dir_all(&self.scratch);
        std::fs::create_dir_all(&self.scratch).map_err(broken)?;
        let seconds = SMOKE_SECONDS.min(budget.seconds.0);
        let env = [
            ("POSTDOC_OUT", self.scratch.display().to_string()),
            ("POSTDOC_METRICS", self.scratch.join("metrics.jsonl").display().to_string()),
            ("POSTDOC_SEED", "0".to_string()),
            ("POSTDOC_BUDGET_S", format!("{seconds}")),
            ("POSTDOC_SMOKE", "1".to_string()),
        ];
        let spec =
            postdoc_exec::ProcessSpec { seconds, ..process(&self.ctx, &manifest.run.command, &self.tree, budget, env) };
        let out = self.ctx.executor.run(spec, &postdoc_exec::Unwatched).await.map_err(broken)?;
        let tail = log_excerpt(&out.log_tail, 1500);
        let _ = std::fs::remove_dir_all(&self.scratch);
        if out.timed_out {
            report.push_str(&format!("smoke run: trained {seconds} s without failing (stopped there).\n"));
        } else if out.succeeded() {
            report.push_str(&format!("smoke run: finished within {seconds} s.\n"));
        } else {
            report.push_str(&format!("smoke run FAILED: {}\n", describe_exit(&out)));
        }
        if !tail.trim().is_empty() {
            report.push_str(&format!("log tail:\n{tail}"));
        }
        Ok(report)
    }

    async fn show_trial(&self, trial: TrialNo) -> Result<String, BenchError> {
        let t = self
            .ctx
            .store
            .trial(&self.ctx.study, trial)
            .await
            .map_err(|_| BenchError::Refused(format!("there is no trial {trial} in this study")))?;
        Ok(t.describe())
    }

    async fn diff_trials(&self, from: TrialNo, to: TrialNo) -> Result<String, BenchError> {
        let (a, b) = (self.commit_of(from).await?, self.commit_of(to).await?);
        self.ctx.recipe.repo.diff(&a, &b).await.map_err(broken)
    }

    async fn search_papers(&self, query: &str) -> Result<String, BenchError> {
        let store = &self.ctx.store;
        let index = postdoc_papers::library_index(store).await.map_err(broken)?;
        let hits = index.search(query, PAPERS_LISTED).map_err(broken)?;
        if hits.is_empty() {
            return Ok(format!(
                "no paper in the library matches `{query}` (the researcher adds papers with `postdoc papers add` or `crawl`)"
            ));
        }
        let mut out = String::new();
        for h in hits {
            let cards = store.cards(Some(&h.id)).await.map_err(broken)?;
            let _ = writeln!(out, "{} [{}]{}", h.title, h.id, h.year.map(|y| format!(" {y}")).unwrap_or_default());
            let snippet: String = h.snippet.split_whitespace().collect::<Vec<_>>().join(" ");
            if !snippet.is_empty() {
                let _ = writeln!(out, "  …{}…", postdoc_web::short(&snippet, 240));
            }
            for c in cards {
                let _ = writeln!(out, "  card {}: {} ({})", c.id, c.technique, c.part);
            }
        }
        Ok(out)
    }

    async fn read_card(&self, card: i64) -> Result<String, BenchError> {
        let store = &self.ctx.store;
        let Some(c) = store.card(card).await.map_err(broken)? else {
            return Err(BenchError::Refused(format!("there is no card {card}; search_papers lists them")));
        };
        let paper = store.paper(&c.paper).await.map_err(broken)?;
        let mut out = format!(
            "card {}: {}\npart of the recipe: {}\npaper: {} [{}]\n",
            c.id,
            c.technique,
            c.part,
            paper.map(|p| p.title).unwrap_or_default(),
            c.paper
        );
        if let Some(e) = &c.effect {
            let _ = writeln!(out, "claimed effect: {e}");
        }
        if let Some(s) = &c.setting {
            let _ = writeln!(out, "setting: {s}");
        }
        for (field, e) in &c.evidence {
            let _ = writeln!(out, "{field} rests on ({}): \"{}\"", e.section, e.sentence);
        }
        Ok(out)
    }

    async fn search_datasets(&self, query: &str) -> Result<String, BenchError> {
        let hub = Hub::from_env().map_err(unreachable_hub)?;
        let found = hub.search_datasets(&DatasetQuery::parse(query, DATASETS_LISTED)).await.map_err(unreachable_hub)?;
        if found.is_empty() {
            return Ok(format!("no dataset on the Hub matches `{query}`"));
        }
        let mut out = String::new();
        for d in &found {
            let _ = writeln!(
                out,
                "hub:{}  licence {}  tasks {}  size {}  downloads {}{}",
                d.id,
                d.licence().unwrap_or_else(|| "?".into()),
                d.tasks().join(",").as_str().chars().take(60).collect::<String>(),
                d.size_category().unwrap_or_else(|| "?".into()),
                d.downloads.unwrap_or(0),
                d.gating().map(|g| format!("  gated ({g})")).unwrap_or_default()
            );
        }
        Ok(out)
    }

    async fn inspect_dataset(&self, target: &str) -> Result<String, BenchError> {
        if let Some(name) = target.strip_prefix("hub:") {
            let hub = Hub::from_env().map_err(unreachable_hub)?;
            let info = hub.dataset(name).await.map_err(unreachable_hub)?;
            let splits = hub.splits(name).await.map_err(unreachable_hub)?;
            let sizes = hub.sizes(name).await.unwrap_or_default();
            let Some(split) = splits.iter().find(|s| s.split == "train").or(splits.first()) else {
                return Ok(format!("hub:{name} has no split the dataset viewer can read"));
            };
            let first = hub.first_rows(name, &split.config, &split.split).await.map_err(unreachable_hub)?;
            let mut acc = Accumulator::new(&InspectSettings { samples: 3, ..InspectSettings::default() });
            for r in &first.rows {
                acc.add(&Row { line: r.row_idx + 1, fields: r.row.clone() });
            }
            let mut out = format!(
                "hub:{}: licence {}; tasks {}; languages {}\n",
                info.id,
                info.licence().unwrap_or_else(|| "not declared".into()),
                info.tasks().join(", "),
                info.languages().join(", ")
            );
            for sp in &splits {
                let rows = sizes.iter().find(|z| z.config == sp.config && z.split == sp.split).and_then(|z| z.num_rows);
                let _ = writeln!(
                    out,
                    "split {}/{}: {} rows",
                    sp.config,
                    sp.split,
                    rows.map_or("?".into(), |n| n.to_string())
                );
            }
            let columns: Vec<String> =
                first.features.iter().map(|f| format!("{} ({})", f.name, f.describe())).collect();
            let _ = writeln!(out, "columns: {}", columns.join(", "));
            let _ = writeln!(out, "first {} rows of {}/{}:", first.rows.len(), split.config, split.split);
            out.push_str(&acc.finish(0, Vec::new()).brief());
            return Ok(out);
        }
        let path = self.locate(target)?;
        if !path.is_file() {
            return Err(BenchError::Refused(format!("`{target}` is not a file of the recipe (or hub:OWNER/NAME)")));
        }
        let report = tokio::task::spawn_blocking(move || {
            let mut rows = Rows::open(&path, OnMalformed::Skip).map_err(|e| e.to_string())?;
            postdoc_data::inspect(&mut rows, &InspectSettings::default()).map_err(|e| e.to_string())
        })
        .await
        .map_err(broken)?
        .map_err(BenchError::Refused)?;
        Ok(format!("{target}: {}", report.brief()))
    }

    fn keep_transcript(&self, transcript: Transcript) {
        *self.transcript.lock().unwrap_or_else(|e| e.into_inner()) = Some(transcript);
    }
}

/// Papers a search lists for an agent.
const PAPERS_LISTED: usize = 6;
/// Datasets a search lists for an agent.
const DATASETS_LISTED: usize = 10;

/// The Hub out of reach is the agent's to hear about, not a failure of the workbench.
fn unreachable_hub(e: postdoc_hub::HubError) -> BenchError {
    BenchError::Refused(e.to_string())
}
