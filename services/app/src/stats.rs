//! Statistics for a period, for supervision offices (everything), leaders and members (their
//! group's communities) and dashboards (counts only): what came in, what was accepted,
//! settled, failed, withdrawn and escalated, the success and on-time rates, handling time,
//! incidents and hours stopped, each beside the same figure for the period before, grouped
//! by district, community, category, channel or kind. Read from the case list kept by its
//! projector (`case_status`), never by scanning events.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tiaojie_events::case::{CaseKind, IntakeChannel};
use tiaojie_events::metadata::Role;
use tiaojie_events::{CategoryCode, CommunityId, DistrictId, Timestamp};
use tiaojie_projections::models::orders::{self, OrderRow};
use tiaojie_projections::models::stats::{self, StatCase};
use utoipa::ToSchema;

use crate::app::App;
use crate::app_error::{AppError, AppResult};
use crate::auth::Actor;

/// How the figures are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum By {
    #[default]
    District,
    Community,
    Category,
    Channel,
    Kind,
}

/// The figures of one group of cases for one period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct Figures {
    /// Cases registered (受理登记) in the period.
    pub received: i64,
    /// Cases accepted (受理) in the period.
    pub accepted: i64,
    /// Cases closed in the period (withdrawals not included).
    pub closed: i64,
    pub resolved_by_agreement: i64,
    pub resolved_otherwise: i64,
    pub referred: i64,
    pub not_admissible: i64,
    pub unresolved: i64,
    /// Withdrawn in the period.
    pub withdrawn: i64,
    /// Mediation failed in the period, and by the route the case was sent on.
    pub failed: i64,
    pub failed_by_route: BTreeMap<String, i64>,
    /// First escalated in the period.
    pub escalated: i64,
    /// Resolved by agreement among the closed, not-admissible ones left out; `None` with
    /// nothing closed.
    pub success_rate: Option<f64>,
    /// Closed no later than the mediation deadline (30 days from acceptance, or the
    /// extended date) among the closed that were accepted.
    pub on_time_rate: Option<f64>,
    /// Days from acceptance to closure, of the closed that were accepted.
    pub mean_days: Option<f64>,
    pub median_days: Option<f64>,
    /// Obstruction incidents and hours of work stopped, of the cases received in the period.
    pub incidents: i64,
    pub hours_stopped: f64,
    /// Supervision orders (督办) issued in the period.
    pub orders_issued: i64,
    /// Of those, answered by the date the order set.
    pub orders_answered_on_time: i64,
    /// Answered on time among the period's orders that were answered or are past their
    /// date (orders still running are left out); `None` with none such.
    pub orders_on_time_rate: Option<f64>,
}

/// One row: a district, community, category, channel or kind.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatRow {
    pub key: String,
    pub name: String,
    pub current: Figures,
    pub previous: Figures,
}

/// An open case past a deadline, and who holds it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OverdueLine {
    pub case_id: String,
    pub case_number: Option<String>,
    pub community: String,
    pub due_kind: String,
    pub due_at: String,
    /// The assigned mediator's name, when one is assigned.
    pub holder: Option<String>,
}

/// The answer of `GET /api/v1/stats/period`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PeriodStats {
    pub from: String,
    pub to: String,
    pub previous_from: String,
    pub previous_to: String,
    pub by: By,
    pub rows: Vec<StatRow>,
    pub total: StatRow,
    /// Open cases overdue now (not for dashboards).
    pub overdue: Vec<OverdueLine>,
    /// What each figure counts.
    pub definitions: Vec<Definition>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Definition {
    pub figure: String,
    pub zh: String,
    pub en: String,
}

/// What each figure counts, in Chinese and English.
pub fn definitions() -> Vec<Definition> {
    let d = |figure: &str, zh: &str, en: &str| Definition {
        figure: figure.into(),
        zh: zh.into(),
        en: en.into(),
    };
    vec![
        d("received", "期间内登记的案件数", "cases registered in the period"),
        d("accepted", "期间内受理的案件数", "cases accepted in the period"),
        d("closed", "期间内结案的案件数（不含撤回）", "cases closed in the period (withdrawals not included)"),
        d("success_rate", "调解成功率 = 以“调解成功”结案数 ÷（结案数 − 不予受理数）", "success rate = closed as resolved by agreement ÷ (closed − not admissible)"),
        d("on_time_rate", "按期办结率 = 在调解期限内（受理后30日，或经当事人同意延长后的期限）结案数 ÷ 已受理的结案数", "on-time rate = closed by the mediation deadline (30 days from acceptance, or the extended date) ÷ closed cases that were accepted"),
        d("mean_days", "平均办理天数：受理至结案", "mean days from acceptance to closure"),
        d("failed", "期间内调解不成的案件数，按引导途径分列", "mediations failed in the period, by next route"),
        d("escalated", "期间内首次上报/移交的案件数", "cases first escalated in the period"),
        d("incidents", "期间内登记案件的阻挡施工事件数和停工小时数", "incidents and hours stopped of the cases registered in the period"),
        d("orders", "督办：期间内下发的督办数；按期答复率 = 在督办要求的期限内答复数 ÷（已答复数 + 已过期限未答复数），尚在期限内未答复的不计", "orders: supervision orders issued in the period; answered on time = answered by the order's date ÷ (answered + past their date unanswered); orders still running are left out"),
        d("previous", "上期：整月（月、季、年）与紧接其前的同样月数比较，其他期间与紧接其前、天数相同的期间比较", "previous: whole months (a month, a quarter, a year) compare with as many months just before; other ranges with the same number of days just before"),
    ]
}

/// A period of local dates, both days included.
#[derive(Debug, Clone, Copy)]
pub struct Period {
    pub from: time::Date,
    pub to: time::Date,
}

impl Period {
    /// The period before: whole months (a month, a quarter, a year) compare with as many
    /// months just before; any other range with the days of the same length just before.
    pub fn previous(&self) -> Period {
        let after = self.to + time::Duration::days(1);
        if self.from.day() == 1 && after.day() == 1 {
            let index = |d: time::Date| d.year() * 12 + d.month() as i32 - 1;
            let months = index(after) - index(self.from);
            let start = index(self.from) - months;
            let month = time::Month::try_from((start.rem_euclid(12) + 1) as u8);
            if let Ok(Ok(from)) =
                month.map(|m| time::Date::from_calendar_date(start.div_euclid(12), m, 1))
            {
                return Period {
                    from,
                    to: self.from - time::Duration::days(1),
                };
            }
        }
        let days = (self.to - self.from).whole_days() + 1;
        let to = self.from - time::Duration::days(1);
        Period {
            from: to - time::Duration::days(days - 1),
            to,
        }
    }

    /// Its bounds in UTC, as stored: [start of `from`, start of the day after `to`).
    fn bounds(&self, offset: time::UtcOffset) -> (String, String) {
        let at = |d: time::Date| {
            Timestamp::from_offset(d.midnight().assume_offset(offset)).to_canonical()
        };
        (at(self.from), at(self.to + time::Duration::days(1)))
    }
}

/// Reads `from` and `to` (YYYY-MM-DD); at most ten years apart.
pub fn period(from: &str, to: &str) -> AppResult<Period> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let parse = |s: &str, field: &str| {
        time::Date::parse(s.trim(), &fmt).map_err(|_| {
            AppError::invalid(
                "invalid_query",
                format!("{field} must be a date YYYY-MM-DD"),
                "日期格式应为 YYYY-MM-DD",
            )
            .with_field(field, s)
        })
    };
    let p = Period {
        from: parse(from, "from")?,
        to: parse(to, "to")?,
    };
    if p.to < p.from || (p.to - p.from).whole_days() > 3660 {
        return Err(AppError::invalid(
            "invalid_period",
            "to must not be before from, and the period at most ten years",
            "结束日期不能早于开始日期，期间最长十年",
        )
        .with_field("to", "before from"));
    }
    Ok(p)
}

fn key(c: &StatCase, by: By) -> &str {
    match by {
        By::District => &c.district,
        By::Community => &c.community,
        By::Category => &c.category,
        By::Channel => &c.channel,
        By::Kind => &c.kind,
    }
}

/// The name a key reads as, in Chinese (names are data).
pub fn key_name(app: &App, by: By, key: &str) -> String {
    let name = match by {
        By::District => DistrictId::parse(key)
            .ok()
            .and_then(|d| app.reference.district(&d).map(|d| d.name_zh.clone())),
        By::Community => CommunityId::parse(key)
            .ok()
            .and_then(|c| app.reference.community(&c).map(|c| c.name_zh.clone())),
        By::Category => CategoryCode::parse(key)
            .ok()
            .and_then(|c| app.reference.category(&c).map(|c| c.name_zh.clone())),
        By::Channel => {
            serde_json::from_value::<IntakeChannel>(serde_json::Value::String(key.into()))
                .ok()
                .map(|c| c.label_zh().to_string())
        }
        By::Kind => key
            .parse::<CaseKind>()
            .ok()
            .map(|k| k.label_zh().to_string()),
    };
    name.unwrap_or_else(|| key.to_string())
}

fn within(t: &Option<String>, (from, to): &(String, String)) -> bool {
    t.as_deref()
        .is_some_and(|t| t >= from.as_str() && t < to.as_str())
}

fn days_between(a: &str, b: &str) -> Option<f64> {
    let (a, b) = (Timestamp::parse(a).ok()?, Timestamp::parse(b).ok()?);
    Some((b.as_offset() - a.as_offset()).as_seconds_f64() / 86_400.0)
}

/// A figure whose cases can be listed: each counts a case when the time it names falls in
/// the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Figure {
    Received,
    Accepted,
    Closed,
    ResolvedByAgreement,
    Withdrawn,
    Failed,
    Escalated,
    /// Received in the period with at least one obstruction incident.
    Incidents,
}

impl Figure {
    pub const ALL: [Figure; 8] = [
        Figure::Received,
        Figure::Accepted,
        Figure::Closed,
        Figure::ResolvedByAgreement,
        Figure::Withdrawn,
        Figure::Failed,
        Figure::Escalated,
        Figure::Incidents,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Figure::Received => "received",
            Figure::Accepted => "accepted",
            Figure::Closed => "closed",
            Figure::ResolvedByAgreement => "resolved_by_agreement",
            Figure::Withdrawn => "withdrawn",
            Figure::Failed => "failed",
            Figure::Escalated => "escalated",
            Figure::Incidents => "incidents",
        }
    }

    pub fn parse(s: &str) -> Option<Figure> {
        Figure::ALL.into_iter().find(|f| f.code() == s)
    }
}

/// Whether a case counts in a figure for a period's bounds: one rule for the figures and
/// for the list of cases behind each.
pub fn in_figure(c: &StatCase, figure: Figure, b: &(String, String)) -> bool {
    let closed = within(&c.closed_at, b);
    let withdrawn = c.outcome.as_deref() == Some("withdrawn");
    match figure {
        Figure::Received => within(&Some(c.reported_at.clone()), b),
        Figure::Accepted => within(&c.accepted_at, b),
        Figure::Closed => closed && !withdrawn,
        Figure::ResolvedByAgreement => {
            closed && c.outcome.as_deref() == Some("resolved_by_agreement")
        }
        Figure::Withdrawn => closed && withdrawn,
        Figure::Failed => within(&c.failed_at, b),
        Figure::Escalated => within(&c.escalated_at, b),
        Figure::Incidents => within(&Some(c.reported_at.clone()), b) && c.incidents > 0,
    }
}

/// One case behind a figure.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FigureCase {
    pub case_id: String,
    pub case_number: Option<String>,
    pub community: String,
    pub community_name: String,
    pub kind: String,
    pub status: String,
    pub reported_at: String,
}

/// The cases behind one figure of a period, in one group (`key`; `None`: all), as the
/// caller may see them, newest first (at most 2,000). Dashboards see counts only.
pub async fn figure_cases(
    app: &App,
    actor: &Actor,
    p: Period,
    by: By,
    key_: Option<&str>,
    figure: Figure,
) -> AppResult<Vec<FigureCase>> {
    if !actor.reads_cases() {
        return Err(AppError::forbidden_zh((
            "this role sees counts, not cases",
            "该账号只能查看统计数字，不能查看案件",
        )));
    }
    let visible = visible(app, actor).await?;
    let b = p.bounds(app.offset());
    let mut cases: Vec<StatCase> = stats::cases_in(&app.db, &b.0, &b.1, visible.as_deref())
        .await?
        .into_iter()
        .filter(|c| key_.is_none_or(|k| key(c, by) == k) && in_figure(c, figure, &b))
        .collect();
    cases.sort_by(|a, b| b.reported_at.cmp(&a.reported_at));
    cases.truncate(2000);
    let ids: Vec<&str> = cases.iter().map(|c| c.case_id.as_str()).collect();
    let numbers = crate::numbering::texts(app, &ids).await?;
    Ok(cases
        .into_iter()
        .map(|c| FigureCase {
            case_number: numbers.get(&c.case_id).cloned(),
            community_name: key_name(app, By::Community, &c.community),
            case_id: c.case_id,
            community: c.community,
            kind: c.kind,
            status: c.status,
            reported_at: c.reported_at,
        })
        .collect())
}

fn order_key(o: &OrderRow, by: By) -> &str {
    match by {
        By::District => &o.district,
        By::Community => &o.community,
        By::Category => &o.category,
        By::Channel => &o.channel,
        By::Kind => &o.kind,
    }
}

/// Counts the orders issued within the bounds, and those answered on time.
fn count_orders<'a>(
    f: &mut Figures,
    orders: impl Iterator<Item = &'a OrderRow>,
    b: &(String, String),
    now: &str,
) {
    let mut decided = 0;
    for o in orders.filter(|o| within(&Some(o.issued_at.clone()), b)) {
        f.orders_issued += 1;
        match &o.answered_at {
            Some(a) => {
                decided += 1;
                if a.as_str() <= o.respond_by.as_str() {
                    f.orders_answered_on_time += 1;
                }
            }
            None if o.respond_by.as_str() < now => decided += 1,
            None => {}
        }
    }
    f.orders_on_time_rate = (decided > 0)
        .then(|| (f.orders_answered_on_time as f64 / decided as f64 * 1000.0).round() / 1000.0);
}

/// The figures of some cases for one period's bounds.
fn figures<'a>(
    cases: impl Iterator<Item = &'a StatCase>,
    b: &(String, String),
    mediation_days: i64,
) -> Figures {
    let mut f = Figures::default();
    let mut on_time = (0i64, 0i64);
    let mut durations = Vec::new();
    for c in cases {
        if in_figure(c, Figure::Received, b) {
            f.received += 1;
            f.incidents += c.incidents;
            f.hours_stopped += c.work_stopped_minutes as f64 / 60.0;
        }
        if in_figure(c, Figure::Accepted, b) {
            f.accepted += 1;
        }
        if in_figure(c, Figure::Failed, b) {
            f.failed += 1;
            *f.failed_by_route
                .entry(c.route.clone().unwrap_or_default())
                .or_default() += 1;
        }
        if in_figure(c, Figure::Escalated, b) {
            f.escalated += 1;
        }
        if in_figure(c, Figure::Withdrawn, b) {
            f.withdrawn += 1;
        }
        if in_figure(c, Figure::Closed, b) {
            match c.outcome.as_deref() {
                Some("resolved_by_agreement") => f.resolved_by_agreement += 1,
                Some("resolved_otherwise") => f.resolved_otherwise += 1,
                Some("referred") => f.referred += 1,
                Some("not_admissible") => f.not_admissible += 1,
                _ => f.unresolved += 1,
            }
            f.closed += 1;
            if let (Some(acc), Some(closed)) = (&c.accepted_at, &c.closed_at) {
                let due = match &c.extended_due {
                    Some(d) => d.clone(),
                    None => Timestamp::parse(acc)
                        .map(|t| t.plus_days(mediation_days).to_canonical())
                        .unwrap_or_default(),
                };
                on_time.1 += 1;
                if closed.as_str() <= due.as_str() {
                    on_time.0 += 1;
                }
                if let Some(d) = days_between(acc, closed) {
                    durations.push(d);
                }
            }
        }
    }
    let ratio = |a: i64, b: i64| (b > 0).then(|| (a as f64 / b as f64 * 1000.0).round() / 1000.0);
    f.success_rate = ratio(f.resolved_by_agreement, f.closed - f.not_admissible);
    f.on_time_rate = ratio(on_time.0, on_time.1);
    f.hours_stopped = (f.hours_stopped * 10.0).round() / 10.0;
    if !durations.is_empty() {
        durations.sort_by(f64::total_cmp);
        let n = durations.len();
        let mean = durations.iter().sum::<f64>() / n as f64;
        let median = if n % 2 == 1 {
            durations[n / 2]
        } else {
            (durations[n / 2 - 1] + durations[n / 2]) / 2.0
        };
        f.mean_days = Some((mean * 10.0).round() / 10.0);
        f.median_days = Some((median * 10.0).round() / 10.0);
    }
    f
}

/// Who sees which communities' figures: a group its own, supervision offices and
/// dashboards all; nobody else.
async fn visible(app: &App, actor: &Actor) -> AppResult<Option<Vec<String>>> {
    match actor.role {
        Role::Supervisor | Role::Dashboard | Role::System => Ok(None),
        Role::Member | Role::Leader => Ok(Some(
            crate::commands::scope(app, actor)
                .await?
                .unwrap_or_default()
                .into_iter()
                .map(|c| c.to_string())
                .collect(),
        )),
        Role::Admin => Err(AppError::forbidden_zh((
            "administrators do not read statistics",
            "管理员不能查看统计",
        ))),
    }
}

/// The statistics of a period, grouped, beside the period before.
pub async fn period_stats(app: &App, actor: &Actor, p: Period, by: By) -> AppResult<PeriodStats> {
    compare(app, actor, p, p.previous(), by, None).await
}

/// The month so far (its first day to `today`) and the same days of the month before (to
/// the same day of the month, or that month's last day): what a wall screen compares.
pub fn month_to_date(today: time::Date) -> (Period, Period) {
    let from = today.replace_day(1).unwrap_or(today);
    let prev_last = from - time::Duration::days(1);
    let prev_from = prev_last.replace_day(1).unwrap_or(prev_last);
    let prev_to = prev_last.replace_day(today.day()).unwrap_or(prev_last);
    (
        Period { from, to: today },
        Period {
            from: prev_from,
            to: prev_to,
        },
    )
}

/// The statistics of a period, grouped, beside a given earlier period.
pub async fn compare(
    app: &App,
    actor: &Actor,
    p: Period,
    prev: Period,
    by: By,
    district: Option<&DistrictId>,
) -> AppResult<PeriodStats> {
    let mut visible = visible(app, actor).await?;
    if let Some(d) = district {
        // One district: its communities, of those the caller sees.
        let of_district = app
            .reference
            .communities
            .iter()
            .filter(|c| &c.district == d)
            .map(|c| c.id.to_string())
            .filter(|c| visible.as_ref().is_none_or(|v| v.contains(c)))
            .collect();
        visible = Some(of_district);
    }
    let (cb, pb) = (p.bounds(app.offset()), prev.bounds(app.offset()));
    let cases = stats::cases_in(&app.db, &pb.0, &cb.1, visible.as_deref()).await?;
    let orders = orders::issued_in(&app.db, &pb.0, &cb.1, visible.as_deref()).await?;
    let now = app.now().to_canonical();
    let mediation_days = app.settings.mediation_days;
    let mut keys: Vec<String> = cases
        .iter()
        .map(|c| key(c, by).to_string())
        .chain(orders.iter().map(|o| order_key(o, by).to_string()))
        .collect();
    keys.sort();
    keys.dedup();
    let row = |k: Option<&str>| {
        let of = || {
            cases
                .iter()
                .filter(move |c| k.is_none_or(|k| key(c, by) == k))
        };
        let orders_of = || {
            orders
                .iter()
                .filter(move |o| k.is_none_or(|k| order_key(o, by) == k))
        };
        let with_orders = |mut f: Figures, b: &(String, String)| {
            count_orders(&mut f, orders_of(), b, &now);
            f
        };
        StatRow {
            key: k.unwrap_or("total").to_string(),
            name: k
                .map(|k| key_name(app, by, k))
                .unwrap_or_else(|| "合计".into()),
            current: with_orders(figures(of(), &cb, mediation_days), &cb),
            previous: with_orders(figures(of(), &pb, mediation_days), &pb),
        }
    };
    let rows = keys.iter().map(|k| row(Some(k))).collect();
    let total = row(None);
    let overdue = if actor.role == Role::Dashboard {
        vec![]
    } else {
        overdue_lines(app, visible.as_deref()).await?
    };
    Ok(PeriodStats {
        from: p.from.to_string(),
        to: p.to.to_string(),
        previous_from: prev.from.to_string(),
        previous_to: prev.to.to_string(),
        by,
        rows,
        total,
        overdue,
        definitions: definitions(),
    })
}

/// The whole programme's figures for a period and an earlier one: what the wall screen
/// shows to anyone who may see the dashboard (counts only, no case).
pub async fn programme_totals(app: &App, p: Period, prev: Period) -> AppResult<(Figures, Figures)> {
    let (cb, pb) = (p.bounds(app.offset()), prev.bounds(app.offset()));
    let cases = stats::cases_in(&app.db, &pb.0.clone().min(cb.0.clone()), &cb.1, None).await?;
    let days = app.settings.mediation_days;
    Ok((
        figures(cases.iter(), &cb, days),
        figures(cases.iter(), &pb, days),
    ))
}

async fn overdue_lines(app: &App, visible: Option<&[String]>) -> AppResult<Vec<OverdueLine>> {
    let now = app.now().to_canonical();
    let cases = stats::overdue_now(&app.db, &now, visible).await?;
    let ids: Vec<&str> = cases.iter().map(|c| c.case_id.as_str()).collect();
    let numbers = crate::numbering::texts(app, &ids).await?;
    let mut names = BTreeMap::new();
    for (_, g) in app.directory.groups().await? {
        for (id, m) in g.members {
            names.insert(id.to_string(), m.name);
        }
    }
    Ok(cases
        .into_iter()
        .map(|c| OverdueLine {
            case_number: numbers.get(&c.case_id).cloned(),
            community: key_name(app, By::Community, &c.community),
            due_kind: c.due_kind.unwrap_or_default(),
            due_at: c.due_at.unwrap_or_default(),
            holder: c.assignee.as_ref().and_then(|a| names.get(a).cloned()),
            case_id: c.case_id,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(from: &str, to: &str) -> (String, String) {
        let q = period(from, to).unwrap().previous();
        (q.from.to_string(), q.to.to_string())
    }

    #[test]
    fn the_period_before_is_the_month_quarter_year_or_days_before() {
        assert_eq!(
            p("2022-06-01", "2022-06-30"),
            ("2022-05-01".into(), "2022-05-31".into())
        );
        assert_eq!(
            p("2022-03-01", "2022-03-31"),
            ("2022-02-01".into(), "2022-02-28".into())
        );
        assert_eq!(
            p("2022-01-01", "2022-03-31"),
            ("2021-10-01".into(), "2021-12-31".into())
        );
        assert_eq!(
            p("2022-01-01", "2022-12-31"),
            ("2021-01-01".into(), "2021-12-31".into())
        );
        assert_eq!(
            p("2022-05-10", "2022-05-19"),
            ("2022-04-30".into(), "2022-05-09".into())
        );
        assert!(period("2022-05-10", "2022-05-09").is_err());
        assert!(period("2022-02-30", "2022-05-09").is_err());
    }

    #[test]
    fn the_month_so_far_compares_with_the_same_days_of_the_month_before() {
        let d = |s: &str| period(s, s).unwrap().from;
        let show = |(a, b): (Period, Period)| [a.from, a.to, b.from, b.to].map(|d| d.to_string());
        assert_eq!(
            show(month_to_date(d("2022-06-17"))),
            ["2022-06-01", "2022-06-17", "2022-05-01", "2022-05-17"]
        );
        // March 31st compares with all of February.
        assert_eq!(
            show(month_to_date(d("2022-03-31"))),
            ["2022-03-01", "2022-03-31", "2022-02-01", "2022-02-28"]
        );
        assert_eq!(
            show(month_to_date(d("2022-01-05"))),
            ["2022-01-01", "2022-01-05", "2021-12-01", "2021-12-05"]
        );
    }
}
