//! How long to wait before trying a request again, and what a refusal says.

use std::time::{Duration, SystemTime};

/// How hard to try: `attempts` in all, waiting `base_delay`, then twice that, and so on up to
/// `max_delay` (or what the server's `Retry-After` asks, up to `max_delay`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy { attempts: 6, base_delay: Duration::from_secs(2), max_delay: Duration::from_secs(60) }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`, after `attempt` failures.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self.base_delay.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        retry_after.unwrap_or(backoff).min(self.max_delay)
    }
}

/// The wait a server asks for: `Retry-After` (seconds, or an HTTP date), else a `RateLimit`
/// header (the IETF draft the Hugging Face Hub follows: `"api";r=0;t=55`) whose window is spent,
/// until the window resets.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    if let Some(value) = headers.get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()) {
        let value = value.trim();
        if let Ok(seconds) = value.parse::<f64>() {
            return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
        }
        if let Ok(at) = httpdate::parse_http_date(value) {
            return Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO));
        }
    }
    let limit = headers.get("ratelimit")?.to_str().ok()?;
    let param = |name: &str| {
        limit
            .split(';')
            .filter_map(|p| p.trim().split_once('='))
            .find(|(k, _)| k.trim() == name)?
            .1
            .trim()
            .parse::<u64>()
            .ok()
    };
    match (param("r"), param("t")) {
        (Some(0), Some(t)) => Some(Duration::from_secs(t + 1)),
        _ => None,
    }
}

/// The human part of an error body (`{"error": {"message": ...}}`, `{"message": ...}` or
/// `{"error": ...}`), or the start of the body.
pub fn error_message(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let from_json = parsed.as_ref().and_then(|v| {
        v.pointer("/error/message").or_else(|| v.get("message")).or_else(|| v.get("error")).and_then(|m| m.as_str())
    });
    let text = from_json.unwrap_or(body).trim();
    if text.is_empty() { "(no message)".into() } else { short(text, 300) }
}

/// The first `chars` characters of `text`, with an ellipsis if it went on.
pub fn short(text: &str, chars: usize) -> String {
    let mut s: String = text.chars().take(chars).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    #[test]
    fn backoff_doubles_up_to_the_cap_and_honours_retry_after() {
        let p = RetryPolicy { attempts: 5, base_delay: Duration::from_secs(1), max_delay: Duration::from_secs(5) };
        let waits: Vec<u64> = (1..=5).map(|a| p.delay(a, None).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 5, 5]);
        assert_eq!(p.delay(1, Some(Duration::from_secs(3))), Duration::from_secs(3));
        assert_eq!(p.delay(1, Some(Duration::from_secs(300))), Duration::from_secs(5));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
            retry_after(&h)
        };
        assert_eq!(with("7"), Some(Duration::from_secs(7)));
        assert_eq!(with("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(with("-1"), None);
        assert_eq!(with("soon"), None);
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        let waited = with(&later).unwrap();
        assert!((100..=120).contains(&waited.as_secs()), "{waited:?}");
        assert_eq!(with("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO), "a date passed asks no wait");
        assert_eq!(retry_after(&HeaderMap::new()), None);
        let limited = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert("ratelimit", HeaderValue::from_str(v).unwrap());
            retry_after(&h)
        };
        assert_eq!(limited(r#""api";r=0;t=55"#), Some(Duration::from_secs(56)), "a spent window waits for its reset");
        assert_eq!(limited(r#""api";r=489;t=189"#), None, "requests remain");
        assert_eq!(limited("garbage"), None);
    }

    #[test]
    fn error_messages_are_found_in_any_common_shape_or_cut_short() {
        assert_eq!(error_message(r#"{"error": {"message": "bad model", "type": "x"}}"#), "bad model");
        assert_eq!(error_message(r#"{"message": "Too Many Requests"}"#), "Too Many Requests");
        assert_eq!(error_message(r#"{"error": "Paper not found"}"#), "Paper not found");
        assert_eq!(error_message(""), "(no message)");
        assert_eq!(error_message(&"x".repeat(1000)).chars().count(), 301);
    }
}
