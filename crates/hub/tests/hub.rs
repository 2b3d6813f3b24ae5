//! The Hub client against a loopback server speaking the Hub's and the dataset viewer's
//! documented formats, misbehaving as the real ones do (paging by `Link`, 401 for a dataset that
//! is not there, 429 with a spent `RateLimit` window, "not ready yet" as a 500).

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use postdoc_hub::{DatasetQuery, Hub, HubError, HubSettings, Sort};
use postdoc_web::{FetchSettings, Fetcher, RetryPolicy};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Hits {
    base: Mutex<String>,
    by_path: Mutex<HashMap<String, usize>>,
    limited_once: AtomicUsize,
    not_ready_left: AtomicUsize,
    auth: Mutex<Vec<String>>,
}

type S = State<Arc<Hits>>;

fn count(s: &Hits, path: &str, headers: &HeaderMap) {
    *s.by_path.lock().unwrap().entry(path.to_string()).or_default() += 1;
    if let Some(a) = headers.get("authorization") {
        s.auth.lock().unwrap().push(a.to_str().unwrap().to_string());
    }
}

fn item(id: &str, licence: &str, downloads: u64) -> Value {
    json!({"_id": "621ffdd236468d709f181f95", "id": id, "author": id.split('/').next().unwrap(), "disabled": false,
           "gated": if id.contains("gated") { json!("manual") } else { json!(false) },
           "lastModified": "2024-03-04T13:54:37.000Z", "likes": 3, "trendingScore": 0, "private": false,
           "downloads": downloads,
           "tags": ["task_categories:text-generation", "language:en", format!("license:{licence}"),
                    "size_categories:1K<n<10K", "arxiv:2103.03874", "format:parquet", "region:us"],
           "createdAt": "2022-03-02T23:29:22.000Z", "key": ""})
}

async fn list(State(s): S, Query(q): Query<HashMap<String, String>>, headers: HeaderMap) -> Response {
    count(&s, "/api/datasets", &headers);
    // The first request meets a spent rate-limit window of one second.
    if s.limited_once.fetch_add(1, Ordering::SeqCst) == 0 {
        return (StatusCode::TOO_MANY_REQUESTS, [("ratelimit", "\"api\";r=0;t=0")], "").into_response();
    }
    let base = s.base.lock().unwrap().clone();
    match q.get("cursor").map(String::as_str) {
        None => {
            assert_eq!(q.get("search").map(String::as_str), Some("math"));
            assert_eq!(q.get("filter").map(String::as_str), Some("task_categories:text-generation"));
            assert_eq!(q.get("sort").map(String::as_str), Some("downloads"));
            let next = format!("<{base}/api/datasets?search=math&limit=2&cursor=eyJwIjoyfQ%3D%3D>; rel=\"next\"");
            (
                [("link", next)],
                axum::Json(json!([
                    item("hendrycks/competition_math", "mit", 900),
                    item("org/gated-math", "apache-2.0", 500)
                ])),
            )
                .into_response()
        }
        Some("eyJwIjoyfQ==") => axum::Json(json!([item("openai/gsm8k", "mit", 800)])).into_response(),
        Some(other) => panic!("unexpected cursor {other}"),
    }
}

async fn dataset(State(s): S, Path((owner, name)): Path<(String, String)>, headers: HeaderMap) -> Response {
    count(&s, &format!("/api/datasets/{owner}/{name}"), &headers);
    if owner != "hendrycks" {
        return (StatusCode::UNAUTHORIZED, [("x-error-code", "RepoNotFound")], "{\"error\":\"Repository not found\"}")
            .into_response();
    }
    axum::Json(json!({
        "_id": "621ffdd236468d709f181dd1", "id": "hendrycks/competition_math", "author": "hendrycks",
        "sha": "71b758ecc688b2822d07ffa7f8393299f1dc7cac", "lastModified": "2023-06-08T06:40:09.000Z",
        "private": false, "gated": false, "disabled": false,
        "tags": ["language:en", "license:mit", "size_categories:10K<n<100K", "arxiv:2103.03874", "region:us"],
        "citation": "@article{hendrycksmath2021, title={Measuring Mathematical Problem Solving}}",
        "description": "Problems from mathematics competitions with step-by-step solutions.",
        "downloads": 0, "likes": 140,
        "cardData": {"language": ["en"], "license": ["mit"], "pretty_name": "MATH",
                     "task_categories": ["text2text-generation"],
                     "dataset_info": {"features": [{"name": "problem", "dtype": "string"}, {"name": "solution", "dtype": "string"}],
                                      "splits": [{"name": "train", "num_bytes": 5984788, "num_examples": 7500}]}},
        "siblings": [{"rfilename": "README.md"}, {"rfilename": "data/train.parquet"}],
        "createdAt": "2022-03-02T23:29:22.000Z", "usedStorage": 107709951
    }))
    .into_response()
}

async fn card(State(s): S, Path((owner, name, rev)): Path<(String, String, String)>, headers: HeaderMap) -> Response {
    count(&s, &format!("/datasets/{owner}/{name}/raw/{rev}/README.md"), &headers);
    if name == "competition_math" && rev == "main" {
        "---\nlicense: mit\nlanguage:\n- en\n---\n\n# MATH\n\nCompetition mathematics problems.\n".into_response()
    } else {
        (StatusCode::NOT_FOUND, [("x-error-code", "EntryNotFound")], "Entry not found").into_response()
    }
}

fn viewer_error(status: StatusCode, code: &'static str, message: &str) -> Response {
    (status, [("x-error-code", code)], axum::Json(json!({"error": message}))).into_response()
}

async fn viewer(
    State(s): S,
    Path(endpoint): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    count(&s, &format!("/{endpoint}"), &headers);
    let dataset = q.get("dataset").cloned().unwrap_or_default();
    if dataset == "missing/none" {
        return viewer_error(
            StatusCode::UNAUTHORIZED,
            "ExternalUnauthenticatedError",
            "The dataset does not exist, or is not accessible without authentication (private or gated).",
        );
    }
    if dataset == "empty/set" {
        return viewer_error(StatusCode::INTERNAL_SERVER_ERROR, "EmptyDatasetError", "The dataset is empty.");
    }
    let base = s.base.lock().unwrap().clone();
    match endpoint.as_str() {
        "splits" => {
            if s.not_ready_left.load(Ordering::SeqCst) > 0 {
                s.not_ready_left.fetch_sub(1, Ordering::SeqCst);
                return viewer_error(StatusCode::INTERNAL_SERVER_ERROR, "ResponseNotReady", "The server is busier than usual and the response is not ready yet. Please retry later.");
            }
            axum::Json(json!({"splits": [
                {"dataset": dataset, "config": "default", "split": "train"},
                {"dataset": dataset, "config": "default", "split": "test"}], "pending": [], "failed": []}))
            .into_response()
        }
        "size" => axum::Json(json!({"size": {
            "dataset": {"dataset": dataset, "num_bytes_original_files": 100, "num_bytes_parquet_files": 100, "num_bytes_memory": 300, "num_rows": 250, "estimated_num_rows": null},
            "configs": [],
            "splits": [{"dataset": dataset, "config": "default", "split": "train", "num_bytes_parquet_files": 80, "num_bytes_memory": 200, "num_rows": 230, "num_columns": 2, "estimated_num_rows": null},
                       {"dataset": dataset, "config": "default", "split": "test", "num_bytes_parquet_files": 20, "num_bytes_memory": 100, "num_rows": 20, "num_columns": 2}]},
            "pending": [], "failed": [], "partial": false})).into_response(),
        "first-rows" => {
            if q.get("split").map(String::as_str) != Some("train") {
                return viewer_error(StatusCode::NOT_FOUND, "ResponseNotFound", "Not found.");
            }
            axum::Json(json!({"dataset": dataset, "config": "default", "split": "train",
                "features": [{"feature_idx": 0, "name": "problem", "type": {"dtype": "string", "_type": "Value"}},
                             {"feature_idx": 1, "name": "level", "type": {"names": ["easy", "hard"], "_type": "ClassLabel"}},
                             {"feature_idx": 2, "name": "steps", "type": {"feature": {"dtype": "string", "_type": "Value"}, "_type": "List"}}],
                "rows": [{"row_idx": 0, "row": {"problem": "What is 2+2?", "level": 0, "steps": ["add"]}, "truncated_cells": []},
                         {"row_idx": 1, "row": {"problem": "What is 3*3?", "level": 1, "steps": ["multiply"]}, "truncated_cells": []}],
                "truncated": false})).into_response()
        }
        "rows" => {
            let offset: u64 = q["offset"].parse().unwrap();
            let length: u64 = q["length"].parse().unwrap();
            if length > 100 {
                return viewer_error(StatusCode::UNPROCESSABLE_ENTITY, "InvalidParameter", "Parameter 'length' must not be greater than 100");
            }
            let total = 230u64;
            let rows: Vec<Value> = (offset..(offset + length).min(total))
                .map(|i| json!({"row_idx": i, "row": {"problem": format!("problem {i}")}, "truncated_cells": []}))
                .collect();
            axum::Json(json!({"features": [], "rows": rows, "num_rows_total": total, "num_rows_per_page": 100, "partial": false}))
                .into_response()
        }
        "parquet" => axum::Json(json!({"parquet_files": [
            {"dataset": dataset, "config": "default", "split": "train", "url": format!("{base}/files/train-0000.parquet"), "filename": "0000.parquet", "size": 4}],
            "pending": [], "failed": [], "partial": false})).into_response(),
        _ => viewer_error(StatusCode::NOT_FOUND, "UnexpectedRoute", "no such endpoint"),
    }
}

async fn file(State(s): S, headers: HeaderMap) -> Response {
    count(&s, "/files", &headers);
    b"PAR1".to_vec().into_response()
}

async fn serve() -> (Hub, Arc<Hits>, tempfile::TempDir) {
    let state = Arc::new(Hits::default());
    let app = Router::new()
        .route("/api/datasets", get(list))
        .route("/api/datasets/{owner}/{name}", get(dataset))
        .route("/datasets/{owner}/{name}/raw/{rev}/README.md", get(card))
        .route("/viewer/{endpoint}", get(viewer))
        .route("/files/train-0000.parquet", get(file))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    *state.base.lock().unwrap() = base.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let cache = tempfile::tempdir().unwrap();
    let fetcher = Fetcher::new(FetchSettings {
        cache: Some(cache.path().to_path_buf()),
        offline: false,
        retry: RetryPolicy { attempts: 4, base_delay: Duration::from_millis(20), max_delay: Duration::from_secs(2) },
        timeout: Duration::from_secs(5),
        ..FetchSettings::default()
    })
    .unwrap();
    let settings =
        HubSettings { endpoint: base.clone(), viewer: format!("{base}/viewer"), token: Some("hf_test_token".into()) };
    (Hub::new(Arc::new(fetcher), settings), state, cache)
}

#[tokio::test]
async fn search_follows_pages_waits_out_rate_limits_and_reads_tags() {
    let (hub, hits, _cache) = serve().await;
    let query = DatasetQuery {
        search: Some("math".into()),
        filters: vec!["task_categories:text-generation".into()],
        sort: Some(Sort::Downloads),
        limit: 10,
        ..DatasetQuery::default()
    };
    let found = hub.search_datasets(&query).await.unwrap();
    let ids: Vec<&str> = found.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["hendrycks/competition_math", "org/gated-math", "openai/gsm8k"]);
    assert_eq!(hits.by_path.lock().unwrap()["/api/datasets"], 3, "a 429, then two pages");
    assert_eq!(found[0].licence().as_deref(), Some("mit"));
    assert_eq!(found[0].tasks(), ["text-generation"]);
    assert_eq!(found[0].size_category().as_deref(), Some("1K<n<10K"));
    assert_eq!(found[0].papers(), ["2103.03874"]);
    assert_eq!((found[0].gating(), found[1].gating()), (None, Some("manual")));
    assert!(hits.auth.lock().unwrap().iter().all(|a| a == "Bearer hf_test_token"));
    // The limit stops paging.
    let two = hub.search_datasets(&DatasetQuery { limit: 2, ..query.clone() }).await.unwrap();
    assert_eq!(two.len(), 2);
}

#[tokio::test]
async fn a_dataset_card_and_viewer_answers() {
    let (hub, hits, _cache) = serve().await;
    let d = hub.dataset("hendrycks/competition_math").await.unwrap();
    assert_eq!(d.licence().as_deref(), Some("mit"));
    assert_eq!(d.tasks(), ["text2text-generation"]);
    assert_eq!(d.sha.as_deref(), Some("71b758ecc688b2822d07ffa7f8393299f1dc7cac"));
    let card = hub.card("hendrycks/competition_math", None).await.unwrap().unwrap();
    assert!(card.contains("# MATH"));
    assert_eq!(hub.card("hendrycks/competition_math", Some("refs/convert/parquet")).await.unwrap(), None);
    match hub.dataset("nobody/nothing").await {
        Err(HubError::NoDataset(name)) => assert_eq!(name, "nobody/nothing"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(hub.dataset("../etc/passwd").await, Err(HubError::BadName(_))));

    // The viewer was not ready the first time it was asked.
    hits.not_ready_left.store(1, Ordering::SeqCst);
    let splits = hub.splits("hendrycks/competition_math").await.unwrap();
    assert_eq!(splits.iter().map(|s| s.split.as_str()).collect::<Vec<_>>(), ["train", "test"]);
    assert_eq!(hits.by_path.lock().unwrap()["/splits"], 2);
    let sizes = hub.sizes("hendrycks/competition_math").await.unwrap();
    assert_eq!(sizes[0].num_rows, Some(230));
    let first = hub.first_rows("hendrycks/competition_math", "default", "train").await.unwrap();
    let types: Vec<String> = first.features.iter().map(|f| f.describe()).collect();
    assert_eq!(types, ["string", "class label (easy, hard)", "list of string"]);
    assert_eq!(first.rows[1].row["problem"], "What is 3*3?");
    match hub.first_rows("hendrycks/competition_math", "default", "validation").await {
        Err(e @ HubError::Viewer { .. }) => {
            assert!(e.to_string().contains("no config default, split validation"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    // 250 rows asked for from a split of 230: three pages of at most 100, stopping at the end.
    let rows = hub.rows("hendrycks/competition_math", "default", "train", 0, 250).await.unwrap();
    assert_eq!(rows.len(), 230);
    assert_eq!(rows[229].row["problem"], "problem 229");
    assert_eq!(hits.by_path.lock().unwrap()["/rows"], 3);

    match hub.splits("missing/none").await {
        Err(HubError::NoDataset(_)) => {}
        other => panic!("{other:?}"),
    }
    match hub.splits("empty/set").await {
        Err(e @ HubError::Viewer { .. }) => {
            assert!(e.to_string().contains("The dataset is empty. (EmptyDatasetError)"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(hits.by_path.lock().unwrap()["/splits"], 2 + 1 + 1, "a dataset's own error is not asked again");
}

#[tokio::test]
async fn parquet_exports_download_and_everything_is_cached() {
    let (hub, hits, cache) = serve().await;
    let files = hub.parquet_files("hendrycks/competition_math").await.unwrap();
    assert_eq!(files.len(), 1);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("train.parquet");
    assert_eq!(hub.download(&files[0], &dest).await.unwrap(), 4);
    assert_eq!(std::fs::read(&dest).unwrap(), b"PAR1");
    hub.dataset("hendrycks/competition_math").await.unwrap();

    // Offline, from the same cache: the same answers, no request.
    let before: usize = hits.by_path.lock().unwrap().values().sum();
    let offline = Fetcher::new(FetchSettings {
        cache: Some(cache.path().to_path_buf()),
        offline: true,
        ..FetchSettings::default()
    })
    .unwrap();
    let hub = Hub::new(Arc::new(offline), hub.settings().clone());
    assert_eq!(hub.dataset("hendrycks/competition_math").await.unwrap().likes, Some(140));
    assert_eq!(hub.parquet_files("hendrycks/competition_math").await.unwrap(), files);
    let after: usize = hits.by_path.lock().unwrap().values().sum();
    assert_eq!(before, after);
    assert!(matches!(hub.dataset("hendrycks/other").await, Err(HubError::Web(postdoc_web::WebError::Offline { .. }))));
}
