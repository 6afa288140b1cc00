//! One batch: the events applied and the checkpoint moved in one transaction.

use super::*;

/// Called between a batch's view writes and its checkpoint update; returning true makes
/// the batch fail there, as a crash would. For tests.
pub type FaultHook = Arc<dyn Fn(&str, i64) -> bool + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Applied this many events; the checkpoint is now `position`.
    Applied { count: usize, position: i64 },
    /// Another instance holds this projector's checkpoint.
    Busy,
}

/// One batch: lock the checkpoint, read the log after it, apply, move it, commit.
pub async fn run_batch(
    db: &Db,
    projector: &dyn Projector,
    checkpoint: &str,
    suffix: &str,
    limit: i64,
    upcasters: &Upcasters,
    fault: Option<&FaultHook>,
) -> Result<BatchOutcome, ProjectionError> {
    let mut tx = db.begin().await?;
    let position = match lock_checkpoint(&mut tx, checkpoint, false).await? {
        Some(p) => p,
        None => {
            tx.rollback().await?;
            return Ok(BatchOutcome::Busy);
        }
    };
    let mut events = read_log(&mut tx, position, limit, upcasters).await?;
    let mut stuck = None;
    if !projector.reads_unreadable() {
        if let Some((i, e)) = first_unreadable(&events) {
            events.truncate(i);
            stuck = Some(e);
        }
    }
    if let Err(e) = projector.apply(&mut tx, suffix, &events).await {
        // Apply what precedes the event that failed, so the checkpoint stops right
        // before it; never past it.
        let ProjectionError::Apply { position: bad, .. } = &e else {
            return Err(e);
        };
        let bad = *bad;
        tx.rollback().await?;
        tx = db.begin().await?;
        if lock_checkpoint(&mut tx, checkpoint, false).await? != Some(position) {
            tx.rollback().await?;
            return Err(e);
        }
        events.retain(|x| x.position < bad);
        projector.apply(&mut tx, suffix, &events).await?;
        stuck = Some(e);
    }
    if events.is_empty() {
        tx.rollback().await?;
        return match stuck {
            Some(e) => Err(e),
            None => Ok(BatchOutcome::Applied { count: 0, position }),
        };
    }
    let last = events.last().map(|e| e.position).unwrap_or(position);
    if let Some(f) = fault {
        if f(checkpoint, last) {
            return Err(ProjectionError::Injected(format!(
                "{checkpoint} before checkpoint {last}"
            )));
        }
    }
    set_checkpoint(&mut tx, checkpoint, last).await?;
    tx.commit().await?;
    match stuck {
        Some(e) => Err(e),
        None => Ok(BatchOutcome::Applied {
            count: events.len(),
            position: last,
        }),
    }
}

/// Locks a checkpoint row for this transaction. Without `wait`, returns None when another
/// transaction holds it (PostgreSQL); SQLite's write lock already serialises.
pub(super) async fn lock_checkpoint(
    tx: &mut Tx,
    name: &str,
    wait: bool,
) -> Result<Option<i64>, StoreError> {
    let p: Option<i64> = match tx {
        Tx::Sqlite(t) => {
            sqlx::query_scalar("SELECT position FROM projection_checkpoint WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut **t)
                .await?
        }
        Tx::Postgres(t) => {
            let sql = if wait {
                "SELECT position FROM projection_checkpoint WHERE name = $1 FOR UPDATE"
            } else {
                "SELECT position FROM projection_checkpoint WHERE name = $1 FOR UPDATE SKIP LOCKED"
            };
            let found: Option<i64> = sqlx::query_scalar(sql)
                .bind(name)
                .fetch_optional(&mut **t)
                .await?;
            if found.is_none() {
                // Either locked by another instance, or missing: tell them apart.
                let exists: Option<i64> = sqlx::query_scalar(
                    "SELECT 1::bigint FROM projection_checkpoint WHERE name = $1",
                )
                .bind(name)
                .fetch_optional(&mut **t)
                .await?;
                if exists.is_some() {
                    return Ok(None);
                }
            }
            found
        }
    };
    match p {
        Some(p) => Ok(Some(p)),
        None => Err(StoreError::Database(format!(
            "no checkpoint named {name}; run tiaojie migrate"
        ))),
    }
}

pub(super) async fn set_checkpoint(
    tx: &mut Tx,
    name: &str,
    position: i64,
) -> Result<(), StoreError> {
    let now = now_text();
    on_tx!(tx, c => {
        sqlx::query("UPDATE projection_checkpoint SET position = $2, updated_at = $3, failed_position = NULL, last_error = NULL WHERE name = $1")
            .bind(name)
            .bind(position)
            .bind(&now)
            .execute(&mut *c)
            .await?;
    });
    Ok(())
}

/// The checkpoints of several read models, locked together (one statement): `None` when
/// any of them is missing or locked by another instance, or when they are not all at the
/// same position (the caller then runs them one by one).
pub(super) async fn lock_checkpoints_together(
    tx: &mut Tx,
    names: &[&str],
) -> Result<Option<i64>, StoreError> {
    // PostgreSQL: skip rows another instance holds, so that a missing row means "locked".
    let lock = match tx {
        Tx::Sqlite(_) => "",
        Tx::Postgres(_) => " FOR UPDATE SKIP LOCKED",
    };
    let sql = format!(
        "SELECT name, position FROM projection_checkpoint WHERE name IN ({}){lock}",
        crate::db::placeholders(1, names.len())
    );
    let rows: Vec<(String, i64)> = on_tx!(tx, c => {
        let mut q = sqlx::query_as(&sql);
        for n in names {
            q = q.bind(*n);
        }
        q.fetch_all(&mut *c).await?
    });
    let first = rows.first().map(|r| r.1);
    if rows.len() != names.len() || rows.iter().any(|r| Some(r.1) != first) {
        return Ok(None);
    }
    Ok(first)
}

/// Moves several read models' checkpoints to `position` (one statement).
pub(super) async fn set_checkpoints(
    tx: &mut Tx,
    names: &[&str],
    position: i64,
) -> Result<(), StoreError> {
    let now = now_text();
    let sql = format!(
        "UPDATE projection_checkpoint SET position = $1, updated_at = $2, failed_position = NULL, last_error = NULL WHERE name IN ({})",
        crate::db::placeholders(3, names.len())
    );
    on_tx!(tx, c => {
        let mut q = sqlx::query(&sql).bind(position).bind(&now);
        for n in names {
            q = q.bind(*n);
        }
        q.execute(&mut *c).await?;
    });
    Ok(())
}

pub(super) fn now_text() -> String {
    tiaojie_events::Timestamp::from_offset(time::OffsetDateTime::now_utc()).to_canonical()
}

/// Creates a projector's live tables and checkpoint when missing.
pub async fn ensure(db: &Db, projector: &dyn Projector) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    for stmt in projector.ddl(db.backend(), "") {
        let stmt = stmt
            .replace("CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ")
            .replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ");
        on_tx!(&mut tx, c => { sqlx::query(&stmt).execute(&mut *c).await?; });
    }
    let now = now_text();
    on_tx!(&mut tx, c => {
        sqlx::query("INSERT INTO projection_checkpoint (name, position, updated_at, schema_version) VALUES ($1, 0, $2, $3) ON CONFLICT (name) DO NOTHING")
            .bind(projector.name())
            .bind(&now)
            .bind(projector.schema_version())
            .execute(&mut *c)
            .await?;
    });
    tx.commit().await
}

/// Records that a projector is stuck (or, with no error, that it no longer is), outside the
/// failed batch's transaction.
pub(super) async fn record_failure(
    db: &Db,
    name: &str,
    position: Option<i64>,
    error: Option<&str>,
) {
    let r: Result<(), sqlx::Error> = on_db!(db, p => {
        sqlx::query("UPDATE projection_checkpoint SET failed_position = $2, last_error = $3 WHERE name = $1")
            .bind(name)
            .bind(position)
            .bind(error)
            .execute(p)
            .await
            .map(|_| ())
    });
    if let Err(e) = r {
        tracing::warn!(projector = name, error = %e, "could not record the projector's failure");
    }
}

pub async fn checkpoint_of(db: &Db, name: &str) -> Result<i64, StoreError> {
    on_db!(db, p => {
        let v: Option<i64> = sqlx::query_scalar("SELECT position FROM projection_checkpoint WHERE name = $1")
            .bind(name)
            .fetch_optional(p)
            .await?;
        Ok(v.unwrap_or(0))
    })
}

pub(super) async fn min_checkpoint(
    db: &Db,
    projectors: &[Arc<dyn Projector>],
) -> Result<i64, StoreError> {
    if projectors.is_empty() {
        return Ok(0);
    }
    let names: Vec<String> = projectors.iter().map(|p| p.name().to_string()).collect();
    let sql = format!(
        "SELECT MIN(position) FROM projection_checkpoint WHERE name IN ({})",
        crate::db::placeholders(1, names.len())
    );
    on_db!(db, p => {
        let mut q = sqlx::query_scalar::<_, Option<i64>>(&sql);
        for n in &names {
            q = q.bind(n.clone());
        }
        Ok(q.fetch_one(p).await?.unwrap_or(0))
    })
}
