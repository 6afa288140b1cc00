//! `/api/v1/cases`: the commands of the Case aggregate and the case queries.

use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use tiaojie_events::case::*;
use tiaojie_events::metadata::EventMetadata;
use tiaojie_events::{CaseId, IncidentId};
use tiaojie_projections::models::case_status::{self, CaseFilter, CaseView, QueryError, Sort};
use tiaojie_projections::models::Page;
use utoipa::{IntoParams, ToSchema};

use super::dto::*;
use super::extract::{parse_id, ApiJson, ApiQuery, Auth, Meta};
use super::idempotency::{self, command_answer};
use super::openapi::CommandErrors;
use super::{await_consistency, consistency_token};
use crate::app::App;
use crate::auth::Actor;
use crate::commands::{self, RequestMeta};
use crate::error::{ApiError, ApiResult, Problem};

fn case_id(raw: &str) -> ApiResult<CaseId> {
    parse_id(raw, "case", CaseId::parse)
}

#[allow(clippy::too_many_arguments)]
async fn exec(
    app: &App,
    actor: &Actor,
    meta: &RequestMeta,
    uri: &Uri,
    id: CaseId,
    expected: Option<u64>,
    body: &impl Serialize,
    created: Option<String>,
    status: StatusCode,
    command: CaseCommand,
) -> ApiResult<Response> {
    idempotency::run(app, actor, meta, "POST", uri.path(), body, || async move {
        let o = commands::case_command(app, actor, meta, &id, command, expected).await?;
        Ok(command_answer("Case", "/api/v1/cases", o, created, status))
    })
    .await
}

pub use crate::commands::guard_case_step;

/// The JSON body, read only once the caller has been authorised.
async fn body<T: serde::de::DeserializeOwned>(app: &App, req: Request) -> ApiResult<T> {
    ApiJson::<T>::from_request(req, app)
        .await
        .map(|ApiJson(b)| b)
}

/// Opens a case: a resident objection, or a construction obstruction with its incident.
#[utoipa::path(post, path = "/api/v1/cases", tag = "cases",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a repeat return the first answer")),
    request_body = OpenCaseBody,
    responses((status = 201, description = "Opened", body = CommandAnswer), CommandErrors),
    security(("bearer" = [])))]
pub async fn open_case(
    State(app): State<App>,
    Auth(actor): Auth,
    Meta(meta): Meta,
    req: Request,
) -> ApiResult<Response> {
    crate::auth::may_run_case_step(actor.role, "open_case").map_err(ApiError::forbidden_zh)?;
    let uri = req.uri().clone();
    let body: OpenCaseBody = self::body(&app, req).await?;
    let id = CaseId::new();
    app.stores.note_new_case(&id.to_string());
    let incident_id = body.incident.as_ref().map(|_| IncidentId::new());
    let command = CaseCommand::OpenCase(OpenCase {
        kind: body.kind,
        community: body.community.clone(),
        category: body.category.clone(),
        summary: body.summary.clone(),
        occurred_at: body.occurred_at,
        channel: body.channel,
        parties: body.parties.clone(),
        incident: body
            .incident
            .clone()
            .zip(incident_id)
            .map(|(b, i)| b.into_input(i)),
    });
    exec(
        &app,
        &actor,
        &meta,
        &uri,
        id,
        None,
        &body,
        incident_id.map(|i| i.to_string()),
        StatusCode::CREATED,
        command,
    )
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CaseListQuery {
    /// One or more statuses, comma-separated: reported, accepted, in_mediation, agreed, failed, escalated, closed, withdrawn.
    pub status: Option<String>,
    pub kind: Option<CaseKind>,
    /// One or more community codes, comma-separated.
    pub community: Option<String>,
    pub district: Option<String>,
    pub overdue: Option<bool>,
    /// `true`: only cases that name a repeat obstructor.
    pub repeat_obstructor: Option<bool>,
    /// `soon` (due within 3 days, not yet late), `orders` (a supervision order awaits its
    /// answer) or a clock's name (acceptance, mediation, extension, follow_up, performance,
    /// judicial_confirmation, escalation_reply, supervision_order): what the reminders count.
    pub due: Option<String>,
    /// `true`: only the cases the caller holds as their mediator.
    pub mine: Option<bool>,
    /// Words to look for in the summary.
    pub text: Option<String>,
    /// `recent` (default) or `due` (most urgent first).
    pub sort: Option<Sort>,
    /// 1 to 500; 50 by default.
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// A command's consistency token: wait until the read models include that write.
    pub consistent_with: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CasePage {
    pub items: Vec<CaseView>,
    pub next_cursor: Option<String>,
}

impl From<Page<CaseView>> for CasePage {
    fn from(p: Page<CaseView>) -> Self {
        Self {
            items: p.items,
            next_cursor: p.next_cursor,
        }
    }
}

fn list_of(s: &Option<String>) -> Vec<String> {
    s.as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

fn require_case_reader(actor: &Actor) -> ApiResult<()> {
    if actor.reads_cases() {
        Ok(())
    } else {
        Err(ApiError::forbidden_zh((
            "this role does not read cases",
            "该账号不能查看案件",
        )))
    }
}

/// Lists cases, with filters and cursor pagination. Members and leaders see only their
/// group's communities.
#[utoipa::path(get, path = "/api/v1/cases", tag = "cases", params(CaseListQuery),
    responses((status = 200, body = CasePage), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_cases(
    State(app): State<App>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<CaseListQuery>,
) -> ApiResult<Json<CasePage>> {
    require_case_reader(&actor)?;
    await_consistency(&app, q.consistent_with.as_deref()).await?;
    let statuses = list_of(&q.status);
    for s in &statuses {
        if CaseStatus::parse(s).is_none() {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("unknown status {s:?}"),
                "案件状态不正确",
            )
            .with_field("status", s.clone()));
        }
    }
    let filter = case_filter(&app, &actor, &q, statuses).await?;
    let mask = crate::masking::ListMask(app.clone());
    let mask = crate::masking::masks_for(&actor).then_some(&mask as &dyn case_status::SummaryMask);
    let mut page = case_status::list(&app.db, &app.keys, &filter, &app.now(), mask)
        .await
        .map_err(|e| match e {
            QueryError::BadCursor => {
                ApiError::bad_request("invalid_cursor", "The cursor is not valid", "分页游标无效")
            }
            QueryError::Store(s) => ApiError::store(s),
        })?;
    crate::numbering::fill(&app, &mut page.items).await?;
    Ok(Json(page.into()))
}

/// The list's filter from its query, within the caller's communities.
pub(crate) async fn case_filter(
    app: &App,
    actor: &Actor,
    q: &CaseListQuery,
    statuses: Vec<String>,
) -> ApiResult<CaseFilter> {
    let scope = commands::scope(app, actor).await?;
    let mut f = CaseFilter {
        status: statuses,
        kind: q.kind.map(|k| k.as_str().to_string()),
        communities: list_of(&q.community),
        district: q.district.clone(),
        overdue: q.overdue,
        text: super::extract::text_param(q.text.as_deref())?,
        visible_communities: scope.map(|s| s.into_iter().map(|c| c.to_string()).collect()),
        naming_parties: if q.repeat_obstructor == Some(true) {
            Some(tiaojie_app::queries::repeat_obstructor_ids(app, actor).await?)
        } else {
            None
        },
        sort: q.sort.unwrap_or_default(),
        limit: super::extract::limit_param(q.limit, 50, 500)?,
        cursor: q.cursor.clone(),
        ..Default::default()
    };
    tiaojie_app::queries::narrow_by_due(
        app,
        actor,
        q.due.as_deref(),
        q.mine == Some(true),
        &mut f,
    )?;
    Ok(f)
}

/// The case ledger (台账) as an Excel workbook, with the list's filters (`limit` and
/// `cursor` are ignored: every matching case, up to 20,000). Chinese headers, Beijing time,
/// names rather than codes, parties as the caller may see them.
#[utoipa::path(get, path = "/api/v1/exports/cases.xlsx", tag = "exports", params(CaseListQuery),
    responses((status = 200, description = "The ledger", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn cases_xlsx(
    State(app): State<App>,
    Auth(actor): Auth,
    super::extract::Meta(meta): super::extract::Meta,
    ApiQuery(q): ApiQuery<CaseListQuery>,
) -> ApiResult<axum::response::Response> {
    require_case_reader(&actor)?;
    let statuses = list_of(&q.status);
    if let Some(s) = statuses.iter().find(|s| CaseStatus::parse(s).is_none()) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("unknown status {s:?}"),
            "案件状态不正确",
        )
        .with_field("status", s.clone()));
    }
    let mut filter = case_filter(&app, &actor, &q, statuses).await?;
    filter.cursor = None;
    let bytes = tiaojie_app::exports::cases_xlsx(&app, &actor, &meta, filter).await?;
    Ok(xlsx(bytes, &format!("tiaojie-cases-{}.xlsx", app.today())))
}

/// An Excel workbook as a download.
pub(crate) fn xlsx(bytes: Vec<u8>, name: &str) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    use axum::response::IntoResponse;
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    use tiaojie_app::exports::{attachment_disposition, XLSX_MEDIA_TYPE};
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(XLSX_MEDIA_TYPE),
    );
    if let Ok(v) = HeaderValue::from_str(&attachment_disposition(name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    /// A command's consistency token: wait until the read models include that write.
    pub consistent_with: Option<String>,
}

async fn check_case_scope(app: &App, actor: &Actor, community: &str) -> ApiResult<()> {
    if let Some(scope) = commands::scope(app, actor).await? {
        if !scope.iter().any(|c| c.as_str() == community) {
            return Err(ApiError::out_of_scope());
        }
    }
    Ok(())
}

/// One case, from the case-status read model.
#[utoipa::path(get, path = "/api/v1/cases/{id}", tag = "cases",
    params(("id" = String, Path, description = "Case id"), ConsistencyQuery),
    responses((status = 200, body = CaseView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_case(
    State(app): State<App>,
    Auth(actor): Auth,
    Path(raw): Path<String>,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> ApiResult<Response> {
    require_case_reader(&actor)?;
    let id = case_id(&raw)?;
    await_consistency(&app, q.consistent_with.as_deref()).await?;
    one_case(&app, &actor, id).await
}

/// One case by its number, e.g. `西关北街调〔2026〕12号` (URL-encoded).
#[utoipa::path(get, path = "/api/v1/cases/by-number/{number}", tag = "cases",
    params(("number" = String, Path, description = "The case number, URL-encoded")),
    responses((status = 200, body = CaseView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn case_by_number(
    State(app): State<App>,
    Auth(actor): Auth,
    Path(number): Path<String>,
) -> ApiResult<Response> {
    require_case_reader(&actor)?;
    let Some(id) = crate::numbering::find(&app, &number).await? else {
        return Err(ApiError::not_found("case"));
    };
    one_case(&app, &actor, case_id(&id)?).await
}

async fn one_case(app: &App, actor: &Actor, id: tiaojie_events::CaseId) -> ApiResult<Response> {
    let app = app.clone();
    let actor = actor.clone();
    let mut view = case_status::get_open(&app.db, &app.keys, &id.to_string(), &app.now()).await?;
    if view.is_none() {
        // Written but not yet projected: wait for it briefly rather than deny it exists.
        let Some(version) = app.stores.case_opened_version(&id.to_string()).await? else {
            return Err(ApiError::not_found("case"));
        };
        await_consistency(
            &app,
            Some(&consistency_token("Case", &id.to_string(), version)),
        )
        .await?;
        view = case_status::get_open(&app.db, &app.keys, &id.to_string(), &app.now()).await?;
    }
    let mut view = view.ok_or_else(|| ApiError::not_found("case"))?;
    check_case_scope(&app, &actor, &view.row.community).await?;
    view.case_number = crate::numbering::of(&app, &view.row.case_id).await?;
    view.repeat_obstructors =
        tiaojie_app::queries::repeat_obstructors_of(&app, &view.row.case_id).await?;
    if crate::masking::masks_for(&actor) {
        let m = crate::masking::TextMasker::for_case_at(
            &app,
            &view.row.case_id,
            view.row.version.max(1) as u64,
        )
        .await?;
        view.row.summary = m.apply(&view.row.summary);
    }
    let etag = format!("\"{}\"", view.row.version);
    let mut r = Json(view).into_response();
    if let Ok(v) = etag.parse() {
        r.headers_mut().insert("etag", v);
    }
    Ok(r)
}

/// One entry of a case's history: the event as recorded, with who recorded it.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub sequence: u64,
    pub event_type: String,
    pub summary_zh: String,
    pub business_at: Option<String>,
    pub recorded_at: String,
    pub actor_id: String,
    pub actor_name: String,
    pub role: String,
    pub organisation: String,
    pub request_id: String,
    pub trace_id: Option<String>,
    /// The event's payload.
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
}

/// The full history of a case, oldest first, straight from the event store.
#[utoipa::path(get, path = "/api/v1/cases/{id}/history", tag = "cases",
    params(("id" = String, Path, description = "Case id")),
    responses((status = 200, body = [HistoryEntry]), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn history(
    State(app): State<App>,
    Auth(actor): Auth,
    Path(raw): Path<String>,
) -> ApiResult<Json<Vec<HistoryEntry>>> {
    require_case_reader(&actor)?;
    let id = case_id(&raw)?;
    let events = app.stores.case_events(&id.to_string()).await?;
    let Some(first) = events.first() else {
        return Err(ApiError::not_found("case"));
    };
    if let CaseEvent::CaseOpened { community, .. } = &first.payload {
        check_case_scope(&app, &actor, community.as_str()).await?;
    }
    let masker = if crate::masking::masks_for(&actor) {
        Some(crate::masking::TextMasker::for_case(&app, &id.to_string()).await?)
    } else {
        None
    };
    let events: Vec<_> = events
        .into_iter()
        .map(|mut e| {
            if let Some(m) = &masker {
                e.payload = m.event(&e.payload);
            }
            e
        })
        .collect();
    Ok(Json(
        events
            .into_iter()
            .map(|e| {
                let m = EventMetadata::from_map(&e.metadata);
                HistoryEntry {
                    sequence: e.sequence as u64,
                    event_type: e.payload.type_name().to_string(),
                    summary_zh: e.payload.describe_zh(),
                    business_at: e.payload.business_time().map(|t| t.to_canonical()),
                    recorded_at: m.recorded_at.to_canonical(),
                    actor_id: m.actor_id,
                    actor_name: m.actor_name,
                    role: m.role.as_str().to_string(),
                    organisation: m.organisation,
                    request_id: m.request_id,
                    trace_id: m.trace_id,
                    event: serde_json::to_value(&e.payload).unwrap_or_default(),
                }
            })
            .collect(),
    ))
}
