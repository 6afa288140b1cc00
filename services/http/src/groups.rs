//! `/api/v1/mediation-groups`: forming groups and managing their members (administrators).

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::Json;
use serde::Serialize;
use tiaojie_events::group::*;
use tiaojie_events::GroupId;
use utoipa::ToSchema;

use super::dto::*;
use super::extract::{Administrator, ApiJson, Auth, Meta};
use super::idempotency::{self, command_answer};
use super::openapi::CommandErrors;
use crate::app::App;
use crate::auth::Actor;
use crate::commands::{self, RequestMeta};
use crate::error::{ApiError, ApiResult, Problem};

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
        Ok(command_answer(
            "MediationGroup",
            "/api/v1/mediation-groups",
            o,
            created,
            status,
        ))
    })
    .await
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
    let leader = b.leader.member();
    let members = b.members.iter().map(MemberBody::member).collect();
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

/// Where a community goes, and why.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveCommunityBody {
    /// The receiving mediation group's id.
    pub to: GroupId,
    /// Why it moves (kept with the group's and each case's event).
    pub reason: String,
}

/// Moves a community from this group to another, with its cases (administrators).
/// The receiver takes it over before this group hands it over, so it is never without a
/// group; each of its cases records the move (`CaseTransferred`, from, to, why), and an
/// assignee who is not a member of the receiving group is unassigned. Running it again
/// after an interruption finishes what is left.
#[utoipa::path(post, path = "/api/v1/mediation-groups/{id}/communities/{community}/move", tag = "mediation-groups",
    params(("id" = String, Path, description = "The group that covers the community now"),
           ("community" = String, Path, description = "The community's code, e.g. jingfeng-yuan")),
    request_body = MoveCommunityBody,
    responses((status = 200, description = "Moved", body = crate::commands::MoveOutcome), CommandErrors),
    security(("bearer" = [])))]
pub async fn move_community(
    State(app): State<App>,
    Administrator(actor): Administrator,
    Meta(meta): Meta,
    axum::extract::Path((id, community)): axum::extract::Path<(String, String)>,
    ApiJson(b): ApiJson<MoveCommunityBody>,
) -> ApiResult<Json<crate::commands::MoveOutcome>> {
    let from = GroupId::parse(&id).map_err(|_| {
        ApiError::bad_request("bad_id", "The group id is not a UUID", "小组编号格式不正确")
    })?;
    let community = tiaojie_events::CommunityId::parse(&community).map_err(|_| {
        ApiError::bad_request(
            "bad_community",
            "The community code is not valid",
            "小区代码格式不正确",
        )
    })?;
    let moved =
        commands::move_community(&app, &actor, &meta, &from, &community, &b.to, &b.reason).await?;
    Ok(Json(moved))
}
