//! `community_heat`: conflict heat per community (and, summed at read time, per district).
//!
//! Heat is a score with exponential time decay. Each event adds a weight at its business
//! time; the stored value is kept with the time it refers to and decayed to "now" when
//! read: `value(now) = value · 0.5^((now − at) / half_life)`. Adding a weight `w` at time
//! `t` to `(v, at)` gives `(v · 0.5^((t − at)/h) + w, t)` when `t ≥ at`, else
//! `(v + w · 0.5^((at − t)/h), at)`, so the order of arrival does not matter.
//!
//! Weights: a resident objection 1; a construction-obstruction case 2; an obstruction
//! incident 2, plus 0.5 per hour of work stopped (at most 8 hours counted); a police
//! intervention 2; an escalation 3; a failed mediation 1.5; a reopened case 1.
//!
//! Bands (documented in README): where the household count is known the score is
//! normalised per 100 households and banded green < 1.0 ≤ amber < 3.0 ≤ red; where it is
//! not (every Guyuan community: the plan gives households per district only), the raw
//! score is banded green < 5 ≤ amber < 12 ≤ red. A community without any report is shown
//! as "no reports", not as zero heat.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use sqlx::Row;
use tiaojie_events::case::{CaseEvent, CaseKind};
use tiaojie_events::Timestamp;

use super::{case_infos, CaseInfos, ReadModelConfig};
use crate::db::{upsert, Backend, Db, Tx, Val};
use crate::error::StoreError;
use crate::runtime::{Body, LoggedEvent, ProjectionError, Projector};
use crate::{on_db, on_tx};

pub const NAME: &str = "community_heat";
pub const OBSTRUCTORS: &str = "heat_obstructors";
/// Each obstructing party's incidents in all communities, kept as they happen so that
/// finding the repeat obstructors reads only them (an index range on the total) rather
/// than summing every community's row of every party.
pub const TOTALS: &str = "heat_obstructor_totals";

pub const W_OBJECTION: f64 = 1.0;
pub const W_OBSTRUCTION_CASE: f64 = 2.0;
pub const W_INCIDENT: f64 = 2.0;
pub const W_PER_HOUR_STOPPED: f64 = 0.5;
pub const MAX_HOURS_WEIGHED: f64 = 8.0;
pub const W_POLICE: f64 = 2.0;
pub const W_ESCALATION: f64 = 3.0;
pub const W_FAILED: f64 = 1.5;
pub const W_REOPENED: f64 = 1.0;

/// Raw-score bands (households unknown).
pub const RAW_AMBER: f64 = 5.0;
pub const RAW_RED: f64 = 12.0;
/// Per-100-households bands (households known).
pub const PER100_AMBER: f64 = 1.0;
pub const PER100_RED: f64 = 3.0;
/// The stored `repeat_obstructors` column counts parties obstructing this many times in
/// one community. It is kept for stores that read it; the answers count repeat obstructors
/// with the configured threshold, in all communities ([`repeat_obstructors`]).
pub const REPEAT_THRESHOLD: i64 = 3;

#[derive(Debug, Clone, PartialEq)]
struct HeatRow {
    community: String,
    district: String,
    cases_total: i64,
    open_cases: i64,
    objections: i64,
    obstructions: i64,
    incidents: i64,
    work_stopped_minutes: i64,
    escalations: i64,
    police_interventions: i64,
    repeat_obstructors: i64,
    heat_value: f64,
    heat_at: Option<String>,
    last_event_at: String,
}

const COLUMNS: &[&str] = &[
    "community",
    "district",
    "cases_total",
    "open_cases",
    "objections",
    "obstructions",
    "incidents",
    "work_stopped_minutes",
    "escalations",
    "police_interventions",
    "repeat_obstructors",
    "heat_value",
    "heat_at",
    "last_event_at",
];

impl HeatRow {
    fn new(community: String, district: String) -> Self {
        Self {
            community,
            district,
            cases_total: 0,
            open_cases: 0,
            objections: 0,
            obstructions: 0,
            incidents: 0,
            work_stopped_minutes: 0,
            escalations: 0,
            police_interventions: 0,
            repeat_obstructors: 0,
            heat_value: 0.0,
            heat_at: None,
            last_event_at: String::new(),
        }
    }

    fn values(&self) -> Vec<Val> {
        vec![
            self.community.clone().into(),
            self.district.clone().into(),
            self.cases_total.into(),
            self.open_cases.into(),
            self.objections.into(),
            self.obstructions.into(),
            self.incidents.into(),
            self.work_stopped_minutes.into(),
            self.escalations.into(),
            self.police_interventions.into(),
            self.repeat_obstructors.into(),
            self.heat_value.into(),
            self.heat_at.clone().into(),
            self.last_event_at.clone().into(),
        ]
    }

    fn from_row<R: Row>(r: &R) -> Result<Self, sqlx::Error>
    where
        usize: sqlx::ColumnIndex<R>,
        String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
        i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
        f64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
        Option<String>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    {
        Ok(Self {
            community: r.try_get(0)?,
            district: r.try_get(1)?,
            cases_total: r.try_get(2)?,
            open_cases: r.try_get(3)?,
            objections: r.try_get(4)?,
            obstructions: r.try_get(5)?,
            incidents: r.try_get(6)?,
            work_stopped_minutes: r.try_get(7)?,
            escalations: r.try_get(8)?,
            police_interventions: r.try_get(9)?,
            repeat_obstructors: r.try_get(10)?,
            heat_value: r.try_get(11)?,
            heat_at: r.try_get(12)?,
            last_event_at: r.try_get(13)?,
        })
    }

    fn add(&mut self, weight: f64, at: &Timestamp, half_life_days: f64) {
        let (v, t) = accumulate(
            self.heat_value,
            self.heat_at
                .as_deref()
                .and_then(|s| Timestamp::parse(s).ok()),
            weight,
            *at,
            half_life_days,
        );
        self.heat_value = v;
        self.heat_at = Some(t.to_canonical());
    }
}

/// Adds `weight` at time `t` to a decaying value `(value, at)`.
pub fn accumulate(
    value: f64,
    at: Option<Timestamp>,
    weight: f64,
    t: Timestamp,
    half_life_days: f64,
) -> (f64, Timestamp) {
    match at {
        None => (weight, t),
        Some(at) if t >= at => (
            value * decay(at.seconds_until(&t), half_life_days) + weight,
            t,
        ),
        Some(at) => (
            value + weight * decay(t.seconds_until(&at), half_life_days),
            at,
        ),
    }
}

/// The factor by which heat shrinks over `seconds`.
pub fn decay(seconds: i64, half_life_days: f64) -> f64 {
    if seconds <= 0 || half_life_days <= 0.0 {
        return 1.0;
    }
    0.5f64.powf(seconds as f64 / (half_life_days * 86_400.0))
}

pub struct HeatProjector {
    config: ReadModelConfig,
    infos: Arc<CaseInfos>,
}

impl HeatProjector {
    pub fn new(config: ReadModelConfig, infos: Arc<CaseInfos>) -> Self {
        Self { config, infos }
    }
}

pub fn ddl(suffix: &str) -> Vec<String> {
    let t = format!("{NAME}{suffix}");
    let o = format!("{OBSTRUCTORS}{suffix}");
    let totals = format!("{TOTALS}{suffix}");
    vec![
        format!(
            "CREATE TABLE {t} (
                community TEXT PRIMARY KEY, district TEXT NOT NULL,
                cases_total BIGINT NOT NULL, open_cases BIGINT NOT NULL, objections BIGINT NOT NULL,
                obstructions BIGINT NOT NULL, incidents BIGINT NOT NULL, work_stopped_minutes BIGINT NOT NULL,
                escalations BIGINT NOT NULL, police_interventions BIGINT NOT NULL, repeat_obstructors BIGINT NOT NULL,
                heat_value DOUBLE PRECISION NOT NULL, heat_at TEXT, last_event_at TEXT NOT NULL
            )"
        ),
        format!(
            "CREATE TABLE {o} (
                community TEXT NOT NULL, party_id TEXT NOT NULL, incidents BIGINT NOT NULL,
                PRIMARY KEY (community, party_id)
            )"
        ),
        // The communities a party obstructed in.
        format!("CREATE INDEX ix_{o}_party ON {o} (party_id)"),
        format!(
            "CREATE TABLE {totals} (party_id TEXT PRIMARY KEY, incidents BIGINT NOT NULL)"
        ),
        // The repeat obstructors: those at or above a threshold.
        format!("CREATE INDEX ix_{totals}_incidents ON {totals} (incidents)"),
    ]
}

#[async_trait]
impl Projector for HeatProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &[NAME, OBSTRUCTORS, TOTALS]
    }

    // 2: each party's total in `heat_obstructor_totals`.
    fn schema_version(&self) -> i64 {
        2
    }

    fn ddl(&self, _backend: Backend, suffix: &str) -> Vec<String> {
        ddl(suffix)
    }

    async fn apply(
        &self,
        tx: &mut Tx,
        suffix: &str,
        events: &[LoggedEvent],
    ) -> Result<(), ProjectionError> {
        let table = format!("{NAME}{suffix}");
        let obstructors = format!("{OBSTRUCTORS}{suffix}");
        let totals = format!("{TOTALS}{suffix}");
        let infos = case_infos(tx, events, &self.infos).await?;
        // The few community rows: load them all.
        let sql = format!("SELECT {} FROM {table}", COLUMNS.join(", "));
        let mut rows: HashMap<String, HeatRow> = on_tx!(tx, c => {
            sqlx::query(&sql).fetch_all(&mut *c).await.map_err(StoreError::from)?.iter()
                .map(HeatRow::from_row)
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(StoreError::from)?
                .into_iter()
                .map(|r| (r.community.clone(), r))
                .collect()
        });
        // Obstruction counts of the parties this batch names.
        let mut keys: Vec<(String, String)> = Vec::new();
        for e in events {
            if let Body::Case(CaseEvent::ObstructionIncidentRecorded { incident }) = &e.body {
                if let Some(info) = infos.get(&e.aggregate_id) {
                    for p in &incident.obstructing_parties {
                        let k = (info.community.to_string(), p.to_string());
                        if !keys.contains(&k) {
                            keys.push(k);
                        }
                    }
                }
            }
        }
        // Their counts in each community and their totals, in one round trip per chunk.
        let mut counts: HashMap<(String, String), i64> = HashMap::new();
        let mut party_totals: HashMap<String, i64> = HashMap::new();
        for chunk in keys.chunks(400) {
            // By the primary keys (community and party; party), so the lookup stays cheap
            // however many obstructors the tables hold.
            let pairs = (0..chunk.len())
                .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
                .collect::<Vec<_>>()
                .join(", ");
            let parties = (0..chunk.len())
                .map(|i| format!("${}", 2 * i + 2))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT community, party_id, incidents FROM {obstructors} WHERE (community, party_id) IN (VALUES {pairs}) \
                 UNION ALL SELECT NULL, party_id, incidents FROM {totals} WHERE party_id IN ({parties})"
            );
            let found: Vec<(Option<String>, String, i64)> = on_tx!(tx, c => {
                let mut q = sqlx::query(&sql).persistent(false);
                for (community, party) in chunk {
                    q = q.bind(community.clone()).bind(party.clone());
                }
                q.fetch_all(&mut *c).await.map_err(StoreError::from)?.into_iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                    .collect::<Result<Vec<_>, sqlx::Error>>()
                    .map_err(StoreError::from)?
            });
            for (c, p, n) in found {
                match c {
                    Some(c) => counts.insert((c, p), n),
                    None => party_totals.insert(p, n),
                };
            }
        }
        let mut touched_rows: Vec<String> = Vec::new();
        let mut touched_counts: Vec<(String, String)> = Vec::new();
        let mut touched_parties: Vec<String> = Vec::new();
        let h = self.config.heat_half_life_days;
        for e in events {
            let Body::Case(ev) = &e.body else { continue };
            let info = infos
                .get(&e.aggregate_id)
                .ok_or_else(|| ProjectionError::Apply {
                    position: e.position,
                    message: "the case's community is unknown".into(),
                })?;
            let community = info.community.to_string();
            let district = self
                .config
                .district_of(&info.community)
                .map(|d| d.to_string())
                .unwrap_or_default();
            let row = rows
                .entry(community.clone())
                .or_insert_with(|| HeatRow::new(community.clone(), district));
            let recorded = Timestamp::parse(&e.recorded_at).ok();
            let at = ev
                .business_time()
                .or(recorded)
                .unwrap_or_else(|| Timestamp::from_unix_micros(0).expect("epoch"));
            match ev {
                CaseEvent::CaseOpened { kind, .. } => {
                    row.cases_total += 1;
                    row.open_cases += 1;
                    match kind {
                        CaseKind::ResidentObjection => {
                            row.objections += 1;
                            row.add(W_OBJECTION, &at, h);
                        }
                        CaseKind::ConstructionObstruction => {
                            row.obstructions += 1;
                            row.add(W_OBSTRUCTION_CASE, &at, h);
                        }
                    }
                }
                CaseEvent::ObstructionIncidentRecorded { incident } => {
                    row.incidents += 1;
                    row.work_stopped_minutes += i64::from(incident.work_stopped_minutes);
                    let hours =
                        (f64::from(incident.work_stopped_minutes) / 60.0).min(MAX_HOURS_WEIGHED);
                    row.add(W_INCIDENT + W_PER_HOUR_STOPPED * hours, &at, h);
                    for p in &incident.obstructing_parties {
                        let k = (community.clone(), p.to_string());
                        let n = counts.entry(k.clone()).or_insert(0);
                        *n += 1;
                        if *n == REPEAT_THRESHOLD {
                            row.repeat_obstructors += 1;
                        }
                        *party_totals.entry(k.1.clone()).or_insert(0) += 1;
                        if !touched_parties.contains(&k.1) {
                            touched_parties.push(k.1.clone());
                        }
                        if !touched_counts.contains(&k) {
                            touched_counts.push(k);
                        }
                    }
                }
                CaseEvent::PoliceInterventionRecorded { .. } => {
                    row.police_interventions += 1;
                    row.add(W_POLICE, &at, h);
                }
                CaseEvent::CaseEscalated { .. } => {
                    row.escalations += 1;
                    row.add(W_ESCALATION, &at, h);
                }
                CaseEvent::MediationFailed { .. } => row.add(W_FAILED, &at, h),
                CaseEvent::CaseClosed { .. } | CaseEvent::CaseWithdrawn { .. } => {
                    row.open_cases -= 1
                }
                CaseEvent::CaseReopened { .. } => {
                    row.open_cases += 1;
                    row.add(W_REOPENED, &at, h);
                }
                _ => {}
            }
            if e.recorded_at > row.last_event_at {
                row.last_event_at = e.recorded_at.clone();
            }
            if !touched_rows.contains(&community) {
                touched_rows.push(community);
            }
        }
        let values = touched_rows
            .iter()
            .filter_map(|c| rows.get(c))
            .map(HeatRow::values)
            .collect();
        upsert(tx, &table, COLUMNS, &["community"], values).await?;
        let values = touched_counts
            .iter()
            .map(|k| {
                vec![
                    k.0.clone().into(),
                    k.1.clone().into(),
                    counts.get(k).copied().unwrap_or(0).into(),
                ]
            })
            .collect();
        upsert(
            tx,
            &obstructors,
            &["community", "party_id", "incidents"],
            &["community", "party_id"],
            values,
        )
        .await?;
        let values = touched_parties
            .iter()
            .map(|p| {
                vec![
                    p.clone().into(),
                    party_totals.get(p).copied().unwrap_or(0).into(),
                ]
            })
            .collect();
        upsert(
            tx,
            &totals,
            &["party_id", "incidents"],
            &["party_id"],
            values,
        )
        .await?;
        Ok(())
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    NoReports,
    Green,
    Amber,
    Red,
}

impl Band {
    pub fn label_zh(&self) -> &'static str {
        match self {
            Band::NoReports => "无报告",
            Band::Green => "绿",
            Band::Amber => "黄",
            Band::Red => "红",
        }
    }

    fn of(score: f64, per100: Option<f64>) -> Band {
        match per100 {
            Some(x) if x >= PER100_RED => Band::Red,
            Some(x) if x >= PER100_AMBER => Band::Amber,
            Some(_) => Band::Green,
            None if score >= RAW_RED => Band::Red,
            None if score >= RAW_AMBER => Band::Amber,
            None => Band::Green,
        }
    }
}

/// Heat of one community (or district) at read time.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct HeatView {
    pub id: String,
    pub name_zh: String,
    pub name_en: String,
    /// For a community: its district.
    pub district: Option<String>,
    pub district_name_zh: Option<String>,
    pub households: Option<u32>,
    /// False when nothing was ever reported: shown as "no reports", not as zero.
    pub reports: bool,
    pub band: Band,
    pub heat: f64,
    pub heat_per_100_households: Option<f64>,
    pub cases_total: i64,
    pub open_cases: i64,
    pub objections: i64,
    pub obstructions: i64,
    pub incidents: i64,
    pub work_stopped_hours: f64,
    pub escalations: i64,
    pub police_interventions: i64,
    pub repeat_obstructors: i64,
    /// Who they are (party ids and incidents), for the community's own mediation group
    /// only; empty for everyone else.
    pub repeat_obstructor_parties: Vec<crate::models::case_status::RepeatObstructor>,
    pub last_event_at: Option<String>,
}

async fn load_all(db: &Db) -> Result<Vec<HeatRow>, StoreError> {
    let sql = format!("SELECT {} FROM {NAME}", COLUMNS.join(", "));
    on_db!(db, p => Ok(sqlx::query(&sql).fetch_all(p).await?.iter().map(HeatRow::from_row).collect::<Result<Vec<_>, sqlx::Error>>()?))
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// What the heat of every community is computed from: the stored rows and the
/// repeat-obstructor counts.
#[derive(Debug)]
struct HeatInputs {
    rows: HashMap<String, HeatRow>,
    repeat: HashMap<String, i64>,
}

async fn heat_inputs(db: &Db, repeat_min: i64) -> Result<HeatInputs, StoreError> {
    Ok(HeatInputs {
        rows: load_all(db)
            .await?
            .into_iter()
            .map(|r| (r.community.clone(), r))
            .collect(),
        repeat: repeat_counts(db, repeat_min).await?,
    })
}

/// The heat read model as last read, kept until its checkpoint moves. Dashboards and the
/// wall screen ask for every community's heat far more often than the read model
/// changes, and counting repeat obstructors aggregates a whole table; the checkpoint is
/// one key lookup. Heat decays with time, so only the stored inputs are kept: the scores
/// are computed afresh for each answer. One request at a time reads the inputs again;
/// those that asked meanwhile take what it read.
#[derive(Debug, Default)]
pub struct HeatCache {
    kept: std::sync::Mutex<Option<Kept>>,
    refresh: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct Kept {
    stamp: CheckpointStamp,
    /// When the stamp and the inputs began to be read: they hold everything committed
    /// before this instant.
    read_at: std::time::Instant,
    inputs: Arc<HeatInputs>,
}

/// A checkpoint's position and the time it was last set, the repeat threshold beside
/// them: the inputs read under one stamp hold at least what the checkpoint says.
type CheckpointStamp = (i64, String, i64);

async fn heat_stamp(db: &Db, repeat_min: i64) -> Result<Option<CheckpointStamp>, StoreError> {
    let row: Option<(i64, String)> = on_db!(db, p => {
        sqlx::query_as("SELECT position, updated_at FROM projection_checkpoint WHERE name = $1")
            .bind(NAME)
            .fetch_optional(p)
            .await?
    });
    Ok(row.map(|(position, at)| (position, at, repeat_min)))
}

impl HeatCache {
    fn kept(&self) -> std::sync::MutexGuard<'_, Option<Kept>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The inputs kept, when what is kept is `fresh` enough.
    fn take(&self, fresh: impl Fn(&Kept) -> bool) -> Option<Arc<HeatInputs>> {
        self.kept()
            .as_ref()
            .filter(|k| fresh(k))
            .map(|k| k.inputs.clone())
    }
}

/// Every community of the reference data, hottest first; those without reports last.
pub async fn communities(
    db: &Db,
    config: &ReadModelConfig,
    now: &Timestamp,
) -> Result<Vec<HeatView>, StoreError> {
    let inputs = heat_inputs(db, config.repeat_obstructor_incidents).await?;
    Ok(views(config, now, &inputs))
}

/// [`communities`], from the inputs kept in `cache` while the heat checkpoint has not
/// moved. What is kept was read after the checkpoint it is kept under, and an answer
/// only ever takes inputs read under the current checkpoint or after it was asked for:
/// never older than a read that waited for its own write.
pub async fn communities_cached(
    db: &Db,
    config: &ReadModelConfig,
    now: &Timestamp,
    cache: &HeatCache,
) -> Result<Vec<HeatView>, StoreError> {
    let asked = std::time::Instant::now();
    let min = config.repeat_obstructor_incidents;
    let Some(stamp) = heat_stamp(db, min).await? else {
        return communities(db, config, now).await;
    };
    if let Some(i) = cache.take(|k| k.stamp == stamp) {
        return Ok(views(config, now, &i));
    }
    let _turn = cache.refresh.lock().await;
    if let Some(i) = cache.take(|k| k.read_at >= asked) {
        return Ok(views(config, now, &i));
    }
    let read_at = std::time::Instant::now();
    let stamp = heat_stamp(db, min).await?.unwrap_or(stamp);
    let inputs = Arc::new(heat_inputs(db, min).await?);
    *cache.kept() = Some(Kept {
        stamp,
        read_at,
        inputs: inputs.clone(),
    });
    Ok(views(config, now, &inputs))
}

fn views(config: &ReadModelConfig, now: &Timestamp, inputs: &HeatInputs) -> Vec<HeatView> {
    let rows = &inputs.rows;
    let repeat = &inputs.repeat;
    let h = config.heat_half_life_days;
    let mut out: Vec<HeatView> = config
        .reference
        .communities
        .iter()
        .map(|c| {
            let district = config.reference.district(&c.district);
            let row = rows.get(c.id.as_str());
            let heat = row
                .and_then(|r| {
                    r.heat_at
                        .as_deref()
                        .and_then(|s| Timestamp::parse(s).ok())
                        .map(|at| r.heat_value * decay(at.seconds_until(now), h))
                })
                .unwrap_or(0.0);
            let per100 = c
                .households
                .filter(|n| *n > 0)
                .map(|n| heat * 100.0 / f64::from(n));
            HeatView {
                id: c.id.to_string(),
                name_zh: c.name_zh.clone(),
                name_en: c.name_en.clone(),
                district: Some(c.district.to_string()),
                district_name_zh: district.map(|d| d.name_zh.clone()),
                households: c.households,
                reports: row.is_some(),
                band: if row.is_some() {
                    Band::of(heat, per100)
                } else {
                    Band::NoReports
                },
                heat: round2(heat),
                heat_per_100_households: per100.map(round2),
                cases_total: row.map_or(0, |r| r.cases_total),
                open_cases: row.map_or(0, |r| r.open_cases),
                objections: row.map_or(0, |r| r.objections),
                obstructions: row.map_or(0, |r| r.obstructions),
                incidents: row.map_or(0, |r| r.incidents),
                work_stopped_hours: round2(row.map_or(0, |r| r.work_stopped_minutes) as f64 / 60.0),
                escalations: row.map_or(0, |r| r.escalations),
                police_interventions: row.map_or(0, |r| r.police_interventions),
                repeat_obstructors: repeat.get(c.id.as_str()).copied().unwrap_or(0),
                repeat_obstructor_parties: vec![],
                last_event_at: row.map(|r| r.last_event_at.clone()),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.reports
            .cmp(&a.reports)
            .then(b.heat.total_cmp(&a.heat))
            .then(a.id.cmp(&b.id))
    });
    out
}

/// The districts, each the sum of its communities, normalised by its household count.
pub async fn districts(
    db: &Db,
    config: &ReadModelConfig,
    now: &Timestamp,
) -> Result<Vec<HeatView>, StoreError> {
    let communities = communities(db, config, now).await?;
    let mut out = Vec::new();
    for d in &config.reference.districts {
        let mine: Vec<&HeatView> = communities
            .iter()
            .filter(|c| c.district.as_deref() == Some(d.id.as_str()))
            .collect();
        let reports = mine.iter().any(|c| c.reports);
        let heat: f64 = mine.iter().map(|c| c.heat).sum();
        let per100 = d
            .households
            .filter(|n| *n > 0)
            .map(|n| heat * 100.0 / f64::from(n));
        let sum = |f: fn(&HeatView) -> i64| mine.iter().map(|c| f(c)).sum::<i64>();
        out.push(HeatView {
            id: d.id.to_string(),
            name_zh: d.name_zh.clone(),
            name_en: d.name_en.clone(),
            district: None,
            district_name_zh: None,
            households: d.households,
            reports,
            band: if reports {
                Band::of(heat, per100)
            } else {
                Band::NoReports
            },
            heat: round2(heat),
            heat_per_100_households: per100.map(round2),
            cases_total: sum(|c| c.cases_total),
            open_cases: sum(|c| c.open_cases),
            objections: sum(|c| c.objections),
            obstructions: sum(|c| c.obstructions),
            incidents: sum(|c| c.incidents),
            work_stopped_hours: round2(mine.iter().map(|c| c.work_stopped_hours).sum()),
            escalations: sum(|c| c.escalations),
            police_interventions: sum(|c| c.police_interventions),
            repeat_obstructors: sum(|c| c.repeat_obstructors),
            repeat_obstructor_parties: vec![],
            last_event_at: mine.iter().filter_map(|c| c.last_event_at.clone()).max(),
        });
    }
    Ok(out)
}

/// Per community, how many repeat obstructors (parties with at least `min` incidents in
/// all communities) obstructed work there.
async fn repeat_counts(db: &Db, min: i64) -> Result<HashMap<String, i64>, StoreError> {
    let sql = format!(
        "SELECT o.community, CAST(COUNT(*) AS BIGINT) FROM {TOTALS} t JOIN {OBSTRUCTORS} o ON o.party_id = t.party_id WHERE t.incidents >= $1 GROUP BY o.community"
    );
    on_db!(db, p => {
        Ok(sqlx::query(&sql)
            .bind(min)
            .fetch_all(p)
            .await?
            .into_iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<HashMap<String, i64>, sqlx::Error>>()?)
    })
}

/// The obstruction incidents, in all communities, of each party a case names (parties
/// without any are left out), by party id in order: one round trip.
pub async fn obstruction_counts_on_case(
    db: &Db,
    case_id: &str,
) -> Result<Vec<(String, i64)>, StoreError> {
    // A key lookup per party in a subquery: a join planned as a whole took three times as
    // long on PostgreSQL (124 µs against 40).
    let sql = format!(
        "SELECT c.party_id, (SELECT t.incidents FROM {TOTALS} t WHERE t.party_id = c.party_id) FROM {} c WHERE c.case_id = $1 ORDER BY c.party_id",
        super::case_parties::NAME
    );
    let rows: Vec<(String, Option<i64>)> = on_db!(db, p => {
        sqlx::query_as(&sql).bind(case_id).fetch_all(p).await?
    });
    Ok(rows
        .into_iter()
        .filter_map(|(party, n)| n.map(|n| (party, n)))
        .collect())
}

/// Each of these parties' obstruction incidents, in all communities (parties without any
/// are left out).
pub async fn obstruction_counts(
    db: &Db,
    party_ids: &[String],
) -> Result<HashMap<String, i64>, StoreError> {
    if party_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let marks: Vec<String> = (1..=party_ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT party_id, incidents FROM {TOTALS} WHERE party_id IN ({})",
        marks.join(", ")
    );
    on_db!(db, p => {
        let mut q = sqlx::query(&sql);
        for id in party_ids {
            q = q.bind(id.clone());
        }
        Ok(q.fetch_all(p)
            .await?
            .into_iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get::<i64, _>(1)?)))
            .collect::<Result<HashMap<String, i64>, sqlx::Error>>()?)
    })
}

/// The repeat obstructors: parties with at least `min` incidents in all communities, with
/// their count, most first; only those who obstructed in one of `communities` when given.
pub async fn repeat_obstructors(
    db: &Db,
    min: i64,
    communities: Option<&[String]>,
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut sql = format!("SELECT party_id, incidents FROM {TOTALS} WHERE incidents >= $1");
    if let Some(cs) = communities {
        if cs.is_empty() {
            return Ok(vec![]);
        }
        let marks: Vec<String> = (0..cs.len()).map(|i| format!("${}", i + 2)).collect();
        sql = format!(
            "SELECT party_id, incidents FROM {TOTALS} WHERE incidents >= $1 AND party_id IN (SELECT party_id FROM {OBSTRUCTORS} WHERE community IN ({}))",
            marks.join(", ")
        );
    }
    sql.push_str(" ORDER BY 2 DESC, 1");
    on_db!(db, p => {
        let mut q = sqlx::query(&sql).bind(min);
        for c in communities.unwrap_or_default() {
            q = q.bind(c.clone());
        }
        Ok(q.fetch_all(p)
            .await?
            .into_iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get::<i64, _>(1)?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn decay_halves_per_half_life() {
        assert!((decay(14 * 86_400, 14.0) - 0.5).abs() < 1e-12);
        assert!((decay(28 * 86_400, 14.0) - 0.25).abs() < 1e-12);
        assert_eq!(decay(-5, 14.0), 1.0);
    }

    #[test]
    fn accumulation_does_not_depend_on_arrival_order() {
        let a = (t("2022-04-01T00:00:00Z"), 2.0);
        let b = (t("2022-04-15T00:00:00Z"), 4.0);
        let (v1, at1) = accumulate(0.0, None, a.1, a.0, 14.0);
        let (v1, at1) = accumulate(v1, Some(at1), b.1, b.0, 14.0);
        let (v2, at2) = accumulate(0.0, None, b.1, b.0, 14.0);
        let (v2, at2) = accumulate(v2, Some(at2), a.1, a.0, 14.0);
        assert_eq!(at1, at2);
        assert!((v1 - v2).abs() < 1e-9);
        assert!((v1 - 5.0).abs() < 1e-9, "2 halved to 1, plus 4");
    }

    #[test]
    fn bands() {
        assert_eq!(Band::of(4.9, None), Band::Green);
        assert_eq!(Band::of(5.0, None), Band::Amber);
        assert_eq!(Band::of(12.0, None), Band::Red);
        assert_eq!(Band::of(100.0, Some(0.5)), Band::Green);
        assert_eq!(Band::of(0.0, Some(3.0)), Band::Red);
    }
}
