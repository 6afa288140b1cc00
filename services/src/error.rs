//! The one error type at the HTTP edge, answered as `application/problem+json` (RFC 9457)
//! with a stable `code`, a title in English and a message in Chinese. Database and internal
//! details go to the log, never to the client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tiaojie_events::case::CaseError;
use tiaojie_events::group::GroupError;
use tiaojie_projections::error::StorageFault;
use tiaojie_projections::store::Outcome;
use tiaojie_projections::{CommandError, StoreError};

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

/// Set on an answer whose store did not answer; the HTTP layer takes it off and notes that
/// the store is down, so that the next requests fail fast.
pub const STORE_DOWN: &str = "x-tiaojie-store-down";

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
        Self::new(StatusCode::TOO_MANY_REQUESTS, code, en, zh).with_retry_after(wait)
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
        Self::new(StatusCode::FORBIDDEN, "forbidden", en, zh)
    }

    /// Outside the caller's mediation group.
    pub fn out_of_scope() -> Self {
        Self::forbidden_zh((
            "the case is not in one of your mediation group's communities",
            "该案件不在本矛盾调解小组负责的小区内",
        ))
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
            "未找到",
        )
    }

    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "The store is unavailable; try again shortly",
            "数据存储暂时不可用，请稍后重试",
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "系统内部错误，已记录",
        )
    }

    pub fn store(e: StoreError) -> Self {
        if let StoreError::Key(why) = &e {
            tracing::error!(error = %why, "the master key does not open the data keys");
            return Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "key_unavailable",
                "The configured master key does not open this store's data keys; an operator must configure the right key",
                "系统主密钥与数据不匹配，无法读取加密内容，请联系运维人员配置正确的主密钥",
            );
        }
        if let StoreError::Storage { fault, detail } = &e {
            tracing::warn!(error = %detail, ?fault, "the store cannot write");
            return match fault {
                StorageFault::Full => Self::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "insufficient_storage",
                    "The store's disk is full; nothing was written. Retry once space is freed",
                    "数据存储空间已满，本次操作未保存，请联系运维人员清理空间后重试",
                )
                .with_retry_after(std::time::Duration::from_secs(30)),
                StorageFault::ReadOnly => Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_read_only",
                    "The store is read-only at the moment; nothing was written. Retry later",
                    "数据存储当前为只读状态，本次操作未保存，请稍后重试",
                )
                .with_retry_after(std::time::Duration::from_secs(10)),
                StorageFault::Io => Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_failing",
                    "The store's disk reports errors; retry later",
                    "数据存储设备出错，请稍后重试",
                )
                .with_retry_after(std::time::Duration::from_secs(10)),
            };
        }
        if e.is_unavailable() {
            tracing::warn!(error = %e, "store unavailable");
            Self::unavailable()
        } else {
            tracing::error!(error = %e, "store error");
            Self::internal()
        }
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

fn command_error<E: std::error::Error>(
    e: CommandError<E>,
    rule: impl Fn(E) -> ApiError,
) -> ApiError {
    match e {
        CommandError::Rule(e) => rule(e),
        CommandError::VersionMismatch { expected, actual } => ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "version_mismatch",
            format!("The record is at version {actual}, not {expected}: reload it and try again"),
            format!("记录已被他人更新（当前版本 {actual}，您的版本 {expected}），请刷新后重试"),
        ),
        CommandError::Conflict(n) => ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("The record kept changing concurrently; gave up after {n} attempts"),
            "记录正被同时修改，请稍后重试",
        ),
        CommandError::Unstorable(why) => {
            tracing::warn!(reason = %why, "refused a command whose events would not read back");
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unstorable_event",
                format!("The record cannot be stored faithfully, so nothing was stored: {why}"),
                "该记录含有无法如实保存的内容（如特殊字符或超出范围的数值），未保存任何内容，请检查后重试",
            )
        }
        CommandError::CaseErased => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "case_erased",
            "This case's text was erased (retention or erasure); no new text can be recorded for it",
            "该案件的文字记录已按规定删除，不能再添加文字内容",
        ),
        CommandError::Store(s) => ApiError::store(s),
    }
}

pub fn case_rule(e: CaseError) -> ApiError {
    match e {
        CaseError::NotFound => ApiError::new(
            StatusCode::NOT_FOUND,
            e.code(),
            e.to_string(),
            e.message_zh(),
        ),
        CaseError::Unavailable(_) => ApiError::unavailable(),
        _ => {
            let field = e.field();
            let err = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                e.code(),
                e.to_string(),
                e.message_zh(),
            );
            match field {
                Some(f) => {
                    let message = e.to_string();
                    err.with_field(f, message)
                }
                None => err,
            }
        }
    }
}

pub fn group_rule(e: GroupError) -> ApiError {
    match e {
        GroupError::NotFound => ApiError::new(
            StatusCode::NOT_FOUND,
            e.code(),
            e.to_string(),
            e.message_zh(),
        ),
        GroupError::Unavailable(_) => ApiError::unavailable(),
        _ => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            e.code(),
            e.to_string(),
            e.message_zh(),
        ),
    }
}

impl From<Outcome<CaseError>> for ApiError {
    fn from(o: Outcome<CaseError>) -> Self {
        match o {
            Outcome::Denied(_) => ApiError::out_of_scope(),
            Outcome::Failed(e) => command_error(e, case_rule),
        }
    }
}

impl From<Outcome<GroupError>> for ApiError {
    fn from(o: Outcome<GroupError>) -> Self {
        match o {
            Outcome::Denied(_) => ApiError::out_of_scope(),
            Outcome::Failed(e) => command_error(e, group_rule),
        }
    }
}
