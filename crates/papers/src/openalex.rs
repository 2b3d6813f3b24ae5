//! OpenAlex: the citation graph when Semantic Scholar refuses or rate-limits. A work by DOI
//! (arXiv papers have DataCite DOIs, `10.48550/arXiv.ID`), its references (listed in the work)
//! and the works citing it (a filter, paged with a cursor). `OPENALEX_API_KEY` is sent when set.

use crate::PapersError;
use crate::model::{Citation, Paper};
use postdoc_web::{Fetcher, Request};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

pub const DEFAULT_ENDPOINT: &str = "https://api.openalex.org";
const FRESH: Duration = Duration::from_secs(7 * 24 * 3600);
/// Ids asked for at once in a `openalex:W1|W2|...` filter.
const IDS_PER_REQUEST: usize = 50;

#[derive(Debug, Deserialize)]
pub(crate) struct Work {
    id: String,
    doi: Option<String>,
    title: Option<String>,
    display_name: Option<String>,
    publication_year: Option<i32>,
    publication_date: Option<String>,
    #[serde(default)]
    authorships: Vec<Value>,
    cited_by_count: Option<u64>,
    #[serde(default)]
    referenced_works: Vec<String>,
    abstract_inverted_index: Option<BTreeMap<String, Vec<usize>>>,
    primary_location: Option<Value>,
}

/// The abstract from OpenAlex's inverted index: each word at each of its positions.
pub fn rebuild_abstract(index: &BTreeMap<String, Vec<usize>>) -> String {
    let mut at: Vec<(usize, &str)> =
        index.iter().flat_map(|(w, ps)| ps.iter().map(move |p| (*p, w.as_str()))).collect();
    at.sort();
    at.into_iter().map(|(_, w)| w).collect::<Vec<_>>().join(" ")
}

/// `W2741809807` from `https://openalex.org/W2741809807`.
fn short_id(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

impl Work {
    fn into_paper(self) -> Paper {
        let doi = self.doi.map(|d| d.trim_start_matches("https://doi.org/").to_string());
        let location = self.primary_location.unwrap_or_default();
        let mut p = Paper {
            title: self.title.or(self.display_name).unwrap_or_default(),
            abstract_text: self.abstract_inverted_index.as_ref().map(rebuild_abstract).filter(|a| !a.is_empty()),
            authors: self
                .authorships
                .iter()
                .filter_map(|a| a.pointer("/author/display_name")?.as_str().map(str::to_string))
                .collect(),
            year: self.publication_year,
            published: self.publication_date,
            venue: location.pointer("/source/display_name").and_then(Value::as_str).map(str::to_string),
            doi,
            openalex: Some(short_id(&self.id).to_string()),
            url: location.get("landing_page_url").and_then(Value::as_str).map(str::to_string),
            pdf_url: location.get("pdf_url").and_then(Value::as_str).map(str::to_string),
            citation_count: self.cited_by_count,
            source: "openalex".into(),
            ..Paper::default()
        };
        p.id = p.key();
        p
    }
}

#[derive(Debug, Deserialize)]
struct List {
    #[serde(default)]
    meta: Value,
    #[serde(default)]
    results: Vec<Work>,
}

pub struct OpenAlex<'a> {
    pub fetcher: &'a Fetcher,
    pub endpoint: String,
    pub key: Option<String>,
}

impl OpenAlex<'_> {
    fn request(&self, path: &str, params: &[(&str, String)]) -> Result<Request, PapersError> {
        let key = self.key.iter().map(|k| ("api_key", k.clone()));
        let url = postdoc_web::url_with(&format!("{}{path}", self.endpoint), params.iter().cloned().chain(key))?;
        Ok(Request::get(url).fresh_for(FRESH))
    }

    /// The OpenAlex path of a key: a DOI (an arXiv id as its DataCite DOI) or a work id.
    fn work_path(key: &str) -> Option<String> {
        let (kind, id) = key.split_once(':')?;
        Some(match kind {
            "arxiv" => format!("/works/doi:10.48550/arXiv.{id}"),
            "doi" => format!("/works/doi:{id}"),
            "openalex" => format!("/works/{id}"),
            _ => return None,
        })
    }

    async fn work(&self, key: &str) -> Result<Option<Work>, PapersError> {
        let Some(path) = Self::work_path(key) else { return Ok(None) };
        match self.fetcher.fetch(&self.request(&path, &[])?).await {
            Ok(r) => Ok(Some(r.json()?)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// One paper by its key. An arXiv paper keeps its arXiv key even where OpenAlex merged it
    /// with its published version.
    pub async fn paper(&self, key: &str) -> Result<Option<Paper>, PapersError> {
        Ok(self.work(key).await?.map(|w| with_key(w.into_paper(), key)))
    }

    /// Up to `limit` of the paper's references (`references: true`) or the papers citing it.
    pub async fn edges(
        &self,
        key: &str,
        references: bool,
        limit: usize,
    ) -> Result<Vec<(Paper, Citation)>, PapersError> {
        let Some(work) = self.work(key).await? else { return Ok(Vec::new()) };
        let me = short_id(&work.id).to_string();
        let mut out = Vec::new();
        if references {
            let ids: Vec<&str> = work.referenced_works.iter().map(|r| short_id(r)).take(limit).collect();
            for chunk in ids.chunks(IDS_PER_REQUEST) {
                let request = self.request(
                    "/works",
                    &[("filter", format!("openalex:{}", chunk.join("|"))), ("per-page", IDS_PER_REQUEST.to_string())],
                )?;
                let list: List = self.fetcher.fetch(&request).await?.json()?;
                for w in list.results {
                    let p = w.into_paper();
                    let edge = Citation {
                        citing: key.to_string(),
                        cited: p.id.clone(),
                        influential: false,
                        contexts: Vec::new(),
                    };
                    out.push((p, edge));
                }
            }
            return Ok(out);
        }
        let mut cursor = "*".to_string();
        while out.len() < limit {
            let request = self.request(
                "/works",
                &[("filter", format!("cites:{me}")), ("per-page", "100".into()), ("cursor", cursor.clone())],
            )?;
            let list: List = self.fetcher.fetch(&request).await?.json()?;
            if list.results.is_empty() {
                break;
            }
            for w in list.results {
                let p = w.into_paper();
                let edge =
                    Citation { citing: p.id.clone(), cited: key.to_string(), influential: false, contexts: Vec::new() };
                out.push((p, edge));
            }
            match list.meta.get("next_cursor").and_then(Value::as_str) {
                Some(next) => cursor = next.to_string(),
                None => break,
            }
        }
        out.truncate(limit);
        Ok(out)
    }
}

fn with_key(mut p: Paper, key: &str) -> Paper {
    if let Some(a) = key.strip_prefix("arxiv:") {
        p.arxiv = Some(a.to_string());
        p.id = p.key();
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn works_read_from_the_documented_shape() {
        let w: Work = serde_json::from_str(
            r#"{"id": "https://openalex.org/W2741809807", "doi": "https://doi.org/10.7717/peerj.4375",
                "title": "The state of OA", "display_name": "The state of OA", "publication_year": 2018,
                "publication_date": "2018-02-13",
                "primary_location": {"is_oa": true, "landing_page_url": "https://doi.org/10.7717/peerj.4375",
                                     "pdf_url": "https://peerj.com/articles/4375.pdf",
                                     "source": {"id": "https://openalex.org/S1983995261", "display_name": "PeerJ"}},
                "authorships": [{"author_position": "first", "author": {"id": "https://openalex.org/A1", "display_name": "Heather A. Piwowar"}, "institutions": []}],
                "cited_by_count": 382, "referenced_works": ["https://openalex.org/W1491283625"],
                "abstract_inverted_index": {"Despite": [0], "growing": [1], "interest": [2], "in": [3, 6], "Open": [4], "Access": [5], "research": [7]}}"#,
        )
        .unwrap();
        let p = w.into_paper();
        assert_eq!(p.id, "doi:10.7717/peerj.4375");
        assert_eq!(p.abstract_text.as_deref(), Some("Despite growing interest in Open Access in research"));
        assert_eq!(
            (p.venue.as_deref(), p.citation_count, p.openalex.as_deref()),
            (Some("PeerJ"), Some(382), Some("W2741809807"))
        );
        assert_eq!(p.authors, ["Heather A. Piwowar"]);
        let bare: Work =
            serde_json::from_str(r#"{"id": "https://openalex.org/W1", "abstract_inverted_index": null}"#).unwrap();
        let p = with_key(bare.into_paper(), "arxiv:2106.09685");
        assert_eq!(p.id, "arxiv:2106.09685");
        assert_eq!(OpenAlex::work_path("arxiv:2106.09685").as_deref(), Some("/works/doi:10.48550/arXiv.2106.09685"));
    }
}
