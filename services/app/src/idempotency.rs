//! The idempotency records of keyed commands: a reservation per (actor, key), the answer
//! once given, and the events a keyed command wrote, to rebuild an answer that was lost.
//! The HTTP layer (`http::idempotency`) holds the protocol; this is the storage.

use sqlx::Row;
use tiaojie_projections::{on_db, Db, StoreError};

/// Reserves the key for this request; false when it is already taken.
pub async fn reserve(
    db: &Db,
    actor: &str,
    key: &str,
    hash: &str,
    now: &str,
) -> Result<bool, StoreError> {
    on_db!(db, p => {
        let n = sqlx::query(
            "INSERT INTO idempotency (actor_id, key, request_hash, status, body, created_at) VALUES ($1, $2, $3, 0, '', $4)
             ON CONFLICT (actor_id, key) DO NOTHING",
        )
        .bind(actor)
        .bind(key)
        .bind(hash)
        .bind(now)
        .execute(p)
        .await?
        .rows_affected();
        Ok(n == 1)
    })
}

/// Keeps the answer given to a reserved key.
pub async fn store(
    db: &Db,
    actor: &str,
    key: &str,
    status: u16,
    body: &serde_json::Value,
    headers: &[(&str, String)],
) -> Result<(), StoreError> {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let headers = serde_json::to_string(&headers).unwrap_or_default();
    on_db!(db, p => {
        sqlx::query("UPDATE idempotency SET status = $3, body = $4, etag = $5 WHERE actor_id = $1 AND key = $2")
            .bind(actor)
            .bind(key)
            .bind(i64::from(status))
            .bind(body.to_string())
            .bind(headers)
            .execute(p)
            .await?;
    });
    Ok(())
}

/// Gives up a reservation that was never answered.
pub async fn release(db: &Db, actor: &str, key: &str) -> Result<(), StoreError> {
    on_db!(db, p => {
        sqlx::query("DELETE FROM idempotency WHERE actor_id = $1 AND key = $2 AND status = 0")
            .bind(actor)
            .bind(key)
            .execute(p)
            .await?;
    });
    Ok(())
}

/// A stored record: the request's hash, the answer's status (0 while reserved), its body,
/// its headers as JSON, and when it was reserved.
pub type Stored = (String, i64, String, Option<String>, String);

pub async fn lookup(db: &Db, actor: &str, key: &str) -> Result<Option<Stored>, StoreError> {
    on_db!(db, p => {
        Ok(sqlx::query("SELECT request_hash, status, body, etag, created_at FROM idempotency WHERE actor_id = $1 AND key = $2")
            .bind(actor)
            .bind(key)
            .fetch_optional(p)
            .await?
            .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?)))
            .transpose()?)
    })
}

/// What a keyed command wrote: the aggregate's type and id, and the first and last version
/// it wrote.
pub struct Written {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub first: i64,
    pub last: i64,
}

/// Finds the events a keyed command wrote, to rebuild its answer.
pub async fn written(db: &Db, actor: &str, key: &str) -> Result<Option<Written>, StoreError> {
    let sql = match db {
        Db::Sqlite(_) => "SELECT aggregate_type, aggregate_id, MAX(sequence), MIN(sequence) FROM events
                           WHERE json_extract(metadata, '$.idempotency_key') = $1 AND json_extract(metadata, '$.actor_id') = $2
                           GROUP BY aggregate_type, aggregate_id",
        Db::Postgres(_) => "SELECT aggregate_type, aggregate_id, MAX(sequence), MIN(sequence) FROM events
                           WHERE (metadata ->> 'idempotency_key') = $1 AND (metadata ->> 'actor_id') = $2
                           GROUP BY aggregate_type, aggregate_id",
    };
    let row: Option<(String, String, i64, i64)> = on_db!(db, p => {
        sqlx::query(sql).bind(key).bind(actor).fetch_optional(p).await?
            .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
            .transpose()?
    });
    Ok(
        row.map(|(aggregate_type, aggregate_id, last, first)| Written {
            aggregate_type,
            aggregate_id,
            first,
            last,
        }),
    )
}
