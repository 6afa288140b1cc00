//! `daily_stats`: per local day and district, for trend charts: cases opened and closed,
//! obstruction incidents, hours of work stopped, escalations and agreements. The day is the
//! business time's date in local time (Beijing time by default).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use sqlx::Row;
use tiaojie_events::case::CaseEvent;

use super::{case_infos, local_day, CaseInfos, ReadModelConfig};
use crate::db::{insert_rows, Backend, Db, Tx, Val};
use crate::error::StoreError;
use crate::on_db;
use crate::runtime::{Body, LoggedEvent, ProjectionError, Projector};

pub const NAME: &str = "daily_stats";

pub struct DailyProjector {
    config: ReadModelConfig,
    infos: Arc<CaseInfos>,
}

impl DailyProjector {
    pub fn new(config: ReadModelConfig, infos: Arc<CaseInfos>) -> Self {
        Self { config, infos }
    }
}

const COLUMNS: &[&str] = &[
    "day",
    "district",
    "opened",
    "closed",
    "incidents",
    "work_stopped_minutes",
    "escalations",
    "agreements",
];

pub fn ddl(suffix: &str) -> Vec<String> {
    let t = format!("{NAME}{suffix}");
    vec![format!(
        "CREATE TABLE {t} (
            day TEXT NOT NULL, district TEXT NOT NULL,
            opened BIGINT NOT NULL, closed BIGINT NOT NULL, incidents BIGINT NOT NULL,
            work_stopped_minutes BIGINT NOT NULL, escalations BIGINT NOT NULL, agreements BIGINT NOT NULL,
            PRIMARY KEY (day, district)
        )"
    )]
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DayRow {
    pub day: String,
    pub district: String,
    pub opened: i64,
    pub closed: i64,
    pub incidents: i64,
    pub work_stopped_minutes: i64,
    pub escalations: i64,
    pub agreements: i64,
}

impl DayRow {
    fn from_row<R: Row>(r: &R) -> Result<Self, sqlx::Error>
    where
        usize: sqlx::ColumnIndex<R>,
        String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
        i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    {
        Ok(Self {
            day: r.try_get(0)?,
            district: r.try_get(1)?,
            opened: r.try_get(2)?,
            closed: r.try_get(3)?,
            incidents: r.try_get(4)?,
            work_stopped_minutes: r.try_get(5)?,
            escalations: r.try_get(6)?,
            agreements: r.try_get(7)?,
        })
    }
}

#[async_trait]
impl Projector for DailyProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &[NAME]
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
        let infos = case_infos(tx, events, &self.infos).await?;
        let mut deltas: HashMap<(String, String), DayRow> = HashMap::new();
        for e in events {
            let Body::Case(ev) = &e.body else { continue };
            let Some(t) = ev.business_time() else {
                continue;
            };
            let info = infos
                .get(&e.aggregate_id)
                .ok_or_else(|| ProjectionError::Apply {
                    position: e.position,
                    message: "the case's community is unknown".into(),
                })?;
            let district = self
                .config
                .district_of(&info.community)
                .map(|d| d.to_string())
                .unwrap_or_default();
            let day = local_day(&t, self.config.utc_offset_hours);
            let key = (day.clone(), district.clone());
            let d = deltas.entry(key).or_insert_with(|| DayRow {
                day,
                district,
                ..DayRow::default()
            });
            match ev {
                CaseEvent::CaseOpened { .. } => d.opened += 1,
                CaseEvent::CaseClosed { .. } | CaseEvent::CaseWithdrawn { .. } => d.closed += 1,
                CaseEvent::ObstructionIncidentRecorded { incident } => {
                    d.incidents += 1;
                    d.work_stopped_minutes += i64::from(incident.work_stopped_minutes);
                }
                CaseEvent::CaseEscalated { .. } => d.escalations += 1,
                CaseEvent::AgreementReached { .. } => d.agreements += 1,
                _ => {}
            }
        }
        if deltas.is_empty() {
            return Ok(());
        }
        // Add the deltas to what is stored: the database does the sum.
        let rows: Vec<Vec<Val>> = deltas
            .into_values()
            .map(|d| {
                vec![
                    d.day.into(),
                    d.district.into(),
                    d.opened.into(),
                    d.closed.into(),
                    d.incidents.into(),
                    d.work_stopped_minutes.into(),
                    d.escalations.into(),
                    d.agreements.into(),
                ]
            })
            .collect();
        let sets: Vec<String> = COLUMNS[2..]
            .iter()
            .map(|c| format!("{c} = {table}.{c} + excluded.{c}"))
            .collect();
        let conflict = format!(
            " ON CONFLICT (day, district) DO UPDATE SET {}",
            sets.join(", ")
        );
        insert_rows(tx, &table, COLUMNS, &conflict, rows).await?;
        Ok(())
    }
}

/// Days between `from` and `to` (inclusive, `YYYY-MM-DD`), optionally for one district.
pub async fn list(
    db: &Db,
    from: &str,
    to: &str,
    district: Option<&str>,
) -> Result<Vec<DayRow>, StoreError> {
    let (filter, bind) = match district {
        Some(d) => (" AND district = $3", Some(d.to_string())),
        None => ("", None),
    };
    let sql = format!(
        "SELECT {} FROM {NAME} WHERE day >= $1 AND day <= $2{filter} ORDER BY day, district",
        COLUMNS.join(", ")
    );
    on_db!(db, p => {
        let mut q = sqlx::query(&sql).bind(from).bind(to);
        if let Some(b) = &bind {
            q = q.bind(b.clone());
        }
        Ok(q.fetch_all(p).await?.iter().map(DayRow::from_row).collect::<Result<Vec<_>, sqlx::Error>>()?)
    })
}
