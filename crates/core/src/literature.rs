//! The literature as the domain sees it: what postdoc knows of a paper, whichever source
//! described it, the citations between papers, a paper's sections, and the technique cards read
//! from them, each field citing the sentence it rests on.

use serde::{Deserialize, Serialize};

/// A paper. Its `id` is its key in the lineage store: `arxiv:ID` when it has an arXiv id
/// (without version), else `doi:DOI` (lower-case), else `s2:ID`, `openalex:W..`, or `local:HASH`
/// for a file with none of these. Records of one paper from several sources merge into one.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Paper {
    pub id: String,
    pub title: String,
    #[serde(rename = "abstract")]
    pub abstract_text: Option<String>,
    pub authors: Vec<String>,
    pub year: Option<i32>,
    /// The day it was first published, `YYYY-MM-DD`.
    pub published: Option<String>,
    pub venue: Option<String>,
    pub arxiv: Option<String>,
    pub doi: Option<String>,
    pub s2: Option<String>,
    pub openalex: Option<String>,
    pub url: Option<String>,
    pub pdf_url: Option<String>,
    pub citation_count: Option<u64>,
    pub influential_citation_count: Option<u64>,
    pub categories: Vec<String>,
    /// Where the record came from: `arxiv`, `semantic-scholar`, `openalex`, `huggingface`, `local`.
    pub source: String,
}

impl Paper {
    /// The key this paper is known by, from the best identifier it has.
    pub fn key(&self) -> String {
        if let Some(a) = &self.arxiv {
            return format!("arxiv:{}", strip_version(a));
        }
        if let Some(d) = &self.doi {
            // arXiv's own DOIs name the arXiv paper.
            if let Some(a) = d.to_ascii_lowercase().strip_prefix("10.48550/arxiv.") {
                return format!("arxiv:{a}");
            }
            return format!("doi:{}", d.to_ascii_lowercase());
        }
        if let Some(s) = &self.s2 {
            return format!("s2:{s}");
        }
        if let Some(o) = &self.openalex {
            return format!("openalex:{o}");
        }
        self.id.clone()
    }

    /// Fills what this record lacks from another record of the same paper; a count takes the
    /// larger of the two (sources lag behind each other).
    pub fn merge(&mut self, other: Paper) {
        fn fill<T>(a: &mut Option<T>, b: Option<T>) {
            if a.is_none() {
                *a = b;
            }
        }
        if self.title.trim().is_empty() {
            self.title = other.title;
        }
        if self.abstract_text.as_deref().is_none_or(|a| a.trim().is_empty()) {
            self.abstract_text = other.abstract_text.filter(|a| !a.trim().is_empty()).or(self.abstract_text.take());
        }
        if self.authors.is_empty() {
            self.authors = other.authors;
        }
        fill(&mut self.year, other.year);
        fill(&mut self.published, other.published);
        fill(&mut self.venue, other.venue.filter(|v| !v.trim().is_empty()));
        fill(&mut self.arxiv, other.arxiv);
        fill(&mut self.doi, other.doi);
        fill(&mut self.s2, other.s2);
        fill(&mut self.openalex, other.openalex);
        fill(&mut self.url, other.url);
        fill(&mut self.pdf_url, other.pdf_url.filter(|u| !u.is_empty()));
        self.citation_count = max_opt(self.citation_count, other.citation_count);
        self.influential_citation_count = max_opt(self.influential_citation_count, other.influential_citation_count);
        for c in other.categories {
            if !self.categories.contains(&c) {
                self.categories.push(c);
            }
        }
        self.id = self.key();
    }
}

fn max_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

/// An arXiv id without its `vN` suffix (`2106.09685v2` → `2106.09685`, `hep-th/9901001v1` →
/// `hep-th/9901001`).
pub fn strip_version(id: &str) -> &str {
    match id.rfind('v') {
        Some(i) if i > 0 && id[i + 1..].chars().all(|c| c.is_ascii_digit()) && i + 1 < id.len() => &id[..i],
        _ => id,
    }
}

/// A paper identifier as a user writes it, made into a key: `2106.09685`, `arXiv:2106.09685v2`,
/// `https://arxiv.org/abs/2106.09685`, `10.18653/v1/N18-3011`, `doi:...`, `s2:...`, `W2741809807`.
pub fn parse_id(text: &str) -> Option<String> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    for prefix in
        ["https://arxiv.org/abs/", "http://arxiv.org/abs/", "https://arxiv.org/pdf/", "arxiv.org/abs/", "arxiv:"]
    {
        if let Some(rest) = lower.strip_prefix(prefix) {
            let rest = rest.trim_end_matches(".pdf");
            return is_arxiv_id(rest).then(|| format!("arxiv:{}", strip_version(rest)));
        }
    }
    if let Some(rest) = lower.strip_prefix("https://doi.org/").or_else(|| lower.strip_prefix("doi:")) {
        return Some(doi_key(rest));
    }
    if lower.starts_with("10.") && lower.contains('/') {
        return Some(doi_key(&lower));
    }
    if let Some(rest) = t.strip_prefix("s2:") {
        return Some(format!("s2:{rest}"));
    }
    if let Some(rest) = t.strip_prefix("openalex:").or_else(|| t.strip_prefix("https://openalex.org/")) {
        return Some(format!("openalex:{rest}"));
    }
    if t.len() > 1 && t.starts_with('W') && t[1..].chars().all(|c| c.is_ascii_digit()) {
        return Some(format!("openalex:{t}"));
    }
    if let Some(rest) = t.strip_prefix("local:") {
        return Some(format!("local:{rest}"));
    }
    is_arxiv_id(&lower).then(|| format!("arxiv:{}", strip_version(&lower)))
}

fn doi_key(doi: &str) -> String {
    match doi.strip_prefix("10.48550/arxiv.") {
        Some(a) => format!("arxiv:{a}"),
        None => format!("doi:{doi}"),
    }
}

/// A new-style (`2106.09685`, `0704.0001`) or old-style (`hep-th/9901001`) arXiv id, with or
/// without a version.
pub fn is_arxiv_id(id: &str) -> bool {
    let id = strip_version(id);
    let new_style = |s: &str| {
        let Some((a, b)) = s.split_once('.') else { return false };
        a.len() == 4
            && a.chars().all(|c| c.is_ascii_digit())
            && (4..=5).contains(&b.len())
            && b.chars().all(|c| c.is_ascii_digit())
    };
    let old_style = |s: &str| {
        let Some((archive, number)) = s.split_once('/') else { return false };
        !archive.is_empty()
            && archive.chars().all(|c| c.is_ascii_lowercase() || c == '-' || c == '.')
            && number.len() == 7
            && number.chars().all(|c| c.is_ascii_digit())
    };
    new_style(id) || old_style(id)
}

/// One paper citing another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Citation {
    pub citing: String,
    pub cited: String,
    /// The citing paper builds on the cited one (Semantic Scholar's judgement), not only
    /// mentions it.
    pub influential: bool,
    /// The sentences of the citing paper that cite it, where known.
    pub contexts: Vec<String>,
}

/// A part of a paper's text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Section {
    /// What the part is: `abstract`, `introduction`, `method`, `experiments`, `results`,
    /// `conclusion`, `related`, `references`, or `other`.
    pub kind: String,
    /// Its heading as the paper gives it.
    pub title: String,
    pub text: String,
}

/// The sentence a card's field rests on, and where it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The section's kind (`abstract`, `method`, ...).
    pub section: String,
    pub sentence: String,
}

/// One methodological contribution of a paper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Card {
    /// Its number in the lineage store, once stored (0 before).
    #[serde(default)]
    pub id: i64,
    pub paper: String,
    pub technique: String,
    /// What the paper says it does, with its numbers.
    pub effect: Option<String>,
    /// Where it was shown: models, data, tasks.
    pub setting: Option<String>,
    /// Which part of a recipe it changes: `optimizer`, `data`, `loss`, `architecture`, `rl`,
    /// `systems`, `evaluation`, or `other`.
    pub part: String,
    /// The section the technique was read from.
    pub section: String,
    /// Each field's sentence, by field name (`technique`, `effect`, `setting`).
    pub evidence: std::collections::BTreeMap<String, Evidence>,
    /// `extractive`, or `model:NAME` for a card a model wrote.
    pub method: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_become_one_key() {
        for (text, key) in [
            ("2106.09685", "arxiv:2106.09685"),
            ("arXiv:2106.09685v2", "arxiv:2106.09685"),
            ("https://arxiv.org/abs/2106.09685v1", "arxiv:2106.09685"),
            ("https://arxiv.org/pdf/2106.09685.pdf", "arxiv:2106.09685"),
            ("hep-th/9901001v3", "arxiv:hep-th/9901001"),
            ("10.18653/v1/N18-3011", "doi:10.18653/v1/n18-3011"),
            ("https://doi.org/10.48550/arXiv.2106.09685", "arxiv:2106.09685"),
            ("W2741809807", "openalex:W2741809807"),
            ("s2:a8ca46b171467ceb2d7652fbfb67fe701ad86092", "s2:a8ca46b171467ceb2d7652fbfb67fe701ad86092"),
        ] {
            assert_eq!(parse_id(text).as_deref(), Some(key), "{text}");
        }
        for bad in ["", "lora", "2106.9", "arxiv:lora", "12345.678901"] {
            assert_eq!(parse_id(bad), None, "{bad}");
        }
        assert_eq!(strip_version("2106.09685"), "2106.09685");
        assert_eq!(strip_version("v2"), "v2");
    }

    #[test]
    fn records_of_one_paper_merge() {
        let mut from_s2 = Paper {
            id: "s2:abc".into(),
            title: "LoRA".into(),
            s2: Some("abc".into()),
            citation_count: Some(100),
            source: "semantic-scholar".into(),
            ..Paper::default()
        };
        let from_arxiv = Paper {
            title: "LoRA: Low-Rank Adaptation".into(),
            abstract_text: Some("We propose LoRA.".into()),
            arxiv: Some("2106.09685v2".into()),
            citation_count: Some(90),
            categories: vec!["cs.CL".into()],
            source: "arxiv".into(),
            ..Paper::default()
        };
        from_s2.merge(from_arxiv);
        assert_eq!(from_s2.id, "arxiv:2106.09685");
        assert_eq!(from_s2.title, "LoRA", "a title already there stays");
        assert_eq!(from_s2.abstract_text.as_deref(), Some("We propose LoRA."));
        assert_eq!(from_s2.citation_count, Some(100));
        assert_eq!(from_s2.categories, ["cs.CL"]);
    }
}
