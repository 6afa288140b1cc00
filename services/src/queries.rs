//! The query service: what every edge (the JSON API, the web pages) needs to read, with
//! the checks applied once. Read-your-writes (`await_consistency`), the audit export, who
//! may read the audit trail, and the text filter. It answers with [`AppError`], never with
//! HTTP.

use std::time::{Duration, Instant};

use sqlx::Row;
use tiaojie_projections::models::audit::{self, AuditFilter};
use tiaojie_projections::on_db;

use crate::app::App;
use crate::app_error::{AppError, AppResult, ErrorKind};
use crate::auth::Actor;

/// A command's consistency token: `AggregateType:id:version`.
pub fn consistency_token(aggregate_type: &str, id: &str, version: u64) -> String {
    format!("{aggregate_type}:{id}:{version}")
}

/// Read-your-writes: waits (bounded) until every read model includes the write named by a
/// consistency token. Answers 503 `not_yet_consistent` when the wait runs out.
pub async fn await_consistency(app: &App, token: Option<&str>) -> AppResult<()> {
    let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(());
    };
    let bad = || {
        AppError::invalid(
            "invalid_consistency_token",
            "consistent_with must be a consistency token from a command's answer",
            "一致性令牌无效",
        )
    };
    let mut parts = token.splitn(3, ':');
    let (Some(atype), Some(id), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    if !matches!(atype, "Case" | "MediationGroup") || id.len() > 64 {
        return Err(bad());
    }
    let version: i64 = version.parse().map_err(|_| bad())?;
    // A write that does not exist yet cannot be waited for: answered at once, so that such
    // tokens cannot hold request slots for the whole wait.
    let current: Option<i64> = on_db!(&app.db, p => {
        sqlx::query_scalar("SELECT MAX(sequence) FROM events WHERE aggregate_type = $1 AND aggregate_id = $2")
            .bind(atype)
            .bind(id)
            .fetch_one(p)
            .await
            .map_err(tiaojie_projections::StoreError::from)?
    });
    if version < 1 || current.is_none_or(|c| version > c) {
        return Err(AppError::invalid(
            "unknown_write",
            "consistent_with names a write that has not happened",
            "一致性令牌指向的记录不存在",
        )
        .with_field("consistent_with", "past the record's current version"));
    }
    let deadline = Instant::now() + Duration::from_millis(app.settings.consistency_wait_ms);
    loop {
        let position: Option<i64> = on_db!(&app.db, p => {
            sqlx::query("SELECT position FROM event_log WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3")
                .bind(atype)
                .bind(id)
                .bind(version)
                .fetch_optional(p)
                .await
                .map_err(tiaojie_projections::StoreError::from)?
                .map(|r| r.try_get::<i64, _>(0))
                .transpose()
                .map_err(tiaojie_projections::StoreError::from)?
        });
        let left = deadline.saturating_duration_since(Instant::now());
        if let Some(position) = position {
            if app.read.wait_for_position(position, left).await {
                return Ok(());
            }
            break;
        }
        if left.is_zero() {
            break;
        }
        app.stores.committed.notify_one();
        tokio::time::sleep(Duration::from_millis(20).min(left)).await;
    }
    Err(AppError::new(
        ErrorKind::Unavailable,
        "not_yet_consistent",
        "The read models do not include that write yet; retry shortly",
        "数据正在更新，请稍后重试",
    ))
}

/// Only supervision offices read the audit trail.
pub fn require_auditor(actor: &Actor) -> AppResult<()> {
    if actor.reads_audit() {
        Ok(())
    } else {
        Err(AppError::forbidden_zh((
            "only supervision offices read the audit trail",
            "只有督查室可以查看审计记录",
        )))
    }
}

fn bad_cursor(e: Option<tiaojie_projections::StoreError>) -> AppError {
    match e {
        Some(s) => AppError::store(s),
        None => AppError::invalid("invalid_cursor", "The cursor is not valid", "分页游标无效"),
    }
}

fn csv_field(s: &str) -> String {
    // Quote every field; double quotes inside; neutralise spreadsheet formulas.
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The audit trail as CSV text (UTF-8 with a BOM), oldest first, up to 100,000 rows.
pub async fn audit_csv(app: &App, mut f: AuditFilter) -> AppResult<String> {
    f.ascending = true;
    f.limit = 1000;
    let mut out = String::from("\u{feff}");
    out.push_str("位置 position,记录时间 recorded_at (UTC),业务时间 business_at (UTC),类型 event_type,摘要 summary,案件 case_id,小组 group_id,小区 community,片区 district,操作人 actor_id,姓名 actor_name,角色 role,单位 organisation,请求 request_id,追踪 trace_id,链哈希 chain_hash\r\n");
    let mut rows = 0;
    loop {
        let page = audit::list(&app.db, &f).await.map_err(bad_cursor)?;
        for e in &page.items {
            let fields = [
                e.position.to_string(),
                e.recorded_at.clone(),
                e.business_at.clone().unwrap_or_default(),
                e.event_type.clone(),
                e.summary_zh.clone(),
                e.case_id.clone().unwrap_or_default(),
                e.group_id.clone().unwrap_or_default(),
                e.community.clone().unwrap_or_default(),
                e.district.clone().unwrap_or_default(),
                e.actor_id.clone(),
                e.actor_name.clone(),
                e.role.clone(),
                e.organisation.clone(),
                e.request_id.clone(),
                e.trace_id.clone().unwrap_or_default(),
                e.chain_hash.clone(),
            ];
            out.push_str(
                &fields
                    .iter()
                    .map(|s| csv_field(s))
                    .collect::<Vec<_>>()
                    .join(","),
            );
            out.push_str("\r\n");
        }
        rows += page.items.len();
        match page.next_cursor {
            Some(c) if rows < 100_000 => f.cursor = Some(c),
            _ => break,
        }
    }
    Ok(out)
}

pub const MAX_TEXT_FILTER: usize = 100;

/// A free-text filter from the query; refused when longer than [`MAX_TEXT_FILTER`].
pub fn text_param(given: Option<&str>) -> AppResult<Option<String>> {
    match given.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) if t.chars().count() <= MAX_TEXT_FILTER && !t.chars().any(char::is_control) => {
            Ok(Some(t.to_string()))
        }
        Some(_) => Err(AppError::invalid(
            "invalid_query",
            format!(
                "text must be at most {MAX_TEXT_FILTER} characters, without control characters"
            ),
            format!("搜索内容不能超过{MAX_TEXT_FILTER}个字"),
        )
        .with_field("text", format!("at most {MAX_TEXT_FILTER} characters"))),
    }
}
