//! The sequencer and the hash-chained global log.
//!
//! Rows of `events` become visible in commit order, not insert order, so one sequencer at a
//! time copies settled events into `event_log` with gap-free positions:
//! - PostgreSQL: events are read in `(tx_id, id)` order, only below the current snapshot's
//!   xmin: every transaction below it has finished, so nothing can still appear behind the
//!   cursor. An advisory lock lets one instance sequence at a time.
//! - SQLite: one writer at a time, so the trigger-assigned `event_order.id` is commit order.
//!
//! Each event's hash links to the previous event of the same aggregate; each position's
//! chain hash links to the previous position. Both are SHA-256 over a canonical encoding
//! (JSON with sorted keys, no whitespace) that is the same on both backends.

use std::collections::HashMap;

use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::db::{upsert, Db, Tx, Val};
use crate::error::StoreError;
use crate::{on_db, on_tx};

/// The PostgreSQL advisory lock key of the sequencer ("tj" + 1).
pub const SEQUENCER_LOCK: i64 = 0x746A_0001;

pub type Hash = [u8; 32];

/// A log entry as stored: position, aggregate type and id, sequence, event type, recorded
/// at, chain hash, event version, payload and metadata (the last two as JSON text).
pub type LogRow = (
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
const ZERO: Hash = [0u8; 32];

/// An event as stored, with what the log needs.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: String,
    pub metadata: String,
    pub db_recorded_at: String,
}

/// The canonical bytes of an event: a JSON array of its fields, objects with sorted keys.
pub fn canonical(e: &StoredEvent) -> Result<Vec<u8>, StoreError> {
    let payload: Value = serde_json::from_str(&e.payload).map_err(|err| {
        StoreError::Corrupt(format!(
            "payload of {}/{}#{}: {err}",
            e.aggregate_type, e.aggregate_id, e.sequence
        ))
    })?;
    let metadata: Value = serde_json::from_str(&e.metadata).map_err(|err| {
        StoreError::Corrupt(format!(
            "metadata of {}/{}#{}: {err}",
            e.aggregate_type, e.aggregate_id, e.sequence
        ))
    })?;
    // serde_json's Map is ordered by key (no preserve_order feature), so this is canonical.
    let v = Value::Array(vec![
        Value::from(e.aggregate_type.as_str()),
        Value::from(e.aggregate_id.as_str()),
        Value::from(e.sequence),
        Value::from(e.event_type.as_str()),
        Value::from(e.event_version.as_str()),
        payload,
        metadata,
    ]);
    Ok(serde_json::to_vec(&v).expect("a JSON value serialises"))
}

pub fn event_hash(prev: Option<&Hash>, canonical: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(prev.unwrap_or(&ZERO));
    h.update(canonical);
    h.finalize().into()
}

pub fn chain_hash(prev: Option<&Hash>, event_hash: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update(prev.unwrap_or(&ZERO));
    h.update(event_hash);
    h.finalize().into()
}

pub fn parse_hash(s: &str) -> Option<Hash> {
    let v = hex::decode(s).ok()?;
    v.try_into().ok()
}

/// The metadata's `recorded_at` (set by the service) or else the database's own time.
fn recorded_at(e: &StoredEvent) -> String {
    serde_json::from_str::<HashMap<String, String>>(&e.metadata)
        .ok()
        .and_then(|m| m.get(tiaojie_events::metadata::RECORDED_AT).cloned())
        .unwrap_or_else(|| e.db_recorded_at.clone())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceOutcome {
    /// This many events were appended; the log head is now `head`.
    Appended { count: usize, head: i64 },
    /// Another instance holds the sequencer lock.
    Busy,
}

mod sequencer;
mod verify;

pub use sequencer::*;
pub use verify::*;
