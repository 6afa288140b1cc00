//! Case numbers as people read them: `{group}调〔{year}〕{n}号` by default, e.g.
//! 西关北街调〔2026〕12号. The sequencer assigns (group, year, n) when it logs a case's
//! opening (migration 0007); the text is made here, from the group's short name and the configured
//! format (`case_number_format`), and read back the same way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hashlink::LruCache;

use tiaojie_projections::models::case_status::{self, CaseView};

use crate::app::App;
use crate::app_error::AppResult;

pub const DEFAULT_FORMAT: &str = "{group}调〔{year}〕{n}号";

/// A group's short name: its name without the words every group's name ends with
/// (西关北街片区矛盾调解小组 → 西关北街).
pub fn short_name(group_name: &str) -> &str {
    for suffix in [
        "片区矛盾纠纷调解小组",
        "片区矛盾调解小组",
        "矛盾纠纷调解小组",
        "矛盾调解小组",
        "调解小组",
        "小组",
    ] {
        if let Some(s) = group_name.strip_suffix(suffix) {
            if !s.is_empty() {
                return s;
            }
        }
    }
    group_name
}

pub fn format(fmt: &str, group_name: &str, year: i64, n: i64) -> String {
    fmt.replace("{group}", short_name(group_name))
        .replace("{year}", &year.to_string())
        .replace("{n}", &n.to_string())
}

fn group_names(
    groups: &[(
        tiaojie_events::GroupId,
        tiaojie_events::group::MediationGroup,
    )],
) -> HashMap<String, String> {
    groups
        .iter()
        .map(|(id, g)| (id.to_string(), g.name.clone()))
        .collect()
}

/// Fills in each case's number.
pub async fn fill(app: &App, items: &mut [CaseView]) -> AppResult<()> {
    let ids: Vec<&str> = items.iter().map(|v| v.row.case_id.as_str()).collect();
    let mut numbers = texts(app, &ids).await?;
    for v in items {
        v.case_number = numbers.remove(&v.row.case_id);
    }
    Ok(())
}

/// The numbers of some cases, as text, by case id.
pub async fn texts(app: &App, ids: &[&str]) -> AppResult<HashMap<String, String>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(Numberer::new(app).await?.of_ids(&app.db, ids).await?)
}

/// The (group, year, n) of cases whose numbers have been read, most recently used kept.
/// The sequencer gives a case its number once, when it logs the opening, and never
/// changes it; a case not numbered yet is not remembered, so it is looked up again.
#[derive(Clone)]
pub struct NumberCache(Arc<Mutex<LruCache<String, case_status::Number>>>);

/// How many case numbers are kept in memory.
const NUMBER_CACHE: usize = 20_000;

impl Default for NumberCache {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(LruCache::new(NUMBER_CACHE))))
    }
}

impl NumberCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, case_status::Number>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The numbers of some cases: those in memory, and the rest from the store.
    async fn numbers(
        &self,
        db: &tiaojie_projections::Db,
        ids: &[&str],
    ) -> Result<HashMap<String, case_status::Number>, tiaojie_projections::StoreError> {
        let mut out = HashMap::new();
        let mut missing = Vec::new();
        {
            let mut cache = self.lock();
            for id in ids {
                match cache.get(*id) {
                    Some(n) => {
                        out.insert(id.to_string(), n.clone());
                    }
                    None => missing.push(*id),
                }
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let found = case_status::numbers(db, &missing).await?;
        let mut cache = self.lock();
        for (id, n) in found {
            cache.insert(id.clone(), n.clone());
            out.insert(id, n);
        }
        Ok(out)
    }
}

/// What formatting numbers needs, taken once (for a long export).
#[derive(Clone)]
pub struct Numberer {
    format: String,
    names: HashMap<String, String>,
    cache: NumberCache,
}

impl Numberer {
    pub async fn new(app: &App) -> AppResult<Self> {
        Ok(Self {
            format: app.settings.case_number_format.clone(),
            names: group_names(&app.directory.groups().await?),
            cache: app.case_numbers.clone(),
        })
    }

    /// The numbers of the cases some audit entries are about, by case id.
    pub async fn of_entries(
        &self,
        db: &tiaojie_projections::Db,
        entries: &[tiaojie_projections::models::audit::AuditEntry],
    ) -> Result<HashMap<String, String>, tiaojie_projections::StoreError> {
        let ids: Vec<&str> = entries
            .iter()
            .filter_map(|e| e.case_id.as_deref())
            .collect();
        self.of_ids(db, &ids).await
    }

    /// The numbers of some cases, as text, by case id.
    pub async fn of_ids(
        &self,
        db: &tiaojie_projections::Db,
        ids: &[&str],
    ) -> Result<HashMap<String, String>, tiaojie_projections::StoreError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(self
            .cache
            .numbers(db, ids)
            .await?
            .into_iter()
            .map(|(id, (g, year, n))| {
                let name = self.names.get(&g).map(String::as_str).unwrap_or("");
                (id, format(&self.format, name, year, n))
            })
            .collect())
    }
}

/// One case's number.
pub async fn of(app: &App, case_id: &str) -> AppResult<Option<String>> {
    Ok(texts(app, &[case_id]).await?.remove(case_id))
}

/// A case filter as typed: a case number becomes the case's id; anything else is kept.
pub async fn case_ref(app: &App, typed: Option<String>) -> AppResult<Option<String>> {
    match typed {
        Some(t) if uuid::Uuid::parse_str(t.trim()).is_err() => {
            Ok(Some(find(app, &t).await?.unwrap_or(t)))
        }
        other => Ok(other),
    }
}

/// The case a number names, read the way numbers are written: the year and the
/// sequence are the text's digit runs, and the group is the one whose name makes the same
/// text. Spaces and the half-width brackets people type are tolerated.
pub async fn find(app: &App, text: &str) -> AppResult<Option<String>> {
    let text: String = text
        .trim()
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '[' | '(' | '【' | '（' => '〔',
            ']' | ')' | '】' | '）' => '〕',
            c => c,
        })
        .collect();
    if text.is_empty() || text.chars().count() > 60 {
        return Ok(None);
    }
    let runs: Vec<i64> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty() && s.len() <= 6)
        .filter_map(|s| s.parse().ok())
        .collect();
    let (Some(year), Some(n)) = (
        runs.iter().find(|y| (1990..=2200).contains(*y)),
        runs.last(),
    ) else {
        return Ok(None);
    };
    for (id, g) in app.directory.groups().await? {
        if format(&app.settings.case_number_format, &g.name, *year, *n) == text {
            return Ok(case_status::by_number(&app.db, &id.to_string(), *year, *n).await?);
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_the_office_writes_them() {
        assert_eq!(short_name("西关北街片区矛盾调解小组"), "西关北街");
        assert_eq!(short_name("梅园调解小组"), "梅园");
        assert_eq!(short_name("小组"), "小组");
        assert_eq!(
            format(DEFAULT_FORMAT, "西关北街片区矛盾调解小组", 2026, 12),
            "西关北街调〔2026〕12号"
        );
        assert_eq!(format("{year}-{n}", "x", 2026, 3), "2026-3");
    }
}
