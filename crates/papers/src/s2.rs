//! The Semantic Scholar Graph API: a paper, its references and citations (paged), search, and
//! recommendations. An API key (`S2_API_KEY`) is sent when set; without one, Semantic Scholar
//! shares a small pool between everyone and often refuses, which is when OpenAlex takes over.

use crate::PapersError;
use crate::model::{Citation, Paper};
use postdoc_web::{Fetcher, Request};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

pub const DEFAULT_ENDPOINT: &str = "https://api.semanticscholar.org";
/// With a key, one request a second.
pub const PACE: Duration = Duration::from_secs(1);
/// Citation counts move; a week is fresh enough for ranking.
const FRESH: Duration = Duration::from_secs(7 * 24 * 3600);
const FIELDS: &str = "paperId,externalIds,url,title,abstract,venue,year,publicationDate,authors,citationCount,\
                      influentialCitationCount,openAccessPdf,fieldsOfStudy";
/// The fields of the papers at the other end of a reference or citation.
const EDGE_FIELDS: &str = "paperId,externalIds,title,abstract,venue,year,publicationDate,authors,citationCount,\
                           influentialCitationCount,isInfluential,contexts";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct S2Paper {
    paper_id: Option<String>,
    #[serde(default)]
    external_ids: Option<serde_json::Map<String, Value>>,
    url: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(rename = "abstract")]
    abstract_text: Option<String>,
    venue: Option<String>,
    year: Option<i32>,
    publication_date: Option<String>,
    #[serde(default)]
    authors: Option<Vec<S2Author>>,
    citation_count: Option<u64>,
    influential_citation_count: Option<u64>,
    open_access_pdf: Option<Value>,
    fields_of_study: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct S2Author {
    name: Option<String>,
}

impl S2Paper {
    /// The paper, unless Semantic Scholar could not resolve it (no id and no title).
    pub(crate) fn into_paper(self) -> Option<Paper> {
        let ids = self.external_ids.unwrap_or_default();
        let id_of = |k: &str| {
            ids.get(k).and_then(|v| v.as_str().map(str::to_string).or_else(|| v.as_u64().map(|n| n.to_string())))
        };
        if self.paper_id.is_none() && self.title.as_deref().is_none_or(str::is_empty) {
            return None;
        }
        let mut p = Paper {
            title: self.title.unwrap_or_default(),
            abstract_text: self.abstract_text,
            authors: self.authors.unwrap_or_default().into_iter().filter_map(|a| a.name).collect(),
            year: self.year,
            published: self.publication_date,
            venue: self.venue.filter(|v| !v.is_empty()),
            arxiv: id_of("ArXiv"),
            doi: id_of("DOI"),
            s2: self.paper_id.clone(),
            url: self.url,
            pdf_url: self
                .open_access_pdf
                .and_then(|o| o.get("url")?.as_str().map(str::to_string))
                .filter(|u| !u.is_empty()),
            citation_count: self.citation_count,
            influential_citation_count: self.influential_citation_count,
            categories: self.fields_of_study.unwrap_or_default(),
            source: "semantic-scholar".into(),
            ..Paper::default()
        };
        // A reference S2 could not resolve still has a title: keep it under a key of its own.
        p.id = if self.paper_id.is_none() && p.arxiv.is_none() && p.doi.is_none() {
            format!("title:{}", p.title.to_lowercase().split_whitespace().collect::<Vec<_>>().join(" "))
        } else {
            p.key()
        };
        Some(p)
    }
}

#[derive(Debug, Deserialize)]
struct EdgePage {
    #[serde(default)]
    next: Option<u64>,
    #[serde(default)]
    data: Vec<Value>,
}

pub struct SemanticScholar<'a> {
    pub fetcher: &'a Fetcher,
    pub endpoint: String,
    pub key: Option<String>,
}

/// How a key S2 knows a paper by is written: `arXiv:ID`, `DOI:...`, or its own id.
pub fn s2_id(key: &str) -> Option<String> {
    let (kind, id) = key.split_once(':')?;
    Some(match kind {
        "arxiv" => format!("arXiv:{id}"),
        "doi" => format!("DOI:{id}"),
        "s2" => id.to_string(),
        _ => return None,
    })
}

impl SemanticScholar<'_> {
    fn request(&self, path: &str, params: &[(&str, String)]) -> Result<Request, PapersError> {
        let url = postdoc_web::url_with(&format!("{}{path}", self.endpoint), params.iter().cloned())?;
        let mut request = Request::get(url).fresh_for(FRESH);
        if let Some(key) = &self.key {
            request = request.header("x-api-key", key.clone());
        }
        Ok(request)
    }

    /// One paper by its key (`arxiv:...`, `doi:...`, `s2:...`).
    pub async fn paper(&self, key: &str) -> Result<Option<Paper>, PapersError> {
        let Some(id) = s2_id(key) else { return Ok(None) };
        let request = self.request(&format!("/graph/v1/paper/{}", encode_path(&id)), &[("fields", FIELDS.into())])?;
        match self.fetcher.fetch(&request).await {
            Ok(r) => Ok(r.json::<S2Paper>()?.into_paper()),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Up to `limit` of the paper's references (`cited: true`) or citations, with the edges.
    pub async fn edges(
        &self,
        key: &str,
        references: bool,
        limit: usize,
    ) -> Result<Vec<(Paper, Citation)>, PapersError> {
        let Some(id) = s2_id(key) else { return Ok(Vec::new()) };
        let (path, side) = if references { ("references", "citedPaper") } else { ("citations", "citingPaper") };
        let mut out = Vec::new();
        let mut offset = 0u64;
        loop {
            let page_size = (limit - out.len()).clamp(1, 1000) as u64;
            let request = self.request(
                &format!("/graph/v1/paper/{}/{path}", encode_path(&id)),
                &[("fields", EDGE_FIELDS.into()), ("offset", offset.to_string()), ("limit", page_size.to_string())],
            )?;
            let page: EdgePage = match self.fetcher.fetch(&request).await {
                Ok(r) => r.json()?,
                Err(e) if e.is_not_found() => return Ok(out),
                Err(e) => return Err(e.into()),
            };
            let got = page.data.len();
            for item in page.data {
                let influential = item.get("isInfluential").and_then(Value::as_bool).unwrap_or(false);
                let contexts: Vec<String> = item
                    .get("contexts")
                    .and_then(Value::as_array)
                    .map(|c| c.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
                    .unwrap_or_default();
                let Some(other) = item.get(side).cloned() else { continue };
                let Ok(other) = serde_json::from_value::<S2Paper>(other) else { continue };
                let Some(other) = other.into_paper() else { continue };
                let (citing, cited) =
                    if references { (key.to_string(), other.id.clone()) } else { (other.id.clone(), key.to_string()) };
                out.push((other, Citation { citing, cited, influential, contexts }));
            }
            match page.next {
                Some(next) if got > 0 && out.len() < limit => offset = next,
                _ => break,
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    /// Papers matching `query`, most relevant first.
    pub async fn search(&self, query: &str, limit: usize) -> Result<Vec<Paper>, PapersError> {
        let request = self.request(
            "/graph/v1/paper/search",
            &[("query", query.into()), ("fields", FIELDS.into()), ("limit", limit.clamp(1, 100).to_string())],
        )?;
        #[derive(Deserialize)]
        struct Found {
            #[serde(default)]
            data: Vec<S2Paper>,
        }
        let found: Found = self.fetcher.fetch(&request).await?.json()?;
        Ok(found.data.into_iter().filter_map(S2Paper::into_paper).collect())
    }

    /// Papers Semantic Scholar recommends for readers of this one.
    pub async fn recommendations(&self, key: &str, limit: usize) -> Result<Vec<Paper>, PapersError> {
        let Some(id) = s2_id(key) else { return Ok(Vec::new()) };
        let request = self.request(
            &format!("/recommendations/v1/papers/forpaper/{}", encode_path(&id)),
            &[("fields", FIELDS.into()), ("limit", limit.clamp(1, 500).to_string())],
        )?;
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Recommended {
            #[serde(default)]
            recommended_papers: Vec<S2Paper>,
        }
        match self.fetcher.fetch(&request).await {
            Ok(r) => {
                Ok(r.json::<Recommended>()?.recommended_papers.into_iter().filter_map(S2Paper::into_paper).collect())
            }
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }
}

/// An id in a URL path: written as the documentation writes it (`DOI:10.18653/v1/N18-3011`,
/// slashes and all), anything else escaped.
pub(crate) fn encode_path(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
        .replace("%3A", ":")
        .replace("%2F", "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn papers_read_from_the_documented_shape() {
        let p: S2Paper = serde_json::from_str(
            r#"{"paperId": "a8ca46b171467ceb2d7652fbfb67fe701ad86092",
                "externalIds": {"DBLP": "journals/corr/abs-2106-09685", "ArXiv": "2106.09685", "CorpusId": 235458009},
                "url": "https://www.semanticscholar.org/paper/a8ca46b171467ceb2d7652fbfb67fe701ad86092",
                "title": "LoRA: Low-Rank Adaptation of Large Language Models", "abstract": null, "venue": "",
                "year": 2021, "referenceCount": 71, "citationCount": 21785, "influentialCitationCount": 3500,
                "openAccessPdf": {"url": "", "status": null, "license": null, "disclaimer": "..."},
                "fieldsOfStudy": ["Computer Science"], "publicationDate": "2021-06-17",
                "authors": [{"authorId": "2157840220", "name": "J. E. Hu"}, {"authorId": null, "name": "Yelong Shen"}]}"#,
        )
        .unwrap();
        let p = p.into_paper().unwrap();
        assert_eq!(p.id, "arxiv:2106.09685");
        assert_eq!(p.s2.as_deref(), Some("a8ca46b171467ceb2d7652fbfb67fe701ad86092"));
        assert_eq!((p.venue, p.pdf_url, p.abstract_text), (None, None, None));
        assert_eq!(p.authors, ["J. E. Hu", "Yelong Shen"]);
        assert_eq!(p.citation_count, Some(21785));
        let unresolved: S2Paper =
            serde_json::from_str(r#"{"paperId": null, "title": "J-PAL  working paper"}"#).unwrap();
        assert_eq!(unresolved.into_paper().unwrap().id, "title:j-pal working paper");
        let nothing: S2Paper = serde_json::from_str(r#"{"paperId": null}"#).unwrap();
        assert!(nothing.into_paper().is_none());
        assert_eq!(s2_id("doi:10.18653/v1/n18-3011").as_deref(), Some("DOI:10.18653/v1/n18-3011"));
        assert_eq!(encode_path("DOI:10.18653/v1/n18-3011"), "DOI:10.18653/v1/n18-3011");
        assert_eq!(encode_path("a b?c"), "a%20b%3Fc");
        assert_eq!(s2_id("local:abc"), None);
    }
}
