//! Command execution over cqrs-es in event-store mode: load the aggregate from its events,
//! decide, append; on an optimistic-concurrency conflict, decide again on fresh state, a
//! bounded number of times. No in-process queries are registered: read models are fed by
//! the sequencer and the projectors, which cannot lose an update.
//!
//! Appends go through the group-commit [`append::Appender`]. Aggregates this process wrote
//! last are kept in memory with their version ([`AGGREGATE_CACHE`] of each type), so that a
//! command does not read its stream again: the append of events numbered from the cached
//! version is refused by the store's key when anything was appended meanwhile (by another
//! instance), and the command is then decided again on the stream as stored. A refusal, a
//! denial or a version mismatch found on a cached state is checked on the stored state
//! before it is answered.

pub mod append;
pub mod codec;
pub mod crypto;
pub mod db;
pub mod directory;
pub mod upcast;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::append::Appender;
use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventStore};
use cqrs_es::{Aggregate, AggregateError, EventEnvelope, EventStore};
use hashlink::LruCache;
use postgres_es::PostgresEventRepository;
use rand::Rng;
use sqlite_es::SqliteEventRepository;
use tiaojie_events::case::Case;
use tiaojie_events::group::MediationGroup;
use tiaojie_events::{CaseServices, CommunityId};
use tokio::sync::Notify;

use crate::crypto::{Keyring, SealingRepository};
use crate::db::Db;
use crate::error::{CommandError, StoreError};

/// How many times a command is decided again after losing an optimistic-concurrency race.
pub const MAX_ATTEMPTS: u32 = 25;

/// How many aggregates of each type are kept in memory with their version.
pub const AGGREGATE_CACHE: usize = 10_000;

type AggregateCache<A> = Arc<std::sync::Mutex<LruCache<String, (A, usize)>>>;

/// The outcome of a successful command.
#[derive(Debug)]
pub struct Committed<A: Aggregate> {
    /// The aggregate's version after the command (its last event's sequence).
    pub version: u64,
    pub events: Vec<EventEnvelope<A>>,
    /// How many times the command was decided again after a conflict.
    pub retries: u32,
    /// The parties the command's events name, as the registry held them when it was
    /// written (case commands only).
    pub named: Vec<append::NamedParty>,
}

/// Why the caller may not run this command on this aggregate, decided on the freshly
/// loaded state (e.g. a member acting on a case outside their group's communities).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied(pub String);

type Sealed<R> = SealingRepository<R>;

/// Runs the same code against the framework of one aggregate, whichever store holds it;
/// `$s` is bound to it (like `on_db!` for pools).
macro_rules! on_stores {
    ($stores:expr, $aggregate:ident, $s:ident => $body:expr) => {
        match $stores {
            Stores::Sqlite { $aggregate: $s, .. } => $body,
            Stores::Postgres { $aggregate: $s, .. } => $body,
        }
    };
}

enum Stores {
    Sqlite {
        case: PersistedEventStore<Sealed<SqliteEventRepository>, Case>,
        group: PersistedEventStore<Sealed<SqliteEventRepository>, MediationGroup>,
    },
    Postgres {
        case: PersistedEventStore<Sealed<PostgresEventRepository>, Case>,
        group: PersistedEventStore<Sealed<PostgresEventRepository>, MediationGroup>,
    },
}

/// The write side: both aggregates on one store.
#[derive(Clone)]
pub struct EventStores {
    inner: Arc<Stores>,
    /// Commands on one aggregate take turns within this process, so they do not race each
    /// other into optimistic-concurrency conflicts; other instances are still handled by
    /// the bounded retry.
    turns: Arc<std::sync::Mutex<HashMap<String, std::sync::Weak<tokio::sync::Mutex<()>>>>>,
    pub services: CaseServices,
    cases: AggregateCache<Case>,
    groups: AggregateCache<MediationGroup>,
    /// Signalled after every commit so the local sequencer runs at once.
    pub committed: Arc<Notify>,
    db: Db,
    /// The community of each case: fixed when it is opened, so it can be cached for good.
    communities: Arc<std::sync::Mutex<HashMap<String, CommunityId>>>,
    keys: Arc<Keyring>,
}

/// A command's error, or that the caller was denied.
#[derive(Debug)]
pub enum Outcome<E: std::error::Error> {
    Denied(Denied),
    Failed(CommandError<E>),
}

impl EventStores {
    pub fn new(db: &Db, services: CaseServices, keys: Arc<Keyring>) -> Self {
        let appender = Appender::new(db);
        let inner = match db {
            Db::Sqlite(p) => Stores::Sqlite {
                case: PersistedEventStore::new_event_store(SealingRepository::new(
                    SqliteEventRepository::new(p.clone()),
                    keys.clone(),
                    appender.clone(),
                ))
                .with_upcasters(crate::upcast::case_upcasters()),
                group: PersistedEventStore::new_event_store(SealingRepository::new(
                    SqliteEventRepository::new(p.clone()),
                    keys.clone(),
                    appender.clone(),
                ))
                .with_upcasters(crate::upcast::group_upcasters()),
            },
            Db::Postgres(p) => Stores::Postgres {
                case: PersistedEventStore::new_event_store(SealingRepository::new(
                    PostgresEventRepository::new(p.clone()),
                    keys.clone(),
                    appender.clone(),
                ))
                .with_upcasters(crate::upcast::case_upcasters()),
                group: PersistedEventStore::new_event_store(SealingRepository::new(
                    PostgresEventRepository::new(p.clone()),
                    keys.clone(),
                    appender.clone(),
                ))
                .with_upcasters(crate::upcast::group_upcasters()),
            },
        };
        Self {
            inner: Arc::new(inner),
            turns: Arc::default(),
            services,
            cases: new_cache(),
            groups: new_cache(),
            committed: Arc::new(Notify::new()),
            db: db.clone(),
            communities: Arc::default(),
            keys,
        }
    }

    /// Tells the store that a case id was just made up (a new UUID): its stream is empty,
    /// so opening it need not read it first. Should anything be stored under it after all,
    /// the append is refused by the store's key and the command decided on what is stored.
    pub fn note_new_case(&self, id: &str) {
        lock(&self.cases).insert(id.to_string(), (Case::default(), 0));
        self.keys.note_new_case(id);
    }

    /// The community a case was opened in, or None when there is no such case. A case
    /// never moves to another community, so the answer is cached.
    pub async fn case_community(&self, id: &str) -> Result<Option<CommunityId>, StoreError> {
        if let Some(c) = self
            .communities
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
        {
            return Ok(Some(c.clone()));
        }
        // A case this instance has decided on recently knows its community.
        if let Some(c) = self.kept_case(id, |case, _| case.community.clone()) {
            return Ok(Some(c));
        }
        let sql = match self.db.backend() {
            crate::db::Backend::Sqlite => "SELECT payload FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = 1",
            crate::db::Backend::Postgres => "SELECT payload::text FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = 1",
        };
        let payload: Option<String> = crate::on_db!(&self.db, p => {
            sqlx::query_scalar(sql)
                .bind(tiaojie_events::case::CASE_AGGREGATE_TYPE)
                .bind(id)
                .fetch_optional(p)
                .await?
        });
        #[derive(serde::Deserialize)]
        struct Opening {
            community: CommunityId,
        }
        let Some(community) = payload
            .and_then(|p| serde_json::from_str::<Opening>(&p).ok())
            .map(|o| o.community)
        else {
            return Ok(None);
        };
        let mut cache = self.communities.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 100_000 {
            cache.clear();
        }
        cache.insert(id.to_string(), community.clone());
        Ok(Some(community))
    }

    async fn turn(&self, id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
            if turns.len() > 10_000 {
                turns.retain(|_, w| w.strong_count() > 0);
            }
            match turns.get(id).and_then(|w| w.upgrade()) {
                Some(l) => l,
                None => {
                    let l = Arc::new(tokio::sync::Mutex::new(()));
                    turns.insert(id.to_string(), Arc::downgrade(&l));
                    l
                }
            }
        };
        lock.lock_owned().await
    }

    /// Runs a case command. `expected` is the version the client last saw (`If-Match`).
    pub async fn execute_case(
        &self,
        id: &str,
        command: <Case as Aggregate>::Command,
        metadata: HashMap<String, String>,
        expected: Option<u64>,
        authorize: impl Fn(&Case) -> Result<(), Denied> + Send + Sync,
    ) -> Result<Committed<Case>, Outcome<<Case as Aggregate>::Error>> {
        let _turn = self.turn(id).await;
        let (r, named) = append::reporting_named(async {
            on_stores!(&*self.inner, case, s => {
                execute(s, &self.services, id, command, metadata, expected, &authorize, &self.cases)
                    .await
            })
        })
        .await;
        let r = r.map(|c| Committed { named, ..c });
        if r.is_ok() {
            self.committed.notify_one();
        }
        r
    }

    pub async fn execute_group(
        &self,
        id: &str,
        command: <MediationGroup as Aggregate>::Command,
        metadata: HashMap<String, String>,
        expected: Option<u64>,
        authorize: impl Fn(&MediationGroup) -> Result<(), Denied> + Send + Sync,
    ) -> Result<Committed<MediationGroup>, Outcome<<MediationGroup as Aggregate>::Error>> {
        let _turn = self.turn(id).await;
        let r = on_stores!(&*self.inner, group, s => {
            execute(s, &self.services, id, command, metadata, expected, &authorize, &self.groups)
                .await
        });
        if r.is_ok() {
            self.committed.notify_one();
        }
        r
    }

    /// The current state of a case, straight from its events (always up to date).
    pub async fn load_case(&self, id: &str) -> Result<(Case, u64), StoreError> {
        let ctx =
            on_stores!(&*self.inner, case, s => s.load_aggregate(id).await).map_err(store_error)?;
        Ok((ctx.aggregate, ctx.current_sequence as u64))
    }

    /// What `read` finds in the case kept in memory (with its version), if one is kept.
    fn kept_case<T>(&self, id: &str, read: impl FnOnce(&Case, u64) -> Option<T>) -> Option<T> {
        lock(&self.cases)
            .peek(id)
            .and_then(|(case, v)| read(case, *v as u64))
    }

    /// A case at `version` or later: the case kept in memory when it is that recent,
    /// else the stored stream.
    pub async fn case_at_least(&self, id: &str, version: u64) -> Result<(Case, u64), StoreError> {
        match self.kept_case(id, |c, v| (v >= version.max(1)).then(|| (c.clone(), v))) {
            Some(k) => Ok(k),
            None => self.load_case(id).await,
        }
    }

    /// A case's version when it has been opened, else None: from the case kept in memory
    /// when there is one (a version another instance has passed since is still a version
    /// the case had), else from the stored stream.
    pub async fn case_opened_version(&self, id: &str) -> Result<Option<u64>, StoreError> {
        if let Some(v) = self.kept_case(id, |_, v| (v > 0).then_some(v)) {
            return Ok(Some(v));
        }
        let (case, version) = self.load_case(id).await?;
        Ok((case.status != tiaojie_events::case::CaseStatus::NotOpened).then_some(version))
    }

    /// Every event of a case, oldest first.
    pub async fn case_events(&self, id: &str) -> Result<Vec<EventEnvelope<Case>>, StoreError> {
        on_stores!(&*self.inner, case, s => s.load_events(id).await).map_err(store_error)
    }

    pub async fn load_group(&self, id: &str) -> Result<(MediationGroup, u64), StoreError> {
        let ctx = on_stores!(&*self.inner, group, s => s.load_aggregate(id).await)
            .map_err(store_error)?;
        Ok((ctx.aggregate, ctx.current_sequence as u64))
    }
}

fn store_error<E: std::error::Error>(e: AggregateError<E>) -> StoreError {
    match CommandError::from_aggregate(e) {
        CommandError::Store(s) => s,
        other => StoreError::Database(other.to_string()),
    }
}

fn new_cache<A>() -> AggregateCache<A> {
    Arc::new(std::sync::Mutex::new(LruCache::new(AGGREGATE_CACHE)))
}

fn lock<A>(cache: &AggregateCache<A>) -> std::sync::MutexGuard<'_, LruCache<String, (A, usize)>> {
    cache.lock().unwrap_or_else(|e| e.into_inner())
}

#[allow(clippy::too_many_arguments)]
async fn execute<A, ES>(
    store: &ES,
    services: &A::Services,
    id: &str,
    command: A::Command,
    metadata: HashMap<String, String>,
    expected: Option<u64>,
    authorize: &(impl Fn(&A) -> Result<(), Denied> + Send + Sync),
    cache: &AggregateCache<A>,
) -> Result<Committed<A>, Outcome<A::Error>>
where
    A: Aggregate + Clone,
    A::Command: Clone,
    ES: EventStore<A, AC = EventStoreAggregateContext<A>>,
{
    let mut attempt = 0u32;
    // Whether the state in memory may be used; after a conflict, or before answering a
    // refusal found on it, the stream is read as stored.
    let mut cached_ok = true;
    loop {
        attempt += 1;
        let cached = if cached_ok {
            lock(cache).get(id).cloned()
        } else {
            None
        };
        let from_cache = cached.is_some();
        let mut ctx = match cached {
            Some((aggregate, version)) => EventStoreAggregateContext {
                aggregate_id: id.to_string(),
                aggregate,
                current_sequence: version,
                current_snapshot: None,
            },
            None => store
                .load_aggregate(id)
                .await
                .map_err(|e| Outcome::Failed(CommandError::from_aggregate(e)))?,
        };
        let actual = ctx.current_sequence as u64;
        // Checks again on the stored stream what was refused on the state in memory.
        macro_rules! refuse {
            ($e:expr) => {{
                if from_cache {
                    cached_ok = false;
                    attempt -= 1;
                    continue;
                }
                return Err($e);
            }};
        }
        // Who may act comes first: a caller outside the aggregate's scope learns nothing
        // about it, not even its version.
        if let Err(d) = authorize(&ctx.aggregate) {
            refuse!(Outcome::Denied(d));
        }
        if let Some(expected) = expected {
            if expected != actual {
                refuse!(Outcome::Failed(CommandError::VersionMismatch {
                    expected,
                    actual,
                }));
            }
        }
        let sink = cqrs_es::event_sink::EventSink::<A>::default();
        if let Err(e) = ctx.aggregate.handle(command.clone(), services, &sink).await {
            refuse!(Outcome::Failed(CommandError::Rule(e)));
        }
        let events = sink.collect().await;
        if events.is_empty() {
            return Ok(Committed {
                version: actual,
                events: vec![],
                retries: attempt - 1,
                named: vec![],
            });
        }
        // The state after the command, kept once the append is committed.
        let mut next = ctx.aggregate.clone();
        for e in &events {
            next.apply(e.clone());
        }
        let result = store.commit(events, ctx, metadata.clone()).await;
        match result {
            Ok(committed) => {
                let version = committed
                    .last()
                    .map(|e| e.sequence as u64)
                    .unwrap_or(actual);
                lock(cache).insert(id.to_string(), (next, version as usize));
                return Ok(Committed {
                    version,
                    events: committed,
                    retries: attempt - 1,
                    named: vec![],
                });
            }
            Err(AggregateError::AggregateConflict) => {
                lock(cache).remove(id);
                cached_ok = false;
                if attempt >= MAX_ATTEMPTS {
                    return Err(Outcome::Failed(CommandError::Conflict(attempt)));
                }
                tracing::debug!(
                    aggregate = A::TYPE,
                    id,
                    attempt,
                    "optimistic-concurrency conflict, deciding again"
                );
                if from_cache {
                    // Only the state in memory was behind: decide again at once.
                    continue;
                }
                // Back off a little, with jitter, so that racing writers spread out.
                let max = 1u64 << attempt.min(6);
                let wait = rand::thread_rng().gen_range(0..=max);
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
            Err(e) => {
                lock(cache).remove(id);
                return Err(Outcome::Failed(CommandError::from_aggregate(e)));
            }
        }
    }
}
