//! `case_parties`: which parties each case names, and in what role. Serves the party
//! registry (a party's cases, for export and retention) without reading every event.

use async_trait::async_trait;
use sqlx::Row;
use tiaojie_events::case::CaseEvent;

use crate::db::{upsert, Backend, Db, Tx, Val};
use crate::error::StoreError;
use crate::on_db;
use crate::runtime::{Body, LoggedEvent, ProjectionError, Projector};

pub const NAME: &str = "case_parties";

pub struct CasePartiesProjector;

pub fn ddl(suffix: &str) -> Vec<String> {
    let t = format!("{NAME}{suffix}");
    vec![
        format!("CREATE TABLE {t} (case_id TEXT NOT NULL, party_id TEXT NOT NULL, role TEXT NOT NULL, PRIMARY KEY (case_id, party_id))"),
        format!("CREATE INDEX ix_{t}_party ON {t} (party_id)"),
    ]
}

#[async_trait]
impl Projector for CasePartiesProjector {
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
        let mut rows: Vec<Vec<Val>> = Vec::new();
        for e in events {
            let Body::Case(ev) = &e.body else { continue };
            let refs = match ev {
                CaseEvent::CaseOpened { parties, .. } => parties.clone(),
                CaseEvent::PartyAdded { party } => vec![*party],
                _ => continue,
            };
            for p in refs {
                let role = serde_json::to_value(p.role)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                rows.push(vec![
                    e.aggregate_id.clone().into(),
                    p.party_id.to_string().into(),
                    role.into(),
                ]);
            }
        }
        upsert(
            tx,
            &format!("{NAME}{suffix}"),
            &["case_id", "party_id", "role"],
            &["case_id", "party_id"],
            rows,
        )
        .await?;
        Ok(())
    }
}

/// The cases that name a party, with its role in each.
pub async fn cases_of(db: &Db, party_id: &str) -> Result<Vec<(String, String)>, StoreError> {
    on_db!(db, p => {
        Ok(sqlx::query(&format!("SELECT case_id, role FROM {NAME} WHERE party_id = $1 ORDER BY case_id"))
            .bind(party_id)
            .fetch_all(p)
            .await?
            .into_iter()
            .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<Vec<_>, _>>()?)
    })
}

/// The parties a case names.
pub async fn parties_of(db: &Db, case_id: &str) -> Result<Vec<(String, String)>, StoreError> {
    on_db!(db, p => {
        Ok(sqlx::query(&format!("SELECT party_id, role FROM {NAME} WHERE case_id = $1 ORDER BY party_id"))
            .bind(case_id)
            .fetch_all(p)
            .await?
            .into_iter()
            .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<Vec<_>, _>>()?)
    })
}
