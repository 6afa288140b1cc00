//! The statistics page: a period's figures beside the period before, for supervision
//! offices, leaders and members (their group) and dashboards (counts only), with the
//! definitions written out and Excel exports.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use tiaojie_app::stats::{self, By, Figure, Figures};

use super::{labels, local, render, Chrome, Signed};
use crate::app::App;

#[derive(Debug, Default, serde::Deserialize)]
pub struct StatsQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub by: Option<String>,
}

struct Row {
    name: String,
    total: bool,
    /// (this period, the period before, the list of this period's cases behind the figure).
    cells: Vec<(String, String, Option<String>)>,
}

/// The columns of the table.
const HEADS: [(&str, &str); 15] = [
    ("登记", "Registered"),
    ("受理", "Accepted"),
    ("结案", "Closed"),
    ("调解成功", "Resolved"),
    ("撤回", "Withdrawn"),
    ("调解不成", "Failed"),
    ("上报", "Escalated"),
    ("调解成功率", "Success rate"),
    ("按期办结率", "On time"),
    ("平均办理天数", "Mean days"),
    ("中位办理天数", "Median days"),
    ("阻工事件", "Incidents"),
    ("停工小时", "Hours stopped"),
    ("下发督办", "Orders issued"),
    ("督办按期答复率", "Orders answered on time"),
];

/// The figure behind each column of [`cells`], where its cases can be listed.
const COLUMN_FIGURES: [Option<Figure>; 15] = [
    Some(Figure::Received),
    Some(Figure::Accepted),
    Some(Figure::Closed),
    Some(Figure::ResolvedByAgreement),
    Some(Figure::Withdrawn),
    Some(Figure::Failed),
    Some(Figure::Escalated),
    None,
    None,
    None,
    None,
    Some(Figure::Incidents),
    None,
    None,
    None,
];

#[derive(Template)]
#[template(path = "stats.html")]
struct StatsPage {
    chrome: Chrome,
    from: String,
    to: String,
    by: String,
    by_label: String,
    bys: Vec<(String, String)>,
    previous: String,
    heads: Vec<String>,
    rows: Vec<Row>,
    /// (case id, number, community, due, holder).
    overdue: Vec<(String, String, String, String, String)>,
    definitions: Vec<(String, String)>,
    error: Option<String>,
    ledger: bool,
    link_cases: bool,
}

const BYS: [(By, &str, &str); 5] = [
    (By::District, "片区", "District"),
    (By::Community, "小区", "Community"),
    (By::Category, "纠纷类别", "Category"),
    (By::Channel, "来源", "Channel"),
    (By::Kind, "案件类型", "Kind"),
];

fn by_code(by: By) -> &'static str {
    match by {
        By::District => "district",
        By::Community => "community",
        By::Category => "category",
        By::Channel => "channel",
        By::Kind => "kind",
    }
}

fn cells(f: &Figures) -> Vec<String> {
    let pct = |v: Option<f64>| {
        v.map(|v| format!("{:.1}%", v * 100.0))
            .unwrap_or_else(|| "—".into())
    };
    let num = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "—".into());
    vec![
        f.received.to_string(),
        f.accepted.to_string(),
        f.closed.to_string(),
        f.resolved_by_agreement.to_string(),
        f.withdrawn.to_string(),
        f.failed.to_string(),
        f.escalated.to_string(),
        pct(f.success_rate),
        pct(f.on_time_rate),
        num(f.mean_days),
        num(f.median_days),
        f.incidents.to_string(),
        format!("{:.1}", f.hours_stopped),
        f.orders_issued.to_string(),
        pct(f.orders_on_time_rate),
    ]
}

/// The query's period and grouping; this month by default.
fn chosen(app: &App, q: &StatsQuery) -> (String, String, By) {
    let today = app.today();
    let first = today.replace_day(1).unwrap_or(today);
    let from = q.from.clone().unwrap_or_else(|| first.to_string());
    let to = q.to.clone().unwrap_or_else(|| today.to_string());
    let by = BYS
        .iter()
        .find(|(b, _, _)| Some(by_code(*b)) == q.by.as_deref())
        .map(|(b, _, _)| *b)
        .unwrap_or_default();
    (from, to, by)
}

pub async fn page(State(app): State<App>, signed: Signed, Query(q): Query<StatsQuery>) -> Response {
    let lang = signed.web.lang;
    let (from, to, by) = chosen(&app, &q);
    let result = match stats::period(&from, &to) {
        Ok(p) => stats::period_stats(&app, &signed.actor, p, by).await,
        Err(e) => Err(e),
    };
    let link_cases = signed.actor.reads_cases();
    let (rows, overdue, previous, error) = match result {
        Ok(s) => {
            let row = |r: &stats::StatRow, total: bool| Row {
                name: r.name.clone(),
                total,
                cells: cells(&r.current)
                    .into_iter()
                    .zip(cells(&r.previous))
                    .zip(COLUMN_FIGURES)
                    .map(|((now, before), figure)| {
                        let href = figure.filter(|_| link_cases && now != "0").map(|f| {
                            format!(
                                "/stats/cases?from={}&to={}&by={}&key={}&figure={}",
                                s.from,
                                s.to,
                                by_code(by),
                                if total { "" } else { r.key.as_str() },
                                f.code()
                            )
                        });
                        (now, before, href)
                    })
                    .collect(),
            };
            let mut rows: Vec<Row> = s.rows.iter().map(|r| row(r, false)).collect();
            rows.push(row(&s.total, true));
            let overdue = s
                .overdue
                .iter()
                .map(|o| overdue_row(&app, lang, o))
                .collect();
            (
                rows,
                overdue,
                format!("{} ~ {}", s.previous_from, s.previous_to),
                None,
            )
        }
        Err(e) if e.kind == crate::app_error::ErrorKind::Forbidden => return signed.error(e),
        Err(e) => (
            vec![],
            vec![],
            String::new(),
            Some(if lang.is_en() { e.title } else { e.detail_zh }),
        ),
    };
    let heads = HEADS
        .iter()
        .map(|(zh, en)| lang.t(zh, en).to_string())
        .collect();
    let page = StatsPage {
        chrome: signed.chrome(lang.t("统计报表", "Statistics").to_string(), "stats"),
        by_label: BYS
            .iter()
            .find(|(b, _, _)| *b == by)
            .map(|(_, zh, en)| lang.t(zh, en).to_string())
            .unwrap_or_default(),
        bys: BYS
            .iter()
            .map(|(b, zh, en)| (by_code(*b).to_string(), lang.t(zh, en).to_string()))
            .collect(),
        by: by_code(by).to_string(),
        from,
        to,
        previous,
        heads,
        rows,
        overdue,
        definitions: stats_definitions(lang.is_en()),
        error,
        ledger: signed.actor.reads_cases(),
        link_cases,
    };
    render(&page)
}

/// An overdue case as a row: (case id, number, community, which deadline and when, who
/// holds it).
pub(crate) fn overdue_row(
    app: &App,
    lang: super::Lang,
    o: &stats::OverdueLine,
) -> (String, String, String, String, String) {
    (
        o.case_id.clone(),
        o.case_number.clone().unwrap_or_else(|| o.case_id.clone()),
        o.community.clone(),
        format!(
            "{} {}",
            labels::due_kind(lang, &o.due_kind),
            local(app, &o.due_at)
        ),
        o.holder
            .clone()
            .unwrap_or_else(|| lang.t("（未指派）", "(unassigned)").into()),
    )
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct FigureQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub by: Option<String>,
    pub key: Option<String>,
    pub figure: Option<String>,
}

#[derive(Template)]
#[template(path = "stats_cases.html")]
struct FigurePage {
    chrome: Chrome,
    heading: String,
    back: String,
    /// (case id, number, community, kind, status, reported).
    cases: Vec<(String, String, String, String, String, String)>,
}

/// The cases behind one figure of the statistics page.
pub async fn figure_cases(
    State(app): State<App>,
    signed: Signed,
    Query(q): Query<FigureQuery>,
) -> Response {
    let lang = signed.web.lang;
    let (from, to, by) = chosen(
        &app,
        &StatsQuery {
            from: q.from.clone(),
            to: q.to.clone(),
            by: q.by.clone(),
        },
    );
    let figure = q.figure.as_deref().unwrap_or("received");
    let Some(figure) = Figure::parse(figure) else {
        return signed.error(
            crate::app_error::AppError::invalid(
                "invalid_query",
                format!("unknown figure {figure:?}"),
                "统计项目不正确",
            )
            .with_field("figure", figure),
        );
    };
    let key = q.key.as_deref().filter(|k| !k.is_empty());
    let found = async {
        let p = stats::period(&from, &to)?;
        stats::figure_cases(&app, &signed.actor, p, by, key, figure).await
    }
    .await;
    let cases = match found {
        Ok(c) => c,
        Err(e) => return signed.error(e),
    };
    let column = COLUMN_FIGURES
        .iter()
        .position(|f| *f == Some(figure))
        .unwrap_or(0);
    let (zh, en) = HEADS[column];
    let group = key
        .map(|k| stats::key_name(&app, by, k))
        .unwrap_or_else(|| lang.t("合计", "All").into());
    let heading = format!(
        "{} · {} · {from} ~ {to} · {} {}",
        lang.t(zh, en),
        group,
        cases.len(),
        lang.t("件", "cases")
    );
    let page = FigurePage {
        chrome: signed.chrome(lang.t(zh, en).to_string(), "stats"),
        heading,
        back: format!("/stats?from={from}&to={to}&by={}", by_code(by)),
        cases: cases
            .into_iter()
            .map(|c| {
                (
                    c.case_number.clone().unwrap_or_else(|| c.case_id.clone()),
                    c.community_name,
                    labels::kind(lang, &c.kind),
                    labels::status(lang, &c.status),
                    local(&app, &c.reported_at),
                    c.case_id,
                )
            })
            .map(|(n, com, k, st, r, id)| (id, n, com, k, st, r))
            .collect(),
    };
    render(&page)
}

fn stats_definitions(en: bool) -> Vec<(String, String)> {
    tiaojie_app::stats::definitions()
        .into_iter()
        .map(|d| (d.figure, if en { d.en } else { d.zh }))
        .collect()
}

fn xlsx(bytes: Vec<u8>, name: &str) -> Response {
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

pub async fn export(
    State(app): State<App>,
    signed: Signed,
    Query(q): Query<StatsQuery>,
) -> Response {
    let (from, to, by) = chosen(&app, &q);
    let result = async {
        let p = stats::period(&from, &to)?;
        let s = stats::period_stats(&app, &signed.actor, p, by).await?;
        tiaojie_app::exports::stats_xlsx(&s)
    }
    .await;
    match result {
        Ok(bytes) => xlsx(bytes, &format!("tiaojie-stats-{from}-{to}.xlsx")),
        Err(e) => signed.error(e),
    }
}

pub async fn ledger(State(app): State<App>, signed: Signed) -> Response {
    let scope = match tiaojie_app::commands::scope(&app, &signed.actor).await {
        Ok(s) => s,
        Err(e) => return signed.error(e),
    };
    let filter = tiaojie_projections::models::case_status::CaseFilter {
        visible_communities: scope.map(|s| s.into_iter().map(|c| c.to_string()).collect()),
        ..Default::default()
    };
    let meta = tiaojie_app::commands::RequestMeta::new_request();
    match tiaojie_app::exports::cases_xlsx(&app, &signed.actor, &meta, filter).await {
        Ok(bytes) => xlsx(bytes, &format!("tiaojie-cases-{}.xlsx", app.today())),
        Err(e) => signed.error(e),
    }
}
