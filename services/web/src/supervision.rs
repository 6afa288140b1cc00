//! The supervision room: every case (overdue and escalated first), the audit trail with
//! filters and CSV export, chain verification, and the personal-data access log.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tiaojie_events::Timestamp;
use tiaojie_projections::log;
use tiaojie_projections::models::audit::{self, AuditFilter};

use super::desk::{self, CaseLine, Filters, ListQuery};
use super::{encode, labels, local, render, Chrome, Lang, Signed};
use crate::app::App;
use crate::app_error::{AppError, AppResult, ErrorKind};
use crate::queries::{audit_csv as csv, require_auditor};

/// The refusal page for anyone but a supervision office.
fn not_auditor(signed: &Signed) -> Option<Response> {
    require_auditor(&signed.actor)
        .err()
        .map(|e| signed.error(e))
}

#[derive(Template)]
#[template(path = "supervision.html")]
struct RoomPage {
    chrome: Chrome,
    escalated: Vec<CaseLine>,
    cases: Vec<CaseLine>,
    filters: Filters,
    action: &'static str,
}

pub async fn room(State(app): State<App>, signed: Signed, Query(q): Query<ListQuery>) -> Response {
    if let Some(r) = not_auditor(&signed) {
        return r;
    }
    let lang = signed.web.lang;
    let first_page = q.cursor.is_none()
        && q.status.is_none()
        && q.community.is_none()
        && q.text.is_none()
        && q.kind.is_none()
        && q.overdue.is_none();
    let escalated = if first_page {
        let esc = ListQuery {
            status: Some("escalated".into()),
            ..ListQuery::default()
        };
        match desk::list_for(&app, &signed.actor, lang, &esc, 20).await {
            Ok((cases, _)) => cases,
            Err(e) => return signed.error(e),
        }
    } else {
        vec![]
    };
    let (cases, filters) = match desk::list_for(&app, &signed.actor, lang, &q, 50).await {
        Ok(x) => x,
        Err(e) => return signed.error(e),
    };
    render(&RoomPage {
        chrome: signed.chrome(signed.t("督查室", "Supervision room").into(), "supervision"),
        escalated,
        cases,
        filters,
        action: "/supervision",
    })
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct AuditQuery {
    pub case: Option<String>,
    pub actor: Option<String>,
    pub community: Option<String>,
    /// YYYY-MM-DD, local.
    pub from: Option<String>,
    pub to: Option<String>,
    pub cursor: Option<String>,
    /// The CSV's language (zh, en; the page's by default) and time zone (UTC or +08:00;
    /// Beijing by default).
    pub lang: Option<String>,
    pub tz: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AuditLine {
    pub position: i64,
    pub at: String,
    pub business_at: String,
    pub summary: String,
    pub case_id: String,
    pub case_short: String,
    pub community: String,
    pub who: String,
    pub organisation: String,
    pub request_id: String,
    pub trace_id: String,
    pub chain: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    items: Vec<AuditLine>,
    q: AuditQueryView,
    communities: Vec<(String, String)>,
    next: String,
    csv: String,
    error: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct AuditQueryView {
    case: String,
    actor: String,
    community: String,
    from: String,
    to: String,
}

/// A local date (YYYY-MM-DD) as the UTC instant its day starts; `next_day` for an
/// inclusive end.
fn day_start(app: &App, s: &str, next_day: bool) -> Option<String> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(s.trim(), &fmt).ok()?;
    let d = if next_day { d.next_day()? } else { d };
    let t = time::PrimitiveDateTime::new(d, time::Time::MIDNIGHT).assume_offset(super::offset(app));
    Some(Timestamp::from_offset(t).to_canonical())
}

async fn audit_filter(app: &App, q: &AuditQuery, lang: Lang) -> AppResult<AuditFilter> {
    let bad = |field: &str| {
        AppError::invalid(
            "invalid_query",
            format!("{field} must be a date YYYY-MM-DD"),
            lang.t("日期格式应为 年-月-日", "dates are YYYY-MM-DD")
                .to_string(),
        )
        .with_field(field, "YYYY-MM-DD")
    };
    let nonblank = |v: &Option<String>| {
        v.clone()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let from = match nonblank(&q.from) {
        None => None,
        Some(s) => Some(day_start(app, &s, false).ok_or_else(|| bad("from"))?),
    };
    let to = match nonblank(&q.to) {
        None => None,
        Some(s) => Some(day_start(app, &s, true).ok_or_else(|| bad("to"))?),
    };
    Ok(AuditFilter {
        // A case number (西关北街调〔2026〕12号) finds its case as well as its id does.
        aggregate: crate::numbering::case_ref(app, nonblank(&q.case)).await?,
        actor: nonblank(&q.actor),
        community: nonblank(&q.community),
        from,
        to,
        limit: 100,
        ascending: false,
        cursor: nonblank(&q.cursor),
    })
}

fn audit_query_string(q: &AuditQuery) -> String {
    let mut parts = Vec::new();
    for (k, v) in [
        ("case", &q.case),
        ("actor", &q.actor),
        ("community", &q.community),
        ("from", &q.from),
        ("to", &q.to),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.trim().is_empty()) {
            parts.push(format!("{k}={}", encode(v.trim())));
        }
    }
    parts.join("&")
}

pub async fn audit(
    State(app): State<App>,
    signed: Signed,
    Query(q): Query<AuditQuery>,
) -> Response {
    if let Some(r) = not_auditor(&signed) {
        return r;
    }
    let lang = signed.web.lang;
    let (items, next, error) = match audit_filter(&app, &q, lang).await {
        Err(e) => (
            vec![],
            None,
            Some(if lang.is_en() { e.title } else { e.detail_zh }),
        ),
        Ok(f) => match audit::list(&app.db, &f).await {
            Ok(page) => (page.items, page.next_cursor, None),
            Err(Some(e)) => return signed.error(AppError::store(e)),
            Err(None) => (
                vec![],
                None,
                Some(lang.t("分页游标无效", "The cursor is not valid").into()),
            ),
        },
    };
    let ids: Vec<&str> = items.iter().filter_map(|e| e.case_id.as_deref()).collect();
    let numbers = match crate::numbering::texts(&app, &ids).await {
        Ok(n) => n,
        Err(e) => return signed.error(e),
    };
    let items = items
        .into_iter()
        .map(|e| AuditLine {
            position: e.position,
            at: local(&app, &e.recorded_at),
            business_at: e
                .business_at
                .as_deref()
                .map(|t| local(&app, t))
                .unwrap_or_default(),
            summary: if lang.is_en() {
                labels::event_en(&e.event_type).to_string()
            } else {
                e.summary_zh.clone()
            },
            case_short: e
                .case_id
                .as_deref()
                .map(|c| {
                    numbers
                        .get(c)
                        .cloned()
                        .unwrap_or_else(|| c.chars().take(8).collect())
                })
                .unwrap_or_default(),
            case_id: e.case_id.clone().unwrap_or_default(),
            community: e
                .community
                .as_deref()
                .map(|c| desk::community_name(&app, lang, c))
                .unwrap_or_default(),
            who: format!("{} · {}", e.actor_name, labels::role_code(lang, &e.role)),
            organisation: e.organisation.clone(),
            request_id: e.request_id.clone(),
            trace_id: e.trace_id.clone().unwrap_or_default(),
            chain: e.chain_hash.chars().take(12).collect(),
        })
        .collect();
    let base = audit_query_string(&q);
    let next = next
        .map(|c| {
            let sep = if base.is_empty() { "" } else { "&" };
            format!("{base}{sep}cursor={}", encode(&c))
        })
        .unwrap_or_default();
    let mut communities = vec![(
        String::new(),
        lang.t("全部小区", "Any community").to_string(),
    )];
    communities.extend(
        app.reference
            .communities
            .iter()
            .map(|c| (c.id.to_string(), lang.t(&c.name_zh, &c.name_en).to_string())),
    );
    let nz = |v: &Option<String>| v.clone().unwrap_or_default();
    render(&AuditPage {
        chrome: signed.chrome(signed.t("审计记录", "Audit trail").into(), "supervision"),
        items,
        q: AuditQueryView {
            case: nz(&q.case),
            actor: nz(&q.actor),
            community: nz(&q.community),
            from: nz(&q.from),
            to: nz(&q.to),
        },
        communities,
        next,
        csv: base,
        error,
    })
}

pub async fn audit_csv(
    State(app): State<App>,
    signed: Signed,
    Query(q): Query<AuditQuery>,
) -> Response {
    if let Some(r) = not_auditor(&signed) {
        return r;
    }
    let options = crate::queries::CsvOptions::parse(
        &app,
        q.lang.as_deref(),
        q.tz.as_deref(),
        signed.web.lang.is_en(),
    );
    let out = match (audit_filter(&app, &q, signed.web.lang).await, options) {
        (Ok(f), Ok(o)) => csv(&app, f, o).await,
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    match out {
        Ok(rows) => {
            let mut r = axum::body::Body::from_stream(rows).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            r.headers_mut().insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"tiaojie-audit.csv\""),
            );
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => signed.error(e),
    }
}

#[derive(Template)]
#[template(path = "verify.html")]
struct VerifyPage {
    chrome: Chrome,
    ok: bool,
    checked: i64,
    head_position: i64,
    head_hash: String,
    first_bad: String,
    problem: String,
    pending: i64,
    at: String,
}

pub async fn verify(State(app): State<App>, signed: Signed) -> Response {
    if let Some(r) = not_auditor(&signed) {
        return r;
    }
    let v = match log::verify(&app.db).await {
        Ok(v) => v,
        Err(e) => return signed.error(AppError::store(e)),
    };
    if !v.ok {
        tracing::error!(first_bad_position = ?v.first_bad_position, "the audit chain did not verify (from the web interface)");
    }
    render(&VerifyPage {
        chrome: signed.chrome(
            signed.t("校验审计链", "Verify the chain").into(),
            "supervision",
        ),
        ok: v.ok,
        checked: v.checked,
        head_position: v.head_position,
        head_hash: v.head_hash,
        first_bad: v
            .first_bad_position
            .map(|p| p.to_string())
            .unwrap_or_default(),
        problem: v.problem.unwrap_or_default(),
        pending: v.not_yet_sequenced,
        at: super::local_ts(&app, app.now()),
    })
}

#[derive(Template)]
#[template(path = "verify_document.html")]
struct VerifyDocumentPage {
    chrome: Chrome,
    code: String,
    error: Option<String>,
    found: Option<tiaojie_app::documents::Verification>,
    event_label: String,
    recorded: String,
    latest_label: String,
    latest_recorded: String,
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct CodeQuery {
    pub code: Option<String>,
}

/// `/verify?code=…`: the form, and its answer.
pub async fn verify_document(
    State(app): State<App>,
    signed: Signed,
    Query(q): Query<CodeQuery>,
) -> Response {
    verify_page(&app, &signed, q.code.unwrap_or_default()).await
}

/// `/verify/{code}`: whether a printed document matches the record.
pub async fn verify_code(
    State(app): State<App>,
    signed: Signed,
    Path(code): Path<String>,
) -> Response {
    verify_page(&app, &signed, code).await
}

async fn verify_page(app: &App, signed: &Signed, code: String) -> Response {
    let lang = signed.web.lang;
    let label = |t: &str| {
        if lang.is_en() {
            super::labels::event_en(t).to_string()
        } else {
            super::labels::event_zh(t).to_string()
        }
    };
    let mut page = VerifyDocumentPage {
        chrome: signed.chrome(signed.t("文书核验", "Verify a document").into(), "desk"),
        code: code.trim().to_string(),
        error: None,
        found: None,
        event_label: String::new(),
        recorded: String::new(),
        latest_label: String::new(),
        latest_recorded: String::new(),
    };
    let mut status = StatusCode::OK;
    if !page.code.is_empty() {
        match tiaojie_app::documents::verify(app, &signed.actor, &page.code).await {
            Ok(v) => {
                page.event_label = label(&v.event_type);
                page.latest_label = label(&v.latest_event_type);
                page.recorded = super::local(app, &v.recorded_at);
                page.latest_recorded = super::local(app, &v.latest_recorded_at);
                page.found = Some(v);
            }
            Err(e) if e.kind == ErrorKind::Forbidden => return signed.error(e),
            Err(e) => {
                status = super::page_status(e.kind);
                page.error = Some(if lang.is_en() { e.title } else { e.detail_zh });
            }
        }
    }
    let mut r = render(&page);
    *r.status_mut() = status;
    r
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct AccessQuery {
    pub party: Option<String>,
    pub actor: Option<String>,
    pub before: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct AccessLine {
    pub id: i64,
    pub at: String,
    pub who: String,
    pub party: String,
    pub case_id: String,
    pub case_short: String,
    pub action: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "access_log.html")]
struct AccessPage {
    chrome: Chrome,
    items: Vec<AccessLine>,
    party: String,
    actor: String,
    next: String,
}

fn action_label(lang: Lang, a: &str) -> String {
    match a {
        "view" => lang.t("查看", "viewed"),
        "reveal" => lang.t("查看原文（说明理由）", "revealed with a reason"),
        "create" => lang.t("登记", "registered"),
        "retention_erase_case" => lang.t("到期删除", "erased at end of retention"),
        "correct" => lang.t("更正", "corrected"),
        "search" => lang.t("查找", "searched"),
        "export" => lang.t("导出", "exported"),
        "erase" => lang.t("删除", "erased"),
        other => other,
    }
    .to_string()
}

pub async fn access_log(
    State(app): State<App>,
    signed: Signed,
    Query(q): Query<AccessQuery>,
) -> Response {
    if let Some(r) = not_auditor(&signed) {
        return r;
    }
    let lang = signed.web.lang;
    let party = q
        .party
        .clone()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let actor = q
        .actor
        .clone()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let entries =
        match crate::parties::access_log(&app, party.as_deref(), actor.as_deref(), q.before, 100)
            .await
        {
            Ok(e) => e,
            Err(e) => return signed.error(e),
        };
    let next = if entries.len() == 100 {
        let mut s = format!(
            "before={}",
            entries.last().map(|e| e.id).unwrap_or_default()
        );
        if let Some(p) = &party {
            s.push_str(&format!("&party={}", encode(p)));
        }
        if let Some(a) = &actor {
            s.push_str(&format!("&actor={}", encode(a)));
        }
        s
    } else {
        String::new()
    };
    let ids: Vec<&str> = entries
        .iter()
        .filter_map(|e| e.case_id.as_deref())
        .collect();
    let numbers = match crate::numbering::texts(&app, &ids).await {
        Ok(n) => n,
        Err(e) => return signed.error(e),
    };
    let items = entries
        .into_iter()
        .map(|e| AccessLine {
            id: e.id,
            at: local(&app, &e.at),
            who: format!("{} · {}", e.actor_name, labels::role_code(lang, &e.role)),
            party: e.party_id.clone().unwrap_or_default(),
            case_short: e
                .case_id
                .as_deref()
                .map(|c| {
                    numbers
                        .get(c)
                        .cloned()
                        .unwrap_or_else(|| c.chars().take(8).collect())
                })
                .unwrap_or_default(),
            case_id: e.case_id.clone().unwrap_or_default(),
            action: action_label(lang, &e.action),
            reason: e.reason.clone().unwrap_or_default(),
        })
        .collect();
    render(&AccessPage {
        chrome: signed.chrome(
            signed
                .t("个人信息访问记录", "Personal-data access log")
                .into(),
            "supervision",
        ),
        items,
        party: party.unwrap_or_default(),
        actor: actor.unwrap_or_default(),
        next,
    })
}
