//! The wall screen (`/screen`): a kiosk view for the dashboard role. Dark, no navigation and
//! no sign-out, sized to the window (1920×1080 and 1366×768 without scrolling). KPI tiles
//! with the change from the same days of last month, the hottest communities as ranking
//! bars, a schematic map of the three districts and their communities coloured by heat band,
//! the eight-week trend, and the latest obstruction incidents. It stays live over
//! server-sent events and reconnects after a network drop or a server restart.
//!
//! Heat is shown on one scale, the heat score, for every community, and the legend says how
//! it is made and where the bands lie. A district's figure per 100 households is labelled as
//! such and kept apart.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use tiaojie_app::stats::{self, By, Figures};
use tiaojie_projections::models::audit;
use tiaojie_projections::models::case_status;
use tiaojie_projections::models::heat::{self, HeatView};

use super::dashboard::{band_code, trend_svg, weeks, LiveQuery};
use super::{labels, render, Lang, Signed};
use crate::app::App;
use crate::app_error::AppResult;

/// How many communities the ranking shows, and how many incidents the feed.
const RANKED: usize = 10;
const FEED: i64 = 6;
/// The event the feed shows (its summary has the hours stopped and how many obstructed).
const INCIDENT_EVENT: &str = "ObstructionIncidentRecorded";

pub struct Kpi {
    pub id: &'static str,
    pub label: String,
    pub value: String,
    /// "▲ 3 较上月同期" and the like; empty when there is nothing to compare.
    pub change: String,
    /// up, down or same.
    pub trend: &'static str,
    /// good, bad or plain: the change's colour (more cases received is neither).
    pub tone: &'static str,
    pub note: String,
    pub alert: bool,
}

pub struct Bar {
    pub id: String,
    pub name: String,
    pub district: String,
    pub score: String,
    pub band: &'static str,
    pub width: String,
}

pub struct Cell {
    pub id: String,
    pub name: String,
    pub band: &'static str,
    pub score: String,
    pub title: String,
}

pub struct MapDistrict {
    pub id: String,
    pub name: String,
    pub band: &'static str,
    pub band_label: String,
    /// "每百户 1.23" where the households are known.
    pub per_100: String,
    pub cells: Vec<Cell>,
}

pub struct FeedLine {
    pub at: String,
    pub community: String,
    pub summary: String,
}

/// The part of the screen that updates live.
#[derive(Template)]
#[template(path = "screen_live.html")]
pub struct ScreenLive {
    pub lang: Lang,
    pub as_of: String,
    pub position: i64,
    pub month: String,
    pub kpis: Vec<Kpi>,
    pub bars: Vec<Bar>,
    pub map: Vec<MapDistrict>,
    pub trend_svg: String,
    pub feed: Vec<FeedLine>,
    /// The scale's explanation, one line per scale in use.
    pub legend: Vec<String>,
}

#[derive(Template)]
#[template(path = "screen.html")]
struct ScreenPage {
    lang: Lang,
    title: String,
    /// Which screen this is (the kiosk account's name).
    who: String,
    live: String,
    position: i64,
}

/// The heat score a community is ranked and coloured by, with one decimal.
fn score(h: &HeatView) -> String {
    format!("{:.1}", h.heat)
}

/// Which way is better for a figure.
#[derive(Clone, Copy)]
enum Better {
    More,
    Less,
    Neither,
}

fn change(
    lang: Lang,
    now: f64,
    before: f64,
    better: Better,
    pct: bool,
) -> (String, &'static str, &'static str) {
    let d = now - before;
    let text = |v: f64| {
        if pct {
            format!("{:.1}{}", v.abs() * 100.0, lang.t("个百分点", " pts"))
        } else if v.fract() == 0.0 {
            format!("{}", v.abs() as i64)
        } else {
            format!("{:.1}", v.abs())
        }
    };
    let vs = lang.t("较上月同期", "vs. last month");
    if d.abs() < 1e-9 {
        return (format!("{} {vs}", lang.t("持平", "same")), "same", "plain");
    }
    let (arrow, trend) = if d > 0.0 {
        ("▲", "up")
    } else {
        ("▼", "down")
    };
    let tone = match better {
        Better::Neither => "plain",
        Better::More if d > 0.0 => "good",
        Better::Less if d < 0.0 => "good",
        _ => "bad",
    };
    (format!("{arrow} {} {vs}", text(d)), trend, tone)
}

#[allow(clippy::too_many_arguments)]
fn kpi(
    lang: Lang,
    id: &'static str,
    label: &str,
    value: String,
    compare: Option<(f64, f64, Better, bool)>,
    note: String,
    alert: bool,
) -> Kpi {
    let (change, trend, tone) = match compare {
        Some((now, before, better, pct)) => change(lang, now, before, better, pct),
        None => (String::new(), "same", "plain"),
    };
    Kpi {
        id,
        label: label.to_string(),
        value,
        change,
        trend,
        tone,
        note,
        alert,
    }
}

fn kpis(lang: Lang, now: &Figures, before: &Figures, open: i64, overdue: i64) -> Vec<Kpi> {
    let rate = |f: &Figures| f.success_rate;
    let pct = |v: Option<f64>| {
        v.map(|v| format!("{:.1}%", v * 100.0))
            .unwrap_or_else(|| "—".into())
    };
    vec![
        kpi(
            lang,
            "received",
            lang.t("本月登记", "Received this month"),
            now.received.to_string(),
            Some((
                now.received as f64,
                before.received as f64,
                Better::Neither,
                false,
            )),
            String::new(),
            false,
        ),
        kpi(
            lang,
            "closed",
            lang.t("本月结案", "Closed this month"),
            now.closed.to_string(),
            Some((now.closed as f64, before.closed as f64, Better::More, false)),
            format!(
                "{} {}",
                lang.t("调解成功", "by agreement"),
                now.resolved_by_agreement
            ),
            false,
        ),
        kpi(
            lang,
            "success",
            lang.t("调解成功率", "Success rate"),
            pct(rate(now)),
            rate(now)
                .zip(rate(before))
                .map(|(a, b)| (a, b, Better::More, true)),
            lang.t("本月结案中达成协议的比例", "closed this month by agreement")
                .into(),
            false,
        ),
        kpi(
            lang,
            "incidents",
            lang.t("本月阻工事件", "Incidents this month"),
            now.incidents.to_string(),
            Some((
                now.incidents as f64,
                before.incidents as f64,
                Better::Less,
                false,
            )),
            String::new(),
            false,
        ),
        kpi(
            lang,
            "hours",
            lang.t("本月停工小时", "Hours stopped this month"),
            format!("{:.1}", now.hours_stopped),
            Some((now.hours_stopped, before.hours_stopped, Better::Less, false)),
            String::new(),
            false,
        ),
        kpi(
            lang,
            "open",
            lang.t("当前在办", "Open now"),
            open.to_string(),
            None,
            format!("{} {overdue}", lang.t("其中逾期", "overdue")),
            overdue > 0,
        ),
    ]
}

/// The scale's explanation: how the score is made, how it fades, where the bands lie; and,
/// when a district is shown per 100 households, that this is a different figure.
pub(crate) fn legend(
    app: &App,
    lang: Lang,
    communities: &[HeatView],
    per_100_districts: bool,
) -> Vec<String> {
    let half = app.read_config.heat_half_life_days;
    let mut lines = vec![match lang {
        Lang::Zh => format!(
            "热度分：每件居民异议1分，阻挡施工案件2分，每次阻工事件2分并每停工1小时加0.5分（最多8小时），报警出警2分，上报3分，调解不成1.5分，重新开启1分；随时间减半，半衰期{half:.0}天。"
        ),
        Lang::En => format!(
            "Heat score: an objection 1, an obstruction case 2, an incident 2 plus 0.5 per hour stopped (at most 8 hours), police 2, an escalation 3, a failed mediation 1.5, a reopened case 1; it halves every {half:.0} days."
        ),
    }];
    lines.push(match lang {
        Lang::Zh => format!(
            "小区色带（按热度分）：绿 < {} ≤ 黄 < {} ≤ 红；灰为无报告。",
            heat::RAW_AMBER,
            heat::RAW_RED
        ),
        Lang::En => format!(
            "Community bands (by heat score): green < {} ≤ amber < {} ≤ red; grey: no reports.",
            heat::RAW_AMBER,
            heat::RAW_RED
        ),
    });
    if communities
        .iter()
        .any(|c| c.heat_per_100_households.is_some())
    {
        lines.push(match lang {
            Lang::Zh => format!(
                "已知户数的小区按每百户热度分档：绿 < {} ≤ 黄 < {} ≤ 红（排名仍按热度分）。",
                heat::PER100_AMBER,
                heat::PER100_RED
            ),
            Lang::En => format!(
                "Communities with known households are banded per 100 households: green < {} ≤ amber < {} ≤ red (ranked by heat score all the same).",
                heat::PER100_AMBER,
                heat::PER100_RED
            ),
        });
    }
    if per_100_districts {
        lines.push(match lang {
            Lang::Zh => format!(
                "片区按每百户热度（片区热度分之和 ÷ 户数 × 100）分档：绿 < {} ≤ 黄 < {} ≤ 红。",
                heat::PER100_AMBER,
                heat::PER100_RED
            ),
            Lang::En => format!(
                "Districts are banded per 100 households (their heat score ÷ households × 100): green < {} ≤ amber < {} ≤ red.",
                heat::PER100_AMBER,
                heat::PER100_RED
            ),
        });
    }
    lines
}

pub async fn build(app: &App, lang: Lang) -> AppResult<ScreenLive> {
    let now = app.now();
    let position = app.read.position().await.unwrap_or(0);
    let today = now.date_in(app.offset());
    let (month, before) = stats::month_to_date(today);
    let (current, previous) = stats::programme_totals(app, month, before).await?;
    let counts = case_status::counts(&app.db, &now, None).await?;
    let communities = heat::communities_cached(&app.db, &app.read_config, &now, &app.heat).await?;
    let districts = heat::districts(&app.db, &app.read_config, &now).await?;

    let mut ranked: Vec<&HeatView> = communities.iter().filter(|c| c.reports).collect();
    ranked.sort_by(|a, b| b.heat.total_cmp(&a.heat).then(a.id.cmp(&b.id)));
    ranked.truncate(RANKED);
    let top = ranked.first().map(|c| c.heat).unwrap_or(0.0).max(1e-9);
    let bars = ranked
        .iter()
        .map(|c| Bar {
            id: c.id.clone(),
            name: c.name_zh.clone(),
            district: c.district_name_zh.clone().unwrap_or_default(),
            score: score(c),
            band: band_code(c.band),
            width: format!("{:.1}", (c.heat / top * 100.0).clamp(2.0, 100.0)),
        })
        .collect();

    let map = districts
        .iter()
        .map(|d| MapDistrict {
            id: d.id.clone(),
            name: d.name_zh.clone(),
            band: band_code(d.band),
            band_label: labels::band(lang, band_code(d.band)).to_string(),
            per_100: d
                .heat_per_100_households
                .filter(|_| d.reports)
                .map(|x| format!("{} {x:.2}", lang.t("每百户", "per 100 households")))
                .unwrap_or_default(),
            cells: communities
                .iter()
                .filter(|c| c.district.as_deref() == Some(d.id.as_str()))
                .map(|c| Cell {
                    id: c.id.clone(),
                    name: c.name_zh.clone(),
                    band: band_code(c.band),
                    score: if c.reports { score(c) } else { "—".into() },
                    title: format!(
                        "{} · {} {} · {} {}",
                        c.name_zh,
                        lang.t("在办", "open"),
                        c.open_cases,
                        lang.t("阻工", "incidents"),
                        c.incidents
                    ),
                })
                .collect(),
        })
        .collect::<Vec<_>>();
    let per_100_districts = districts
        .iter()
        .any(|d| d.heat_per_100_households.is_some());

    let feed = audit::latest(&app.db, &[INCIDENT_EVENT], FEED)
        .await?
        .into_iter()
        .map(|e| FeedLine {
            at: super::local(app, e.business_at.as_deref().unwrap_or(&e.recorded_at)),
            community: e
                .community
                .as_deref()
                .map(|c| stats::key_name(app, By::Community, c))
                .unwrap_or_default(),
            summary: e.summary_zh,
        })
        .collect();

    Ok(ScreenLive {
        lang,
        as_of: super::local_ts(app, now),
        position,
        month: format!("{}-{:02}", today.year(), today.month() as u8),
        kpis: kpis(lang, &current, &previous, counts.open, counts.overdue),
        bars,
        legend: legend(app, lang, &communities, per_100_districts),
        map,
        trend_svg: trend_svg(lang, &weeks(app, now).await?),
        feed,
    })
}

pub async fn page(State(app): State<App>, signed: Signed) -> Response {
    let lang = signed.web.lang;
    let live = match build(&app, lang).await {
        Ok(l) => l,
        Err(e) => return signed.error(e),
    };
    let position = live.position;
    let live = match live.render() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "the wall screen failed to render");
            return signed.error(crate::app_error::AppError::internal());
        }
    };
    render(&ScreenPage {
        lang,
        title: lang
            .t(
                "老旧小区改造矛盾纠纷态势",
                "Renovation conflicts at a glance",
            )
            .into(),
        live,
        position,
        who: signed.actor.name.clone(),
    })
}

/// The screen's live part over server-sent events (see [`super::dashboard::stream`]).
pub async fn live(
    State(app): State<App>,
    signed: Signed,
    Query(q): Query<LiveQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = signed.web.lang;
    let start = q.start(&app, &headers).await;
    super::dashboard::stream(app, start, move |app| async move {
        let live = build(&app, lang).await.ok()?;
        Some((live.position, live.render().ok()?))
    })
}
