//! Literature: the papers behind a study's ideas. Clients for the sources that describe papers
//! (arXiv for metadata and search, Semantic Scholar for the citation graph with OpenAlex as its
//! fallback, Hugging Face Papers for the datasets and models linked to a paper), all through
//! [`postdoc_web::Fetcher`] (cached on disk, paced, rate limits honoured); a local library of
//! PDFs, text, Markdown and BibTeX files (`library.rs`); a paper's text split into sections
//! (`sections.rs`); technique cards read from them (`cards.rs`); following citations outward
//! from seeds, most promising first (`crawl.rs`); full-text search (`index.rs`).

pub mod arxiv;
pub mod cards;
pub mod crawl;
pub mod hf;
pub mod index;
pub mod library;
pub mod model;
pub mod openalex;
pub mod s2;
pub mod sections;

pub use model::{Card, Citation, Evidence, Paper, Section, parse_id};

use postdoc_hub::HubSettings;
use postdoc_web::{FetchSettings, Fetcher, WebError};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum PapersError {
    #[error(transparent)]
    Web(#[from] WebError),
    #[error(transparent)]
    Store(#[from] postdoc_store::StoreError),
    #[error(transparent)]
    Index(#[from] index::IndexError),
    #[error("{source_name}: {reason}")]
    Source { source_name: &'static str, reason: String },
    #[error("`{0}` is not a paper identifier (an arXiv id, a DOI, s2:ID or an OpenAlex W-id)")]
    BadId(String),
    #[error("no paper `{0}` in any source")]
    NotFound(String),
}

/// Where each source is, and the keys to send.
#[derive(Clone)]
pub struct Sources {
    pub arxiv: String,
    pub semantic_scholar: String,
    pub openalex: String,
    pub s2_key: Option<String>,
    pub openalex_key: Option<String>,
    pub hub: HubSettings,
    /// The least time between two requests to arXiv and to Semantic Scholar: what their terms
    /// ask (three seconds, one second).
    pub arxiv_pace: Duration,
    pub s2_pace: Duration,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("arxiv", &self.arxiv)
            .field("semantic_scholar", &self.semantic_scholar)
            .field("openalex", &self.openalex)
            .field("s2_key", &self.s2_key.as_ref().map(|_| "***"))
            .field("openalex_key", &self.openalex_key.as_ref().map(|_| "***"))
            .field("hub", &self.hub)
            .field("arxiv_pace", &self.arxiv_pace)
            .field("s2_pace", &self.s2_pace)
            .finish()
    }
}

impl Sources {
    /// The public services, unless the environment points elsewhere (`POSTDOC_ARXIV_API`,
    /// `POSTDOC_S2_API`, `POSTDOC_OPENALEX_API`, `HF_ENDPOINT`), with the keys it holds
    /// (`S2_API_KEY` or `SEMANTIC_SCHOLAR_API_KEY`, `OPENALEX_API_KEY`, `HF_TOKEN`).
    pub fn from_env() -> Sources {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Sources {
            arxiv: var("POSTDOC_ARXIV_API").unwrap_or_else(|| arxiv::DEFAULT_ENDPOINT.into()),
            semantic_scholar: var("POSTDOC_S2_API")
                .unwrap_or_else(|| s2::DEFAULT_ENDPOINT.into())
                .trim_end_matches('/')
                .into(),
            openalex: var("POSTDOC_OPENALEX_API")
                .unwrap_or_else(|| openalex::DEFAULT_ENDPOINT.into())
                .trim_end_matches('/')
                .into(),
            s2_key: var("S2_API_KEY").or_else(|| var("SEMANTIC_SCHOLAR_API_KEY")),
            openalex_key: var("OPENALEX_API_KEY"),
            hub: HubSettings::from_env(),
            arxiv_pace: arxiv::PACE,
            s2_pace: s2::PACE,
        }
    }
}

/// A paper's references and the papers citing it, and which source gave them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Neighbours {
    pub references: Vec<(Paper, Citation)>,
    pub citations: Vec<(Paper, Citation)>,
    pub source: &'static str,
}

/// Every source, through one fetcher.
pub struct Literature {
    fetcher: Fetcher,
    sources: Sources,
}

fn host_of(url: &str) -> Option<String> {
    url::Url::parse(url).ok()?.host_str().map(str::to_string)
}

impl Literature {
    /// Paces each source as its terms ask (arXiv every three seconds, Semantic Scholar every
    /// second).
    pub fn new(mut settings: FetchSettings, sources: Sources) -> Result<Literature, PapersError> {
        for (url, pace) in [(&sources.arxiv, sources.arxiv_pace), (&sources.semantic_scholar, sources.s2_pace)] {
            if let Some(host) = host_of(url) {
                let slower = settings.pace.get(&host).copied().unwrap_or(Duration::ZERO).max(pace);
                settings.pace.insert(host, slower);
            }
        }
        Ok(Literature { fetcher: Fetcher::new(settings)?, sources })
    }

    pub fn from_env() -> Result<Literature, PapersError> {
        Literature::new(FetchSettings::default(), Sources::from_env())
    }

    fn arxiv(&self) -> arxiv::Arxiv<'_> {
        arxiv::Arxiv { fetcher: &self.fetcher, endpoint: self.sources.arxiv.clone() }
    }

    fn s2(&self) -> s2::SemanticScholar<'_> {
        s2::SemanticScholar {
            fetcher: &self.fetcher,
            endpoint: self.sources.semantic_scholar.clone(),
            key: self.sources.s2_key.clone(),
        }
    }

    fn openalex(&self) -> openalex::OpenAlex<'_> {
        openalex::OpenAlex {
            fetcher: &self.fetcher,
            endpoint: self.sources.openalex.clone(),
            key: self.sources.openalex_key.clone(),
        }
    }

    pub fn hf(&self) -> hf::HfPapers<'_> {
        hf::HfPapers { fetcher: &self.fetcher, hub: self.sources.hub.clone() }
    }

    /// One paper, from every source that knows it: arXiv's record for an arXiv paper, with the
    /// citation graph's (Semantic Scholar's, or OpenAlex's when Semantic Scholar refuses).
    pub async fn paper(&self, key: &str) -> Result<Paper, PapersError> {
        let mut found: Option<Paper> = None;
        if let Some(id) = key.strip_prefix("arxiv:") {
            found = self.arxiv().by_ids(&[id.to_string()]).await?.into_iter().next();
        }
        let graph = match self.s2().paper(key).await {
            Ok(p) => Ok(p),
            Err(PapersError::Web(e)) if e.is_unavailable() => {
                tracing::warn!(paper = key, "Semantic Scholar unavailable ({e}); asking OpenAlex");
                self.openalex().paper(key).await
            }
            Err(e) => Err(e),
        };
        // With arXiv's record at hand, a citation graph out of reach costs only the counts.
        let graph = match graph {
            Ok(g) => g,
            Err(e) if found.is_some() => {
                tracing::warn!(paper = key, "no citation counts: {e}");
                None
            }
            Err(e) => return Err(e),
        };
        match (found.as_mut(), graph) {
            (Some(p), Some(g)) => p.merge(g),
            (None, Some(g)) => found = Some(g),
            _ => {}
        }
        found.ok_or_else(|| PapersError::NotFound(key.to_string()))
    }

    /// Up to `limit` references and `limit` citations of a paper, from Semantic Scholar, or from
    /// OpenAlex when Semantic Scholar refuses or stays rate-limited.
    pub async fn neighbours(&self, key: &str, limit: usize) -> Result<Neighbours, PapersError> {
        let s2 = self.s2();
        let from_s2 = async {
            let references = s2.edges(key, true, limit).await?;
            let citations = s2.edges(key, false, limit).await?;
            Ok::<_, PapersError>(Neighbours { references, citations, source: "semantic-scholar" })
        };
        match from_s2.await {
            Ok(n) => Ok(n),
            Err(PapersError::Web(e)) if e.is_unavailable() => {
                tracing::warn!(paper = key, "Semantic Scholar unavailable ({e}); asking OpenAlex");
                let oa = self.openalex();
                Ok(Neighbours {
                    references: oa.edges(key, true, limit).await?,
                    citations: oa.edges(key, false, limit).await?,
                    source: "openalex",
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Papers matching `query` on arXiv (its query syntax; plain words search every field).
    pub async fn search(&self, query: &str, limit: usize) -> Result<Vec<Paper>, PapersError> {
        let plain = !query.contains(':');
        let q = if plain {
            query.split_whitespace().map(|w| format!("all:{w}")).collect::<Vec<_>>().join(" AND ")
        } else {
            query.to_string()
        };
        Ok(self.arxiv().search(&q, 0, limit as u64).await?.papers)
    }
}

/// Stores a paper with its sections, and the cards the extractive method reads from it (they
/// replace its earlier extractive cards no trial cites).
pub async fn keep(store: &postdoc_store::Store, paper: &Paper, sections: &[Section]) -> Result<Paper, PapersError> {
    let saved = store.save_paper(paper).await?;
    if !sections.is_empty() {
        store.save_sections(&saved.id, sections).await?;
    }
    let all_sections = store.sections(&saved.id).await?;
    let found = cards::extract(&saved.id, saved.abstract_text.as_deref(), &all_sections, 3);
    store.save_cards(&saved.id, "extractive", &found).await?;
    Ok(saved)
}

/// The store's paper index, rebuilt from the store when the two disagree (another process added
/// papers, or the index was lost).
pub async fn library_index(store: &postdoc_store::Store) -> Result<index::PaperIndex, PapersError> {
    let mut idx = index::PaperIndex::open(&index::dir_for_store(store.url()))?;
    let papers = store.papers().await?;
    if idx.len() != papers.len() as u64 {
        let mut sections = Vec::with_capacity(papers.len());
        for p in &papers {
            sections.push(store.sections(&p.id).await?);
        }
        idx.rebuild(papers.iter().zip(sections.iter().map(Vec::as_slice)))?;
    }
    Ok(idx)
}
