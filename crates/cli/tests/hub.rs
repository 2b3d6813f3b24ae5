//! `postdoc data search | inspect hub: | pull` through the binary, against a loopback server in
//! the Hub's and the dataset viewer's documented formats; then offline, from the cache alone.

mod common;

use axum::Router;
use axum::extract::{Path, Query};
use axum::response::IntoResponse;
use axum::routing::get;
use common::*;
use serde_json::{Value, json};
use std::collections::HashMap;

fn parquet_bytes() -> Vec<u8> {
    // A real Parquet file of two rows, written by postdoc's own writer.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.parquet");
    let mut w = postdoc_data::write::RowWriter::create(
        &path,
        Some(postdoc_data::convert::schema(postdoc_data::formats::Shape::PromptAnswer)),
    )
    .unwrap();
    w.write(&json!({"prompt": "Natalia sold clips to 48 friends...", "answer": "72"})).unwrap();
    w.write(&json!({"prompt": "Weng earns $12 an hour...", "answer": "10"})).unwrap();
    w.finish().unwrap();
    std::fs::read(&path).unwrap()
}

/// Serves the Hub and the viewer on loopback from a thread of its own; returns the base URL.
fn serve() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    let file = parquet_bytes();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let b = base.clone();
            let app = Router::new()
                .route(
                    "/api/datasets",
                    get(|Query(q): Query<HashMap<String, String>>| async move {
                        assert_eq!(q.get("filter").map(String::as_str), Some("task_categories:text-generation"));
                        axum::Json(json!([{"id": "openai/gsm8k", "author": "openai", "downloads": 500000, "likes": 700,
                            "gated": false, "lastModified": "2024-01-04T12:05:15.000Z",
                            "tags": ["task_categories:text-generation", "language:en", "license:mit", "size_categories:1K<n<10K", "arxiv:2110.14168"]}]))
                    }),
                )
                .route(
                    "/api/datasets/{owner}/{name}",
                    get(|Path((owner, name)): Path<(String, String)>| async move {
                        if (owner.as_str(), name.as_str()) != ("openai", "gsm8k") {
                            return (axum::http::StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "Repository not found"}))).into_response();
                        }
                        axum::Json(json!({"id": "openai/gsm8k", "sha": "e53f048856ff4f594e959d75785d2c2d37b678ee",
                            "description": "Grade school math word problems.", "tags": ["license:mit"],
                            "cardData": {"license": "mit", "task_categories": ["text-generation"], "language": ["en"]}}))
                        .into_response()
                    }),
                )
                .route(
                    "/viewer/{endpoint}",
                    get(move |Path(endpoint): Path<String>| {
                        let b = b.clone();
                        async move {
                            let v: Value = match endpoint.as_str() {
                                "splits" => json!({"splits": [{"dataset": "openai/gsm8k", "config": "main", "split": "train"},
                                                              {"dataset": "openai/gsm8k", "config": "main", "split": "test"}]}),
                                "size" => json!({"size": {"splits": [{"config": "main", "split": "train", "num_rows": 7473, "num_columns": 2, "num_bytes_parquet_files": 2306545}]}}),
                                "first-rows" => json!({"features": [{"feature_idx": 0, "name": "question", "type": {"dtype": "string", "_type": "Value"}},
                                                                    {"feature_idx": 1, "name": "answer", "type": {"dtype": "string", "_type": "Value"}}],
                                                       "rows": [{"row_idx": 0, "row": {"question": "Natalia sold clips to 48 friends...", "answer": "... #### 72"}, "truncated_cells": []},
                                                                {"row_idx": 1, "row": {"question": "Weng earns $12 an hour...", "answer": "... #### 10"}, "truncated_cells": []}],
                                                       "truncated": false}),
                                "parquet" => json!({"parquet_files": [{"dataset": "openai/gsm8k", "config": "main", "split": "train",
                                                                        "url": format!("{b}/files/train.parquet"), "filename": "0000.parquet", "size": 10}]}),
                                _ => json!({}),
                            };
                            axum::Json(v)
                        }
                    }),
                )
                .route("/files/train.parquet", get(move || async move { file.clone() }));
            tx.send(base).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

#[test]
fn search_inspect_and_pull_a_hub_dataset_then_again_offline() {
    let base = serve();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let store = format!("sqlite://{}", dir.path().join("lineage.db").display());
    let cmd = |offline: bool| {
        let mut c = postdoc(dir.path());
        c.env("HF_ENDPOINT", &base)
            .env("POSTDOC_HF_VIEWER", format!("{base}/viewer"))
            .env("POSTDOC_CACHE", &cache)
            .env_remove("HF_TOKEN");
        if offline {
            c.env("POSTDOC_OFFLINE", "1");
        }
        c
    };

    let out = cmd(false).args(["data", "search", "math", "--task", "text-generation"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("hub:openai/gsm8k") && table.contains("mit") && table.contains("500000"), "{table}");

    let out = cmd(false).args(["--json", "data", "inspect", "hub:openai/gsm8k"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["dataset"]["licence"], "mit");
    assert_eq!((v["config"].as_str(), v["split"].as_str()), (Some("main"), Some("train")));
    assert_eq!(v["rows_total"], 7473);
    assert_eq!(v["inspection"]["rows"], 2);
    assert_eq!(v["inspection"]["shapes"]["prompt-answer"], 2);

    let data = dir.path().join("data");
    let out = cmd(false)
        .args(["--store", &store, "data", "pull", "hub:openai/gsm8k", "--split", "train", "--out"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let said = String::from_utf8(out.stdout).unwrap();
    assert!(
        said.contains("2 rows") && said.contains("licence mit") && said.contains("recorded in the lineage store"),
        "{said}"
    );
    let pulled = data.join("main-train-00000.parquet");
    let versions = cmd(false).args(["--store", &store, "--json", "data", "versions"]).arg(&pulled).output().unwrap();
    let v: Value = serde_json::from_slice(&versions.stdout).unwrap();
    assert_eq!(v["lineage"][0]["licence"], "mit");
    assert!(v["lineage"][0]["source"].as_str().unwrap().starts_with("hub:openai/gsm8k@e53f048856ff"), "{v}");

    // Offline, from the cache: the same answers; what was never asked is refused clearly.
    let out = cmd(true).args(["data", "search", "math", "--task", "text-generation"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = cmd(true).args(["data", "inspect", "hub:openai/gsm8k"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = cmd(true).args(["data", "inspect", "hub:someone/else"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("not in the cache, and postdoc is offline"), "{}", stderr_of(&out));
    let out = cmd(false).args(["data", "inspect", "hub:someone/else"]).output().unwrap();
    assert!(stderr_of(&out).contains("no dataset `someone/else` on the Hub"), "{}", stderr_of(&out));
    let out = cmd(false).args(["data", "pull", "openai/gsm8k", "--out", "x"]).output().unwrap();
    assert!(stderr_of(&out).contains("name it hub:OWNER/NAME"), "{}", stderr_of(&out));
}
