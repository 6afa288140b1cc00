use cqrs_es::AggregateError;

/// What can go wrong in the store, in terms the edge can act on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is overloaded: retry later (503).
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The storage under the database refuses to write: full, read-only, or failing. It
    /// clears when the fault is mended; retry later (507 for a full disk, else 503).
    #[error("the store cannot write ({}): {detail}", fault.describe())]
    Storage { fault: StorageFault, detail: String },
    /// A configuration mistake (bad URL, unwritable directory).
    #[error("{0}")]
    Config(String),
    /// Stored data cannot be read back (a bug or tampering).
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(String),
    /// The master key does not open the data keys (a restore with another key file, or the
    /// wrong key configured): personal data and free text cannot be read or written.
    #[error("the master key does not open this store's data keys: {0}")]
    Key(String),
}

/// Which fault of the storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageFault {
    /// No space left (SQLite `SQLITE_FULL`, PostgreSQL `53100`).
    Full,
    /// A read-only file system or database (SQLite `SQLITE_READONLY`, PostgreSQL `25006`,
    /// e.g. a standby after a failover).
    ReadOnly,
    /// An I/O error of the device (SQLite `SQLITE_IOERR`).
    Io,
}

impl StorageFault {
    pub fn describe(&self) -> &'static str {
        match self {
            StorageFault::Full => "its disk is full",
            StorageFault::ReadOnly => "its disk or volume is read-only",
            StorageFault::Io => "its disk reports I/O errors",
        }
    }
}

impl StoreError {
    /// Faults that a retry after a while can get past: the database away or overloaded,
    /// or its storage refusing to write.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_) | StoreError::Storage { .. }
        )
    }
}

/// How a database error is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Unavailable,
    Storage(StorageFault),
    Other,
}

/// Connection-level failures are "unavailable"; storage that will not write is a storage
/// fault; everything else is a database error.
pub fn classify(e: &sqlx::Error) -> Class {
    match e {
        sqlx::Error::Io(io) => match io.raw_os_error() {
            Some(28) => Class::Storage(StorageFault::Full),
            Some(30) => Class::Storage(StorageFault::ReadOnly),
            _ => Class::Unavailable,
        },
        sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        // A protocol error is what a connection cut in the middle of a message looks like.
        | sqlx::Error::Protocol(_) => Class::Unavailable,
        sqlx::Error::Database(d) => {
            let code = d.code().unwrap_or_default();
            let code = code.as_ref();
            // SQLite gives its extended result code; the primary code is its low byte.
            if let (Some(_), Ok(n)) = (
                d.try_downcast_ref::<sqlx::sqlite::SqliteError>(),
                code.parse::<u32>(),
            ) {
                return match n & 0xff {
                    // busy, locked, cannot open
                    5 | 6 | 14 => Class::Unavailable,
                    13 => Class::Storage(StorageFault::Full),
                    8 => Class::Storage(StorageFault::ReadOnly),
                    10 => Class::Storage(StorageFault::Io),
                    _ => Class::Other,
                };
            }
            // PostgreSQL: disk full, a read-only (standby) server, then connection
            // exceptions (08), operator intervention such as shutdowns, "cannot connect
            // now" and statement time-outs (57), insufficient resources such as too many
            // connections (53), system errors such as I/O failures (58).
            match code {
                "53100" => Class::Storage(StorageFault::Full),
                "25006" => Class::Storage(StorageFault::ReadOnly),
                _ if ["08", "57", "53", "58"].iter().any(|p| code.starts_with(p))
                    || looks_unavailable(d.message()) =>
                {
                    Class::Unavailable
                }
                _ => Class::Other,
            }
        }
        other => {
            if looks_unavailable(&other.to_string()) {
                Class::Unavailable
            } else {
                Class::Other
            }
        }
    }
}

/// Whether a database error means the database went away rather than refused.
pub fn classify_sqlx(e: &sqlx::Error) -> bool {
    classify(e) != Class::Other
}

/// Words of an error message that mean the database went away rather than refused.
pub fn looks_unavailable(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    [
        "pool timed out",
        "connection refused",
        "connection reset",
        "broken pipe",
        "terminating connection",
        "shutting down",
        "starting up",
        "not yet accepting connections",
        "error communicating with database",
        "unexpected end of file",
        "unexpected eof",
    ]
    .iter()
    .any(|w| t.contains(w))
        || t.contains("connection") && t.contains("closed")
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match classify(&e) {
            Class::Unavailable => StoreError::Unavailable(e.to_string()),
            Class::Storage(fault) => StoreError::Storage {
                fault,
                detail: e.to_string(),
            },
            Class::Other => StoreError::Database(e.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        match e {
            sqlx::migrate::MigrateError::Execute(inner) => inner.into(),
            other => StoreError::Database(format!("migration failed: {other}")),
        }
    }
}

/// Reads an error box from cqrs-es back into a store error.
pub fn from_boxed(e: Box<dyn std::error::Error + Send + Sync + 'static>) -> StoreError {
    let e = match e.downcast::<StoreError>() {
        Ok(s) => return *s,
        Err(e) => e,
    };
    let e = match e.downcast::<crate::crypto::KeyError>() {
        Ok(k) => return (*k).into(),
        Err(e) => e,
    };
    match e.downcast::<sqlx::Error>() {
        Ok(sqlx_err) => (*sqlx_err).into(),
        Err(other) => {
            let text = other.to_string();
            if looks_unavailable(&text) {
                StoreError::Unavailable(text)
            } else {
                StoreError::Database(text)
            }
        }
    }
}

/// Why a command did not produce events.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error> {
    /// A domain rule refused it.
    #[error("{0}")]
    Rule(E),
    /// The case changed since the version the client expected (`If-Match`).
    #[error("expected version {expected}, found {actual}")]
    VersionMismatch { expected: u64, actual: u64 },
    /// Still conflicting after the bounded number of retries.
    #[error("the aggregate kept changing concurrently; gave up after {0} attempts")]
    Conflict(u32),
    /// An event of the command would not read back as written; nothing was stored.
    #[error("{0}")]
    Unstorable(String),
    /// Free text for a case whose text was erased; nothing was stored.
    #[error("the case's text was erased")]
    CaseErased,
    /// The command names a party that is not registered, or whose data was erased;
    /// nothing was stored.
    #[error(transparent)]
    Party(crate::append::PartyUnusable),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl<E: std::error::Error> CommandError<E> {
    pub fn from_aggregate(e: AggregateError<E>) -> Self {
        match e {
            AggregateError::UserError(e) => CommandError::Rule(e),
            AggregateError::AggregateConflict => CommandError::Conflict(1),
            AggregateError::DatabaseConnectionError(b) => {
                CommandError::Store(match from_boxed(b) {
                    StoreError::Database(s) => StoreError::Unavailable(s),
                    other => other,
                })
            }
            AggregateError::DeserializationError(b) => {
                CommandError::Store(StoreError::Corrupt(b.to_string()))
            }
            AggregateError::UnexpectedError(b) => {
                if let Some(u) = b.downcast_ref::<crate::codec::Unstorable>() {
                    CommandError::Unstorable(u.to_string())
                } else if b.is::<crate::crypto::CaseErased>() {
                    CommandError::CaseErased
                } else if let Some(p) = b.downcast_ref::<crate::append::PartyUnusable>() {
                    CommandError::Party(p.clone())
                } else {
                    CommandError::Store(from_boxed(b))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_connection_is_unavailable_and_a_refusal_is_not() {
        let cut = sqlx::Error::Protocol("unexpected message from the server".into());
        assert!(StoreError::from(cut).is_unavailable());
        let reset = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(StoreError::from(reset).is_unavailable());
        for text in [
            "error returned from database: terminating connection due to administrator command",
            "error returned from database: the database system is shutting down",
            "error communicating with database: Broken pipe (os error 32)",
            "Connection refused (os error 111)",
        ] {
            assert!(looks_unavailable(text), "{text}");
        }
        for text in [
            "duplicate key value violates unique constraint",
            "column \"x\" does not exist",
        ] {
            assert!(!looks_unavailable(text), "{text}");
        }
        assert!(!StoreError::from(sqlx::Error::RowNotFound).is_unavailable());
    }
}
