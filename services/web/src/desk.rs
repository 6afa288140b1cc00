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
use tiaojie_events::{CaseId, CategoryCode, CommunityId, IncidentId, MemberId, PartyId, Timestamp};
use tiaojie_projections::models::case_status::{self, CaseFilter, CaseView, Sort};

use super::forms::{Field, FormView, Kind};
use super::{labels, local, parse_local, render, Chrome, FormData, Lang, Signed};
use crate::app::App;
use crate::app_error::{AppError, AppResult, ErrorKind};
use crate::auth::Actor;
use crate::commands;
use crate::parties::{self, PartyData, PartyKind, PartyView};
use crate::queries::{await_consistency, consistency_token};
use crate::steps::{
    case_step, CaseStepDef, Choices, FieldDef, FormShape, Input, StepContext, StepError,
};

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

pub(super) fn unprocessable(field: &str, zh: &str, en: &str) -> AppError {
    AppError::new(ErrorKind::Refused, "invalid_input", en, zh).with_field(field, en)
}

/// A code from a select (the same serde names as the API).
fn code<T: DeserializeOwned>(form: &FormData, field: &str, what_zh: &str) -> AppResult<T> {
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
) -> AppResult<T> {
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

fn when(app: &App, form: &FormData, field: &str) -> AppResult<Option<Timestamp>> {
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

/// Hours with decimals (as people say them) to whole minutes.
fn hours_to_minutes(form: &FormData, field: &str) -> AppResult<u32> {
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
) -> AppResult<(Vec<CaseLine>, Filters)> {
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
                AppError::invalid("invalid_cursor", "The cursor is not valid", "分页游标无效")
            }
            case_status::QueryError::Store(s) => AppError::store(s),
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
    error: Option<AppError>,
    picks: Vec<Pick>,
    searched: bool,
) -> Response {
    let lang = signed.web.lang;
    let scope = match commands::scope(app, &signed.actor).await {
        Ok(s) => s,
        Err(e) => return signed.error(e),
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
        match e.fields.first() {
            Some((field, _)) => {
                let f = field.trim_start_matches('/').replace('/', ".");
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
        let status = super::page_status(e.kind);
        *r.status_mut() = if status.is_client_error() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            status
        };
    }
    r
}

pub async fn new_case_page(State(app): State<App>, signed: Signed) -> Response {
    if !signed.actor.is_group_role() {
        return signed.error(AppError::forbidden_zh((
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
        return signed.error(AppError::forbidden_zh((
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
                Err(e) => return new_case_form(&app, &signed, form, Some(e), picks, false).await,
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
) -> Result<(String, u64), (AppError, Vec<(String, String)>)> {
    let fail = |e: AppError| (e, vec![]);
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
        let data = parties::validate(&data).map_err(|mut e| {
            for (field, _) in &mut e.fields {
                *field = p(field.trim_start_matches('/'));
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
            Err(e) => return Err((e, registered)),
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
        Err(mut e) => {
            for (field, _) in &mut e.fields {
                *field = match field.as_str() {
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
async fn load(app: &App, signed: &Signed, raw: &str, reveal: Option<&str>) -> AppResult<Loaded> {
    if !signed.actor.reads_cases() {
        return Err(AppError::forbidden_zh((
            "this role does not read cases",
            "该账号不能查看案件",
        )));
    }
    let case_id = CaseId::parse(raw).map_err(|_| AppError::not_found("case"))?;
    let id = case_id.to_string();
    let (case, version) = app.stores.load_case(&id).await?;
    let Some(community) = case.community.clone() else {
        return Err(AppError::not_found("case"));
    };
    if let Some(scope) = commands::scope(app, &signed.actor).await? {
        if !scope.contains(&community) {
            return Err(AppError::out_of_scope());
        }
    }
    await_consistency(app, Some(&consistency_token("Case", &id, version))).await?;
    let view = case_status::get_open(&app.db, &app.keys, &id, &app.now())
        .await?
        .ok_or_else(|| AppError::not_found("case"))?;
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
            Err(e) => return Err(e),
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
pub fn steps(case: &Case, role: Role) -> Vec<CaseStep> {
    if role == Role::System {
        return vec![];
    }
    case.available_steps()
        .into_iter()
        .filter(|s| crate::auth::may_run_case_step(role, s.command_name()).is_ok())
        .collect()
}

/// The choices of a field, filled from the case.
fn choices(app: &App, lang: Lang, l: &Loaded, from: Choices) -> Vec<(String, String)> {
    let t = |zh: &'static str, en: &'static str| lang.t(zh, en);
    let at = |ts: &Timestamp| local(app, &ts.to_canonical());
    match from {
        Choices::Members => l
            .members
            .iter()
            .map(|(id, n)| (id.to_string(), n.clone()))
            .collect(),
        Choices::Parties => l
            .parties
            .iter()
            .map(|p| (p.id.clone(), format!("{}（{}）", p.name, p.role)))
            .collect(),
        Choices::SessionsOpen => l
            .case
            .sessions
            .iter()
            .filter(|(_, s)| s.held_at.is_none())
            .map(|(id, s)| {
                let when = at(&s.scheduled_for);
                (id.to_string(), format!("{when} {}", t("调解会", "session")))
            })
            .collect(),
        Choices::SessionsHeld => l
            .case
            .sessions
            .iter()
            .filter_map(|(id, s)| {
                s.held_at.map(|h| {
                    let held = t("已召开的调解会", "held session");
                    (id.to_string(), format!("{} {held}", at(&h)))
                })
            })
            .collect(),
        Choices::Incidents => l
            .case
            .incidents
            .iter()
            .map(|(id, i)| {
                let when = at(&i.occurred_at);
                (
                    id.to_string(),
                    format!("{when} {}", t("阻工事件", "incident")),
                )
            })
            .collect(),
        Choices::StoppedIncidents => l
            .case
            .incidents
            .iter()
            .filter(|(_, i)| i.work_stopped_minutes > 0 && i.resumed_at.is_none())
            .map(|(id, i)| {
                (
                    id.to_string(),
                    format!(
                        "{} {}（{}{}）",
                        at(&i.occurred_at),
                        t("阻工事件", "incident"),
                        t("停工", "stopped "),
                        format_hours(i.work_stopped_minutes)
                    ),
                )
            })
            .collect(),
        Choices::OpenOrders => l
            .case
            .orders
            .iter()
            .filter(|(_, answered)| !**answered)
            .map(|(id, _)| {
                let id = id.to_string();
                let label = format!("{} {}", t("督办", "order"), short(&id));
                (id, label)
            })
            .collect(),
        Choices::WorkItems => app
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
            .collect(),
        Choices::Routes => labels::ROUTES
            .iter()
            .map(|r| (enum_str(r), labels::route(lang, *r).to_string()))
            .collect(),
        Choices::Satisfactions => labels::SATISFACTIONS
            .iter()
            .map(|s| (enum_str(s), labels::satisfaction(lang, *s).to_string()))
            .collect(),
        Choices::Outcomes => labels::OUTCOMES
            .iter()
            .map(|o| {
                (
                    o.as_str().to_string(),
                    labels::outcome(lang, *o).to_string(),
                )
            })
            .collect(),
        Choices::PartyRoles => labels::PARTY_ROLES
            .iter()
            .map(|r| (enum_str(r), labels::party_role(lang, *r).to_string()))
            .collect(),
        Choices::PartyKinds => party_kinds(lang),
        Choices::Attendees => {
            let group = t("调解小组", "group");
            l.members
                .iter()
                .map(|(id, n)| (format!("m:{id}"), format!("{n}（{group}）")))
                .chain(
                    l.parties
                        .iter()
                        .map(|p| (format!("p:{}", p.id), format!("{}（{}）", p.name, p.role))),
                )
                .collect()
        }
        Choices::Records => l
            .events
            .iter()
            .rev()
            .map(|e| {
                let what = if lang.is_en() {
                    labels::event_en(e.payload.type_name()).to_string()
                } else {
                    e.payload.describe_zh()
                };
                (e.sequence.to_string(), format!("#{} {what}", e.sequence))
            })
            .collect(),
    }
}

/// A form field as the step table defines it.
fn form_field(app: &App, lang: Lang, l: &Loaded, def: &FieldDef, now: &str) -> Field {
    let label = lang.t(def.label.0, def.label.1);
    let field = match def.input {
        Input::Text | Input::OtherAttendees => Field::new(def.name, label, Kind::Text),
        Input::Area => Field::new(def.name, label, Kind::Area),
        Input::Time { now: prefill } => {
            let f = Field::new(def.name, label, Kind::DateTime)
                .hint(lang.t("北京时间", "Beijing time"));
            if prefill {
                f.value(now)
            } else {
                f
            }
        }
        Input::Hours => Field::new(def.name, label, Kind::Number).value("0"),
        Input::Choice { from, blank } => {
            let mut options = choices(app, lang, l, from);
            if let Some((zh, en)) = blank {
                options.insert(0, (String::new(), lang.t(zh, en).to_string()));
            }
            Field::new(def.name, label, Kind::Select).options(options)
        }
        Input::Several(from) => {
            Field::new(def.name, label, Kind::Multi).options(choices(app, lang, l, from))
        }
        Input::Flag => Field::new(def.name, label, Kind::Flag),
    };
    let field = match def.hint {
        Some((zh, en)) => field.hint(lang.t(zh, en)),
        None => field,
    };
    if def.required {
        field.required()
    } else {
        field
    }
}

/// The forms of the steps this role may take on the case now, from the step table.
fn forms(app: &App, lang: Lang, l: &Loaded, role: Role) -> Vec<FormView> {
    let id = &l.view.row.case_id;
    let now = super::input_value(app, app.now());
    steps(&l.case, role)
        .into_iter()
        .map(|step| {
            let def = case_step(step);
            let name = step.name();
            let mut form = FormView::new(
                name,
                lang.t(def.title.0, def.title.1),
                format!("/cases/{id}/do/{name}"),
                lang.t(def.submit.0, def.submit.1),
            );
            form.danger = def.danger;
            for f in def.fields {
                form = form.field(form_field(app, lang, l, f, &now));
            }
            form.field(Field::new("version", "", Kind::Hidden).value(l.version.to_string()))
        })
        .collect()
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
    failed: Option<(&str, &FormData, AppError)>,
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
        let page = super::page_status(e.kind);
        status = if page.is_server_error() || page == StatusCode::CONFLICT {
            page
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
        return signed.error(AppError::forbidden_zh((
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
        return signed.error(AppError::not_found("case"));
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

/// A form's refusal next to its field.
fn refuse(def: &FieldDef, zh: &str, en: &str) -> AppError {
    unprocessable(def.name, zh, en)
}

/// The step's JSON body from its form, as the step table's fields say; and the value of
/// the path part, for steps that have one.
fn form_body(
    app: &App,
    def: &CaseStepDef,
    f: &FormData,
) -> AppResult<(serde_json::Value, Option<String>)> {
    use serde_json::{json, Value};
    let mut body = serde_json::Map::new();
    let mut sub = None;
    for fd in def.fields {
        let (zh, en) = fd.label;
        let raw = f.opt(fd.name);
        let value = match fd.input {
            Input::Text | Input::Area if fd.required => Value::String(f.get(fd.name).to_string()),
            Input::Text | Input::Area => match raw {
                Some(v) => Value::String(v.to_string()),
                None => continue,
            },
            Input::Time { .. } => match raw {
                None if fd.required => {
                    return Err(refuse(fd, "请填写时间", &format!("{en} is required")))
                }
                None => continue,
                Some(s) => match parse_local(app, s) {
                    Some(t) => Value::String(t.to_canonical()),
                    None => {
                        return Err(refuse(
                            fd,
                            "时间格式不正确（年-月-日 时:分）",
                            &format!("{en} is not a time"),
                        ))
                    }
                },
            },
            Input::Hours => json!(hours_to_minutes(f, fd.name)?),
            Input::Choice { from, .. } => match raw {
                None if fd.required => {
                    return Err(refuse(
                        fd,
                        &format!("请选择{zh}"),
                        &format!("choose the {en}"),
                    ))
                }
                None => continue,
                Some(v) if def.sub.is_some_and(|s| s.param == fd.key) => {
                    sub = Some(v.to_string());
                    continue;
                }
                Some(v) if from == Choices::Records => match v.parse::<u64>() {
                    Ok(n) => json!(n),
                    Err(_) => {
                        return Err(refuse(
                            fd,
                            &format!("{zh}不正确"),
                            &format!("{en} is not valid"),
                        ))
                    }
                },
                Some(v) => Value::String(v.to_string()),
            },
            Input::Several(Choices::Attendees) => {
                let mut attendees = Vec::new();
                for a in f.all(fd.name) {
                    attendees.push(match a.split_once(':') {
                        Some(("m", id)) => json!({"kind": "group_member", "member_id": id}),
                        Some(("p", id)) => json!({"kind": "party", "party_id": id}),
                        _ => {
                            return Err(refuse(
                                fd,
                                &format!("{zh}不正确"),
                                &format!("{en} is not valid"),
                            ))
                        }
                    });
                }
                Value::Array(attendees)
            }
            Input::Several(_) => {
                Value::Array(f.all(fd.name).into_iter().map(Value::String).collect())
            }
            Input::Flag => Value::Bool(f.has(fd.name)),
            Input::OtherAttendees => {
                let others = f
                    .get(fd.name)
                    .split([',', '，', '、'])
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(|role| json!({"kind": "other", "role": role}));
                let list = body.entry(fd.key).or_insert_with(|| Value::Array(vec![]));
                if let Value::Array(list) = list {
                    list.extend(others);
                }
                continue;
            }
        };
        body.insert(fd.key.to_string(), value);
    }
    Ok((Value::Object(body), sub))
}

/// The body of "add a party" from its form: the party is registered first.
async fn new_party_body(
    app: &App,
    signed: &Signed,
    case_id: &CaseId,
    f: &FormData,
) -> AppResult<serde_json::Value> {
    let role: PartyRole = code(f, "role", "身份")?;
    let kind: PartyKind = code(f, "kind", "类别")?;
    let (case, _) = app.stores.load_case(&case_id.to_string()).await?;
    let community = case.community.ok_or_else(|| AppError::not_found("case"))?;
    let text = |k: &str| f.opt(k).map(str::to_string);
    let data = PartyData {
        name: f.get("name").to_string(),
        phone: text("phone"),
        building: text("building"),
        unit: text("unit"),
        household: text("household"),
        organisation: text("organisation"),
    };
    let party_id = parties::register(
        app,
        &signed.actor,
        &signed.web.meta,
        kind,
        &community,
        &data,
    )
    .await?;
    Ok(serde_json::json!({"party": PartyRef { party_id, role }}))
}

/// A step's refusal of its body, next to the field it names.
fn step_refusal(def: &CaseStepDef, e: StepError) -> AppError {
    match e {
        StepError::Body { path, message } => {
            let key = path.split(['.', '[']).next().unwrap_or_default();
            match def.fields.iter().find(|f| f.key == key) {
                Some(fd) => refuse(
                    fd,
                    &format!("{}不正确", fd.label.0),
                    &format!("{} is not valid", fd.label.1),
                ),
                None => unprocessable("", "填写的内容不正确", &message),
            }
        }
        // A path part that names nothing (a session, an order) is the field that chose it.
        StepError::App(e) => match e
            .fields
            .iter()
            .filter(|_| e.kind == ErrorKind::NotFound)
            .find_map(|(key, _)| def.fields.iter().find(|f| f.key == key))
        {
            Some(fd) => refuse(
                fd,
                &format!("{}不正确", fd.label.0),
                &format!("{} is not valid", fd.label.1),
            ),
            None => {
                // A rule's refusal that names a body key is shown at the form field that
                // fills it.
                let mut e = e;
                for (key, _) in &mut e.fields {
                    if let Some(fd) = def.fields.iter().find(|f| f.key == key.as_str()) {
                        *key = fd.name.to_string();
                    }
                }
                e
            }
        },
    }
}

async fn run_step(
    app: &App,
    signed: &Signed,
    case_id: &CaseId,
    action: &str,
    f: &FormData,
) -> AppResult<u64> {
    let expected: Option<u64> = f.opt("version").and_then(|v| v.parse().ok());
    let def = case_step(CaseStep::parse(action).ok_or_else(|| AppError::not_found("step"))?);
    commands::guard_case_step(app, &signed.actor, case_id, def.step.command_name()).await?;
    let (body, sub) = match def.form {
        FormShape::Fields => form_body(app, def, f)?,
        FormShape::NewParty => (new_party_body(app, signed, case_id, f).await?, None),
    };
    let cx = StepContext {
        now: app.now(),
        follow_up_days: app.settings.follow_up_days,
        actor: &signed.actor,
        sub: sub.as_deref(),
    };
    let command = (def.parse)(body, &cx)
        .map_err(|e| step_refusal(def, e))?
        .command;
    let o = commands::case_command(app, &signed.actor, &signed.web.meta, case_id, command, expected)
        .await
        .map_err(|e| {
            if e.kind == ErrorKind::VersionMismatch {
                AppError::new(ErrorKind::Conflict,
                    "stale_page",
                    "Someone recorded something on this case since the page was loaded; check the timeline, then submit again",
                    "此案件在您打开页面后已有新的记录，请查看最新记录后再提交",
                )
            } else {
                e
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
