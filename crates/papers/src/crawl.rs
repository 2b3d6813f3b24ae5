//! Following citations outward from seed papers, breadth first, most promising first. Every
//! paper seen is a candidate, ranked by how close its title and abstract are to the study's
//! topic (TF-IDF cosine), how much it is cited (and whether the citing edge was influential),
//! and how recent it is; each round fetches the best candidates one level further out until the
//! depth or the paper limit is reached. Everything found is handed to the sink as it arrives,
//! so a crawl cut short by a source that fails keeps what it had.

use crate::model::{Citation, Paper};
use crate::{Literature, PapersError};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Where a crawl's findings go (the lineage store, in the command line).
#[async_trait::async_trait]
pub trait CrawlSink: Send + Sync {
    async fn paper(&self, paper: &Paper) -> Result<(), String>;
    async fn citation(&self, citation: &Citation) -> Result<(), String>;
}

#[derive(Debug, Clone, PartialEq)]
pub struct CrawlSettings {
    /// Citation steps from the seeds.
    pub depth: u32,
    /// Papers whose neighbours are fetched, at most.
    pub limit: usize,
    /// References and citations read per paper, each.
    pub per_paper: usize,
    /// What the study is about: ranks the frontier.
    pub topic: String,
}

/// What a crawl did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CrawlReport {
    /// Papers whose neighbours were fetched, in the order they were, with their depth and score.
    pub expanded: Vec<(String, u32, f64)>,
    pub papers_seen: usize,
    pub citations: usize,
    /// Papers that could not be expanded, and why.
    pub failures: Vec<(String, String)>,
    /// True when the sources stopped answering: the crawl ended on papers it could not follow
    /// because every source was unavailable (or offline with nothing cached).
    pub cut_short: bool,
}

/// Words of a text that carry meaning: lower-case, letters and digits, three or more long, not
/// among the commonest English words.
pub fn terms(text: &str) -> Vec<String> {
    const STOP: [&str; 40] = [
        "the", "and", "for", "with", "that", "this", "are", "from", "our", "their", "which", "these", "such", "can",
        "has", "have", "was", "were", "than", "into", "using", "based", "via", "its", "not", "but", "also", "both",
        "more", "most", "two", "one", "new", "show", "we", "paper", "propose", "approach", "method", "results",
    ];
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 3 && !STOP.contains(w))
        .map(str::to_string)
        .collect()
}

/// How close each document is to the topic: cosine similarity of TF-IDF vectors, the inverse
/// document frequencies taken over the documents themselves.
pub fn relevance(topic: &str, documents: &[String]) -> Vec<f64> {
    let docs: Vec<Vec<String>> = documents.iter().map(|d| terms(d)).collect();
    let n = docs.len().max(1) as f64;
    let mut df: HashMap<&str, f64> = HashMap::new();
    for d in &docs {
        for t in d.iter().map(String::as_str).collect::<HashSet<_>>() {
            *df.entry(t).or_default() += 1.0;
        }
    }
    let idf = |t: &str| ((n + 1.0) / (df.get(t).copied().unwrap_or(0.0) + 1.0)).ln() + 1.0;
    let vector = |words: &[String]| {
        let mut v: HashMap<String, f64> = HashMap::new();
        for w in words {
            *v.entry(w.clone()).or_default() += 1.0;
        }
        for (t, x) in v.iter_mut() {
            *x *= idf(t);
        }
        v
    };
    let norm = |v: &HashMap<String, f64>| v.values().map(|x| x * x).sum::<f64>().sqrt();
    let topic_v = vector(&terms(topic));
    let topic_n = norm(&topic_v);
    docs.iter()
        .map(|d| {
            let v = vector(d);
            let dot: f64 = v.iter().map(|(t, x)| x * topic_v.get(t).copied().unwrap_or(0.0)).sum();
            let denom = norm(&v) * topic_n;
            if denom > 0.0 { dot / denom } else { 0.0 }
        })
        .collect()
}

/// A candidate's score: relevance counts most, then influence (citations on a log scale, an
/// influential edge), then recency.
pub fn score(relevance: f64, citations: Option<u64>, influential: bool, year: Option<i32>, newest: i32) -> f64 {
    let influence = ((citations.unwrap_or(0) as f64) + 1.0).ln() / (100_000f64).ln();
    let recency = year.map_or(0.0, |y| (1.0 - f64::from((newest - y).max(0)) / 10.0).max(0.0));
    0.6 * relevance + 0.25 * influence.min(1.0) + 0.1 * recency + if influential { 0.05 } else { 0.0 }
}

struct Candidate {
    paper: Paper,
    depth: u32,
    influential: bool,
}

/// Crawls from `seeds` (paper keys).
pub async fn crawl(lit: &Literature, seeds: &[String], settings: &CrawlSettings, sink: &dyn CrawlSink) -> CrawlReport {
    let mut report = CrawlReport::default();
    let mut candidates: BTreeMap<String, Candidate> = BTreeMap::new();
    let mut expanded: HashSet<String> = HashSet::new();
    for seed in seeds {
        match lit.paper(seed).await {
            Ok(p) => {
                if let Err(e) = sink.paper(&p).await {
                    report.failures.push((seed.clone(), e));
                }
                candidates.insert(p.id.clone(), Candidate { paper: p, depth: 0, influential: true });
            }
            Err(e) => report.failures.push((seed.clone(), e.to_string())),
        }
    }
    let mut consecutive_outages = 0;
    while report.expanded.len() < settings.limit {
        // The best candidate not yet expanded, among those within the depth.
        let open: Vec<&Candidate> = candidates
            .values()
            .filter(|c| c.depth < settings.depth.max(1) && !expanded.contains(&c.paper.id))
            .collect();
        if open.is_empty() {
            break;
        }
        let texts: Vec<String> = open
            .iter()
            .map(|c| format!("{} {}", c.paper.title, c.paper.abstract_text.as_deref().unwrap_or("")))
            .collect();
        let rel = relevance(&settings.topic, &texts);
        let newest = open.iter().filter_map(|c| c.paper.year).max().unwrap_or(0);
        // Breadth first: the shallowest depth goes first, the best score within it.
        let (i, best_score) = open
            .iter()
            .zip(&rel)
            .map(|(c, r)| (c, score(*r, c.paper.citation_count, c.influential, c.paper.year, newest)))
            .enumerate()
            .min_by(|(_, (a, sa)), (_, (b, sb))| a.depth.cmp(&b.depth).then(sb.total_cmp(sa)))
            .map(|(i, (_, s))| (i, s))
            .expect("open is not empty");
        let (key, depth) = (open[i].paper.id.clone(), open[i].depth);
        expanded.insert(key.clone());
        let neighbours = match lit.neighbours(&key, settings.per_paper).await {
            Ok(n) => {
                consecutive_outages = 0;
                report.cut_short = false;
                n
            }
            Err(e) => {
                let outage = matches!(&e, PapersError::Web(w) if w.is_unavailable() || matches!(w, postdoc_web::WebError::Offline { .. }));
                report.failures.push((key.clone(), e.to_string()));
                consecutive_outages = if outage { consecutive_outages + 1 } else { 0 };
                report.cut_short = outage;
                // Every source down: stop, keeping what was found.
                if consecutive_outages >= 3 {
                    break;
                }
                continue;
            }
        };
        report.expanded.push((key.clone(), depth, best_score));
        for (paper, edge) in neighbours.references.into_iter().chain(neighbours.citations) {
            if let Err(e) = sink.paper(&paper).await {
                report.failures.push((paper.id.clone(), e));
                continue;
            }
            if let Err(e) = sink.citation(&edge).await {
                report.failures.push((paper.id.clone(), e));
            }
            report.citations += 1;
            let influential = edge.influential;
            let entry = candidates.entry(paper.id.clone()).or_insert(Candidate {
                paper: paper.clone(),
                depth: depth + 1,
                influential,
            });
            entry.influential |= influential;
            if entry.depth > depth + 1 {
                entry.depth = depth + 1;
            }
        }
    }
    report.papers_seen = candidates.len();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relevance_prefers_the_topic_s_words() {
        let docs = vec![
            "Low-rank adaptation of large language models for fine-tuning".to_string(),
            "Protein folding with deep networks".to_string(),
            "Parameter-efficient fine-tuning of language models with adapters".to_string(),
        ];
        let r = relevance("fine-tuning language models with low-rank updates", &docs);
        assert!(r[0] > r[2] && r[2] > r[1], "{r:?}");
        assert_eq!(r[1], 0.0);
        assert_eq!(relevance("", &docs), [0.0, 0.0, 0.0]);
    }

    #[test]
    fn scores_weigh_relevance_then_influence_then_recency() {
        let close_obscure = score(0.8, Some(3), false, Some(2020), 2024);
        let far_famous = score(0.1, Some(50_000), true, Some(2024), 2024);
        assert!(close_obscure > far_famous, "{close_obscure} vs {far_famous}");
        assert!(score(0.5, Some(1000), false, Some(2024), 2024) > score(0.5, Some(1000), false, Some(2010), 2024));
        assert!(score(0.5, Some(10), false, None, 2024) < score(0.5, Some(10_000), false, None, 2024));
    }
}
