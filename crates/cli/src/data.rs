//! `postdoc data`: what is in a dataset file, converting it between post-training shapes,
//! decontaminating it, and the versions of every dataset the lineage store has seen, for people
//! (tables) and programs (JSON).

use crate::views::table;
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use comfy_table::Cell;
use postdoc_data::convert::{ConvertSettings, convert};
use postdoc_data::formats::Shape;
use postdoc_data::inspect::{Inspection, Lengths};
use postdoc_data::version::{Fingerprint, fingerprint, short};
use postdoc_data::{InspectSettings, NearSettings, OnMalformed, Rows, clean};
use postdoc_store::{DatasetVersion, Store, now_ms};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub(crate) enum DataCommand {
    /// Schema, row count, per-column statistics, lengths (characters and approximate tokens),
    /// empty and null fields, exact and near duplicates, scripts and language hints, and
    /// sample rows of a JSONL, JSON, CSV, Parquet or Arrow file, read as a stream.
    Inspect {
        /// A dataset file, or `hub:OWNER/NAME` for a dataset on the Hugging Face Hub (its card,
        /// splits, columns and a sample of rows, read through the dataset viewer).
        path: String,
        /// For a Hub dataset: the configuration (default: the first).
        #[arg(long)]
        config: Option<String>,
        /// For a Hub dataset: the split (default: train, else the first).
        #[arg(long)]
        split: Option<String>,
        /// For a Hub dataset: rows to read for the statistics (at least the first rows the viewer
        /// shows, up to 100).
        #[arg(long, default_value_t = 100, value_name = "N")]
        sample_rows: u64,
        /// Stop at the first malformed row instead of skipping and counting it.
        #[arg(long)]
        strict: bool,
        /// Jaccard similarity (of 5-word shingles) above which two rows are near duplicates.
        #[arg(long, default_value_t = 0.8, value_name = "SIMILARITY")]
        near_threshold: f64,
        /// Skip the near-duplicate search.
        #[arg(long)]
        no_near: bool,
        /// Sample rows to show.
        #[arg(long, default_value_t = 3)]
        samples: usize,
        /// Also write the inspection as an HTML page with plots to FILE.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// Write every duplicate found to FILE, one JSON line each: the row's line, the earlier
        /// line it repeats, and whether exactly or nearly.
        #[arg(long, value_name = "FILE")]
        duplicates: Option<PathBuf>,
    },
    /// Compare a training set with evaluation sets (exact, normalised and n-gram overlap), say
    /// which rows hold which evaluation items, and write the rows that hold none to OUT.
    Decontaminate {
        train: PathBuf,
        /// An evaluation set (repeat for several).
        #[arg(long = "eval", required = true, value_name = "EVAL")]
        evals: Vec<PathBuf>,
        /// Where the clean copy goes (JSON Lines).
        #[arg(long, value_name = "CLEAN")]
        out: PathBuf,
        /// Words in a shared run that counts as overlap.
        #[arg(long, default_value_t = 13)]
        ngram: usize,
        /// Evaluation texts shorter than this many characters are not checked.
        #[arg(long, default_value_t = 8)]
        min_chars: usize,
        /// The evaluation rows' fields to look for (default: every string in them).
        #[arg(long = "eval-field", value_name = "FIELD")]
        eval_fields: Vec<String>,
        /// Stop at the first malformed row instead of skipping and counting it.
        #[arg(long)]
        strict: bool,
    },
    /// Convert a dataset between the shapes post-training data comes in (Alpaca, ShareGPT,
    /// messages, prompt/completion, preference pairs, prompt/answer), row by row, into JSON Lines
    /// or Parquet; rows the target cannot hold are counted with the reason, not guessed at.
    Convert {
        input: PathBuf,
        /// The shape to write: messages, sharegpt, alpaca, prompt-completion, preference or
        /// prompt-answer.
        #[arg(long, value_parser = parse_shape)]
        to: Shape,
        /// Where to write it (.jsonl or .parquet).
        #[arg(long, value_name = "OUT")]
        out: PathBuf,
        /// The input's shape, when every row has it (default: each row's is recognised).
        #[arg(long, value_parser = parse_shape)]
        from: Option<Shape>,
        /// Keep the chosen reply of each preference pair, as a conversation.
        #[arg(long)]
        chosen_only: bool,
        /// Stop at the first malformed row instead of skipping and counting it.
        #[arg(long)]
        strict: bool,
    },
    /// Search the Hugging Face Hub for datasets by words in their name, task, language, licence
    /// or any tag; answers are cached, so a repeated search works offline.
    Search {
        /// Words in the dataset's name.
        query: Option<String>,
        /// A task category (text-generation, question-answering, ...); repeat for several.
        #[arg(long = "task")]
        tasks: Vec<String>,
        /// A language code (en, fr, ...); repeat for several.
        #[arg(long = "language")]
        languages: Vec<String>,
        /// A licence identifier (mit, apache-2.0, cc-by-4.0, ...).
        #[arg(long)]
        licence: Option<String>,
        /// The owner (a user or an organisation).
        #[arg(long)]
        author: Option<String>,
        /// Any other Hub tag (arxiv:2106.09685, format:parquet, ...); repeat for several.
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[arg(long, value_enum, default_value = "downloads")]
        sort: crate::hub::SortArg,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Download a split of a Hub dataset (its Parquet export) into a folder, and record its
    /// version with the Hub as its source and the card's licence.
    Pull {
        /// `hub:OWNER/NAME`.
        dataset: String,
        #[arg(long)]
        config: Option<String>,
        #[arg(long, default_value = "train")]
        split: String,
        /// The folder to write the split's files into.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// The dataset versions the lineage store has seen: every one, or one file's or version's
    /// history (where it came from, what it was made from and how, which trials used it).
    Versions {
        /// A dataset file, or a version (its first characters are enough).
        target: Option<String>,
    },
}

fn parse_shape(name: &str) -> Result<Shape, String> {
    Shape::parse(name).ok_or_else(|| {
        let known: Vec<&str> = Shape::ALL.iter().map(|s| s.as_str()).collect();
        format!("unknown shape `{name}`; one of {}", known.join(", "))
    })
}

/// Where `postdoc data` records the versions it sees: the lineage store of the recipe it runs
/// in (or `--store`), if any.
pub(crate) struct Recorder {
    store: Option<Store>,
}

impl Recorder {
    pub(crate) fn new(store: Option<Store>) -> Recorder {
        Recorder { store }
    }

    /// Records a file's version (with what it was made from, and how); says whether it did.
    async fn record(&self, path: &Path, f: &Fingerprint, derived: Option<(&str, Value)>) -> Result<bool> {
        let source = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string();
        self.record_version(source, f, None, derived).await
    }

    /// Records a version first seen at `source` (a dataset on the Hub, say), under `licence`.
    pub(crate) async fn record_from(&self, source: &str, f: &Fingerprint, licence: Option<String>) -> Result<bool> {
        self.record_version(source.to_string(), f, licence, None).await
    }

    async fn record_version(
        &self,
        source: String,
        f: &Fingerprint,
        licence: Option<String>,
        derived: Option<(&str, Value)>,
    ) -> Result<bool> {
        let Some(store) = &self.store else { return Ok(false) };
        // A transformation that changed nothing makes no new version, and no version is its own parent.
        let derived = derived.filter(|(parent, _)| *parent != f.version);
        let v = DatasetVersion {
            version: f.version.clone(),
            rows: f.rows,
            bytes: f.bytes,
            format: f.format.clone(),
            shape: f.shape.map(|s| s.to_string()),
            source,
            licence,
            derived_from: derived.as_ref().map(|(p, _)| p.to_string()),
            transform: derived.map(|(_, t)| t),
            created_ms: now_ms(),
        };
        store.record_dataset(&v).await?;
        Ok(true)
    }

    pub(crate) fn said(&self, recorded: bool) -> &'static str {
        match (recorded, &self.store) {
            (true, _) => "recorded in the lineage store",
            (false, Some(_)) => "not recorded",
            (false, None) => "not recorded: no recipe here (postdoc.toml) and no --store",
        }
    }

    /// The input's version, read only when there is a store to record it in.
    fn input_version(&self, path: &Path) -> Result<Option<Fingerprint>> {
        if self.store.is_none() {
            return Ok(None);
        }
        match fingerprint(path) {
            Ok(f) => Ok(Some(f)),
            // A file with malformed rows has no well-defined version; the command still runs.
            Err(postdoc_data::ReadError::Malformed { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// The file's fingerprint once written (its size and format read from the disk).
fn written(path: &Path, version: String, rows: u64, shape: Option<Shape>) -> Fingerprint {
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let format = postdoc_data::FileFormat::of(path).map(|f| f.as_str()).unwrap_or("jsonl").to_string();
    Fingerprint { version, rows, bytes, format, shape }
}

pub(crate) async fn run(command: &DataCommand, json: bool, recorder: Recorder) -> Result<i32> {
    let policy = |strict: bool| if strict { OnMalformed::Fail } else { OnMalformed::Skip };
    match command {
        DataCommand::Inspect {
            path,
            config,
            split,
            sample_rows,
            strict,
            near_threshold,
            no_near,
            samples,
            html,
            duplicates,
        } => {
            if !(0.0..=1.0).contains(near_threshold) || *near_threshold == 0.0 {
                bail!("--near-threshold must be above 0 and at most 1 (got {near_threshold})");
            }
            let settings = InspectSettings {
                near: (!no_near).then_some(NearSettings { threshold: *near_threshold, ..NearSettings::default() }),
                samples: *samples,
                // Every pair is kept when they are all to be written out.
                examples: if duplicates.is_some() { usize::MAX } else { InspectSettings::default().examples },
            };
            if let Some(name) = crate::hub::hub_name(path) {
                let page = html.as_deref();
                return crate::hub::inspect(
                    name,
                    config.as_deref(),
                    split.as_deref(),
                    *sample_rows,
                    &settings,
                    page,
                    json,
                )
                .await;
            }
            if config.is_some() || split.is_some() {
                bail!("--config and --split are for a dataset on the Hub (hub:OWNER/NAME)");
            }
            let path = Path::new(path);
            let bytes = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?.len();
            let mut rows = Rows::open(path, policy(*strict))?;
            let mut inspection = postdoc_data::inspect(&mut rows, &settings)?;
            if let Some(out) = duplicates {
                write_duplicates(out, &mut inspection)?;
            }
            if let Some(page) = html {
                write_page(page, &path.display().to_string(), &inspection)?;
            }
            let recorded = match &inspection.version {
                Some(version) => {
                    let shape = majority(&inspection.shapes, inspection.rows);
                    recorder.record(path, &written(path, version.clone(), inspection.rows, shape), None).await?
                }
                None => false,
            };
            if json {
                let mut value = serde_json::to_value(&inspection)?;
                value["path"] = path.display().to_string().into();
                value["bytes"] = bytes.into();
                value["recorded"] = recorded.into();
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                print_inspection(path, bytes, &inspection);
                match &inspection.version {
                    Some(v) => println!("version {} ({})", short(v), recorder.said(recorded)),
                    None => println!("no version: malformed rows were skipped, so the content is not well defined"),
                }
            }
            Ok(0)
        }
        DataCommand::Decontaminate { train, evals, out, ngram, min_chars, eval_fields, strict } => {
            if *ngram == 0 {
                bail!("--ngram must be at least 1");
            }
            let settings = postdoc_data::contamination::Settings { ngram: *ngram, min_chars: *min_chars };
            let index = clean::eval_index(evals, eval_fields, settings, policy(*strict))?;
            let input = recorder.input_version(train)?;
            let report = clean::decontaminate(train, &index, out, policy(*strict))?;
            let mut recorded = false;
            if let Some(input) = &input {
                recorder.record(train, input, None).await?;
                let mut against = Vec::new();
                for e in evals {
                    if let Some(f) = recorder.input_version(e)? {
                        recorder.record(e, &f, None).await?;
                        against.push(f.version);
                    }
                }
                let transform = json!({
                    "op": "decontaminate", "against": against, "ngram": ngram, "min_chars": min_chars,
                    "eval_fields": eval_fields, "removed": report.removed,
                });
                let clean = written(out, report.version.clone(), report.kept, input.shape);
                recorded = recorder.record(out, &clean, Some((&input.version, transform))).await?;
            }
            if json {
                let mut value = serde_json::to_value(&report)?;
                value["recorded"] = recorded.into();
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                println!(
                    "{} rows read, {} kept, {} removed{}; {} of {} evaluation items found in {}",
                    report.rows,
                    report.kept,
                    report.removed,
                    if report.skipped > 0 { format!(", {} malformed skipped", report.skipped) } else { String::new() },
                    report.eval_items_found,
                    report.eval_items,
                    train.display()
                );
                for r in &report.examples {
                    let items: Vec<String> = r.items.iter().map(|(item, how)| format!("{item} ({how})")).collect();
                    println!("  line {}: {}", r.line, items.join(", "));
                }
                if report.removed as usize > report.examples.len() {
                    println!(
                        "  ... and {} more rows (--json lists the first {})",
                        report.removed as usize - report.examples.len(),
                        report.examples.len()
                    );
                }
                println!("wrote {}: version {} ({})", out.display(), short(&report.version), recorder.said(recorded));
            }
            Ok(0)
        }
        DataCommand::Convert { input, to, out, from, chosen_only, strict } => {
            let settings =
                ConvertSettings { to: *to, from: *from, chosen_only: *chosen_only, on_malformed: policy(*strict) };
            let before = recorder.input_version(input)?;
            let report = convert(input, out, settings)?;
            let mut recorded = false;
            if let (Some(before), Some(version)) = (&before, &report.version) {
                recorder.record(input, before, None).await?;
                let unmapped: u64 = report.unmapped.iter().map(|u| u.count).sum();
                let transform = json!({
                    "op": "convert", "to": to, "from": from, "chosen_only": chosen_only, "unmapped": unmapped,
                });
                let after = written(out, version.clone(), report.written, Some(*to));
                recorded = recorder.record(out, &after, Some((&before.version, transform))).await?;
            }
            if json {
                let mut value = serde_json::to_value(&report)?;
                value["recorded"] = recorded.into();
                println!("{}", serde_json::to_string_pretty(&value)?);
                return Ok(0);
            }
            let shapes: Vec<String> = report.shapes.iter().map(|(s, n)| format!("{s} {n}")).collect();
            println!(
                "{} rows read ({}){}, {} written as {to}",
                report.rows,
                shapes.join(", "),
                if report.skipped > 0 { format!(", {} malformed skipped", report.skipped) } else { String::new() },
                report.written
            );
            for u in &report.unmapped {
                let lines: Vec<String> = u.lines.iter().map(|l| l.to_string()).collect();
                let more = if u.count as usize > u.lines.len() { ", ..." } else { "" };
                println!("  {} not converted: {} (line {}{more})", u.count, u.reason, lines.join(", "));
            }
            let version = report.version.as_deref().map(short).unwrap_or("-");
            println!("wrote {}: version {version} ({})", out.display(), recorder.said(recorded));
            Ok(0)
        }
        DataCommand::Search { query, tasks, languages, licence, author, tags, sort, limit } => {
            let args = crate::hub::SearchArgs {
                query: query.as_deref(),
                tasks,
                languages,
                licence: licence.as_deref(),
                author: author.as_deref(),
                tags,
                sort: *sort,
                limit: *limit,
            };
            crate::hub::search(args, json).await
        }
        DataCommand::Pull { dataset, config, split, out } => {
            let Some(name) = crate::hub::hub_name(dataset) else {
                bail!("`{dataset}` is not a Hub dataset: name it hub:OWNER/NAME");
            };
            crate::hub::pull(name, config.as_deref(), split, out, &recorder, json).await
        }
        DataCommand::Versions { target } => versions(target.as_deref(), json, recorder.store).await,
    }
}

/// Writes every duplicate pair to `out` (JSON Lines), then keeps only the first few in the
/// inspection for its report.
fn write_duplicates(out: &Path, inspection: &mut Inspection) -> Result<()> {
    let mut w = postdoc_data::write::RowWriter::create(out, None)?;
    let shown = InspectSettings::default().examples;
    let near = inspection.near_duplicates.as_mut().map(|n| &mut n.found);
    for (kind, found) in [("exact", Some(&mut inspection.exact_duplicates)), ("near", near)] {
        let Some(found) = found else { continue };
        for (line, repeats) in &found.examples {
            w.write(&json!({"line": line, "repeats": repeats, "kind": kind}))?;
        }
        found.examples.truncate(shown);
    }
    let written = w.finish()?;
    eprintln!("wrote {} duplicate pairs to {}", written.rows, out.display());
    Ok(())
}

/// Writes the inspection's HTML page whole (through a temporary file).
pub(crate) fn write_page(out: &Path, name: &str, inspection: &Inspection) -> Result<()> {
    let page = postdoc_data::page::inspection_page(name, inspection);
    crate::views::write_whole(out, page.as_bytes())?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

/// The shape more than half the rows have.
fn majority(shapes: &BTreeMap<Shape, u64>, rows: u64) -> Option<Shape> {
    shapes.iter().find(|(_, n)| **n * 2 > rows).map(|(s, _)| *s)
}

async fn versions(target: Option<&str>, json: bool, store: Option<Store>) -> Result<i32> {
    let Some(store) = store else {
        bail!("no lineage store here: run this inside a recipe (a folder with postdoc.toml), or give --store");
    };
    let Some(target) = target else {
        let all = store.datasets().await?;
        if json {
            println!("{}", serde_json::to_string_pretty(&all)?);
            return Ok(0);
        }
        if all.is_empty() {
            println!("no dataset versions yet: `postdoc data inspect FILE` or a study records them");
            return Ok(0);
        }
        let mut t = table();
        t.set_header(vec!["version", "rows", "shape", "format", "source", "licence", "made from"]);
        for v in &all {
            let made = match (&v.derived_from, &v.transform) {
                (Some(p), Some(tr)) => format!("{} by {}", short(p), tr["op"].as_str().unwrap_or("?")),
                (Some(p), None) => short(p).to_string(),
                _ => "-".into(),
            };
            t.add_row(vec![
                Cell::new(short(&v.version)),
                Cell::new(v.rows),
                Cell::new(v.shape.as_deref().unwrap_or("-")),
                Cell::new(&v.format),
                Cell::new(&v.source),
                Cell::new(v.licence.as_deref().unwrap_or("-")),
                Cell::new(made),
            ]);
        }
        println!("{t}");
        return Ok(0);
    };
    // A file is looked up by its content; anything else is taken as a version.
    let (version, file) = if Path::new(target).is_file() {
        let f = fingerprint(Path::new(target))?;
        (f.version.clone(), Some(f))
    } else {
        match store.dataset(target).await? {
            Some(v) => (v.version, None),
            None => bail!("`{target}` is neither a dataset file nor a version the lineage store knows"),
        }
    };
    let chain = store.dataset_lineage(&version).await?;
    let derived = store.datasets_derived_from(&version).await?;
    let uses = store.uses_of_dataset(&version).await?;
    if json {
        let value = json!({"version": version, "file": file, "known": !chain.is_empty(), "lineage": chain,
                           "derived": derived, "uses": uses});
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(0);
    }
    let Some(this) = chain.first() else {
        println!(
            "{target}: version {} is not in the lineage store (`postdoc data inspect` records it)",
            short(&version)
        );
        return Ok(0);
    };
    let mut t = table();
    t.add_row(vec![Cell::new("version"), Cell::new(&this.version)]);
    t.add_row(vec![Cell::new("rows"), Cell::new(format!("{} ({}, {} bytes)", this.rows, this.format, this.bytes))]);
    t.add_row(vec![Cell::new("shape"), Cell::new(this.shape.as_deref().unwrap_or("-"))]);
    t.add_row(vec![Cell::new("source"), Cell::new(&this.source)]);
    t.add_row(vec![Cell::new("licence"), Cell::new(this.licence.as_deref().unwrap_or("unknown"))]);
    println!("{t}");
    if chain.len() > 1 || this.transform.is_some() {
        println!("made by:");
        for pair in chain.windows(2) {
            let how = pair[0].transform.as_ref().map(|t| t.to_string()).unwrap_or_else(|| "-".into());
            println!("  {} <- {} from {} ({})", short(&pair[0].version), how, short(&pair[1].version), pair[1].source);
        }
    }
    for d in &derived {
        let op = d.transform.as_ref().and_then(|t| t["op"].as_str()).unwrap_or("?");
        println!("made into {} by {op} ({})", short(&d.version), d.source);
    }
    for u in &uses {
        let trial = match (u.trial, u.run_idx) {
            (Some(t), Some(r)) => format!("trial {t} run {r}"),
            (Some(t), None) => format!("trial {t}"),
            (None, _) => "the study".into(),
        };
        println!("used by study `{}`, {trial}, as {} data ({})", u.study, u.role, u.path);
    }
    Ok(0)
}

fn lengths(l: &Option<Lengths>) -> String {
    match l {
        Some(l) => format!("{}..{} (mean {:.1}, median {}, p90 {}, p99 {})", l.min, l.max, l.mean, l.p50, l.p90, l.p99),
        None => "-".into(),
    }
}

pub(crate) fn print_inspection(path: &Path, bytes: u64, i: &Inspection) {
    let mut t = table();
    let size = if bytes > 0 { format!(" ({bytes} bytes)") } else { String::new() };
    t.add_row(vec![Cell::new("file"), Cell::new(format!("{}{size}", path.display()))]);
    t.add_row(vec![Cell::new("rows"), Cell::new(i.rows)]);
    if i.skipped > 0 {
        t.add_row(vec![Cell::new("malformed (skipped)"), Cell::new(i.skipped)]);
    }
    t.add_row(vec![Cell::new("characters per row"), Cell::new(lengths(&i.text_chars))]);
    t.add_row(vec![Cell::new("tokens per row (approx.)"), Cell::new(lengths(&i.text_tokens))]);
    let examples = |e: &[(u64, u64)]| {
        e.iter().map(|(row, first)| format!("line {row} repeats line {first}")).collect::<Vec<_>>().join("; ")
    };
    t.add_row(vec![
        Cell::new("exact duplicates"),
        Cell::new(format!("{} {}", i.exact_duplicates.count, examples(&i.exact_duplicates.examples))),
    ]);
    if let Some(near) = &i.near_duplicates {
        t.add_row(vec![
            Cell::new(format!("near duplicates (similarity > {})", near.threshold)),
            Cell::new(format!("{} {}", near.found.count, examples(&near.found.examples))),
        ]);
    }
    let total: u64 = i.scripts.values().sum();
    let scripts: Vec<String> =
        i.scripts.iter().map(|(s, n)| format!("{s} {:.1}%", 100.0 * *n as f64 / total.max(1) as f64)).collect();
    t.add_row(vec![Cell::new("characters"), Cell::new(scripts.join(", "))]);
    let languages: Vec<String> =
        i.languages.iter().map(|l| format!("{} {:.0}%", l.language, 100.0 * l.share)).collect();
    t.add_row(vec![
        Cell::new("language hints"),
        Cell::new(if languages.is_empty() { "none".into() } else { languages.join(", ") }),
    ]);
    let shapes: Vec<String> = i.shapes.iter().map(|(s, n)| format!("{s} {n}")).collect();
    let other = i.rows - i.shapes.values().sum::<u64>();
    let shapes = match (shapes.is_empty(), other) {
        (true, _) => "none recognised".to_string(),
        (false, 0) => shapes.join(", "),
        (false, n) => format!("{}, none {n}", shapes.join(", ")),
    };
    t.add_row(vec![Cell::new("post-training shape"), Cell::new(shapes)]);
    println!("{t}");

    let mut c = table();
    c.set_header(vec!["column", "present", "null", "empty", "types", "characters"]);
    for col in &i.columns {
        let types: Vec<String> = col.types.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let chars = match (&col.chars, &col.numbers) {
            (Some(_), _) => lengths(&col.chars),
            (None, Some(n)) => format!("numbers {}..{} (mean {:.4})", n.min, n.max, n.mean),
            (None, None) => "-".into(),
        };
        c.add_row(vec![
            Cell::new(&col.name),
            Cell::new(col.present),
            Cell::new(col.nulls),
            Cell::new(col.empty),
            Cell::new(types.join(", ")),
            Cell::new(chars),
        ]);
    }
    println!("{c}");
    for line in &i.skipped_examples {
        println!("skipped: {line}");
    }
    for (n, sample) in i.samples.iter().enumerate() {
        let text = sample.to_string();
        let shown: String = text.chars().take(300).collect();
        let more = if shown.len() < text.len() { "…" } else { "" };
        println!("sample {}: {shown}{more}", n + 1);
    }
}
