//! Heat and statistics for dashboards: every role may read these aggregates.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use tiaojie_projections::models::case_status::{self, Counts};
use tiaojie_projections::models::daily::{self, DayRow};
use tiaojie_projections::models::heat::{self, HeatView};
use utoipa::{IntoParams, ToSchema};

use super::await_consistency;
use super::extract::{ApiQuery, Auth};
use crate::app::App;
use crate::error::{ApiError, ApiResult, Problem};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HeatQuery {
    /// A command's consistency token: wait until the read models include that write.
    pub consistent_with: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HeatAnswer {
    /// The time the heat was decayed to.
    pub as_of: String,
    pub half_life_days: f64,
    pub items: Vec<HeatView>,
}

/// Conflict heat of every community, hottest first; communities without reports say so.
#[utoipa::path(get, path = "/api/v1/heat/communities", tag = "dashboard", params(HeatQuery),
    responses((status = 200, body = HeatAnswer), (status = 401, body = Problem), (status = 503, body = Problem)), security(("bearer" = [])))]
pub async fn heat_communities(
    State(app): State<App>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<HeatQuery>,
) -> ApiResult<Json<HeatAnswer>> {
    await_consistency(&app, q.consistent_with.as_deref()).await?;
    let now = app.now();
    let mut items = heat::communities_cached(&app.db, &app.read_config, &now, &app.heat).await?;
    // A mediation group sees who its communities' repeat obstructors are.
    if let Some(scope) = tiaojie_app::commands::scope(&app, &actor).await? {
        for item in items
            .iter_mut()
            .filter(|c| c.repeat_obstructors > 0 && scope.iter().any(|s| s.as_str() == c.id))
        {
            item.repeat_obstructor_parties = heat::repeat_obstructors(
                &app.db,
                app.read_config.repeat_obstructor_incidents,
                Some(std::slice::from_ref(&item.id)),
            )
            .await?
            .into_iter()
            .map(|(party_id, incidents)| {
                tiaojie_projections::models::case_status::RepeatObstructor {
                    party_id,
                    incidents,
                }
            })
            .collect();
        }
    }
    Ok(Json(HeatAnswer {
        as_of: now.to_canonical(),
        half_life_days: app.read_config.heat_half_life_days,
        items,
    }))
}

/// Conflict heat of every district, normalised per 100 households.
#[utoipa::path(get, path = "/api/v1/heat/districts", tag = "dashboard", params(HeatQuery),
    responses((status = 200, body = HeatAnswer), (status = 401, body = Problem), (status = 503, body = Problem)), security(("bearer" = [])))]
pub async fn heat_districts(
    State(app): State<App>,
    Auth(_actor): Auth,
    ApiQuery(q): ApiQuery<HeatQuery>,
) -> ApiResult<Json<HeatAnswer>> {
    await_consistency(&app, q.consistent_with.as_deref()).await?;
    let now = app.now();
    let items = heat::districts(&app.db, &app.read_config, &now).await?;
    Ok(Json(HeatAnswer {
        as_of: now.to_canonical(),
        half_life_days: app.read_config.heat_half_life_days,
        items,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DailyQuery {
    /// First day, YYYY-MM-DD (local time); 28 days ago by default.
    pub from: Option<String>,
    /// Last day, YYYY-MM-DD; today by default.
    pub to: Option<String>,
    pub district: Option<String>,
    pub consistent_with: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DailyAnswer {
    pub from: String,
    pub to: String,
    pub days: Vec<DayRow>,
}

fn day(s: &str, field: &str) -> ApiResult<String> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s.trim(), &fmt)
        .map(|d| d.to_string())
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_query",
                format!("{field} must be a date YYYY-MM-DD"),
                "日期格式应为 YYYY-MM-DD",
            )
            .with_field(field, s)
        })
}

/// Per day and district: cases opened and closed, incidents, hours stopped, escalations, agreements.
#[utoipa::path(get, path = "/api/v1/stats/daily", tag = "dashboard", params(DailyQuery),
    responses((status = 200, body = DailyAnswer), (status = 400, body = Problem), (status = 401, body = Problem), (status = 503, body = Problem)), security(("bearer" = [])))]
pub async fn daily(
    State(app): State<App>,
    Auth(_actor): Auth,
    ApiQuery(q): ApiQuery<DailyQuery>,
) -> ApiResult<Json<DailyAnswer>> {
    await_consistency(&app, q.consistent_with.as_deref()).await?;
    let today = app.today();
    let to = match &q.to {
        Some(s) => day(s, "to")?,
        None => today.to_string(),
    };
    let from = match &q.from {
        Some(s) => day(s, "from")?,
        None => (today - time::Duration::days(27)).to_string(),
    };
    let days = daily::list(&app.db, &from, &to, q.district.as_deref()).await?;
    Ok(Json(DailyAnswer { from, to, days }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SummaryAnswer {
    pub as_of: String,
    pub counts: Counts,
    pub by_district: Vec<DistrictCounts>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DistrictCounts {
    pub district: String,
    pub name_zh: String,
    pub counts: Counts,
}

/// Counts of cases by status and kind, overdue included, overall and per district.
#[utoipa::path(get, path = "/api/v1/stats/summary", tag = "dashboard", params(HeatQuery),
    responses((status = 200, body = SummaryAnswer), (status = 401, body = Problem), (status = 503, body = Problem)), security(("bearer" = [])))]
pub async fn summary(
    State(app): State<App>,
    Auth(_actor): Auth,
    ApiQuery(q): ApiQuery<HeatQuery>,
) -> ApiResult<Json<SummaryAnswer>> {
    await_consistency(&app, q.consistent_with.as_deref()).await?;
    let now = app.now();
    let counts = case_status::counts(&app.db, &now, None).await?;
    let mut by_district = Vec::new();
    for d in &app.reference.districts {
        by_district.push(DistrictCounts {
            district: d.id.to_string(),
            name_zh: d.name_zh.clone(),
            counts: case_status::counts(&app.db, &now, Some(d.id.as_str())).await?,
        });
    }
    Ok(Json(SummaryAnswer {
        as_of: now.to_canonical(),
        counts,
        by_district,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PeriodQuery {
    /// First day, YYYY-MM-DD (local time).
    pub from: String,
    /// Last day, YYYY-MM-DD, included.
    pub to: String,
    /// district (default), community, category, channel or kind.
    pub by: Option<tiaojie_app::stats::By>,
}

/// Statistics for a period beside the period before it, grouped: received, accepted, closed
/// by outcome, failed by route, withdrawn, escalated, the success and on-time rates,
/// handling days, incidents and hours stopped, and the cases overdue now. Members and
/// leaders see their group's communities; dashboards get counts only.
#[utoipa::path(get, path = "/api/v1/stats/period", tag = "dashboard", params(PeriodQuery),
    responses((status = 200, body = tiaojie_app::stats::PeriodStats), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 503, body = Problem)), security(("bearer" = [])))]
pub async fn period(
    State(app): State<App>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<PeriodQuery>,
) -> ApiResult<Json<tiaojie_app::stats::PeriodStats>> {
    let p = tiaojie_app::stats::period(&q.from, &q.to)?;
    Ok(Json(
        tiaojie_app::stats::period_stats(&app, &actor, p, q.by.unwrap_or_default()).await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FigureQuery {
    /// First day, YYYY-MM-DD (local time).
    pub from: String,
    /// Last day, YYYY-MM-DD, included.
    pub to: String,
    /// How the figures were grouped: district (default), community, category, channel or kind.
    pub by: Option<tiaojie_app::stats::By>,
    /// The group's key (a district or community code, …); all groups when absent.
    pub key: Option<String>,
    /// received, accepted, closed, resolved_by_agreement, withdrawn, failed, escalated or incidents.
    pub figure: tiaojie_app::stats::Figure,
}

/// The cases behind one figure of `GET /api/v1/stats/period`: the same rule picks them, so
/// that the list's length is the figure. Members and leaders see their group's cases;
/// dashboards see counts only (403).
#[utoipa::path(get, path = "/api/v1/stats/cases", tag = "dashboard", params(FigureQuery),
    responses((status = 200, body = Vec<tiaojie_app::stats::FigureCase>), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 503, body = Problem)), security(("bearer" = [])))]
pub async fn figure_cases(
    State(app): State<App>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<FigureQuery>,
) -> ApiResult<Json<Vec<tiaojie_app::stats::FigureCase>>> {
    let p = tiaojie_app::stats::period(&q.from, &q.to)?;
    Ok(Json(
        tiaojie_app::stats::figure_cases(
            &app,
            &actor,
            p,
            q.by.unwrap_or_default(),
            q.key.as_deref().filter(|k| !k.is_empty()),
            q.figure,
        )
        .await?,
    ))
}

/// The statistics of a period as an Excel workbook: the figures beside the period before,
/// the cases overdue now, and what each figure counts.
#[utoipa::path(get, path = "/api/v1/exports/stats.xlsx", tag = "exports", params(PeriodQuery),
    responses((status = 200, description = "The statistics", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 503, body = Problem)), security(("bearer" = [])))]
pub async fn stats_xlsx(
    State(app): State<App>,
    Auth(actor): Auth,
    ApiQuery(q): ApiQuery<PeriodQuery>,
) -> ApiResult<axum::response::Response> {
    let p = tiaojie_app::stats::period(&q.from, &q.to)?;
    let s = tiaojie_app::stats::period_stats(&app, &actor, p, q.by.unwrap_or_default()).await?;
    let bytes = tiaojie_app::exports::stats_xlsx(&s)?;
    Ok(super::cases::xlsx(
        bytes,
        &format!("tiaojie-stats-{}-{}.xlsx", s.from, s.to),
    ))
}
