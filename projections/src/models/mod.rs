//! The read models: case status, community conflict heat, the audit trail and daily
//! statistics. Each is a [`Projector`](crate::runtime::Projector) plus the query functions
//! the HTTP layer calls.

pub mod audit;
pub mod case_parties;
pub mod case_status;
pub mod daily;
pub mod heat;
pub mod orders;
pub mod stats;

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::Row;
use tiaojie_events::case::{CaseEvent, CaseKind, CASE_AGGREGATE_TYPE};
use tiaojie_events::{CommunityId, DistrictId, Reference};

use crate::db::{placeholders, Backend, Tx};
use crate::error::StoreError;
use crate::on_tx;
use crate::runtime::{Body, LoggedEvent, Projector};

/// Settings that shape the read models. Changing a clock or the half-life takes effect for
/// new events at once and for old ones after `tiaojie projections rebuild`.
#[derive(Debug, Clone)]
pub struct ReadModelConfig {
    pub reference: Arc<Reference>,
    /// A reported case should be accepted within this many days.
    pub acceptance_days: i64,
    /// Mediation should finish within this many days of acceptance, unless extended.
    pub mediation_days: i64,
    /// Half-life of the heat score, in days.
    pub heat_half_life_days: f64,
    /// The offset of local time from UTC, in hours (Beijing: 8), for daily statistics.
    pub utc_offset_hours: i8,
    /// A party with this many obstruction incidents or more (in all communities) is a
    /// repeat obstructor. Applied when read, so changing it needs no rebuild.
    pub repeat_obstructor_incidents: i64,
    /// Judicial confirmation is applied for within this many days of the agreement.
    pub confirmation_window_days: i64,
    /// How long each receiving level has to reply to an escalation or a next route.
    pub reply_days: ReplyDays,
}

/// The days each receiving level has to reply to an escalation or to a failed mediation's
/// next route. Defaults, and what they rest on, are listed in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplyDays {
    /// 改造工作领导小组.
    pub leadership_group: i64,
    /// 司法所.
    pub judicial_office: i64,
    /// 公安机关.
    pub police: i64,
    /// 信访部门: the Regulations on Letters and Visits (Art. 31) give 15 days to decide
    /// whether a matter is taken on.
    pub petition: i64,
    /// 人民法院: the Civil Procedure Law (Art. 126) gives 7 days to decide on filing a case.
    pub court: i64,
}

impl Default for ReplyDays {
    fn default() -> Self {
        Self {
            leadership_group: 7,
            judicial_office: 15,
            police: 3,
            petition: 15,
            court: 7,
        }
    }
}

impl ReplyDays {
    pub fn of(&self, route: tiaojie_events::case::Route) -> i64 {
        use tiaojie_events::case::Route;
        match route {
            Route::LeadershipGroup => self.leadership_group,
            Route::JudicialOffice => self.judicial_office,
            Route::Police => self.police,
            Route::Petition => self.petition,
            Route::Court => self.court,
        }
    }
}

impl ReadModelConfig {
    pub fn new(reference: Arc<Reference>) -> Self {
        Self {
            reference,
            acceptance_days: 2,
            mediation_days: 30,
            heat_half_life_days: 14.0,
            utc_offset_hours: 8,
            repeat_obstructor_incidents: 2,
            confirmation_window_days: 30,
            reply_days: ReplyDays::default(),
        }
    }

    pub fn district_of(&self, community: &CommunityId) -> Option<DistrictId> {
        self.reference
            .community(community)
            .map(|c| c.district.clone())
    }
}

/// The condition keeping the rows of the visible communities (`None`: all), its
/// placeholders numbered from `$first`: `Some("")` for all, `Some(" AND col IN (…)")` for
/// some, and `None` when none is visible (the answer is empty without asking).
pub(crate) fn within_communities(
    column: &str,
    first: usize,
    visible: Option<&[String]>,
) -> Option<String> {
    match visible {
        Some([]) => None,
        Some(v) => Some(format!(
            " AND {column} IN ({})",
            crate::db::placeholders(first, v.len())
        )),
        None => Some(String::new()),
    }
}

/// The read models of this release.
pub fn all(config: &ReadModelConfig) -> Vec<Arc<dyn Projector>> {
    // Three read models place each event by its case: they share what they found.
    let infos = Arc::new(CaseInfos::default());
    vec![
        Arc::new(case_status::CaseStatusProjector::new(config.clone())),
        Arc::new(heat::HeatProjector::new(config.clone(), infos.clone())),
        Arc::new(audit::AuditProjector::new(config.clone(), infos.clone())),
        Arc::new(daily::DailyProjector::new(config.clone(), infos)),
        Arc::new(case_parties::CasePartiesProjector),
        Arc::new(orders::OrdersProjector),
    ]
}

/// What every read model needs to know about a case: where it is and what kind it is.
#[derive(Debug, Clone)]
pub struct CaseInfo {
    pub community: CommunityId,
    pub kind: CaseKind,
}

/// The places of the cases recently projected, shared by the read models that need them.
/// A case's opening never changes, so what is kept never goes stale; without it, each of
/// those read models read and decoded the opening of every case in each batch again.
#[derive(Debug)]
pub struct CaseInfos {
    kept: std::sync::Mutex<hashlink::LruCache<String, CaseInfo>>,
}

impl Default for CaseInfos {
    fn default() -> Self {
        Self {
            kept: std::sync::Mutex::new(hashlink::LruCache::new(20_000)),
        }
    }
}

impl CaseInfos {
    fn kept(&self) -> std::sync::MutexGuard<'_, hashlink::LruCache<String, CaseInfo>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Finds the community and kind of each case the batch touches: from the batch's own
/// `CaseOpened` events, else from those kept, else from the stored first event of the case
/// (immutable, so every read model can rely on it whatever its own progress).
pub async fn case_infos(
    tx: &mut Tx,
    events: &[LoggedEvent],
    known: &CaseInfos,
) -> Result<HashMap<String, CaseInfo>, StoreError> {
    let mut out = HashMap::new();
    let mut missing: Vec<String> = Vec::new();
    for e in events {
        if let Body::Case(CaseEvent::CaseOpened {
            community, kind, ..
        }) = &e.body
        {
            out.insert(
                e.aggregate_id.clone(),
                CaseInfo {
                    community: community.clone(),
                    kind: *kind,
                },
            );
        }
    }
    {
        let mut kept = known.kept();
        for e in events {
            if (matches!(e.body, Body::Case(_))
                || matches!(e.body, Body::Unreadable(_)) && e.aggregate_type == CASE_AGGREGATE_TYPE)
                && !out.contains_key(&e.aggregate_id)
                && !missing.contains(&e.aggregate_id)
            {
                match kept.get(&e.aggregate_id) {
                    Some(info) => {
                        out.insert(e.aggregate_id.clone(), info.clone());
                    }
                    None => missing.push(e.aggregate_id.clone()),
                }
            }
        }
    }
    let payload = match tx.backend() {
        Backend::Sqlite => "payload",
        Backend::Postgres => "payload::text",
    };
    for chunk in missing.chunks(500) {
        let sql = format!(
            "SELECT aggregate_id, {payload} FROM events WHERE aggregate_type = $1 AND sequence = 1 AND aggregate_id IN ({})",
            placeholders(2, chunk.len())
        );
        let rows: Vec<(String, String)> = on_tx!(tx, c => {
            let mut q = sqlx::query(&sql).persistent(false).bind(CASE_AGGREGATE_TYPE);
            for id in chunk {
                q = q.bind(id.clone());
            }
            q.fetch_all(&mut *c)
                .await?
                .into_iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        // A case without a readable opening (a damaged history, or one this release
        // cannot read) has no known place: the read models that need it stop at the event
        // that needs it; the others go on.
        for (id, payload) in rows {
            if let Ok(CaseEvent::CaseOpened {
                community, kind, ..
            }) = serde_json::from_str::<CaseEvent>(&payload)
            {
                out.insert(id, CaseInfo { community, kind });
            }
        }
    }
    let mut kept = known.kept();
    for (id, info) in &out {
        if !kept.contains_key(id) {
            kept.insert(id.clone(), info.clone());
        }
    }
    Ok(out)
}

/// A page of results and the cursor for the next one.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, serde::Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

pub(crate) fn encode_cursor(parts: &[&str]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(parts.join("\u{1f}"))
}

pub(crate) fn decode_cursor(c: &str, n: usize) -> Option<Vec<String>> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c.trim())
        .ok()?;
    let s = String::from_utf8(bytes).ok()?;
    let parts: Vec<String> = s.split('\u{1f}').map(str::to_string).collect();
    (parts.len() == n).then_some(parts)
}

/// A business time in local days (Beijing time by default).
pub(crate) fn local_day(ts: &tiaojie_events::Timestamp, offset_hours: i8) -> String {
    let off = time::UtcOffset::from_hms(offset_hours, 0, 0).unwrap_or(time::UtcOffset::UTC);
    ts.date_in(off).to_string()
}
