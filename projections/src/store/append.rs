//! Group commit: the appends of concurrent commands are written together, in one
//! transaction with one commit (one flush of the write-ahead log), instead of a transaction
//! each.
//!
//! A command hands its sealed events (and, for a new case, the case's new data key) to
//! [`Appender::append`] and waits for the answer. Writer tasks take whatever is queued, up to
//! [`MAX_BATCH`] commands, and write it:
//! - PostgreSQL: one call of `tiaojie_append` (migration 0012), which writes each command in
//!   a subtransaction of its own, so that a command whose aggregate or key was written by
//!   another instance meanwhile is rolled back alone and answered [`AppendError::Conflict`];
//!   the others commit. Two writers, so that one batch fills while the other commits.
//! - SQLite: one writer (SQLite lets one in at a time) that owns the write lock for the
//!   batch. Each command's data key and events are one statement each; a statement that
//!   breaks a key constraint is undone alone, the transaction stays open.
//!
//! Nothing is acknowledged before the commit. A batch that fails for any reason other than
//! the database being out of reach is written again one command at a time, so that one bad
//! command cannot fail the others. Each aggregate's version is still checked by its
//! primary key: only a conflicting command is decided again, never the batch.

use std::sync::{Arc, OnceLock};

use cqrs_es::persist::SerializedEvent;
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::db::{Db, Tx};
use crate::error::StoreError;

/// The most commands written in one transaction (PostgreSQL keeps up to 64
/// subtransactions per transaction in its snapshots without overflowing).
pub const MAX_BATCH: usize = 60;

/// A data key created for a new aggregate, stored with its first events.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub kind: &'static str,
    pub id: String,
    pub kek_id: String,
    pub wrapped: String,
    pub created_at: String,
}

/// One command's append: its events (as stored) and the data key it needs stored with them.
#[derive(Debug, Clone)]
pub struct Append {
    pub aggregate_type: &'static str,
    pub events: Vec<SerializedEvent>,
    pub key: Option<NewKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Another writer appended to the aggregate (or stored its key) first.
    #[error("optimistic-concurrency conflict")]
    Conflict,
    #[error(transparent)]
    Failed(StoreError),
}

type Reply = oneshot::Sender<Result<(), AppendError>>;
type Queue = Arc<Mutex<mpsc::Receiver<(Append, Reply)>>>;

/// The group-commit writer of one store. Cheap to clone; the writer tasks start with the
/// first append and end when the last clone is dropped.
#[derive(Clone)]
pub struct Appender {
    db: Db,
    queue: Arc<OnceLock<mpsc::Sender<(Append, Reply)>>>,
}

impl Appender {
    pub fn new(db: &Db) -> Self {
        Self {
            db: db.clone(),
            queue: Arc::default(),
        }
    }

    fn sender(&self) -> &mpsc::Sender<(Append, Reply)> {
        self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
            let rx: Queue = Arc::new(Mutex::new(rx));
            let writers = match self.db {
                Db::Sqlite(_) => 1,
                Db::Postgres(_) => 2,
            };
            for _ in 0..writers {
                tokio::spawn(writer(self.db.clone(), rx.clone()));
            }
            tx
        })
    }

    /// Appends one command's events; answers once they are committed (or not).
    pub async fn append(&self, append: Append) -> Result<(), AppendError> {
        if append.events.is_empty() {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        self.sender().send((append, reply)).await.map_err(|_| {
            AppendError::Failed(StoreError::Unavailable("the writer stopped".into()))
        })?;
        answer.await.unwrap_or_else(|_| {
            Err(AppendError::Failed(StoreError::Unavailable(
                "the writer stopped before answering".into(),
            )))
        })
    }
}

async fn writer(db: Db, queue: Queue) {
    loop {
        let batch = {
            let mut rx = queue.lock().await;
            let Some(first) = rx.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            batch
        };
        let (appends, replies): (Vec<Append>, Vec<Reply>) = batch.into_iter().unzip();
        let results = write(&db, &appends).await;
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
}

/// Writes a batch in one transaction; one answer per append, in order.
pub async fn write(db: &Db, appends: &[Append]) -> Vec<Result<(), AppendError>> {
    match write_batch(db, appends).await {
        Ok(conflicts) => conflicts
            .into_iter()
            .map(|c| {
                if c {
                    Err(AppendError::Conflict)
                } else {
                    Ok(())
                }
            })
            .collect(),
        Err(e) if appends.len() == 1 || unreachable(&e) => {
            if appends.len() > 1 {
                tracing::warn!(error = %e, commands = appends.len(), "a group commit failed");
            }
            appends
                .iter()
                .map(|_| Err(AppendError::Failed(e.clone())))
                .collect()
        }
        Err(e) => {
            // One command may be the cause: each is written alone, so the others commit.
            tracing::warn!(error = %e, commands = appends.len(), "a group commit failed; writing its commands one at a time");
            let mut out = Vec::with_capacity(appends.len());
            for a in appends {
                out.push(match write_batch(db, std::slice::from_ref(a)).await {
                    Ok(c) if c[0] => Err(AppendError::Conflict),
                    Ok(_) => Ok(()),
                    Err(e) => Err(AppendError::Failed(e)),
                });
            }
            out
        }
    }
}

fn unreachable(e: &StoreError) -> bool {
    matches!(e, StoreError::Unavailable(_) | StoreError::Storage { .. })
}

/// Writes a batch in one transaction; answers, per append, whether it conflicted.
async fn write_batch(db: &Db, appends: &[Append]) -> Result<Vec<bool>, StoreError> {
    let mut tx = db.begin().await?;
    let conflicts = match &mut tx {
        Tx::Postgres(t) => postgres(t, appends).await?,
        Tx::Sqlite(t) => sqlite(t, appends).await?,
    };
    tx.commit().await?;
    Ok(conflicts)
}

async fn postgres(t: &mut sqlx::PgConnection, appends: &[Append]) -> Result<Vec<bool>, StoreError> {
    let n: usize = appends.iter().map(|a| a.events.len()).sum();
    let mut cmd = Vec::with_capacity(n);
    let (mut types, mut ids, mut seqs) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut event_types, mut versions, mut payloads, mut metadata) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut key_cmd, mut key_kind, mut key_id) = (vec![], vec![], vec![]);
    let (mut key_kek, mut key_wrapped, mut key_created) = (vec![], vec![], vec![]);
    for (i, a) in appends.iter().enumerate() {
        for e in &a.events {
            cmd.push(i as i32);
            types.push(a.aggregate_type);
            ids.push(e.aggregate_id.as_str());
            seqs.push(e.sequence as i64);
            event_types.push(e.event_type.as_str());
            versions.push(e.event_version.as_str());
            payloads.push(e.payload.to_string());
            metadata.push(e.metadata.to_string());
        }
        if let Some(k) = &a.key {
            key_cmd.push(i as i32);
            key_kind.push(k.kind);
            key_id.push(k.id.as_str());
            key_kek.push(k.kek_id.as_str());
            key_wrapped.push(k.wrapped.as_str());
            key_created.push(k.created_at.as_str());
        }
    }
    let conflicted: Vec<i32> = sqlx::query_scalar(
        "SELECT tiaojie_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(cmd)
    .bind(types)
    .bind(ids)
    .bind(seqs)
    .bind(event_types)
    .bind(versions)
    .bind(payloads)
    .bind(metadata)
    .bind(key_cmd)
    .bind(key_kind)
    .bind(key_id)
    .bind(key_kek)
    .bind(key_wrapped)
    .bind(key_created)
    .fetch_one(&mut *t)
    .await?;
    let mut out = vec![false; appends.len()];
    for c in conflicted {
        if let Some(slot) = out.get_mut(c as usize) {
            *slot = true;
        }
    }
    Ok(out)
}

/// A primary-key or unique clash (SQLite's extended codes): an optimistic-lock conflict.
fn is_clash(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("1555") | Some("2067")))
}

async fn sqlite(
    t: &mut sqlx::SqliteConnection,
    appends: &[Append],
) -> Result<Vec<bool>, StoreError> {
    let mut out = Vec::with_capacity(appends.len());
    for a in appends {
        // The key first: when it exists already, nothing of this command is written. A key
        // stored for a command whose events then clash is harmless: it is the key of that
        // aggregate, which had none, and the command decided again will use it.
        if let Some(k) = &a.key {
            let r = sqlx::query(
                "INSERT INTO data_keys (kind, id, kek_id, wrapped, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(k.kind)
            .bind(&k.id)
            .bind(&k.kek_id)
            .bind(&k.wrapped)
            .bind(&k.created_at)
            .execute(&mut *t)
            .await;
            match r {
                Ok(_) => {}
                Err(e) if is_clash(&e) => {
                    out.push(true);
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        // One statement, so the command's events are written whole or not at all.
        let rows = vec!["(?, ?, ?, ?, ?, ?, ?)"; a.events.len()].join(", ");
        let sql = format!(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) VALUES {rows}"
        );
        let mut q = sqlx::query(&sql);
        for e in &a.events {
            q = q
                .bind(a.aggregate_type)
                .bind(e.aggregate_id.as_str())
                .bind(e.sequence as i64)
                .bind(e.event_type.as_str())
                .bind(e.event_version.as_str())
                .bind(e.payload.to_string())
                .bind(e.metadata.to_string());
        }
        match q.execute(&mut *t).await {
            Ok(_) => out.push(false),
            Err(e) if is_clash(&e) => out.push(true),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}
