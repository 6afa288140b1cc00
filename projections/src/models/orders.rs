//! `supervision_orders`: each supervision order (督办) with when it was issued, by when it
//! was to be answered, and when it was. The statistics count the orders issued in a period
//! and those answered on time, grouped like the cases they concern.

use async_trait::async_trait;
use serde::Serialize;
use sqlx::Row;
use tiaojie_events::case::CaseEvent;

use crate::db::{upsert, Backend, Db, Tx, Val};
use crate::error::StoreError;
use crate::runtime::{Body, LoggedEvent, ProjectionError, Projector};
use crate::{on_db, on_tx};

pub const NAME: &str = "supervision_orders";

pub struct OrdersProjector;

pub fn ddl(suffix: &str) -> Vec<String> {
    let t = format!("{NAME}{suffix}");
    vec![
        format!(
            "CREATE TABLE {t} (order_id TEXT PRIMARY KEY, case_id TEXT NOT NULL, issued_at TEXT NOT NULL,
                respond_by TEXT NOT NULL, answered_at TEXT)"
        ),
        format!("CREATE INDEX ix_{t}_issued ON {t} (issued_at)"),
    ]
}

#[async_trait]
impl Projector for OrdersProjector {
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
        let t = format!("{NAME}{suffix}");
        for e in events {
            let Body::Case(ev) = &e.body else { continue };
            match ev {
                CaseEvent::SupervisionOrderIssued {
                    order_id,
                    respond_by,
                    issued_at,
                    ..
                } => {
                    let row: Vec<Val> = vec![
                        order_id.to_string().into(),
                        e.aggregate_id.clone().into(),
                        issued_at.to_canonical().into(),
                        respond_by.to_canonical().into(),
                        None::<String>.into(),
                    ];
                    upsert(
                        tx,
                        &t,
                        &[
                            "order_id",
                            "case_id",
                            "issued_at",
                            "respond_by",
                            "answered_at",
                        ],
                        &["order_id"],
                        vec![row],
                    )
                    .await?;
                }
                CaseEvent::SupervisionOrderAnswered {
                    order_id,
                    answered_at,
                    ..
                } => {
                    let sql = format!(
                        "UPDATE {t} SET answered_at = $1 WHERE order_id = $2 AND answered_at IS NULL"
                    );
                    on_tx!(tx, c => {
                        sqlx::query(&sql)
                            .bind(answered_at.to_canonical())
                            .bind(order_id.to_string())
                            .execute(&mut *c)
                            .await
                            .map_err(StoreError::from)?;
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// An order issued in a period, with what its case is grouped by.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderRow {
    pub order_id: String,
    pub case_id: String,
    pub district: String,
    pub community: String,
    pub category: String,
    pub channel: String,
    pub kind: String,
    pub issued_at: String,
    pub respond_by: String,
    pub answered_at: Option<String>,
}

/// The orders issued in `[from, to)` on cases in the visible communities (`None`: all).
pub async fn issued_in(
    db: &Db,
    from: &str,
    to: &str,
    visible: Option<&[String]>,
) -> Result<Vec<OrderRow>, StoreError> {
    let Some(scope) = super::within_communities("c.community", 3, visible) else {
        return Ok(vec![]);
    };
    let sql = format!(
        "SELECT o.order_id, o.case_id, c.district, c.community, c.category, c.channel, c.kind,
                o.issued_at, o.respond_by, o.answered_at
           FROM {NAME} o JOIN {cases} c ON c.case_id = o.case_id
          WHERE o.issued_at >= $1 AND o.issued_at < $2{scope}",
        cases = super::case_status::NAME
    );
    Ok(on_db!(db, p => {
        let mut q = sqlx::query(&sql).bind(from).bind(to);
        for c in visible.unwrap_or_default() {
            q = q.bind(c.clone());
        }
        q.fetch_all(p)
            .await?
            .iter()
            .map(|r| {
                Ok::<_, sqlx::Error>(OrderRow {
                    order_id: r.try_get(0)?,
                    case_id: r.try_get(1)?,
                    district: r.try_get(2)?,
                    community: r.try_get(3)?,
                    category: r.try_get(4)?,
                    channel: r.try_get(5)?,
                    kind: r.try_get(6)?,
                    issued_at: r.try_get(7)?,
                    respond_by: r.try_get(8)?,
                    answered_at: r.try_get(9)?,
                })
            })
            .collect::<Result<Vec<_>, _>>()?
    }))
}
