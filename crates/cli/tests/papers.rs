//! `postdoc papers` through the binary, in a recipe: a folder of notes and a BibTeX file added,
//! a paper added by its arXiv id from loopback sources (linked to its datasets on the Hub),
//! a crawl out from it, search with snippets, the graph, and one paper shown with its cards.

mod common;

use axum::Router;
use axum::extract::{Path, Query};
use axum::response::IntoResponse;
use axum::routing::get;
use common::*;
use serde_json::{Value, json};
use std::collections::HashMap;

fn entry(id: &str, title: &str, summary: &str) -> String {
    format!(
        "<entry><id>http://arxiv.org/abs/{id}v1</id><title>{title}</title><summary>{summary}</summary>\
         <published>2021-06-17T00:00:00Z</published><author><name>E. Hu</name></author>\
         <arxiv:primary_category term=\"cs.CL\"/></entry>"
    )
}

fn serve() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let app = Router::new()
                .route(
                    "/arxiv",
                    get(|Query(q): Query<HashMap<String, String>>| async move {
                        let ids = q.get("id_list").cloned().unwrap_or_default();
                        let mut entries = Vec::new();
                        if ids.contains("2106.09685") {
                            entries.push(entry("2106.09685", "LoRA: Low-Rank Adaptation of Large Language Models",
                                "We propose Low-Rank Adaptation (LoRA), which freezes the pre-trained weights and injects trainable rank decomposition matrices. LoRA reduces the number of trainable parameters by 10,000 times on GPT-3."));
                        }
                        let body = format!(
                            "<feed xmlns=\"http://www.w3.org/2005/Atom\" xmlns:arxiv=\"http://arxiv.org/schemas/atom\" \
                             xmlns:opensearch=\"http://a9.com/-/spec/opensearch/1.1/\"><opensearch:totalResults>{}</opensearch:totalResults>{}</feed>",
                            entries.len(),
                            entries.join("")
                        );
                        ([("content-type", "application/atom+xml")], body)
                    }),
                )
                .route(
                    "/s2/{*rest}",
                    get(|Path(rest): Path<String>| async move {
                        let paper = |id: &str, arxiv: &str, title: &str, abs: &str| {
                            json!({"paperId": id, "externalIds": {"ArXiv": arxiv}, "title": title, "abstract": abs, "year": 2019, "citationCount": 900, "authors": []})
                        };
                        let v = match rest.as_str() {
                            "graph/v1/paper/arXiv:2106.09685" => json!({"paperId": "lora", "externalIds": {"ArXiv": "2106.09685"}, "title": "LoRA", "citationCount": 20000}),
                            "graph/v1/paper/arXiv:2106.09685/references" => json!({"offset": 0, "data": [
                                {"isInfluential": true, "contexts": [], "citedPaper": paper("adapters", "1902.00751", "Parameter-Efficient Transfer Learning for NLP", "We introduce adapter modules for fine-tuning.")}]}),
                            "graph/v1/paper/arXiv:2106.09685/citations" => json!({"offset": 0, "data": [
                                {"isInfluential": false, "contexts": [], "citingPaper": paper("qlora", "2305.14314", "QLoRA: Efficient Finetuning of Quantized LLMs", "We present QLoRA, which fine-tunes a 65B model on one GPU.")}]}),
                            _ => json!({"offset": 0, "data": []}),
                        };
                        axum::Json(v)
                    }),
                )
                .route(
                    "/hf/api/papers/{id}",
                    get(|Path(id): Path<String>| async move {
                        if id != "2106.09685" {
                            return (axum::http::StatusCode::NOT_FOUND, axum::Json(json!({"error": "Paper not found"}))).into_response();
                        }
                        axum::Json(json!({"id": "2106.09685", "title": "LoRA", "linkedDatasets": [{"id": "nyu-mll/glue"}]})).into_response()
                    }),
                )
                .route("/hf/api/datasets", get(|| async { axum::Json(json!([{"id": "someone/lora-evals"}])) }));
            tx.send(base).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

#[test]
fn the_library_takes_files_and_ids_crawls_searches_and_shows_cards() {
    let base = serve();
    let dir = example();
    let notes = dir.path().join("notes");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(notes.join("curriculum.md"), "# Length curricula\n\nWe propose a length curriculum that orders practice words from short to long. It improves exact match by 12 points.\n\n## Method\nShort words first.\n").unwrap();
    std::fs::write(notes.join("refs.bib"), "@article{ouyang2022, title={Training language models to follow instructions with human feedback}, year={2022}, doi={10.5555/3600270.3602281}}").unwrap();
    std::fs::write(notes.join("broken.pdf"), b"%PDF-1.4\nnot really").unwrap();
    let cache = dir.path().join(".cache");
    let papers = |args: &[&str]| {
        let mut c = postdoc(dir.path());
        c.env("POSTDOC_ARXIV_API", format!("{base}/arxiv"))
            .env("POSTDOC_S2_API", format!("{base}/s2"))
            .env("POSTDOC_OPENALEX_API", format!("{base}/openalex"))
            .env("HF_ENDPOINT", format!("{base}/hf"))
            .env("POSTDOC_CACHE", &cache)
            .env_remove("S2_API_KEY")
            .arg("papers")
            .args(args);
        c.output().unwrap()
    };

    // A folder (one broken PDF among good files) and an id: exit 2 says something was left out.
    let out = papers(&["add", notes.to_str().unwrap(), "2106.09685"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    let said = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(said.contains("added arxiv:2106.09685: LoRA: Low-Rank Adaptation of Large Language Models"), "{said}");
    assert!(said.contains("Length curricula"), "{said}");
    assert!(said.contains("doi:10.5555/3600270.3602281"), "{said}");
    assert!(stderr_of(&out).contains("broken.pdf"), "{}", stderr_of(&out));

    let out = papers(&["crawl", "--seed", "arXiv:2106.09685", "--depth", "1", "--limit", "5"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(String::from_utf8(out.stdout).unwrap().contains("depth 0: arxiv:2106.09685"));

    let out = papers(&["--json", "search", "adapter modules fine-tuning"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let hits: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(hits[0]["id"], "arxiv:1902.00751", "{hits}");
    let out = papers(&["search", "curriculum"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Length curricula") && text.contains("«curriculum»"), "{text}");

    let out = papers(&["--json", "graph", "--format", "json"]);
    let graph: Value = serde_json::from_slice(&out.stdout).unwrap();
    let edges = graph["citations"].as_array().unwrap();
    assert!(edges.iter().any(|e| e["citing"] == "arxiv:2305.14314" && e["cited"] == "arxiv:2106.09685"));
    let dot = String::from_utf8(papers(&["graph"]).stdout).unwrap();
    assert!(
        dot.starts_with("digraph citations")
            && dot.contains("\"arxiv:2106.09685\" -> \"arxiv:1902.00751\" [penwidth=2]"),
        "{dot}"
    );

    let out = papers(&["--json", "show", "https://arxiv.org/abs/2106.09685"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["paper"]["citation_count"], 20000);
    let card = &shown["cards"][0];
    assert_eq!(card["technique"], "Low-Rank Adaptation (LoRA)");
    assert!(card["evidence"]["technique"]["sentence"].as_str().unwrap().starts_with("We propose Low-Rank Adaptation"));
    let datasets: Vec<&str> = shown["datasets"].as_array().unwrap().iter().map(|d| d[0].as_str().unwrap()).collect();
    assert_eq!(datasets, ["nyu-mll/glue", "someone/lora-evals"]);

    // A model reads the cards again; what it cites that is not a sentence of the paper is dropped.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let call = json!({"cards": [
                {"technique": "LoRA", "technique_sentence": 1, "effect": "10,000 times fewer trainable parameters", "effect_sentence": 2, "part": "optimizer"},
                {"technique": "Made up", "technique_sentence": 9, "part": "data"}]});
            let turn = postdoc_brain::testing::openai_turn("", &[("record_cards", &call.to_string())], (900, 60));
            let server = postdoc_brain::testing::ReplayServer::start(vec![postdoc_brain::testing::Exchange::sse(&turn, 64)]).await.unwrap();
            tx.send(server.url.clone()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    let model = rx.recv().unwrap();
    let out = papers(&["--json", "cards", "2106.09685", "--brain", &format!("openai:test-model@{model}/v1")]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let cards: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cards.as_array().unwrap().len(), 1, "{cards}");
    assert!(cards[0]["method"].as_str().unwrap().starts_with("model:"), "{cards}");
    assert!(cards[0]["evidence"]["effect"]["sentence"].as_str().unwrap().contains("10,000 times"));

    let out = papers(&["show", "9999.99999"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("no paper `9999.99999` in the library"), "{}", stderr_of(&out));
    let out = papers(&["crawl", "--seed", "not-an-id"]);
    assert!(stderr_of(&out).contains("is not a paper id"), "{}", stderr_of(&out));
    // Outside a recipe, and with no store named: said, not guessed.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = postdoc(elsewhere.path()).args(["papers", "search", "x"]).output().unwrap();
    assert!(stderr_of(&out).contains("papers live in a lineage store"), "{}", stderr_of(&out));
}
