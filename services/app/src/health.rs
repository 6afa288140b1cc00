//! What this node knows about its store between requests: whether the store is reachable
//! at all (so that requests fail fast during an outage instead of each waiting out the
//! pool's acquire time-out), and whether it can write (so that readiness tells the truth
//! while reads still work on a full or read-only disk).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tiaojie_projections::{Db, StoreError};

/// While the store is known to be down, it is pinged this often to find out whether it is
/// back; requests meanwhile are answered 503 at once.
pub const PROBE_EVERY: Duration = Duration::from_millis(500);

pub struct StoreHealth {
    db: Db,
    down: Arc<AtomicBool>,
    probing: Arc<AtomicBool>,
    /// The last write that failed for a fault of the storage, until a write succeeds.
    write_failure: Mutex<Option<String>>,
    /// The last write probe of readiness: when, and what it found.
    probe: Mutex<Option<(Instant, Result<(), String>)>>,
    node: String,
}

impl StoreHealth {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            down: Arc::new(AtomicBool::new(false)),
            probing: Arc::new(AtomicBool::new(false)),
            write_failure: Mutex::new(None),
            probe: Mutex::new(None),
            // One row per host (and per process when the host has no name).
            node: std::env::var("HOSTNAME")
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| format!("pid-{}", std::process::id())),
        }
    }

    /// Whether to answer 503 without trying the store: it is known to be down, and a probe
    /// in the background is finding out when it is back.
    pub fn fail_fast(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    /// The store did not answer: requests fail fast from now on, while a task pings the
    /// store every [`PROBE_EVERY`] until it answers.
    pub fn unreachable(&self) {
        if self.down.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::warn!("the store is unreachable; answering 503 at once until it is back");
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (db, down, probing) = (self.db.clone(), self.down.clone(), self.probing.clone());
        tokio::spawn(async move {
            while down.load(Ordering::Acquire) {
                tokio::time::sleep(PROBE_EVERY).await;
                if matches!(
                    tokio::time::timeout(Duration::from_secs(2), db.ping()).await,
                    Ok(Ok(()))
                ) && down.swap(false, Ordering::AcqRel)
                {
                    tracing::info!("the store is reachable again");
                }
            }
            probing.store(false, Ordering::Release);
        });
    }

    /// The store answered.
    pub fn reachable(&self) {
        if self.down.swap(false, Ordering::AcqRel) {
            tracing::info!("the store is reachable again");
        }
    }

    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    /// What a command's outcome says about the store.
    pub fn command_result(&self, error: Option<&StoreError>) {
        match error {
            None => {
                self.reachable();
                *self.write_failure.lock().unwrap_or_else(|e| e.into_inner()) = None;
            }
            Some(StoreError::Unavailable(_)) => self.unreachable(),
            Some(e @ StoreError::Storage { .. }) => {
                *self.write_failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
            }
            Some(_) => {}
        }
    }

    pub fn write_failure(&self) -> Option<String> {
        self.write_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Writes one row and commits it: whether this node can write now. Cached for a
    /// second, so that frequent readiness checks do not each cost an fsync.
    pub async fn write_probe(&self, db: &Db, now: &str) -> Result<(), String> {
        if let Some((at, r)) = &*self.probe.lock().unwrap_or_else(|e| e.into_inner()) {
            if at.elapsed() < Duration::from_secs(1) {
                return r.clone();
            }
        }
        let r = async {
            let mut tx = db.begin().await?;
            tiaojie_projections::on_tx!(&mut tx, c => {
                sqlx::query("INSERT INTO write_probe (node, at) VALUES ($1, $2) ON CONFLICT (node) DO UPDATE SET at = excluded.at")
                    .bind(&self.node)
                    .bind(now)
                    .execute(&mut *c)
                    .await
                    .map_err(StoreError::from)?;
            });
            tx.commit().await
        }
        .await
        .map_err(|e| e.to_string());
        if r.is_ok() {
            *self.write_failure.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        *self.probe.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), r.clone()));
        r
    }
}

/// The header an edge sets on an answer whose store did not answer; the HTTP layer takes it
/// off and notes that the store is down, so that the next requests fail fast.
pub const STORE_DOWN: &str = "x-tiaojie-store-down";
