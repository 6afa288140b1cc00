//! Statistics for a period, read from `case_status` (kept by its projector), never from the
//! events: the cases that came in, were accepted, failed, were escalated or closed within
//! the period, each with the times and outcomes the figures are computed from.

use serde::Serialize;
use sqlx::Row;

use super::case_status::NAME;
use crate::db::Db;
use crate::error::StoreError;
use crate::on_db;

/// One case as the statistics see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatCase {
    pub case_id: String,
    pub district: String,
    pub community: String,
    pub category: String,
    pub channel: String,
    pub kind: String,
    pub status: String,
    pub assignee: Option<String>,
    pub reported_at: String,
    pub accepted_at: Option<String>,
    pub closed_at: Option<String>,
    pub outcome: Option<String>,
    pub failed_at: Option<String>,
    pub route: Option<String>,
    pub escalated_at: Option<String>,
    pub extended_due: Option<String>,
    pub incidents: i64,
    pub work_stopped_minutes: i64,
    pub due_kind: Option<String>,
    pub due_at: Option<String>,
}

const COLUMNS: &str =
    "case_id, district, community, category, channel, kind, status, assignee, reported_at,
        accepted_at, closed_at, outcome, failed_at, route, escalated_at, extended_due,
        incidents, work_stopped_minutes, due_kind, due_at";

impl StatCase {
    fn from_row<R: Row>(r: &R) -> Result<Self, sqlx::Error>
    where
        usize: sqlx::ColumnIndex<R>,
        String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
        i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
        Option<String>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    {
        Ok(StatCase {
            case_id: r.try_get(0)?,
            district: r.try_get(1)?,
            community: r.try_get(2)?,
            category: r.try_get(3)?,
            channel: r.try_get(4)?,
            kind: r.try_get(5)?,
            status: r.try_get(6)?,
            assignee: r.try_get(7)?,
            reported_at: r.try_get(8)?,
            accepted_at: r.try_get(9)?,
            closed_at: r.try_get(10)?,
            outcome: r.try_get(11)?,
            failed_at: r.try_get(12)?,
            route: r.try_get(13)?,
            escalated_at: r.try_get(14)?,
            extended_due: r.try_get(15)?,
            incidents: r.try_get(16)?,
            work_stopped_minutes: r.try_get(17)?,
            due_kind: r.try_get(18)?,
            due_at: r.try_get(19)?,
        })
    }
}

/// The cases with anything to count in `[from, to)` (UTC canonical times), within the
/// visible communities (`None`: all).
pub async fn cases_in(
    db: &Db,
    from: &str,
    to: &str,
    visible: Option<&[String]>,
) -> Result<Vec<StatCase>, StoreError> {
    let conds = [
        "(reported_at >= $1 AND reported_at < $2)",
        "(accepted_at >= $1 AND accepted_at < $2)",
        "(closed_at >= $1 AND closed_at < $2)",
        "(failed_at >= $1 AND failed_at < $2)",
        "(escalated_at >= $1 AND escalated_at < $2)",
    ];
    let Some(scope) = super::within_communities("community", 3, visible) else {
        return Ok(vec![]);
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM {NAME} WHERE ({}){scope}",
        conds.join(" OR ")
    );
    let rows = on_db!(db, p => {
        let mut q = sqlx::query(&sql).bind(from).bind(to);
        for c in visible.unwrap_or_default() {
            q = q.bind(c.clone());
        }
        q.fetch_all(p).await?.iter().map(StatCase::from_row).collect::<Result<Vec<_>, sqlx::Error>>()?
    });
    Ok(rows)
}

/// The open cases past a deadline now, within the visible communities.
pub async fn overdue_now(
    db: &Db,
    now: &str,
    visible: Option<&[String]>,
) -> Result<Vec<StatCase>, StoreError> {
    let Some(scope) = super::within_communities("community", 2, visible) else {
        return Ok(vec![]);
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM {NAME} WHERE due_at IS NOT NULL AND due_at < $1{scope} ORDER BY due_at LIMIT 500"
    );
    Ok(on_db!(db, p => {
        let mut q = sqlx::query(&sql).bind(now);
        for c in visible.unwrap_or_default() {
            q = q.bind(c.clone());
        }
        q.fetch_all(p).await?.iter().map(StatCase::from_row).collect::<Result<Vec<_>, sqlx::Error>>()?
    }))
}
