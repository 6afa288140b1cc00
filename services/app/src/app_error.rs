//! The application layer's error: what went wrong, in words for programs (`code`), in
//! English (`title`) and in Chinese (`detail_zh`), with the fields it is about. It knows no
//! HTTP: the JSON API turns it into problem+json with a status code
//! (`tiaojie_http::error::ApiError`), the web pages into a message next to the field.

use std::time::Duration;

use tiaojie_events::case::CaseError;
use tiaojie_events::group::GroupError;
use tiaojie_projections::error::StorageFault;
use tiaojie_projections::store::Outcome;
use tiaojie_projections::{CommandError, StoreError};

/// What kind of failure it is; each edge maps kinds to its own answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input cannot be understood (a malformed id, an unknown parameter value).
    Invalid,
    /// The caller is who they say, but may not do this.
    Forbidden,
    NotFound,
    /// It existed, and was erased.
    Gone,
    /// Understood, but a rule refuses it (a domain rule, an erased case, …).
    Refused,
    /// The record kept changing concurrently.
    Conflict,
    /// The caller's version of the record is not the current one.
    VersionMismatch,
    /// Too many attempts from this caller; `retry_after` says how long to wait.
    TooMany,
    /// The store cannot be reached or cannot write at the moment.
    Unavailable,
    /// The store's disk is full.
    StorageFull,
    /// The upload is larger than allowed.
    TooLarge,
    /// The upload's content is not of a type that is taken.
    UnsupportedType,
    /// A fault of ours; the details are in the log.
    Internal,
}

#[derive(Debug, Clone)]
pub struct AppError {
    pub kind: ErrorKind,
    /// Stable, for programs.
    pub code: String,
    /// English, for people.
    pub title: String,
    /// Chinese, for people.
    pub detail_zh: String,
    /// The input fields the error is about, with a message for each.
    pub fields: Vec<(String, String)>,
    /// How long to wait before trying again, when that helps.
    pub retry_after: Option<Duration>,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(
        kind: ErrorKind,
        code: &str,
        title: impl Into<String>,
        detail_zh: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            code: code.into(),
            title: title.into(),
            detail_zh: detail_zh.into(),
            fields: vec![],
            retry_after: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>, message: impl Into<String>) -> Self {
        self.fields.push((field.into(), message.into()));
        self
    }

    pub fn with_retry_after(mut self, d: Duration) -> Self {
        self.retry_after = Some(d);
        self
    }

    pub fn invalid(code: &str, title: impl Into<String>, detail_zh: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, code, title, detail_zh)
    }

    pub fn gone(code: &str, title: impl Into<String>, detail_zh: impl Into<String>) -> Self {
        Self::new(ErrorKind::Gone, code, title, detail_zh)
    }

    pub fn refused(code: &str, title: impl Into<String>, detail_zh: impl Into<String>) -> Self {
        Self::new(ErrorKind::Refused, code, title, detail_zh)
    }

    pub fn too_many(code: &str, en: &str, zh: &str, wait: Duration) -> Self {
        Self::new(ErrorKind::TooMany, code, en, zh).with_retry_after(wait)
    }

    pub fn forbidden_zh((en, zh): (&str, &str)) -> Self {
        Self::new(ErrorKind::Forbidden, "forbidden", en, zh)
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
            ErrorKind::NotFound,
            "not_found",
            format!("{what} not found"),
            "未找到",
        )
    }

    pub fn unavailable() -> Self {
        Self::new(
            ErrorKind::Unavailable,
            "store_unavailable",
            "The store is unavailable; try again shortly",
            "数据存储暂时不可用，请稍后重试",
        )
    }

    pub fn internal() -> Self {
        Self::new(
            ErrorKind::Internal,
            "internal",
            "Internal error",
            "系统内部错误，已记录",
        )
    }

    /// A store error, as the caller may see it; the details go to the log.
    pub fn store(e: StoreError) -> Self {
        if let StoreError::Key(why) = &e {
            tracing::error!(error = %why, "the master key does not open the data keys");
            return Self::new(
                ErrorKind::Unavailable,
                "key_unavailable",
                "The configured master key does not open this store's data keys; an operator must configure the right key",
                "系统主密钥与数据不匹配，无法读取加密内容，请联系运维人员配置正确的主密钥",
            );
        }
        if let StoreError::Storage { fault, detail } = &e {
            tracing::warn!(error = %detail, ?fault, "the store cannot write");
            return match fault {
                StorageFault::Full => Self::new(
                    ErrorKind::StorageFull,
                    "insufficient_storage",
                    "The store's disk is full; nothing was written. Retry once space is freed",
                    "数据存储空间已满，本次操作未保存，请联系运维人员清理空间后重试",
                )
                .with_retry_after(Duration::from_secs(30)),
                StorageFault::ReadOnly => Self::new(
                    ErrorKind::Unavailable,
                    "storage_read_only",
                    "The store is read-only at the moment; nothing was written. Retry later",
                    "数据存储当前为只读状态，本次操作未保存，请稍后重试",
                )
                .with_retry_after(Duration::from_secs(10)),
                StorageFault::Io => Self::new(
                    ErrorKind::Unavailable,
                    "storage_failing",
                    "The store's disk reports errors; retry later",
                    "数据存储设备出错，请稍后重试",
                )
                .with_retry_after(Duration::from_secs(10)),
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

    /// A case rule's refusal.
    pub fn case_rule(e: CaseError) -> Self {
        match e {
            CaseError::NotFound => {
                Self::new(ErrorKind::NotFound, e.code(), e.to_string(), e.message_zh())
            }
            CaseError::Unavailable(_) => Self::unavailable(),
            _ => {
                let err = Self::refused(e.code(), e.to_string(), e.message_zh());
                match e.field() {
                    Some(f) => err.with_field(f, e.to_string()),
                    None => err,
                }
            }
        }
    }

    /// A group rule's refusal.
    pub fn group_rule(e: GroupError) -> Self {
        match e {
            GroupError::NotFound => {
                Self::new(ErrorKind::NotFound, e.code(), e.to_string(), e.message_zh())
            }
            GroupError::Unavailable(_) => Self::unavailable(),
            _ => Self::refused(e.code(), e.to_string(), e.message_zh()),
        }
    }

    fn command<E: std::error::Error>(e: CommandError<E>, rule: impl Fn(E) -> Self) -> Self {
        match e {
            CommandError::Rule(e) => rule(e),
            CommandError::VersionMismatch { expected, actual } => Self::new(
                ErrorKind::VersionMismatch,
                "version_mismatch",
                format!(
                    "The record is at version {actual}, not {expected}: reload it and try again"
                ),
                format!("记录已被他人更新（当前版本 {actual}，您的版本 {expected}），请刷新后重试"),
            ),
            CommandError::Conflict(n) => Self::new(
                ErrorKind::Conflict,
                "conflict",
                format!("The record kept changing concurrently; gave up after {n} attempts"),
                "记录正被同时修改，请稍后重试",
            ),
            CommandError::Unstorable(why) => {
                tracing::warn!(reason = %why, "refused a command whose events would not read back");
                Self::refused(
                    "unstorable_event",
                    format!("The record cannot be stored faithfully, so nothing was stored: {why}"),
                    "该记录含有无法如实保存的内容（如特殊字符或超出范围的数值），未保存任何内容，请检查后重试",
                )
            }
            CommandError::CaseErased => Self::refused(
                "case_erased",
                "This case's text was erased (retention or erasure); no new text can be recorded for it",
                "该案件的文字记录已按规定删除，不能再添加文字内容",
            ),
            CommandError::Party(p) if p.erased => Self::refused(
                "party_erased",
                format!(
                    "party {}'s data was erased; it cannot be named on a case",
                    p.party_id
                ),
                "该当事人信息已删除，不能再列为当事人",
            )
            .with_field("parties", p.party_id),
            CommandError::Party(p) => Self::refused(
                "unregistered_party",
                format!(
                    "party {} is not in the party registry; register the party first",
                    p.party_id
                ),
                "该当事人尚未登记，请先在当事人登记中登记",
            )
            .with_field("parties", p.party_id),
            CommandError::Store(s) => Self::store(s),
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        AppError::store(StoreError::from(e))
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError::store(e)
    }
}

impl From<Outcome<CaseError>> for AppError {
    fn from(o: Outcome<CaseError>) -> Self {
        match o {
            // Members must not learn that a case outside their scope exists.
            Outcome::Denied(_) => AppError::out_of_scope(),
            Outcome::Failed(e) => AppError::command(e, AppError::case_rule),
        }
    }
}

impl From<Outcome<GroupError>> for AppError {
    fn from(o: Outcome<GroupError>) -> Self {
        match o {
            Outcome::Denied(_) => AppError::out_of_scope(),
            Outcome::Failed(e) => AppError::command(e, AppError::group_rule),
        }
    }
}
