//! Errors as RFC 9457 `application/problem+json`, and the one place they are produced.
//!
//! Handlers return [`ApiError`]. Everything else that can fail before a handler runs
//! (unknown route, wrong method, body too large, wrong content type, a panic) produces a
//! plain response inside axum or tower-http; [`finish`] turns every such 4xx/5xx into a
//! problem document, so a client sees one error format whatever failed. Every problem also
//! carries the request's `request_id` and the path as `instance`.
//!
//! The `type` of a problem is a stable URN, `urn:girder:problem:<code>`; the codes are a
//! contract with clients, listed in [`ProblemType`].

use crate::request_id::RequestId;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Stable problem types. The string after `urn:girder:problem:` never changes meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemType {
    /// A query or path parameter could not be parsed.
    InvalidParameter,
    /// A parameter or body parsed but its value is not acceptable.
    InvalidValue,
    /// The request body is not valid JSON, or misses required fields.
    InvalidBody,
    /// Any other 400.
    BadRequest,
    /// No route matches the path.
    NotFound,
    /// The route exists but not for this method (the `Allow` header lists the methods).
    MethodNotAllowed,
    /// The request body is larger than `http.body_limit`.
    PayloadTooLarge,
    /// The request body's `Content-Type` is not one the route accepts.
    UnsupportedMediaType,
    /// Too many requests; retry after the `Retry-After` header.
    RateLimited,
    /// The server is not ready (starting, or shutting down).
    NotReady,
    /// The wall clock moved backwards further than IDs can tolerate; retry later.
    ClockRegression,
    /// The request conflicts with the resource's state (it already exists, say).
    Conflict,
    /// A queue receipt names a delivery that is over (acked, nacked, redelivered, or
    /// from before a restart): 410.
    ReceiptExpired,
    /// Any other client error.
    ClientError,
    /// A bug or an unexpected failure on the server side.
    Internal,
}

impl ProblemType {
    /// The short code after `urn:girder:problem:`.
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidParameter => "invalid-parameter",
            Self::InvalidValue => "invalid-value",
            Self::InvalidBody => "invalid-body",
            Self::BadRequest => "bad-request",
            Self::NotFound => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::PayloadTooLarge => "payload-too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::RateLimited => "rate-limited",
            Self::NotReady => "not-ready",
            Self::ClockRegression => "clock-regression",
            Self::Conflict => "conflict",
            Self::ReceiptExpired => "receipt-expired",
            Self::ClientError => "client-error",
            Self::Internal => "internal",
        }
    }

    /// The full `type` URI.
    pub fn uri(self) -> String {
        format!("urn:girder:problem:{}", self.code())
    }

    /// The type for a status produced outside Girder's handlers.
    fn for_status(status: StatusCode) -> Self {
        match status {
            StatusCode::BAD_REQUEST => Self::BadRequest,
            StatusCode::NOT_FOUND => Self::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType,
            StatusCode::UNPROCESSABLE_ENTITY => Self::InvalidBody,
            StatusCode::TOO_MANY_REQUESTS => Self::RateLimited,
            StatusCode::SERVICE_UNAVAILABLE => Self::NotReady,
            s if s.is_client_error() => Self::ClientError,
            _ => Self::Internal,
        }
    }
}

/// An RFC 9457 problem document, as sent on the wire.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Problem {
    /// A stable URN identifying the kind of problem, `urn:girder:problem:<code>`.
    #[serde(rename = "type")]
    pub type_: String,
    /// A short summary of the kind of problem (the status's reason phrase).
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request, for a person.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The request path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The request id (the `X-Request-Id` header) to quote when reporting the problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Which parameters were invalid, and why.
    #[serde(
        rename = "invalid-params",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub invalid_params: Vec<InvalidParam>,
}

/// One invalid parameter of a request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct InvalidParam {
    /// The parameter's name (`count`, `id`, or a JSON path in a body).
    pub name: String,
    /// Why it is invalid.
    pub reason: String,
}

/// An error a handler returns; rendered as a problem document.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    kind: ProblemType,
    detail: String,
    invalid_params: Vec<InvalidParam>,
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    /// An error with a status, a stable type and a detail message for people.
    pub fn new(status: StatusCode, kind: ProblemType, detail: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            detail: detail.into(),
            invalid_params: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// 400: a parameter could not be parsed.
    pub fn invalid_parameter(name: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Self::new(
            StatusCode::BAD_REQUEST,
            ProblemType::InvalidParameter,
            format!("invalid parameter `{name}`: {reason}"),
        )
        .with_param(name, reason)
    }

    /// 422: a parameter parsed, but its value is out of range.
    pub fn invalid_value(name: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ProblemType::InvalidValue,
            format!("invalid value for `{name}`: {reason}"),
        )
        .with_param(name, reason)
    }

    /// 500, with a detail that must not leak internals.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ProblemType::Internal,
            detail,
        )
    }

    /// Adds an entry to `invalid-params`.
    #[must_use]
    pub fn with_param(mut self, name: &str, reason: impl Into<String>) -> Self {
        self.invalid_params.push(InvalidParam {
            name: name.to_owned(),
            reason: reason.into(),
        });
        self
    }

    /// Adds a response header (`Retry-After`, `Allow`, ...).
    #[must_use]
    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = Problem {
            type_: self.kind.uri(),
            title: title(self.status),
            status: self.status.as_u16(),
            detail: Some(self.detail),
            instance: None,
            request_id: None,
            invalid_params: self.invalid_params,
        };
        let mut response = problem_response(&problem);
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

fn title(status: StatusCode) -> String {
    status.canonical_reason().unwrap_or("Error").to_owned()
}

fn problem_response(problem: &Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(problem).unwrap_or_default();
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
        body,
    )
        .into_response()
}

/// How much of a non-problem error body is kept as `detail`.
const MAX_DETAIL_BYTES: usize = 1024;

/// Middleware: every 4xx/5xx leaves as a problem document carrying `instance` and
/// `request_id`. Handlers' problems are completed; anything else is converted, keeping a
/// short plain-text body (axum's rejection messages) as `detail` and keeping headers such
/// as `Allow` and `Retry-After`.
pub async fn finish(request: Request, next: Next) -> Response {
    // CONNECT targets and origin-less forms have no path: show the request target then.
    let path = match request.uri().path() {
        "" => request.uri().to_string(),
        p => p.to_owned(),
    };
    let request_id = request.extensions().get::<RequestId>().cloned();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let is_problem = parts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    let is_text = parts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/plain"));
    let bytes = match http_body_util::Limited::new(body, 64 * 1024)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Default::default(),
    };
    let mut problem = if is_problem {
        serde_json::from_slice::<Problem>(&bytes).ok()
    } else {
        None
    }
    .unwrap_or_else(|| {
        let kind = ProblemType::for_status(status);
        let detail = if is_text && status.is_client_error() {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_DETAIL_BYTES)]);
            Some(text.trim().to_owned()).filter(|t| !t.is_empty())
        } else {
            None
        };
        Problem {
            type_: kind.uri(),
            title: title(status),
            status: status.as_u16(),
            detail: detail.or_else(|| default_detail(status, &path)),
            instance: None,
            request_id: None,
            invalid_params: Vec::new(),
        }
    });
    problem.instance = Some(path);
    problem.request_id = request_id.map(|id| id.as_str().to_owned());
    let fresh = problem_response(&problem);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    Response::from_parts(parts, fresh.into_body())
}

fn default_detail(status: StatusCode, path: &str) -> Option<String> {
    Some(match status {
        StatusCode::NOT_FOUND => format!("no route for {path}"),
        StatusCode::METHOD_NOT_ALLOWED => {
            format!("{path} does not support this method; see the Allow header")
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            "the request body is larger than the server accepts".into()
        }
        s if s.is_server_error() => {
            "the server failed to handle the request; quote request_id when reporting it".into()
        }
        _ => return None,
    })
}

/// `Query<T>` whose failures are problems naming the parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(rejection) => Err(query_error(&rejection)),
        }
    }
}

fn query_error(rejection: &QueryRejection) -> ApiError {
    // axum words it "Failed to deserialize query string: count: invalid digit ..."
    let text = rejection.body_text();
    let text = text
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(&text);
    match text.split_once(": ") {
        Some((name, reason)) if !name.contains(' ') => ApiError::invalid_parameter(name, reason),
        _ => ApiError::new(
            StatusCode::BAD_REQUEST,
            ProblemType::InvalidParameter,
            format!("invalid query string: {text}"),
        ),
    }
}

/// `Path<T>` whose failures are problems.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Self(v)),
            Err(rejection) => Err(path_error(&rejection)),
        }
    }
}

fn path_error(rejection: &PathRejection) -> ApiError {
    if rejection.status().is_server_error() {
        return ApiError::internal("route parameters are misconfigured");
    }
    ApiError::new(
        StatusCode::BAD_REQUEST,
        ProblemType::InvalidParameter,
        rejection.body_text(),
    )
}

/// `Json<T>` whose failures are problems: 415 without a JSON content type, 400 for
/// malformed JSON, 422 for JSON of the wrong shape, 413 for a body over the limit.
/// Every body is a JSON object: serde would take an array for a struct (its fields in
/// order), which no route documents, so anything else is a 422.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let bytes =
            axum::body::Bytes::from_request(Request::from_parts(parts.clone(), body), state)
                .await
                .map_err(|r| {
                    ApiError::new(
                        r.status(),
                        ProblemType::for_status(r.status()),
                        r.body_text(),
                    )
                })?;
        let object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) if object => Ok(Self(v)),
            Ok(_) => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ProblemType::InvalidBody,
                "the body must be a JSON object",
            )),
            Err(rejection) => Err(json_error(&rejection)),
        }
    }
}

fn json_error(rejection: &JsonRejection) -> ApiError {
    let status = rejection.status();
    let kind = match rejection {
        JsonRejection::MissingJsonContentType(_) => ProblemType::UnsupportedMediaType,
        JsonRejection::JsonDataError(_) | JsonRejection::JsonSyntaxError(_) => {
            ProblemType::InvalidBody
        }
        _ => ProblemType::for_status(status),
    };
    ApiError::new(status, kind, rejection.body_text())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_serializes_with_rfc9457_member_names() {
        let p = Problem {
            type_: ProblemType::InvalidValue.uri(),
            title: "Unprocessable Entity".into(),
            status: 422,
            detail: Some("d".into()),
            instance: Some("/v1/ids".into()),
            request_id: Some("r1".into()),
            invalid_params: vec![InvalidParam {
                name: "count".into(),
                reason: "too big".into(),
            }],
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["type"], "urn:girder:problem:invalid-value");
        assert_eq!(v["invalid-params"][0]["name"], "count");
        assert_eq!(serde_json::from_value::<Problem>(v).unwrap(), p);
    }

    #[test]
    fn every_status_maps_to_a_stable_type() {
        for (status, code) in [
            (404, "not-found"),
            (405, "method-not-allowed"),
            (413, "payload-too-large"),
            (415, "unsupported-media-type"),
            (422, "invalid-body"),
            (418, "client-error"),
            (502, "internal"),
        ] {
            let kind = ProblemType::for_status(StatusCode::from_u16(status).unwrap());
            assert_eq!(kind.code(), code, "{status}");
        }
    }
}
