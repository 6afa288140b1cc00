//! `audit_trail`: every event, in log order, with who did it, for whom, through which
//! request and trace, a one-line summary in Chinese (no free text), and its chain hash.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use sqlx::Row;

use super::{case_infos, decode_cursor, encode_cursor, CaseInfos, Page, ReadModelConfig};
use crate::db::{upsert, Backend, Db, Tx, Val};
use crate::error::StoreError;
use crate::on_db;
use crate::runtime::{Body, LoggedEvent, ProjectionError, Projector};

pub const NAME: &str = "audit_trail";

pub struct AuditProjector {
    config: ReadModelConfig,
    infos: Arc<CaseInfos>,
}

impl AuditProjector {
    pub fn new(config: ReadModelConfig, infos: Arc<CaseInfos>) -> Self {
        Self { config, infos }
    }
}

const COLUMNS: &[&str] = &[
    "position",
    "recorded_at",
    "business_at",
    "aggregate_type",
    "aggregate_id",
    "sequence",
    "event_type",
    "case_id",
    "group_id",
    "community",
    "district",
    "actor_id",
    "actor_name",
    "role",
    "organisation",
    "request_id",
    "trace_id",
    "summary_zh",
    "chain_hash",
];

pub fn ddl(suffix: &str) -> Vec<String> {
    let t = format!("{NAME}{suffix}");
    vec![
        format!(
            "CREATE TABLE {t} (
                position BIGINT PRIMARY KEY, recorded_at TEXT NOT NULL, business_at TEXT,
                aggregate_type TEXT NOT NULL, aggregate_id TEXT NOT NULL, sequence BIGINT NOT NULL,
                event_type TEXT NOT NULL, case_id TEXT, group_id TEXT, community TEXT, district TEXT,
                actor_id TEXT NOT NULL, actor_name TEXT NOT NULL, role TEXT NOT NULL, organisation TEXT NOT NULL,
                request_id TEXT NOT NULL, trace_id TEXT, summary_zh TEXT NOT NULL, chain_hash TEXT NOT NULL
            )"
        ),
        format!("CREATE INDEX ix_{t}_aggregate ON {t} (aggregate_id, position)"),
        format!("CREATE INDEX ix_{t}_actor ON {t} (actor_id, position)"),
        format!("CREATE INDEX ix_{t}_community ON {t} (community, position)"),
        format!("CREATE INDEX ix_{t}_recorded ON {t} (recorded_at)"),
    ]
}

#[async_trait]
impl Projector for AuditProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn reads_unreadable(&self) -> bool {
        true
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
        let infos = case_infos(tx, events, &self.infos).await?;
        let mut rows = Vec::with_capacity(events.len());
        for e in events {
            let (case_id, group_id, community, summary, business) = match &e.body {
                Body::Case(ev) => {
                    let info = infos.get(&e.aggregate_id);
                    let group = match ev {
                        tiaojie_events::case::CaseEvent::CaseOpened { group, .. } => {
                            Some(group.to_string())
                        }
                        _ => None,
                    };
                    (
                        Some(e.aggregate_id.clone()),
                        group,
                        info.map(|i| i.community.clone()),
                        ev.describe_zh(),
                        ev.business_time().map(|t| t.to_canonical()),
                    )
                }
                Body::Group(ev) => (
                    None,
                    Some(e.aggregate_id.clone()),
                    None,
                    ev.describe_zh(),
                    None,
                ),
                Body::Other => (None, None, None, e.event_type.clone(), None),
                // Kept in the trail, so that it stays complete and its chain shows; the
                // other read models stop at such an event until a release reads it.
                Body::Unreadable(_) => (
                    (e.aggregate_type == tiaojie_events::case::CASE_AGGREGATE_TYPE)
                        .then(|| e.aggregate_id.clone()),
                    None,
                    infos.get(&e.aggregate_id).map(|i| i.community.clone()),
                    format!("此版本无法读取的事件（{}），待升级后重建", e.event_type),
                    None,
                ),
            };
            let district = community
                .as_ref()
                .and_then(|c| self.config.district_of(c))
                .map(|d| d.to_string());
            let m = &e.metadata;
            rows.push(vec![
                Val::from(e.position),
                e.recorded_at.clone().into(),
                business.into(),
                e.aggregate_type.clone().into(),
                e.aggregate_id.clone().into(),
                e.sequence.into(),
                e.event_type.clone().into(),
                case_id.into(),
                group_id.into(),
                community.map(|c| c.to_string()).into(),
                district.into(),
                m.actor_id.clone().into(),
                m.actor_name.clone().into(),
                m.role.as_str().into(),
                m.organisation.clone().into(),
                m.request_id.clone().into(),
                m.trace_id.clone().into(),
                summary.into(),
                e.chain_hash.clone().into(),
            ]);
        }
        upsert(tx, &format!("{NAME}{suffix}"), COLUMNS, &["position"], rows).await?;
        Ok(())
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub position: i64,
    pub recorded_at: String,
    pub business_at: Option<String>,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub case_id: Option<String>,
    pub group_id: Option<String>,
    pub community: Option<String>,
    pub district: Option<String>,
    pub actor_id: String,
    pub actor_name: String,
    pub role: String,
    pub organisation: String,
    pub request_id: String,
    pub trace_id: Option<String>,
    pub summary_zh: String,
    pub chain_hash: String,
}

impl AuditEntry {
    fn from_row<R: Row>(r: &R) -> Result<Self, sqlx::Error>
    where
        usize: sqlx::ColumnIndex<R>,
        String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
        i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
        Option<String>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    {
        Ok(Self {
            position: r.try_get(0)?,
            recorded_at: r.try_get(1)?,
            business_at: r.try_get(2)?,
            aggregate_type: r.try_get(3)?,
            aggregate_id: r.try_get(4)?,
            sequence: r.try_get(5)?,
            event_type: r.try_get(6)?,
            case_id: r.try_get(7)?,
            group_id: r.try_get(8)?,
            community: r.try_get(9)?,
            district: r.try_get(10)?,
            actor_id: r.try_get(11)?,
            actor_name: r.try_get(12)?,
            role: r.try_get(13)?,
            organisation: r.try_get(14)?,
            request_id: r.try_get(15)?,
            trace_id: r.try_get(16)?,
            summary_zh: r.try_get(17)?,
            chain_hash: r.try_get(18)?,
        })
    }
}

/// Filters of `GET /api/v1/audit`; times are compared with `recorded_at`.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// A case or a group id.
    pub aggregate: Option<String>,
    pub actor: Option<String>,
    pub community: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: i64,
    /// Oldest first when true (history of one case); newest first otherwise.
    pub ascending: bool,
    pub cursor: Option<String>,
}

/// Lists audit entries, paginated by position.
pub async fn list(db: &Db, f: &AuditFilter) -> Result<Page<AuditEntry>, Option<StoreError>> {
    let mut conds = Vec::new();
    let mut args: Vec<String> = Vec::new();
    let push = |c: &str, v: String, args: &mut Vec<String>| {
        args.push(v);
        format!("{c} ${}", args.len())
    };
    if let Some(a) = &f.aggregate {
        conds.push(push("aggregate_id =", a.clone(), &mut args));
    }
    if let Some(a) = &f.actor {
        conds.push(push("actor_id =", a.clone(), &mut args));
    }
    if let Some(c) = &f.community {
        conds.push(push("community =", c.clone(), &mut args));
    }
    if let Some(t) = &f.from {
        conds.push(push("recorded_at >=", t.clone(), &mut args));
    }
    if let Some(t) = &f.to {
        conds.push(push("recorded_at <", t.clone(), &mut args));
    }
    let mut after: Option<i64> = None;
    if let Some(c) = &f.cursor {
        let parts = decode_cursor(c, 1).ok_or(None)?;
        after = Some(parts[0].parse().map_err(|_| None)?);
    }
    let cmp = if f.ascending { ">" } else { "<" };
    if let Some(a) = after {
        conds.push(format!("position {cmp} {a}"));
    }
    let limit = f.limit.clamp(1, 1000);
    let where_ = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    let order = if f.ascending { "ASC" } else { "DESC" };
    let sql = format!(
        "SELECT {} FROM {NAME} {where_} ORDER BY position {order} LIMIT {}",
        COLUMNS.join(", "),
        limit + 1
    );
    let mut items: Vec<AuditEntry> = on_db!(db, p => {
        let mut q = sqlx::query(&sql);
        for a in &args {
            q = q.bind(a.clone());
        }
        q.fetch_all(p)
            .await
            .map_err(|e| Some(StoreError::from(e)))?
            .iter()
            .map(AuditEntry::from_row)
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(|e| Some(StoreError::from(e)))?
    });
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next_cursor = if more {
        items
            .last()
            .map(|e| encode_cursor(&[&e.position.to_string()]))
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// The newest entries of the given event types, newest first: what a wall screen shows as
/// it happens (the summaries hold no free text and no personal data).
pub async fn latest(
    db: &Db,
    event_types: &[&str],
    limit: i64,
) -> Result<Vec<AuditEntry>, StoreError> {
    if event_types.is_empty() {
        return Ok(vec![]);
    }
    let sql = format!(
        "SELECT {} FROM {NAME} WHERE event_type IN ({}) ORDER BY position DESC LIMIT {}",
        COLUMNS.join(", "),
        crate::db::placeholders(1, event_types.len()),
        limit.clamp(1, 100)
    );
    Ok(on_db!(db, p => {
        let mut q = sqlx::query(&sql);
        for t in event_types {
            q = q.bind(t.to_string());
        }
        q.fetch_all(p).await?.iter().map(AuditEntry::from_row).collect::<Result<Vec<_>, sqlx::Error>>()?
    }))
}
