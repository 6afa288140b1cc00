//! The projector runtime: one checkpoint per read model, each batch of log entries applied
//! and the checkpoint moved in one transaction (an exactly-once effect, whatever crashes
//! where); woken at once after a commit, with a slow poll as a fallback; a projector that
//! cannot apply an event stops at it and says so; rebuilds go into fresh tables that are
//! swapped in at the end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use sqlx::Row;
use tiaojie_events::metadata::EventMetadata;
use tokio::sync::{watch, Notify};

use crate::db::{Backend, Db, Tx};
use crate::error::StoreError;
use crate::{codec, log};
use crate::{on_db, on_tx};

/// A log entry with its decoded event.
#[derive(Debug, Clone)]
pub struct LoggedEvent {
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub recorded_at: String,
    pub chain_hash: String,
    pub metadata: EventMetadata,
    pub body: Body,
}

pub use crate::codec::{Body, Upcasters};

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot apply the event at position {position}: {message}")]
    Apply { position: i64, message: String },
    #[error("injected fault: {0}")]
    Injected(String),
}

/// A read model fed from the log.
#[async_trait]
pub trait Projector: Send + Sync {
    /// The read model's name; also its checkpoint's name.
    fn name(&self) -> &'static str;
    /// The base names of the tables it owns.
    fn tables(&self) -> &'static [&'static str];
    /// DDL creating its tables, each named `base + suffix` (suffix empty for the live ones).
    fn ddl(&self, backend: Backend, suffix: &str) -> Vec<String>;
    /// Whether it can go on past an event this release cannot read ([`Body::Unreadable`]);
    /// otherwise the runtime stops it right before such an event.
    fn reads_unreadable(&self) -> bool {
        false
    }
    /// Applies a batch to the tables named `base + suffix`, inside `tx`.
    async fn apply(
        &self,
        tx: &mut Tx,
        suffix: &str,
        events: &[LoggedEvent],
    ) -> Result<(), ProjectionError>;
}

/// Reads log entries after `after`, with their events decoded (upcast first). An event
/// this release cannot read comes back as [`Body::Unreadable`], never as an error: which
/// read models can go on past it is theirs to say ([`Projector::reads_unreadable`]).
pub async fn read_log(
    tx: &mut Tx,
    after: i64,
    limit: i64,
    upcasters: &Upcasters,
) -> Result<Vec<LoggedEvent>, ProjectionError> {
    let sql = match tx.backend() {
        Backend::Sqlite => "SELECT l.position, l.aggregate_type, l.aggregate_id, l.sequence, l.event_type, l.recorded_at, l.chain_hash,
                e.event_version, e.payload, e.metadata
           FROM event_log l JOIN events e
             ON e.aggregate_type = l.aggregate_type AND e.aggregate_id = l.aggregate_id AND e.sequence = l.sequence
          WHERE l.position > $1 ORDER BY l.position LIMIT $2",
        Backend::Postgres => "SELECT l.position, l.aggregate_type, l.aggregate_id, l.sequence, l.event_type, l.recorded_at, l.chain_hash,
                e.event_version, e.payload::text, e.metadata::text
           FROM event_log l JOIN events e
             ON e.aggregate_type = l.aggregate_type AND e.aggregate_id = l.aggregate_id AND e.sequence = l.sequence
          WHERE l.position > $1 ORDER BY l.position LIMIT $2",
    };
    let rows: Vec<RawLogRow> = on_tx!(tx, c => {
        sqlx::query(sql)
            .bind(after)
            .bind(limit)
            .fetch_all(&mut *c)
            .await
            .map_err(StoreError::from)?
            .into_iter()
            .map(|r| {
                Ok((
                    r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?,
                    r.try_get(5)?, r.try_get(6)?, r.try_get(7)?, r.try_get(8)?, r.try_get(9)?,
                ))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(StoreError::from)?
    });
    Ok(rows.into_iter().map(|r| decode(r, upcasters)).collect())
}

type RawLogRow = (
    i64,
    String,
    String,
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
);

fn decode(row: RawLogRow, upcasters: &Upcasters) -> LoggedEvent {
    let (
        position,
        aggregate_type,
        aggregate_id,
        sequence,
        event_type,
        recorded_at,
        chain_hash,
        version,
        payload,
        metadata,
    ) = row;
    let (meta_map, meta_error) = match codec::decode_metadata(&metadata) {
        Ok(m) => (m, None),
        Err(e) => (HashMap::new(), Some(e)),
    };
    let body = match codec::decode_body(
        &aggregate_type,
        &aggregate_id,
        sequence,
        &event_type,
        &version,
        &payload,
        upcasters,
    ) {
        Ok(body) => match meta_error {
            Some(e) if !matches!(body, Body::Other) => Body::Unreadable(e),
            _ => body,
        },
        Err(e) => Body::Unreadable(e),
    };
    LoggedEvent {
        position,
        aggregate_type,
        aggregate_id,
        sequence,
        event_type,
        recorded_at,
        chain_hash,
        metadata: EventMetadata::from_map(&meta_map),
        body,
    }
}

/// The first event of a batch that a read model cannot apply because this release cannot
/// read it, as the error that stops that read model there.
pub fn first_unreadable(events: &[LoggedEvent]) -> Option<(usize, ProjectionError)> {
    events.iter().enumerate().find_map(|(i, e)| match &e.body {
        Body::Unreadable(why) => Some((
            i,
            ProjectionError::Apply {
                position: e.position,
                message: format!(
                    "this release cannot read the {} event {} #{}: {why}",
                    e.event_type, e.aggregate_id, e.sequence
                ),
            },
        )),
        _ => None,
    })
}

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
async fn lock_checkpoint(tx: &mut Tx, name: &str, wait: bool) -> Result<Option<i64>, StoreError> {
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

async fn set_checkpoint(tx: &mut Tx, name: &str, position: i64) -> Result<(), StoreError> {
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

fn now_text() -> String {
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
        sqlx::query("INSERT INTO projection_checkpoint (name, position, updated_at) VALUES ($1, 0, $2) ON CONFLICT (name) DO NOTHING")
            .bind(projector.name())
            .bind(&now)
            .execute(&mut *c)
            .await?;
    });
    tx.commit().await
}

/// Records that a projector is stuck (or, with no error, that it no longer is), outside the
/// failed batch's transaction.
async fn record_failure(db: &Db, name: &str, position: Option<i64>, error: Option<&str>) {
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

/// What a projector step asks for next.
enum Step {
    /// It did work; there may be more.
    More,
    /// Nothing to do: wait for a wake-up.
    Idle,
    /// The store failed: wait this long.
    BackOff(Duration),
    /// The read model stopped at an event it cannot apply.
    Stuck,
}

/// Health of the log and the read models, as this instance sees it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HealthReport {
    pub sequencer_error: Option<String>,
    pub projectors: Vec<ProjectorHealth>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProjectorHealth {
    pub name: String,
    pub position: i64,
    pub error: Option<String>,
}

#[derive(Default)]
pub struct Health {
    inner: Mutex<HashMap<String, (i64, Option<String>)>>,
    sequencer: Mutex<Option<String>>,
}

impl Health {
    pub fn report(&self) -> HealthReport {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut projectors: Vec<_> = inner
            .iter()
            .map(|(n, (p, e))| ProjectorHealth {
                name: n.clone(),
                position: *p,
                error: e.clone(),
            })
            .collect();
        projectors.sort_by(|a, b| a.name.cmp(&b.name));
        HealthReport {
            sequencer_error: self
                .sequencer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            projectors,
        }
    }

    pub fn healthy(&self) -> bool {
        let r = self.report();
        r.sequencer_error.is_none() && r.projectors.iter().all(|p| p.error.is_none())
    }

    fn position(&self, name: &str) -> i64 {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .map(|(p, _)| *p)
            .unwrap_or(0)
    }

    fn set(&self, name: &str, position: i64, error: Option<String>) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), (position, error));
    }

    fn set_sequencer(&self, error: Option<String>) {
        *self.sequencer.lock().unwrap_or_else(|e| e.into_inner()) = error;
    }
}

/// Runtime settings.
#[derive(Clone)]
pub struct RuntimeOptions {
    pub sequencer_batch: i64,
    pub projector_batch: i64,
    /// The fallback poll when no wake-up arrives.
    pub poll: Duration,
    /// How long a stuck projector waits before trying the same event again.
    pub retry_after: Duration,
    pub fault: Option<FaultHook>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            sequencer_batch: 2000,
            projector_batch: 2000,
            poll: Duration::from_secs(2),
            retry_after: Duration::from_secs(5),
            fault: None,
        }
    }
}

/// The running read side of one service instance.
#[derive(Clone)]
pub struct ReadSide {
    pub db: Db,
    pub projectors: Vec<Arc<dyn Projector>>,
    pub health: Arc<Health>,
    /// Signalled by the write side after every commit.
    pub committed: Arc<Notify>,
    log_appended: Arc<Notify>,
    /// The lowest checkpoint position among this instance's projectors, for read-your-writes.
    pub progress: watch::Sender<i64>,
    pub options: RuntimeOptions,
    upcasters: Arc<Upcasters>,
}

impl ReadSide {
    pub fn new(
        db: Db,
        projectors: Vec<Arc<dyn Projector>>,
        committed: Arc<Notify>,
        options: RuntimeOptions,
    ) -> Self {
        let (progress, _) = watch::channel(0);
        Self {
            db,
            projectors,
            health: Arc::new(Health::default()),
            committed,
            log_appended: Arc::new(Notify::new()),
            progress,
            options,
            upcasters: Arc::new(Upcasters::default()),
        }
    }

    /// Starts the sequencer and every projector as tasks; they stop when `shutdown` fires.
    pub fn spawn(&self, shutdown: watch::Receiver<bool>) -> Vec<tokio::task::JoinHandle<()>> {
        let mut handles = Vec::new();
        if let Db::Postgres(pool) = &self.db {
            let pool = pool.clone();
            let committed = self.committed.clone();
            let appended = self.log_appended.clone();
            let mut stop = shutdown.clone();
            handles.push(tokio::spawn(async move {
                listen(pool, committed, appended, &mut stop).await;
            }));
        }
        let me = self.clone();
        let mut stop = shutdown.clone();
        handles.push(tokio::spawn(
            async move { me.combined_loop(&mut stop).await },
        ));
        handles
    }

    /// One batch of one projector, with health, metrics and failure reporting.
    async fn project_step(&self, p: &dyn Projector) -> Step {
        let name = p.name();
        let position = self.health.position(name);
        let started = std::time::Instant::now();
        match run_batch(
            &self.db,
            p,
            name,
            "",
            self.options.projector_batch,
            &self.upcasters,
            self.options.fault.as_ref(),
        )
        .await
        {
            Ok(BatchOutcome::Applied {
                count,
                position: pos,
            }) => {
                self.health.set(name, pos, None);
                self.publish_progress();
                if count > 0 {
                    tracing::debug!(
                        projector = name,
                        count,
                        position = pos,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "projected"
                    );
                    crate::metrics::record_projector(name, pos);
                    Step::More
                } else {
                    Step::Idle
                }
            }
            Ok(BatchOutcome::Busy) => {
                // Another instance is projecting; follow its progress for readiness.
                if let Ok(pos) = checkpoint_of(&self.db, name).await {
                    self.health.set(name, pos, None);
                    self.publish_progress();
                }
                Step::Idle
            }
            Err(ProjectionError::Apply {
                position: at,
                message,
            }) => {
                let e = ProjectionError::Apply {
                    position: at,
                    message,
                };
                tracing::error!(projector = name, error = %e, position = at, "the projector stopped at an event it cannot apply; the other read models and the write side go on");
                let position = checkpoint_of(&self.db, name).await.unwrap_or(position);
                self.health.set(name, position, Some(e.to_string()));
                record_failure(&self.db, name, Some(at), Some(&e.to_string())).await;
                Step::Stuck
            }
            // Anything else (the store unreachable, a full disk, a connection lost in the
            // middle of the batch) is a fault of the machine, not of an event: retried with
            // a short back-off, and it clears by itself.
            Err(e) => {
                tracing::warn!(projector = name, error = %e, "projector step failed; retrying");
                self.health.set(name, position, Some(e.to_string()));
                Step::BackOff(Duration::from_millis(500))
            }
        }
    }

    /// The sequencer and every projector in one loop. While every read model is healthy,
    /// each cycle is one write transaction (on SQLite one lock and one fsync; on
    /// PostgreSQL a few round trips instead of dozens) that sequences what is pending and
    /// applies it to every read model, each with its own checkpoint. Should anything fail,
    /// or another instance hold a checkpoint, the cycle falls back to separate steps: the
    /// sequencer and the healthy read models go on at full speed, a read model stopped at
    /// an event it cannot apply is tried again only every `retry_after`, and store faults
    /// are retried after a short back-off.
    async fn combined_loop(&self, stop: &mut watch::Receiver<bool>) {
        for p in &self.projectors {
            let pos = checkpoint_of(&self.db, p.name()).await.unwrap_or(0);
            self.health.set(p.name(), pos, None);
            // A failure recorded before this start is tried afresh (and recorded again if
            // it still holds), so that nothing stays reported stuck that no longer is.
            record_failure(&self.db, p.name(), None, None).await;
        }
        // Read models stopped at an event, and when each is tried again.
        let mut stuck: HashMap<&'static str, tokio::time::Instant> = HashMap::new();
        loop {
            if *stop.borrow() {
                return;
            }
            let committed = self.committed.notified();
            let mut step = Step::Idle;
            let combined = if stuck.is_empty() && !self.any_unhealthy() {
                let span = tracing::info_span!("projection_cycle", events = tracing::field::Empty);
                let cycle =
                    tracing::Instrument::instrument(self.combined_cycle(), span.clone()).await;
                if let Ok(n) = &cycle {
                    span.record("events", *n);
                }
                cycle
            } else {
                Err(ProjectionError::Injected("separate steps".into()))
            };
            match combined {
                Ok(0) => {}
                Ok(_) => step = Step::More,
                Err(e) => {
                    tracing::debug!(error = %e, "running the steps separately");
                    match log::sequence_batch(&self.db, self.options.sequencer_batch).await {
                        Ok(n) => {
                            self.health.set_sequencer(None);
                            if matches!(n, log::SequenceOutcome::Appended { count, .. } if count > 0)
                            {
                                self.log_appended.notify_waiters();
                                step = Step::More;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "sequencer step failed; retrying");
                            self.health.set_sequencer(Some(e.to_string()));
                            step = Step::BackOff(Duration::from_millis(500));
                        }
                    }
                    let now = tokio::time::Instant::now();
                    for p in &self.projectors {
                        if stuck.get(p.name()).is_some_and(|at| *at > now) {
                            continue;
                        }
                        match self.project_step(p.as_ref()).await {
                            Step::Stuck => {
                                stuck.insert(p.name(), now + self.options.retry_after);
                            }
                            Step::More => {
                                stuck.remove(p.name());
                                if !matches!(step, Step::BackOff(_)) {
                                    step = Step::More;
                                }
                            }
                            Step::Idle => {
                                stuck.remove(p.name());
                            }
                            Step::BackOff(d) => step = Step::BackOff(d),
                        }
                    }
                }
            }
            match step {
                Step::More => continue,
                Step::BackOff(d) => {
                    tokio::select! {
                        _ = tokio::time::sleep(d) => {}
                        _ = stop.changed() => return,
                    }
                    continue;
                }
                Step::Idle | Step::Stuck => {}
            }
            let next_retry = stuck.values().min().copied();
            let poll = tokio::time::Instant::now() + self.options.poll;
            let wake = next_retry.map_or(poll, |r| r.min(poll));
            tokio::select! {
                _ = committed => {}
                _ = tokio::time::sleep_until(wake) => {}
                _ = stop.changed() => return,
            }
        }
    }

    fn any_unhealthy(&self) -> bool {
        self.health
            .report()
            .projectors
            .iter()
            .any(|p| p.error.is_some())
    }

    /// Sequences and projects in one transaction; answers how much it did.
    async fn combined_cycle(&self) -> Result<usize, ProjectionError> {
        if self.options.fault.is_some() {
            return Err(ProjectionError::Injected("separate steps requested".into()));
        }
        let mut tx = self.db.begin().await?;
        let (sequenced, _) = log::sequence_in(&mut tx, self.options.sequencer_batch)
            .await?
            .unwrap_or((0, 0));
        let mut from: Option<i64> = None;
        for p in &self.projectors {
            let cp = lock_checkpoint(&mut tx, p.name(), false).await?;
            match (from, cp) {
                (None, Some(c)) => from = Some(c),
                (Some(f), Some(c)) if f == c => {}
                _ => {
                    tx.rollback().await?;
                    return Err(ProjectionError::Injected("checkpoints differ".into()));
                }
            }
        }
        let from = from.unwrap_or(0);
        let events = read_log(&mut tx, from, self.options.projector_batch, &self.upcasters).await?;
        if first_unreadable(&events).is_some()
            && self.projectors.iter().any(|p| !p.reads_unreadable())
        {
            tx.rollback().await?;
            return Err(ProjectionError::Injected(
                "an event this release cannot read".into(),
            ));
        }
        for p in &self.projectors {
            p.apply(&mut tx, "", &events).await?;
        }
        let last = events.last().map(|e| e.position);
        if let Some(last) = last {
            for p in &self.projectors {
                set_checkpoint(&mut tx, p.name(), last).await?;
            }
        }
        if sequenced == 0 && events.is_empty() {
            tx.rollback().await?;
            return Ok(0);
        }
        tx.commit().await?;
        self.health.set_sequencer(None);
        if sequenced > 0 {
            crate::metrics::SEQUENCED
                .fetch_add(sequenced as u64, std::sync::atomic::Ordering::Relaxed);
        }
        if let Some(last) = last {
            crate::metrics::LOG_HEAD.store(last, std::sync::atomic::Ordering::Relaxed);
            for p in &self.projectors {
                self.health.set(p.name(), last, None);
                crate::metrics::record_projector(p.name(), last);
            }
            self.publish_progress();
        }
        self.log_appended.notify_waiters();
        Ok(sequenced + events.len())
    }

    fn publish_progress(&self) {
        let report = self.health.report();
        if report.projectors.len() == self.projectors.len() {
            let min = report
                .projectors
                .iter()
                .map(|p| p.position)
                .min()
                .unwrap_or(0);
            self.progress.send_if_modified(|v| {
                if *v != min {
                    *v = min;
                    true
                } else {
                    false
                }
            });
        }
    }

    /// The log position every read model includes, as stored (whichever instance ran them).
    pub async fn position(&self) -> Result<i64, StoreError> {
        min_checkpoint(&self.db, &self.projectors).await
    }

    /// Waits until every read model includes the given log position, or the timeout.
    pub async fn wait_for_position(&self, position: i64, timeout: Duration) -> bool {
        let mut rx = self.progress.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        // This instance's progress arrives through the watch channel; another instance's
        // only through the checkpoints, which are looked at less often.
        let mut next_look = tokio::time::Instant::now();
        loop {
            if *rx.borrow_and_update() >= position {
                return true;
            }
            let now = tokio::time::Instant::now();
            if now >= next_look {
                if let Ok(min) = min_checkpoint(&self.db, &self.projectors).await {
                    if min >= position {
                        return true;
                    }
                }
                next_look = now + Duration::from_millis(100);
            }
            tokio::select! {
                _ = rx.changed() => {}
                _ = tokio::time::sleep_until(next_look.min(deadline)) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return *rx.borrow() >= position;
            }
        }
    }

    /// Runs the sequencer and every projector until they have caught up with all events
    /// stored so far. For tools and tests; the service runs them as tasks instead.
    pub async fn catch_up(&self) -> Result<i64, ProjectionError> {
        // On PostgreSQL the sequencer waits behind transactions still open anywhere in the
        // cluster; keep going until every stored event is in the log.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let head = loop {
            let head = log::sequence_all(&self.db, self.options.sequencer_batch).await?;
            let (_, pending) = log::events_pending(&self.db).await?;
            if pending == 0 || std::time::Instant::now() > deadline {
                break head;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        for p in &self.projectors {
            loop {
                match run_batch(
                    &self.db,
                    p.as_ref(),
                    p.name(),
                    "",
                    self.options.projector_batch,
                    &self.upcasters,
                    self.options.fault.as_ref(),
                )
                .await?
                {
                    BatchOutcome::Applied { count: 0, .. } => break,
                    BatchOutcome::Applied { .. } => continue,
                    BatchOutcome::Busy => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        }
        Ok(head)
    }
}

async fn listen(
    pool: sqlx::PgPool,
    committed: Arc<Notify>,
    appended: Arc<Notify>,
    stop: &mut watch::Receiver<bool>,
) {
    loop {
        let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot LISTEN; relying on polling for now");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                    _ = stop.changed() => return,
                }
            }
        };
        if let Err(e) = listener.listen_all(["tiaojie_events", "tiaojie_log"]).await {
            tracing::warn!(error = %e, "LISTEN failed");
            tokio::time::sleep(Duration::from_secs(2)).await;
            continue;
        }
        loop {
            tokio::select! {
                n = listener.try_recv() => match n {
                    Ok(Some(n)) => {
                        if n.channel() == "tiaojie_events" {
                            committed.notify_one();
                        } else {
                            appended.notify_waiters();
                        }
                    }
                    // The connection was lost and will be re-established; wake everyone in
                    // case a notification was missed meanwhile.
                    Ok(None) => {
                        committed.notify_one();
                        appended.notify_waiters();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "LISTEN connection failed");
                        break;
                    }
                },
                _ = stop.changed() => return,
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
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

async fn min_checkpoint(db: &Db, projectors: &[Arc<dyn Projector>]) -> Result<i64, StoreError> {
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

/// One line of `tiaojie projections status`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct ProjectionStatus {
    pub name: String,
    pub position: i64,
    pub log_head: i64,
    pub lag: i64,
    pub updated_at: String,
    pub failed_position: Option<i64>,
    pub last_error: Option<String>,
}

pub async fn status(
    db: &Db,
    projectors: &[Arc<dyn Projector>],
) -> Result<(i64, i64, Vec<ProjectionStatus>), StoreError> {
    let (head, _) = log::log_head(db).await?;
    let (_, unsequenced) = log::events_pending(db).await?;
    let mut out = Vec::new();
    for p in projectors {
        let row: Option<(i64, String, Option<i64>, Option<String>)> = on_db!(db, pool => {
            sqlx::query("SELECT position, updated_at, failed_position, last_error FROM projection_checkpoint WHERE name = $1")
                .bind(p.name())
                .fetch_optional(pool)
                .await?
                .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
                .transpose()?
        });
        let (position, updated_at, failed_position, last_error) =
            row.unwrap_or((0, String::new(), None, None));
        out.push(ProjectionStatus {
            name: p.name().to_string(),
            position,
            log_head: head,
            lag: head - position,
            updated_at,
            failed_position,
            last_error,
        });
    }
    Ok((head, unsequenced, out))
}

/// What a rebuild did.
#[derive(Debug, Clone, Serialize)]
pub struct RebuildReport {
    pub name: String,
    pub events: i64,
    pub position: i64,
    pub seconds: f64,
    pub events_per_second: f64,
}

/// Builds a read model afresh from position 0 into new tables, then swaps them in. The
/// live tables keep serving reads (and the live projector keeps running) until the swap,
/// which happens in one transaction holding the live checkpoint.
pub async fn rebuild(
    db: &Db,
    projector: &dyn Projector,
    batch: i64,
) -> Result<RebuildReport, ProjectionError> {
    rebuild_many(db, &[projector], batch).await
}

/// Rebuilds several read models in one pass over the log. A reader task fetches and
/// decodes the next batch on its own connection while the current one is applied, so
/// reading and writing overlap. Indexes are built once, after the bulk load.
pub async fn rebuild_many(
    db: &Db,
    projectors: &[&dyn Projector],
    batch: i64,
) -> Result<RebuildReport, ProjectionError> {
    let started = std::time::Instant::now();
    let suffix = format!(
        "__rb{}",
        time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000
    );
    let checkpoints: Vec<String> = projectors
        .iter()
        .map(|p| format!("{}{suffix}", p.name()))
        .collect();
    for p in projectors {
        drop_leftovers(db, *p).await?;
    }
    {
        let mut tx = db.begin().await?;
        for p in projectors {
            for stmt in p
                .ddl(db.backend(), &suffix)
                .iter()
                .filter(|s| !s.starts_with("CREATE INDEX"))
            {
                on_tx!(&mut tx, c => { sqlx::query(stmt).execute(&mut *c).await.map_err(StoreError::from)?; });
            }
        }
        let now = now_text();
        for cp in &checkpoints {
            on_tx!(&mut tx, c => {
                sqlx::query("INSERT INTO projection_checkpoint (name, position, updated_at) VALUES ($1, 0, $2)")
                    .bind(cp)
                    .bind(&now)
                    .execute(&mut *c)
                    .await
                    .map_err(StoreError::from)?;
            });
        }
        tx.commit().await?;
    }
    let (head, _) = log::log_head(db).await?;
    // Reader: decoded batches up to the head as it stood when the rebuild began.
    let (send, mut recv) =
        tokio::sync::mpsc::channel::<Result<Vec<LoggedEvent>, ProjectionError>>(2);
    let reader = {
        let db = db.clone();
        tokio::spawn(async move {
            let upcasters = Upcasters::default();
            let mut after = 0i64;
            while after < head {
                let result = async {
                    let mut tx = db.begin_read().await?;
                    let events =
                        read_log(&mut tx, after, batch.min(head - after), &upcasters).await?;
                    tx.rollback().await?;
                    Ok::<_, ProjectionError>(events)
                }
                .await;
                let stop = match &result {
                    Ok(events) if events.is_empty() => true,
                    Ok(events) => {
                        after = events.last().map(|e| e.position).unwrap_or(head);
                        false
                    }
                    Err(_) => true,
                };
                if send.send(result).await.is_err() || stop {
                    return;
                }
            }
        })
    };
    let mut events = 0i64;
    while let Some(batch_events) = recv.recv().await {
        let batch_events = batch_events?;
        if batch_events.is_empty() {
            break;
        }
        refuse_unreadable(projectors, &batch_events)?;
        let last = batch_events.last().map(|e| e.position).unwrap_or(0);
        let mut tx = db.begin().await?;
        for p in projectors {
            p.apply(&mut tx, &suffix, &batch_events).await?;
        }
        for cp in &checkpoints {
            set_checkpoint(&mut tx, cp, last).await?;
        }
        tx.commit().await?;
        events += batch_events.len() as i64;
    }
    let _ = reader.await;
    {
        let mut tx = db.begin().await?;
        for p in projectors {
            for stmt in p
                .ddl(db.backend(), &suffix)
                .iter()
                .filter(|s| s.starts_with("CREATE INDEX"))
            {
                on_tx!(&mut tx, c => { sqlx::query(stmt).execute(&mut *c).await.map_err(StoreError::from)?; });
            }
        }
        tx.commit().await?;
    }
    // The swap: hold the live checkpoints, catch up the last few events, exchange tables.
    let upcasters = Upcasters::default();
    let mut tx = db.begin().await?;
    for p in projectors {
        if lock_checkpoint(&mut tx, p.name(), true).await?.is_none() {
            return Err(
                StoreError::Database(format!("checkpoint {} disappeared", p.name())).into(),
            );
        }
    }
    let mut position = lock_checkpoint(&mut tx, &checkpoints[0], true)
        .await?
        .unwrap_or(0);
    loop {
        let more = read_log(&mut tx, position, batch, &upcasters).await?;
        if more.is_empty() {
            break;
        }
        refuse_unreadable(projectors, &more)?;
        for p in projectors {
            p.apply(&mut tx, &suffix, &more).await?;
        }
        events += more.len() as i64;
        position = more.last().map(|e| e.position).unwrap_or(position);
    }
    for p in projectors {
        for base in p.tables() {
            let stmts = [
                format!("DROP TABLE {base}"),
                format!("ALTER TABLE {base}{suffix} RENAME TO {base}"),
            ];
            for stmt in stmts {
                on_tx!(&mut tx, c => { sqlx::query(&stmt).execute(&mut *c).await.map_err(StoreError::from)?; });
            }
        }
        set_checkpoint(&mut tx, p.name(), position).await?;
    }
    for cp in &checkpoints {
        on_tx!(&mut tx, c => {
            sqlx::query("DELETE FROM projection_checkpoint WHERE name = $1").bind(cp).execute(&mut *c).await.map_err(StoreError::from)?;
        });
    }
    tx.commit().await?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(RebuildReport {
        name: projectors
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join("+"),
        events,
        position,
        seconds,
        events_per_second: if seconds > 0.0 {
            events as f64 / seconds
        } else {
            0.0
        },
    })
}

/// A rebuild cannot go past an event a read model cannot read: it stops there and says
/// where and why (the live tables keep serving).
fn refuse_unreadable(
    projectors: &[&dyn Projector],
    events: &[LoggedEvent],
) -> Result<(), ProjectionError> {
    match first_unreadable(events) {
        Some((_, e)) if projectors.iter().any(|p| !p.reads_unreadable()) => Err(e),
        _ => Ok(()),
    }
}

/// Removes the tables and checkpoint of a rebuild that was interrupted.
async fn drop_leftovers(db: &Db, projector: &dyn Projector) -> Result<(), StoreError> {
    let tables: Vec<String> = on_db!(db, p => {
        let sql = match db.backend() {
            Backend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE $1",
            Backend::Postgres => "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE $1",
        };
        let mut all = Vec::new();
        for base in projector.tables() {
            let pattern = format!("{base}\\_\\_rb%");
            let pattern = if db.backend() == Backend::Sqlite { format!("{base}__rb%") } else { pattern };
            let found: Vec<String> = sqlx::query_scalar(sql).bind(pattern).fetch_all(p).await?;
            all.extend(found);
        }
        all
    });
    let mut tx = db.begin().await?;
    for t in tables {
        on_tx!(&mut tx, c => { sqlx::query(&format!("DROP TABLE IF EXISTS {t}")).execute(&mut *c).await?; });
    }
    let pattern = format!("{}__rb%", projector.name());
    on_tx!(&mut tx, c => {
        sqlx::query("DELETE FROM projection_checkpoint WHERE name LIKE $1").bind(pattern).execute(&mut *c).await?;
    });
    tx.commit().await
}
