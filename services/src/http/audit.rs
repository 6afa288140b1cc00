//! `/api/v1/audit`: the audit trail for supervision offices, its verification and its
//! export as CSV (UTF-8 with a BOM, so that Excel shows the Chinese correctly).

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use tiaojie_events::Timestamp;
use tiaojie_projections::log::{self, Verification};
use tiaojie_projections::models::audit::{self, AuditEntry, AuditFilter};
use utoipa::{IntoParams, ToSchema};

use super::await_consistency;
use super::extract::{ApiQuery, Auth};
use crate::app::App;
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult, Problem};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// A case (or group) id.
    pub case: Option<String>,
    /// An actor (token) id.
    pub actor: Option<String>,
    pub community: Option<String>,
    /// From this recorded time (RFC 3339, inclusive).
    pub from: Option<String>,
    /// Until this recorded time (exclusive).
    pub to: Option<String>,
    /// 1 to 1000; 100 by default.
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// Oldest first when true; newest first by default.
    pub ascending: Option<bool>,
    pub consistent_with: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    pub next_cursor: Option<String>,
}

pub fn require_auditor(actor: &Actor) -> ApiResult<()> {
    if actor.reads_audit() {
        Ok(())
    } else {
        Err(ApiError::forbidden_zh((
            "only supervision offices read the audit trail",
            "只有督查室可以查看审计记录",
        )))
    }
}

fn time_param(s: &Option<String>, field: &str) -> ApiResult<Option<String>> {
    match s {
        None => Ok(None),
        Some(s) => Timestamp::parse(s)
            .map(|t| Some(t.to_canonical()))
            .map_err(|_| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("{field} must be an RFC 3339 time"),
                    "时间格式不正确",
                )
                .with_field(field, s.clone())
            }),
    }
}

fn filter(q: &AuditQuery, limit: i64) -> ApiResult<AuditFilter> {
    Ok(AuditFilter {
        aggregate: q.case.clone(),
        actor: q.actor.clone(),
        community: q.community.clone(),
        from: time_param(&q.from, "from")?,
        to: time_param(&q.to, "to")?,
        limit: super::extract::limit_param(q.limit, limit, 1000)?,
        ascending: q.ascending.unwrap_or(false),
        cursor: q.cursor.clone(),
    })
}

fn bad_cursor(e: Option<tiaojie_projections::StoreError>) -> ApiError {
    match e {
        Some(s) => ApiError::store(s),
        None => ApiError::bad_request("invalid_cursor", "The cursor is not valid", "分页游标无效"),
    }
}

/// The audit trail, filtered and paginated.
#[utoipa::path(get, path = "/api/v1/audit", tag = "supervision", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn list(
    State(app): State<App>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    require_auditor(&actor)?;
    await_consistency(&app, q.consistent_with.as_deref()).await?;
    let page = audit::list(&app.db, &filter(&q, 100)?)
        .await
        .map_err(bad_cursor)?;
    Ok(Json(AuditPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// Recomputes every hash from the stored events and checks both chains.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "supervision",
    responses((status = 200, body = Verification), (status = 401, body = Problem), (status = 403, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn verify(State(app): State<App>, Auth(actor): Auth) -> ApiResult<Json<Verification>> {
    require_auditor(&actor)?;
    Ok(Json(log::verify(&app.db).await?))
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
pub async fn csv(app: &App, mut f: AuditFilter) -> ApiResult<String> {
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

/// The audit trail as CSV (UTF-8 with BOM), with the same filters, up to 100,000 rows.
#[utoipa::path(get, path = "/api/v1/audit/export", tag = "supervision", params(AuditQuery),
    responses((status = 200, description = "text/csv; UTF-8 with BOM", content_type = "text/csv"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn export(
    State(app): State<App>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Response> {
    require_auditor(&actor)?;
    let out = csv(&app, filter(&q, 1000)?).await?;
    let mut r = out.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    r.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"tiaojie-audit.csv\""),
    );
    Ok(r)
}
