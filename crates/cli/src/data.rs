//! `postdoc data`: what is in a dataset file, for people (tables) and programs (JSON).

use crate::views::table;
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use comfy_table::Cell;
use postdoc_data::inspect::{Inspection, Lengths};
use postdoc_data::{InspectSettings, NearSettings, OnMalformed, Rows, clean};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub(crate) enum DataCommand {
    /// Schema, row count, per-column statistics, lengths (characters and approximate tokens),
    /// empty and null fields, exact and near duplicates, scripts and language hints, and
    /// sample rows of a JSONL, JSON, CSV, Parquet or Arrow file, read as a stream.
    Inspect {
        path: PathBuf,
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
}

pub(crate) fn run(command: &DataCommand, json: bool) -> Result<i32> {
    match command {
        DataCommand::Inspect { path, strict, near_threshold, no_near, samples } => {
            if !(0.0..=1.0).contains(near_threshold) || *near_threshold == 0.0 {
                bail!("--near-threshold must be above 0 and at most 1 (got {near_threshold})");
            }
            let policy = if *strict { OnMalformed::Fail } else { OnMalformed::Skip };
            let settings = InspectSettings {
                near: (!no_near).then_some(NearSettings { threshold: *near_threshold, ..NearSettings::default() }),
                samples: *samples,
                ..InspectSettings::default()
            };
            let bytes = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?.len();
            let mut rows = Rows::open(path, policy)?;
            let inspection = postdoc_data::inspect(&mut rows, &settings)?;
            if json {
                let mut value = serde_json::to_value(&inspection)?;
                value["path"] = path.display().to_string().into();
                value["bytes"] = bytes.into();
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                print_inspection(path, bytes, &inspection);
            }
            Ok(0)
        }
        DataCommand::Decontaminate { train, evals, out, ngram, min_chars, eval_fields, strict } => {
            if *ngram == 0 {
                bail!("--ngram must be at least 1");
            }
            let policy = if *strict { OnMalformed::Fail } else { OnMalformed::Skip };
            let settings = postdoc_data::contamination::Settings { ngram: *ngram, min_chars: *min_chars };
            let index = clean::eval_index(evals, eval_fields, settings, policy)?;
            let report = clean::decontaminate(train, &index, out, policy)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
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
                println!("wrote {}", out.display());
            }
            Ok(0)
        }
    }
}

fn lengths(l: &Option<Lengths>) -> String {
    match l {
        Some(l) => format!("{}..{} (mean {:.1}, median {}, p90 {}, p99 {})", l.min, l.max, l.mean, l.p50, l.p90, l.p99),
        None => "-".into(),
    }
}

fn print_inspection(path: &Path, bytes: u64, i: &Inspection) {
    let mut t = table();
    t.add_row(vec![Cell::new("file"), Cell::new(format!("{} ({bytes} bytes)", path.display()))]);
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
