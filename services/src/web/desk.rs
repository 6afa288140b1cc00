//! The mediator desk: the group's cases, opening a case, the case page with a form for each
//! next step the rules allow, and the printable case file.

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use cqrs_es::EventEnvelope;
use serde::de::DeserializeOwned;
use tiaojie_events::case::*;
use tiaojie_events::metadata::{EventMetadata, Role};
use tiaojie_events::reference::CategoryGroup;
use tiaojie_events::{
    CaseId, CategoryCode, CommunityId, IncidentId, MemberId, OrderId, PartyId, SessionId, Timestamp,
};
use tiaojie_projections::models::case_status::{self, CaseFilter, CaseView, Sort};

use super::forms::{Field, FormView, Kind};
use super::{labels, local, parse_local, render, Chrome, FormData, Lang, Signed};
use crate::app::App;
use crate::app_error::ErrorKind;
use crate::auth::Actor;
use crate::commands;
use crate::error::{ApiError, ApiResult};
use crate::parties::{self, PartyData, PartyKind, PartyView};
use crate::queries::{await_consistency, consistency_token};

// ---------------------------------------------------------------------------------------
// Helpers shared by the pages

pub fn community_name(app: &App, lang: Lang, code: &str) -> String {
    CommunityId::parse(code)
        .ok()
        .and_then(|c| app.reference.community(&c).cloned())
        .map(|c| lang.t(&c.name_zh, &c.name_en).to_string())
        .unwrap_or_else(|| code.to_string())
}

pub fn category_name(app: &App, lang: Lang, code: &str) -> String {
    CategoryCode::parse(code)
        .ok()
        .and_then(|c| app.reference.category(&c).cloned())
        .map(|c| lang.t(&c.name_zh, &c.name_en).to_string())
        .unwrap_or_else(|| code.to_string())
}

pub fn district_name(app: &App, lang: Lang, code: &str) -> String {
    app.reference
        .districts
        .iter()
        .find(|d| d.id.as_str() == code)
        .map(|d| lang.t(&d.name_zh, &d.name_en).to_string())
        .unwrap_or_else(|| code.to_string())
}

fn short(id: &str) -> String {
    id.chars().take(8).collect()
}

fn clip(s: &str, n: usize) -> String {
    let mut out: String = s.chars().take(n).collect();
    if s.chars().count() > n {
        out.push('…');
    }
    out
}

pub(super) fn unprocessable(field: &str, zh: &str, en: &str) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", en, zh).with_field(field, en)
}

/// A code from a select (the same serde names as the API).
fn code<T: DeserializeOwned>(form: &FormData, field: &str, what_zh: &str) -> ApiResult<T> {
    let v = form.get(field).trim();
    if v.is_empty() {
        return Err(unprocessable(
            field,
            &format!("请选择{what_zh}"),
            &format!("choose the {field}"),
        ));
    }
    serde_json::from_value(serde_json::Value::String(v.to_string())).map_err(|_| {
        unprocessable(
            field,
            &format!("{what_zh}不正确"),
            &format!("{field} is not valid"),
        )
    })
}

fn id<T>(
    form: &FormData,
    field: &str,
    what_zh: &str,
    parse: impl Fn(&str) -> Result<T, tiaojie_events::ids::IdError>,
) -> ApiResult<T> {
    let v = form.get(field).trim();
    if v.is_empty() {
        return Err(unprocessable(
            field,
            &format!("请选择{what_zh}"),
            &format!("choose the {field}"),
        ));
    }
    parse(v).map_err(|_| {
        unprocessable(
            field,
            &format!("{what_zh}不正确"),
            &format!("{field} is not valid"),
        )
    })
}

fn when(app: &App, form: &FormData, field: &str) -> ApiResult<Option<Timestamp>> {
    match form.opt(field) {
        None => Ok(None),
        Some(s) => parse_local(app, s).map(Some).ok_or_else(|| {
            unprocessable(
                field,
                "时间格式不正确（年-月-日 时:分）",
                &format!("{field} is not a time"),
            )
        }),
    }
}

fn when_required(app: &App, form: &FormData, field: &str) -> ApiResult<Timestamp> {
    when(app, form, field)?
        .ok_or_else(|| unprocessable(field, "请填写时间", &format!("{field} is required")))
}

/// Hours with decimals (as people say them) to whole minutes.
fn hours_to_minutes(form: &FormData, field: &str) -> ApiResult<u32> {
    let v = form.get(field).trim();
    if v.is_empty() {
        return Ok(0);
    }
    let h: f64 = v
        .parse()
        .map_err(|_| unprocessable(field, "停工时长应为数字（小时）", "hours must be a number"))?;
    if !(0.0..=720.0).contains(&h) || !h.is_finite() {
        return Err(unprocessable(
            field,
            "停工时长应在0至720小时之间",
            "hours must be between 0 and 720",
        ));
    }
    Ok((h * 60.0).round() as u32)
}

pub(super) fn enum_str<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// The desk: the group's cases

#[derive(Debug, Clone)]
pub struct CaseLine {
    pub id: String,
    pub short: String,
    pub community: String,
    pub district: String,
    pub category: String,
    pub kind: String,
    pub status: String,
    pub status_code: String,
    pub due: String,
    pub overdue: bool,
    pub order_due: String,
    pub summary: String,
    pub reported: String,
    pub assignee: bool,
    pub incidents: i64,
}

pub fn line(app: &App, lang: Lang, v: &CaseView) -> CaseLine {
    let r = &v.row;
    CaseLine {
        id: r.case_id.clone(),
        short: short(&r.case_id),
        community: community_name(app, lang, &r.community),
        district: district_name(app, lang, &r.district),
        category: category_name(app, lang, &r.category),
        kind: labels::kind(lang, &r.kind),
        status: labels::status(lang, &r.status),
        status_code: r.status.clone(),
        due: match (&r.due_kind, &r.due_at) {
            (Some(k), Some(at)) => format!("{} {}", labels::due_kind(lang, k), local(app, at)),
            _ => String::new(),
        },
        overdue: v.overdue,
        order_due: r
            .order_due_at
            .as_deref()
            .map(|t| local(app, t))
            .unwrap_or_default(),
        summary: clip(&r.summary, 60),
        reported: local(app, &r.reported_at),
        assignee: r.assignee.is_some(),
        incidents: r.incidents,
    }
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ListQuery {
    pub status: Option<String>,
    pub community: Option<String>,
    pub kind: Option<String>,
    pub overdue: Option<String>,
    pub text: Option<String>,
    pub cursor: Option<String>,
    pub sort: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Filters {
    pub status: String,
    pub community: String,
    pub kind: String,
    pub overdue: bool,
    pub text: String,
    pub sort: String,
    pub statuses: Vec<(String, String)>,
    pub communities: Vec<(String, String)>,
    pub kinds: Vec<(String, String)>,
    pub next: Option<String>,
}

/// Lists cases for a page: members see their group's communities, supervisors all.
pub async fn list_for(
    app: &App,
    actor: &Actor,
    lang: Lang,
    q: &ListQuery,
    limit: i64,
) -> ApiResult<(Vec<CaseLine>, Filters)> {
    let scope = commands::scope(app, actor).await?;
    let status = q.status.clone().unwrap_or_default();
    let statuses: Vec<String> = match status.as_str() {
        "" => vec![],
        "open" => CaseStatus::ALL
            .iter()
            .filter(|s| s.is_open())
            .map(|s| s.as_str().to_string())
            .collect(),
        s if CaseStatus::parse(s).is_some() => vec![s.to_string()],
        _ => vec![],
    };
    let community = q.community.clone().unwrap_or_default();
    let kind = q
        .kind
        .clone()
        .filter(|k| k == "resident_objection" || k == "construction_obstruction");
    let sort = match q.sort.as_deref() {
        Some("recent") => Sort::Recent,
        _ => Sort::Due,
    };
    let filter = CaseFilter {
        status: statuses,
        kind: kind.clone(),
        communities: if community.is_empty() {
            vec![]
        } else {
            vec![community.clone()]
        },
        district: None,
        overdue: q.overdue.as_deref().map(|v| v == "1" || v == "on"),
        text: crate::queries::text_param(q.text.as_deref())?,
        visible_communities: scope
            .clone()
            .map(|s| s.into_iter().map(|c| c.to_string()).collect()),
        sort,
        limit,
        cursor: q.cursor.clone().filter(|c| !c.is_empty()),
    };
    let mask = crate::masking::ListMask(app.clone());
    let mask = crate::masking::masks_for(actor).then_some(&mask as &dyn case_status::SummaryMask);
    let page = case_status::list(&app.db, &app.keys, &filter, &app.now(), mask)
        .await
        .map_err(|e| match e {
            case_status::QueryError::BadCursor => {
                ApiError::bad_request("invalid_cursor", "The cursor is not valid", "分页游标无效")
            }
            case_status::QueryError::Store(s) => ApiError::store(s),
        })?;
    let mut statuses = vec![
        (String::new(), lang.t("全部状态", "Any status").to_string()),
        ("open".into(), lang.t("在办", "Open").to_string()),
    ];
    statuses.extend(
        CaseStatus::ALL
            .iter()
            .map(|s| (s.as_str().to_string(), labels::status(lang, s.as_str()))),
    );
    let mut communities = vec![(
        String::new(),
        lang.t("全部小区", "Any community").to_string(),
    )];
    communities.extend(
        app.reference
            .communities
            .iter()
            .filter(|c| scope.as_ref().is_none_or(|s| s.contains(&c.id)))
            .map(|c| (c.id.to_string(), lang.t(&c.name_zh, &c.name_en).to_string())),
    );
    let kinds = vec![
        (String::new(), lang.t("全部类型", "Any kind").to_string()),
        (
            "resident_objection".into(),
            labels::kind(lang, "resident_objection"),
        ),
        (
            "construction_obstruction".into(),
            labels::kind(lang, "construction_obstruction"),
        ),
    ];
    let filters = Filters {
        status,
        community,
        kind: kind.unwrap_or_default(),
        overdue: filter.overdue == Some(true),
        text: q.text.clone().unwrap_or_default(),
        sort: if sort == Sort::Recent {
            "recent".into()
        } else {
            "due".into()
        },
        statuses,
        communities,
        kinds,
        next: page.next_cursor.clone(),
    };
    Ok((
        page.items.iter().map(|v| line(app, lang, v)).collect(),
        filters,
    ))
}

impl Filters {
    /// The query string of the next page, keeping the filters.
    pub fn next_query(&self) -> String {
        let Some(c) = &self.next else {
            return String::new();
        };
        let mut q = format!("cursor={}", super::encode(c));
        for (k, v) in [
            ("status", &self.status),
            ("community", &self.community),
            ("kind", &self.kind),
            ("text", &self.text),
            ("sort", &self.sort),
        ] {
            if !v.is_empty() {
                q.push_str(&format!("&{k}={}", super::encode(v)));
            }
        }
        if self.overdue {
            q.push_str("&overdue=1");
        }
        q
    }
}

#[derive(Template)]
#[template(path = "desk.html")]
struct DeskPage {
    chrome: Chrome,
    cases: Vec<CaseLine>,
    filters: Filters,
    group: String,
    action: &'static str,
}

pub async fn desk(State(app): State<App>, signed: Signed, Query(q): Query<ListQuery>) -> Response {
    if !signed.actor.is_group_role() {
        return Redirect::to(super::landing(&signed.actor)).into_response();
    }
    let (cases, filters) = match list_for(&app, &signed.actor, signed.web.lang, &q, 50).await {
        Ok(x) => x,
        Err(e) => return signed.error(e),
    };
    let group = match signed.actor.group {
        Some(g) => app
            .directory
            .group_state(&g)
            .await
            .ok()
            .flatten()
            .map(|g| g.name)
            .unwrap_or_default(),
        None => String::new(),
    };
    render(&DeskPage {
        chrome: signed.chrome(signed.t("我的案件", "My cases").into(), "desk"),
        cases,
        filters,
        group,
        action: "/desk",
    })
}

// ---------------------------------------------------------------------------------------
// Opening a case

#[derive(Debug, Clone)]
pub struct Pick {
    pub value: String,
    pub label: String,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "new_case.html")]
struct NewCasePage {
    chrome: Chrome,
    form: FormData,
    errors: HashMap<String, String>,
    general: Option<String>,
    kinds: Vec<(String, String)>,
    communities: Vec<(String, String)>,
    causes: Vec<(String, String)>,
    work_items: Vec<(String, String)>,
    channels: Vec<(String, String)>,
    roles: Vec<(String, String)>,
    party_kinds: Vec<(String, String)>,
    /// Registry parties found by the search or chosen before, as `party_id|role`.
    picks: Vec<Pick>,
    searched: bool,
    now: String,
}

impl FormData {
    /// Whether a field holds this value (selected options).
    pub fn is(&self, name: &str, value: &str) -> bool {
        self.get(name) == value
    }

    /// The value of a field, or a default when the form is new.
    pub fn or<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        if self.0.is_empty() {
            default
        } else {
            self.get(name)
        }
    }
}

fn party_kinds(lang: Lang) -> Vec<(String, String)> {
    [
        ("resident", "居民", "Resident"),
        ("contractor", "施工单位代表", "Contractor's representative"),
        ("property_company", "物业公司代表", "Property company"),
        ("utility", "管线单位代表", "Utility"),
        ("other", "其他", "Other"),
    ]
    .iter()
    .map(|(v, zh, en)| (v.to_string(), lang.t(zh, en).to_string()))
    .collect()
}

async fn new_case_form(
    app: &App,
    signed: &Signed,
    form: FormData,
    error: Option<ApiError>,
    picks: Vec<Pick>,
    searched: bool,
) -> Response {
    let lang = signed.web.lang;
    let scope = match commands::scope(app, &signed.actor).await {
        Ok(s) => s,
        Err(e) => return signed.error(e.into()),
    };
    let communities = app
        .reference
        .communities
        .iter()
        .filter(|c| scope.as_ref().is_none_or(|s| s.contains(&c.id)))
        .map(|c| {
            (
                c.id.to_string(),
                format!(
                    "{}（{}）",
                    lang.t(&c.name_zh, &c.name_en),
                    district_name(app, lang, c.district.as_str())
                ),
            )
        })
        .collect();
    let cats = |g: CategoryGroup| {
        app.reference
            .dispute_categories
            .iter()
            .filter(|c| c.group == g)
            .map(|c| {
                (
                    c.code.to_string(),
                    lang.t(&c.name_zh, &c.name_en).to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    let mut errors = HashMap::new();
    let mut general = None;
    if let Some(e) = &error {
        let message = if lang.is_en() {
            e.title.clone()
        } else {
            e.detail_zh.clone()
        };
        match e.errors.first() {
            Some(p) => {
                let f = p.field.trim_start_matches('/').replace('/', ".");
                errors.insert(f, message);
            }
            None => general = Some(message),
        }
    }
    let mut chrome = signed.chrome(signed.t("登记新案件", "Open a case").into(), "desk");
    if errors.is_empty() && general.is_none() && error.is_some() {
        chrome.flash = None;
    }
    let page = NewCasePage {
        chrome,
        form,
        errors,
        general,
        kinds: vec![
            (
                "resident_objection".into(),
                labels::kind(lang, "resident_objection"),
            ),
            (
                "construction_obstruction".into(),
                labels::kind(lang, "construction_obstruction"),
            ),
        ],
        communities,
        causes: cats(CategoryGroup::Cause),
        work_items: cats(CategoryGroup::WorkItem),
        channels: labels::CHANNELS
            .iter()
            .map(|c| (enum_str(c), labels::channel(lang, *c).to_string()))
            .collect(),
        roles: labels::PARTY_ROLES
            .iter()
            .map(|r| (enum_str(r), labels::party_role(lang, *r).to_string()))
            .collect(),
        party_kinds: party_kinds(lang),
        picks,
        searched,
        now: super::input_value(app, app.now()),
    };
    let mut r = render(&page);
    if let Some(e) = error {
        *r.status_mut() = if e.status.is_client_error() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            e.status
        };
    }
    r
}

pub async fn new_case_page(State(app): State<App>, signed: Signed) -> Response {
    if !signed.actor.is_group_role() {
        return signed.error(ApiError::forbidden_zh((
            "only mediation group members open cases",
            "只有矛盾调解小组成员可以登记案件",
        )));
    }
    new_case_form(&app, &signed, FormData::default(), None, vec![], false).await
}

fn party_label(lang: Lang, v: &PartyView) -> String {
    match &v.data {
        Some(d) => {
            let mut s = d.name.clone();
            let place: Vec<&str> = [&d.building, &d.unit, &d.household]
                .iter()
                .filter_map(|x| x.as_deref())
                .collect();
            if !place.is_empty() {
                s.push_str(&format!("（{}）", place.join("-")));
            }
            if let Some(o) = &d.organisation {
                s.push_str(&format!(" {o}"));
            }
            s
        }
        None => lang.t("（已删除）", "(erased)").to_string(),
    }
}

/// The registry parties the form already carries (chosen before, or registered by an
/// earlier attempt that the rules then refused), kept checked.
async fn kept_picks(app: &App, signed: &Signed, form: &FormData) -> Vec<Pick> {
    let mut picks = Vec::new();
    for v in form.all("existing") {
        let Some((pid, _)) = v.split_once('|') else {
            continue;
        };
        let label = match parties::view(app, &signed.actor, &signed.web.meta, pid, None, None).await
        {
            Ok(p) => party_label(signed.web.lang, &p),
            Err(_) => continue,
        };
        let role = v
            .split_once('|')
            .and_then(|(_, r)| {
                serde_json::from_value::<PartyRole>(serde_json::Value::String(r.into())).ok()
            })
            .map(|r| labels::party_role(signed.web.lang, r))
            .unwrap_or("");
        picks.push(Pick {
            value: v.clone(),
            label: format!("{label} · {role}"),
            checked: true,
        });
    }
    picks
}

pub async fn new_case(
    State(app): State<App>,
    signed: Signed,
    Form(form): Form<FormData>,
) -> Response {
    if let Some(r) = signed.csrf_rejection(&form) {
        return r;
    }
    if !signed.actor.is_group_role() {
        return signed.error(ApiError::forbidden_zh((
            "only mediation group members open cases",
            "只有矛盾调解小组成员可以登记案件",
        )));
    }
    let mut picks = kept_picks(&app, &signed, &form).await;
    if form.get("do") == "search" {
        let (name, phone) = (form.opt("search_name"), form.opt("search_phone"));
        if name.is_none() && phone.is_none() {
            let e = unprocessable(
                "search_name",
                "请输入姓名或电话再查找",
                "enter a name or a phone number to search",
            );
            return new_case_form(&app, &signed, form, Some(e), picks, false).await;
        }
        let found =
            match parties::search(&app, &signed.actor, &signed.web.meta, name, phone, None).await {
                Ok(f) => f,
                Err(e) => {
                    return new_case_form(&app, &signed, form, Some(e.into()), picks, false).await
                }
            };
        let role = form.opt("search_role").unwrap_or("complainant").to_string();
        for p in found {
            let value = format!("{}|{}", p.party_id, role);
            if picks.iter().any(|x| x.value.starts_with(&p.party_id)) {
                continue;
            }
            let role_label =
                serde_json::from_value::<PartyRole>(serde_json::Value::String(role.clone()))
                    .map(|r| labels::party_role(signed.web.lang, r))
                    .unwrap_or("");
            picks.push(Pick {
                value,
                label: format!("{} · {role_label}", party_label(signed.web.lang, &p)),
                checked: false,
            });
        }
        return new_case_form(&app, &signed, form, None, picks, true).await;
    }
    match open_from_form(&app, &signed, &form).await {
        Ok((case_id, version)) => {
            let _ =
                await_consistency(&app, Some(&consistency_token("Case", &case_id, version))).await;
            Redirect::to(&format!("/cases/{case_id}?done=opened")).into_response()
        }
        Err((e, registered)) => {
            // Parties registered before the rules refused the case stay registered: carry
            // them as chosen parties so that a second attempt does not register them again.
            let mut form = form;
            for (i, (pid, role)) in registered.iter().enumerate() {
                let prefix = format!("p{}_", i + 1);
                form.0.retain(|(k, _)| !k.starts_with(&prefix));
                let value = format!("{pid}|{role}");
                form.0.push(("existing".into(), value.clone()));
                picks.push(Pick {
                    value,
                    label: format!(
                        "{} · {}",
                        form_name_of(&form, i + 1),
                        signed.t("已登记", "registered")
                    ),
                    checked: true,
                });
            }
            let picks = if registered.is_empty() {
                picks
            } else {
                kept_picks(&app, &signed, &form).await
            };
            new_case_form(&app, &signed, form, Some(e), picks, false).await
        }
    }
}

fn form_name_of(form: &FormData, i: usize) -> String {
    form.get(&format!("p{i}_name")).to_string()
}

const NEW_PARTY_ROWS: usize = 2;

/// Registers the new parties and opens the case. On refusal, answers the problem and the
/// parties registered on the way.
async fn open_from_form(
    app: &App,
    signed: &Signed,
    form: &FormData,
) -> Result<(String, u64), (ApiError, Vec<(String, String)>)> {
    let fail = |e: ApiError| (e, vec![]);
    let kind: CaseKind = code(form, "kind", "案件类型").map_err(fail)?;
    let community = id(form, "community", "小区", CommunityId::parse).map_err(fail)?;
    let category = id(form, "category", "纠纷类别", CategoryCode::parse).map_err(fail)?;
    let channel: IntakeChannel = code(form, "channel", "来源渠道").map_err(fail)?;
    let occurred_at = when(app, form, "occurred_at").map_err(fail)?;
    let mut refs: Vec<PartyRef> = Vec::new();
    for v in form.all("existing") {
        let Some((pid, role)) = v.split_once('|') else {
            continue;
        };
        let party_id = PartyId::parse(pid).map_err(|_| {
            fail(unprocessable(
                "parties",
                "当事人不正确",
                "a chosen party is not valid",
            ))
        })?;
        let role: PartyRole = serde_json::from_value(serde_json::Value::String(role.into()))
            .map_err(|_| {
                fail(unprocessable(
                    "parties",
                    "当事人身份不正确",
                    "a party role is not valid",
                ))
            })?;
        refs.push(PartyRef { party_id, role });
    }
    // Check every new party before registering any.
    let mut new_parties = Vec::new();
    for i in 1..=NEW_PARTY_ROWS {
        let p = |f: &str| format!("p{i}_{f}");
        if form.opt(&p("name")).is_none() && form.opt(&p("phone")).is_none() {
            continue;
        }
        let role: PartyRole = code(form, &p("role"), "当事人身份").map_err(fail)?;
        let pkind: PartyKind = code(form, &p("kind"), "当事人类别").map_err(fail)?;
        let opt = |f: &str| form.opt(&p(f)).map(str::to_string);
        let data = PartyData {
            name: form.get(&p("name")).to_string(),
            phone: opt("phone"),
            building: opt("building"),
            unit: opt("unit"),
            household: opt("household"),
            organisation: opt("organisation"),
        };
        let data = parties::validate(&data).map_err(|e| {
            let mut e = ApiError::from(e);
            for fp in &mut e.errors {
                fp.field = p(fp.field.trim_start_matches('/'));
            }
            fail(e)
        })?;
        new_parties.push((role, pkind, data));
    }
    let incident = if kind == CaseKind::ConstructionObstruction {
        Some(IncidentInput {
            incident_id: IncidentId::new(),
            occurred_at,
            location: form.get("incident_location").to_string(),
            work_item: id(
                form,
                "incident_work_item",
                "受阻施工项目",
                CategoryCode::parse,
            )
            .map_err(fail)?,
            obstructing_parties: vec![],
            work_stopped_minutes: hours_to_minutes(form, "incident_hours").map_err(fail)?,
            police_called: form.has("incident_police"),
            description: form.get("incident_description").to_string(),
        })
    } else {
        None
    };
    let mut registered = Vec::new();
    for (role, pkind, data) in new_parties {
        match parties::register(
            app,
            &signed.actor,
            &signed.web.meta,
            pkind,
            &community,
            &data,
        )
        .await
        {
            Ok(pid) => {
                registered.push((pid.to_string(), enum_str(&role)));
                refs.push(PartyRef {
                    party_id: pid,
                    role,
                });
            }
            Err(e) => return Err((e.into(), registered)),
        }
    }
    let incident = incident.map(|mut i| {
        i.obstructing_parties = refs
            .iter()
            .filter(|r| r.role == PartyRole::Obstructor)
            .map(|r| r.party_id)
            .collect();
        i
    });
    let case_id = CaseId::new();
    let command = CaseCommand::OpenCase(OpenCase {
        kind,
        community,
        category,
        summary: form.get("summary").to_string(),
        occurred_at,
        channel,
        parties: refs,
        incident,
    });
    match commands::case_command(
        app,
        &signed.actor,
        &signed.web.meta,
        &case_id,
        command,
        None,
    )
    .await
    {
        Ok(o) => Ok((o.id, o.version)),
        Err(e) => {
            let mut e = ApiError::from(e);
            for fp in &mut e.errors {
                fp.field = match fp.field.as_str() {
                    "location" | "incident.location" => "incident_location",
                    "description" | "incident.description" => "incident_description",
                    "work_stopped_minutes" => "incident_hours",
                    "incident.work_item" => "incident_work_item",
                    "incident.occurred_at" => "occurred_at",
                    other => other,
                }
                .to_string();
            }
            Err((e, registered))
        }
    }
}

// ---------------------------------------------------------------------------------------
// The case page

#[derive(Debug, Clone)]
pub struct Fact {
    pub label: String,
    pub value: String,
}

#[derive(Debug, Clone)]
pub struct TimelineEntry {
    pub sequence: u64,
    pub title: String,
    pub at: String,
    pub business_at: String,
    pub who: String,
    pub details: Vec<Fact>,
    pub kind: String,
}

#[derive(Debug, Clone)]
pub struct PartyLine {
    pub id: String,
    pub role: String,
    pub name: String,
    pub phone: String,
    pub place: String,
    pub visibility: String,
}

/// What the case page needs, loaded once: the view, the state, the history, the people.
struct Loaded {
    view: CaseView,
    case: Case,
    version: u64,
    events: Vec<EventEnvelope<Case>>,
    parties: Vec<PartyLine>,
    party_names: HashMap<String, String>,
    members: BTreeMap<MemberId, String>,
    group_name: String,
    street_office: String,
}

/// `reveal`: a supervisor's reason to see the parties in clear (each reveal is logged).
async fn load(app: &App, signed: &Signed, raw: &str, reveal: Option<&str>) -> ApiResult<Loaded> {
    if !signed.actor.reads_cases() {
        return Err(ApiError::forbidden_zh((
            "this role does not read cases",
            "该账号不能查看案件",
        )));
    }
    let case_id = CaseId::parse(raw).map_err(|_| ApiError::not_found("case"))?;
    let id = case_id.to_string();
    let (case, version) = app.stores.load_case(&id).await?;
    let Some(community) = case.community.clone() else {
        return Err(ApiError::not_found("case"));
    };
    if let Some(scope) = commands::scope(app, &signed.actor).await? {
        if !scope.contains(&community) {
            return Err(ApiError::out_of_scope());
        }
    }
    await_consistency(app, Some(&consistency_token("Case", &id, version))).await?;
    let view = case_status::get_open(&app.db, &app.keys, &id, &app.now())
        .await?
        .ok_or_else(|| ApiError::not_found("case"))?;
    let mut events = app.stores.case_events(&id).await?;
    let mut view = view;
    if crate::masking::masks_for(&signed.actor) && reveal.is_none() {
        let ids: Vec<_> = case.parties.iter().map(|p| p.party_id).collect();
        let m = crate::masking::TextMasker::for_parties(app, &ids).await?;
        view.row.summary = m.apply(&view.row.summary);
        for e in &mut events {
            e.payload = m.event(&e.payload);
        }
    }
    let lang = signed.web.lang;
    let mut parties_out = Vec::new();
    let mut party_names = HashMap::new();
    for p in &case.parties {
        let pid = p.party_id.to_string();
        let role = labels::party_role(lang, p.role).to_string();
        let line = match parties::view(
            app,
            &signed.actor,
            &signed.web.meta,
            &pid,
            reveal,
            Some(&id),
        )
        .await
        {
            Ok(v) => {
                let d = v.data.clone().unwrap_or_default();
                let place: Vec<String> = [&d.building, &d.unit, &d.household]
                    .iter()
                    .filter_map(|x| (*x).clone())
                    .collect();
                PartyLine {
                    id: pid.clone(),
                    role,
                    name: if v.data.is_some() {
                        d.name.clone()
                    } else {
                        lang.t("（已删除）", "(erased)").into()
                    },
                    phone: d.phone.clone().unwrap_or_default(),
                    place: [place.join("-"), d.organisation.clone().unwrap_or_default()]
                        .into_iter()
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join(" "),
                    visibility: v.visibility.clone(),
                }
            }
            Err(e) if e.kind == ErrorKind::NotFound => PartyLine {
                id: pid.clone(),
                role,
                name: format!(
                    "{} {}",
                    lang.t("未登记当事人", "unregistered party"),
                    short(&pid)
                ),
                phone: String::new(),
                place: String::new(),
                visibility: "unregistered".into(),
            },
            Err(e) => return Err(e.into()),
        };
        party_names.insert(pid, format!("{}（{}）", line.name, line.role));
        parties_out.push(line);
    }
    let (members, group_name, street_office) = match &case.group {
        Some(g) => match app.directory.group_state(g).await? {
            Some(g) => (
                g.members
                    .iter()
                    .map(|(id, m)| (*id, m.name.clone()))
                    .collect(),
                g.name.clone(),
                g.street_office.clone(),
            ),
            None => (BTreeMap::new(), String::new(), String::new()),
        },
        None => (BTreeMap::new(), String::new(), String::new()),
    };
    Ok(Loaded {
        view,
        case,
        version,
        events,
        parties: parties_out,
        party_names,
        members,
        group_name,
        street_office,
    })
}

fn timeline(app: &App, lang: Lang, l: &Loaded) -> Vec<TimelineEntry> {
    let member = |id: &str| {
        MemberId::parse(id)
            .ok()
            .and_then(|m| l.members.get(&m).cloned())
            .unwrap_or_else(|| short(id))
    };
    let party = |id: &str| l.party_names.get(id).cloned().unwrap_or_else(|| short(id));
    let mut out = Vec::new();
    for e in l.events.iter().rev() {
        let m = EventMetadata::from_map(&e.metadata);
        let mut details = Vec::new();
        let mut add = |zh: &str, en: &str, value: String| {
            if !value.is_empty() {
                details.push(Fact {
                    label: lang.t(zh, en).to_string(),
                    value,
                });
            }
        };
        match &e.payload {
            CaseEvent::CaseOpened {
                community,
                category,
                channel,
                summary,
                ..
            } => {
                add(
                    "小区",
                    "Community",
                    community_name(app, lang, community.as_str()),
                );
                add(
                    "类别",
                    "Category",
                    category_name(app, lang, category.as_str()),
                );
                add(
                    "来源",
                    "Channel",
                    labels::channel(lang, *channel).to_string(),
                );
                add("案情摘要", "Summary", summary.clone());
            }
            CaseEvent::PartyAdded { party: p } => {
                add("当事人", "Party", party(&p.party_id.to_string()));
            }
            CaseEvent::CaseAssigned { assignee, .. } => {
                add("承办人", "Mediator", member(&assignee.to_string()));
            }
            CaseEvent::SessionScheduled {
                scheduled_for,
                location,
                ..
            } => {
                add("时间", "When", local(app, &scheduled_for.to_canonical()));
                add("地点", "Where", location.clone());
            }
            CaseEvent::SessionHeld {
                attendees,
                minutes_summary,
                ..
            } => {
                let names: Vec<String> = attendees
                    .iter()
                    .map(|a| match a {
                        Attendee::GroupMember { member_id } => member(&member_id.to_string()),
                        Attendee::Party { party_id } => party(&party_id.to_string()),
                        Attendee::Other { role } => role.clone(),
                    })
                    .collect();
                add("出席", "Present", names.join("、"));
                add("会议纪要", "Minutes", minutes_summary.clone());
            }
            CaseEvent::DeadlineExtended {
                new_due, reason, ..
            } => {
                add(
                    "新期限",
                    "New deadline",
                    local(app, &new_due.to_canonical()),
                );
                add("理由", "Reason", reason.clone());
            }
            CaseEvent::AgreementReached {
                terms,
                follow_up_due,
                ..
            } => {
                add("协议内容", "Terms", terms.clone());
                add(
                    "回访期限",
                    "Follow-up due",
                    local(app, &follow_up_due.to_canonical()),
                );
            }
            CaseEvent::MediationFailed { reason, .. } | CaseEvent::CaseEscalated { reason, .. } => {
                add("理由", "Reason", reason.clone());
            }
            CaseEvent::ObstructionIncidentRecorded { incident } => {
                add("地点", "Where", incident.location.clone());
                add(
                    "受阻项目",
                    "Work item",
                    category_name(app, lang, incident.work_item.as_str()),
                );
                let names: Vec<String> = incident
                    .obstructing_parties
                    .iter()
                    .map(|p| party(&p.to_string()))
                    .collect();
                add("阻工人员", "Obstructing", names.join("、"));
                add("情况描述", "Description", incident.description.clone());
            }
            CaseEvent::PoliceInterventionRecorded {
                police_unit,
                outcome,
                ..
            } => {
                add("出警单位", "Police unit", police_unit.clone());
                add("处置结果", "Outcome", outcome.clone());
            }
            CaseEvent::FollowUpVisitRecorded { notes, .. } => {
                add("回访记录", "Notes", notes.clone().unwrap_or_default());
            }
            CaseEvent::SupervisionOrderIssued {
                office,
                instructions,
                respond_by,
                ..
            } => {
                add("督办单位", "Office", office.clone());
                add("督办要求", "Instructions", instructions.clone());
                add(
                    "答复期限",
                    "Respond by",
                    local(app, &respond_by.to_canonical()),
                );
            }
            CaseEvent::SupervisionOrderAnswered { answer, .. } => {
                add("答复内容", "Answer", answer.clone());
            }
            CaseEvent::NoteAdded { note } => add("备注", "Note", note.clone()),
            CaseEvent::CorrectionRecorded {
                field,
                corrected_value,
                reason,
                ..
            } => {
                add("更正字段", "Field", field.clone());
                add("更正为", "Corrected to", corrected_value.clone());
                add("理由", "Reason", reason.clone());
            }
            CaseEvent::CaseWithdrawn { reason, .. } | CaseEvent::CaseReopened { reason, .. } => {
                add("理由", "Reason", reason.clone());
            }
            CaseEvent::CaseClosed { summary, .. } => {
                add("结案说明", "Summary", summary.clone().unwrap_or_default());
            }
            CaseEvent::CaseAccepted { .. } | CaseEvent::WorkResumed { .. } => {}
        }
        out.push(TimelineEntry {
            sequence: e.sequence as u64,
            title: if lang.is_en() {
                labels::event_en(e.payload.type_name()).to_string()
            } else {
                e.payload.describe_zh()
            },
            at: local(app, &m.recorded_at.to_canonical()),
            business_at: e
                .payload
                .business_time()
                .map(|t| local(app, &t.to_canonical()))
                .unwrap_or_default(),
            who: format!("{} · {}", m.actor_name, labels::role(lang, m.role)),
            details,
            kind: e.payload.type_name().to_string(),
        });
    }
    out
}

/// The next steps the rules allow this role on this case, in the order a mediator takes them.
/// The steps the page offers: those the case allows now ([`Case::can`], which shares its
/// rules with the aggregate's `decide`) and the role may take (the permission table of
/// [`crate::auth::may_run_case_step`], which the API checks too).
pub fn steps(case: &Case, role: Role) -> Vec<&'static str> {
    if role == Role::System {
        return vec![];
    }
    case.available_steps()
        .into_iter()
        .filter(|s| crate::auth::may_run_case_step(role, s.command_name()).is_ok())
        .map(CaseStep::name)
        .collect()
}

fn forms(app: &App, lang: Lang, l: &Loaded, role: Role) -> Vec<FormView> {
    let id = &l.view.row.case_id;
    let post = |a: &str| format!("/cases/{id}/do/{a}");
    let t = |zh: &'static str, en: &'static str| lang.t(zh, en);
    let now = super::input_value(app, app.now());
    let at = |name: &str, zh: &'static str, en: &'static str| {
        Field::new(name, t(zh, en), Kind::DateTime)
            .value(now.clone())
            .hint(t("北京时间", "Beijing time"))
    };
    let members: Vec<(String, String)> = l
        .members
        .iter()
        .map(|(id, n)| (id.to_string(), n.clone()))
        .collect();
    let parties: Vec<(String, String)> = l
        .parties
        .iter()
        .map(|p| (p.id.clone(), format!("{}（{}）", p.name, p.role)))
        .collect();
    let with_blank = |mut o: Vec<(String, String)>| {
        o.insert(
            0,
            (String::new(), t("— 请选择 —", "— choose —").to_string()),
        );
        o
    };
    let sessions_open: Vec<(String, String)> = l
        .case
        .sessions
        .iter()
        .filter(|(_, s)| s.held_at.is_none())
        .map(|(id, s)| {
            (
                id.to_string(),
                format!(
                    "{} {}",
                    local(app, &s.scheduled_for.to_canonical()),
                    t("调解会", "session")
                ),
            )
        })
        .collect();
    let sessions_held: Vec<(String, String)> = l
        .case
        .sessions
        .iter()
        .filter_map(|(id, s)| {
            s.held_at.map(|h| {
                (
                    id.to_string(),
                    format!(
                        "{} {}",
                        local(app, &h.to_canonical()),
                        t("已召开的调解会", "held session")
                    ),
                )
            })
        })
        .collect();
    let incidents: Vec<(String, String)> = l
        .case
        .incidents
        .iter()
        .map(|(id, i)| {
            (
                id.to_string(),
                format!(
                    "{} {}",
                    local(app, &i.occurred_at.to_canonical()),
                    t("阻工事件", "incident")
                ),
            )
        })
        .collect();
    let stopped: Vec<(String, String)> = l
        .case
        .incidents
        .iter()
        .filter(|(_, i)| i.work_stopped_minutes > 0 && i.resumed_at.is_none())
        .map(|(id, i)| {
            (
                id.to_string(),
                format!(
                    "{} {}（{}{}）",
                    local(app, &i.occurred_at.to_canonical()),
                    t("阻工事件", "incident"),
                    t("停工", "stopped "),
                    format_hours(i.work_stopped_minutes)
                ),
            )
        })
        .collect();
    let orders: Vec<(String, String)> = l
        .case
        .orders
        .iter()
        .filter(|(_, a)| !**a)
        .map(|(id, _)| {
            (
                id.to_string(),
                format!("{} {}", t("督办", "order"), short(&id.to_string())),
            )
        })
        .collect();
    let work_items: Vec<(String, String)> = app
        .reference
        .dispute_categories
        .iter()
        .filter(|c| c.group == CategoryGroup::WorkItem)
        .map(|c| {
            (
                c.code.to_string(),
                lang.t(&c.name_zh, &c.name_en).to_string(),
            )
        })
        .collect();
    let routes: Vec<(String, String)> = labels::ROUTES
        .iter()
        .map(|r| (enum_str(r), labels::route(lang, *r).to_string()))
        .collect();
    let mut attendees: Vec<(String, String)> = l
        .members
        .iter()
        .map(|(id, n)| {
            (
                format!("m:{id}"),
                format!("{n}（{}）", t("调解小组", "group")),
            )
        })
        .collect();
    attendees.extend(
        l.parties
            .iter()
            .map(|p| (format!("p:{}", p.id), format!("{}（{}）", p.name, p.role))),
    );
    let sequences: Vec<(String, String)> = l
        .events
        .iter()
        .rev()
        .map(|e| {
            (
                e.sequence.to_string(),
                format!(
                    "#{} {}",
                    e.sequence,
                    if lang.is_en() {
                        labels::event_en(e.payload.type_name()).to_string()
                    } else {
                        e.payload.describe_zh()
                    }
                ),
            )
        })
        .collect();
    let mut out = Vec::new();
    for step in steps(&l.case, role) {
        let f = match step {
            "accept" => FormView::new(
                step,
                t("受理", "Accept"),
                post(step),
                t("受理案件", "Accept the case"),
            )
            .field(at("accepted_at", "受理时间", "Accepted at")),
            "assign" => FormView::new(
                step,
                t("指派承办人", "Assign a mediator"),
                post(step),
                t("指派", "Assign"),
            )
            .field(
                Field::new("assignee", t("承办调解员", "Mediator"), Kind::Select)
                    .options(with_blank(members.clone()))
                    .required(),
            )
            .field(at("assigned_at", "指派时间", "Assigned at")),
            "schedule_session" => FormView::new(
                step,
                t("安排调解会", "Schedule a session"),
                post(step),
                t("安排", "Schedule"),
            )
            .field(
                Field::new("scheduled_for", t("调解时间", "When"), Kind::DateTime)
                    .required()
                    .hint(t("北京时间", "Beijing time")),
            )
            .field(Field::new("location", t("地点", "Where"), Kind::Text).required()),
            "record_session" => FormView::new(
                step,
                t("记录调解会", "Record a session"),
                post(step),
                t("保存调解记录", "Save the record"),
            )
            .field(
                Field::new("session_id", t("调解会", "Session"), Kind::Select)
                    .options(sessions_open.clone())
                    .required(),
            )
            .field(at("held_at", "召开时间", "Held at"))
            .field(
                Field::new("attendees", t("出席人员", "Present"), Kind::Multi)
                    .options(attendees.clone())
                    .hint(t("至少一名调解小组成员", "at least one group member")),
            )
            .field(Field::new(
                "other_attendees",
                t(
                    "其他出席人员（身份，用逗号分隔）",
                    "Others present (roles, comma-separated)",
                ),
                Kind::Text,
            ))
            .field(Field::new("minutes_summary", t("会议纪要", "Minutes"), Kind::Area).required()),
            "agreement" => FormView::new(
                step,
                t("达成调解协议", "Record the agreement"),
                post(step),
                t("保存协议", "Save the agreement"),
            )
            .field(
                Field::new("session_id", t("达成协议的调解会", "Session"), Kind::Select)
                    .options(sessions_held.clone())
                    .required(),
            )
            .field(Field::new("terms", t("协议内容", "Terms"), Kind::Area).required())
            .field(at("agreed_at", "达成时间", "Agreed at"))
            .field(
                Field::new(
                    "follow_up_due",
                    t("回访期限", "Follow-up due"),
                    Kind::DateTime,
                )
                .hint(t("不填则按规定天数", "default period when left empty")),
            ),
            "failure" => FormView::new(
                step,
                t("调解不成", "Mediation failed"),
                post(step),
                t("记录调解不成", "Record the failure"),
            )
            .field(
                Field::new("next_route", t("引导途径", "Next route"), Kind::Select)
                    .options(routes.clone())
                    .required(),
            )
            .field(Field::new("reason", t("理由", "Reason"), Kind::Area).required())
            .field(at("failed_at", "时间", "When")),
            "follow_up" => FormView::new(
                step,
                t("回访", "Follow-up visit"),
                post(step),
                t("保存回访", "Save the visit"),
            )
            .field(
                Field::new("satisfaction", t("满意度", "Satisfaction"), Kind::Select)
                    .options(
                        labels::SATISFACTIONS
                            .iter()
                            .map(|s| (enum_str(s), labels::satisfaction(lang, *s).to_string()))
                            .collect(),
                    )
                    .required(),
            )
            .field(Field::new("notes", t("回访记录", "Notes"), Kind::Area))
            .field(at("visited_at", "回访时间", "Visited at")),
            "incident" => FormView::new(
                step,
                t("记录阻挡施工事件", "Record an obstruction incident"),
                post(step),
                t("保存事件", "Save the incident"),
            )
            .field(at("occurred_at", "发生时间", "When"))
            .field(
                Field::new(
                    "location",
                    t("地点（楼栋、单元、路段）", "Where (building, unit, road)"),
                    Kind::Text,
                )
                .required(),
            )
            .field(
                Field::new(
                    "work_item",
                    t("受阻施工项目", "Work item stopped"),
                    Kind::Select,
                )
                .options(with_blank(work_items.clone()))
                .required(),
            )
            .field(
                Field::new(
                    "obstructing_parties",
                    t("阻工人员", "Obstructing parties"),
                    Kind::Multi,
                )
                .options(parties.clone()),
            )
            .field(
                Field::new(
                    "work_stopped_hours",
                    t("停工时长（小时）", "Hours of work stopped"),
                    Kind::Number,
                )
                .value("0"),
            )
            .field(Field::new(
                "police_called",
                t("已报警", "Police called"),
                Kind::Flag,
            ))
            .field(Field::new("description", t("情况描述", "Description"), Kind::Area).required()),
            "resume_work" => FormView::new(
                step,
                t("恢复施工", "Work resumed"),
                post(step),
                t("记录复工", "Record"),
            )
            .field(
                Field::new("incident_id", t("阻工事件", "Incident"), Kind::Select)
                    .options(stopped.clone())
                    .required(),
            )
            .field(at("resumed_at", "复工时间", "Resumed at")),
            "police" => FormView::new(
                step,
                t("公安机关出警处置", "Police intervention"),
                post(step),
                t("保存", "Save"),
            )
            .field(
                Field::new("incident_id", t("相关阻工事件", "Incident"), Kind::Select).options({
                    let mut o = incidents.clone();
                    o.insert(0, (String::new(), t("（无）", "(none)").to_string()));
                    o
                }),
            )
            .field(Field::new("police_unit", t("出警单位", "Police unit"), Kind::Text).required())
            .field(at("intervened_at", "出警时间", "When"))
            .field(Field::new("outcome", t("处置结果", "Outcome"), Kind::Area).required()),
            "extend_deadline" => FormView::new(
                step,
                t("延长调解期限", "Extend the deadline"),
                post(step),
                t("延长", "Extend"),
            )
            .field(Field::new("new_due", t("新期限", "New deadline"), Kind::DateTime).required())
            .field(
                Field::new(
                    "consenting_parties",
                    t(
                        "同意延期的当事人（须全部同意）",
                        "Consenting parties (all must consent)",
                    ),
                    Kind::Multi,
                )
                .options(parties.clone()),
            )
            .field(Field::new("reason", t("理由", "Reason"), Kind::Area).required()),
            "escalate" => FormView::new(
                step,
                t("上报/移交", "Escalate"),
                post(step),
                t("上报", "Escalate"),
            )
            .field(
                Field::new("route", t("上报/移交至", "To"), Kind::Select)
                    .options(routes.clone())
                    .required(),
            )
            .field(Field::new("reason", t("理由", "Reason"), Kind::Area).required())
            .field(at("escalated_at", "时间", "When")),
            "answer_order" => FormView::new(
                step,
                t("答复督办", "Answer a supervision order"),
                post(step),
                t("答复", "Answer"),
            )
            .field(
                Field::new("order_id", t("督办", "Order"), Kind::Select)
                    .options(orders.clone())
                    .required(),
            )
            .field(Field::new("answer", t("答复内容", "Answer"), Kind::Area).required()),
            "supervision_order" => FormView::new(
                step,
                t("下达督办", "Issue a supervision order"),
                post(step),
                t("下达督办", "Issue"),
            )
            .field(Field::new("instructions", t("督办要求", "Instructions"), Kind::Area).required())
            .field(
                Field::new("respond_by", t("答复期限", "Respond by"), Kind::DateTime)
                    .required()
                    .hint(t("北京时间", "Beijing time")),
            ),
            "add_party" => FormView::new(
                step,
                t("追加当事人", "Add a party"),
                post(step),
                t("追加", "Add"),
            )
            .field(
                Field::new("role", t("身份", "Role"), Kind::Select)
                    .options(
                        labels::PARTY_ROLES
                            .iter()
                            .map(|r| (enum_str(r), labels::party_role(lang, *r).to_string()))
                            .collect(),
                    )
                    .required(),
            )
            .field(
                Field::new("kind", t("类别", "Kind"), Kind::Select)
                    .options(party_kinds(lang))
                    .required(),
            )
            .field(Field::new("name", t("姓名或名称", "Name"), Kind::Text).required())
            .field(Field::new("phone", t("电话", "Phone"), Kind::Text))
            .field(Field::new("building", t("楼栋", "Building"), Kind::Text))
            .field(Field::new("unit", t("单元", "Unit"), Kind::Text))
            .field(Field::new("household", t("户", "Household"), Kind::Text))
            .field(Field::new(
                "organisation",
                t("单位（代表单位时）", "Organisation (representatives)"),
                Kind::Text,
            )),
            "note" => FormView::new(
                step,
                t("添加备注", "Add a note"),
                post(step),
                t("添加", "Add"),
            )
            .field(Field::new("note", t("备注", "Note"), Kind::Area).required()),
            "correction" => FormView::new(
                step,
                t("更正记录", "Correct a record"),
                post(step),
                t("记录更正", "Record the correction"),
            )
            .field(
                Field::new(
                    "corrects_sequence",
                    t("被更正的记录", "Record corrected"),
                    Kind::Select,
                )
                .options(sequences.clone())
                .required(),
            )
            .field(Field::new("field", t("更正字段", "Field"), Kind::Text).required())
            .field(
                Field::new(
                    "corrected_value",
                    t("更正为", "Corrected value"),
                    Kind::Area,
                )
                .required(),
            )
            .field(Field::new("reason", t("理由", "Reason"), Kind::Area).required()),
            "withdrawal" => FormView::new(
                step,
                t("申请人撤回", "Withdrawal"),
                post(step),
                t("记录撤回", "Record the withdrawal"),
            )
            .field(Field::new("reason", t("理由", "Reason"), Kind::Area).required())
            .field(at("withdrawn_at", "撤回时间", "When")),
            "close" => {
                let mut f = FormView::new(
                    step,
                    t("结案", "Close the case"),
                    post(step),
                    t("结案", "Close"),
                )
                .field(
                    Field::new("outcome", t("结果", "Outcome"), Kind::Select)
                        .options(with_blank(
                            labels::OUTCOMES
                                .iter()
                                .map(|o| {
                                    (
                                        o.as_str().to_string(),
                                        labels::outcome(lang, *o).to_string(),
                                    )
                                })
                                .collect(),
                        ))
                        .required(),
                )
                .field(Field::new("summary", t("结案说明", "Summary"), Kind::Area))
                .field(at("closed_at", "结案时间", "Closed at"));
                f.danger = true;
                f
            }
            "reopen" => FormView::new(
                step,
                t("重新启动", "Reopen"),
                post(step),
                t("重新启动案件", "Reopen the case"),
            )
            .field(Field::new("reason", t("理由", "Reason"), Kind::Area).required()),
            _ => continue,
        };
        out.push(f.field(Field::new("version", "", Kind::Hidden).value(l.version.to_string())));
    }
    out
}

pub fn format_hours(minutes: u32) -> String {
    if minutes % 60 == 0 {
        format!("{}h", minutes / 60)
    } else {
        format!("{:.1}h", f64::from(minutes) / 60.0)
    }
}

#[derive(Template)]
#[template(path = "case.html")]
struct CasePage {
    chrome: Chrome,
    case: CaseLine,
    facts: Vec<Fact>,
    summary: String,
    parties: Vec<PartyLine>,
    timeline: Vec<TimelineEntry>,
    forms: Vec<FormView>,
    version: u64,
    supervisor: bool,
    revealed: bool,
    leader_note: bool,
}

fn facts(app: &App, lang: Lang, l: &Loaded) -> Vec<Fact> {
    let r = &l.view.row;
    let mut f = vec![
        Fact {
            label: lang.t("案号", "Case no.").into(),
            value: short(&r.case_id),
        },
        Fact {
            label: lang.t("类型", "Kind").into(),
            value: labels::kind(lang, &r.kind),
        },
        Fact {
            label: lang.t("小区", "Community").into(),
            value: format!(
                "{}（{}）",
                community_name(app, lang, &r.community),
                district_name(app, lang, &r.district)
            ),
        },
        Fact {
            label: lang.t("类别", "Category").into(),
            value: category_name(app, lang, &r.category),
        },
        Fact {
            label: lang.t("调解小组", "Mediation group").into(),
            value: l.group_name.clone(),
        },
        Fact {
            label: lang.t("登记时间", "Reported").into(),
            value: local(app, &r.reported_at),
        },
    ];
    if let Some(a) = &r.assignee {
        f.push(Fact {
            label: lang.t("承办人", "Mediator").into(),
            value: MemberId::parse(a)
                .ok()
                .and_then(|m| l.members.get(&m).cloned())
                .unwrap_or_else(|| short(a)),
        });
    }
    if r.incidents > 0 {
        f.push(Fact {
            label: lang.t("阻工事件", "Incidents").into(),
            value: format!(
                "{}，{} {}",
                r.incidents,
                lang.t("停工", "stopped"),
                format_hours(r.work_stopped_minutes.max(0) as u32)
            ),
        });
    }
    if let Some(o) = &r.outcome {
        f.push(Fact {
            label: lang.t("结果", "Outcome").into(),
            value: labels::outcome_code(lang, o),
        });
    }
    f
}

async fn case_page_with(
    app: &App,
    signed: &Signed,
    raw: &str,
    failed: Option<(&str, &FormData, ApiError)>,
    flash: Option<String>,
    reveal: Option<&str>,
) -> Response {
    let lang = signed.web.lang;
    let l = match load(app, signed, raw, reveal).await {
        Ok(l) => l,
        Err(e) => return signed.error(e),
    };
    let mut forms = forms(app, lang, &l, signed.actor.role);
    let mut status = StatusCode::OK;
    let mut unplaced = None;
    if let Some((action, data, e)) = &failed {
        status = if e.status.is_server_error()
            || e.status == StatusCode::CONFLICT
            || e.status == StatusCode::PRECONDITION_FAILED
        {
            e.status
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        match forms.iter_mut().find(|f| f.action == *action) {
            Some(f) => f.refill(data, e, lang),
            None => {
                unplaced = Some(if lang.is_en() {
                    e.title.clone()
                } else {
                    e.detail_zh.clone()
                })
            }
        }
    }
    let case = line(app, lang, &l.view);
    let mut chrome = signed.chrome(
        format!("{} {}", lang.t("案件", "Case"), case.short),
        if signed.actor.is_group_role() {
            "desk"
        } else {
            "supervision"
        },
    );
    chrome.flash = unplaced.or(flash);
    let page = CasePage {
        chrome,
        facts: facts(app, lang, &l),
        summary: l.view.row.summary.clone(),
        parties: l.parties.clone(),
        timeline: timeline(app, lang, &l),
        forms,
        version: l.version,
        supervisor: signed.actor.role == Role::Supervisor,
        revealed: reveal.is_some(),
        leader_note: signed.actor.role == Role::Member && l.case.status.is_open(),
        case,
    };
    let mut r = render(&page);
    *r.status_mut() = status;
    r
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct DoneQuery {
    pub done: Option<String>,
}

pub async fn case_page(
    State(app): State<App>,
    signed: Signed,
    Path(raw): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let flash = q.done.as_deref().map(|d| {
        match d {
            "opened" => signed.t("案件已登记。", "The case has been opened."),
            _ => signed.t("已记录。", "Recorded."),
        }
        .to_string()
    });
    case_page_with(&app, &signed, &raw, None, flash, None).await
}

/// A supervisor sees the parties of a case in clear after giving a reason; the reveal is
/// written to the personal-data access log. Answered with the case page itself (nothing is
/// kept in the session: the next visit is masked again).
pub async fn reveal(
    State(app): State<App>,
    signed: Signed,
    Path(raw): Path<String>,
    Form(form): Form<FormData>,
) -> Response {
    if let Some(r) = signed.csrf_rejection(&form) {
        return r;
    }
    if signed.actor.role != Role::Supervisor {
        return signed.error(ApiError::forbidden_zh((
            "only supervisors reveal masked personal data",
            "只有督查人员可以申请查看脱敏信息",
        )));
    }
    let reason = form.get("reason").trim().to_string();
    if reason.is_empty() {
        let flash = signed.t(
            "查看完整信息须填写理由。",
            "Give a reason to see the full data.",
        );
        return case_page_with(&app, &signed, &raw, None, Some(flash.to_string()), None).await;
    }
    let flash = signed.t(
        "已显示完整信息；本次查看已记入访问记录。",
        "Shown in full; this reveal is in the access log.",
    );
    case_page_with(
        &app,
        &signed,
        &raw,
        None,
        Some(flash.to_string()),
        Some(&reason),
    )
    .await
}

/// Runs one step from its form; back to the case page, or the page with the form refilled.
pub async fn act(
    State(app): State<App>,
    signed: Signed,
    Path((raw, action)): Path<(String, String)>,
    Form(form): Form<FormData>,
) -> Response {
    if let Some(r) = signed.csrf_rejection(&form) {
        return r;
    }
    let Ok(case_id) = CaseId::parse(&raw) else {
        return signed.error(ApiError::not_found("case"));
    };
    let result = run_step(&app, &signed, &case_id, &action, &form).await;
    match result {
        Ok(version) => {
            let _ = await_consistency(
                &app,
                Some(&consistency_token("Case", &case_id.to_string(), version)),
            )
            .await;
            Redirect::to(&format!("/cases/{case_id}?done={}", super::encode(&action)))
                .into_response()
        }
        Err(e) => case_page_with(&app, &signed, &raw, Some((&action, &form, e)), None, None).await,
    }
}

async fn run_step(
    app: &App,
    signed: &Signed,
    case_id: &CaseId,
    action: &str,
    f: &FormData,
) -> ApiResult<u64> {
    let expected: Option<u64> = f.opt("version").and_then(|v| v.parse().ok());
    let opt_text = |k: &str| f.opt(k).map(str::to_string);
    let command = match action {
        "accept" => CaseCommand::AcceptCase(AcceptCase {
            accepted_at: when(app, f, "accepted_at")?,
        }),
        "assign" => CaseCommand::AssignCase(AssignCase {
            assignee: id(f, "assignee", "承办调解员", MemberId::parse)?,
            assigned_at: when(app, f, "assigned_at")?,
        }),
        "schedule_session" => CaseCommand::ScheduleSession(ScheduleSession {
            session_id: SessionId::new(),
            scheduled_for: when_required(app, f, "scheduled_for")?,
            location: f.get("location").to_string(),
        }),
        "record_session" => {
            let mut attendees = Vec::new();
            for a in f.all("attendees") {
                if let Some(m) = a.strip_prefix("m:") {
                    if let Ok(member_id) = MemberId::parse(m) {
                        attendees.push(Attendee::GroupMember { member_id });
                    }
                } else if let Some(p) = a.strip_prefix("p:") {
                    if let Ok(party_id) = PartyId::parse(p) {
                        attendees.push(Attendee::Party { party_id });
                    }
                }
            }
            for role in f.get("other_attendees").split([',', '，', '、']) {
                if !role.trim().is_empty() {
                    attendees.push(Attendee::Other {
                        role: role.trim().to_string(),
                    });
                }
            }
            CaseCommand::RecordSession(RecordSession {
                session_id: id(f, "session_id", "调解会", SessionId::parse)?,
                held_at: when(app, f, "held_at")?,
                attendees,
                minutes_summary: f.get("minutes_summary").to_string(),
            })
        }
        "agreement" => {
            let agreed_at = when(app, f, "agreed_at")?;
            let due = match when(app, f, "follow_up_due")? {
                Some(d) => d,
                None => agreed_at
                    .unwrap_or_else(|| app.now())
                    .plus_days(app.settings.follow_up_days),
            };
            CaseCommand::ReachAgreement(ReachAgreement {
                session_id: id(f, "session_id", "调解会", SessionId::parse)?,
                terms: f.get("terms").to_string(),
                agreed_at,
                follow_up_due: due,
            })
        }
        "failure" => CaseCommand::FailMediation(FailMediation {
            reason: f.get("reason").to_string(),
            next_route: code(f, "next_route", "引导途径")?,
            failed_at: when(app, f, "failed_at")?,
        }),
        "follow_up" => CaseCommand::RecordFollowUp(RecordFollowUp {
            visited_at: when(app, f, "visited_at")?,
            satisfaction: code(f, "satisfaction", "满意度")?,
            notes: opt_text("notes"),
        }),
        "incident" => {
            let mut obstructing = Vec::new();
            for p in f.all("obstructing_parties") {
                obstructing.push(PartyId::parse(&p).map_err(|_| {
                    unprocessable(
                        "obstructing_parties",
                        "阻工人员不正确",
                        "an obstructing party is not valid",
                    )
                })?);
            }
            CaseCommand::RecordIncident(RecordIncident {
                incident: IncidentInput {
                    incident_id: IncidentId::new(),
                    occurred_at: when(app, f, "occurred_at")?,
                    location: f.get("location").to_string(),
                    work_item: id(f, "work_item", "受阻施工项目", CategoryCode::parse)?,
                    obstructing_parties: obstructing,
                    work_stopped_minutes: hours_to_minutes(f, "work_stopped_hours")?,
                    police_called: f.has("police_called"),
                    description: f.get("description").to_string(),
                },
            })
        }
        "resume_work" => CaseCommand::ResumeWork(ResumeWork {
            incident_id: id(f, "incident_id", "阻工事件", IncidentId::parse)?,
            resumed_at: when(app, f, "resumed_at")?,
        }),
        "police" => CaseCommand::RecordPoliceIntervention(RecordPoliceIntervention {
            incident_id: match f.opt("incident_id") {
                None => None,
                Some(_) => Some(id(f, "incident_id", "阻工事件", IncidentId::parse)?),
            },
            police_unit: f.get("police_unit").to_string(),
            intervened_at: when(app, f, "intervened_at")?,
            outcome: f.get("outcome").to_string(),
        }),
        "extend_deadline" => {
            let mut consenting = Vec::new();
            for p in f.all("consenting_parties") {
                consenting.push(PartyId::parse(&p).map_err(|_| {
                    unprocessable("consenting_parties", "当事人不正确", "a party is not valid")
                })?);
            }
            CaseCommand::ExtendDeadline(ExtendDeadline {
                new_due: when_required(app, f, "new_due")?,
                reason: f.get("reason").to_string(),
                consenting_parties: consenting,
                extended_at: None,
            })
        }
        "escalate" => CaseCommand::Escalate(Escalate {
            route: code(f, "route", "上报途径")?,
            reason: f.get("reason").to_string(),
            escalated_at: when(app, f, "escalated_at")?,
        }),
        "answer_order" => CaseCommand::AnswerSupervisionOrder(AnswerSupervisionOrder {
            order_id: id(f, "order_id", "督办", OrderId::parse)?,
            answer: f.get("answer").to_string(),
        }),
        "supervision_order" => CaseCommand::IssueSupervisionOrder(IssueSupervisionOrder {
            order_id: OrderId::new(),
            office: signed.actor.organisation.clone(),
            instructions: f.get("instructions").to_string(),
            respond_by: when_required(app, f, "respond_by")?,
        }),
        "add_party" => {
            let role: PartyRole = code(f, "role", "身份")?;
            let kind: PartyKind = code(f, "kind", "类别")?;
            let (case, _) = app.stores.load_case(&case_id.to_string()).await?;
            let community = case.community.ok_or_else(|| ApiError::not_found("case"))?;
            let data = PartyData {
                name: f.get("name").to_string(),
                phone: opt_text("phone"),
                building: opt_text("building"),
                unit: opt_text("unit"),
                household: opt_text("household"),
                organisation: opt_text("organisation"),
            };
            let pid = parties::register(
                app,
                &signed.actor,
                &signed.web.meta,
                kind,
                &community,
                &data,
            )
            .await?;
            CaseCommand::AddParty(AddParty {
                party: PartyRef {
                    party_id: pid,
                    role,
                },
            })
        }
        "note" => CaseCommand::AddNote(AddNote {
            note: f.get("note").to_string(),
        }),
        "correction" => CaseCommand::RecordCorrection(RecordCorrection {
            corrects_sequence: f.get("corrects_sequence").trim().parse().map_err(|_| {
                unprocessable(
                    "corrects_sequence",
                    "请选择被更正的记录",
                    "choose the record to correct",
                )
            })?,
            field: f.get("field").to_string(),
            corrected_value: f.get("corrected_value").to_string(),
            reason: f.get("reason").to_string(),
        }),
        "withdrawal" => CaseCommand::Withdraw(Withdraw {
            reason: f.get("reason").to_string(),
            withdrawn_at: when(app, f, "withdrawn_at")?,
        }),
        "close" => CaseCommand::CloseCase(CloseCase {
            outcome: match f.opt("outcome") {
                None => None,
                Some(_) => Some(code(f, "outcome", "结果")?),
            },
            closed_at: when(app, f, "closed_at")?,
            summary: opt_text("summary"),
        }),
        "reopen" => CaseCommand::ReopenCase(ReopenCase {
            reason: f.get("reason").to_string(),
            reopened_at: None,
        }),
        _ => return Err(ApiError::not_found("step")),
    };
    let o = commands::case_command(app, &signed.actor, &signed.web.meta, case_id, command, expected)
        .await
        .map_err(|e| {
            if e.kind == ErrorKind::VersionMismatch {
                ApiError::new(
                    StatusCode::CONFLICT,
                    "stale_page",
                    "Someone recorded something on this case since the page was loaded; check the timeline, then submit again",
                    "此案件在您打开页面后已有新的记录，请查看最新记录后再提交",
                )
            } else {
                e.into()
            }
        })?;
    Ok(o.version)
}

// ---------------------------------------------------------------------------------------
// The printable case file

#[derive(Template)]
#[template(path = "print.html")]
struct PrintPage {
    chrome: Chrome,
    case: CaseLine,
    facts: Vec<Fact>,
    summary: String,
    parties: Vec<PartyLine>,
    sections: Vec<(String, Vec<TimelineEntry>)>,
    group: String,
    street_office: String,
    printed_at: String,
}

/// The sections of the printed case file and the events each gathers.
const PRINT_SECTIONS: [(&str, &str, &[&str]); 7] = [
    (
        "一、受理登记",
        "1. Intake",
        &["CaseOpened", "PartyAdded", "CaseAccepted", "CaseAssigned"],
    ),
    (
        "二、调解记录",
        "2. Mediation sessions",
        &["SessionScheduled", "SessionHeld", "DeadlineExtended"],
    ),
    (
        "三、阻挡施工与处置",
        "3. Obstruction and police",
        &[
            "ObstructionIncidentRecorded",
            "PoliceInterventionRecorded",
            "WorkResumed",
        ],
    ),
    (
        "四、调解协议",
        "4. Agreement",
        &["AgreementReached", "MediationFailed", "CaseEscalated"],
    ),
    (
        "五、回访与督办",
        "5. Follow-up and supervision",
        &[
            "FollowUpVisitRecorded",
            "SupervisionOrderIssued",
            "SupervisionOrderAnswered",
        ],
    ),
    (
        "六、结案",
        "6. Closure",
        &["CaseClosed", "CaseWithdrawn", "CaseReopened"],
    ),
    (
        "七、备注与更正",
        "7. Notes and corrections",
        &["NoteAdded", "CorrectionRecorded"],
    ),
];

pub async fn print(State(app): State<App>, signed: Signed, Path(raw): Path<String>) -> Response {
    let lang = signed.web.lang;
    let l = match load(&app, &signed, &raw, None).await {
        Ok(l) => l,
        Err(e) => return signed.error(e),
    };
    let mut all = timeline(&app, lang, &l);
    all.reverse();
    let pick = |kinds: &[&str]| -> Vec<TimelineEntry> {
        all.iter()
            .filter(|e| kinds.contains(&e.kind.as_str()))
            .cloned()
            .collect()
    };
    let sections: Vec<(String, Vec<TimelineEntry>)> = PRINT_SECTIONS
        .iter()
        .map(|(zh, en, kinds)| (lang.t(zh, en).to_string(), pick(kinds)))
        .collect();
    let case = line(&app, lang, &l.view);
    let page = PrintPage {
        chrome: signed.chrome(
            format!(
                "{} {}",
                lang.t("人民调解案卷", "Mediation case file"),
                case.short
            ),
            "desk",
        ),
        facts: facts(&app, lang, &l),
        summary: l.view.row.summary.clone(),
        parties: l.parties.clone(),
        sections,
        group: l.group_name.clone(),
        street_office: l.street_office.clone(),
        printed_at: super::local_ts(&app, app.now()),
        case,
    };
    render(&page)
}
