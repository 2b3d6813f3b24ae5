//! Datasets on the Hub: search, description, card, and the dataset viewer's splits, sizes,
//! features, rows and Parquet exports.

use crate::{Hub, HubError, check_name};
use postdoc_web::{Request, WebError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;

/// A dataset as a search lists it, or as its own page describes it (with its card's metadata).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    pub id: String,
    #[serde(default)]
    pub author: Option<String>,
    /// The commit the description is of.
    #[serde(default)]
    pub sha: Option<String>,
    #[serde(default, rename = "lastModified")]
    pub last_modified: Option<String>,
    #[serde(default)]
    pub private: bool,
    /// `false`, `"auto"` or `"manual"`.
    #[serde(default)]
    pub gated: Value,
    #[serde(default)]
    pub disabled: bool,
    /// Downloads in the last 30 days.
    #[serde(default)]
    pub downloads: Option<u64>,
    #[serde(default)]
    pub likes: Option<u64>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub citation: Option<String>,
    /// The card's metadata (its YAML header as JSON).
    #[serde(default, rename = "cardData")]
    pub card_data: Option<Value>,
    #[serde(default)]
    pub siblings: Vec<Value>,
}

impl DatasetInfo {
    /// The values of `key:value` tags with this key.
    pub fn tag_values(&self, key: &str) -> Vec<&str> {
        self.tags.iter().filter_map(|t| t.strip_prefix(key)?.strip_prefix(':')).collect()
    }

    /// A card field that may be a string or a list of strings.
    fn card_list(&self, key: &str) -> Vec<String> {
        match self.card_data.as_ref().and_then(|c| c.get(key)) {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        }
    }

    /// The licence the card declares (its tag when the card is not at hand); several are
    /// joined with " OR ". `other` names the card's own licence name when it gives one.
    pub fn licence(&self) -> Option<String> {
        let mut licences = self.card_list("license");
        if licences.is_empty() {
            licences = self.tag_values("license").into_iter().map(str::to_string).collect();
        }
        if licences.iter().any(|l| l == "other")
            && let Some(name) = self.card_data.as_ref().and_then(|c| c.get("license_name")).and_then(Value::as_str)
        {
            licences = licences.into_iter().map(|l| if l == "other" { format!("other ({name})") } else { l }).collect();
        }
        (!licences.is_empty()).then(|| licences.join(" OR "))
    }

    pub fn tasks(&self) -> Vec<String> {
        let from_card = self.card_list("task_categories");
        if !from_card.is_empty() {
            return from_card;
        }
        self.tag_values("task_categories").into_iter().map(str::to_string).collect()
    }

    pub fn languages(&self) -> Vec<String> {
        let from_card = self.card_list("language");
        if !from_card.is_empty() {
            return from_card;
        }
        self.tag_values("language").into_iter().map(str::to_string).collect()
    }

    pub fn size_category(&self) -> Option<String> {
        self.tag_values("size_categories").first().map(|s| s.to_string())
    }

    /// arXiv papers the card links to.
    pub fn papers(&self) -> Vec<String> {
        self.tag_values("arxiv").into_iter().map(str::to_string).collect()
    }

    /// How access is gated (`auto`, `manual`), if it is.
    pub fn gating(&self) -> Option<&str> {
        self.gated.as_str()
    }
}

/// How search results are ordered (largest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Sort {
    Downloads,
    Likes,
    Trending,
    Modified,
    Created,
}

impl Sort {
    fn wire(self) -> &'static str {
        match self {
            Sort::Downloads => "downloads",
            Sort::Likes => "likes",
            Sort::Trending => "trendingScore",
            Sort::Modified => "lastModified",
            Sort::Created => "createdAt",
        }
    }
}

/// A dataset search: words in the name, an owner, tag filters (`task_categories:text-generation`,
/// `language:en`, `license:mit`, `arxiv:2106.09685`, ...), all of which must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DatasetQuery {
    pub search: Option<String>,
    pub author: Option<String>,
    pub filters: Vec<String>,
    pub sort: Option<Sort>,
    pub limit: usize,
}

impl DatasetQuery {
    /// A query written as one line: words, and `task:`, `language:`, `licence:` (or `license:`),
    /// `author:` and `tag:` terms (`math word problems task:text-generation language:en`).
    pub fn parse(text: &str, limit: usize) -> DatasetQuery {
        let mut q = DatasetQuery { sort: Some(Sort::Downloads), limit, ..DatasetQuery::default() };
        let mut words = Vec::new();
        for term in text.split_whitespace() {
            match term.split_once(':') {
                Some(("task", v)) => q.filters.push(format!("task_categories:{v}")),
                Some(("language", v)) => q.filters.push(format!("language:{v}")),
                Some(("licence" | "license", v)) => q.filters.push(format!("license:{v}")),
                Some(("author", v)) => q.author = Some(v.to_string()),
                Some(("tag", v)) => q.filters.push(v.to_string()),
                _ => words.push(term),
            }
        }
        q.search = (!words.is_empty()).then(|| words.join(" "));
        q
    }
}

/// A split the viewer knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitName {
    pub dataset: String,
    pub config: String,
    pub split: String,
}

/// A split's size as the viewer measured it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitSize {
    pub config: String,
    pub split: String,
    #[serde(default)]
    pub num_rows: Option<u64>,
    #[serde(default)]
    pub num_columns: Option<u64>,
    #[serde(default)]
    pub num_bytes_parquet_files: Option<u64>,
    #[serde(default)]
    pub num_bytes_memory: Option<u64>,
}

/// A column: its name and the `datasets` feature type (`{"dtype": "string", "_type": "Value"}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: Value,
}

impl Feature {
    /// The type in a few words: `string`, `list of string`, `class label (neg, pos)`, `Image`.
    pub fn describe(&self) -> String {
        describe_type(&self.kind)
    }
}

fn describe_type(t: &Value) -> String {
    match t.get("_type").and_then(Value::as_str) {
        Some("Value") => t.get("dtype").and_then(Value::as_str).unwrap_or("value").to_string(),
        Some("ClassLabel") => {
            let names: Vec<&str> =
                t.get("names").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
            format!("class label ({})", names.join(", "))
        }
        Some("List" | "Sequence" | "LargeList") => {
            format!("list of {}", t.get("feature").map(describe_type).unwrap_or_else(|| "?".into()))
        }
        Some(other) => other.to_string(),
        None => match t {
            Value::Object(fields) => {
                let inner: Vec<String> = fields.iter().map(|(k, v)| format!("{k}: {}", describe_type(v))).collect();
                format!("{{{}}}", inner.join(", "))
            }
            Value::Array(items) => {
                format!("list of {}", items.first().map(describe_type).unwrap_or_else(|| "?".into()))
            }
            _ => "?".into(),
        },
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewerRow {
    pub row_idx: u64,
    pub row: serde_json::Map<String, Value>,
    /// Cells too large to send whole (they come as JSON text).
    #[serde(default)]
    pub truncated_cells: Vec<String>,
}

/// The first rows of a split, with its columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FirstRows {
    pub features: Vec<Feature>,
    pub rows: Vec<ViewerRow>,
    /// Rows left out to keep the answer small.
    #[serde(default)]
    pub truncated: bool,
}

/// One file of a split's Parquet export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParquetFile {
    pub config: String,
    pub split: String,
    pub url: String,
    pub filename: String,
    #[serde(default)]
    pub size: Option<u64>,
}

/// Rows per page of search results asked for (the Hub pages with `Link` beyond it).
const PAGE: usize = 100;

/// The viewer's "not ready yet" is worth waiting for; any other error it names is the dataset's
/// own and final.
fn viewer_final(status: u16, code: Option<&str>) -> bool {
    status >= 500
        && code.is_some_and(|c| !matches!(c, "ResponseNotReady" | "ResponseNotReadyError" | "UnexpectedError"))
}

impl Hub {
    /// Datasets matching `query`, up to its limit, following the Hub's pages.
    pub async fn search_datasets(&self, query: &DatasetQuery) -> Result<Vec<DatasetInfo>, HubError> {
        let limit = query.limit.max(1);
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(s) = query.search.as_deref().filter(|s| !s.trim().is_empty()) {
            params.push(("search", s.trim().to_string()));
        }
        if let Some(a) = &query.author {
            params.push(("author", a.clone()));
        }
        params.extend(query.filters.iter().map(|f| ("filter", f.clone())));
        if let Some(sort) = query.sort {
            params.push(("sort", sort.wire().to_string()));
            params.push(("direction", "-1".to_string()));
        }
        params.push(("limit", limit.min(PAGE).to_string()));
        let url = postdoc_web::url_with(&format!("{}/api/datasets", self.settings.endpoint), params)?;
        let mut found: Vec<DatasetInfo> = Vec::new();
        let mut next = Some(url);
        while let Some(page) = next.take() {
            // A next link elsewhere than the Hub asked is not followed (the key goes only there).
            if !page.starts_with(&self.settings.endpoint) {
                break;
            }
            let response = self.get(&self.request(&page)).await?;
            let items: Vec<DatasetInfo> = response.json()?;
            let empty = items.is_empty();
            found.extend(items);
            if found.len() >= limit || empty {
                break;
            }
            next = response.next_link();
        }
        found.truncate(limit);
        Ok(found)
    }

    /// One dataset's description, with its card's metadata.
    pub async fn dataset(&self, name: &str) -> Result<DatasetInfo, HubError> {
        check_name(name)?;
        let url = format!("{}/api/datasets/{name}", self.settings.endpoint);
        match self.get(&self.request(&url)).await {
            Ok(r) => Ok(r.json()?),
            Err(e) if is_missing(&e) => Err(HubError::NoDataset(name.into())),
            Err(e) => Err(e.into()),
        }
    }

    /// The dataset card's text (its README, YAML header included), if it has one.
    pub async fn card(&self, name: &str, revision: Option<&str>) -> Result<Option<String>, HubError> {
        check_name(name)?;
        let revision = url_segment(revision.unwrap_or("main"));
        let url = format!("{}/datasets/{name}/raw/{revision}/README.md", self.settings.endpoint);
        match self.get(&self.request(&url)).await {
            Ok(r) => Ok(Some(r.text())),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) if is_missing(&e) => Err(HubError::NoDataset(name.into())),
            Err(e) => Err(e.into()),
        }
    }

    /// A viewer endpoint's answer for `name`.
    async fn viewer(&self, name: &str, path: &str, params: &[(&str, &str)]) -> Result<Value, HubError> {
        check_name(name)?;
        let url = postdoc_web::url_with(
            &format!("{}/{path}", self.settings.viewer),
            std::iter::once(("dataset", name)).chain(params.iter().copied()),
        )?;
        let request = self.request(&url).final_when(viewer_final);
        match self.get(&request).await {
            Ok(r) => Ok(r.json()?),
            Err(WebError::Refused { status: 401, .. }) => Err(HubError::NoDataset(name.into())),
            Err(WebError::NotFound { .. }) if path == "splits" => Err(HubError::NoDataset(name.into())),
            Err(WebError::NotFound { .. }) => {
                let asked: Vec<String> = params.iter().map(|(k, v)| format!("{k} {v}")).collect();
                Err(HubError::Viewer { dataset: name.into(), reason: format!("no {}", asked.join(", ")) })
            }
            Err(WebError::Refused { message, .. }) => Err(HubError::Viewer { dataset: name.into(), reason: message }),
            Err(e) => Err(e.into()),
        }
    }

    /// The dataset's configurations and splits.
    pub async fn splits(&self, name: &str) -> Result<Vec<SplitName>, HubError> {
        let v = self.viewer(name, "splits", &[]).await?;
        Ok(serde_json::from_value(v.get("splits").cloned().unwrap_or(Value::Array(Vec::new()))).map_err(|e| {
            WebError::Malformed { url: format!("{}/splits", self.settings.viewer), reason: e.to_string() }
        })?)
    }

    /// Rows and bytes of every split.
    pub async fn sizes(&self, name: &str) -> Result<Vec<SplitSize>, HubError> {
        let v = self.viewer(name, "size", &[]).await?;
        let splits = v.pointer("/size/splits").cloned().unwrap_or(Value::Array(Vec::new()));
        Ok(serde_json::from_value(splits).map_err(|e| WebError::Malformed {
            url: format!("{}/size", self.settings.viewer),
            reason: e.to_string(),
        })?)
    }

    /// The first rows of a split (up to 100) and its columns.
    pub async fn first_rows(&self, name: &str, config: &str, split: &str) -> Result<FirstRows, HubError> {
        let v = self.viewer(name, "first-rows", &[("config", config), ("split", split)]).await?;
        Ok(serde_json::from_value(v).map_err(|e| WebError::Malformed {
            url: format!("{}/first-rows", self.settings.viewer),
            reason: e.to_string(),
        })?)
    }

    /// Rows `offset..offset + length` of a split (the viewer serves at most 100 at a time; a
    /// longer range is read page by page).
    pub async fn rows(
        &self,
        name: &str,
        config: &str,
        split: &str,
        offset: u64,
        length: u64,
    ) -> Result<Vec<ViewerRow>, HubError> {
        let mut rows = Vec::new();
        let mut at = offset;
        while at < offset + length {
            let n = (offset + length - at).min(100);
            let (o, l) = (at.to_string(), n.to_string());
            let v = self
                .viewer(name, "rows", &[("config", config), ("split", split), ("offset", &o), ("length", &l)])
                .await?;
            let page: Vec<ViewerRow> =
                serde_json::from_value(v.get("rows").cloned().unwrap_or(Value::Array(Vec::new()))).map_err(|e| {
                    WebError::Malformed { url: format!("{}/rows", self.settings.viewer), reason: e.to_string() }
                })?;
            let total = v.get("num_rows_total").and_then(Value::as_u64);
            let got = page.len() as u64;
            rows.extend(page);
            at += got;
            if got < n || total.is_some_and(|t| at >= t) {
                break;
            }
        }
        Ok(rows)
    }

    /// The files of the dataset's Parquet export, all splits or one.
    pub async fn parquet_files(&self, name: &str) -> Result<Vec<ParquetFile>, HubError> {
        let v = self.viewer(name, "parquet", &[]).await?;
        Ok(serde_json::from_value(v.get("parquet_files").cloned().unwrap_or(Value::Array(Vec::new()))).map_err(
            |e| WebError::Malformed { url: format!("{}/parquet", self.settings.viewer), reason: e.to_string() },
        )?)
    }

    /// Downloads one file of a Parquet export to `dest`.
    pub async fn download(&self, file: &ParquetFile, dest: &Path) -> Result<u64, HubError> {
        let mut request = Request::get(&file.url);
        if let Some(token) = &self.settings.token
            && file.url.starts_with(&self.settings.endpoint)
        {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        Ok(self.fetcher.download(&request, dest).await?)
    }
}

/// The Hub answers 401 for a dataset that does not exist when no token is sent, and 404 with one.
fn is_missing(e: &WebError) -> bool {
    matches!(e, WebError::NotFound { .. } | WebError::Refused { status: 401, .. })
}

/// A revision as one path segment (`refs/convert/parquet` becomes `refs%2Fconvert%2Fparquet`).
fn url_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}
