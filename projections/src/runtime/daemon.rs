//! The read side's daemon: each projector woken after a commit (a slow poll as a
//! fallback), its health, and stopping at an event it cannot apply.

use super::*;
use std::sync::atomic::{AtomicI64, Ordering};

/// What a projector step asks for next.
pub(super) enum Step {
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

/// The read side's own runtime. Dropped unused (its thread could not be started), it is
/// shut down without waiting: a runtime may not be dropped inside another's tasks.
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl OwnRuntime {
    fn block_on<F: std::future::Future>(&self, f: F) -> Option<F::Output> {
        self.0.as_ref().map(|rt| rt.block_on(f))
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
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
    /// The highest log position announced through `log_appended`, so that this
    /// instance's own commit and its notification echoed back over LISTEN wake the
    /// waiters once.
    log_announced: Arc<AtomicI64>,
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
            log_announced: Arc::new(AtomicI64::new(0)),
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
            let announced = self.log_announced.clone();
            let mut stop = shutdown.clone();
            handles.push(tokio::spawn(async move {
                listen(pool, committed, appended, announced, &mut stop).await;
            }));
        }
        // On PostgreSQL the cycle runs on a thread and runtime of its own, with connections
        // of its own. On the service's runtime, each of its dozen round trips waited behind
        // every request ready to run, so that under load a cycle took three times its
        // database time, and read-your-writes waited for it. SQLite's statements already
        // run on threads of their own, and its cycle stays on the service's runtime.
        let Db::Postgres(pool) = &self.db else {
            handles.push(self.spawn_cycle_here(shutdown));
            return handles;
        };
        let pool = pool.clone();
        let mut me = self.clone();
        let mut stop = shutdown.clone();
        let (done, finished) = tokio::sync::oneshot::channel::<()>();
        let started = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|rt| OwnRuntime(Some(rt)))
            .and_then(|rt| {
                std::thread::Builder::new()
                    .name("tiaojie-read-side".into())
                    .spawn(move || {
                        rt.block_on(async move {
                            // Opened here, so that its connections answer on this runtime.
                            let own = crate::db::companion(&pool, 2);
                            me.db = Db::Postgres(own.clone());
                            me.combined_loop(&mut stop).await;
                            own.close().await;
                        });
                        let _ = done.send(());
                    })
            });
        match started {
            Ok(_) => handles.push(tokio::spawn(async move {
                let _ = finished.await;
            })),
            Err(e) => {
                tracing::warn!(error = %e, "the read side runs on the service's runtime");
                handles.push(self.spawn_cycle_here(shutdown));
            }
        }
        handles
    }

    /// The cycle as a task of the service's runtime.
    fn spawn_cycle_here(&self, shutdown: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        let mut stop = shutdown;
        tokio::spawn(async move { me.combined_loop(&mut stop).await })
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
        let started = std::time::Instant::now();
        let mut tx = self.db.begin().await?;
        let mut handed = Vec::new();
        let (sequenced, head) =
            log::sequence_handing(&mut tx, self.options.sequencer_batch, Some(&mut handed))
                .await?
                .unwrap_or((0, 0));
        let names: Vec<&str> = self.projectors.iter().map(|p| p.name()).collect();
        let Some(from) = lock_checkpoints_together(&mut tx, &names).await? else {
            tx.rollback().await?;
            return Err(ProjectionError::Injected("checkpoints differ".into()));
        };
        // When the read models stand right before what was just appended, that is what
        // the log holds after them: projected as handed over, not read back.
        let events = if handed.first().is_some_and(|r| r.0 == from + 1) {
            handed.truncate(self.options.projector_batch.max(1) as usize);
            handed
                .into_iter()
                .map(|r| super::reader::decode(r, &self.upcasters))
                .collect()
        } else {
            read_log(&mut tx, from, self.options.projector_batch, &self.upcasters).await?
        };
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
            set_checkpoints(&mut tx, &names, last).await?;
        }
        if sequenced == 0 && events.is_empty() {
            tx.rollback().await?;
            return Ok(0);
        }
        tx.commit().await?;
        crate::metrics::CYCLES.fetch_add(1, Ordering::Relaxed);
        crate::metrics::CYCLE_MICROS
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
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
        if sequenced > 0 {
            announce(&self.log_appended, &self.log_announced, Some(head));
        }
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

    /// Fires whenever the global log grows: after this instance's read-side commits, and
    /// when another instance's sequencer announces new positions. A waiter takes its
    /// `notified()` before it looks, so that no growth between the look and the wait is
    /// missed.
    pub fn log_appended(&self) -> Arc<Notify> {
        self.log_appended.clone()
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

/// Wakes those waiting for the log to grow, unless `position` was announced already;
/// without a position, always.
fn announce(appended: &Notify, announced: &AtomicI64, position: Option<i64>) {
    match position {
        Some(p) if announced.fetch_max(p, Ordering::SeqCst) >= p => {}
        _ => appended.notify_waiters(),
    }
}

pub(super) async fn listen(
    pool: sqlx::PgPool,
    committed: Arc<Notify>,
    appended: Arc<Notify>,
    announced: Arc<AtomicI64>,
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
                            announce(&appended, &announced, n.payload().parse().ok());
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
