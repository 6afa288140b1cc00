//! Counters the read side keeps for `/metrics`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::Mutex;

/// Events copied into the log by this instance.
pub static SEQUENCED: AtomicU64 = AtomicU64::new(0);
/// The last log head this instance saw.
pub static LOG_HEAD: AtomicI64 = AtomicI64::new(0);

/// Read-side cycles that committed work (sequencing and projecting together), and the
/// time they took, in microseconds: their ratio is how long a write waits, at most, for
/// the cycle after the one under way.
pub static CYCLES: AtomicU64 = AtomicU64::new(0);
pub static CYCLE_MICROS: AtomicU64 = AtomicU64::new(0);

static PROJECTORS: Mutex<BTreeMap<String, i64>> = Mutex::new(BTreeMap::new());

pub fn record_projector(name: &str, position: i64) {
    PROJECTORS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(name.to_string(), position);
}

pub fn projector_positions() -> BTreeMap<String, i64> {
    PROJECTORS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}
