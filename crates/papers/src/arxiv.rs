//! The arXiv API: search by query and category, fetch by id, page through results. Its answers
//! are Atom feeds; elements are read by their local names, in any order, so both the feed
//! layout arXiv served until November 2025 and the one it serves since parse. A request is made
//! at most every three seconds, as arXiv's terms ask.

use crate::PapersError;
use crate::model::{Paper, strip_version};
use postdoc_web::{Fetcher, Request};
use std::time::Duration;

pub const DEFAULT_ENDPOINT: &str = "https://export.arxiv.org/api/query";
/// arXiv's terms: one request every three seconds.
pub const PACE: Duration = Duration::from_secs(3);
/// Results change once a day.
const FRESH: Duration = Duration::from_secs(24 * 3600);

/// One page of results.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    pub total: u64,
    pub start: u64,
    pub papers: Vec<Paper>,
}

/// Reads an arXiv Atom feed. An error feed (one entry titled `Error`) is an error.
pub fn parse_feed(xml: &str) -> Result<Page, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("not XML: {e}"))?;
    let feed = doc.root_element();
    if feed.tag_name().name() != "feed" {
        return Err(format!("not an Atom feed (its root is <{}>)", feed.tag_name().name()));
    }
    let child_text = |node: roxmltree::Node<'_, '_>, name: &str| {
        node.children().find(|c| c.is_element() && c.tag_name().name() == name).and_then(|c| c.text()).map(squash)
    };
    let number = |name: &str| child_text(feed, name).and_then(|t| t.parse::<u64>().ok());
    let mut page = Page {
        total: number("totalResults").unwrap_or(0),
        start: number("startIndex").unwrap_or(0),
        papers: Vec::new(),
    };
    for entry in feed.children().filter(|c| c.is_element() && c.tag_name().name() == "entry") {
        let id = child_text(entry, "id").unwrap_or_default();
        if child_text(entry, "title").as_deref() == Some("Error") && id.contains("/api/errors") {
            return Err(format!("arXiv refused the query: {}", child_text(entry, "summary").unwrap_or_default()));
        }
        // The old service listed ids it did not know as empty entries.
        let Some(arxiv) = id.rsplit_once("/abs/").map(|(_, a)| a.to_string()) else { continue };
        let mut authors = Vec::new();
        let mut categories = Vec::new();
        let mut pdf_url = None;
        let mut url = None;
        for c in entry.children().filter(|c| c.is_element()) {
            match c.tag_name().name() {
                "author" => authors.extend(child_text(c, "name")),
                "category" => categories.extend(c.attribute("term").map(str::to_string)),
                "link" => {
                    let href = c.attribute("href").unwrap_or_default().to_string();
                    if c.attribute("title") == Some("pdf") || href.contains("/pdf/") {
                        pdf_url = Some(href);
                    } else if c.attribute("rel") == Some("alternate") || (url.is_none() && href.contains("/abs/")) {
                        url = Some(href);
                    }
                }
                _ => {}
            }
        }
        // The primary category first.
        if let Some(primary) = entry
            .children()
            .find(|c| c.is_element() && c.tag_name().name() == "primary_category")
            .and_then(|c| c.attribute("term"))
            .filter(|t| !t.is_empty())
        {
            categories.retain(|c| c != primary);
            categories.insert(0, primary.to_string());
        }
        let published = child_text(entry, "published");
        let mut paper = Paper {
            title: child_text(entry, "title").unwrap_or_default(),
            abstract_text: child_text(entry, "summary"),
            authors,
            year: published.as_deref().and_then(|p| p.get(..4)).and_then(|y| y.parse().ok()),
            published: published.as_deref().and_then(|p| p.get(..10)).map(str::to_string),
            venue: child_text(entry, "journal_ref"),
            arxiv: Some(strip_version(&arxiv).to_string()),
            doi: child_text(entry, "doi"),
            url,
            pdf_url,
            categories,
            source: "arxiv".into(),
            ..Paper::default()
        };
        paper.id = paper.key();
        page.papers.push(paper);
    }
    Ok(page)
}

/// Whitespace runs (arXiv wraps titles and abstracts) as single spaces.
fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub struct Arxiv<'a> {
    pub fetcher: &'a Fetcher,
    pub endpoint: String,
}

impl Arxiv<'_> {
    async fn get(&self, params: &[(&str, String)]) -> Result<Page, PapersError> {
        let url = postdoc_web::url_with(&self.endpoint, params.iter().cloned())?;
        // The service answers a malformed query with 400 and a feed that says what is wrong.
        let request = Request::get(url).fresh_for(FRESH).answering(&[400]);
        let response = self.fetcher.fetch(&request).await?;
        parse_feed(&response.text()).map_err(|reason| PapersError::Source { source_name: "arXiv", reason })
    }

    /// Papers matching `query` (arXiv's syntax: `ti:`, `abs:`, `au:`, `cat:`, AND/OR/ANDNOT;
    /// plain words search every field), from `start`, most relevant first.
    pub async fn search(&self, query: &str, start: u64, max: u64) -> Result<Page, PapersError> {
        self.get(&[
            ("search_query", query.to_string()),
            ("start", start.to_string()),
            ("max_results", max.min(2000).to_string()),
            ("sortBy", "relevance".into()),
        ])
        .await
    }

    /// The papers with these ids (any not found are left out).
    pub async fn by_ids(&self, ids: &[String]) -> Result<Vec<Paper>, PapersError> {
        let mut found = Vec::new();
        for chunk in ids.chunks(100) {
            let page = self.get(&[("id_list", chunk.join(",")), ("max_results", chunk.len().to_string())]).await?;
            found.extend(page.papers);
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEW_LAYOUT: &str = r#"<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns="http://www.w3.org/2005/Atom">
  <id>https://arxiv.org/api/abc</id>
  <title>arXiv Query: search_query=&amp;id_list=2106.09685&amp;start=0&amp;max_results=100</title>
  <updated>2026-04-12T22:10:19Z</updated>
  <opensearch:itemsPerPage>100</opensearch:itemsPerPage>
  <opensearch:totalResults>1</opensearch:totalResults>
  <opensearch:startIndex>0</opensearch:startIndex>
  <entry>
    <id>http://arxiv.org/abs/2106.09685v2</id>
    <title>LoRA: Low-Rank Adaptation of
  Large Language Models</title>
    <updated>2021-10-16T19:59:57Z</updated>
    <link href="https://arxiv.org/abs/2106.09685v2" rel="alternate" type="text/html"/>
    <link href="https://arxiv.org/pdf/2106.09685v2" rel="related" type="application/pdf" title="pdf"/>
    <summary>  We propose Low-Rank Adaptation, or LoRA, which freezes the pre-trained model weights &amp; injects
trainable rank decomposition matrices.</summary>
    <category term="cs.AI" scheme="http://arxiv.org/schemas/atom"/>
    <category term="cs.CL" scheme="http://arxiv.org/schemas/atom"/>
    <published>2021-06-17T17:37:18Z</published>
    <arxiv:comment>Draft V2</arxiv:comment>
    <arxiv:primary_category term="cs.CL"/>
    <author><name>Edward J. Hu</name></author>
    <author><name>Yelong Shen</name><arxiv:affiliation>Microsoft</arxiv:affiliation></author>
  </entry>
</feed>"#;

    const OLD_LAYOUT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <link href="http://arxiv.org/api/query?search_query%3Dall%3Aelectron" rel="self" type="application/atom+xml"/>
  <title type="html">ArXiv Query: search_query=all:electron</title>
  <opensearch:totalResults xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">1000</opensearch:totalResults>
  <opensearch:startIndex xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">10</opensearch:startIndex>
  <entry>
    <id>http://arxiv.org/abs/hep-ex/0307015v1</id>
    <updated>2003-07-07T13:46:39-04:00</updated>
    <published>2003-07-07T13:46:39-04:00</published>
    <title>Multi-Electron Production at High Transverse Momenta</title>
    <summary>  Multi-electron production is studied.
</summary>
    <author><name>H1 Collaboration</name></author>
    <arxiv:doi xmlns:arxiv="http://arxiv.org/schemas/atom">10.1140/epjc/s2003-01326-x</arxiv:doi>
    <arxiv:journal_ref xmlns:arxiv="http://arxiv.org/schemas/atom">Eur.Phys.J. C31 (2003) 17-29</arxiv:journal_ref>
    <link href="http://arxiv.org/abs/hep-ex/0307015v1" rel="alternate" type="text/html"/>
    <link title="pdf" href="http://arxiv.org/pdf/hep-ex/0307015v1" rel="related" type="application/pdf"/>
    <arxiv:primary_category xmlns:arxiv="http://arxiv.org/schemas/atom" term="hep-ex" scheme="http://arxiv.org/schemas/atom"/>
    <category term="hep-ex" scheme="http://arxiv.org/schemas/atom"/>
  </entry>
  <entry><arxiv:primary_category xmlns:arxiv="http://arxiv.org/schemas/atom" term=""/></entry>
</feed>"#;

    #[test]
    fn both_feed_layouts_parse() {
        let page = parse_feed(NEW_LAYOUT).unwrap();
        assert_eq!((page.total, page.start), (1, 0));
        let p = &page.papers[0];
        assert_eq!(p.id, "arxiv:2106.09685");
        assert_eq!(p.title, "LoRA: Low-Rank Adaptation of Large Language Models");
        assert!(p.abstract_text.as_deref().unwrap().starts_with(
            "We propose Low-Rank Adaptation, or LoRA, which freezes the pre-trained model weights & injects trainable"
        ));
        assert_eq!(p.authors, ["Edward J. Hu", "Yelong Shen"]);
        assert_eq!((p.year, p.published.as_deref()), (Some(2021), Some("2021-06-17")));
        assert_eq!(p.categories, ["cs.CL", "cs.AI"], "the primary category first");
        assert_eq!(p.pdf_url.as_deref(), Some("https://arxiv.org/pdf/2106.09685v2"));

        let page = parse_feed(OLD_LAYOUT).unwrap();
        assert_eq!((page.total, page.start, page.papers.len()), (1000, 10, 1), "the empty stub entry is dropped");
        let p = &page.papers[0];
        assert_eq!(p.id, "arxiv:hep-ex/0307015");
        assert_eq!(p.doi.as_deref(), Some("10.1140/epjc/s2003-01326-x"));
        assert_eq!(p.venue.as_deref(), Some("Eur.Phys.J. C31 (2003) 17-29"));
        assert_eq!(p.abstract_text.as_deref(), Some("Multi-electron production is studied."));
    }

    #[test]
    fn error_feeds_and_other_documents_are_errors() {
        let error = r#"<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>https://arxiv.org/api/errors#incorrect_id_format_for_abc</id>
            <title>Error</title><summary>incorrect id format for abc</summary></entry></feed>"#;
        assert_eq!(parse_feed(error).unwrap_err(), "arXiv refused the query: incorrect id format for abc");
        assert!(parse_feed("<html><body>busy</body></html>").unwrap_err().contains("not an Atom feed"));
        assert!(parse_feed("<feed><entry>").unwrap_err().starts_with("not XML"));
        let empty = r#"<feed xmlns="http://www.w3.org/2005/Atom" xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/"><opensearch:totalResults>0</opensearch:totalResults></feed>"#;
        assert_eq!(parse_feed(empty).unwrap(), Page::default());
    }
}
