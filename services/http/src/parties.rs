//! `/api/v1/parties`: the party registry; `/api/v1/cases/{id}/parties`; `/api/v1/access-log`.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use tiaojie_events::{CaseId, CommunityId, PartyId};
use utoipa::{IntoParams, ToSchema};

use super::extract::{parse_id, Administrator, ApiJson, ApiQuery, Auth, GroupMember, Meta};
use crate::app::App;
use crate::app_error::ErrorKind;
use crate::error::{ApiError, ApiResult, Problem};
use tiaojie_app::parties::{
    self, AccessEntry, Gender, IdType, PartyData, PartyExport, PartyKind, PartyPatch, PartyView,
    SearchFor,
};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterPartyBody {
    pub kind: PartyKind,
    pub community: CommunityId,
    pub name: String,
    pub phone: Option<String>,
    pub building: Option<String>,
    pub unit: Option<String>,
    pub household: Option<String>,
    pub organisation: Option<String>,
    pub gender: Option<Gender>,
    /// One of the 56 ethnic groups, e.g. `汉族`.
    pub ethnicity: Option<String>,
    /// `YYYY-MM-DD`.
    pub birth_date: Option<String>,
    pub age: Option<u8>,
    /// Without it, an ID number is taken as a 居民身份证 number.
    pub id_type: Option<IdType>,
    /// A 居民身份证 number is checked with its check digit.
    pub id_number: Option<String>,
    /// A free address, when not (only) a building of the community.
    pub address: Option<String>,
    pub workplace: Option<String>,
    /// For an organisation: its legal representative.
    pub legal_representative: Option<String>,
    /// 委托代理人
    pub agent: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartyCreated {
    pub party_id: String,
}

/// Registers a party (members and leaders, in their communities).
#[utoipa::path(post, path = "/api/v1/parties", tag = "parties", request_body = RegisterPartyBody,
    responses((status = 201, body = PartyCreated), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn register(
    State(app): State<App>,
    GroupMember(actor): GroupMember,
    Meta(meta): Meta,
    ApiJson(b): ApiJson<RegisterPartyBody>,
) -> ApiResult<Response> {
    let data = PartyData {
        name: b.name,
        phone: b.phone,
        building: b.building,
        unit: b.unit,
        household: b.household,
        organisation: b.organisation,
        gender: b.gender,
        ethnicity: b.ethnicity,
        birth_date: b.birth_date,
        age: b.age,
        id_type: b.id_type,
        id_number: b.id_number,
        address: b.address,
        workplace: b.workplace,
        legal_representative: b.legal_representative,
        agent: b.agent,
    };
    let id = parties::register(&app, &actor, &meta, b.kind, &b.community, &data).await?;
    let mut r = (
        StatusCode::CREATED,
        Json(PartyCreated {
            party_id: id.to_string(),
        }),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/parties/{id}")) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ViewQuery {
    /// Supervisors: why the data must be seen in clear (logged). Without it, masked.
    pub reveal_reason: Option<String>,
}

fn party_id(raw: &str) -> ApiResult<String> {
    parse_id(raw, "party", PartyId::parse).map(|p| p.to_string())
}

/// One party, as the caller may see it (clear, masked or erased). Every sight is logged.
#[utoipa::path(get, path = "/api/v1/parties/{id}", tag = "parties", params(("id" = String, Path, description = "Party id"), ViewQuery),
    responses((status = 200, body = PartyView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn view(
    State(app): State<App>,
    Auth(actor): Auth,
    Meta(meta): Meta,
    Path(raw): Path<String>,
    ApiQuery(q): ApiQuery<ViewQuery>,
) -> ApiResult<Json<PartyView>> {
    let id = party_id(&raw)?;
    Ok(Json(
        parties::view(&app, &actor, &meta, &id, q.reveal_reason.as_deref(), None).await?,
    ))
}

/// Corrects a party's record (members and leaders).
#[utoipa::path(patch, path = "/api/v1/parties/{id}", tag = "parties", params(("id" = String, Path, description = "Party id")), request_body = PartyPatch,
    responses((status = 200, body = PartyView), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 410, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn correct(
    State(app): State<App>,
    GroupMember(actor): GroupMember,
    Meta(meta): Meta,
    Path(raw): Path<String>,
    ApiJson(b): ApiJson<PartyPatch>,
) -> ApiResult<Json<PartyView>> {
    let id = party_id(&raw)?;
    Ok(Json(parties::correct(&app, &actor, &meta, &id, &b).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// A name, or its first characters (张 finds 张桂兰).
    pub name: Option<String>,
    /// The phone number.
    pub phone: Option<String>,
    /// The ID number.
    pub id_number: Option<String>,
    /// `true`: only repeat obstructors; alone, every repeat obstructor who obstructed in
    /// the caller's communities.
    pub repeat_obstructor: Option<bool>,
    /// Supervisors searching by phone or ID number: why (logged with the search).
    pub reason: Option<String>,
}

/// Search by name prefix, phone or ID number within the caller's communities (at most 50,
/// newest first).
#[utoipa::path(get, path = "/api/v1/parties", tag = "parties", params(SearchQuery),
    responses((status = 200, body = [PartyView]), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn search(
    State(app): State<App>,
    Auth(actor): Auth,
    Meta(meta): Meta,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> ApiResult<Json<Vec<PartyView>>> {
    Ok(Json(
        parties::search(
            &app,
            &actor,
            &meta,
            SearchFor {
                name: q.name.as_deref(),
                phone: q.phone.as_deref(),
                id_number: q.id_number.as_deref(),
                repeat_obstructor: q.repeat_obstructor.unwrap_or(false),
                reason: q.reason.as_deref(),
            },
        )
        .await?,
    ))
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErasureBody {
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Erased {
    pub party_id: String,
    pub erased: bool,
}

/// Erases a party's personal data for good (administrators).
#[utoipa::path(post, path = "/api/v1/parties/{id}/erasure", tag = "parties", params(("id" = String, Path, description = "Party id")), request_body = ErasureBody,
    responses((status = 200, body = Erased), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn erase(
    State(app): State<App>,
    Administrator(actor): Administrator,
    Meta(meta): Meta,
    Path(raw): Path<String>,
    ApiJson(b): ApiJson<ErasureBody>,
) -> ApiResult<Json<Erased>> {
    let id = party_id(&raw)?;
    let erased = parties::erase(
        &app,
        &actor,
        &meta,
        &id,
        b.reason.as_deref().unwrap_or("erasure request"),
    )
    .await?;
    Ok(Json(Erased {
        party_id: id,
        erased,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Why the copy is made, e.g. the person's written request (required; logged).
    pub reason: Option<String>,
}

/// A copy of everything held about a party, as a file (the right of access). Needs a
/// reason, which the access log keeps; members and leaders of the party's community, and
/// administrators.
#[utoipa::path(get, path = "/api/v1/parties/{id}/export", tag = "parties", params(("id" = String, Path, description = "Party id"), ExportQuery),
    responses((status = 200, body = PartyExport), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn export(
    State(app): State<App>,
    Auth(actor): Auth,
    Meta(meta): Meta,
    Path(raw): Path<String>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> ApiResult<Response> {
    let id = party_id(&raw)?;
    let e = parties::export(&app, &actor, &meta, &id, q.reason.as_deref()).await?;
    let mut r = Json(e).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"party-{id}.json\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CaseParty {
    pub role: String,
    pub party: PartyView,
}

/// The parties of a case, as the caller may see them.
#[utoipa::path(get, path = "/api/v1/cases/{id}/parties", tag = "cases", params(("id" = String, Path, description = "Case id"), ViewQuery),
    responses((status = 200, body = [CaseParty]), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn of_case(
    State(app): State<App>,
    Auth(actor): Auth,
    Meta(meta): Meta,
    Path(raw): Path<String>,
    ApiQuery(q): ApiQuery<ViewQuery>,
) -> ApiResult<Json<Vec<CaseParty>>> {
    if !actor.reads_cases() {
        return Err(ApiError::forbidden_zh((
            "this role does not read cases",
            "该账号不能查看案件",
        )));
    }
    let id = parse_id(&raw, "case", CaseId::parse)?.to_string();
    let (case, _) = app.stores.load_case(&id).await?;
    let Some(community) = &case.community else {
        return Err(ApiError::not_found("case"));
    };
    if let Some(scope) = crate::commands::scope(&app, &actor).await? {
        if !scope.contains(community) {
            return Err(ApiError::out_of_scope());
        }
    }
    let mut out = Vec::new();
    for p in &case.parties {
        let role = serde_json::to_value(p.role)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        match parties::view(
            &app,
            &actor,
            &meta,
            &p.party_id.to_string(),
            q.reveal_reason.as_deref(),
            Some(&id),
        )
        .await
        {
            Ok(party) => out.push(CaseParty { role, party }),
            // A party id the registry does not hold (recorded before the registry, or by another system).
            Err(e) if e.kind == ErrorKind::NotFound => out.push(CaseParty {
                role,
                party: PartyView {
                    party_id: p.party_id.to_string(),
                    kind: PartyKind::Other,
                    community: community.to_string(),
                    visibility: "unregistered".into(),
                    data: None,
                    created_at: String::new(),
                    updated_at: String::new(),
                    erased_at: None,
                    obstruction_incidents: 0,
                    repeat_obstructor: false,
                },
            }),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Json(out))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AccessQuery {
    pub party: Option<String>,
    pub actor: Option<String>,
    /// Entries older than this id (the last id of the previous page).
    pub before: Option<i64>,
    pub limit: Option<i64>,
}

/// Who saw or changed whose personal data, newest first (supervisors).
#[utoipa::path(get, path = "/api/v1/access-log", tag = "supervision", params(AccessQuery),
    responses((status = 200, body = [AccessEntry]), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn access_log(
    State(app): State<App>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<AccessQuery>,
) -> ApiResult<Json<Vec<AccessEntry>>> {
    if !actor.reads_audit() {
        return Err(ApiError::forbidden_zh((
            "only supervision offices read the access log",
            "只有督查室可以查看个人信息访问记录",
        )));
    }
    Ok(Json(
        parties::access_log(
            &app,
            q.party.as_deref(),
            q.actor.as_deref(),
            q.before,
            super::extract::limit_param(q.limit, 100, 1000)?,
        )
        .await?,
    ))
}
