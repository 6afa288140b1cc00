//! `Idempotency-Key`: a repeat of a command with the same key and body returns the first
//! answer and writes nothing; the same key with another body is refused (422). Keys are
//! stored, so they survive restarts. A key is first reserved, then the command runs, then
//! its answer is stored; should the process die in between, a later repeat finds the
//! events the command wrote (their metadata carries the key) and answers from them.

use std::future::Future;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;
use tiaojie_projections::{on_db, Db, StoreError};

use crate::app::App;
use crate::auth::Actor;
use crate::commands::RequestMeta;
use crate::error::{ApiError, ApiResult};

/// A command's answer, as stored for replay.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub body: serde_json::Value,
    pub headers: Vec<(&'static str, String)>,
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(self.body)).into_response();
        for (k, v) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&v) {
                r.headers_mut().insert(k, v);
            }
        }
        r
    }
}

/// How long a reservation may stay unanswered before a repeat takes over.
const STALE_AFTER: Duration = Duration::from_secs(30);

fn request_hash(method: &str, path: &str, body: &impl Serialize) -> String {
    let canonical = serde_json::to_value(body)
        .map(|v| v.to_string())
        .unwrap_or_default();
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(path.as_bytes());
    h.update([0]);
    h.update(canonical.as_bytes());
    hex::encode(h.finalize())
}

pub async fn run<F, Fut>(
    app: &App,
    actor: &Actor,
    meta: &RequestMeta,
    method: &str,
    path: &str,
    body: &impl Serialize,
    command: F,
) -> ApiResult<Response>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ApiResult<Answer>>,
{
    let Some(key) = meta.idempotency_key.clone() else {
        return command().await.map(IntoResponse::into_response);
    };
    let hash = request_hash(method, path, body);
    let db = &app.db;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut command = Some(command);
    loop {
        let now = app.now().to_canonical();
        if reserve(db, &actor.id, &key, &hash, &now).await? {
            let Some(command) = command.take() else {
                return Err(ApiError::internal());
            };
            let result = command().await;
            return match result {
                Ok(answer) => {
                    store(db, &actor.id, &key, &answer).await?;
                    Ok(answer.into_response())
                }
                Err(e) => {
                    // Deterministic refusals are answered the same way again; anything that
                    // a retry might change (conflicts, overload, outages) frees the key.
                    let keep = e.status.is_client_error()
                        && !matches!(
                            e.status,
                            StatusCode::CONFLICT
                                | StatusCode::TOO_MANY_REQUESTS
                                | StatusCode::PRECONDITION_FAILED
                        );
                    if keep {
                        let answer = Answer {
                            status: e.status,
                            body: serde_json::to_value(
                                e.clone().into_problem(Some(meta.request_id.clone())),
                            )
                            .unwrap_or_default(),
                            headers: vec![("content-type", "application/problem+json".into())],
                        };
                        store(db, &actor.id, &key, &answer).await?;
                    } else {
                        release(db, &actor.id, &key).await?;
                    }
                    Err(e)
                }
            };
        }
        let Some((stored_hash, status, body, headers, created_at)) =
            lookup(db, &actor.id, &key).await?
        else {
            continue;
        };
        if stored_hash != hash {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "This Idempotency-Key was used with a different request",
                "该幂等键已用于另一个不同的请求",
            ));
        }
        if status != 0 {
            let headers: Vec<(String, String)> =
                serde_json::from_str(&headers.unwrap_or_default()).unwrap_or_default();
            let mut r = (
                StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK),
                body,
            )
                .into_response();
            r.headers_mut()
                .insert("content-type", HeaderValue::from_static("application/json"));
            apply(r.headers_mut(), &headers);
            r.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            return Ok(r);
        }
        // Reserved and not answered: in progress elsewhere, or abandoned by a crash.
        let age = tiaojie_events::Timestamp::parse(&created_at)
            .map(|t| t.seconds_until(&app.now()))
            .unwrap_or(0);
        if age >= STALE_AFTER.as_secs() as i64 {
            if let Some(answer) = recover(db, &actor.id, &key).await? {
                store(db, &actor.id, &key, &answer).await?;
                let mut r = answer.into_response();
                r.headers_mut()
                    .insert("idempotent-replayed", HeaderValue::from_static("true"));
                return Ok(r);
            }
            release(db, &actor.id, &key).await?;
            continue;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_in_progress",
                "A request with this Idempotency-Key is still in progress",
                "相同幂等键的请求正在处理中，请稍后重试",
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn apply(h: &mut HeaderMap, headers: &[(String, String)]) {
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            h.insert(k, v);
        }
    }
}

async fn reserve(
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

async fn store(db: &Db, actor: &str, key: &str, a: &Answer) -> Result<(), StoreError> {
    let headers: Vec<(String, String)> = a
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let headers = serde_json::to_string(&headers).unwrap_or_default();
    on_db!(db, p => {
        sqlx::query("UPDATE idempotency SET status = $3, body = $4, etag = $5 WHERE actor_id = $1 AND key = $2")
            .bind(actor)
            .bind(key)
            .bind(i64::from(a.status.as_u16()))
            .bind(a.body.to_string())
            .bind(headers)
            .execute(p)
            .await?;
    });
    Ok(())
}

async fn release(db: &Db, actor: &str, key: &str) -> Result<(), StoreError> {
    on_db!(db, p => {
        sqlx::query("DELETE FROM idempotency WHERE actor_id = $1 AND key = $2 AND status = 0")
            .bind(actor)
            .bind(key)
            .execute(p)
            .await?;
    });
    Ok(())
}

type Stored = (String, i64, String, Option<String>, String);

async fn lookup(db: &Db, actor: &str, key: &str) -> Result<Option<Stored>, StoreError> {
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

/// Rebuilds the answer of a keyed command from the events it wrote.
async fn recover(db: &Db, actor: &str, key: &str) -> Result<Option<Answer>, StoreError> {
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
    Ok(row.map(|(atype, id, version, first)| Answer {
        status: if first == 1 {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        body: serde_json::json!({ "id": id, "version": version, "recovered": true }),
        headers: vec![
            ("etag", format!("\"{version}\"")),
            ("consistency-token", format!("{atype}:{id}:{version}")),
        ],
    }))
}
