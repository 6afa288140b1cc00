//! The dashboard: districts and communities with heat bands, counts by status, obstruction
//! incidents and hours of work stopped, an eight-week trend, overdue counts. Charts are SVG
//! drawn on the server; the page stays live over server-sent events (one small script).

use std::convert::Infallible;
use std::fmt::Write;
use std::time::Duration;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{Stream, StreamExt};
use tiaojie_events::case::CaseStatus;
use tiaojie_projections::models::case_status::{self, Counts};
use tiaojie_projections::models::daily;
use tiaojie_projections::models::heat::{self, Band, HeatView};

use super::{labels, render, Chrome, Lang, Signed};
use crate::app::App;
use crate::app_error::{AppError, AppResult};

#[derive(Debug, Clone)]
pub struct Tile {
    pub label: String,
    pub value: String,
    pub note: String,
    pub alert: bool,
}

#[derive(Debug, Clone)]
pub struct HeatTile {
    pub id: String,
    pub name: String,
    pub district: String,
    pub band: String,
    pub band_label: String,
    pub heat: String,
    /// What `heat` is: per 100 households, or the heat score where households are unknown.
    pub unit: String,
    pub open: i64,
    pub incidents: i64,
    pub hours: String,
    pub overdue: i64,
    pub reports: bool,
}

#[derive(Debug, Clone)]
pub struct DistrictBlock {
    pub tile: HeatTile,
    pub households: String,
    pub total: i64,
    pub open: i64,
    pub overdue: i64,
}

/// Everything that updates live.
#[derive(Template)]
#[template(path = "dashboard_live.html")]
pub struct Live {
    pub lang: Lang,
    pub tiles: Vec<Tile>,
    pub districts: Vec<DistrictBlock>,
    pub communities: Vec<HeatTile>,
    pub status_svg: String,
    pub trend_svg: String,
    pub as_of: String,
    pub position: i64,
    /// How heat is scored and banded (the wall screen's legend).
    pub scale: Vec<String>,
}

pub(crate) fn band_code(b: Band) -> &'static str {
    match b {
        Band::NoReports => "none",
        Band::Green => "green",
        Band::Amber => "amber",
        Band::Red => "red",
    }
}

fn tile(lang: Lang, h: &HeatView, overdue: i64) -> HeatTile {
    let code = band_code(h.band);
    HeatTile {
        id: h.id.clone(),
        name: lang.t(&h.name_zh, &h.name_en).to_string(),
        district: h.district_name_zh.clone().unwrap_or_default(),
        band: code.to_string(),
        band_label: labels::band(lang, if code == "none" { "" } else { code }).to_string(),
        heat: match h.heat_per_100_households {
            Some(x) => format!("{x:.2}"),
            None => format!("{:.1}", h.heat),
        },
        unit: match h.heat_per_100_households {
            Some(_) => lang.t("每百户", "per 100 households"),
            None => lang.t("热度分", "heat score"),
        }
        .to_string(),
        open: h.open_cases,
        incidents: h.incidents,
        hours: format!("{:.1}", h.work_stopped_hours),
        overdue,
        reports: h.reports,
    }
}

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Horizontal bars of open cases by status.
fn status_svg(lang: Lang, c: &Counts) -> String {
    let rows: Vec<(String, i64, &str)> = CaseStatus::ALL
        .iter()
        .map(|s| {
            (
                labels::status(lang, s.as_str()),
                c.by_status.get(s.as_str()).copied().unwrap_or(0),
                match s {
                    CaseStatus::Escalated | CaseStatus::Failed => "bar-warn",
                    CaseStatus::Closed | CaseStatus::Withdrawn => "bar-done",
                    _ => "bar",
                },
            )
        })
        .collect();
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1) as f64;
    let row_h = 26.0;
    let h = row_h * rows.len() as f64 + 8.0;
    let mut out = format!(
        r#"<svg class="chart" viewBox="0 0 520 {h}" role="img" aria-label="{}">"#,
        esc(lang.t("按状态统计", "Cases by status"))
    );
    for (i, (label, n, class)) in rows.iter().enumerate() {
        let y = 4.0 + i as f64 * row_h;
        let w = (*n as f64 / max) * 300.0;
        let _ = write!(
            out,
            r#"<text x="118" y="{ty}" text-anchor="end" class="lbl">{l}</text><rect x="126" y="{y}" width="{w:.1}" height="18" rx="3" class="{class}"/><text x="{tx:.1}" y="{ty}" class="val">{n}</text>"#,
            ty = y + 14.0,
            l = esc(label),
            tx = 132.0 + w,
        );
    }
    out.push_str("</svg>");
    out
}

/// Eight weeks: cases opened (bars) and obstruction incidents (line), by week.
pub(crate) fn trend_svg(lang: Lang, weeks: &[(String, i64, i64, f64)]) -> String {
    let max = weeks.iter().map(|w| w.1.max(w.2)).max().unwrap_or(0).max(1) as f64;
    let (w, h, left, bottom) = (520.0, 220.0, 34.0, 36.0);
    let plot_h = h - bottom - 16.0;
    let step = (w - left - 10.0) / weeks.len().max(1) as f64;
    let mut out = format!(
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{}">"#,
        esc(lang.t("近八周趋势", "Last eight weeks"))
    );
    let _ = write!(
        out,
        r#"<line x1="{left}" y1="{y0}" x2="{x1}" y2="{y0}" class="axis"/><text x="{lx}" y="20" class="lbl" text-anchor="end">{max}</text><text x="{lx}" y="{y0}" class="lbl" text-anchor="end">0</text>"#,
        y0 = h - bottom,
        x1 = w - 6.0,
        lx = left - 4.0,
        max = max as i64,
    );
    let mut points = Vec::new();
    for (i, (label, opened, incidents, _)) in weeks.iter().enumerate() {
        let x = left + i as f64 * step;
        let bh = (*opened as f64 / max) * plot_h;
        let _ = write!(
            out,
            r#"<rect x="{bx:.1}" y="{by:.1}" width="{bw:.1}" height="{bh:.1}" class="bar"><title>{t}: {opened}</title></rect><text x="{cx:.1}" y="{ly}" class="lbl" text-anchor="middle">{l}</text>"#,
            bx = x + step * 0.18,
            by = h - bottom - bh,
            bw = step * 0.64,
            t = esc(lang.t("登记案件", "cases opened")),
            cx = x + step / 2.0,
            ly = h - bottom + 16.0,
            l = esc(label),
        );
        points.push(format!(
            "{:.1},{:.1}",
            x + step / 2.0,
            h - bottom - (*incidents as f64 / max) * plot_h
        ));
    }
    let _ = write!(
        out,
        r#"<polyline points="{}" class="line"/>"#,
        points.join(" ")
    );
    for p in &points {
        let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
        let _ = write!(out, r#"<circle cx="{x}" cy="{y}" r="3.5" class="dot"/>"#);
    }
    let _ = write!(
        out,
        r#"<rect x="{left}" y="{ly}" width="12" height="10" class="bar"/><text x="{t1}" y="{ty}" class="lbl">{a}</text><circle cx="{c2}" cy="{cy}" r="4" class="dot"/><text x="{t2}" y="{ty}" class="lbl">{b}</text>"#,
        ly = h - 12.0,
        t1 = left + 16.0,
        ty = h - 3.0,
        a = esc(lang.t("登记案件", "cases opened")),
        c2 = left + 140.0,
        cy = h - 7.0,
        t2 = left + 148.0,
        b = esc(lang.t("阻工事件", "obstruction incidents")),
    );
    out.push_str("</svg>");
    out
}

/// The last eight weeks, ending today: (first day MM-DD, cases opened, incidents, hours
/// stopped), from the daily read model.
pub(crate) async fn weeks(
    app: &App,
    now: tiaojie_events::Timestamp,
) -> AppResult<Vec<(String, i64, i64, f64)>> {
    let offset = super::offset(app);
    let today = now.date_in(offset);
    // Weeks end today; the first starts 55 days ago.
    let start = today - time::Duration::days(55);
    let days = daily::list(&app.db, &start.to_string(), &today.to_string(), None).await?;
    let mut weeks: Vec<(String, i64, i64, f64)> = (0..8)
        .map(|i| {
            let d = start + time::Duration::days(i * 7);
            (format!("{:02}-{:02}", d.month() as u8, d.day()), 0, 0, 0.0)
        })
        .collect();
    for d in &days {
        let Ok(day) = time::Date::parse(
            &d.day,
            time::macros::format_description!("[year]-[month]-[day]"),
        ) else {
            continue;
        };
        let i = ((day - start).whole_days() / 7).clamp(0, 7) as usize;
        weeks[i].1 += d.opened;
        weeks[i].2 += d.incidents;
        weeks[i].3 += d.work_stopped_minutes as f64 / 60.0;
    }
    Ok(weeks)
}

pub async fn build(app: &App, lang: Lang) -> AppResult<Live> {
    let now = app.now();
    let position = app.read.position().await.unwrap_or(0);
    let communities = heat::communities_cached(&app.db, &app.read_config, &now, &app.heat).await?;
    let districts = heat::districts(&app.db, &app.read_config, &now).await?;
    let counts = case_status::counts(&app.db, &now, None).await?;
    let mut district_counts = Vec::new();
    for d in &app.reference.districts {
        district_counts.push(case_status::counts(&app.db, &now, Some(d.id.as_str())).await?);
    }
    let overdue_by_community = crate::queries::overdue_by_community(app).await?;
    let weeks = weeks(app, now).await?;
    let hours_total: f64 = communities.iter().map(|c| c.work_stopped_hours).sum();
    let incidents_total: i64 = communities.iter().map(|c| c.incidents).sum();
    let escalated = counts.by_status.get("escalated").copied().unwrap_or(0);
    let tiles = vec![
        Tile {
            label: lang.t("案件总数", "Cases").into(),
            value: counts.total.to_string(),
            note: format!(
                "{} {} · {} {}",
                lang.t("居民异议", "objections"),
                counts
                    .by_kind
                    .get("resident_objection")
                    .copied()
                    .unwrap_or(0),
                lang.t("阻挡施工", "obstructions"),
                counts
                    .by_kind
                    .get("construction_obstruction")
                    .copied()
                    .unwrap_or(0)
            ),
            alert: false,
        },
        Tile {
            label: lang.t("在办", "Open").into(),
            value: counts.open.to_string(),
            note: String::new(),
            alert: false,
        },
        Tile {
            label: lang.t("逾期", "Overdue").into(),
            value: counts.overdue.to_string(),
            note: lang
                .t(
                    "受理、调解、回访或督办超期",
                    "acceptance, mediation, follow-up or order late",
                )
                .into(),
            alert: counts.overdue > 0,
        },
        Tile {
            label: lang.t("已上报", "Escalated").into(),
            value: escalated.to_string(),
            note: String::new(),
            alert: escalated > 0,
        },
        Tile {
            label: lang.t("阻工事件", "Obstruction incidents").into(),
            value: incidents_total.to_string(),
            note: String::new(),
            alert: false,
        },
        Tile {
            label: lang.t("停工小时", "Hours of work stopped").into(),
            value: format!("{hours_total:.1}"),
            note: String::new(),
            alert: false,
        },
    ];
    let scale = super::screen::legend(
        app,
        lang,
        &communities,
        districts
            .iter()
            .any(|d| d.heat_per_100_households.is_some()),
    );
    let districts = districts
        .iter()
        .zip(district_counts.iter())
        .zip(app.reference.districts.iter())
        .map(|((h, c), d)| DistrictBlock {
            tile: tile(lang, h, c.overdue),
            households: d
                .households
                .map(|n| n.to_string())
                .unwrap_or_else(|| "—".into()),
            total: c.total,
            open: c.open,
            overdue: c.overdue,
        })
        .collect();
    let communities = communities
        .iter()
        .map(|h| {
            let overdue = overdue_by_community
                .iter()
                .find(|(c, _)| c == &h.id)
                .map(|(_, n)| *n)
                .unwrap_or(0);
            tile(lang, h, overdue)
        })
        .collect();
    Ok(Live {
        lang,
        tiles,
        districts,
        communities,
        status_svg: status_svg(lang, &counts),
        trend_svg: trend_svg(lang, &weeks),
        as_of: super::local_ts(app, now),
        position,
        scale,
    })
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    live: String,
    position: i64,
}

pub async fn page(State(app): State<App>, signed: Signed) -> Response {
    let live = match build(&app, signed.web.lang).await {
        Ok(l) => l,
        Err(e) => return signed.error(e),
    };
    let position = live.position;
    let live = match live.render() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "the dashboard failed to render");
            return signed.error(AppError::internal());
        }
    };
    render(&DashboardPage {
        chrome: signed.chrome(
            signed.t("矛盾纠纷态势", "Conflict dashboard").into(),
            "dashboard",
        ),
        live,
        position,
    })
}

/// Server-sent events: the dashboard's live part, re-rendered whenever the read models move
/// on (this instance's projectors, or the stored checkpoints every two seconds when another
/// instance runs them), at most every half second.
pub async fn live(
    State(app): State<App>,
    signed: Signed,
    Query(q): Query<LiveQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = signed.web.lang;
    let start = q.start(&app, &headers).await;
    stream(app, start, move |app| async move {
        let live = build(&app, lang).await.ok()?;
        Some((live.position, live.render().ok()?))
    })
}

/// Where a live page's stream starts: the position its page was drawn at (`?from=`), or
/// on a reconnect the last update it received (`Last-Event-ID`), else now. A page behind
/// the read models gets an update at once.
#[derive(Debug, Default, serde::Deserialize)]
pub struct LiveQuery {
    pub from: Option<String>,
}

impl LiveQuery {
    pub(crate) async fn start(&self, app: &App, headers: &HeaderMap) -> i64 {
        let now = app.read.position().await.unwrap_or(0);
        headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .or(self.from.as_deref())
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|p| (0..=now).contains(p))
            .unwrap_or(now)
    }
}

/// A live page's stream: `render` gives the position and the HTML of its live part, sent
/// whenever the read models have moved past what the page shows. Browsers reconnect after
/// two seconds when the connection drops.
pub(crate) fn stream<F, Fut>(app: App, start: i64, render: F) -> Response
where
    F: Fn(App) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Option<(i64, String)>> + Send + 'static,
{
    let hello = Event::default()
        .retry(Duration::from_secs(2))
        .comment("live");
    let first = futures::stream::once(async move { Ok::<_, Infallible>(hello) });
    Sse::new(first.chain(updates(app, start, std::sync::Arc::new(render))))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn updates<F, Fut>(
    app: App,
    start: i64,
    render: std::sync::Arc<F>,
) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: Fn(App) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Option<(i64, String)>> + Send + 'static,
{
    let rx = app.read.progress.subscribe();
    futures::stream::unfold(
        (app, rx, start, render),
        move |(app, mut rx, mut last, render)| async move {
            loop {
                let position = app.read.position().await.unwrap_or(last);
                if position > last {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    if let Some((at, html)) = render(app.clone()).await {
                        last = at.max(position);
                        let html = html.replace(['\n', '\r'], " ");
                        let event = Event::default()
                            .event("update")
                            .id(last.to_string())
                            .data(html);
                        return Some((Ok(event), (app, rx, last, render)));
                    }
                }
                tokio::select! {
                    changed = rx.changed() => {
                        if changed.is_err() {
                            tokio::time::sleep(Duration::from_secs(2)).await;
                        }
                    }
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
        },
    )
}
