//! The monthly report (月报), `/reports/monthly?month=YYYY-MM[&district=]`: one A4 document
//! for a district or the whole programme. The headline figures beside last month's, a chart
//! per theme (inline SVG drawn here), the ranking of communities, the overdue cases, and a
//! sentence per section written from the figures. Printed from the browser (Ctrl+P, or the
//! print button), as PDF or paper.

use std::fmt::Write;

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use tiaojie_app::stats::{self, By, Figures, Period, PeriodStats};
use tiaojie_events::DistrictId;

use super::dashboard::esc;
use super::{render, Chrome, Lang, Signed};
use crate::app::App;
use crate::app_error::AppError;

#[derive(Debug, Default, serde::Deserialize)]
pub struct MonthlyQuery {
    pub month: Option<String>,
    pub district: Option<String>,
}

/// One headline figure: this month, last month, the change.
pub struct Headline {
    pub label: String,
    pub now: String,
    pub before: String,
    pub change: String,
}

/// A community in the ranking.
pub struct Ranked {
    pub rank: usize,
    pub name: String,
    pub district: String,
    pub received: i64,
    pub closed: i64,
    pub resolved: i64,
    pub incidents: i64,
    pub hours: String,
    pub orders: i64,
}

#[derive(Template)]
#[template(path = "report_monthly.html")]
struct MonthlyPage {
    chrome: Chrome,
    title: String,
    scope: String,
    month: String,
    months: Vec<(String, String)>,
    district: String,
    districts: Vec<(String, String)>,
    generated: String,
    period: String,
    headlines: Vec<Headline>,
    overview: String,
    category_svg: String,
    category_text: String,
    outcome_svg: String,
    outcome_text: String,
    ranking: Vec<Ranked>,
    ranking_text: String,
    obstruction_svg: String,
    obstruction_text: String,
    /// (number, community, due, holder).
    overdue: Vec<(String, String, String, String)>,
    overdue_text: String,
}

fn parse_month(s: &str) -> Option<Period> {
    let (y, m) = s.trim().split_once('-')?;
    let (y, m): (i32, u8) = (y.parse().ok()?, m.parse().ok()?);
    let from = time::Date::from_calendar_date(y, time::Month::try_from(m).ok()?, 1).ok()?;
    let next = if m == 12 {
        time::Date::from_calendar_date(y + 1, time::Month::January, 1).ok()?
    } else {
        time::Date::from_calendar_date(y, time::Month::try_from(m + 1).ok()?, 1).ok()?
    };
    Some(Period {
        from,
        to: next - time::Duration::days(1),
    })
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{:.1}%", v * 100.0))
        .unwrap_or_else(|| "—".into())
}

/// "增加3件" / "减少2件" / "持平".
fn delta(lang: Lang, now: f64, before: f64, unit_zh: &str, unit_en: &str, pct: bool) -> String {
    let d = now - before;
    if d.abs() < 1e-9 {
        return lang.t("持平", "the same").into();
    }
    let v = if pct {
        format!("{:.1}", d.abs() * 100.0)
    } else if d.fract() == 0.0 {
        format!("{}", d.abs() as i64)
    } else {
        format!("{:.1}", d.abs())
    };
    match (lang, d > 0.0) {
        (Lang::Zh, true) => format!("增加{v}{unit_zh}"),
        (Lang::Zh, false) => format!("减少{v}{unit_zh}"),
        (Lang::En, true) => format!("up {v}{unit_en}"),
        (Lang::En, false) => format!("down {v}{unit_en}"),
    }
}

fn headlines(lang: Lang, f: &Figures, b: &Figures) -> Vec<Headline> {
    let n = |label: &str, now: i64, before: i64, zh: &str, en: &str| Headline {
        label: label.into(),
        now: now.to_string(),
        before: before.to_string(),
        change: delta(lang, now as f64, before as f64, zh, en, false),
    };
    let r = |label: &str, now: Option<f64>, before: Option<f64>| Headline {
        label: label.into(),
        now: pct(now),
        before: pct(before),
        change: match (now, before) {
            (Some(a), Some(b)) => delta(lang, a, b, "个百分点", " pts", true),
            _ => "—".into(),
        },
    };
    let cases: [(&str, &str, i64, i64); 6] = [
        ("登记案件", "Received", f.received, b.received),
        ("受理案件", "Accepted", f.accepted, b.accepted),
        ("结案", "Closed", f.closed, b.closed),
        (
            "调解成功",
            "Resolved by agreement",
            f.resolved_by_agreement,
            b.resolved_by_agreement,
        ),
        ("调解不成", "Failed", f.failed, b.failed),
        ("上报/移交", "Escalated", f.escalated, b.escalated),
    ];
    let mut out: Vec<Headline> = cases
        .iter()
        .map(|(zh, en, now, before)| n(lang.t(zh, en), *now, *before, "件", ""))
        .collect();
    out.push(r(
        lang.t("调解成功率", "Success rate"),
        f.success_rate,
        b.success_rate,
    ));
    out.push(r(
        lang.t("按期办结率", "On time"),
        f.on_time_rate,
        b.on_time_rate,
    ));
    out.push(n(
        lang.t("阻工事件", "Obstruction incidents"),
        f.incidents,
        b.incidents,
        "起",
        "",
    ));
    out.push(Headline {
        label: lang.t("停工小时", "Hours stopped").into(),
        now: format!("{:.1}", f.hours_stopped),
        before: format!("{:.1}", b.hours_stopped),
        change: delta(lang, f.hours_stopped, b.hours_stopped, "小时", " h", false),
    });
    out.push(n(
        lang.t("下发督办", "Orders issued"),
        f.orders_issued,
        b.orders_issued,
        "件",
        "",
    ));
    out.push(r(
        lang.t("督办按期答复率", "Orders answered on time"),
        f.orders_on_time_rate,
        b.orders_on_time_rate,
    ));
    out
}

/// Horizontal bars, this month's values with last month's as thin marks; A4-wide.
fn bars_svg(title: &str, rows: &[(String, f64, f64)], unit: &str) -> String {
    let max = rows
        .iter()
        .map(|r| r.1.max(r.2))
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let row_h = 22.0;
    let h = 10.0 + row_h * rows.len().max(1) as f64;
    let mut out = format!(
        r#"<svg class="rchart" viewBox="0 0 640 {h}" role="img" aria-label="{}">"#,
        esc(title)
    );
    if rows.is_empty() {
        out.push_str(r#"<text x="8" y="22" class="lbl">—</text>"#);
    }
    for (i, (label, now, before)) in rows.iter().enumerate() {
        let y = 6.0 + i as f64 * row_h;
        let w = now / max * 380.0;
        let wb = before / max * 380.0;
        let _ = write!(
            out,
            r#"<text x="170" y="{ty}" text-anchor="end" class="lbl">{l}</text><rect x="178" y="{y}" width="{w:.1}" height="14" class="bar"/><rect x="178" y="{yb}" width="{wb:.1}" height="3" class="prev"/><text x="{tx:.1}" y="{ty}" class="val">{v}{unit}</text>"#,
            ty = y + 12.0,
            l = esc(label),
            yb = y + 15.0,
            tx = 184.0 + w,
            v = if now.fract() == 0.0 {
                format!("{}", *now as i64)
            } else {
                format!("{now:.1}")
            },
        );
    }
    out.push_str("</svg>");
    out
}

pub async fn monthly(
    State(app): State<App>,
    signed: Signed,
    Query(q): Query<MonthlyQuery>,
) -> Response {
    let lang = signed.web.lang;
    let today = app.today();
    let month = q
        .month
        .clone()
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| {
            // Last month by default: the one a report is written about.
            let first = today.replace_day(1).unwrap_or(today);
            let last = first - time::Duration::days(1);
            format!("{}-{:02}", last.year(), last.month() as u8)
        });
    let Some(p) = parse_month(&month) else {
        return signed.error(
            AppError::invalid(
                "invalid_query",
                "month must be YYYY-MM",
                "月份格式应为 YYYY-MM",
            )
            .with_field("month", &month),
        );
    };
    let district = match q.district.as_deref().filter(|d| !d.is_empty()) {
        None => None,
        Some(d) => match DistrictId::parse(d)
            .ok()
            .filter(|d| app.reference.district(d).is_some())
        {
            Some(d) => Some(d),
            None => {
                return signed.error(
                    AppError::invalid("invalid_query", "unknown district", "片区不存在")
                        .with_field("district", d),
                )
            }
        },
    };
    let prev = p.previous();
    let got = async {
        let communities = stats::compare(
            &app,
            &signed.actor,
            p,
            prev,
            By::Community,
            district.as_ref(),
        )
        .await?;
        let categories = stats::compare(
            &app,
            &signed.actor,
            p,
            prev,
            By::Category,
            district.as_ref(),
        )
        .await?;
        Ok::<_, AppError>((communities, categories))
    }
    .await;
    let (communities, categories): (PeriodStats, PeriodStats) = match got {
        Ok(s) => s,
        Err(e) => return signed.error(e),
    };
    let f = &communities.total.current;
    let b = &communities.total.previous;
    let month_zh = format!("{}年{}月", p.from.year(), p.from.month() as u8);
    let scope = match &district {
        Some(d) => app
            .reference
            .district(d)
            .map(|d| d.name_zh.clone())
            .unwrap_or_default(),
        None => lang.t("全部片区", "All districts").to_string(),
    };

    // 一、总体情况
    let overview = match lang {
        Lang::Zh => format!(
            "{month_zh}，{scope}共登记矛盾纠纷{}件，较上月{}；受理{}件，结案{}件，其中调解成功{}件，调解成功率{}（上月{}），按期办结率{}。调解不成{}件，上报或移交{}件。",
            f.received,
            delta(lang, f.received as f64, b.received as f64, "件", "", false),
            f.accepted,
            f.closed,
            f.resolved_by_agreement,
            pct(f.success_rate),
            pct(b.success_rate),
            pct(f.on_time_rate),
            f.failed,
            f.escalated,
        ),
        Lang::En => format!(
            "In {month}, {scope} received {} disputes ({} on last month), accepted {} and closed {}, {} of them by agreement: a success rate of {} (last month {}), {} on time. {} mediations failed and {} were escalated.",
            f.received,
            delta(lang, f.received as f64, b.received as f64, "", "", false),
            f.accepted,
            f.closed,
            f.resolved_by_agreement,
            pct(f.success_rate),
            pct(b.success_rate),
            pct(f.on_time_rate),
            f.failed,
            f.escalated,
        ),
    };

    // 二、纠纷类别
    let mut cats: Vec<(String, f64, f64)> = categories
        .rows
        .iter()
        .map(|r| {
            (
                r.name.clone(),
                r.current.received as f64,
                r.previous.received as f64,
            )
        })
        .filter(|r| r.1 > 0.0 || r.2 > 0.0)
        .collect();
    cats.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    cats.truncate(12);
    let category_text = match (cats.first(), lang) {
        (Some(top), Lang::Zh) if top.1 > 0.0 => format!(
            "从纠纷类别看，“{}”最多，{}件，占本月登记的{:.0}%。",
            top.0,
            top.1,
            top.1 / (f.received.max(1) as f64) * 100.0
        ),
        (Some(top), Lang::En) if top.1 > 0.0 => format!(
            "By category, “{}” came first with {} cases, {:.0}% of the month's.",
            top.0,
            top.1,
            top.1 / (f.received.max(1) as f64) * 100.0
        ),
        _ => lang
            .t("本月没有登记案件。", "No case was received this month.")
            .into(),
    };
    let category_svg = bars_svg(
        lang.t("按纠纷类别登记数", "Received by category"),
        &cats,
        "",
    );

    // 三、办理结果
    let outcomes = [
        (
            lang.t("调解成功", "By agreement"),
            f.resolved_by_agreement,
            b.resolved_by_agreement,
        ),
        (
            lang.t("其他方式化解", "Otherwise resolved"),
            f.resolved_otherwise,
            b.resolved_otherwise,
        ),
        (lang.t("移交处理", "Referred"), f.referred, b.referred),
        (
            lang.t("不予受理", "Not admissible"),
            f.not_admissible,
            b.not_admissible,
        ),
        (lang.t("未能化解", "Unresolved"), f.unresolved, b.unresolved),
        (lang.t("撤回", "Withdrawn"), f.withdrawn, b.withdrawn),
        (lang.t("调解不成", "Failed"), f.failed, b.failed),
    ]
    .iter()
    .map(|(l, a, b)| (l.to_string(), *a as f64, *b as f64))
    .collect::<Vec<_>>();
    let outcome_svg = bars_svg(lang.t("办理结果", "Outcomes"), &outcomes, "");
    let outcome_text =
        match lang {
            Lang::Zh => format!(
                "本月结案{}件（上月{}件），平均办理{}天，中位{}天；撤回{}件。",
                f.closed,
                b.closed,
                f.mean_days
                    .map(|d| format!("{d:.1}"))
                    .unwrap_or_else(|| "—".into()),
                f.median_days
                    .map(|d| format!("{d:.1}"))
                    .unwrap_or_else(|| "—".into()),
                f.withdrawn
            ),
            Lang::En => {
                format!(
            "{} cases closed (last month {}), in {} days on average, median {}; {} withdrawn.",
            f.closed,
            b.closed,
            f.mean_days.map(|d| format!("{d:.1}")).unwrap_or_else(|| "—".into()),
            f.median_days.map(|d| format!("{d:.1}")).unwrap_or_else(|| "—".into()),
            f.withdrawn
        )
            }
        };

    // 四、小区排名
    let district_of = |key: &str| {
        tiaojie_events::CommunityId::parse(key)
            .ok()
            .and_then(|c| app.reference.community(&c).map(|c| c.district.clone()))
            .and_then(|d| app.reference.district(&d).map(|d| d.name_zh.clone()))
            .unwrap_or_default()
    };
    let mut rows: Vec<&stats::StatRow> = communities
        .rows
        .iter()
        .filter(|r| {
            let c = &r.current;
            c.received + c.closed + c.incidents + c.orders_issued + c.failed + c.escalated > 0
        })
        .collect();
    rows.sort_by(|a, b| {
        (b.current.received + b.current.incidents)
            .cmp(&(a.current.received + a.current.incidents))
            .then(a.name.cmp(&b.name))
    });
    let ranking: Vec<Ranked> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| Ranked {
            rank: i + 1,
            name: r.name.clone(),
            district: district_of(&r.key),
            received: r.current.received,
            closed: r.current.closed,
            resolved: r.current.resolved_by_agreement,
            incidents: r.current.incidents,
            hours: format!("{:.1}", r.current.hours_stopped),
            orders: r.current.orders_issued,
        })
        .collect();
    let ranking_text = match (ranking.first(), lang) {
        (Some(top), Lang::Zh) => format!(
            "{}个小区本月有案件或事件，“{}”居首（登记{}件、阻工{}起）。",
            ranking.len(),
            top.name,
            top.received,
            top.incidents
        ),
        (Some(top), Lang::En) => format!(
            "{} communities had cases or incidents; {} came first ({} received, {} incidents).",
            ranking.len(),
            top.name,
            top.received,
            top.incidents
        ),
        (None, _) => lang
            .t(
                "本月各小区均无案件或事件。",
                "No community had a case or an incident.",
            )
            .into(),
    };

    // 五、阻挡施工
    let mut obstruction: Vec<(String, f64, f64)> = communities
        .rows
        .iter()
        .map(|r| {
            (
                r.name.clone(),
                r.current.hours_stopped,
                r.previous.hours_stopped,
            )
        })
        .filter(|r| r.1 > 0.0 || r.2 > 0.0)
        .collect();
    obstruction.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    obstruction.truncate(10);
    let obstruction_svg = bars_svg(
        lang.t("各小区停工小时", "Hours stopped by community"),
        &obstruction,
        "h",
    );
    let obstruction_text = match lang {
        Lang::Zh => format!(
            "本月发生阻挡施工事件{}起，较上月{}，累计停工{:.1}小时（上月{:.1}小时）。",
            f.incidents,
            delta(lang, f.incidents as f64, b.incidents as f64, "起", "", false),
            f.hours_stopped,
            b.hours_stopped
        ),
        Lang::En => format!(
            "{} obstruction incidents ({} on last month) stopped work for {:.1} hours (last month {:.1}).",
            f.incidents,
            delta(lang, f.incidents as f64, b.incidents as f64, "", "", false),
            f.hours_stopped,
            b.hours_stopped
        ),
    };

    // 六、逾期案件 (now)
    let overdue: Vec<(String, String, String, String)> = communities
        .overdue
        .iter()
        .map(|o| {
            let (_, number, community, due, holder) = super::stats::overdue_row(&app, lang, o);
            (number, community, due, holder)
        })
        .collect();
    let counts_only = !signed.actor.reads_cases();
    let overdue_text = match (overdue.len(), lang) {
        _ if counts_only => lang
            .t(
                "（大屏账号不显示具体案件。）",
                "(A wall screen sees no cases.)",
            )
            .into(),
        (0, _) => lang
            .t("目前没有逾期案件。", "No case is overdue now.")
            .into(),
        (n, Lang::Zh) => format!("截至报告生成时，有{n}件案件超过期限，请承办人尽快办理。"),
        (n, Lang::En) => format!("{n} cases are past a deadline as this report is made."),
    };

    let months = (0..12)
        .map(|i| {
            let mut y = today.year();
            let mut m = today.month() as i32 - 1 - i;
            while m < 1 {
                m += 12;
                y -= 1;
            }
            let v = format!("{y}-{m:02}");
            (v.clone(), v)
        })
        .collect();
    let mut districts = vec![(
        String::new(),
        lang.t("全部片区", "All districts").to_string(),
    )];
    districts.extend(
        app.reference
            .districts
            .iter()
            .map(|d| (d.id.to_string(), d.name_zh.clone())),
    );
    let programme = &app.reference.programme;
    let title = match lang {
        Lang::Zh => format!("{}矛盾纠纷调解工作月报", programme.name_zh),
        Lang::En => format!("{}: mediation, monthly report", programme.name_en),
    };
    let page = MonthlyPage {
        chrome: signed.chrome(lang.t("月报", "Monthly report").to_string(), "stats"),
        title,
        scope,
        period: match lang {
            Lang::Zh => format!(
                "{month_zh}（{} 至 {}）；上月 {} 至 {}",
                p.from, p.to, prev.from, prev.to
            ),
            Lang::En => format!(
                "{} to {}; last month {} to {}",
                p.from, p.to, prev.from, prev.to
            ),
        },
        month,
        months,
        district: district.map(|d| d.to_string()).unwrap_or_default(),
        districts,
        generated: super::local_ts(&app, app.now()),
        headlines: headlines(lang, f, b),
        overview,
        category_svg,
        category_text,
        outcome_svg,
        outcome_text,
        ranking,
        ranking_text,
        obstruction_svg,
        obstruction_text,
        overdue,
        overdue_text,
    };
    render(&page)
}
