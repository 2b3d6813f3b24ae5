//! The Hugging Face Hub's side of `postdoc data`: searching it, inspecting a dataset there, and
//! pulling a split's Parquet export into the recipe.

use crate::data::{Recorder, print_inspection};
use crate::views::table;
use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use comfy_table::Cell;
use postdoc_data::inspect::Accumulator;
use postdoc_data::version::{Fingerprint, Hasher, short};
use postdoc_data::{InspectSettings, OnMalformed, Row, Rows};
use postdoc_hub::{DatasetInfo, DatasetQuery, Hub, Sort};
use serde_json::json;
use std::path::Path;

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum SortArg {
    Downloads,
    Likes,
    Trending,
    Modified,
}

/// The Hub as the environment names it (`HF_ENDPOINT`, `HF_TOKEN`), through the shared cache.
fn hub() -> Result<Hub> {
    Ok(Hub::from_env()?)
}

/// `hub:OWNER/NAME` names a dataset on the Hub.
pub(crate) fn hub_name(target: &str) -> Option<&str> {
    target.strip_prefix("hub:")
}

pub(crate) struct SearchArgs<'a> {
    pub(crate) query: Option<&'a str>,
    pub(crate) tasks: &'a [String],
    pub(crate) languages: &'a [String],
    pub(crate) licence: Option<&'a str>,
    pub(crate) author: Option<&'a str>,
    pub(crate) tags: &'a [String],
    pub(crate) sort: SortArg,
    pub(crate) limit: usize,
}

pub(crate) async fn search(args: SearchArgs<'_>, json: bool) -> Result<i32> {
    if args.limit == 0 {
        bail!("--limit must be at least 1");
    }
    let mut filters: Vec<String> = args.tasks.iter().map(|t| format!("task_categories:{t}")).collect();
    filters.extend(args.languages.iter().map(|l| format!("language:{l}")));
    filters.extend(args.licence.map(|l| format!("license:{l}")));
    filters.extend(args.tags.iter().cloned());
    let query = DatasetQuery {
        search: args.query.map(str::to_string),
        author: args.author.map(str::to_string),
        filters,
        sort: Some(match args.sort {
            SortArg::Downloads => Sort::Downloads,
            SortArg::Likes => Sort::Likes,
            SortArg::Trending => Sort::Trending,
            SortArg::Modified => Sort::Modified,
        }),
        limit: args.limit,
    };
    let found = hub()?.search_datasets(&query).await?;
    if json {
        let rows: Vec<_> = found.iter().map(summary).collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    if found.is_empty() {
        println!("no dataset on the Hub matches");
        return Ok(0);
    }
    let mut t = table();
    t.set_header(vec!["dataset", "downloads", "likes", "licence", "tasks", "size", "modified"]);
    for d in &found {
        t.add_row(vec![
            Cell::new(format!("hub:{}{}", d.id, d.gating().map(|g| format!(" (gated: {g})")).unwrap_or_default())),
            Cell::new(d.downloads.map_or("-".into(), |n| n.to_string())),
            Cell::new(d.likes.map_or("-".into(), |n| n.to_string())),
            Cell::new(d.licence().unwrap_or_else(|| "-".into())),
            Cell::new(d.tasks().join(", ")),
            Cell::new(d.size_category().unwrap_or_else(|| "-".into())),
            Cell::new(d.last_modified.as_deref().map(|m| &m[..m.len().min(10)]).unwrap_or("-")),
        ]);
    }
    println!("{t}");
    println!("`postdoc data inspect hub:NAME` reads one's card, splits and first rows");
    Ok(0)
}

fn summary(d: &DatasetInfo) -> serde_json::Value {
    json!({
        "id": d.id, "downloads": d.downloads, "likes": d.likes, "licence": d.licence(), "tasks": d.tasks(),
        "languages": d.languages(), "size": d.size_category(), "papers": d.papers(), "gated": d.gating(),
        "modified": d.last_modified, "sha": d.sha,
    })
}

/// Inspects a dataset on the Hub: its card, splits and sizes, columns, and the statistics of a
/// sample of its rows (read through the dataset viewer, no download).
pub(crate) async fn inspect(
    name: &str,
    config: Option<&str>,
    split: Option<&str>,
    sample_rows: u64,
    settings: &InspectSettings,
    html: Option<&Path>,
    json: bool,
) -> Result<i32> {
    let hub = hub()?;
    let info = hub.dataset(name).await?;
    let splits = hub.splits(name).await?;
    let Some(chosen) =
        splits.iter().find(|s| config.is_none_or(|c| c == s.config) && split.is_none_or(|p| p == s.split)).or_else(
            || splits.iter().find(|s| config.is_none_or(|c| c == s.config) && split.is_none() && s.split == "train"),
        )
    else {
        let known: Vec<String> = splits.iter().map(|s| format!("{}/{}", s.config, s.split)).collect();
        bail!("hub:{name} has no such split; it has {}", known.join(", "));
    };
    let sizes = hub.sizes(name).await.unwrap_or_default();
    let first = hub.first_rows(name, &chosen.config, &chosen.split).await?;
    // More rows than the first ones come from /rows, which needs the viewer's Parquet export;
    // without it, the first rows are the sample.
    let rows = match sample_rows > first.rows.len() as u64 {
        true => match hub.rows(name, &chosen.config, &chosen.split, 0, sample_rows).await {
            Ok(more) if more.len() > first.rows.len() => more,
            Ok(_) => first.rows.clone(),
            Err(e) => {
                eprintln!(
                    "reading more than the first rows failed ({e}); the statistics cover the first {}",
                    first.rows.len()
                );
                first.rows.clone()
            }
        },
        false => first.rows.clone(),
    };
    let mut acc = Accumulator::new(settings);
    for r in &rows {
        acc.add(&Row { line: r.row_idx + 1, fields: r.row.clone() });
    }
    let inspection = acc.finish(0, Vec::new());
    if let Some(page) = html {
        crate::data::write_page(
            page,
            &format!("hub:{name} ({}/{}, first {} rows)", chosen.config, chosen.split, rows.len()),
            &inspection,
        )?;
    }
    let total = sizes.iter().find(|s| s.config == chosen.config && s.split == chosen.split).and_then(|s| s.num_rows);
    if json {
        let value = json!({
            "dataset": summary(&info), "description": info.description, "splits": splits, "sizes": sizes,
            "config": chosen.config, "split": chosen.split, "features": first.features,
            "sample_rows": rows.len(), "rows_total": total, "inspection": inspection,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(0);
    }
    let mut t = table();
    t.add_row(vec![
        Cell::new("dataset"),
        Cell::new(format!("hub:{} at {}", info.id, info.sha.as_deref().map(short).unwrap_or("?"))),
    ]);
    t.add_row(vec![Cell::new("licence"), Cell::new(info.licence().unwrap_or_else(|| "not declared".into()))]);
    t.add_row(vec![Cell::new("tasks"), Cell::new(info.tasks().join(", "))]);
    t.add_row(vec![Cell::new("languages"), Cell::new(info.languages().join(", "))]);
    if let Some(g) = info.gating() {
        t.add_row(vec![Cell::new("access"), Cell::new(format!("gated ({g})"))]);
    }
    if !info.papers().is_empty() {
        t.add_row(vec![
            Cell::new("papers"),
            Cell::new(info.papers().iter().map(|p| format!("arXiv:{p}")).collect::<Vec<_>>().join(", ")),
        ]);
    }
    if let Some(d) = info.description.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        t.add_row(vec![Cell::new("description"), Cell::new(postdoc_web::short(d, 400))]);
    }
    println!("{t}");
    let mut s = table();
    s.set_header(vec!["config", "split", "rows", "columns", "parquet bytes"]);
    for sp in &splits {
        let size = sizes.iter().find(|z| z.config == sp.config && z.split == sp.split);
        let n = |v: Option<u64>| v.map_or("-".to_string(), |n| n.to_string());
        s.add_row(vec![
            Cell::new(&sp.config),
            Cell::new(&sp.split),
            Cell::new(n(size.and_then(|z| z.num_rows))),
            Cell::new(n(size.and_then(|z| z.num_columns))),
            Cell::new(n(size.and_then(|z| z.num_bytes_parquet_files))),
        ]);
    }
    println!("{s}");
    let mut c = table();
    c.set_header(vec!["column", "type"]);
    for f in &first.features {
        c.add_row(vec![Cell::new(&f.name), Cell::new(f.describe())]);
    }
    println!("{c}");
    println!(
        "statistics of {}/{}: a sample of the first {} rows{}",
        chosen.config,
        chosen.split,
        rows.len(),
        total.map(|t| format!(" of {t}")).unwrap_or_default()
    );
    print_inspection(Path::new(&format!("hub:{name}")), 0, &inspection);
    println!("`postdoc data pull hub:{name} --split {} --out DIR` downloads the split", chosen.split);
    Ok(0)
}

/// Downloads a split's Parquet export into `out` (a folder), and records its version with the
/// Hub as its source and the card's licence.
pub(crate) async fn pull(
    name: &str,
    config: Option<&str>,
    split: &str,
    out: &Path,
    recorder: &Recorder,
    json: bool,
) -> Result<i32> {
    let hub = hub()?;
    let info = hub.dataset(name).await?;
    let files: Vec<_> = hub
        .parquet_files(name)
        .await?
        .into_iter()
        .filter(|f| f.split == split && config.is_none_or(|c| c == f.config))
        .collect();
    let configs: std::collections::BTreeSet<&str> = files.iter().map(|f| f.config.as_str()).collect();
    if files.is_empty() {
        bail!(
            "hub:{name} has no Parquet export of split `{split}`{}",
            config.map(|c| format!(" in config `{c}`")).unwrap_or_default()
        );
    }
    if configs.len() > 1 {
        bail!(
            "hub:{name} has split `{split}` in several configs ({}): choose one with --config",
            configs.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut paths = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let dest = out.join(format!("{}-{}-{i:05}.parquet", f.config, f.split));
        hub.download(f, &dest).await?;
        paths.push(dest);
    }
    // The split's version is that of its rows across the files, in order.
    let mut hasher = Hasher::default();
    let mut bytes = 0;
    for p in &paths {
        bytes += std::fs::metadata(p)?.len();
        for row in Rows::open(p, OnMalformed::Fail)? {
            hasher.add(&row?.fields);
        }
    }
    let (version, rows, shape) = hasher.finish();
    let f = Fingerprint { version: version.clone(), rows, bytes, format: "parquet".into(), shape };
    let source = format!("hub:{}@{} {}/{}", info.id, info.sha.as_deref().unwrap_or("main"), files[0].config, split);
    let recorded = recorder.record_from(&source, &f, info.licence()).await?;
    if json {
        let value = json!({"files": paths, "rows": rows, "bytes": bytes, "version": version, "licence": info.licence(),
                           "source": source, "recorded": recorded});
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        for p in &paths {
            println!("wrote {}", p.display());
        }
        println!(
            "{rows} rows, version {} ({}), licence {}",
            short(&version),
            recorder.said(recorded),
            info.licence().unwrap_or_else(|| "not declared".into())
        );
    }
    Ok(0)
}
