//! The SQLite event repository with a one-statement append.
//!
//! sqlite-es appends in an explicit transaction: `BEGIN`, one `INSERT` per event, `COMMIT`.
//! Each statement is a round trip to sqlx's SQLite worker thread, and the in-process write
//! lock is held across all of them; under load that queue of thread hand-offs, not SQLite,
//! bounded the command rate. One multi-row `INSERT` is atomic by itself (with its triggers),
//! so an append is a single round trip. Reads, snapshots and replay streams are sqlite-es's.

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use serde_json::Value;
use sqlite_es::SqliteEventRepository;
use sqlx::SqlitePool;

pub struct SqliteAppendRepository {
    inner: SqliteEventRepository,
    pool: SqlitePool,
}

impl SqliteAppendRepository {
    pub fn new(pool: SqlitePool) -> Self {
        Self {
            inner: SqliteEventRepository::new(pool.clone()),
            pool,
        }
    }
}

/// sqlite-es's mapping: a primary-key clash is an optimistic-lock conflict.
fn persistence(e: sqlx::Error) -> PersistenceError {
    match &e {
        sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("1555") | Some("2067")) => {
            PersistenceError::OptimisticLockError
        }
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => {
            PersistenceError::ConnectionError(Box::new(e))
        }
        _ => PersistenceError::UnknownError(Box::new(e)),
    }
}

impl PersistedEventRepository for SqliteAppendRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.inner.get_events::<A>(aggregate_id).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.inner
            .get_last_events::<A>(aggregate_id, last_sequence)
            .await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        self.inner.get_snapshot::<A>(aggregate_id).await
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        if snapshot_update.is_some() || events.is_empty() {
            // Snapshots are not used by tiaojie; keep sqlite-es's path for them anyway.
            return self.inner.persist::<A>(events, snapshot_update).await;
        }
        let rows = vec!["(?, ?, ?, ?, ?, ?, ?)"; events.len()].join(", ");
        let sql = format!(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) VALUES {rows}"
        );
        let mut q = sqlx::query(&sql);
        for e in events {
            let payload = serde_json::to_string(&e.payload)
                .map_err(|x| PersistenceError::UnknownError(Box::new(x)))?;
            let metadata = serde_json::to_string(&e.metadata)
                .map_err(|x| PersistenceError::UnknownError(Box::new(x)))?;
            q = q
                .bind(A::TYPE)
                .bind(e.aggregate_id.as_str())
                .bind(e.sequence as i64)
                .bind(e.event_type.as_str())
                .bind(e.event_version.as_str())
                .bind(payload)
                .bind(metadata);
        }
        q.execute(&self.pool).await.map_err(persistence)?;
        Ok(())
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        self.inner.stream_events::<A>(aggregate_id).await
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        self.inner.stream_all_events::<A>().await
    }
}
