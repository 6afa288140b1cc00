//! The administrator's page: access tokens (issue, revoke) and mediation groups (form one,
//! add members), so that onboarding a street office needs no shell. The same rules as the
//! CLI and the API: a token's secret is shown once and only its hash is kept; group changes
//! go through the command service as events.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use tiaojie_events::group::{FormGroup, GroupCommand, Member, OrgRole};
use tiaojie_events::metadata::Role;
use tiaojie_events::{CommunityId, GroupId, MemberId};

use super::desk::{
    enum_str, form_body, form_field, step_refusal, unprocessable as refuse, DoneQuery,
};
use super::forms::{Field, FormView, Kind};
use super::{labels, local, render, Chrome, FormData, Lang, Signed};
use crate::app::App;
use crate::app_error::{AppError, AppResult, ErrorKind};
use crate::auth;
use crate::commands;
use crate::group_steps::{group_step, GroupStepDef, GROUP_STEPS};
use crate::steps::{Choices, StepContext};

struct TokenRow {
    id: String,
    name: String,
    role: String,
    group: String,
    organisation: String,
    created: String,
    revoked: String,
}

struct GroupRow {
    id: String,
    name: String,
    street_office: String,
    communities: String,
    leader: String,
    members: Vec<String>,
    /// Add a member, change the leader, remove a member.
    steps: Vec<FormView>,
}

/// A token just issued: its secret, shown once.
struct Issued {
    name: String,
    secret: String,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    chrome: Chrome,
    issued: Option<Issued>,
    token_form: FormView,
    tokens: Vec<TokenRow>,
    group_form: FormView,
    groups: Vec<GroupRow>,
}

fn org_role_label(lang: Lang, r: OrgRole) -> &'static str {
    let en = match r {
        OrgRole::StreetOffice => "Street office",
        OrgRole::Judicial => "Judicial office",
        OrgRole::Police => "Police",
        OrgRole::ResidentsCommittee => "Residents' committee",
        OrgRole::PropertyCompany => "Property company",
        OrgRole::Enterprise => "Enterprise",
    };
    lang.t(r.label_zh(), en)
}

fn org_roles(lang: Lang) -> Vec<(String, String)> {
    OrgRole::ALL
        .iter()
        .map(|r| (enum_str(r), org_role_label(lang, *r).to_string()))
        .collect()
}

/// Puts a group rule's refusal next to the field it is about.
fn place(e: AppError, member_prefix: &str) -> AppError {
    if !e.fields.is_empty() {
        return e;
    }
    let field = match e.code.as_str() {
        "unknown_community" | "community_already_covered" | "group_needs_community" => {
            "communities".to_string()
        }
        // On a group's own forms the refusal is about the member picked.
        "leader_not_from_street_office" if member_prefix.is_empty() => "member".to_string(),
        "leader_not_from_street_office" => format!("{member_prefix}org_role"),
        "duplicate_member" => format!("{member_prefix}name"),
        "member_not_found" | "cannot_remove_leader" | "already_leader" => "member".to_string(),
        "invalid_text" => "name".to_string(),
        _ => return e,
    };
    let title = e.title.clone();
    e.with_field(field, title)
}

fn token_form(lang: Lang, groups: &[(String, String)]) -> FormView {
    let roles = [
        Role::Member,
        Role::Leader,
        Role::Supervisor,
        Role::Dashboard,
        Role::Admin,
    ]
    .iter()
    .map(|r| (r.as_str().to_string(), labels::role(lang, *r).to_string()))
    .collect();
    let mut group_options = vec![(
        String::new(),
        lang.t("（不属于调解小组）", "(none)").to_string(),
    )];
    group_options.extend(groups.iter().cloned());
    let mut f = FormView::new(
        "token",
        lang.t("签发访问令牌", "Issue an access token"),
        "/admin/tokens".into(),
        lang.t("签发", "Issue"),
    )
    .field(
        Field::new("name", lang.t("使用人", "Holder"), Kind::Text)
            .required()
            .hint(lang.t("姓名与单位，如：南关街道 王建国", "name and office")),
    )
    .field(
        Field::new("role", lang.t("角色", "Role"), Kind::Select)
            .options(roles)
            .required(),
    )
    .field(
        Field::new("group", lang.t("调解小组", "Mediation group"), Kind::Select)
            .options(group_options)
            .hint(lang.t(
                "调解小组成员和组长必须选择",
                "required for group members and leaders",
            )),
    )
    .field(Field::new(
        "organisation",
        lang.t("单位", "Organisation"),
        Kind::Text,
    ));
    f.open = true;
    f
}

fn group_form(app: &App, lang: Lang) -> FormView {
    let communities = app
        .reference
        .communities
        .iter()
        .map(|c| (c.id.to_string(), c.name_zh.clone()))
        .collect();
    FormView::new(
        "group",
        lang.t("组建矛盾调解小组", "Form a mediation group"),
        "/admin/groups".into(),
        lang.t("组建", "Form"),
    )
    .field(Field::new("name", lang.t("小组名称", "Name"), Kind::Text).required())
    .field(
        Field::new(
            "street_office",
            lang.t("街道办事处", "Street office"),
            Kind::Text,
        )
        .required(),
    )
    .field(
        Field::new(
            "communities",
            lang.t("负责小区", "Communities"),
            Kind::Multi,
        )
        .options(communities),
    )
    .field(
        Field::new(
            "leader_name",
            lang.t("组长姓名", "Leader's name"),
            Kind::Text,
        )
        .required(),
    )
    .field(
        Field::new(
            "leader_org_role",
            lang.t("组长所在单位类别", "Leader's organisation type"),
            Kind::Select,
        )
        .options(org_roles(lang))
        .required(),
    )
    .field(
        Field::new(
            "leader_organisation",
            lang.t("组长所在单位", "Leader's organisation"),
            Kind::Text,
        )
        .required(),
    )
}

/// A community's name, or its code when the reference data does not know it.
fn community_label(app: &App, c: &CommunityId) -> String {
    app.reference
        .community(c)
        .map(|x| x.name_zh.clone())
        .unwrap_or_else(|| c.to_string())
}

/// A step's form on one group's row, from the group step table.
fn group_step_form(
    lang: Lang,
    def: &GroupStepDef,
    group: &str,
    choices: &dyn Fn(Choices) -> Vec<(String, String)>,
) -> FormView {
    let mut form = FormView::new(
        &format!("{}-{group}", def.name),
        lang.t(def.title.0, def.title.1),
        format!("/admin/groups/{group}/do/{}", def.name),
        lang.t(def.submit.0, def.submit.1),
    );
    form.danger = def.danger;
    for f in def.fields {
        form = form.field(form_field(lang, f, "", choices));
    }
    if def.name == "add_member" {
        form = form.field(
            Field::new("login", lang.t("登录名（可选）", "Login (optional)"), Kind::Text).hint(
                lang.t(
                    "填写则同时为其创建账号（初始密码只显示一次）；已离开小组的原账号可填原登录名重新关联",
                    "creates the person's account as well (its one-time password is shown once); a former member's login is linked again",
                ),
            ),
        );
    }
    form
}

/// Moving a community, with its cases, to another group.
fn move_form(
    lang: Lang,
    group: &str,
    communities: Vec<(String, String)>,
    groups: &[(GroupId, tiaojie_events::group::MediationGroup)],
) -> FormView {
    let others = groups
        .iter()
        .filter(|(id, _)| id.to_string() != group)
        .map(|(id, g)| (id.to_string(), g.name.clone()))
        .collect();
    let mut f = FormView::new(
        &format!("move-{group}"),
        lang.t("移交小区（连同其案件）", "Move a community (with its cases)"),
        format!("/admin/groups/{group}/move"),
        lang.t("移交", "Move"),
    )
    .field(
        Field::new("community", lang.t("小区", "Community"), Kind::Select)
            .options(communities)
            .required(),
    )
    .field(
        Field::new("to", lang.t("移交给", "To"), Kind::Select)
            .options(others)
            .required(),
    )
    .field(
        Field::new("reason", lang.t("理由", "Reason"), Kind::Text)
            .required()
            .hint(lang.t(
                "记入小组和每件案件的历史；原承办人不在新小组的，取消指派",
                "kept in the history of the groups and each case; an assignee outside the new group is unassigned",
            )),
    );
    f.danger = true;
    f
}

pub async fn move_community(
    State(app): State<App>,
    signed: Signed,
    Path(raw): Path<String>,
    Form(form): Form<FormData>,
) -> Response {
    if let Some(r) = guard(&signed, &form) {
        return r;
    }
    let Ok(group) = GroupId::parse(&raw) else {
        return signed.error(AppError::not_found("mediation group"));
    };
    let moved = async {
        let community = CommunityId::parse(form.get("community"))
            .map_err(|_| refuse("community", "请选择小区", "choose a community"))?;
        let to = GroupId::parse(form.get("to"))
            .map_err(|_| refuse("to", "请选择接收的小组", "choose the receiving group"))?;
        commands::move_community(
            &app,
            &signed.actor,
            &signed.web.meta,
            &group,
            &community,
            &to,
            form.get("reason"),
        )
        .await
        .map_err(|e| {
            if e.fields.is_empty() {
                let t = e.title.clone();
                e.with_field("community", t)
            } else {
                e
            }
        })
    }
    .await;
    match moved {
        Ok(o) => Redirect::to(&format!(
            "/admin?done=moved&cases={}&unassigned={}",
            o.cases_moved, o.unassigned
        ))
        .into_response(),
        Err(e) if super::page_status(e.kind).is_client_error() => answer(
            &signed,
            page_with(
                &app,
                &signed,
                Failed::GroupStep(&raw, "move", &form, e),
                None,
                None,
            )
            .await,
        ),
        Err(e) => signed.error(e),
    }
}

/// Every form here: the session's CSRF token, and the administrator role.
fn guard(signed: &Signed, form: &FormData) -> Option<Response> {
    signed
        .csrf_rejection(form)
        .or_else(|| require_admin(signed))
}

fn require_admin(signed: &Signed) -> Option<Response> {
    (signed.actor.role != Role::Admin).then(|| {
        signed.error(AppError::forbidden_zh((
            "only administrators manage tokens and groups",
            "只有管理员可以管理令牌和调解小组",
        )))
    })
}

/// What went wrong on which form, to show it there.
enum Failed<'a> {
    None,
    Token(&'a FormData, AppError),
    Group(&'a FormData, AppError),
    /// On one group's form: (group, form action, what was sent, the refusal).
    GroupStep(&'a str, &'a str, &'a FormData, AppError),
}

async fn page_with(
    app: &App,
    signed: &Signed,
    failed: Failed<'_>,
    issued: Option<Issued>,
    flash: Option<String>,
) -> AppResult<Response> {
    let lang = signed.web.lang;
    let groups = app.directory.groups().await?;
    let group_names: Vec<(String, String)> = groups
        .iter()
        .map(|(id, g)| (id.to_string(), g.name.clone()))
        .collect();
    let mut token_form = token_form(lang, &group_names);
    let mut group_form = group_form(app, lang);
    let mut status = StatusCode::OK;
    let mut failed_member = None;
    match failed {
        Failed::None => {}
        Failed::Token(data, e) => {
            status = StatusCode::UNPROCESSABLE_ENTITY;
            token_form.refill(data, &e, lang);
        }
        Failed::Group(data, e) => {
            status = StatusCode::UNPROCESSABLE_ENTITY;
            group_form.refill(data, &e, lang);
        }
        Failed::GroupStep(group, action, data, e) => {
            status = StatusCode::UNPROCESSABLE_ENTITY;
            failed_member = Some((group.to_string(), action.to_string(), data, e));
        }
    }
    let group_rows = groups
        .iter()
        .map(|(id, g)| {
            let id = id.to_string();
            let people: Vec<(String, String)> = g
                .members
                .values()
                .map(|m| (m.member_id.to_string(), m.name.clone()))
                .collect();
            let others: Vec<(String, String)> = people
                .iter()
                .filter(|(mid, _)| g.leader.map(|l| l.to_string()) != Some(mid.clone()))
                .cloned()
                .collect();
            let choices = |from: Choices| match from {
                Choices::OrgRoles => org_roles(lang),
                Choices::GroupMembers => others.clone(),
                Choices::GroupCommunities => g
                    .communities
                    .iter()
                    .map(|c| (c.to_string(), community_label(app, c)))
                    .collect(),
                Choices::OtherCommunities => app
                    .reference
                    .communities
                    .iter()
                    .filter(|c| !g.communities.contains(&c.id))
                    .map(|c| (c.id.to_string(), c.name_zh.clone()))
                    .collect(),
                _ => vec![],
            };
            let mut steps: Vec<FormView> = GROUP_STEPS
                .iter()
                .map(|def| group_step_form(lang, def, &id, &choices))
                .collect();
            if groups.len() > 1 {
                steps.push(move_form(
                    lang,
                    &id,
                    choices(Choices::GroupCommunities),
                    &groups,
                ));
            }
            if let Some((gid, action, data, e)) = &failed_member {
                if *gid == id {
                    if let Some(f) = steps
                        .iter_mut()
                        .find(|f| f.action.starts_with(action.as_str()))
                    {
                        f.refill(data, e, lang);
                    }
                }
            }
            GroupRow {
                name: g.name.clone(),
                street_office: g.street_office.clone(),
                communities: g
                    .communities
                    .iter()
                    .map(|c| community_label(app, c))
                    .collect::<Vec<_>>()
                    .join("、"),
                leader: g
                    .leader
                    .and_then(|l| g.members.get(&l))
                    .map(|m| m.name.clone())
                    .unwrap_or_default(),
                members: g
                    .members
                    .values()
                    .map(|m| {
                        format!(
                            "{}（{}，{}）",
                            m.name,
                            org_role_label(lang, m.org_role),
                            m.organisation
                        )
                    })
                    .collect(),
                steps,
                id,
            }
        })
        .collect();
    let tokens = auth::list_tokens(&app.db)
        .await?
        .into_iter()
        .rev()
        .map(|t| TokenRow {
            group: t
                .group_id
                .as_ref()
                .and_then(|g| group_names.iter().find(|(id, _)| id == g))
                .map(|(_, n)| n.clone())
                .unwrap_or_default(),
            role: labels::role_code(lang, &t.role),
            created: local(app, &t.created_at),
            revoked: t
                .revoked_at
                .as_deref()
                .map(|r| local(app, r))
                .unwrap_or_default(),
            id: t.id,
            name: t.name,
            organisation: t.organisation,
        })
        .collect();
    let mut chrome = signed.chrome(lang.t("系统管理", "Administration").into(), "admin");
    chrome.flash = flash;
    let mut r = render(&AdminPage {
        chrome,
        issued,
        token_form,
        tokens,
        group_form,
        groups: group_rows,
    });
    *r.status_mut() = status;
    Ok(r)
}

fn answer(signed: &Signed, r: AppResult<Response>) -> Response {
    r.unwrap_or_else(|e| signed.error(e))
}

pub async fn page(State(app): State<App>, signed: Signed, Query(q): Query<DoneQuery>) -> Response {
    if let Some(r) = require_admin(&signed) {
        return r;
    }
    let flash = q.done.as_deref().map(|d| {
        match d {
            "revoked" => signed.t("令牌已吊销。", "The token is revoked."),
            "group" => signed.t("调解小组已组建。", "The group is formed."),
            "member" => signed.t("成员已增加。", "The member is added."),
            "leader" => signed.t("组长已更换。", "The leader is changed."),
            "remove" => signed.t("成员已移除。", "The member is removed."),
            "moved" => signed.t(
                "小区已移交，其案件随之移交。",
                "The community moved, with its cases.",
            ),
            _ => signed.t("已保存。", "Saved."),
        }
        .to_string()
    });
    answer(
        &signed,
        page_with(&app, &signed, Failed::None, None, flash).await,
    )
}

pub async fn create_token(
    State(app): State<App>,
    signed: Signed,
    Form(form): Form<FormData>,
) -> Response {
    if let Some(r) = guard(&signed, &form) {
        return r;
    }
    let checked = async {
        let name = form.get("name").trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(refuse(
                "name",
                "请填写使用人（100字以内）",
                "give the holder's name (up to 100 characters)",
            ));
        }
        let role = Role::parse(form.get("role"))
            .filter(|r| *r != Role::System)
            .ok_or_else(|| refuse("role", "请选择角色", "choose a role"))?;
        let group = match form.get("group").trim() {
            "" => None,
            g => Some(
                GroupId::parse(g)
                    .map_err(|_| refuse("group", "调解小组不存在", "no such group"))?,
            ),
        };
        match (role, group) {
            (Role::Member | Role::Leader, None) => {
                return Err(refuse(
                    "group",
                    "调解小组成员和组长必须选择所属小组",
                    "group members and leaders belong to a group",
                ))
            }
            (Role::Member | Role::Leader, Some(g))
                if app.directory.group_state(&g).await?.is_none() =>
            {
                return Err(refuse("group", "调解小组不存在", "no such group"));
            }
            (Role::Member | Role::Leader, Some(_)) => {}
            (_, Some(_)) => {
                return Err(refuse(
                    "group",
                    "只有调解小组成员和组长属于小组",
                    "only group members and leaders belong to a group",
                ))
            }
            _ => {}
        }
        let organisation = form.get("organisation").trim();
        let (info, secret) =
            auth::create_token(&app.db, name, role, group, organisation, app.now()).await?;
        tracing::info!(token_id = %info.id, role = %info.role, "token issued from the web");
        Ok::<_, AppError>(Issued {
            name: info.name,
            secret,
        })
    }
    .await;
    let r = match checked {
        Ok(issued) => page_with(&app, &signed, Failed::None, Some(issued), None).await,
        Err(e) if super::page_status(e.kind).is_client_error() => {
            page_with(&app, &signed, Failed::Token(&form, e), None, None).await
        }
        Err(e) => Err(e),
    };
    answer(&signed, r)
}

pub async fn revoke_token(
    State(app): State<App>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<FormData>,
) -> Response {
    if let Some(r) = guard(&signed, &form) {
        return r;
    }
    if id == signed.actor.id {
        return signed.error(AppError::new(ErrorKind::Conflict,
            "own_token",
            "You are signed in with this token; revoke it from another administrator's session or the CLI",
            "不能吊销当前登录所用的令牌，请由其他管理员或通过命令行吊销",
        ));
    }
    match auth::revoke_token(&app.db, &id, app.now()).await {
        Ok(true) => {
            app.tokens.forget_all().await;
            tracing::info!(token_id = %id, "token revoked from the web");
            Redirect::to("/admin?done=revoked").into_response()
        }
        Ok(false) => signed.error(AppError::not_found("token")),
        Err(e) => signed.error(e.into()),
    }
}

fn member_from(form: &FormData, prefix: &str) -> AppResult<Member> {
    let name = form.get(&format!("{prefix}name")).trim().to_string();
    let organisation = form
        .get(&format!("{prefix}organisation"))
        .trim()
        .to_string();
    let role_field = format!("{prefix}org_role");
    let org_role: OrgRole =
        serde_json::from_value(serde_json::Value::String(form.get(&role_field).to_string()))
            .map_err(|_| {
                refuse(
                    &role_field,
                    "请选择单位类别",
                    "choose the organisation type",
                )
            })?;
    if name.is_empty() {
        return Err(refuse(
            &format!("{prefix}name"),
            "请填写姓名",
            "give the name",
        ));
    }
    if organisation.is_empty() {
        return Err(refuse(
            &format!("{prefix}organisation"),
            "请填写单位",
            "give the organisation",
        ));
    }
    Ok(Member {
        member_id: MemberId::new(),
        name,
        org_role,
        organisation,
    })
}

pub async fn form_group(
    State(app): State<App>,
    signed: Signed,
    Form(form): Form<FormData>,
) -> Response {
    if let Some(r) = guard(&signed, &form) {
        return r;
    }
    let command = (|| {
        let mut communities = Vec::new();
        for c in form.all("communities") {
            communities.push(
                CommunityId::parse(&c)
                    .map_err(|_| refuse("communities", "小区不存在", "no such community"))?,
            );
        }
        Ok(GroupCommand::FormGroup(FormGroup {
            name: form.get("name").trim().to_string(),
            street_office: form.get("street_office").trim().to_string(),
            communities,
            leader: member_from(&form, "leader_")?,
            members: vec![],
            formed_at: None,
        }))
    })();
    run_group_command(
        &app,
        &signed,
        &GroupId::new(),
        command,
        "leader_",
        "group",
        |e| Failed::Group(&form, e),
    )
    .await
}

/// Runs one step on a group from its form (the group step table); back to the page, or the
/// page with that form refilled and the refusal next to its field.
pub async fn group_act(
    State(app): State<App>,
    signed: Signed,
    super::Client(addr): super::Client,
    Path((raw, name)): Path<(String, String)>,
    Form(form): Form<FormData>,
) -> Response {
    if let Some(r) = guard(&signed, &form) {
        return r;
    }
    let Some(def) = group_step(&name) else {
        return signed.error(AppError::not_found("step"));
    };
    let Ok(group) = GroupId::parse(&raw) else {
        return signed.error(AppError::not_found("mediation group"));
    };
    let command = form_body(&app, def.fields, def.sub, &form).and_then(|(body, sub)| {
        let cx = StepContext::of(&app, &signed.actor, sub.as_deref());
        (def.parse)(body, &cx)
            .map(|p| p.command)
            .map_err(|e| step_refusal(def.fields, e))
    });
    let login = form.get("login").trim();
    if let (Ok(GroupCommand::AddMember(add)), false) = (&command, login.is_empty()) {
        let member = add.member.clone();
        return add_member_with_account(&app, &signed, &raw, group, member, login, &form, &addr.0)
            .await;
    }
    run_group_command(&app, &signed, &group, command, "", def.name, |e| {
        Failed::GroupStep(&raw, def.name, &form, e)
    })
    .await
}

#[allow(clippy::too_many_arguments)]
/// Adds a member and creates (or links) their account in one go; the one-time password
/// is shown on the accounts page. The login is checked first: a refusal writes nothing.
async fn add_member_with_account(
    app: &App,
    signed: &Signed,
    raw: &str,
    group: GroupId,
    member: Member,
    login: &str,
    form: &FormData,
    address: &str,
) -> Response {
    let done = async {
        let existing = crate::accounts::login_for_new_member(app, login).await?;
        commands::group_command(
            app,
            &signed.actor,
            &signed.web.meta,
            &group,
            GroupCommand::AddMember(tiaojie_events::group::AddMember {
                member: member.clone(),
            }),
            None,
        )
        .await
        .map_err(|e| place(e, ""))?;
        match existing {
            Some(a) => {
                crate::accounts::link_member(
                    app,
                    &a,
                    group,
                    member.member_id,
                    &signed.actor,
                    address,
                )
                .await?;
                Ok::<_, AppError>(None)
            }
            None => {
                let (a, password) = crate::accounts::create(
                    app,
                    crate::accounts::NewAccount {
                        login: login.to_string(),
                        display_name: member.name.clone(),
                        organisation: member.organisation.clone(),
                        role: Role::Member,
                        kind: crate::accounts::Kind::Person,
                        member: Some((group, member.member_id)),
                        phone: None,
                        password: None,
                    },
                    &signed.actor,
                    address,
                )
                .await?;
                Ok(Some((a.login, password)))
            }
        }
    }
    .await;
    match done {
        Ok(issued) => answer(
            signed,
            super::account::admin_page_with(
                app,
                signed,
                super::account::AdminFailed::None,
                issued.map(|(l, p)| (l, p, false)),
                Some(
                    signed
                        .t(
                            "成员已增加，账号已就绪。",
                            "The member is added, with an account.",
                        )
                        .to_string(),
                ),
            )
            .await,
        ),
        Err(e) if super::page_status(e.kind).is_client_error() => answer(
            signed,
            page_with(
                app,
                signed,
                Failed::GroupStep(raw, "add_member", form, e),
                None,
                None,
            )
            .await,
        ),
        Err(e) => signed.error(e),
    }
}

/// Runs a group command; back to the page saying `done`, or the page with the form that
/// sent it refilled and the refusal next to its field (`member_prefix` names the member
/// fields of that form).
async fn run_group_command<'a>(
    app: &App,
    signed: &Signed,
    group: &GroupId,
    command: AppResult<GroupCommand>,
    member_prefix: &str,
    done: &str,
    failed: impl FnOnce(AppError) -> Failed<'a>,
) -> Response {
    let run = match command {
        Ok(command) => {
            commands::group_command(app, &signed.actor, &signed.web.meta, group, command, None)
                .await
                .map_err(|e| place(e, member_prefix))
        }
        Err(e) => Err(e),
    };
    match run {
        Ok(_) => Redirect::to(&format!("/admin?done={done}")).into_response(),
        Err(e) if super::page_status(e.kind).is_client_error() => {
            answer(signed, page_with(app, signed, failed(e), None, None).await)
        }
        Err(e) => signed.error(e),
    }
}
