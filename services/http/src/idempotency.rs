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
use tiaojie_projections::{Db, StoreError};

use crate::app::App;
use crate::auth::Actor;
use crate::commands::RequestMeta;
use crate::error::{ApiError, ApiResult};
use tiaojie_app::idempotency as store;

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

/// A command's answer: its body, `ETag`, consistency token and, when it created the
/// aggregate (`201`), its `Location` under `base`.
pub fn command_answer(
    aggregate_type: &str,
    base: &str,
    o: crate::commands::CommandOutcome,
    created_id: Option<String>,
    status: StatusCode,
) -> Answer {
    let token = crate::queries::consistency_token(aggregate_type, &o.id, o.version);
    let mut headers = vec![
        ("etag", format!("\"{}\"", o.version)),
        ("consistency-token", token.clone()),
    ];
    if status == StatusCode::CREATED {
        headers.push(("location", format!("{base}/{}", o.id)));
    }
    Answer {
        status,
        body: serde_json::to_value(crate::dto::CommandAnswer {
            id: o.id,
            version: o.version,
            events: o.events,
            consistency_token: token,
            created_id,
            warnings: o.warnings,
        })
        .unwrap_or_default(),
        headers,
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
        if store::reserve(db, &actor.id, &key, &hash, &now).await? {
            let Some(command) = command.take() else {
                return Err(ApiError::internal());
            };
            let result = command().await;
            return match result {
                Ok(answer) => {
                    remember(db, &actor.id, &key, &answer).await?;
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
                        remember(db, &actor.id, &key, &answer).await?;
                    } else {
                        store::release(db, &actor.id, &key).await?;
                    }
                    Err(e)
                }
            };
        }
        let Some((stored_hash, status, body, headers, created_at)) =
            store::lookup(db, &actor.id, &key).await?
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
                remember(db, &actor.id, &key, &answer).await?;
                let mut r = answer.into_response();
                r.headers_mut()
                    .insert("idempotent-replayed", HeaderValue::from_static("true"));
                return Ok(r);
            }
            store::release(db, &actor.id, &key).await?;
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

/// Rebuilds the answer of a keyed command from the events it wrote.
async fn recover(db: &Db, actor: &str, key: &str) -> Result<Option<Answer>, StoreError> {
    Ok(store::written(db, actor, key).await?.map(|w| {
        let (atype, id, version) = (w.aggregate_type, w.aggregate_id, w.last);
        Answer {
            status: if w.first == 1 {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            body: serde_json::json!({ "id": id, "version": version, "recovered": true }),
            headers: vec![
                ("etag", format!("\"{version}\"")),
                ("consistency-token", format!("{atype}:{id}:{version}")),
            ],
        }
    }))
}

async fn remember(db: &Db, actor: &str, key: &str, a: &Answer) -> Result<(), StoreError> {
    store::store(db, actor, key, a.status.as_u16(), &a.body, &a.headers).await
}
