//! `postdoc papers`: the literature behind a study. Papers go into the lineage store (with their
//! authors, sections, citation edges, linked datasets and technique cards) and into a full-text
//! index derived from it.

use crate::views::table;
use anyhow::{Context, Result, bail};
use clap::{Subcommand, ValueEnum};
use comfy_table::Cell;
use postdoc_core::literature::{Citation, Paper, Section, parse_id};
use postdoc_papers::crawl::{CrawlSettings, CrawlSink, crawl};
use postdoc_papers::index::PaperIndex;
use postdoc_papers::{Literature, library};
use postdoc_store::Store;
use serde_json::json;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub(crate) enum PapersCommand {
    /// Add PDFs, text, Markdown or BibTeX files (or folders of them) to the library; a file that
    /// cannot be read is reported and the rest still go in. Or add papers by id
    /// (`2106.09685`, `arXiv:...`, a DOI), fetched from arXiv and Semantic Scholar.
    Add {
        /// Files, folders or paper ids.
        #[arg(required = true)]
        items: Vec<String>,
    },
    /// Search the library (titles, abstracts and text, ranked by BM25) and print the best
    /// matches with a snippet; `--online` searches arXiv and adds what it finds.
    Search {
        query: String,
        #[arg(long, default_value_t = 10)]
        limit: usize,
        #[arg(long)]
        online: bool,
    },
    /// Follow references and citations out from seed papers, breadth first, fetching the most
    /// promising first (closest to the study's topic, most cited, most recent).
    Crawl {
        /// A paper to start from (repeat for several).
        #[arg(long = "seed", required = true, value_name = "ID")]
        seeds: Vec<String>,
        #[arg(long, default_value_t = 2)]
        depth: u32,
        /// Papers whose references and citations are fetched, at most.
        #[arg(long, default_value_t = 30)]
        limit: usize,
        /// References and citations read per paper, each.
        #[arg(long, default_value_t = 50)]
        per_paper: usize,
        /// What the crawl should favour (default: the study's objective and specialists).
        #[arg(long)]
        topic: Option<String>,
    },
    /// The citation graph of the library, as Graphviz dot or JSON.
    Graph {
        #[arg(long, value_enum, default_value = "dot")]
        format: GraphFormat,
        /// Where to write it (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// One paper: its record, sections, technique cards, citations, linked datasets and the
    /// trials that cite its cards.
    Show { id: String },
    /// Read a paper's technique cards again: extractively, or with a model (`--brain`) that must
    /// cite the sentence behind every field (citations are checked against the paper).
    Cards {
        id: String,
        /// The model to read it with: PROVIDER:MODEL[@BASE_URL], or `local`.
        #[arg(long, value_parser = crate::parse_brain)]
        brain: Option<postdoc_core::manifest::BrainSpec>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum GraphFormat {
    Dot,
    Json,
}

pub(crate) struct Library {
    pub(crate) store: Store,
    pub(crate) index_dir: PathBuf,
}

impl Library {
    async fn index(&self) -> Result<PaperIndex> {
        Ok(postdoc_papers::library_index(&self.store).await?)
    }

    async fn keep(&self, paper: &Paper, sections: &[Section]) -> Result<Paper> {
        Ok(postdoc_papers::keep(&self.store, paper, sections).await?)
    }
}

struct StoreSink<'a> {
    library: &'a Library,
    touched: std::sync::Mutex<BTreeSet<String>>,
}

#[async_trait::async_trait]
impl CrawlSink for StoreSink<'_> {
    async fn paper(&self, paper: &Paper) -> Result<(), String> {
        self.library.keep(paper, &[]).await.map_err(|e| e.to_string())?;
        self.touched.lock().unwrap_or_else(|e| e.into_inner()).insert(paper.id.clone());
        Ok(())
    }

    async fn citation(&self, citation: &Citation) -> Result<(), String> {
        self.library.store.save_citation(citation).await.map_err(|e| e.to_string())
    }
}

pub(crate) async fn run(command: &PapersCommand, json: bool, library: Library, topic: String) -> Result<i32> {
    match command {
        PapersCommand::Add { items } => add(&library, items, json).await,
        PapersCommand::Search { query, limit, online } => {
            if *online {
                let lit = Literature::from_env()?;
                for p in lit.search(query, *limit).await? {
                    library.keep(&p, &[]).await?;
                }
            }
            let index = library.index().await?;
            let hits = index.search(query, *limit)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&hits)?);
                return Ok(0);
            }
            if hits.is_empty() {
                println!(
                    "no paper in the library matches `{query}`{}",
                    if *online { "" } else { " (--online also searches arXiv)" }
                );
            }
            for (i, h) in hits.iter().enumerate() {
                println!(
                    "{}. {} [{}]{} score {:.2}",
                    i + 1,
                    h.title,
                    h.id,
                    h.year.map(|y| format!(" {y}")).unwrap_or_default(),
                    h.score
                );
                if !h.snippet.is_empty() {
                    println!("   {}", marked(&h.snippet, &h.highlights));
                }
            }
            Ok(0)
        }
        PapersCommand::Crawl { seeds, depth, limit, per_paper, topic: given } => {
            let keys: Vec<String> = seeds
                .iter()
                .map(|s| {
                    parse_id(s).with_context(|| format!("`{s}` is not a paper id (an arXiv id, a DOI, s2:ID or W...)"))
                })
                .collect::<Result<_>>()?;
            let lit = Literature::from_env()?;
            let settings = CrawlSettings {
                depth: *depth,
                limit: *limit,
                per_paper: *per_paper,
                topic: given.clone().unwrap_or(topic),
            };
            let sink = StoreSink { library: &library, touched: Default::default() };
            let report = crawl(&lit, &keys, &settings, &sink).await;
            let touched = sink.touched.into_inner().unwrap_or_else(|e| e.into_inner());
            // The index follows the store.
            let mut index = PaperIndex::open(&library.index_dir)?;
            let mut kept = Vec::new();
            for id in &touched {
                if let Some(p) = library.store.paper(id).await? {
                    let s = library.store.sections(id).await?;
                    kept.push((p, s));
                }
            }
            index.add(kept.iter().map(|(p, s)| (p, s.as_slice())))?;
            if json {
                let value = json!({"expanded": report.expanded, "papers_seen": report.papers_seen, "citations": report.citations,
                                   "failures": report.failures, "cut_short": report.cut_short});
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                for (id, d, score) in &report.expanded {
                    println!("depth {d}: {id} (score {score:.2})");
                }
                for (id, why) in &report.failures {
                    eprintln!("could not follow {id}: {why}");
                }
                println!(
                    "{} papers followed, {} papers and {} citations seen{}",
                    report.expanded.len(),
                    report.papers_seen,
                    report.citations,
                    if report.cut_short { "; the sources stopped answering, what was found is kept" } else { "" }
                );
            }
            Ok(if report.expanded.is_empty() && !report.failures.is_empty() { 1 } else { 0 })
        }
        PapersCommand::Graph { format, out } => {
            let papers = library.store.papers().await?;
            let edges = library.store.citations().await?;
            let text = match format {
                GraphFormat::Json => serde_json::to_string_pretty(&json!({"papers": papers, "citations": edges}))?,
                GraphFormat::Dot => dot(&papers, &edges),
            };
            match out {
                Some(path) => crate::views::write_whole(path, text.as_bytes())?,
                None => println!("{text}"),
            }
            Ok(0)
        }
        PapersCommand::Show { id } => show(&library, id, json).await,
        PapersCommand::Cards { id, brain } => {
            let key = parse_id(id).unwrap_or_else(|| id.to_string());
            let Some(p) = library.store.paper(&key).await? else {
                bail!("no paper `{id}` in the library (`postdoc papers add {id}` fetches it)");
            };
            let sections = library.store.sections(&p.id).await?;
            let (method, cards) = match brain {
                None => (
                    "extractive".to_string(),
                    postdoc_papers::cards::extract(&p.id, p.abstract_text.as_deref(), &sections, 3),
                ),
                Some(spec) => {
                    let (brain, _) = postdoc_agent::connect(spec).map_err(|e| anyhow::anyhow!("{e}"))?;
                    let cards = postdoc_papers::cards::extract_with_model(
                        brain.as_ref(),
                        &p.id,
                        &p.title,
                        p.abstract_text.as_deref(),
                        &sections,
                    )
                    .await
                    .map_err(|e| anyhow::anyhow!("the model read no cards: {e}"))?;
                    (format!("model:{}", brain.describe()), cards)
                }
            };
            let saved = library.store.save_cards(&p.id, &method, &cards).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&saved)?);
            } else if saved.is_empty() {
                println!("no technique card could be read from {} ({method})", p.id);
            } else {
                for c in &saved {
                    println!("card {}: {} [{}] ({method})", c.id, c.technique, c.part);
                    for (field, e) in &c.evidence {
                        println!("  {field} rests on ({}): \"{}\"", e.section, e.sentence);
                    }
                }
            }
            Ok(0)
        }
    }
}

/// The snippet with its matched words marked.
fn marked(snippet: &str, highlights: &[(usize, usize)]) -> String {
    let mut out = String::new();
    let mut at = 0;
    for (a, b) in highlights {
        if *a < at || *b > snippet.len() {
            continue;
        }
        out.push_str(&snippet[at..*a]);
        out.push('«');
        out.push_str(&snippet[*a..*b]);
        out.push('»');
        at = *b;
    }
    out.push_str(&snippet[at..]);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn dot(papers: &[Paper], edges: &[Citation]) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = String::from("digraph citations {\n  rankdir=LR;\n  node [shape=box, fontsize=10];\n");
    let known: BTreeSet<&str> = papers.iter().map(|p| p.id.as_str()).collect();
    for p in papers {
        let title: String = p.title.chars().take(60).collect();
        let label = format!("{}\\n{}{}", title, p.id, p.year.map(|y| format!(" ({y})")).unwrap_or_default());
        out.push_str(&format!("  {} [label={}];\n", quote(&p.id), quote(&label).replace("\\\\n", "\\n")));
    }
    for e in edges.iter().filter(|e| known.contains(e.citing.as_str()) && known.contains(e.cited.as_str())) {
        let style = if e.influential { " [penwidth=2]" } else { "" };
        out.push_str(&format!("  {} -> {}{style};\n", quote(&e.citing), quote(&e.cited)));
    }
    out.push_str("}\n");
    out
}

async fn add(library: &Library, items: &[String], json: bool) -> Result<i32> {
    let mut added = Vec::new();
    let mut failed: Vec<(String, String)> = Vec::new();
    let mut ignored = Vec::new();
    let mut lit: Option<Literature> = None;
    for item in items {
        let path = Path::new(item);
        if path.exists() {
            let got = library::add(path).await;
            for i in got.papers {
                let p = library.keep(&i.paper, &i.sections).await?;
                added.push((p, i.sections));
            }
            failed.extend(got.failed.into_iter().map(|f| (f.path.display().to_string(), f.reason)));
            ignored.extend(got.ignored.into_iter().map(|p| p.display().to_string()));
        } else if let Some(key) = parse_id(item) {
            let lit = match &mut lit {
                Some(l) => l,
                None => lit.insert(Literature::from_env()?),
            };
            match lit.paper(&key).await {
                Ok(p) => {
                    let p = library.keep(&p, &[]).await?;
                    link_datasets(library, lit, &p).await;
                    added.push((p, Vec::new()));
                }
                Err(e) => failed.push((item.clone(), e.to_string())),
            }
        } else {
            failed.push((item.clone(), "neither a file nor a paper id".into()));
        }
    }
    let mut index = PaperIndex::open(&library.index_dir)?;
    index.add(added.iter().map(|(p, s)| (p, s.as_slice())))?;
    if json {
        let value = json!({
            "added": added.iter().map(|(p, s)| json!({"id": p.id, "title": p.title, "sections": s.len()})).collect::<Vec<_>>(),
            "failed": failed.iter().map(|(f, r)| json!({"item": f, "reason": r})).collect::<Vec<_>>(),
            "ignored": ignored,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        for (p, s) in &added {
            println!("added {}: {} ({} sections)", p.id, p.title, s.len());
        }
        for (f, r) in &failed {
            eprintln!("not added: {f}: {r}");
        }
        if !ignored.is_empty() {
            eprintln!("{} files of other kinds left out (PDF, .txt, .md and .bib are read)", ignored.len());
        }
    }
    if added.is_empty() && !failed.is_empty() {
        bail!("nothing was added");
    }
    Ok(if failed.is_empty() { 0 } else { 2 })
}

/// Links an arXiv paper to the datasets its page on the Hub lists and to those whose cards cite
/// it. The Hub out of reach costs only the links.
async fn link_datasets(library: &Library, lit: &Literature, paper: &Paper) {
    let Some(arxiv) = paper.arxiv.as_deref() else { return };
    let hf = lit.hf();
    let mut links: Vec<(String, &str)> = Vec::new();
    match hf.paper(arxiv).await {
        Ok(Some(page)) => links.extend(page.datasets.into_iter().map(|d| (d, "linked"))),
        Ok(None) => {}
        Err(e) => tracing::warn!(paper = %paper.id, "no Hugging Face page: {e}"),
    }
    match hf.citing_datasets(arxiv, 20).await {
        Ok(found) => links.extend(found.into_iter().map(|d| (d, "cites"))),
        Err(e) => tracing::warn!(paper = %paper.id, "no datasets citing it: {e}"),
    }
    for (dataset, relation) in links {
        if let Err(e) = library.store.link_dataset(&paper.id, &dataset, relation).await {
            tracing::warn!(paper = %paper.id, "cannot link {dataset}: {e}");
        }
    }
}

async fn show(library: &Library, id: &str, json: bool) -> Result<i32> {
    let key = parse_id(id).unwrap_or_else(|| id.to_string());
    let Some(p) = library.store.paper(&key).await? else {
        bail!("no paper `{id}` in the library (`postdoc papers add {id}` fetches it)");
    };
    let sections = library.store.sections(&p.id).await?;
    let cards = library.store.cards(Some(&p.id)).await?;
    let edges = library.store.citations_of(&p.id).await?;
    let datasets = library.store.datasets_of_paper(&p.id).await?;
    if json {
        let value = json!({"paper": p, "sections": sections, "cards": cards, "citations": edges, "datasets": datasets});
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(0);
    }
    let mut t = table();
    let mut row = |k: &str, v: String| {
        t.add_row(vec![Cell::new(k), Cell::new(v)]);
    };
    row("paper", format!("{} ({})", p.title, p.id));
    if !p.authors.is_empty() {
        row("authors", p.authors.join(", "));
    }
    row("published", [p.published.clone(), p.venue.clone()].into_iter().flatten().collect::<Vec<_>>().join(", "));
    if let Some(n) = p.citation_count {
        row(
            "cited by",
            format!("{n}{}", p.influential_citation_count.map(|i| format!(" ({i} influential)")).unwrap_or_default()),
        );
    }
    row(
        "citations known",
        format!(
            "{} references, {} citing it",
            edges.iter().filter(|e| e.citing == p.id).count(),
            edges.iter().filter(|e| e.cited == p.id).count()
        ),
    );
    if let Some(a) = &p.abstract_text {
        row("abstract", postdoc_web::short(a, 700));
    }
    if !sections.is_empty() {
        row(
            "sections",
            sections
                .iter()
                .map(|s| format!("{} ({})", if s.title.is_empty() { &s.kind } else { &s.title }, s.kind))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    if !datasets.is_empty() {
        row("datasets", datasets.iter().map(|(d, r)| format!("hub:{d} ({r})")).collect::<Vec<_>>().join(", "));
    }
    println!("{t}");
    for c in &cards {
        println!("card {}: {} [{}; from the {}]", c.id, c.technique, c.part, c.section);
        if let Some(e) = &c.effect {
            println!("  effect: {e}");
        }
        if let Some(s) = &c.setting {
            println!("  setting: {s}");
        }
    }
    Ok(0)
}
