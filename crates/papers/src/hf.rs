//! Hugging Face Papers: a paper's page on the Hub (its AI summary and keywords, and the datasets
//! and models linked to it), the daily papers, and the Hub's paper search.

use crate::PapersError;
use crate::model::Paper;
use postdoc_hub::HubSettings;
use postdoc_web::{Fetcher, Request};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

const FRESH: Duration = Duration::from_secs(24 * 3600);

/// A paper on the Hub, with what links to it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HubPaper {
    pub paper: Paper,
    pub keywords: Vec<String>,
    pub summary: Option<String>,
    /// Datasets on the Hub linked to the paper (`OWNER/NAME`).
    pub datasets: Vec<String>,
    pub models: Vec<String>,
    pub upvotes: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    id: Option<String>,
    title: Option<String>,
    summary: Option<String>,
    #[serde(default)]
    authors: Vec<Value>,
    published_at: Option<String>,
    upvotes: Option<u64>,
    #[serde(default, rename = "ai_summary")]
    ai_summary: Option<String>,
    #[serde(default, rename = "ai_keywords")]
    ai_keywords: Vec<String>,
    #[serde(default)]
    linked_datasets: Vec<Value>,
    #[serde(default)]
    linked_models: Vec<Value>,
    /// Daily and search entries wrap the paper.
    paper: Option<Box<Raw>>,
}

impl Raw {
    fn into_hub_paper(mut self) -> Option<HubPaper> {
        // The wrapper's fields fill what the inner paper lacks.
        let (mut inner, outer) = match self.paper.take() {
            Some(p) => (*p, Some(self)),
            None => (self, None),
        };
        if let Some(o) = outer {
            inner.title = inner.title.or(o.title);
            inner.summary = inner.summary.or(o.summary);
            inner.published_at = inner.published_at.or(o.published_at);
        }
        let id = inner.id?;
        let ids = |items: &[Value]| items.iter().filter_map(|i| i.get("id")?.as_str().map(str::to_string)).collect();
        let mut paper = Paper {
            title: inner.title.unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" "),
            abstract_text: inner.summary.map(|s| s.split_whitespace().collect::<Vec<_>>().join(" ")),
            authors: inner.authors.iter().filter_map(|a| a.get("name")?.as_str().map(str::to_string)).collect(),
            year: inner.published_at.as_deref().and_then(|p| p.get(..4)).and_then(|y| y.parse().ok()),
            published: inner.published_at.as_deref().and_then(|p| p.get(..10)).map(str::to_string),
            arxiv: Some(id.clone()),
            url: Some(format!("https://huggingface.co/papers/{id}")),
            source: "huggingface".into(),
            ..Paper::default()
        };
        paper.id = paper.key();
        Some(HubPaper {
            paper,
            keywords: inner.ai_keywords,
            summary: inner.ai_summary,
            datasets: ids(&inner.linked_datasets),
            models: ids(&inner.linked_models),
            upvotes: inner.upvotes,
        })
    }
}

pub struct HfPapers<'a> {
    pub fetcher: &'a Fetcher,
    pub hub: HubSettings,
}

impl HfPapers<'_> {
    fn request(&self, url: &str) -> Request {
        let mut r = Request::get(url).fresh_for(FRESH);
        if let Some(t) = &self.hub.token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        r
    }

    /// The paper's page on the Hub, if it has one (`arxiv_id` without a version).
    pub async fn paper(&self, arxiv_id: &str) -> Result<Option<HubPaper>, PapersError> {
        let url = format!("{}/api/papers/{arxiv_id}", self.hub.endpoint);
        match self.fetcher.fetch(&self.request(&url)).await {
            Ok(r) => Ok(r.json::<Raw>()?.into_hub_paper()),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Datasets on the Hub whose cards cite the paper (the `arxiv:ID` tag), beyond those the
    /// paper's page links.
    pub async fn citing_datasets(&self, arxiv_id: &str, limit: usize) -> Result<Vec<String>, PapersError> {
        let url = postdoc_web::url_with(
            &format!("{}/api/datasets", self.hub.endpoint),
            [("filter", format!("arxiv:{arxiv_id}")), ("limit", limit.to_string())],
        )?;
        let items: Vec<Value> = self.fetcher.fetch(&self.request(&url)).await?.json()?;
        Ok(items.iter().filter_map(|i| i.get("id")?.as_str().map(str::to_string)).collect())
    }

    /// The Hub's paper search.
    pub async fn search(&self, query: &str, limit: usize) -> Result<Vec<HubPaper>, PapersError> {
        let url = postdoc_web::url_with(
            &format!("{}/api/papers/search", self.hub.endpoint),
            [("q", query.to_string()), ("limit", limit.clamp(1, 120).to_string())],
        )?;
        let items: Vec<Raw> = self.fetcher.fetch(&self.request(&url)).await?.json()?;
        Ok(items.into_iter().filter_map(Raw::into_hub_paper).collect())
    }

    /// The papers of one day's Daily Papers (`YYYY-MM-DD`).
    pub async fn daily(&self, date: &str, limit: usize) -> Result<Vec<HubPaper>, PapersError> {
        let url = postdoc_web::url_with(
            &format!("{}/api/daily_papers", self.hub.endpoint),
            [("date", date.to_string()), ("limit", limit.clamp(1, 100).to_string())],
        )?;
        let items: Vec<Raw> = self.fetcher.fetch(&self.request(&url)).await?.json()?;
        Ok(items.into_iter().filter_map(Raw::into_hub_paper).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_and_wrapped_papers_read_alike() {
        let flat: Raw = serde_json::from_str(
            r#"{"id": "2407.21783", "authors": [{"_id": "x", "name": "Abhimanyu Dubey", "hidden": false}],
                "publishedAt": "2024-07-31T17:54:27.000Z", "title": "The Llama 3 Herd of Models",
                "summary": "Modern artificial intelligence\nsystems are powered by foundation models.", "upvotes": 100,
                "ai_keywords": ["foundation models"],
                "linkedModels": [{"id": "meta-llama/Llama-Guard-3-8B", "downloads": 1}], "numTotalModels": 72,
                "linkedDatasets": [{"id": "org/llama-evals"}], "numTotalDatasets": 15}"#,
        )
        .unwrap();
        let p = flat.into_hub_paper().unwrap();
        assert_eq!(p.paper.id, "arxiv:2407.21783");
        assert_eq!(
            p.paper.abstract_text.as_deref(),
            Some("Modern artificial intelligence systems are powered by foundation models.")
        );
        assert_eq!(
            (p.datasets, p.models),
            (vec!["org/llama-evals".to_string()], vec!["meta-llama/Llama-Guard-3-8B".to_string()])
        );
        let wrapped: Raw = serde_json::from_str(
            r#"{"paper": {"id": "2509.04664", "authors": [{"name": "Adam Tauman Kalai"}], "summary": "Like students", "upvotes": 26},
                "title": "Why Language Models Hallucinate", "numComments": 3}"#,
        )
        .unwrap();
        let p = wrapped.into_hub_paper().unwrap();
        assert_eq!(p.paper.title, "Why Language Models Hallucinate");
        assert_eq!(p.upvotes, Some(26));
    }
}
