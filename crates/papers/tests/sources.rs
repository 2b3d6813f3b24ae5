//! The literature clients against a loopback server that speaks each source's documented format
//! (arXiv's Atom feed, Semantic Scholar's and OpenAlex's JSON, Hugging Face Papers), with their
//! failure modes: paging, an error feed, malformed answers, 429 with and without Retry-After,
//! 500, a timeout, and Semantic Scholar refusing so that OpenAlex takes over. Then a crawl over
//! the same server.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use postdoc_hub::HubSettings;
use postdoc_papers::crawl::{CrawlSettings, CrawlSink, crawl};
use postdoc_papers::{Citation, Literature, Paper, PapersError, Sources};
use postdoc_web::{FetchSettings, RetryPolicy};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct World {
    base: Mutex<String>,
    hits: Mutex<HashMap<String, usize>>,
    /// Semantic Scholar refuses every request (429 without Retry-After).
    s2_down: AtomicBool,
    openalex_down: AtomicBool,
    /// arXiv answers 503 this many times first.
    arxiv_busy: AtomicUsize,
}

type S = State<Arc<World>>;

fn hit(w: &World, what: &str) {
    *w.hits.lock().unwrap().entry(what.to_string()).or_default() += 1;
}

fn entry(id: &str, title: &str, summary: &str, published: &str) -> String {
    format!(
        "<entry><id>http://arxiv.org/abs/{id}v1</id><title>{title}</title><summary>{summary}</summary>\
         <published>{published}T00:00:00Z</published><updated>{published}T00:00:00Z</updated>\
         <author><name>A. Author</name></author><link href=\"https://arxiv.org/pdf/{id}v1\" rel=\"related\" title=\"pdf\"/>\
         <arxiv:primary_category term=\"cs.LG\"/><category term=\"cs.LG\"/></entry>"
    )
}

fn feed(total: usize, start: usize, entries: &[String]) -> Response {
    let body = format!(
        "<?xml version='1.0' encoding='UTF-8'?><feed xmlns:opensearch=\"http://a9.com/-/spec/opensearch/1.1/\" \
         xmlns:arxiv=\"http://arxiv.org/schemas/atom\" xmlns=\"http://www.w3.org/2005/Atom\">\
         <opensearch:totalResults>{total}</opensearch:totalResults><opensearch:startIndex>{start}</opensearch:startIndex>{}</feed>",
        entries.join("")
    );
    ([("content-type", "application/atom+xml; charset=utf-8")], body).into_response()
}

async fn arxiv(State(w): S, Query(q): Query<HashMap<String, String>>) -> Response {
    hit(&w, "arxiv");
    if w.arxiv_busy.load(Ordering::SeqCst) > 0 {
        w.arxiv_busy.fetch_sub(1, Ordering::SeqCst);
        return (StatusCode::SERVICE_UNAVAILABLE, "").into_response();
    }
    if let Some(ids) = q.get("id_list") {
        if ids == "abc" {
            let error = "<entry><id>https://arxiv.org/api/errors#incorrect_id_format_for_abc</id><title>Error</title>\
                         <summary>incorrect id format for abc</summary></entry>";
            return (StatusCode::BAD_REQUEST, feed(1, 0, &[error.to_string()]).into_body()).into_response();
        }
        let known: Vec<String> = ids
            .split(',')
            .filter_map(|id| match id {
                "2106.09685" => Some(entry("2106.09685", "LoRA: Low-Rank Adaptation of Large Language Models", "We propose Low-Rank Adaptation (LoRA), which freezes the weights. LoRA reduces trainable parameters by 10,000 times on GPT-3.", "2021-06-17")),
                "2402.03300" => Some(entry("2402.03300", "DeepSeekMath", "We introduce Group Relative Policy Optimization (GRPO), which improves math reasoning by 5 points.", "2024-02-05")),
                _ => None,
            })
            .collect();
        return feed(known.len(), 0, &known);
    }
    let start: usize = q.get("start").and_then(|s| s.parse().ok()).unwrap_or(0);
    if q.get("search_query").is_some_and(|s| s.contains("garbage")) {
        return "<feed><entry>".into_response();
    }
    let all: Vec<String> = (0..3)
        .map(|i| {
            entry(
                &format!("2401.0000{i}"),
                &format!("Fine-tuning paper {i}"),
                "About low-rank fine-tuning.",
                "2024-01-01",
            )
        })
        .collect();
    let max: usize = q.get("max_results").and_then(|s| s.parse().ok()).unwrap_or(10);
    feed(all.len(), start, &all[start.min(3)..(start + max).min(3)])
}

fn s2_paper(id: &str, arxiv: Option<&str>, title: &str, citations: u64, year: i32) -> Value {
    json!({"paperId": id, "externalIds": arxiv.map(|a| json!({"ArXiv": a})).unwrap_or(json!({})), "title": title,
           "abstract": format!("{title} improves low-rank fine-tuning."), "year": year, "citationCount": citations,
           "authors": [{"authorId": null, "name": "S. Scholar"}], "venue": "", "openAccessPdf": {"url": "", "status": null}})
}

async fn s2(State(w): S, Path(rest): Path<String>, Query(q): Query<HashMap<String, String>>) -> Response {
    hit(&w, "s2");
    if w.s2_down.load(Ordering::SeqCst) {
        return (StatusCode::TOO_MANY_REQUESTS, axum::Json(json!({"message": "Too Many Requests. Please wait and try again or apply for a key for higher rate limits.", "code": "429"}))).into_response();
    }
    let offset: usize = q.get("offset").and_then(|s| s.parse().ok()).unwrap_or(0);
    let rest = rest.strip_prefix("graph/v1/").unwrap_or(&rest);
    match rest {
        "paper/arXiv:2106.09685" => axum::Json(s2_paper("lora", Some("2106.09685"), "LoRA", 20000, 2021)).into_response(),
        "paper/arXiv:2106.09685/references" => {
            // Two pages: three references, then one more (and a reference S2 could not resolve).
            let page = if offset == 0 {
                json!({"offset": 0, "next": 3, "data": [
                    {"isInfluential": true, "contexts": ["as adapters do [3]"], "citedPaper": s2_paper("adapters", Some("1902.00751"), "Parameter-Efficient Transfer Learning for NLP", 4000, 2019)},
                    {"isInfluential": false, "contexts": [], "citedPaper": s2_paper("gpt3", Some("2005.14165"), "Language Models are Few-Shot Learners", 30000, 2020)},
                    {"isInfluential": false, "contexts": [], "citedPaper": {"paperId": null, "title": "Some technical report"}}]})
            } else {
                json!({"offset": 3, "data": [{"isInfluential": false, "contexts": [], "citedPaper": s2_paper("protein", None, "Protein folding with deep networks", 100, 2018)}]})
            };
            axum::Json(page).into_response()
        }
        "paper/arXiv:2106.09685/citations" => axum::Json(json!({"offset": 0, "data": [
            {"isInfluential": true, "contexts": [], "citingPaper": s2_paper("qlora", Some("2305.14314"), "QLoRA: Efficient Finetuning of Quantized LLMs", 3000, 2023)}]})).into_response(),
        r if r.starts_with("paper/arXiv:") && (r.ends_with("/references") || r.ends_with("/citations")) => {
            axum::Json(json!({"offset": 0, "data": []})).into_response()
        }
        r if r.starts_with("paper/") => (StatusCode::NOT_FOUND, axum::Json(json!({"error": "Paper with id 0 not found"}))).into_response(),
        _ => (StatusCode::NOT_FOUND, "").into_response(),
    }
}

async fn openalex(State(w): S, Path(rest): Path<String>, Query(q): Query<HashMap<String, String>>) -> Response {
    hit(&w, "openalex");
    if w.openalex_down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "").into_response();
    }
    let work = |id: &str, doi: &str, title: &str, refs: Vec<&str>| {
        json!({"id": format!("https://openalex.org/{id}"), "doi": format!("https://doi.org/{doi}"), "title": title,
               "publication_year": 2021, "cited_by_count": 42, "authorships": [],
               "referenced_works": refs.iter().map(|r| format!("https://openalex.org/{r}")).collect::<Vec<_>>(),
               "abstract_inverted_index": {"Low-rank": [0], "updates": [1]}})
    };
    match rest.as_str() {
        "works/doi:10.48550/arXiv.2106.09685" => {
            axum::Json(work("W1", "10.48550/arxiv.2106.09685", "LoRA", vec!["W2"])).into_response()
        }
        "works" => {
            let filter = q.get("filter").cloned().unwrap_or_default();
            if filter == "openalex:W2" {
                axum::Json(json!({"meta": {"count": 1, "next_cursor": null}, "results": [work("W2", "10.1/adapters", "Adapters", vec![])]})).into_response()
            } else if filter == "cites:W1" {
                let page = if q.get("cursor").map(String::as_str) == Some("*") {
                    json!({"meta": {"count": 1, "next_cursor": "c2"}, "results": [work("W3", "10.1/qlora", "QLoRA", vec![])]})
                } else {
                    json!({"meta": {"count": 1, "next_cursor": null}, "results": []})
                };
                axum::Json(page).into_response()
            } else {
                (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({"error": "Invalid query parameters error.", "message": "unknown filter"})),
                )
                    .into_response()
            }
        }
        _ => (StatusCode::NOT_FOUND, "Work not found").into_response(),
    }
}

async fn hf_paper(State(w): S, Path(id): Path<String>) -> Response {
    hit(&w, "hf");
    if id != "2106.09685" {
        return (StatusCode::NOT_FOUND, axum::Json(json!({"error": "Paper not found"}))).into_response();
    }
    axum::Json(json!({"id": "2106.09685", "title": "LoRA", "summary": "We propose LoRA.", "authors": [{"name": "Edward J. Hu"}],
                      "publishedAt": "2021-06-17T17:37:18.000Z", "upvotes": 50, "ai_keywords": ["low-rank adaptation"],
                      "linkedDatasets": [{"id": "glue-org/glue"}], "linkedModels": [{"id": "org/lora-model"}]}))
        .into_response()
}

async fn slow() -> Response {
    tokio::time::sleep(Duration::from_secs(3)).await;
    "".into_response()
}

async fn serve() -> (Literature, Arc<World>, tempfile::TempDir) {
    let world = Arc::new(World::default());
    let app = Router::new()
        .route("/arxiv/query", get(arxiv))
        .route("/s2/{*rest}", get(s2))
        .route("/openalex/{*rest}", get(openalex))
        .route("/hf/api/papers/{id}", get(hf_paper))
        .route("/slow/query", get(slow))
        .with_state(world.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    *world.base.lock().unwrap() = base.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let cache = tempfile::tempdir().unwrap();
    let lit = literature(&base, cache.path(), Duration::from_secs(2));
    (lit, world, cache)
}

fn literature(base: &str, cache: &std::path::Path, timeout: Duration) -> Literature {
    let settings = FetchSettings {
        cache: Some(cache.to_path_buf()),
        offline: false,
        retry: RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
        },
        timeout,
        ..FetchSettings::default()
    };
    let sources = Sources {
        arxiv: format!("{base}/arxiv/query"),
        semantic_scholar: format!("{base}/s2"),
        openalex: format!("{base}/openalex"),
        s2_key: None,
        openalex_key: None,
        hub: HubSettings { endpoint: format!("{base}/hf"), viewer: format!("{base}/viewer"), token: None },
        arxiv_pace: Duration::ZERO,
        s2_pace: Duration::ZERO,
    };
    Literature::new(settings, sources).unwrap()
}

#[tokio::test]
async fn a_paper_merges_arxiv_with_the_citation_graph_and_pages_are_followed() {
    let (lit, world, _cache) = serve().await;
    world.arxiv_busy.store(1, Ordering::SeqCst);
    let p = lit.paper("arxiv:2106.09685").await.unwrap();
    assert_eq!(p.title, "LoRA: Low-Rank Adaptation of Large Language Models");
    assert_eq!((p.citation_count, p.s2.as_deref()), (Some(20000), Some("lora")), "counts from Semantic Scholar");
    assert_eq!(p.pdf_url.as_deref(), Some("https://arxiv.org/pdf/2106.09685v1"));
    assert_eq!(world.hits.lock().unwrap()["arxiv"], 2, "a 503, then the feed");

    let n = lit.neighbours("arxiv:2106.09685", 10).await.unwrap();
    assert_eq!(n.source, "semantic-scholar");
    let refs: Vec<&str> = n.references.iter().map(|(p, _)| p.id.as_str()).collect();
    assert_eq!(refs, ["arxiv:1902.00751", "arxiv:2005.14165", "title:some technical report", "s2:protein"]);
    assert!(n.references[0].1.influential);
    assert_eq!(n.references[0].1.contexts, ["as adapters do [3]"]);
    assert_eq!(
        n.citations[0].1,
        Citation {
            citing: "arxiv:2305.14314".into(),
            cited: "arxiv:2106.09685".into(),
            influential: true,
            contexts: vec![]
        }
    );

    let found = lit.search("low-rank fine-tuning", 2).await.unwrap();
    assert_eq!(found.len(), 2);
    match lit.search("garbage", 2).await {
        Err(PapersError::Source { source_name: "arXiv", reason }) => assert!(reason.starts_with("not XML"), "{reason}"),
        other => panic!("{other:?}"),
    }
    match lit.paper("arxiv:abc").await {
        Err(PapersError::Source { reason, .. }) => assert!(reason.contains("incorrect id format"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(lit.paper("doi:10.1/unknown").await, Err(PapersError::NotFound(_))));

    let hf = lit.hf().paper("2106.09685").await.unwrap().unwrap();
    assert_eq!(
        (hf.datasets, hf.keywords),
        (vec!["glue-org/glue".to_string()], vec!["low-rank adaptation".to_string()])
    );
    assert!(lit.hf().paper("0000.00000").await.unwrap().is_none());
}

#[tokio::test]
async fn semantic_scholar_refusing_hands_the_graph_to_openalex() {
    let (lit, world, _cache) = serve().await;
    world.s2_down.store(true, Ordering::SeqCst);
    let n = lit.neighbours("arxiv:2106.09685", 10).await.unwrap();
    assert_eq!(n.source, "openalex");
    assert_eq!(n.references.iter().map(|(p, _)| p.id.as_str()).collect::<Vec<_>>(), ["doi:10.1/adapters"]);
    assert_eq!(n.citations.iter().map(|(p, _)| p.id.as_str()).collect::<Vec<_>>(), ["doi:10.1/qlora"]);
    assert_eq!(n.citations[0].1.cited, "arxiv:2106.09685");
    assert_eq!(world.hits.lock().unwrap()["s2"], 3, "three attempts, then the fallback");
    let p = lit.paper("arxiv:2106.09685").await.unwrap();
    assert_eq!(p.openalex.as_deref(), Some("W1"), "the paper's counts come from OpenAlex too");
}

#[tokio::test]
async fn a_source_that_hangs_times_out() {
    let (_lit, world, cache) = serve().await;
    let base = world.base.lock().unwrap().clone();
    let _ = cache;
    // arXiv pointed at an endpoint that never answers in time.
    let lit = {
        let settings = FetchSettings {
            cache: None,
            retry: RetryPolicy {
                attempts: 2,
                base_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(10),
            },
            timeout: Duration::from_millis(300),
            ..FetchSettings::default()
        };
        let sources = Sources {
            arxiv: format!("{base}/slow/query"),
            semantic_scholar: format!("{base}/s2"),
            openalex: format!("{base}/openalex"),
            s2_key: None,
            openalex_key: None,
            hub: HubSettings { endpoint: format!("{base}/hf"), viewer: String::new(), token: None },
            arxiv_pace: Duration::ZERO,
            s2_pace: Duration::ZERO,
        };
        Literature::new(settings, sources).unwrap()
    };
    match lit.search("anything", 1).await {
        Err(e @ PapersError::Web(_)) => assert!(e.to_string().contains("timed out"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[derive(Default)]
struct Kept {
    papers: Mutex<Vec<Paper>>,
    edges: Mutex<Vec<Citation>>,
}

#[async_trait::async_trait]
impl CrawlSink for Kept {
    async fn paper(&self, paper: &Paper) -> Result<(), String> {
        self.papers.lock().unwrap().push(paper.clone());
        Ok(())
    }
    async fn citation(&self, citation: &Citation) -> Result<(), String> {
        self.edges.lock().unwrap().push(citation.clone());
        Ok(())
    }
}

#[tokio::test]
async fn a_crawl_goes_breadth_first_favouring_the_topic_and_keeps_what_it_found() {
    let (lit, world, _cache) = serve().await;
    let settings = CrawlSettings {
        depth: 2,
        limit: 3,
        per_paper: 10,
        topic: "parameter-efficient fine-tuning of language models".into(),
    };
    let kept = Kept::default();
    let report = crawl(&lit, &["arxiv:2106.09685".to_string()], &settings, &kept).await;
    let order: Vec<&str> = report.expanded.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(order[0], "arxiv:2106.09685");
    assert_eq!(report.expanded[0].1, 0);
    // At depth 1, the papers about fine-tuning come before protein folding.
    assert!(order.len() == 3 && !order.contains(&"s2:protein"), "{order:?}");
    assert!(report.citations >= 5);
    assert!(kept.papers.lock().unwrap().iter().any(|p| p.id == "arxiv:2305.14314"));

    // Both citation sources go down: the seeds (from arXiv) are kept, nothing can be followed,
    // and the report says the crawl was cut short rather than finished.
    world.s2_down.store(true, Ordering::SeqCst);
    world.openalex_down.store(true, Ordering::SeqCst);
    let settings = CrawlSettings { limit: 10, ..settings };
    let fresh = tempfile::tempdir().unwrap();
    let lit = literature(&world.base.lock().unwrap().clone(), fresh.path(), Duration::from_secs(2));
    let kept = Kept::default();
    let seeds = ["arxiv:2106.09685".to_string(), "arxiv:2402.03300".to_string()];
    let report = crawl(&lit, &seeds, &settings, &kept).await;
    assert_eq!(kept.papers.lock().unwrap().len(), 2, "the seeds were kept");
    assert!(report.expanded.is_empty());
    assert_eq!(report.failures.len(), 2);
    assert!(report.failures[0].1.contains("unavailable"), "{:?}", report.failures);
    assert!(report.cut_short);
}
