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
use crate::queries::{audit_csv as csv, require_auditor};

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
    /// Exports only: the headers and names, zh (default) or en.
    pub lang: Option<String>,
    /// Exports only: the times, UTC or an offset such as +08:00 (Beijing, the default).
    pub tz: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    pub next_cursor: Option<String>,
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
    let mut f = filter(&q, 100)?;
    f.aggregate = crate::numbering::case_ref(&app, f.aggregate).await?;
    let page = audit::list(&app.db, &f).await.map_err(bad_cursor)?;
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

/// An export's filter: the list's, in pages of 1,000, for supervision offices only.
async fn export_filter(app: &App, actor: &Actor, q: &AuditQuery) -> ApiResult<AuditFilter> {
    require_auditor(actor)?;
    let mut f = filter(q, 1000)?;
    f.aggregate = crate::numbering::case_ref(app, f.aggregate).await?;
    Ok(f)
}

/// The audit trail as CSV (UTF-8 with BOM), with the same filters, up to 100,000 rows:
/// local times (`tz`), Chinese or English headers and names (`lang`), and the codes after
/// them for machines.
#[utoipa::path(get, path = "/api/v1/audit/export", tag = "supervision", params(AuditQuery),
    responses((status = 200, description = "text/csv; UTF-8 with BOM", content_type = "text/csv"), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn export(
    State(app): State<App>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Response> {
    let f = export_filter(&app, &actor, &q).await?;
    let options =
        crate::queries::CsvOptions::parse(&app, q.lang.as_deref(), q.tz.as_deref(), false)?;
    let rows = csv(&app, f, options).await?;
    let mut r = axum::body::Body::from_stream(rows).into_response();
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

/// The audit trail as an Excel workbook (supervision offices), with the list's filters:
/// Beijing time, case numbers, community names, what happened in Chinese, who, and the
/// chain hash of each row.
#[utoipa::path(get, path = "/api/v1/exports/audit.xlsx", tag = "exports", params(AuditQuery),
    responses((status = 200, description = "The audit trail", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn export_xlsx(
    State(app): State<App>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Response> {
    let f = export_filter(&app, &actor, &q).await?;
    let bytes = tiaojie_app::exports::audit_xlsx(&app, f).await?;
    Ok(super::cases::xlsx(
        bytes,
        &format!("tiaojie-audit-{}.xlsx", app.today()),
    ))
}
