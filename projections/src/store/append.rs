//! Group commit: the appends of concurrent commands are written together, in one
//! transaction with one commit (one flush of the write-ahead log), instead of a transaction
//! each.
//!
//! A command hands its sealed events (and, for a new case, the case's new data key) to
//! [`Appender::append`] and waits for the answer. Writer tasks take whatever is queued, up to
//! [`MAX_BATCH`] commands, and write it:
//! - PostgreSQL: one call of `tiaojie_append_named` (migrations 0012 and 0013), which
//!   writes each command in a subtransaction of its own, so that a command whose aggregate
//!   or key was written by another instance meanwhile is rolled back alone and answered
//!   [`AppendError::Conflict`]; the others commit. Two writers, so that one batch fills while the other commits.
//! - SQLite: one writer (SQLite lets one in at a time) that owns the write lock for the
//!   batch. Each command's data key and events are one statement each; a statement that
//!   breaks a key constraint is undone alone, the transaction stays open.
//!
//! The parties a command's events name (a case opened with parties, a party added) are
//! checked against the registry in the same transaction: a command that names a party
//! not registered, or one whose data was erased, is answered [`AppendError::Party`] and
//! nothing of it is written. The answer of a written command carries what its warnings
//! need of each party it names ([`NamedParty`]), so that naming parties costs no round
//! trip of its own.
//!
//! Nothing is acknowledged before the commit. A batch that fails for any reason other than
//! the database being out of reach is written again one command at a time, so that one bad
//! command cannot fail the others. Each aggregate's version is still checked by its
//! primary key: only a conflicting command is decided again, never the batch.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use cqrs_es::persist::SerializedEvent;
use serde_json::Value;
use sqlx::pool::PoolConnection;
use sqlx::{Acquire, PgPool, Postgres};
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

/// One command's append: its events (as stored), the data key it needs stored with them,
/// and the parties its events name, which must be registered and not erased.
#[derive(Debug, Clone)]
pub struct Append {
    pub aggregate_type: &'static str,
    pub events: Vec<SerializedEvent>,
    pub key: Option<NewKey>,
    pub parties: Vec<String>,
}

/// A party a written command names, as the registry held it when the command was written:
/// what the command's warnings need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedParty {
    pub party_id: String,
    /// Obstruction incidents in all communities (the repeat-obstructor count).
    pub incidents: i64,
    /// The sealed record, opened only to name a repeat obstructor in a warning.
    pub sealed: String,
}

/// Why a command may not name a party; nothing of the command was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", if *.erased { format!("party {party_id}'s data was erased") } else { format!("party {party_id} is not registered") })]
pub struct PartyUnusable {
    pub party_id: String,
    pub erased: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Another writer appended to the aggregate (or stored its key) first.
    #[error("optimistic-concurrency conflict")]
    Conflict,
    #[error(transparent)]
    Party(PartyUnusable),
    #[error(transparent)]
    Failed(StoreError),
}

tokio::task_local! {
    /// Where a command's append leaves the parties it names ([`reporting_named`]): cqrs-es
    /// stands between the command and its append, and answers only the events.
    static NAMED: std::cell::RefCell<Vec<NamedParty>>;
}

/// Runs a command, and answers with its outcome the parties its append named (none when
/// nothing was written).
pub async fn reporting_named<T>(
    command: impl std::future::Future<Output = T>,
) -> (T, Vec<NamedParty>) {
    NAMED
        .scope(std::cell::RefCell::new(vec![]), async move {
            let out = command.await;
            (out, NAMED.with(|n| n.take()))
        })
        .await
}

/// Leaves the parties a written command names for [`reporting_named`], when the command
/// runs under it.
pub(crate) fn report_named(named: Vec<NamedParty>) {
    let _ = NAMED.try_with(|n| *n.borrow_mut() = named);
}

/// The party ids that events of a case name and that must be registered: the parties a
/// case is opened with, and a party added.
pub fn parties_named(events: &[SerializedEvent]) -> Vec<String> {
    let mut out = Vec::new();
    for e in events {
        let ids: Vec<&Value> = match e.event_type.as_str() {
            "CaseOpened" => e
                .payload
                .get("parties")
                .and_then(Value::as_array)
                .map(|ps| ps.iter().filter_map(|p| p.get("party_id")).collect())
                .unwrap_or_default(),
            "PartyAdded" => e.payload.pointer("/party/party_id").into_iter().collect(),
            _ => vec![],
        };
        for id in ids.into_iter().filter_map(Value::as_str) {
            if !out.iter().any(|o| o == id) {
                out.push(id.to_string());
            }
        }
    }
    out
}

/// What a written command answers: the parties it names.
pub type Written = Result<Vec<NamedParty>, AppendError>;

type Reply = oneshot::Sender<Written>;
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

    /// Appends one command's events; answers once they are committed (or not), with the
    /// parties the command names.
    pub async fn append(&self, append: Append) -> Written {
        if append.events.is_empty() {
            return Ok(vec![]);
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
    let mut held = Held::default();
    loop {
        let batch = {
            let mut rx = held.waiting(queue.lock()).await;
            let Some(first) = held.waiting(rx.recv()).await else {
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
        let results = write_on(&db, &mut held, &appends).await;
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
}

/// A writer's own PostgreSQL connection, kept between batches while batches keep coming:
/// sqlx tests every connection given back to its pool with a round trip, which would be
/// one more per batch. A writer that waits longer than [`HOLD_IDLE`] for work gives its
/// connection back, so that closing the pool (at shutdown) never waits on a writer, and
/// a connection that failed is given back too (the pool closes it when it is broken).
#[derive(Default)]
struct Held {
    conn: Option<PoolConnection<Postgres>>,
}

/// How long a writer waiting for work keeps its connection.
const HOLD_IDLE: Duration = Duration::from_millis(200);

impl Held {
    async fn take(&mut self, pool: &PgPool) -> Result<PoolConnection<Postgres>, StoreError> {
        match self.conn.take() {
            Some(conn) => Ok(conn),
            None => Ok(pool.acquire().await?),
        }
    }

    fn keep(&mut self, conn: PoolConnection<Postgres>) {
        self.conn = Some(conn);
    }

    /// Waits for `work`, giving the connection back once that takes [`HOLD_IDLE`].
    async fn waiting<F: std::future::Future>(&mut self, work: F) -> F::Output {
        tokio::pin!(work);
        if self.conn.is_some() {
            tokio::select! {
                out = &mut work => return out,
                _ = tokio::time::sleep(HOLD_IDLE) => self.conn = None,
            }
        }
        work.await
    }
}

/// Writes a batch in one transaction; one answer per append, in order.
pub async fn write(db: &Db, appends: &[Append]) -> Vec<Written> {
    write_on(db, &mut Held::default(), appends).await
}

async fn write_on(db: &Db, held: &mut Held, appends: &[Append]) -> Vec<Written> {
    match write_batch(db, held, appends).await {
        Ok(answers) => answers,
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
                out.push(match write_batch(db, held, std::slice::from_ref(a)).await {
                    Ok(mut answers) => answers.pop().unwrap_or_else(|| {
                        Err(AppendError::Failed(StoreError::Database(
                            "the store answered nothing for a command".into(),
                        )))
                    }),
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

/// Writes a batch in one transaction; answers each append.
async fn write_batch(
    db: &Db,
    held: &mut Held,
    appends: &[Append],
) -> Result<Vec<Written>, StoreError> {
    match db {
        Db::Postgres(pool) => {
            let mut conn = held.take(pool).await?;
            let written = async {
                let mut t = conn.begin().await?;
                let conflicts = postgres(&mut t, appends).await?;
                t.commit().await?;
                Ok::<_, StoreError>(conflicts)
            }
            .await;
            if written.is_ok() {
                held.keep(conn);
            }
            written
        }
        Db::Sqlite(_) => {
            let mut tx = db.begin().await?;
            let conflicts = match &mut tx {
                Tx::Sqlite(t) => sqlite(t, appends).await?,
                Tx::Postgres(t) => postgres(t, appends).await?,
            };
            tx.commit().await?;
            Ok(conflicts)
        }
    }
}

async fn postgres(
    t: &mut sqlx::PgConnection,
    appends: &[Append],
) -> Result<Vec<Written>, StoreError> {
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
    let (mut party_cmd, mut party_id) = (vec![], vec![]);
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
        for p in &a.parties {
            party_cmd.push(i as i32);
            party_id.push(p.as_str());
        }
    }
    let rows: Vec<AnswerRow> = sqlx::query_as(
        "SELECT cmd, outcome, party, incidents, sealed FROM tiaojie_append_named($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
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
    .bind(party_cmd)
    .bind(party_id)
    .fetch_all(&mut *t)
    .await?;
    let mut out: Vec<Written> = appends.iter().map(|_| Ok(vec![])).collect();
    for (c, outcome, party, incidents, sealed) in rows {
        let Some(slot) = out.get_mut(c as usize) else {
            continue;
        };
        let party = party.unwrap_or_default();
        match outcome.as_str() {
            "conflict" => *slot = Err(AppendError::Conflict),
            "unregistered" | "erased" => {
                *slot = Err(AppendError::Party(PartyUnusable {
                    party_id: party,
                    erased: outcome == "erased",
                }))
            }
            _ => {
                if let Ok(named) = slot {
                    named.push(NamedParty {
                        party_id: party,
                        incidents: incidents.unwrap_or(0),
                        sealed: sealed.unwrap_or_default(),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// A row of `tiaojie_append_named`: command, outcome, party, incidents, sealed record.
type AnswerRow = (i32, String, Option<String>, Option<i64>, Option<String>);

/// A party as the registry holds it: whether its data was erased, its incidents in all
/// communities, its sealed record.
type RegistryRow = (bool, i64, String);

/// The parties a batch names, as the registry holds them (those not registered are
/// absent): one statement for the whole batch, inside the writer's transaction.
async fn sqlite_registry(
    t: &mut sqlx::SqliteConnection,
    appends: &[Append],
) -> Result<std::collections::HashMap<String, RegistryRow>, StoreError> {
    let mut ids: Vec<&str> = appends
        .iter()
        .flat_map(|a| a.parties.iter().map(String::as_str))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut found = std::collections::HashMap::with_capacity(ids.len());
    // SQLite takes at most 32,766 parameters in a statement.
    for chunk in ids.chunks(10_000) {
        let sql = format!(
            "SELECT p.party_id, p.erased_at IS NOT NULL, COALESCE(t.incidents, 0), p.sealed
               FROM parties p LEFT JOIN {} t ON t.party_id = p.party_id
              WHERE p.party_id IN ({})",
            crate::models::heat::TOTALS,
            crate::db::placeholders(1, chunk.len())
        );
        let mut q = sqlx::query_as::<_, (String, bool, i64, String)>(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for (id, erased, n, sealed) in q.fetch_all(&mut *t).await? {
            found.insert(id, (erased, n, sealed));
        }
    }
    Ok(found)
}

/// The parties a command names, in the order it names them; or the first it may not name.
fn named_in(
    registry: &std::collections::HashMap<String, RegistryRow>,
    parties: &[String],
) -> Result<Vec<NamedParty>, PartyUnusable> {
    parties
        .iter()
        .map(|p| match registry.get(p) {
            Some((false, n, sealed)) => Ok(NamedParty {
                party_id: p.clone(),
                incidents: *n,
                sealed: sealed.clone(),
            }),
            found => Err(PartyUnusable {
                party_id: p.clone(),
                erased: found.is_some(),
            }),
        })
        .collect()
}

/// A primary-key or unique clash (SQLite's extended codes): an optimistic-lock conflict.
fn is_clash(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("1555") | Some("2067")))
}

async fn sqlite(
    t: &mut sqlx::SqliteConnection,
    appends: &[Append],
) -> Result<Vec<Written>, StoreError> {
    let registry = sqlite_registry(t, appends).await?;
    let mut out = Vec::with_capacity(appends.len());
    for a in appends {
        // The parties first: a command that may not name one writes nothing.
        let named = match named_in(&registry, &a.parties) {
            Ok(named) => named,
            Err(p) => {
                out.push(Err(AppendError::Party(p)));
                continue;
            }
        };
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
                    out.push(Err(AppendError::Conflict));
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
            Ok(_) => out.push(Ok(named)),
            Err(e) if is_clash(&e) => out.push(Err(AppendError::Conflict)),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn golden(json: &str) -> SerializedEvent {
        let v: Value = serde_json::from_str(json).unwrap();
        SerializedEvent {
            aggregate_id: "c".into(),
            sequence: 1,
            aggregate_type: "Case".into(),
            event_type: v["event_type"].as_str().unwrap().into(),
            event_version: v["event_version"].as_str().unwrap().into(),
            payload: v["payload"].clone(),
            metadata: Value::Null,
        }
    }

    // The events' pinned forms name their parties where the store looks for them.
    #[test]
    fn the_parties_named_are_found_in_the_pinned_forms_of_the_events() {
        let opened = golden(include_str!(
            "../../../events/golden/case/CaseOpened.v1.json"
        ));
        let added = golden(include_str!(
            "../../../events/golden/case/PartyAdded.v1.json"
        ));
        let note = golden(include_str!(
            "../../../events/golden/case/NoteAdded.v1.json"
        ));
        let id = "01900000-0000-7000-8000-000000000001";
        assert_eq!(parties_named(std::slice::from_ref(&opened)), vec![id]);
        assert_eq!(parties_named(std::slice::from_ref(&added)), vec![id]);
        assert_eq!(parties_named(&[note]), Vec::<String>::new());
        assert_eq!(parties_named(&[opened, added]), vec![id], "each once");
    }
}
