//! Who may talk to the dashboard. On a loopback address, anyone on this machine, but only through
//! a loopback host name (a page elsewhere that rebinds its own name to 127.0.0.1 is refused). On
//! any other address every request must carry the token: as `Authorization: Bearer TOKEN`, as the
//! cookie the first page sets, or as `?token=TOKEN` on the link the server prints. Requests that
//! change something must come from the dashboard's own pages (no cross-site form can make them).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

const COOKIE: &str = "postdoc_token";

/// The policy for one listening address.
#[derive(Debug, Clone)]
pub struct Access {
    token: Option<Arc<str>>,
}

/// Why the server refuses to start as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error(
        "{0} is reachable from other machines: give a token (--token or POSTDOC_TOKEN) that every request must carry, or bind 127.0.0.1"
    )]
    TokenRequired(SocketAddr),
    #[error("the token must be at least 16 characters of letters, digits, '-' or '_'")]
    WeakToken,
}

impl Access {
    /// The policy for `addr`: a token is required unless it is a loopback address.
    pub fn for_address(addr: SocketAddr, token: Option<String>) -> Result<Access, AccessError> {
        match token {
            Some(t) if t.len() < 16 || !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') => {
                Err(AccessError::WeakToken)
            }
            Some(t) => Ok(Access { token: Some(t.into()) }),
            None if addr.ip().is_loopback() => Ok(Access { token: None }),
            None => Err(AccessError::TokenRequired(addr)),
        }
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    fn presented(&self, request: &Request) -> Presented {
        let Some(token) = &self.token else { return Presented::NotNeeded };
        let headers = request.headers();
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().strip_prefix(COOKIE)?.strip_prefix('='))
            .next();
        let query = request
            .uri()
            .query()
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter_map(|kv| kv.strip_prefix("token="))
            .next();
        if bearer.is_some_and(|b| same(b, token)) || cookie.is_some_and(|c| same(c, token)) {
            Presented::Valid
        } else if query.is_some_and(|q| same(q, token)) {
            Presented::InLink
        } else {
            Presented::Missing
        }
    }
}

enum Presented {
    NotNeeded,
    Valid,
    /// In the link's query: valid, and the answer sets the cookie so the page's own requests
    /// carry it.
    InLink,
    Missing,
}

/// Equal, in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The host part of a `Host` header value: `127.0.0.1:8080` -> `127.0.0.1`, `[::1]:80` -> `[::1]`.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

fn loopback_host(headers: &HeaderMap) -> bool {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| matches!(host_name(h), "127.0.0.1" | "localhost" | "[::1]"))
}

/// A request that changes something must be from the dashboard's own origin: a browser names
/// the page's origin on such requests, and a page elsewhere cannot make it ours.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true; // not a browser's cross-site request (curl, tests, `postdoc` itself)
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    origin.split_once("://").is_some_and(|(_, rest)| rest == host)
}

fn refuse(status: StatusCode, why: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], why).into_response()
}

pub(crate) async fn guard(State(access): State<Access>, request: Request, next: Next) -> Response {
    let presented = access.presented(&request);
    match presented {
        Presented::Missing => return refuse(StatusCode::UNAUTHORIZED, "this dashboard needs its token\n"),
        Presented::NotNeeded if !loopback_host(request.headers()) => {
            return refuse(StatusCode::FORBIDDEN, "open the dashboard as 127.0.0.1 or localhost\n");
        }
        _ => {}
    }
    if request.method() != Method::GET && !same_origin(request.headers()) {
        return refuse(StatusCode::FORBIDDEN, "changes come only from the dashboard's own pages\n");
    }
    let mut response = next.run(request).await;
    if let (Presented::InLink, Some(token)) = (presented, access.token())
        && let Ok(cookie) = HeaderValue::from_str(&format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"))
    {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_addresses_need_a_strong_token() {
        let lo: SocketAddr = "127.0.0.1:8000".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:8000".parse().unwrap();
        assert!(Access::for_address(lo, None).unwrap().token().is_none());
        assert_eq!(Access::for_address(any, None).unwrap_err(), AccessError::TokenRequired(any));
        assert_eq!(Access::for_address(any, Some("short".into())).unwrap_err(), AccessError::WeakToken);
        assert_eq!(
            Access::for_address(any, Some("has spaces in it, sixteen+".into())).unwrap_err(),
            AccessError::WeakToken
        );
        let a = Access::for_address(any, Some("0123456789abcdef".into())).unwrap();
        assert_eq!(a.token(), Some("0123456789abcdef"));
    }

    #[test]
    fn host_names_and_tokens_compare_as_they_should() {
        assert_eq!(host_name("127.0.0.1:8080"), "127.0.0.1");
        assert_eq!(host_name("localhost"), "localhost");
        assert_eq!(host_name("[::1]:80"), "[::1]");
        assert_eq!(host_name("evil.example:80"), "evil.example");
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "abcd"));
    }
}
