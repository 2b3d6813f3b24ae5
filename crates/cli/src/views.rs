//! Rendering the lineage for people (tables) and programs (JSON, CSV).

use anyhow::{Context, Result, bail};
use comfy_table::{Cell, ContentArrangement, Table, presets::UTF8_BORDERS_ONLY};
use postdoc_core::lineage::{baseline, current_best};
use postdoc_core::units::{Bytes, human_seconds};
use postdoc_core::{Edit, Manifest, TrialRecord};
use postdoc_store::{Store, StudyRecord};
use postdoc_study::{Recipe, StopReason, Summary};
use std::io::Write;
use std::path::Path;

fn score(s: Option<f64>) -> String {
    s.map(|s| format!("{s:.4}")).unwrap_or_else(|| "-".into())
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(10)]
}

pub(crate) fn table() -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY).set_content_arrangement(ContentArrangement::Dynamic);
    t
}

fn summary_table(s: &Summary) -> Table {
    let mut t = table();
    t.add_row(vec![Cell::new("study"), Cell::new(format!("{} (starting commit {})", s.study, short(&s.base_commit)))]);
    let baseline = match &s.baseline {
        Some(b) if b.score.is_some() => {
            format!("{} ± {:.4} over {} seed(s) (trial {})", score(b.score), s.noise.sigma, b.runs, b.number)
        }
        Some(b) => format!(
            "trial {}: {}",
            b.number,
            b.label.map(|l| l.to_string()).unwrap_or_else(|| b.status.as_str().into())
        ),
        None => "not run yet".into(),
    };
    t.add_row(vec![Cell::new("baseline"), Cell::new(baseline)]);
    if let Some(best) = s.best.as_ref().filter(|b| !b.is_baseline()) {
        let gain = match (best.score, s.baseline.as_ref().and_then(|b| b.score)) {
            (Some(x), Some(b)) => format!(" ({:+.4} vs baseline)", x - b),
            _ => String::new(),
        };
        t.add_row(vec![
            Cell::new("best"),
            Cell::new(format!(
                "{}{gain}: trial {} by {}, {}",
                score(best.score),
                best.number,
                best.specialist,
                best.hypothesis
            )),
        ]);
    } else if s.baseline.as_ref().is_some_and(|b| b.is_kept()) {
        t.add_row(vec![Cell::new("best"), Cell::new("the baseline (nothing has beaten it yet)")]);
    }
    t.add_row(vec![Cell::new("trials"), Cell::new(format!("{} of {}", s.trials, s.max_trials))]);
    let labels: Vec<String> = s.labels.iter().map(|(l, n)| format!("{l} {n}")).collect();
    if !labels.is_empty() {
        t.add_row(vec![Cell::new("labels"), Cell::new(labels.join(", "))]);
    }
    let budget = |spent: f64, limit: Option<f64>| match limit {
        Some(l) => format!("{} of {}", human_seconds(spent), human_seconds(l)),
        None => human_seconds(spent),
    };
    t.add_row(vec![Cell::new("compute"), Cell::new(budget(s.compute_seconds, s.compute_budget))]);
    t.add_row(vec![Cell::new("wall clock"), Cell::new(budget(s.active_seconds, s.wall_clock_budget))]);
    if !s.model_spend.is_empty() || s.dollar_budget.is_some() {
        let mut total = postdoc_core::Spend::default();
        for spend in s.model_spend.values() {
            total += *spend;
        }
        let mut text = format!("${:.4}", total.dollars);
        if let Some(cap) = s.dollar_budget {
            text.push_str(&format!(" of ${cap}"));
        }
        text.push_str(&format!(
            " ({} tokens in, {} out{})",
            total.input_tokens,
            total.output_tokens,
            if total.estimated { ", partly estimated" } else { "" }
        ));
        for (name, spend) in &s.model_spend {
            text.push_str(&format!(
                "\n{name}: ${:.4}, {} in, {} out",
                spend.dollars, spend.input_tokens, spend.output_tokens
            ));
        }
        t.add_row(vec![Cell::new("model spend"), Cell::new(text)]);
    }
    for r in &s.running {
        t.add_row(vec![
            Cell::new("running"),
            Cell::new(format!("trial {} by {}: {}", r.number, r.specialist, r.hypothesis)),
        ]);
    }
    for w in &s.waiting {
        t.add_row(vec![
            Cell::new("waiting"),
            Cell::new(format!(
                "trial {} by {}: {}\n(postdoc approve {}, or postdoc reject {} --note \"...\")",
                w.number, w.specialist, w.hypothesis, w.number, w.number
            )),
        ]);
    }
    if s.queued > 0 {
        t.add_row(vec![Cell::new("queued"), Cell::new(format!("{} trial(s) wait for a slot", s.queued))]);
    }
    t
}

async fn summary(store: &Store, study: &StudyRecord, manifest: &Manifest) -> Result<Summary> {
    Ok(Summary::read(store, study, manifest).await?)
}

pub(crate) async fn status(store: &Store, study: &StudyRecord, manifest: &Manifest, json: bool) -> Result<()> {
    let s = summary(store, study, manifest).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        println!("{}", summary_table(&s));
    }
    Ok(())
}

pub(crate) async fn final_summary(store: &Store, study: &StudyRecord, reason: &StopReason) -> Result<()> {
    let manifest = Manifest::parse(&study.manifest, "the study's manifest").context("the stored manifest")?;
    let s = summary(store, study, &manifest).await?;
    eprintln!("\nStopped: {reason}.");
    eprintln!("{}", summary_table(&s));
    eprintln!("Next: `postdoc status`, `postdoc show TRIAL`, `postdoc lineage`, `postdoc best [--branch NAME]`.");
    Ok(())
}

/// The transcript of the agent session that proposed a trial.
pub(crate) async fn transcript(store: &Store, study: &StudyRecord, number: u64, json: bool) -> Result<()> {
    let t = store.trial(study, number).await?;
    let events = store.events(study.id, Some(number)).await?;
    let Some(event) = events.iter().rev().find(|e| e.kind == postdoc_study::TRANSCRIPT_EVENT) else {
        bail!("trial {number} (by {}) has no transcript: only agent specialists keep one", t.specialist);
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&event.payload)?);
        return Ok(());
    }
    let transcript: postdoc_core::Transcript = serde_json::from_value(event.payload.clone())
        .with_context(|| format!("the transcript of trial {number} in the store is not readable"))?;
    println!("trial {number} by {}: {}\n{}", t.specialist, t.hypothesis, transcript.render());
    Ok(())
}

pub(crate) async fn show(store: &Store, study: &StudyRecord, number: u64, full: bool, json: bool) -> Result<()> {
    let t = store.trial(study, number).await?;
    let runs = store.runs(study.id, number).await?;
    let events = store.events(study.id, Some(number)).await?;
    let metrics = store.metrics(study.id, number).await?;
    let data = store.dataset_uses(study.id, Some(number)).await?;
    let cards = store.cards_of_trial(study.id, number).await?;
    let mut papers = Vec::new();
    for c in &cards {
        if let Some(p) = store.paper(&c.paper).await? {
            papers.push(p);
        }
    }
    if json {
        let value = serde_json::json!({"trial": t, "runs": runs, "events": events, "metrics": metrics, "data": data,
                                       "cites": cards, "papers": papers});
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    let mut fields = table();
    let mut row = |k: &str, v: String| {
        fields.add_row(vec![Cell::new(k), Cell::new(v)]);
    };
    row("trial", format!("{} of study {}", t.number, study.name));
    row("specialist", t.specialist.clone());
    row("hypothesis", t.hypothesis.clone());
    if let Some(d) = t.expected_delta {
        row("expected", format!("{d:+.4}"));
    }
    if let Some(p) = t.parent {
        row("parent", format!("trial {p}"));
    }
    if let Some(r) = t.retry_of {
        row("retry of", format!("trial {r} (lost to an infrastructure fault)"));
    }
    if let Edit::Knobs { values } = &t.edit {
        row("knobs", values.iter().map(|(k, v)| format!("{k} = {v}")).collect::<Vec<_>>().join(", "));
    }
    row("status", t.status.as_str().into());
    if let Some(l) = t.label {
        row("label", format!("{l}: {}", t.reason.clone().unwrap_or_default()));
    }
    row("score", format!("{} over {} run(s)", score(t.score), t.runs));
    if !t.scores.is_empty() {
        row("metrics", t.scores.iter().map(|(k, v)| format!("{k} {v:.4}")).collect::<Vec<_>>().join(", "));
    }
    row(
        "cost",
        format!(
            "train {}, eval {}, peak memory {}",
            human_seconds(t.train_seconds),
            human_seconds(t.eval_seconds),
            t.peak_rss_bytes.map(|b| Bytes(b).to_string()).unwrap_or_else(|| "-".into())
        ),
    );
    if let Some(c) = &t.commit {
        row("commit", format!("{c} (refs/postdoc/{}/trials/{})", study.name, t.number));
    }
    if !metrics.is_empty() {
        let names: std::collections::BTreeSet<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
        row("curves", format!("{} point(s) of {}", metrics.len(), names.into_iter().collect::<Vec<_>>().join(", ")));
    }
    for c in &cards {
        let title = papers.iter().find(|p| p.id == c.paper).map(|p| p.title.as_str()).unwrap_or("");
        row("cites", format!("card {}: {} ({title} [{}])", c.id, c.technique, c.paper));
    }
    for u in &data {
        let run = u.run_idx.map(|r| format!("run {r}: ")).unwrap_or_default();
        let short = &u.version[..u.version.len().min(12)];
        row(&format!("{} data", u.role), format!("{run}{} version {short} (postdoc data versions {short})", u.path));
    }
    println!("{fields}");
    if !runs.is_empty() {
        let mut rt = table();
        rt.set_header(vec!["run", "purpose", "seed", "exit", "train", "eval", "artifacts", "score", "findings"]);
        for r in &runs {
            let exit = match (r.exit_code, r.signal, r.timed_out) {
                (_, _, true) => "timeout".to_string(),
                (Some(c), _, _) => c.to_string(),
                (None, Some(s), _) => format!("signal {s}"),
                _ => "-".into(),
            };
            let findings: Vec<String> = r
                .findings
                .iter()
                .map(|f| {
                    serde_json::to_value(f)
                        .ok()
                        .and_then(|v| v["kind"].as_str().map(str::to_string))
                        .unwrap_or_default()
                })
                .collect();
            rt.add_row(vec![
                r.idx.to_string(),
                r.purpose.as_str().to_string(),
                r.seed.to_string(),
                exit,
                human_seconds(r.train_seconds),
                human_seconds(r.eval_seconds),
                r.artifact_bytes.map(|b| Bytes(b).to_string()).unwrap_or_else(|| "-".into()),
                score(r.score),
                findings.join(", "),
            ]);
        }
        println!("{rt}");
    }
    if let Some(e) = t.log_excerpt.as_deref().filter(|e| !e.is_empty()) {
        println!("log excerpt:\n{e}");
    }
    if full {
        if let Some(p) = t.patch.as_deref().filter(|p| !p.is_empty()) {
            println!("\ndiff against the parent:\n{p}");
        }
        for r in &runs {
            println!("\n--- run {} training log (tail) ---\n{}", r.idx, r.log_tail.trim_end());
            if !r.eval_log_tail.is_empty() {
                println!("--- run {} evaluator log (tail) ---\n{}", r.idx, r.eval_log_tail.trim_end());
            }
        }
        println!("\nevents:");
        for e in &events {
            println!("  {} {} {}", e.at_ms, e.kind, e.payload);
        }
    }
    Ok(())
}

pub(crate) async fn lineage(
    store: &Store,
    study: &StudyRecord,
    manifest: &Manifest,
    specialist: Option<&str>,
    json: bool,
) -> Result<()> {
    let view = postdoc_study::lineage_view(store, study, &manifest.study.objective, specialist).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        print!("{}", view.render());
    }
    Ok(())
}

pub(crate) async fn best(
    store: &Store,
    study: &StudyRecord,
    recipe: &Recipe,
    branch: Option<&str>,
    json: bool,
) -> Result<()> {
    let trials = store.trials(study.id).await?;
    let Some(best) = current_best(&trials) else { bail!("study {} has no kept trial yet", study.name) };
    let commit = best.commit.clone().unwrap_or_else(|| study.base_commit.clone());
    let diff = recipe.repo.diff(&study.base_commit, &commit).await?;
    if let Some(name) = branch {
        recipe.repo.create_branch(name, &commit).await.with_context(|| format!("cannot create branch {name}"))?;
    }
    if json {
        let value = serde_json::json!({"trial": best, "base_commit": study.base_commit, "commit": commit, "diff": diff, "branch": branch});
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    let base_score = baseline(&trials).and_then(|b| b.score);
    if best.is_baseline() {
        eprintln!("The best recipe is still the unmodified one (baseline {}).", score(base_score));
    } else {
        let gain = match (best.score, base_score) {
            (Some(x), Some(b)) => format!(" ({:+.4} vs baseline {:.4})", x - b, b),
            _ => String::new(),
        };
        eprintln!(
            "Best: trial {} by {}: {}{gain}\n  {}",
            best.number,
            best.specialist,
            score(best.score),
            best.hypothesis
        );
    }
    if let Some(name) = branch {
        eprintln!("Created branch {name} at {}.", short(&commit));
    }
    print!("{diff}");
    Ok(())
}

fn export_record(t: &TrialRecord) -> serde_json::Value {
    serde_json::json!({
        "id": t.number, "parent": t.parent, "retry_of": t.retry_of, "specialist": t.specialist,
        "hypothesis": t.hypothesis, "expected_delta": t.expected_delta, "status": t.status, "label": t.label,
        "reason": t.reason, "score": t.score, "scores": t.scores, "runs": t.runs,
        "compute_seconds": t.compute_seconds(), "train_seconds": t.train_seconds, "eval_seconds": t.eval_seconds,
        "peak_rss_bytes": t.peak_rss_bytes, "artifact_bytes": t.artifact_bytes, "commit": t.commit,
        "edit": t.edit, "created_ms": t.created_ms, "finished_ms": t.finished_ms,
    })
}

fn csv_field(v: &serde_json::Value) -> String {
    let text = match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text }
}

pub(crate) async fn export(store: &Store, study: &StudyRecord, csv: bool, out: Option<&Path>) -> Result<()> {
    let trials = store.trials(study.id).await?;
    let mut buf = Vec::new();
    const COLUMNS: [&str; 19] = [
        "id",
        "parent",
        "retry_of",
        "specialist",
        "hypothesis",
        "expected_delta",
        "status",
        "label",
        "reason",
        "score",
        "scores",
        "runs",
        "compute_seconds",
        "train_seconds",
        "eval_seconds",
        "peak_rss_bytes",
        "artifact_bytes",
        "commit",
        "edit",
    ];
    if csv {
        writeln!(buf, "{}", COLUMNS.join(","))?;
    }
    for t in &trials {
        let record = export_record(t);
        if csv {
            let row: Vec<String> = COLUMNS.iter().map(|c| csv_field(&record[*c])).collect();
            writeln!(buf, "{}", row.join(","))?;
        } else {
            writeln!(buf, "{}", serde_json::to_string(&record)?)?;
        }
    }
    match out {
        Some(path) => {
            write_whole(path, &buf)?;
            eprintln!("wrote {} trial(s) to {}", trials.len(), path.display());
        }
        None => std::io::stdout().write_all(&buf)?,
    }
    Ok(())
}

/// Writes `bytes` to `path` whole or not at all: a temporary file beside it, renamed into place.
/// Writes a file whole: through a temporary file beside it, renamed at the end.
pub(crate) fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = postdoc_data::write::partial_path(path);
    let written = std::fs::write(&tmp, bytes)
        .with_context(|| format!("cannot write {}", tmp.display()))
        .and_then(|()| std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display())));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// `postdoc report`: the study as one HTML file (or Markdown, for a name ending in `.md`).
pub(crate) async fn report(store: &Store, study: &StudyRecord, recipe: &Recipe, out: Option<&Path>) -> Result<()> {
    let kept = store.kept_trials(study.id).await?;
    let best_diff = match current_best(&kept) {
        Some(best) if !best.is_baseline() => {
            let commit = best.commit.clone().unwrap_or_else(|| study.base_commit.clone());
            Some(recipe.repo.diff(&study.base_commit, &commit).await?)
        }
        _ => None,
    };
    let dashboard = postdoc_dashboard::Dashboard::new(store.clone(), study.clone())?;
    let report = dashboard.report(best_diff).await?;
    let path = out.map(Path::to_path_buf).unwrap_or_else(|| format!("{}-report.html", study.name).into());
    let markdown = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("md"));
    let text = if markdown { report.markdown() } else { report.html() };
    write_whole(&path, text.as_bytes())?;
    println!("wrote {}", path.display());
    Ok(())
}
