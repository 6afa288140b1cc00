//! `/api/v1/districts`, `/api/v1/communities`, `/api/v1/categories`: the programme's
//! reference data, with its known defects shown, not hidden.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::extract::Auth;
use crate::app::App;
use crate::error::{ApiResult, Problem};

#[derive(Debug, Serialize, ToSchema)]
pub struct DataQualityView {
    pub code: String,
    pub kind: String,
    pub community: Option<String>,
    pub note_zh: String,
    pub note_en: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DistrictView {
    pub id: String,
    pub name_zh: String,
    pub name_en: String,
    pub households: Option<u32>,
    pub buildings: Option<u32>,
    pub floor_area_m2: Option<u64>,
    pub alleys: Option<u32>,
    pub communities: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DistrictsAnswer {
    pub programme_zh: String,
    pub programme_en: String,
    pub stated_households: Option<u32>,
    pub stated_buildings: Option<u32>,
    /// The sum over districts, shown beside what the plan states.
    pub buildings_summed: Option<u32>,
    pub households_summed: Option<u32>,
    pub stated_floor_area_m2: Option<u64>,
    pub street_offices_zh: Vec<String>,
    pub districts: Vec<DistrictView>,
    pub data_quality: Vec<DataQualityView>,
}

fn dq(n: &tiaojie_events::reference::DataQualityNote) -> DataQualityView {
    DataQualityView {
        code: n.code.clone(),
        kind: serde_json::to_value(n.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        community: n.community.as_ref().map(|c| c.to_string()),
        note_zh: n.note_zh.clone(),
        note_en: n.note_en.clone(),
    }
}

/// The districts (片区) with their totals, and the data-quality notes of the source.
#[utoipa::path(get, path = "/api/v1/districts", tag = "reference",
    responses((status = 200, body = DistrictsAnswer), (status = 401, body = Problem)), security(("bearer" = [])))]
pub async fn districts(
    State(app): State<App>,
    Auth(_actor): Auth,
) -> ApiResult<Json<DistrictsAnswer>> {
    let r = &app.reference;
    Ok(Json(DistrictsAnswer {
        programme_zh: r.programme.name_zh.clone(),
        programme_en: r.programme.name_en.clone(),
        stated_households: r.programme.stated_households,
        stated_buildings: r.programme.stated_buildings,
        buildings_summed: r.buildings_summed(),
        households_summed: r.households_summed(),
        stated_floor_area_m2: r.programme.stated_floor_area_m2,
        street_offices_zh: r.programme.street_offices_zh.clone(),
        districts: r
            .districts
            .iter()
            .map(|d| DistrictView {
                id: d.id.to_string(),
                name_zh: d.name_zh.clone(),
                name_en: d.name_en.clone(),
                households: d.households,
                buildings: d.buildings,
                floor_area_m2: d.floor_area_m2,
                alleys: d.alleys,
                communities: r.communities_of(&d.id).map(|c| c.id.to_string()).collect(),
            })
            .collect(),
        data_quality: r.data_quality.iter().map(dq).collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CommunityView {
    pub id: String,
    pub name_zh: String,
    pub name_en: String,
    pub aliases_zh: Vec<String>,
    pub district: String,
    pub district_name_zh: String,
    pub basic: bool,
    pub improvement: bool,
    pub enhancement: bool,
    pub categories: Vec<String>,
    /// Unknown when the source gives households per district only.
    pub households: Option<u32>,
    pub data_quality: Vec<DataQualityView>,
}

/// The communities (小区) with their renovation categories and data-quality notes.
#[utoipa::path(get, path = "/api/v1/communities", tag = "reference",
    responses((status = 200, body = [CommunityView]), (status = 401, body = Problem)), security(("bearer" = [])))]
pub async fn communities(
    State(app): State<App>,
    Auth(_actor): Auth,
) -> ApiResult<Json<Vec<CommunityView>>> {
    let r = &app.reference;
    Ok(Json(
        r.communities
            .iter()
            .map(|c| {
                let has = |k: &str| c.categories.iter().any(|x| x == k);
                CommunityView {
                    id: c.id.to_string(),
                    name_zh: c.name_zh.clone(),
                    name_en: c.name_en.clone(),
                    aliases_zh: c.aliases_zh.clone(),
                    district: c.district.to_string(),
                    district_name_zh: r
                        .district(&c.district)
                        .map(|d| d.name_zh.clone())
                        .unwrap_or_default(),
                    basic: has("basic"),
                    improvement: has("improvement"),
                    enhancement: has("enhancement"),
                    categories: c.categories.clone(),
                    households: c.households,
                    data_quality: r.notes_for(&c.id).into_iter().map(dq).collect(),
                }
            })
            .collect(),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryView {
    pub code: String,
    /// `work_item` or `cause`.
    pub group: String,
    pub name_zh: String,
    pub name_en: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoriesAnswer {
    pub dispute_categories: Vec<CategoryView>,
    pub renovation_categories: Vec<CategoryView>,
}

/// Dispute categories (work items and causes) and renovation categories.
#[utoipa::path(get, path = "/api/v1/categories", tag = "reference",
    responses((status = 200, body = CategoriesAnswer), (status = 401, body = Problem)), security(("bearer" = [])))]
pub async fn categories(
    State(app): State<App>,
    Auth(_actor): Auth,
) -> ApiResult<Json<CategoriesAnswer>> {
    let r = &app.reference;
    Ok(Json(CategoriesAnswer {
        dispute_categories: r
            .dispute_categories
            .iter()
            .map(|c| CategoryView {
                code: c.code.to_string(),
                group: serde_json::to_value(c.group)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                name_zh: c.name_zh.clone(),
                name_en: c.name_en.clone(),
            })
            .collect(),
        renovation_categories: r
            .renovation_categories
            .iter()
            .map(|c| CategoryView {
                code: c.code.clone(),
                group: "renovation".into(),
                name_zh: c.name_zh.clone(),
                name_en: c.name_en.clone(),
            })
            .collect(),
    }))
}
