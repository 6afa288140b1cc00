//! `/api/v1/mediation-groups`: forming groups and managing their members (administrators).

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::Json;
use serde::Serialize;
use tiaojie_events::group::*;
use tiaojie_events::{GroupId, MemberId};
use utoipa::ToSchema;

use super::consistency_token;
use super::dto::*;
use super::extract::{parse_id, Administrator, ApiJson, Auth, IfMatch, Meta};
use super::idempotency::{self, Answer};
use super::openapi::CommandErrors;
use crate::app::App;
use crate::auth::Actor;
use crate::commands::{self, CommandOutcome, RequestMeta};
use crate::error::{ApiError, ApiResult, Problem};

fn member(b: &MemberBody) -> Member {
    Member {
        member_id: b.member_id.unwrap_or_default(),
        name: b.name.clone(),
        org_role: b.org_role,
        organisation: b.organisation.clone(),
    }
}

fn answer(o: CommandOutcome, created: Option<String>, status: StatusCode) -> Answer {
    let token = consistency_token("MediationGroup", &o.id, o.version);
    let mut headers = vec![
        ("etag", format!("\"{}\"", o.version)),
        ("consistency-token", token.clone()),
    ];
    if status == StatusCode::CREATED {
        headers.push(("location", format!("/api/v1/mediation-groups/{}", o.id)));
    }
    Answer {
        status,
        body: serde_json::to_value(CommandAnswer {
            id: o.id,
            version: o.version,
            events: o.events,
            consistency_token: token,
            created_id: created,
        })
        .unwrap_or_default(),
        headers,
    }
}

#[allow(clippy::too_many_arguments)]
async fn exec(
    app: &App,
    actor: &Actor,
    meta: &RequestMeta,
    method: &str,
    uri: &Uri,
    id: GroupId,
    expected: Option<u64>,
    body: &impl Serialize,
    created: Option<String>,
    status: StatusCode,
    command: GroupCommand,
) -> ApiResult<Response> {
    idempotency::run(app, actor, meta, method, uri.path(), body, || async move {
        let o = commands::group_command(app, actor, meta, &id, command, expected).await?;
        Ok(answer(o, created, status))
    })
    .await
}

fn group_id(raw: &str) -> ApiResult<GroupId> {
    parse_id(raw, "mediation group", GroupId::parse)
}

/// Forms a mediation group for one or more communities (administrators).
#[utoipa::path(post, path = "/api/v1/mediation-groups", tag = "mediation-groups",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a repeat return the first answer")),
    request_body = FormGroupBody,
    responses((status = 201, description = "Formed", body = CommandAnswer), CommandErrors),
    security(("bearer" = [])))]
pub async fn form_group(
    State(app): State<App>,
    Administrator(actor): Administrator,
    Meta(meta): Meta,
    uri: Uri,
    ApiJson(b): ApiJson<FormGroupBody>,
) -> ApiResult<Response> {
    let id = GroupId::new();
    let mut leader = member(&b.leader);
    if b.leader.member_id.is_none() {
        leader.member_id = MemberId::new();
    }
    let members = b
        .members
        .iter()
        .map(|m| {
            let mut x = member(m);
            if m.member_id.is_none() {
                x.member_id = MemberId::new();
            }
            x
        })
        .collect();
    let command = GroupCommand::FormGroup(FormGroup {
        name: b.name.clone(),
        street_office: b.street_office.clone(),
        communities: b.communities.clone(),
        leader,
        members,
        formed_at: b.formed_at,
    });
    exec(
        &app,
        &actor,
        &meta,
        "POST",
        &uri,
        id,
        None,
        &b,
        None,
        StatusCode::CREATED,
        command,
    )
    .await
}

/// Adds a member; answers the member's id.
#[utoipa::path(post, path = "/api/v1/mediation-groups/{id}/members", tag = "mediation-groups",
    params(("id" = String, Path, description = "Group id"), ("If-Match" = Option<String>, Header, description = "Expected group version"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes a repeat return the first answer")),
    request_body = MemberBody,
    responses((status = 200, description = "Added", body = CommandAnswer), CommandErrors),
    security(("bearer" = [])))]
pub async fn add_member(
    State(app): State<App>,
    Administrator(actor): Administrator,
    Meta(meta): Meta,
    IfMatch(expected): IfMatch,
    Path(raw): Path<String>,
    uri: Uri,
    ApiJson(b): ApiJson<MemberBody>,
) -> ApiResult<Response> {
    let id = group_id(&raw)?;
    let mut m = member(&b);
    if b.member_id.is_none() {
        m.member_id = MemberId::new();
    }
    let created = Some(m.member_id.to_string());
    exec(
        &app,
        &actor,
        &meta,
        "POST",
        &uri,
        id,
        expected,
        &b,
        created,
        StatusCode::OK,
        GroupCommand::AddMember(AddMember { member: m }),
    )
    .await
}

/// Removes a member (not the leader).
#[utoipa::path(delete, path = "/api/v1/mediation-groups/{id}/members/{member_id}", tag = "mediation-groups",
    params(("id" = String, Path, description = "Group id"), ("member_id" = String, Path, description = "Member id"),
           ("If-Match" = Option<String>, Header, description = "Expected group version")),
    responses((status = 200, description = "Removed", body = CommandAnswer), CommandErrors),
    security(("bearer" = [])))]
pub async fn remove_member(
    State(app): State<App>,
    Administrator(actor): Administrator,
    Meta(meta): Meta,
    IfMatch(expected): IfMatch,
    Path((raw, mid)): Path<(String, String)>,
    uri: Uri,
) -> ApiResult<Response> {
    let id = group_id(&raw)?;
    let mid = parse_id(&mid, "member", MemberId::parse)?;
    let body = RemoveMemberBody::default();
    exec(
        &app,
        &actor,
        &meta,
        "DELETE",
        &uri,
        id,
        expected,
        &body,
        None,
        StatusCode::OK,
        GroupCommand::RemoveMember(RemoveMember {
            member_id: mid,
            reason: None,
        }),
    )
    .await
}

/// Changes the leader to another member from the street office.
#[utoipa::path(put, path = "/api/v1/mediation-groups/{id}/leader", tag = "mediation-groups",
    params(("id" = String, Path, description = "Group id"), ("If-Match" = Option<String>, Header, description = "Expected group version"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes a repeat return the first answer")),
    request_body = LeaderBody,
    responses((status = 200, description = "Changed", body = CommandAnswer), CommandErrors),
    security(("bearer" = [])))]
pub async fn change_leader(
    State(app): State<App>,
    Administrator(actor): Administrator,
    Meta(meta): Meta,
    IfMatch(expected): IfMatch,
    Path(raw): Path<String>,
    uri: Uri,
    ApiJson(b): ApiJson<LeaderBody>,
) -> ApiResult<Response> {
    let id = group_id(&raw)?;
    let command = GroupCommand::ChangeLeader(ChangeLeader {
        new_leader: b.member_id,
        reason: b.reason.clone(),
    });
    exec(
        &app,
        &actor,
        &meta,
        "PUT",
        &uri,
        id,
        expected,
        &b,
        None,
        StatusCode::OK,
        command,
    )
    .await
}

/// Adds communities to a group or releases them.
#[utoipa::path(put, path = "/api/v1/mediation-groups/{id}/communities", tag = "mediation-groups",
    params(("id" = String, Path, description = "Group id"), ("If-Match" = Option<String>, Header, description = "Expected group version"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes a repeat return the first answer")),
    request_body = CommunitiesBody,
    responses((status = 200, description = "Changed", body = CommandAnswer), CommandErrors),
    security(("bearer" = [])))]
pub async fn change_communities(
    State(app): State<App>,
    Administrator(actor): Administrator,
    Meta(meta): Meta,
    IfMatch(expected): IfMatch,
    Path(raw): Path<String>,
    uri: Uri,
    ApiJson(b): ApiJson<CommunitiesBody>,
) -> ApiResult<Response> {
    let id = group_id(&raw)?;
    let command = GroupCommand::ChangeCommunities(ChangeCommunities {
        add: b.add.clone(),
        remove: b.remove.clone(),
    });
    exec(
        &app,
        &actor,
        &meta,
        "PUT",
        &uri,
        id,
        expected,
        &b,
        None,
        StatusCode::OK,
        command,
    )
    .await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupView {
    pub id: String,
    pub name: String,
    pub street_office: String,
    pub communities: Vec<GroupCommunity>,
    pub leader: Option<String>,
    pub members: Vec<Member>,
    pub version: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupCommunity {
    pub id: String,
    pub name_zh: String,
}

/// Every mediation group, current as of now.
#[utoipa::path(get, path = "/api/v1/mediation-groups", tag = "mediation-groups",
    responses((status = 200, body = [GroupView]), (status = 401, body = Problem), (status = 403, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_groups(
    State(app): State<App>,
    Auth(actor): Auth,
) -> ApiResult<Json<Vec<GroupView>>> {
    if actor.role == tiaojie_events::metadata::Role::Dashboard {
        return Err(ApiError::forbidden_zh((
            "dashboards read aggregates only",
            "大屏账号只能查看汇总数据",
        )));
    }
    let groups = app.directory.groups().await?;
    Ok(Json(
        groups
            .into_iter()
            .filter(|(id, _)| !actor.is_group_role() || actor.group == Some(*id))
            .map(|(id, g)| GroupView {
                id: id.to_string(),
                name: g.name.clone(),
                street_office: g.street_office.clone(),
                communities: g
                    .communities
                    .iter()
                    .map(|c| GroupCommunity {
                        id: c.to_string(),
                        name_zh: app
                            .reference
                            .community(c)
                            .map(|x| x.name_zh.clone())
                            .unwrap_or_default(),
                    })
                    .collect(),
                leader: g.leader.map(|l| l.to_string()),
                members: g.members.values().cloned().collect(),
                version: g.version,
            })
            .collect(),
    ))
}
