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
use crate::commands::{self, RequestMeta};
use crate::parties::{self, PartyData, PartyKind, PartyView};
use crate::queries::{await_consistency, consistency_token};
use crate::steps::{case_step, Choices, FieldDef, FormShape, Input, StepContext, StepError, Sub};

mod attachments;
mod case_view;
mod documents;
mod new_case;
mod print;
mod step_forms;

pub use attachments::{
    file as attachment_file, thumbnail as attachment_thumbnail, upload as attachment_upload,
};
pub use case_view::*;
pub use documents::*;
pub use new_case::*;
pub use print::*;
pub use step_forms::*;

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
        short: v.case_number.clone().unwrap_or_else(|| short(&r.case_id)),
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
    /// `1`: only cases naming a repeat obstructor.
    pub repeat: Option<String>,
    /// `1`: only the cases I hold.
    pub mine: Option<String>,
    /// `soon` (due within a few days, not yet late), `orders` (a supervision order awaits
    /// its answer), `performance` (an agreement's performance is due), or any clock's name.
    pub due: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Filters {
    pub status: String,
    pub community: String,
    pub kind: String,
    pub overdue: bool,
    pub repeat: bool,
    pub mine: bool,
    pub due: String,
    /// What `mine` and `due` narrow the list to, in words (empty when they don't).
    pub narrowed: String,
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
    let repeat = q.repeat.as_deref().is_some_and(|v| v == "1" || v == "on");
    let mine = q.mine.as_deref().is_some_and(|v| v == "1" || v == "on");
    let due = q.due.clone().unwrap_or_default();
    let mut filter = CaseFilter {
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
        naming_parties: if repeat {
            Some(crate::queries::repeat_obstructor_ids(app, actor).await?)
        } else {
            None
        },
        sort,
        limit,
        cursor: q.cursor.clone().filter(|c| !c.is_empty()),
        ..Default::default()
    };
    crate::queries::narrow_by_due(app, actor, Some(&due), mine, &mut filter)?;
    let mask = crate::masking::ListMask(app.clone());
    let mask = crate::masking::masks_for(actor).then_some(&mask as &dyn case_status::SummaryMask);
    let mut page = case_status::list(&app.db, &app.keys, &filter, &app.now(), mask)
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
    crate::numbering::fill(app, &mut page.items).await?;
    let filters = Filters {
        status,
        community,
        kind: kind.unwrap_or_default(),
        overdue: filter.overdue == Some(true),
        repeat,
        mine,
        narrowed: narrowed(lang, mine, &due),
        due,
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
        if self.repeat {
            q.push_str("&repeat=1");
        }
        if self.mine {
            q.push_str("&mine=1");
        }
        if !self.due.is_empty() {
            q.push_str(&format!("&due={}", super::encode(&self.due)));
        }
        q
    }
}

/// What the reminders' filters narrow a list to, in words.
fn narrowed(lang: Lang, mine: bool, due: &str) -> String {
    let mut parts = vec![];
    if mine {
        parts.push(lang.t("我承办的", "held by me").to_string());
    }
    match due {
        "" => {}
        "soon" => parts.push(match lang {
            Lang::Zh => format!("{}天内到期", crate::queries::DUE_SOON_DAYS),
            Lang::En => format!("due within {} days", crate::queries::DUE_SOON_DAYS),
        }),
        "orders" => parts.push(
            lang.t("督办待答复", "orders awaiting an answer")
                .to_string(),
        ),
        k => parts.push(format!(
            "{}{}",
            lang.t("期限：", "clock: "),
            labels::due_kind(lang, k)
        )),
    }
    parts.join(" · ")
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
    // A case number typed into the search opens that case.
    if let Some(text) = q.text.as_deref() {
        if let Ok(Some(id)) = crate::numbering::find(&app, text).await {
            return Redirect::to(&format!("/cases/{id}")).into_response();
        }
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
