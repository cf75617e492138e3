//! Marking routes deprecated: `Deprecation` (RFC 9745), `Sunset` (RFC 8594) and a
//! `Link; rel="deprecation"` header on every response of the route.
//!
//! ```
//! use axum::{routing::get, Router};
//! use girder_http::deprecation::Deprecation;
//! use std::time::{Duration, UNIX_EPOCH};
//!
//! let since = UNIX_EPOCH + Duration::from_secs(1_767_225_600); // 2026-01-01
//! let old = Deprecation::new(since)
//!     .sunset(since + Duration::from_secs(180 * 86_400))
//!     .link("https://example.invalid/docs/migrate-ids");
//! let app: Router = Router::new().route("/v1/old", old.apply(get(|| async { "still here" })));
//! ```
//! Mark the operation `deprecated` in its `#[utoipa::path]` too, so the OpenAPI document
//! agrees with the headers.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::MethodRouter;
use std::time::{SystemTime, UNIX_EPOCH};

/// When a route was deprecated, when it goes away, and where to read about it.
#[derive(Debug, Clone)]
pub struct Deprecation {
    deprecation: HeaderValue,
    sunset: Option<HeaderValue>,
    link: Option<HeaderValue>,
}

impl Deprecation {
    /// Deprecated since `since` (may be in the future: an announced deprecation).
    pub fn new(since: SystemTime) -> Self {
        let secs = since.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Self {
            // RFC 9745: an RFC 9651 Date, `@` followed by seconds since the Unix epoch.
            deprecation: HeaderValue::from_str(&format!("@{secs}"))
                .expect("digits are a valid header value"),
            sunset: None,
            link: None,
        }
    }

    /// The route stops working at `at` (RFC 8594: an HTTP-date).
    #[must_use]
    pub fn sunset(mut self, at: SystemTime) -> Self {
        self.sunset = HeaderValue::from_str(&httpdate::fmt_http_date(at)).ok();
        self
    }

    /// A page describing the deprecation and the replacement.
    ///
    /// # Panics
    /// If `uri` contains characters not allowed in a header (a programming error).
    #[must_use]
    pub fn link(mut self, uri: &str) -> Self {
        let value = format!("<{uri}>; rel=\"deprecation\"; type=\"text/html\"");
        self.link = Some(
            HeaderValue::from_str(&value).expect("deprecation link must be a valid header value"),
        );
        self
    }

    /// Wraps a route so every response carries the deprecation headers.
    pub fn apply<S: Clone + Send + Sync + 'static>(
        self,
        route: MethodRouter<S>,
    ) -> MethodRouter<S> {
        route.layer(axum::middleware::from_fn(
            move |request: Request, next: Next| {
                let this = self.clone();
                async move { this.add_headers(next.run(request).await) }
            },
        ))
    }

    fn add_headers(&self, mut response: Response) -> Response {
        let headers = response.headers_mut();
        headers.insert("deprecation", self.deprecation.clone());
        if let Some(sunset) = &self.sunset {
            headers.insert("sunset", sunset.clone());
        }
        if let Some(link) = &self.link {
            headers.append(http::header::LINK, link.clone());
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use std::time::Duration;
    use tower::ServiceExt;

    #[tokio::test]
    async fn deprecated_route_carries_the_headers_and_others_do_not() {
        let since = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        let sunset = since + Duration::from_secs(86_400);
        let app: Router = Router::new()
            .route(
                "/old",
                Deprecation::new(since)
                    .sunset(sunset)
                    .link("https://example.invalid/migrate")
                    .apply(get(|| async { "old" })),
            )
            .route("/new", get(|| async { "new" }));

        let old = app
            .clone()
            .oneshot(Request::get("/old").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(old.headers()["deprecation"], "@1767225600");
        assert_eq!(old.headers()["sunset"], "Fri, 02 Jan 2026 00:00:00 GMT");
        assert_eq!(
            old.headers()["link"],
            "<https://example.invalid/migrate>; rel=\"deprecation\"; type=\"text/html\""
        );

        let new = app
            .oneshot(Request::get("/new").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert!(!new.headers().contains_key("deprecation"));
        assert!(!new.headers().contains_key("sunset"));
    }
}
