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
    /// The shape of its tables. Bump it when the DDL or what `apply` writes changes: opening
    /// a store whose read model has an older version rebuilds it ([`upgrade`]).
    fn schema_version(&self) -> i64 {
        1
    }
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

mod batch;
mod daemon;
mod reader;
mod rebuild;
mod status;

pub use batch::*;
pub use daemon::*;
pub use reader::*;
pub use rebuild::*;
pub use status::*;
