//! The paper index on many abstracts: how long indexing takes, how fast queries answer (p50 and
//! p99), and the process's peak memory. Abstracts are generated from a fixed seed: sentences of
//! words drawn with Zipf-like frequencies from a vocabulary of machine-learning terms and filler,
//! about 150 words each, as real abstracts are.
//!
//!     cargo run --release -p postdoc-papers --example index_bench -- [ABSTRACTS] [QUERIES]

use postdoc_core::literature::Paper;
use postdoc_papers::index::PaperIndex;
use std::time::Instant;

const TERMS: &[&str] = &[
    "language",
    "model",
    "models",
    "training",
    "fine-tuning",
    "reinforcement",
    "learning",
    "reward",
    "policy",
    "optimization",
    "gradient",
    "adapter",
    "low-rank",
    "attention",
    "transformer",
    "dataset",
    "benchmark",
    "evaluation",
    "accuracy",
    "reasoning",
    "mathematical",
    "instruction",
    "preference",
    "alignment",
    "distillation",
    "curriculum",
    "quantization",
    "inference",
    "memory",
    "throughput",
    "scaling",
    "pretraining",
    "token",
    "tokenizer",
    "embedding",
    "contrastive",
    "retrieval",
    "augmentation",
    "synthetic",
    "data",
    "filtering",
    "deduplication",
    "contamination",
    "robustness",
    "calibration",
    "uncertainty",
    "sampling",
    "decoding",
    "temperature",
    "batch",
    "schedule",
    "warmup",
    "decay",
    "regularization",
    "dropout",
    "normalization",
    "mixture",
    "experts",
    "sparse",
    "dense",
    "parameter",
    "efficient",
    "compute",
    "budget",
    "search",
    "hyperparameter",
    "bayesian",
    "bandit",
    "exploration",
    "exploitation",
    "verifiable",
    "rewards",
    "group",
    "relative",
    "advantage",
    "kl",
    "penalty",
    "chain-of-thought",
    "self-consistency",
    "agents",
    "tools",
];
const FILLER: &[&str] = &[
    "we", "the", "a", "of", "to", "and", "in", "that", "is", "for", "on", "with", "by", "this", "our", "show",
    "propose", "method", "results", "improves", "across", "than", "while", "which", "new", "approach",
];

/// A small deterministic generator (SplitMix64), so every run indexes the same text.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }

    /// An index into `n` items, smaller ones more often (Zipf-like, exponent about 1).
    fn zipf(&mut self, n: usize) -> usize {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        (((n as f64 + 1.0).powf(u) - 1.0) as usize).min(n - 1)
    }
}

fn abstract_text(rng: &mut Rng) -> String {
    let mut words = Vec::with_capacity(160);
    for i in 0..150 {
        let w =
            if rng.next().is_multiple_of(3) { TERMS[rng.zipf(TERMS.len())] } else { FILLER[rng.zipf(FILLER.len())] };
        words.push(w.to_string());
        if i % 18 == 17 {
            words.push(".".into());
        }
    }
    words.join(" ")
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let queries: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(500);
    let mut rng = Rng(7);
    let papers: Vec<Paper> = (0..n)
        .map(|i| Paper {
            id: format!("local:{i:06}"),
            title: (0..8).map(|_| TERMS[rng.zipf(TERMS.len())]).collect::<Vec<_>>().join(" "),
            abstract_text: Some(abstract_text(&mut rng)),
            year: Some(2015 + (i % 11) as i32),
            source: "local".into(),
            ..Paper::default()
        })
        .collect();
    let rss_before = peak_rss_mib();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut index = PaperIndex::open(dir.path()).expect("an index");
    let started = Instant::now();
    index.rebuild(papers.iter().map(|p| (p, &[][..]))).expect("indexing");
    let indexing = started.elapsed().as_secs_f64();
    assert_eq!(index.len(), n as u64);

    let mut times = Vec::with_capacity(queries);
    let mut hits = 0;
    for _ in 0..queries {
        let words = 1 + (rng.next() % 3) as usize;
        let q: Vec<&str> = (0..words).map(|_| TERMS[rng.zipf(TERMS.len())]).collect();
        let t = Instant::now();
        hits += index.search(&q.join(" "), 10).expect("a search").len();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((p * times.len() as f64).ceil() as usize).clamp(1, times.len()) - 1];
    let on_disk: u64 = std::fs::read_dir(dir.path())
        .map(|d| d.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0);
    println!(
        "{}",
        serde_json::json!({
            "abstracts": n, "indexing_s": indexing, "abstracts_per_s": n as f64 / indexing,
            "queries": queries, "query_p50_ms": pct(0.5), "query_p99_ms": pct(0.99), "hits": hits,
            "peak_rss_mib": peak_rss_mib(), "rss_before_index_mib": rss_before, "index_bytes": on_disk,
        })
    );
}
