//! The study in the browser: `postdoc serve` and `postdoc run --serve`.
//!
//! A small web server over the lineage store. Its page (HTML, script and style, embedded in the
//! binary: it works offline) reads a JSON API and redraws when the server-sent event stream says
//! the study changed. The server reads the store, never the running session, so it shows a
//! study driven from another terminal or another machine sharing a PostgreSQL store just as
//! well, and the researcher's approvals and notes go through the same store calls as
//! `postdoc approve` and `postdoc note`.
//!
//! Everything a specialist wrote (hypotheses, notes, diffs, logs, transcripts) is data: the API
//! sends it as JSON strings, the page puts it into the document as text, never as markup, and
//! the content security policy allows no inline script at all.

mod access;
mod api;
pub mod model;
mod report;
mod snapshot;

pub use access::{Access, AccessError};
pub use report::{Report, ReportError};

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};
use postdoc_core::Manifest;
use postdoc_store::{Store, StudyRecord};
use std::sync::Arc;

/// What the dashboard serves: one study of one store.
#[derive(Clone)]
pub struct Dashboard {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    study: StudyRecord,
    manifest: Manifest,
    snapshots: snapshot::Snapshots,
}

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("the manifest stored with study `{study}` cannot be read: {source}")]
    Manifest {
        study: String,
        #[source]
        source: postdoc_core::ManifestError,
    },
    #[error("cannot read study `{study}`: {message}")]
    Read { study: String, message: String },
}

impl Dashboard {
    /// The dashboard of `study`, judged by the manifest it was started with.
    pub fn new(store: Store, study: StudyRecord) -> Result<Dashboard, DashboardError> {
        let manifest = Manifest::parse(&study.manifest, "the study's manifest")
            .map_err(|source| DashboardError::Manifest { study: study.name.clone(), source })?;
        Ok(Dashboard { inner: Arc::new(Inner { store, study, manifest, snapshots: Default::default() }) })
    }

    /// Reads the whole study and computes its overview. A long study's first read takes a
    /// moment (about a second at 100,000 trials): a server that does it before it gives out its
    /// address answers the first page opened as fast as any other.
    pub async fn warm(&self) -> Result<(), DashboardError> {
        api::warm(&self.inner)
            .await
            .map_err(|e| DashboardError::Read { study: self.inner.study.name.clone(), message: e.message() })
    }

    /// Every route, behind `access`.
    pub fn router(self, access: Access) -> Router {
        Router::new()
            .route("/", get(page))
            .route("/app.js", get(script))
            .route("/app.css", get(style))
            .route("/api/overview", get(api::overview))
            .route("/api/trials", get(api::trials))
            .route("/api/trials/{number}", get(api::trial))
            .route("/api/trials/{number}/approve", post(api::approve))
            .route("/api/trials/{number}/reject", post(api::reject))
            .route("/api/specialists", get(api::specialists))
            .route("/api/notes", get(api::notes).post(api::add_note))
            .route("/api/papers", get(api::papers))
            .route("/api/data", get(api::data))
            .route("/api/stream", get(api::stream))
            .fallback(api::not_found)
            .with_state(self)
            .layer(axum::middleware::from_fn_with_state(access, access::guard))
            .layer(axum::middleware::map_response(secure_headers))
    }
}

/// Serves `dashboard` on `listener` until the future is dropped (after [`Dashboard::warm`],
/// the first request is as fast as any other).
pub async fn serve(listener: tokio::net::TcpListener, dashboard: Dashboard, access: Access) -> std::io::Result<()> {
    axum::serve(listener, dashboard.router(access)).await
}

/// No script but the page's own file runs, nothing is framed, and no type is guessed: even a
/// string that slipped into the document as markup could not act.
async fn secure_headers(mut response: axum::response::Response) -> axum::response::Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn asset(kind: &'static str, body: &'static str) -> ([(header::HeaderName, &'static str); 1], &'static str) {
    ([(header::CONTENT_TYPE, kind)], body)
}

async fn page() -> impl axum::response::IntoResponse {
    asset("text/html; charset=utf-8", include_str!("../assets/index.html"))
}

async fn script() -> impl axum::response::IntoResponse {
    asset("text/javascript; charset=utf-8", include_str!("../assets/app.js"))
}

async fn style() -> impl axum::response::IntoResponse {
    asset("text/css; charset=utf-8", include_str!("../assets/app.css"))
}
