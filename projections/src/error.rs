use cqrs_es::AggregateError;

/// What can go wrong in the store, in terms the edge can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is overloaded: retry later (503).
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
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

impl StoreError {
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Connection-level failures are "unavailable"; everything else is a database error.
pub fn classify_sqlx(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        // A protocol error is what a connection cut in the middle of a message looks like.
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(d) => {
            let code = d.code().unwrap_or_default();
            // PostgreSQL: connection exceptions (08), operator intervention such as admin or
            // crash shutdown and "cannot connect now" (57P), insufficient resources (53),
            // system errors such as I/O failures (58); SQLite: busy, locked.
            matches!(code.as_ref(), "5" | "6")
                || ["08", "57P", "53", "58"]
                    .iter()
                    .any(|p| code.starts_with(p))
                || looks_unavailable(d.message())
        }
        other => looks_unavailable(&other.to_string()),
    }
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
        if classify_sqlx(&e) {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Database(e.to_string())
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
