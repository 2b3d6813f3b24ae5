//! Polite HTTP for the public sources postdoc reads (paper indexes, citation graphs, the dataset
//! hub). Every answer is kept on disk by request, so a repeated crawl costs nothing and works
//! offline; each host is paced; a rate limit (429 with `Retry-After`) or a passing fault (5xx, a
//! timeout, a dropped connection) costs a wait with backoff, not the request; and every error
//! says which request failed and why.

mod cache;
mod retry;

pub use retry::{RetryPolicy, error_message, retry_after, short};

use cache::{Cache, Entry, Head};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("{url}: not found (HTTP 404)")]
    NotFound { url: String },
    #[error("{url}: refused with HTTP {status}: {message}")]
    Refused { url: String, status: u16, message: String },
    #[error("{url}: unavailable after {attempts} attempts: {last}")]
    Unavailable { url: String, attempts: u32, last: String },
    #[error("{url}: not in the cache, and postdoc is offline")]
    Offline { url: String },
    #[error("{url}: the answer is not what was expected: {reason}")]
    Malformed { url: String, reason: String },
    #[error("not a URL: {0}")]
    BadUrl(String),
    #[error("cannot set up HTTP: {0}")]
    Setup(String),
    #[error("cannot save {}: {reason}", path.display())]
    Save { path: PathBuf, reason: String },
}

impl WebError {
    /// The source answered but has no such thing (as opposed to being unreachable).
    pub fn is_not_found(&self) -> bool {
        matches!(self, WebError::NotFound { .. })
    }

    /// Worth asking another source: this one is down, rate-limiting us past our patience, or
    /// refusing (as Semantic Scholar does without a key when busy).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, WebError::Unavailable { .. } | WebError::Refused { status: 401 | 403 | 429, .. })
    }
}

/// `base` with `params` appended as its query, each encoded.
pub fn url_with<K: AsRef<str>, V: AsRef<str>>(
    base: &str,
    params: impl IntoIterator<Item = (K, V)>,
) -> Result<String, WebError> {
    let mut url = url::Url::parse(base).map_err(|e| WebError::BadUrl(format!("{base}: {e}")))?;
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k.as_ref(), v.as_ref());
        }
    }
    // A base without a query and no params gives back the base, not `base?`.
    Ok(url.to_string().trim_end_matches('?').to_string())
}

/// Where answers are kept when nothing says otherwise: `$POSTDOC_CACHE/http`, else the user's
/// cache folder.
pub fn default_cache() -> PathBuf {
    cache_home().join("http")
}

/// postdoc's folder in the user's cache: `$POSTDOC_CACHE`, else `$XDG_CACHE_HOME/postdoc`, else
/// `~/.cache/postdoc`.
pub fn cache_home() -> PathBuf {
    if let Some(dir) = std::env::var_os("POSTDOC_CACHE") {
        return PathBuf::from(dir);
    }
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("postdoc")
}

/// How a [`Fetcher`] behaves.
#[derive(Debug, Clone)]
pub struct FetchSettings {
    /// Where answers are kept; `None` keeps nothing.
    pub cache: Option<PathBuf>,
    /// Answer only from the cache.
    pub offline: bool,
    pub retry: RetryPolicy,
    /// The longest one attempt may take, connection included.
    pub timeout: Duration,
    /// The least time between two requests to the same host, by host name (a source's documented
    /// rate: arXiv asks for one request every three seconds).
    pub pace: HashMap<String, Duration>,
    pub user_agent: String,
}

impl Default for FetchSettings {
    fn default() -> FetchSettings {
        FetchSettings {
            cache: Some(default_cache()),
            offline: std::env::var_os("POSTDOC_OFFLINE").is_some_and(|v| !v.is_empty() && v != "0"),
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
            pace: HashMap::new(),
            user_agent: concat!("postdoc/", env!("CARGO_PKG_VERSION")).into(),
        }
    }
}

/// One request. Headers are sent but are not part of what the answer is stored under, so an API
/// key never reaches the cache and a request made with a key serves one made without.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    /// How old a stored answer may be and still serve; `None`: any age (papers do not change).
    pub fresh_for: Option<Duration>,
    /// The source's own rule for which server errors are final rather than passing: given the
    /// status and the `X-Error-Code` header, true stops the retries (the dataset viewer answers
    /// 500 both for "not ready yet", worth waiting for, and for a dataset that cannot be read).
    pub is_final: Option<fn(u16, Option<&str>) -> bool>,
    /// Error statuses whose body the caller reads as an answer (arXiv explains a bad query in an
    /// Atom feed sent with 400).
    pub answers: &'static [u16],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

impl Request {
    pub fn get(url: impl Into<String>) -> Request {
        Request {
            method: Method::Get,
            url: url.into(),
            headers: Vec::new(),
            body: None,
            fresh_for: None,
            is_final: None,
            answers: &[],
        }
    }

    /// A POST of a JSON body (Semantic Scholar's batch lookup).
    pub fn post_json(url: impl Into<String>, body: &serde_json::Value) -> Request {
        Request {
            method: Method::Post,
            url: url.into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: Some(serde_json::to_vec(body).expect("JSON values serialize")),
            fresh_for: None,
            is_final: None,
            answers: &[],
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn fresh_for(mut self, age: Duration) -> Request {
        self.fresh_for = Some(age);
        self
    }

    /// Reads these error statuses' bodies as answers rather than errors.
    pub fn answering(mut self, statuses: &'static [u16]) -> Request {
        self.answers = statuses;
        self
    }

    pub fn final_when(mut self, rule: fn(u16, Option<&str>) -> bool) -> Request {
        self.is_final = Some(rule);
        self
    }
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub url: String,
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: Option<String>,
    /// When the source gave this answer (milliseconds since the epoch).
    pub fetched_ms: i64,
    pub from_cache: bool,
    /// A stored answer older than the request wanted, served because the source could not be
    /// reached.
    pub stale: bool,
    /// The headers kept with the answer (see [`KEPT_HEADERS`]), by lower-case name.
    pub headers: BTreeMap<String, String>,
}

/// Response headers kept with an answer, in the cache too: paging links and the revision the
/// answer describes.
pub const KEPT_HEADERS: [&str; 5] = ["link", "etag", "last-modified", "x-repo-commit", "x-revision"];

impl Response {
    /// The body as JSON of type `T`, or an error naming the URL and what was wrong.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, WebError> {
        serde_json::from_slice(&self.body).map_err(|e| self.malformed(e.to_string()))
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The target of the `Link` header's `rel="next"`, if any (GitHub-style paging, as the
    /// Hugging Face Hub pages its listings).
    pub fn next_link(&self) -> Option<String> {
        let link = self.headers.get("link")?;
        link.split(',').find_map(|part| {
            let (target, params) = part.split_once(';')?;
            let is_next = params.split(';').any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            });
            let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            is_next.then(|| target.to_string())
        })
    }

    /// An error saying this answer was not what the client expected.
    pub fn malformed(&self, reason: impl Into<String>) -> WebError {
        WebError::Malformed { url: self.url.clone(), reason: reason.into() }
    }
}

/// The one way postdoc asks public sources for anything.
pub struct Fetcher {
    client: reqwest::Client,
    cache: Option<Cache>,
    settings: FetchSettings,
    /// The earliest moment each host may be asked again.
    next_slot: Mutex<HashMap<String, Instant>>,
}

/// What one attempt came to.
enum Attempt<T> {
    Done(Result<T, WebError>),
    /// Worth another try, after the wait the server asked for, if any.
    Again {
        reason: String,
        retry_after: Option<Duration>,
    },
}

impl Fetcher {
    pub fn new(settings: FetchSettings) -> Result<Fetcher, WebError> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .user_agent(settings.user_agent.clone())
            .build()
            .map_err(|e| WebError::Setup(e.to_string()))?;
        Ok(Fetcher {
            client,
            cache: settings.cache.clone().map(Cache::new),
            settings,
            next_slot: Mutex::new(HashMap::new()),
        })
    }

    pub fn is_offline(&self) -> bool {
        self.settings.offline
    }

    /// The answer to `request`: from the cache when a fresh enough one is stored, else from the
    /// source (and then stored). 404 is stored too, as a known absence.
    pub async fn fetch(&self, request: &Request) -> Result<Response, WebError> {
        let parsed = url::Url::parse(&request.url).map_err(|e| WebError::BadUrl(format!("{}: {e}", request.url)))?;
        let key = cache::key(request.method.as_str(), &request.url, request.body.as_deref());
        let stored = self.cache.as_ref().and_then(|c| c.get(&key));
        if let Some(entry) = &stored {
            let age = Duration::from_millis((now_ms() - entry.head.fetched_ms).max(0) as u64);
            if self.settings.offline || request.fresh_for.is_none_or(|fresh| age <= fresh) {
                return answer(entry.clone(), true, false);
            }
        }
        if self.settings.offline {
            return Err(WebError::Offline { url: request.url.clone() });
        }
        let host = parsed.host_str().unwrap_or_default().to_string();
        let fetched = self.fetch_fresh(request, &host).await;
        match fetched {
            Ok(entry) => {
                if let Some(cache) = &self.cache
                    && let Err(e) = cache.put(&key, &entry)
                {
                    tracing::warn!(url = %request.url, "cannot store the answer in the cache: {e}");
                }
                answer(entry, false, false)
            }
            // A source that cannot be reached is no reason to lose what it said before.
            Err(WebError::Unavailable { .. }) if stored.is_some() => {
                tracing::warn!(url = %request.url, "unreachable; using the stored answer");
                answer(stored.expect("checked above"), true, true)
            }
            Err(e) => Err(e),
        }
    }

    /// Asks the source, trying again on rate limits and passing faults. Ok holds a success or a
    /// 404; anything else is an error.
    async fn fetch_fresh(&self, request: &Request, host: &str) -> Result<Entry, WebError> {
        let head = |url: String, status: u16, fetched_ms: i64, content_type, headers| Head {
            method: request.method.as_str().into(),
            url,
            status,
            fetched_ms,
            content_type,
            headers,
        };
        match self.with_retries(request, host, || self.attempt(request)).await {
            Ok(r) => Ok(Entry {
                head: head(request.url.clone(), r.status, r.fetched_ms, r.content_type, r.headers),
                body: r.body,
            }),
            Err(WebError::NotFound { url }) => {
                Ok(Entry { head: head(url, 404, now_ms(), None, BTreeMap::new()), body: Vec::new() })
            }
            Err(e) => Err(e),
        }
    }

    /// Runs `attempt` until it is done, waiting between tries as the policy and the server say.
    async fn with_retries<T, F, Fut>(&self, request: &Request, host: &str, attempt: F) -> Result<T, WebError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Attempt<T>>,
    {
        let policy = self.settings.retry;
        let mut tries = 0;
        loop {
            tries += 1;
            self.wait_for_slot(host).await;
            match attempt().await {
                Attempt::Done(done) => return done,
                Attempt::Again { reason, retry_after } => {
                    if tries >= policy.attempts.max(1) {
                        return Err(WebError::Unavailable { url: request.url.clone(), attempts: tries, last: reason });
                    }
                    let wait = policy.delay(tries, retry_after);
                    // Every request to this host waits, not only this one: a rate limit is the
                    // host's, and asking again from another task would only prolong it.
                    self.hold_host(host, wait);
                    tracing::warn!(url = %request.url, attempt = tries, wait_s = wait.as_secs_f64(), "{reason}; trying again");
                }
            }
        }
    }

    async fn attempt(&self, request: &Request) -> Attempt<Response> {
        let mut builder = match request.method {
            Method::Get => self.client.get(&request.url),
            Method::Post => self.client.post(&request.url),
        };
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let response = match builder.send().await {
            Ok(r) => r,
            Err(e) => return Attempt::Again { reason: describe(&e), retry_after: None },
        };
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let error_code = response.headers().get("x-error-code").and_then(|v| v.to_str().ok()).map(str::to_string);
        let is_final = request.is_final.is_some_and(|rule| rule(status, error_code.as_deref()));
        let content_type =
            response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
        let headers = kept_headers(response.headers());
        let body = match response.bytes().await {
            Ok(b) => b.to_vec(),
            Err(e) => {
                return Attempt::Again { reason: format!("the answer was cut off: {}", describe(&e)), retry_after };
            }
        };
        let url = request.url.clone();
        match status {
            _ if (200..=299).contains(&status) || request.answers.contains(&status) => Attempt::Done(Ok(Response {
                url,
                status,
                body,
                content_type,
                fetched_ms: now_ms(),
                from_cache: false,
                stale: false,
                headers,
            })),
            404 | 410 => Attempt::Done(Err(WebError::NotFound { url })),
            408 | 429 | 500..=599 if !is_final => Attempt::Again {
                reason: format!("HTTP {status}: {}", error_message(&String::from_utf8_lossy(&body))),
                retry_after,
            },
            _ => {
                let message = error_message(&String::from_utf8_lossy(&body));
                let message = match error_code {
                    Some(code) => format!("{message} ({code})"),
                    None => message,
                };
                Attempt::Done(Err(WebError::Refused { url, status, message }))
            }
        }
    }

    /// Downloads the answer to `request` into `dest`, streamed so a file larger than memory is
    /// fine, and through the cache's folder of files when there is a cache (a second download
    /// of the same URL is a copy, and works offline). The file appears at `dest` by a rename, so
    /// a failed download leaves nothing there. Returns its size in bytes.
    pub async fn download(&self, request: &Request, dest: &Path) -> Result<u64, WebError> {
        let parsed = url::Url::parse(&request.url).map_err(|e| WebError::BadUrl(format!("{}: {e}", request.url)))?;
        let key = cache::key(request.method.as_str(), &request.url, request.body.as_deref());
        let kept = self.cache.as_ref().map(|c| c.file_path(&key));
        if let Some(kept) = kept.as_ref().filter(|k| k.is_file()) {
            return copy_into(kept, dest);
        }
        if self.settings.offline {
            return Err(WebError::Offline { url: request.url.clone() });
        }
        let target = kept.clone().unwrap_or_else(|| dest.to_path_buf());
        let host = parsed.host_str().unwrap_or_default().to_string();
        let bytes = self.with_retries(request, &host, || self.stream_once(request, &target)).await?;
        match kept {
            Some(kept) => copy_into(&kept, dest),
            None => Ok(bytes),
        }
    }

    /// One attempt at a download into `target` (through `target.partial`): the bytes written.
    async fn stream_once(&self, request: &Request, target: &Path) -> Attempt<u64> {
        use tokio::io::AsyncWriteExt;
        let mut response = match self.client.get(&request.url).headers(header_map(&request.headers)).send().await {
            Ok(r) => r,
            Err(e) => return Attempt::Again { reason: describe(&e), retry_after: None },
        };
        let status = response.status().as_u16();
        if !response.status().is_success() {
            let retry_after = retry_after(response.headers());
            let body = response.text().await.unwrap_or_default();
            return match status {
                404 | 410 => Attempt::Done(Err(WebError::NotFound { url: request.url.clone() })),
                408 | 429 | 500..=599 => {
                    Attempt::Again { reason: format!("HTTP {status}: {}", error_message(&body)), retry_after }
                }
                _ => Attempt::Done(Err(WebError::Refused {
                    url: request.url.clone(),
                    status,
                    message: error_message(&body),
                })),
            };
        }
        let save = |reason: String| Attempt::Done(Err(WebError::Save { path: target.to_path_buf(), reason }));
        if let Some(dir) = target.parent()
            && let Err(e) = std::fs::create_dir_all(dir)
        {
            return save(e.to_string());
        }
        let partial = partial_of(target);
        let mut file = match tokio::fs::File::create(&partial).await {
            Ok(f) => f,
            Err(e) => return save(e.to_string()),
        };
        let mut written = 0u64;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if let Err(e) = file.write_all(&chunk).await {
                        let _ = std::fs::remove_file(&partial);
                        return save(e.to_string());
                    }
                    written += chunk.len() as u64;
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = std::fs::remove_file(&partial);
                    return Attempt::Again {
                        reason: format!("the download was cut off: {}", describe(&e)),
                        retry_after: None,
                    };
                }
            }
        }
        if let Err(e) = file.sync_all().await.and_then(|()| std::fs::rename(&partial, target)) {
            let _ = std::fs::remove_file(&partial);
            return save(e.to_string());
        }
        Attempt::Done(Ok(written))
    }

    async fn wait_for_slot(&self, host: &str) {
        let pace = self.settings.pace.get(host).copied().unwrap_or(Duration::ZERO);
        let slot = {
            let mut slots = self.next_slot.lock().expect("the pacing table is never poisoned");
            let now = Instant::now();
            let slot = slots.get(host).copied().filter(|s| *s > now).unwrap_or(now);
            slots.insert(host.to_string(), slot + pace);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    fn hold_host(&self, host: &str, wait: Duration) {
        let mut slots = self.next_slot.lock().expect("the pacing table is never poisoned");
        let until = Instant::now() + wait;
        let slot = slots.entry(host.to_string()).or_insert(until);
        *slot = (*slot).max(until);
    }
}

fn answer(entry: Entry, from_cache: bool, stale: bool) -> Result<Response, WebError> {
    if entry.head.status == 404 {
        return Err(WebError::NotFound { url: entry.head.url });
    }
    Ok(Response {
        url: entry.head.url,
        status: entry.head.status,
        body: entry.body,
        content_type: entry.head.content_type,
        fetched_ms: entry.head.fetched_ms,
        from_cache,
        stale,
        headers: entry.head.headers,
    })
}

fn header_map(headers: &[(String, String)]) -> reqwest::header::HeaderMap {
    let mut map = reqwest::header::HeaderMap::new();
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) =
            (reqwest::header::HeaderName::from_bytes(name.as_bytes()), reqwest::header::HeaderValue::from_str(value))
        {
            map.append(n, v);
        }
    }
    map
}

fn partial_of(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{}.partial", std::process::id()));
    PathBuf::from(name)
}

/// Copies a kept download to `dest`, appearing there by a rename.
fn copy_into(from: &Path, dest: &Path) -> Result<u64, WebError> {
    let save = |e: std::io::Error| WebError::Save { path: dest.to_path_buf(), reason: e.to_string() };
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(save)?;
    }
    let partial = partial_of(dest);
    let copied = std::fs::copy(from, &partial).and_then(|n| std::fs::rename(&partial, dest).map(|()| n));
    if copied.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    copied.map_err(save)
}

fn kept_headers(headers: &reqwest::header::HeaderMap) -> BTreeMap<String, String> {
    KEPT_HEADERS
        .iter()
        .filter_map(|name| Some((name.to_string(), headers.get(*name)?.to_str().ok()?.to_string())))
        .collect()
}

/// A transport error in words (reqwest's own display hides the cause).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
