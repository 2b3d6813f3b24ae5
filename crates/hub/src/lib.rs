//! The Hugging Face Hub as postdoc reads it: searching datasets by words, tags and tasks,
//! reading one's card (licence, tasks, languages, splits and sizes) and its first rows through
//! the dataset viewer, and fetching a split's Parquet export. Every request goes through
//! [`postdoc_web::Fetcher`], so answers are cached, rate limits are honoured and a repeated
//! look works offline.
//!
//! The endpoints follow `HF_ENDPOINT` as the official client does (so a mirror or a loopback
//! server in tests can stand in), and `HF_TOKEN` is sent when set.

mod datasets;

pub use datasets::{DatasetInfo, DatasetQuery, Feature, FirstRows, ParquetFile, Sort, SplitName, SplitSize, ViewerRow};

use postdoc_web::{Fetcher, Request, Response, WebError};
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
pub const DEFAULT_VIEWER: &str = "https://datasets-server.huggingface.co";

/// How long a listing or a dataset's description stays fresh in the cache (datasets change;
/// offline, any age serves).
const FRESH: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("no dataset `{0}` on the Hub (or it is private or gated: set HF_TOKEN to a token that may read it)")]
    NoDataset(String),
    #[error("`{0}` is not a dataset name: expected OWNER/NAME")]
    BadName(String),
    #[error("the dataset viewer cannot read `{dataset}`: {reason}")]
    Viewer { dataset: String, reason: String },
    #[error(transparent)]
    Web(#[from] WebError),
}

/// Where the Hub is and who asks.
#[derive(Clone)]
pub struct HubSettings {
    pub endpoint: String,
    pub viewer: String,
    pub token: Option<String>,
}

impl std::fmt::Debug for HubSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubSettings")
            .field("endpoint", &self.endpoint)
            .field("viewer", &self.viewer)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl HubSettings {
    /// `HF_ENDPOINT` (else the public Hub), `POSTDOC_HF_VIEWER` (else the public dataset
    /// viewer), and `HF_TOKEN` (or the older `HUGGING_FACE_HUB_TOKEN`).
    pub fn from_env() -> HubSettings {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        HubSettings {
            endpoint: var("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.into()).trim_end_matches('/').to_string(),
            viewer: var("POSTDOC_HF_VIEWER").unwrap_or_else(|| DEFAULT_VIEWER.into()).trim_end_matches('/').to_string(),
            token: var("HF_TOKEN").or_else(|| var("HUGGING_FACE_HUB_TOKEN")),
        }
    }
}

pub struct Hub {
    fetcher: Arc<Fetcher>,
    settings: HubSettings,
}

impl Hub {
    pub fn new(fetcher: Arc<Fetcher>, settings: HubSettings) -> Hub {
        Hub { fetcher, settings }
    }

    /// The Hub the environment names, asked through the user's shared cache.
    pub fn from_env() -> Result<Hub, HubError> {
        let fetcher = Fetcher::new(postdoc_web::FetchSettings::default())?;
        Ok(Hub::new(Arc::new(fetcher), HubSettings::from_env()))
    }

    pub fn settings(&self) -> &HubSettings {
        &self.settings
    }

    /// A GET of `url` with the token, fresh for a day.
    fn request(&self, url: &str) -> Request {
        let mut request = Request::get(url).header("accept", "application/json").fresh_for(FRESH);
        if let Some(token) = &self.settings.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        request
    }

    async fn get(&self, request: &Request) -> Result<Response, WebError> {
        self.fetcher.fetch(request).await
    }
}

/// Checks a dataset's name: `OWNER/NAME` (a bare legacy name is allowed too), nothing that
/// could leave its place in a URL path.
pub fn check_name(name: &str) -> Result<(), HubError> {
    let ok_part = |p: &str| {
        !p.is_empty() && p != "." && p != ".." && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    let parts: Vec<&str> = name.split('/').collect();
    if (1..=2).contains(&parts.len()) && parts.iter().all(|p| ok_part(p)) {
        Ok(())
    } else {
        Err(HubError::BadName(name.into()))
    }
}
