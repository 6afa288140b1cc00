//! Reference data of a renovation programme: districts, communities, renovation and dispute
//! categories, and the known defects of the source. The Guyuan 2022 plan ships embedded;
//! another city loads its own file. Everything is validated on load, and totals that do not
//! add up must be declared as data-quality notes: defects are recorded, never hidden.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::ids::{CategoryCode, CommunityId, DistrictId};

/// The embedded reference file of the Guyuan 2022 programme.
pub const GUYUAN_2022_TOML: &str = include_str!("../reference/guyuan-2022.toml");

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Programme {
    pub id: String,
    pub name_zh: String,
    pub name_en: String,
    pub city_zh: String,
    pub city_en: String,
    #[serde(default)]
    pub lead_agency_zh: Option<String>,
    #[serde(default)]
    pub lead_agency_en: Option<String>,
    #[serde(default)]
    pub source_zh: Option<String>,
    #[serde(default)]
    pub stated_communities: Option<u32>,
    #[serde(default)]
    pub stated_households: Option<u32>,
    #[serde(default)]
    pub stated_buildings: Option<u32>,
    #[serde(default)]
    pub stated_floor_area_m2: Option<u64>,
    #[serde(default)]
    pub street_offices_zh: Vec<String>,
    /// The first day of the programme (YYYY-MM-DD): no business time may lie before it.
    #[serde(default)]
    pub starts_on: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenovationCategory {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    #[serde(default)]
    pub description_zh: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct District {
    pub id: DistrictId,
    pub name_zh: String,
    pub name_en: String,
    #[serde(default)]
    pub households: Option<u32>,
    #[serde(default)]
    pub buildings: Option<u32>,
    #[serde(default)]
    pub floor_area_m2: Option<u64>,
    #[serde(default)]
    pub alleys: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Community {
    pub id: CommunityId,
    pub name_zh: String,
    pub name_en: String,
    pub district: DistrictId,
    pub categories: Vec<String>,
    #[serde(default)]
    pub aliases_zh: Vec<String>,
    /// Unknown for Guyuan (the plan gives households per district only).
    #[serde(default)]
    pub households: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataQualityKind {
    /// The stated building total differs from the sum over districts.
    BuildingsTotal,
    /// The stated household total differs from the sum over districts.
    HouseholdsTotal,
    /// The stated floor-area total differs from the sum over districts.
    FloorAreaTotal,
    /// The stated number of communities differs from the number listed.
    CommunitiesTotal,
    /// A community is spelled in more than one way.
    Alias,
    /// Household counts are missing for communities.
    HouseholdsUnknown,
    Note,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataQualityNote {
    pub code: String,
    pub kind: DataQualityKind,
    #[serde(default)]
    pub community: Option<CommunityId>,
    pub note_zh: String,
    pub note_en: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CategoryGroup {
    /// A renovation work item; also what an obstruction can stop.
    WorkItem,
    /// A usual cause of conflict.
    Cause,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisputeCategory {
    pub code: CategoryCode,
    pub group: CategoryGroup,
    pub name_zh: String,
    pub name_en: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReferenceFile {
    format: u32,
    programme: Programme,
    renovation_categories: Vec<RenovationCategory>,
    districts: Vec<District>,
    communities: Vec<Community>,
    #[serde(default)]
    data_quality: Vec<DataQualityNote>,
    dispute_categories: Vec<DisputeCategory>,
}

/// Validated reference data with lookups.
#[derive(Debug, Clone)]
pub struct Reference {
    pub programme: Programme,
    pub renovation_categories: Vec<RenovationCategory>,
    pub districts: Vec<District>,
    pub communities: Vec<Community>,
    pub data_quality: Vec<DataQualityNote>,
    pub dispute_categories: Vec<DisputeCategory>,
    community_index: BTreeMap<CommunityId, usize>,
    district_index: BTreeMap<DistrictId, usize>,
    category_index: BTreeMap<CategoryCode, usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("the reference file is not valid TOML or has a wrong field: {0}")]
    Syntax(String),
    #[error("unsupported reference file format {0} (this release reads format 1)")]
    Format(u32),
    #[error("the reference data is inconsistent:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

fn parse_date(s: &str) -> Option<crate::Timestamp> {
    let d = time::Date::parse(
        s.trim(),
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()?;
    (d.year() >= 1).then(|| crate::Timestamp::start_of_day_utc(d))
}

impl Reference {
    /// The first instant of the programme, when the reference data gives one.
    pub fn starts_at(&self) -> Option<crate::Timestamp> {
        self.programme.starts_on.as_deref().and_then(parse_date)
    }

    /// The embedded Guyuan 2022 programme.
    pub fn guyuan_2022() -> Self {
        Self::from_toml(GUYUAN_2022_TOML).expect("the embedded reference data is valid")
    }

    pub fn from_toml(text: &str) -> Result<Self, ReferenceError> {
        let file: ReferenceFile =
            toml::from_str(text).map_err(|e| ReferenceError::Syntax(e.to_string()))?;
        if file.format != 1 {
            return Err(ReferenceError::Format(file.format));
        }
        Self::validate(file)
    }

    fn validate(file: ReferenceFile) -> Result<Self, ReferenceError> {
        let mut problems = Vec::new();
        let declared: BTreeSet<DataQualityKind> =
            file.data_quality.iter().map(|n| n.kind).collect();

        let renovation: BTreeSet<&str> = file
            .renovation_categories
            .iter()
            .map(|c| c.code.as_str())
            .collect();
        if renovation.len() != file.renovation_categories.len() {
            problems.push("renovation category codes are not unique".to_string());
        }

        let mut district_index = BTreeMap::new();
        for (i, d) in file.districts.iter().enumerate() {
            if district_index.insert(d.id.clone(), i).is_some() {
                problems.push(format!("district {} is listed twice", d.id));
            }
            if d.name_zh.trim().is_empty() {
                problems.push(format!("district {} has no Chinese name", d.id));
            }
        }
        if file.districts.is_empty() {
            problems.push("no districts".to_string());
        }

        let mut community_index = BTreeMap::new();
        let mut names = BTreeSet::new();
        for (i, c) in file.communities.iter().enumerate() {
            if community_index.insert(c.id.clone(), i).is_some() {
                problems.push(format!("community {} is listed twice", c.id));
            }
            if !district_index.contains_key(&c.district) {
                problems.push(format!(
                    "community {} ({}) names unknown district {}",
                    c.id, c.name_zh, c.district
                ));
            }
            if c.name_zh.trim().is_empty() {
                problems.push(format!("community {} has no Chinese name", c.id));
            }
            for name in std::iter::once(&c.name_zh).chain(c.aliases_zh.iter()) {
                if !names.insert(name.clone()) {
                    problems.push(format!("the name {name} is used by two communities"));
                }
            }
            if c.categories.is_empty() {
                problems.push(format!("community {} has no renovation category", c.id));
            }
            for cat in &c.categories {
                if !renovation.contains(cat.as_str()) {
                    problems.push(format!(
                        "community {} names unknown renovation category {cat}",
                        c.id
                    ));
                }
            }
            if !c.aliases_zh.is_empty()
                && !file.data_quality.iter().any(|n| {
                    n.kind == DataQualityKind::Alias && n.community.as_ref() == Some(&c.id)
                })
            {
                problems.push(format!(
                    "community {} has aliases but no data-quality note of kind alias explains them",
                    c.id
                ));
            }
        }
        if file.communities.is_empty() {
            problems.push("no communities".to_string());
        }
        for d in &file.districts {
            if !file.communities.iter().any(|c| c.district == d.id) {
                problems.push(format!("district {} has no community", d.id));
            }
        }

        let p = &file.programme;
        if let Some(d) = &p.starts_on {
            if parse_date(d).is_none() {
                problems.push(format!(
                    "programme.starts_on {d:?} is not a date (YYYY-MM-DD)"
                ));
            }
        }
        let sum = |f: fn(&District) -> Option<u64>| -> Option<u64> {
            file.districts.iter().map(f).sum::<Option<u64>>()
        };
        let totals: [(&str, Option<u64>, Option<u64>, DataQualityKind); 3] = [
            (
                "households",
                p.stated_households.map(u64::from),
                sum(|d| d.households.map(u64::from)),
                DataQualityKind::HouseholdsTotal,
            ),
            (
                "buildings",
                p.stated_buildings.map(u64::from),
                sum(|d| d.buildings.map(u64::from)),
                DataQualityKind::BuildingsTotal,
            ),
            (
                "floor area",
                p.stated_floor_area_m2,
                sum(|d| d.floor_area_m2),
                DataQualityKind::FloorAreaTotal,
            ),
        ];
        for (what, stated, summed, kind) in totals {
            if let (Some(stated), Some(summed)) = (stated, summed) {
                if stated != summed && !declared.contains(&kind) {
                    problems.push(format!(
                        "the programme states {stated} {what} but the districts add up to {summed}; \
                         declare the discrepancy as a data_quality note of kind {kind:?} or correct it"
                    ));
                }
            }
        }
        if let Some(n) = p.stated_communities {
            if n as usize != file.communities.len()
                && !declared.contains(&DataQualityKind::CommunitiesTotal)
            {
                problems.push(format!(
                    "the programme states {n} communities but {} are listed",
                    file.communities.len()
                ));
            }
        }
        if file.communities.iter().any(|c| c.households.is_none())
            && !declared.contains(&DataQualityKind::HouseholdsUnknown)
        {
            problems.push(
                "some communities have no household count; declare a data_quality note of kind households_unknown"
                    .to_string(),
            );
        }
        for n in &file.data_quality {
            if let Some(c) = &n.community {
                if !community_index.contains_key(c) {
                    problems.push(format!(
                        "data-quality note {} names unknown community {c}",
                        n.code
                    ));
                }
            }
        }

        let mut category_index = BTreeMap::new();
        for (i, c) in file.dispute_categories.iter().enumerate() {
            if category_index.insert(c.code.clone(), i).is_some() {
                problems.push(format!("dispute category {} is listed twice", c.code));
            }
            if c.name_zh.trim().is_empty() || c.name_en.trim().is_empty() {
                problems.push(format!(
                    "dispute category {} needs Chinese and English names",
                    c.code
                ));
            }
        }
        if !file
            .dispute_categories
            .iter()
            .any(|c| c.group == CategoryGroup::WorkItem)
        {
            problems.push(
                "no dispute category of group work_item (obstructions need them)".to_string(),
            );
        }

        if !problems.is_empty() {
            return Err(ReferenceError::Invalid(problems));
        }
        Ok(Self {
            programme: file.programme,
            renovation_categories: file.renovation_categories,
            districts: file.districts,
            communities: file.communities,
            data_quality: file.data_quality,
            dispute_categories: file.dispute_categories,
            community_index,
            district_index,
            category_index,
        })
    }

    pub fn community(&self, id: &CommunityId) -> Option<&Community> {
        self.community_index.get(id).map(|&i| &self.communities[i])
    }

    pub fn district(&self, id: &DistrictId) -> Option<&District> {
        self.district_index.get(id).map(|&i| &self.districts[i])
    }

    pub fn category(&self, code: &CategoryCode) -> Option<&DisputeCategory> {
        self.category_index
            .get(code)
            .map(|&i| &self.dispute_categories[i])
    }

    /// Finds a community by its Chinese name or one of its aliases (信和小区 → 信合小区).
    pub fn community_by_name(&self, name: &str) -> Option<&Community> {
        let name = name.trim();
        self.communities
            .iter()
            .find(|c| c.name_zh == name || c.aliases_zh.iter().any(|a| a == name))
    }

    pub fn communities_of(&self, district: &DistrictId) -> impl Iterator<Item = &Community> {
        let district = district.clone();
        self.communities
            .iter()
            .filter(move |c| c.district == district)
    }

    /// Notes that concern one community.
    pub fn notes_for(&self, community: &CommunityId) -> Vec<&DataQualityNote> {
        self.data_quality
            .iter()
            .filter(|n| {
                n.community.as_ref() == Some(community)
                    || (n.kind == DataQualityKind::HouseholdsUnknown
                        && self
                            .community(community)
                            .is_some_and(|c| c.households.is_none()))
            })
            .collect()
    }

    /// Buildings summed over districts (81 for Guyuan, against 84 stated).
    pub fn buildings_summed(&self) -> Option<u32> {
        self.districts.iter().map(|d| d.buildings).sum()
    }

    pub fn households_summed(&self) -> Option<u32> {
        self.districts.iter().map(|d| d.households).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guyuan_loads_with_its_defects_declared() {
        let r = Reference::guyuan_2022();
        assert_eq!(r.districts.len(), 3);
        assert_eq!(r.communities.len(), 26);
        assert_eq!(r.households_summed(), Some(3081));
        assert_eq!(r.programme.stated_buildings, Some(84));
        assert_eq!(r.buildings_summed(), Some(81));
        assert!(r
            .data_quality
            .iter()
            .any(|n| n.kind == DataQualityKind::BuildingsTotal));
        let improvement = r
            .communities
            .iter()
            .filter(|c| c.categories.iter().any(|k| k == "improvement"))
            .count();
        assert_eq!(improvement, 12);
        let enhancement: Vec<_> = r
            .communities
            .iter()
            .filter(|c| c.categories.iter().any(|k| k == "enhancement"))
            .map(|c| c.name_zh.as_str())
            .collect();
        assert_eq!(enhancement, ["靖丰苑", "梅园小区"]);
        assert!(r
            .communities
            .iter()
            .all(|c| c.categories.iter().any(|k| k == "basic")));
    }

    #[test]
    fn alias_finds_the_same_community() {
        let r = Reference::guyuan_2022();
        let a = r.community_by_name("信和小区").unwrap();
        let b = r.community_by_name("信合小区").unwrap();
        assert_eq!(a.id, b.id);
        assert!(!r.notes_for(&a.id).is_empty());
    }

    #[test]
    fn undeclared_discrepancy_is_an_error() {
        let text = GUYUAN_2022_TOML.replace("kind = \"buildings_total\"", "kind = \"note\"");
        let err = Reference::from_toml(&text).unwrap_err();
        assert!(err.to_string().contains("84 buildings"), "{err}");
    }

    #[test]
    fn unknown_district_and_bad_syntax_are_clear() {
        let text =
            GUYUAN_2022_TOML.replacen("district = \"nanchenglu\"", "district = \"nowhere\"", 1);
        let err = Reference::from_toml(&text).unwrap_err();
        assert!(
            err.to_string().contains("unknown district nowhere"),
            "{err}"
        );
        let err = Reference::from_toml("format = 1\n[programme]\nid = 3").unwrap_err();
        assert!(matches!(err, ReferenceError::Syntax(_)));
        let err = Reference::from_toml(&GUYUAN_2022_TOML.replace("format = 1", "format = 2"))
            .unwrap_err();
        assert_eq!(err, ReferenceError::Format(2));
    }
}
