//! The fetcher against a real HTTP server on loopback that misbehaves on purpose.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use postdoc_web::{FetchSettings, Fetcher, Request, RetryPolicy, WebError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Server {
    hits: Mutex<HashMap<String, usize>>,
    keys: Mutex<Vec<String>>,
    flaky_left: AtomicUsize,
    down: AtomicBool,
    times: Mutex<Vec<Instant>>,
}

impl Server {
    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

async fn handle(State(s): State<Arc<Server>>, uri: Uri, headers: HeaderMap) -> axum::response::Response {
    let path = uri.path().to_string();
    *s.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    s.times.lock().unwrap().push(Instant::now());
    if let Some(k) = headers.get("x-api-key") {
        s.keys.lock().unwrap().push(k.to_str().unwrap().to_string());
    }
    match path.as_str() {
        "/ok" => {
            (StatusCode::OK, [("content-type", "application/json")], format!("{{\"q\":\"{}\"}}", uri)).into_response()
        }
        "/missing" => (StatusCode::NOT_FOUND, "{\"error\":\"Paper not found\"}").into_response(),
        "/forbidden" => (StatusCode::FORBIDDEN, "{\"message\":\"Forbidden\"}").into_response(),
        "/down" => (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response(),
        "/limited" => {
            // Refuses with 429 and Retry-After until its allowance of refusals is spent.
            if s.flaky_left.load(Ordering::SeqCst) > 0 {
                s.flaky_left.fetch_sub(1, Ordering::SeqCst);
                (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "{\"message\":\"Too Many Requests\"}")
                    .into_response()
            } else {
                (StatusCode::OK, "{\"fine\":true}").into_response()
            }
        }
        "/sometimes" if s.down.load(Ordering::SeqCst) => {
            (StatusCode::SERVICE_UNAVAILABLE, "{\"message\":\"down for maintenance\"}").into_response()
        }
        "/sometimes" => (StatusCode::OK, format!("{{\"n\":{}}}", s.hits("/sometimes"))).into_response(),
        "/broken" => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("x-error-code", "EmptyDatasetError")],
            "{\"error\":\"The dataset is empty.\"}",
        )
            .into_response(),
        "/file" => (StatusCode::OK, vec![7u8; 300_000]).into_response(),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            (StatusCode::OK, "{}").into_response()
        }
        _ => (StatusCode::IM_A_TEAPOT, "?").into_response(),
    }
}

async fn echo(body: String) -> String {
    body
}

async fn serve() -> (String, Arc<Server>) {
    let state = Arc::new(Server::default());
    let app = Router::new().route("/echo", post(echo)).fallback(get(handle)).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), state)
}

fn settings(cache: Option<&std::path::Path>) -> FetchSettings {
    FetchSettings {
        cache: cache.map(|c| c.to_path_buf()),
        offline: false,
        retry: RetryPolicy { attempts: 3, base_delay: Duration::from_millis(50), max_delay: Duration::from_secs(2) },
        timeout: Duration::from_millis(1500),
        ..FetchSettings::default()
    }
}

#[tokio::test]
async fn a_repeated_request_is_answered_from_the_cache_and_offline() {
    let (base, server) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let fetcher = Fetcher::new(settings(Some(dir.path()))).unwrap();
    let request = Request::get(format!("{base}/ok?x=1")).header("x-api-key", "secret-key-1");
    let first = fetcher.fetch(&request).await.unwrap();
    assert!(!first.from_cache);
    assert_eq!(first.json::<serde_json::Value>().unwrap()["q"], "/ok?x=1");
    let second = fetcher.fetch(&request).await.unwrap();
    assert!(second.from_cache);
    assert_eq!(second.body, first.body);
    assert_eq!(server.hits("/ok"), 1, "the second answer came from the disk");
    assert_eq!(*server.keys.lock().unwrap(), ["secret-key-1"], "the key was sent");
    // The key never reaches the cache.
    for entry in walk(dir.path()) {
        let text = std::fs::read_to_string(&entry).unwrap();
        assert!(!text.contains("secret-key-1"), "{}", entry.display());
    }
    // Another query is another request.
    fetcher.fetch(&Request::get(format!("{base}/ok?x=2"))).await.unwrap();
    assert_eq!(server.hits("/ok"), 2);

    // Offline, a fresh fetcher over the same folder answers what is stored and names what is not.
    let offline = Fetcher::new(FetchSettings { offline: true, ..settings(Some(dir.path())) }).unwrap();
    assert!(offline.fetch(&request).await.unwrap().from_cache);
    match offline.fetch(&Request::get(format!("{base}/ok?x=3"))).await {
        Err(WebError::Offline { url }) => assert!(url.ends_with("/ok?x=3")),
        other => panic!("{other:?}"),
    }
    assert_eq!(server.hits("/ok"), 2);
}

#[tokio::test]
async fn not_found_is_remembered_and_other_refusals_are_not_retried() {
    let (base, server) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let fetcher = Fetcher::new(settings(Some(dir.path()))).unwrap();
    for _ in 0..2 {
        let e = fetcher.fetch(&Request::get(format!("{base}/missing"))).await.unwrap_err();
        assert!(e.is_not_found(), "{e}");
    }
    assert_eq!(server.hits("/missing"), 1, "a known absence is not asked again");
    match fetcher.fetch(&Request::get(format!("{base}/forbidden"))).await {
        Err(e @ WebError::Refused { status: 403, .. }) => {
            assert!(e.to_string().contains("Forbidden"), "{e}");
            assert!(e.is_unavailable());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.hits("/forbidden"), 1);
}

#[tokio::test]
async fn rate_limits_are_waited_out_as_the_server_asks() {
    let (base, server) = serve().await;
    server.flaky_left.store(2, Ordering::SeqCst);
    let fetcher = Fetcher::new(settings(None)).unwrap();
    let started = Instant::now();
    let r = fetcher.fetch(&Request::get(format!("{base}/limited"))).await.unwrap();
    assert_eq!(r.json::<serde_json::Value>().unwrap()["fine"], true);
    assert_eq!(server.hits("/limited"), 3);
    // Two refusals, each asking for a second (the policy's own backoff is 50 ms).
    assert!(started.elapsed() >= Duration::from_millis(1900), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_source_that_stays_down_is_reported_after_the_attempts() {
    let (base, server) = serve().await;
    let fetcher = Fetcher::new(settings(None)).unwrap();
    match fetcher.fetch(&Request::get(format!("{base}/down"))).await {
        Err(e @ WebError::Unavailable { attempts: 3, .. }) => {
            assert!(e.to_string().contains("HTTP 500"), "{e}");
            assert!(e.is_unavailable());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.hits("/down"), 3);
    // A timeout is a passing fault too.
    let quick = Fetcher::new(FetchSettings {
        retry: RetryPolicy { attempts: 2, base_delay: Duration::from_millis(10), max_delay: Duration::from_millis(10) },
        timeout: Duration::from_millis(300),
        ..settings(None)
    })
    .unwrap();
    match quick.fetch(&Request::get(format!("{base}/slow"))).await {
        Err(e @ WebError::Unavailable { attempts: 2, .. }) => assert!(e.to_string().contains("timed out"), "{e}"),
        other => panic!("{other:?}"),
    }
    // Nothing listening at all.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let e = fetcher.fetch(&Request::get(format!("http://{closed}/x"))).await.unwrap_err();
    assert!(matches!(e, WebError::Unavailable { .. }), "{e}");
    let e = fetcher.fetch(&Request::get("not a url")).await.unwrap_err();
    assert!(matches!(e, WebError::BadUrl(_)), "{e}");
}

#[tokio::test]
async fn a_source_may_say_which_server_errors_are_final() {
    let (base, server) = serve().await;
    let fetcher = Fetcher::new(settings(None)).unwrap();
    let request = Request::get(format!("{base}/broken"))
        .final_when(|status, code| status == 500 && code == Some("EmptyDatasetError"));
    match fetcher.fetch(&request).await {
        Err(WebError::Refused { status: 500, message, .. }) => {
            assert_eq!(message, "The dataset is empty. (EmptyDatasetError)");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.hits("/broken"), 1, "a final error is not asked again");
    // Without the rule, the same answer is taken as passing.
    assert!(matches!(fetcher.fetch(&Request::get(format!("{base}/broken"))).await, Err(WebError::Unavailable { .. })));
    assert_eq!(server.hits("/broken"), 1 + 3);
}

#[tokio::test]
async fn a_stale_answer_is_refreshed_and_served_when_the_source_is_down() {
    let (base, server) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let fetcher = Fetcher::new(settings(Some(dir.path()))).unwrap();
    let request = Request::get(format!("{base}/sometimes")).fresh_for(Duration::from_millis(100));
    fetcher.fetch(&request).await.unwrap();
    assert!(fetcher.fetch(&request).await.unwrap().from_cache, "fresh enough");
    tokio::time::sleep(Duration::from_millis(150)).await;
    let refreshed = fetcher.fetch(&request).await.unwrap();
    assert!(!refreshed.from_cache && !refreshed.stale, "too old: asked again");
    assert_eq!(server.hits("/sometimes"), 2);

    // The source goes down: the stored answer serves, marked stale, after the attempts.
    server.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let stale = fetcher.fetch(&request).await.unwrap();
    assert!(stale.from_cache && stale.stale);
    assert_eq!(stale.body, refreshed.body);
    assert_eq!(server.hits("/sometimes"), 2 + 3);
    // With nothing stored, the outage is the answer.
    let e = fetcher.fetch(&Request::get(format!("{base}/sometimes?other"))).await.unwrap_err();
    assert!(matches!(e, WebError::Unavailable { .. }), "{e}");
}

#[tokio::test]
async fn requests_to_one_host_are_paced() {
    let (base, server) = serve().await;
    let host = url_host(&base);
    let mut s = settings(None);
    s.pace.insert(host, Duration::from_millis(300));
    let fetcher = Arc::new(Fetcher::new(s).unwrap());
    let tasks: Vec<_> = (0..3)
        .map(|i| {
            let f = fetcher.clone();
            let url = format!("{base}/ok?i={i}");
            tokio::spawn(async move { f.fetch(&Request::get(url)).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let mut times = server.times.lock().unwrap().clone();
    times.sort();
    assert_eq!(times.len(), 3);
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= Duration::from_millis(280), "requests {gap:?} apart");
    }
}

#[tokio::test]
async fn posts_are_stored_by_their_body() {
    let (base, _server) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let fetcher = Fetcher::new(settings(Some(dir.path()))).unwrap();
    let a = fetcher.fetch(&Request::post_json(format!("{base}/echo"), &serde_json::json!({"ids": [1]}))).await.unwrap();
    let b = fetcher.fetch(&Request::post_json(format!("{base}/echo"), &serde_json::json!({"ids": [2]}))).await.unwrap();
    assert_eq!(a.text(), r#"{"ids":[1]}"#);
    assert_eq!(b.text(), r#"{"ids":[2]}"#);
    assert!(!b.from_cache);
    let again = fetcher.fetch(&Request::post_json(format!("{base}/echo"), &serde_json::json!({"ids": [1]}))).await;
    assert!(again.unwrap().from_cache);
    let bad = a.json::<Vec<u32>>().unwrap_err();
    assert!(matches!(bad, WebError::Malformed { .. }), "{bad}");
}

fn url_host(base: &str) -> String {
    base.trim_start_matches("http://").split(':').next().unwrap().to_string()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

#[tokio::test]
async fn downloads_stream_to_the_file_once() {
    let (base, server) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let fetcher = Fetcher::new(settings(Some(&cache))).unwrap();
    let dest = dir.path().join("out/train.parquet");
    assert_eq!(fetcher.download(&Request::get(format!("{base}/file")), &dest).await.unwrap(), 300_000);
    assert_eq!(std::fs::read(&dest).unwrap(), vec![7u8; 300_000]);
    let again = dir.path().join("again.parquet");
    assert_eq!(fetcher.download(&Request::get(format!("{base}/file")), &again).await.unwrap(), 300_000);
    assert_eq!(server.hits("/file"), 1, "the second download is a copy of the kept file");
    let offline = Fetcher::new(FetchSettings { offline: true, ..settings(Some(&cache)) }).unwrap();
    let third = dir.path().join("third.parquet");
    offline.download(&Request::get(format!("{base}/file")), &third).await.unwrap();
    assert!(third.is_file());

    let missing = dir.path().join("missing.parquet");
    let e = fetcher.download(&Request::get(format!("{base}/missing")), &missing).await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(!missing.exists());
    let leftovers: Vec<_> =
        walk(dir.path()).into_iter().filter(|p| p.to_string_lossy().ends_with(".partial")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn next_links_are_read_from_the_link_header() {
    let response = |link: &str| postdoc_web::Response {
        url: "http://x".into(),
        status: 200,
        body: Vec::new(),
        content_type: None,
        fetched_ms: 0,
        from_cache: false,
        stale: false,
        headers: [("link".to_string(), link.to_string())].into(),
    };
    assert_eq!(
        response(r#"<http://127.0.0.1:5/api/datasets?search=x&cursor=abc%3D>; rel="next""#).next_link().as_deref(),
        Some("http://127.0.0.1:5/api/datasets?search=x&cursor=abc%3D")
    );
    assert_eq!(
        response(r#"</.well-known/api-catalog>; rel="api-catalog", <http://h/p?c=2>; rel="next""#)
            .next_link()
            .as_deref(),
        Some("http://h/p?c=2")
    );
    assert_eq!(response(r#"<http://h/p?c=0>; rel="prev""#).next_link(), None);
}

#[test]
fn urls_get_their_query_encoded() {
    assert_eq!(
        postdoc_web::url_with("http://h/api/datasets", [("search", "math word"), ("filter", "license:mit")]).unwrap(),
        "http://h/api/datasets?search=math+word&filter=license%3Amit"
    );
    assert_eq!(postdoc_web::url_with("http://h/q", Vec::<(&str, &str)>::new()).unwrap(), "http://h/q");
    assert_eq!(postdoc_web::url_with("http://h/q?a=1", [("b", "2")]).unwrap(), "http://h/q?a=1&b=2");
    assert!(matches!(postdoc_web::url_with("no scheme", [("a", "b")]), Err(WebError::BadUrl(_))));
}
