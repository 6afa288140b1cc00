//! The one error type at the HTTP edge, answered as `application/problem+json` (RFC 9457)
//! with a stable `code`, a title in English and a message in Chinese. Database and internal
//! details go to the log, never to the client. The application's own errors
//! ([`AppError`]) know no status codes; [`status_of`] gives them theirs.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tiaojie_events::case::CaseError;
use tiaojie_events::group::GroupError;
use tiaojie_projections::store::Outcome;
use tiaojie_projections::StoreError;

use crate::app_error::{AppError, ErrorKind};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub title: String,
    pub detail_zh: String,
    /// Field-level problems for 400s.
    pub errors: Vec<FieldProblem>,
    /// Seconds for `Retry-After` (429 and 503; 2 when not set).
    pub retry_after: Option<u64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FieldProblem {
    /// A JSON pointer or parameter name.
    pub field: String,
    pub message: String,
}

/// The body of every error answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the problem type.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    /// The same in Chinese, for people.
    pub detail: String,
    /// Stable, for programs.
    pub code: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

pub type ApiResult<T> = Result<T, ApiError>;

pub use crate::health::STORE_DOWN;

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: &str,
        title: impl Into<String>,
        detail_zh: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            title: title.into(),
            detail_zh: detail_zh.into(),
            errors: vec![],
            retry_after: None,
        }
    }

    pub fn with_retry_after(mut self, d: std::time::Duration) -> Self {
        self.retry_after = Some(d.as_secs().max(1));
        self
    }

    /// Too many attempts from this caller: 429 with the wait.
    pub fn too_many(code: &str, en: &str, zh: &str, wait: std::time::Duration) -> Self {
        AppError::too_many(code, en, zh, wait).into()
    }

    pub fn bad_request(code: &str, title: impl Into<String>, detail_zh: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, title, detail_zh)
    }

    pub fn with_field(mut self, field: impl Into<String>, message: impl Into<String>) -> Self {
        self.errors.push(FieldProblem {
            field: field.into(),
            message: message.into(),
        });
        self
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "A valid bearer token is required",
            "需要有效的访问令牌",
        )
    }

    pub fn forbidden(why: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", why, "无权执行此操作")
    }

    pub fn forbidden_zh((en, zh): (&str, &str)) -> Self {
        AppError::forbidden_zh((en, zh)).into()
    }

    /// Outside the caller's mediation group.
    pub fn out_of_scope() -> Self {
        AppError::out_of_scope().into()
    }

    pub fn not_found(what: &str) -> Self {
        AppError::not_found(what).into()
    }

    pub fn unavailable() -> Self {
        AppError::unavailable().into()
    }

    pub fn internal() -> Self {
        AppError::internal().into()
    }

    pub fn store(e: StoreError) -> Self {
        AppError::store(e).into()
    }

    pub fn into_problem(self, request_id: Option<String>) -> Problem {
        Problem {
            type_: format!("https://tiaojie.invalid/problems/{}", self.code),
            title: self.title,
            status: self.status.as_u16(),
            detail: self.detail_zh,
            code: self.code,
            errors: self.errors,
            request_id,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::store(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        let retry = (status == StatusCode::SERVICE_UNAVAILABLE
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::INSUFFICIENT_STORAGE)
            .then(|| self.retry_after.unwrap_or(2));
        let unreachable = self.code == "store_unavailable";
        let body = serde_json::to_vec(&self.into_problem(None)).unwrap_or_default();
        let mut r = (status, body).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = retry {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if unreachable {
            r.headers_mut()
                .insert(STORE_DOWN, HeaderValue::from_static("1"));
        }
        r
    }
}

/// The status code that answers each kind of application error.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Invalid => StatusCode::BAD_REQUEST,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Gone => StatusCode::GONE,
        ErrorKind::Refused => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::VersionMismatch => StatusCode::PRECONDITION_FAILED,
        ErrorKind::TooMany => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::UnsupportedType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        ApiError {
            status: status_of(e.kind),
            code: e.code,
            title: e.title,
            detail_zh: e.detail_zh,
            errors: e
                .fields
                .into_iter()
                .map(|(field, message)| FieldProblem { field, message })
                .collect(),
            retry_after: e.retry_after.map(|d| d.as_secs().max(1)),
        }
    }
}

pub fn case_rule(e: CaseError) -> ApiError {
    AppError::case_rule(e).into()
}

pub fn group_rule(e: GroupError) -> ApiError {
    AppError::group_rule(e).into()
}

impl From<Outcome<CaseError>> for ApiError {
    fn from(o: Outcome<CaseError>) -> Self {
        AppError::from(o).into()
    }
}

impl From<Outcome<GroupError>> for ApiError {
    fn from(o: Outcome<GroupError>) -> Self {
        AppError::from(o).into()
    }
}
