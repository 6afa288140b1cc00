//! The store of tiaojie: the event-store schema and migrations for SQLite and PostgreSQL,
//! command execution over cqrs-es, the group directory, the sequencer and its hash-chained
//! global log, the projector runtime and the read models.
#![forbid(unsafe_code)]

pub mod error;
pub mod log;
pub mod metrics;
pub mod models;
pub mod runtime;
pub mod store;

pub use store::{append, codec, crypto, db, directory, upcast};

pub use db::{Backend, Db, DbOptions};
pub use error::{CommandError, StoreError};

use std::sync::Arc;

use runtime::Projector;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Brings the schema up to date: the event store, the log, and every read model's tables
/// and checkpoint. Idempotent; safe with several instances starting at once.
pub async fn migrate(db: &Db, projectors: &[Arc<dyn Projector>]) -> Result<(), StoreError> {
    match db {
        Db::Sqlite(p) => SQLITE_MIGRATIONS.run(p).await?,
        Db::Postgres(p) => POSTGRES_MIGRATIONS.run(p).await?,
    }
    for p in projectors {
        runtime::ensure(db, p.as_ref()).await?;
    }
    runtime::upgrade(db, projectors)
        .await
        .map_err(|e| match e {
            runtime::ProjectionError::Store(s) => s,
            other => StoreError::Database(format!("rebuilding a read model: {other}")),
        })?;
    Ok(())
}

/// Checks, without changing anything, that every migration of this release has been
/// applied: for a service that connects with a role that may not migrate.
pub async fn verify_schema(db: &Db) -> Result<(), StoreError> {
    let migrator = match db {
        Db::Sqlite(_) => &SQLITE_MIGRATIONS,
        Db::Postgres(_) => &POSTGRES_MIGRATIONS,
    };
    let applied: Vec<i64> = on_db!(db, p => {
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(p)
            .await
            .map_err(|e| StoreError::Config(format!("the schema is missing or unreadable ({e}); run `tiaojie migrate` with the owner role first")))?
    });
    for m in migrator.iter() {
        if !applied.contains(&m.version) {
            return Err(StoreError::Config(format!(
                "migration {} ({}) has not been applied; run `tiaojie migrate` with the owner role first",
                m.version, m.description
            )));
        }
    }
    Ok(())
}
