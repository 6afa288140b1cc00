//! Webhooks for other platforms: a case went overdue, was escalated, a supervision order
//! was issued or answered. Each is an HTTP POST of a small JSON document with no personal
//! data, signed with HMAC-SHA256 over `timestamp.body` (`X-Tiaojie-Signature: sha256=…`),
//! carrying an idempotency id (`X-Tiaojie-Delivery`) that stays the same on every retry.
//!
//! Notifications go through an outbox table (`webhook_outbox`), written before anything is
//! sent: from the audit trail (read past a stored cursor, the rows and the cursor in one
//! transaction) and from the case list (cases past a deadline). A row's id is derived from
//! what it reports, so enqueueing it again stores nothing new. Rows are sent until the
//! receiver answers 2xx, with a growing pause (5 s doubling to an hour) and given up after
//! [`MAX_ATTEMPTS`]; a restart loses none. Delivery is at least once: a receiver keeps the
//! ids it has seen.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use tiaojie_events::Timestamp;
use tiaojie_projections::{on_db, on_tx, StoreError};
use tokio::sync::watch;

use crate::app::App;
use crate::app_error::{AppError, AppResult};

/// What a webhook can be told.
pub const EVENTS: [&str; 4] = [
    "case.overdue",
    "case.escalated",
    "supervision_order.issued",
    "supervision_order.answered",
];

/// After this many failed attempts a notification is given up (and logged).
pub const MAX_ATTEMPTS: i64 = 20;

/// One receiver.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// A short name (letters, digits, `-`, `_`), used in the outbox and the logs.
    pub name: String,
    /// Where notifications are posted (http or https).
    pub url: String,
    /// The shared secret the signature is made with (at least 16 characters).
    pub secret: String,
    /// Which notifications it gets; all by default.
    #[serde(default = "all_events")]
    pub events: Vec<String>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("secret", &"[redacted]")
            .field("events", &self.events)
            .finish()
    }
}

fn all_events() -> Vec<String> {
    EVENTS.iter().map(|e| e.to_string()).collect()
}

/// Checks the configured endpoints; the message names what is wrong.
pub fn validate(endpoints: &[Endpoint]) -> Result<(), String> {
    let mut names = std::collections::BTreeSet::new();
    for e in endpoints {
        let ok_name = !e.name.is_empty()
            && e.name.len() <= 64
            && e.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok_name {
            return Err(format!(
                "webhook name {:?} must be 1 to 64 letters, digits, - or _",
                e.name
            ));
        }
        if !names.insert(e.name.as_str()) {
            return Err(format!("webhook name {:?} is used twice", e.name));
        }
        match reqwest::Url::parse(&e.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => {
                return Err(format!(
                    "webhook {:?}: url must be an http(s) address",
                    e.name
                ))
            }
        }
        if e.secret.chars().count() < 16 {
            return Err(format!(
                "webhook {:?}: secret must be at least 16 characters",
                e.name
            ));
        }
        if e.events.is_empty() {
            return Err(format!("webhook {:?}: events must not be empty", e.name));
        }
        if let Some(x) = e.events.iter().find(|x| !EVENTS.contains(&x.as_str())) {
            return Err(format!(
                "webhook {:?}: unknown event {x:?} (known: {})",
                e.name,
                EVENTS.join(", ")
            ));
        }
    }
    Ok(())
}

/// The signature of a body sent at `timestamp`: hex HMAC-SHA256 of `timestamp.body`.
pub fn signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn delivery_id(endpoint: &str, key: &str) -> String {
    let h = Sha256::digest(format!("{endpoint}\n{key}").as_bytes());
    format!("wh_{}", &hex::encode(h)[..32])
}

fn audit_event(event_type: &str) -> Option<&'static str> {
    match event_type {
        "CaseEscalated" => Some("case.escalated"),
        "SupervisionOrderIssued" => Some("supervision_order.issued"),
        "SupervisionOrderAnswered" => Some("supervision_order.answered"),
        _ => None,
    }
}

/// One notification, before it is addressed to the endpoints that want it.
struct Notice {
    key: String,
    event: &'static str,
    payload: serde_json::Value,
}

/// Stores each notice once per endpoint that wants it (a stored one is left alone).
async fn store(
    app: &App,
    tx: &mut tiaojie_projections::db::Tx,
    notices: &[Notice],
) -> AppResult<usize> {
    let now = app.now().to_canonical();
    let mut n = 0;
    for notice in notices {
        for e in app
            .settings
            .webhooks
            .iter()
            .filter(|e| e.events.iter().any(|x| x == notice.event))
        {
            let id = delivery_id(&e.name, &notice.key);
            let mut payload = notice.payload.clone();
            payload["id"] = id.clone().into();
            payload["event"] = notice.event.into();
            let body = payload.to_string();
            let added = on_tx!(tx, c => {
                sqlx::query("INSERT INTO webhook_outbox (delivery_id, endpoint, event, payload, created_at, attempts, next_attempt_at) VALUES ($1, $2, $3, $4, $5, 0, $5) ON CONFLICT (delivery_id) DO NOTHING")
                    .bind(&id).bind(&e.name).bind(notice.event).bind(&body).bind(&now)
                    .execute(&mut *c).await.map_err(StoreError::from)?
                    .rows_affected()
            });
            n += added as usize;
        }
    }
    Ok(n)
}

/// Reads the audit trail past the cursor and stores what the endpoints are told, the rows
/// and the new cursor in one transaction. The first time, the cursor starts at the trail's
/// end: what happened before webhooks were configured is not sent.
pub async fn enqueue_from_audit(app: &App) -> AppResult<usize> {
    if app.settings.webhooks.is_empty() {
        return Ok(0);
    }
    let mut tx = app.db.begin().await?;
    let cursor: Option<i64> = on_tx!(&mut tx, c => {
        sqlx::query_scalar("SELECT position FROM webhook_cursor WHERE id = 1")
            .fetch_optional(&mut *c).await.map_err(StoreError::from)?
    });
    let Some(after) = cursor else {
        on_tx!(&mut tx, c => {
            sqlx::query("INSERT INTO webhook_cursor (id, position) SELECT 1, COALESCE(MAX(position), 0) FROM audit_trail WHERE true ON CONFLICT (id) DO NOTHING")
                .execute(&mut *c).await.map_err(StoreError::from)?;
        });
        tx.commit().await?;
        return Ok(0);
    };
    type AuditRow = (
        i64,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
        String,
    );
    let rows: Vec<AuditRow> = on_tx!(&mut tx, c => {
        sqlx::query("SELECT position, event_type, case_id, community, district, business_at, recorded_at, summary_zh FROM audit_trail WHERE position > $1 ORDER BY position LIMIT 500")
            .bind(after)
            .fetch_all(&mut *c).await.map_err(StoreError::from)?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?, r.try_get(5)?, r.try_get(6)?, r.try_get(7)?)))
            .collect::<Result<Vec<_>, sqlx::Error>>().map_err(StoreError::from)?
    });
    let Some(last) = rows.last().map(|r| r.0) else {
        return Ok(0);
    };
    let notices: Vec<Notice> = rows
        .into_iter()
        .filter_map(
            |(
                position,
                event_type,
                case_id,
                community,
                district,
                business_at,
                recorded_at,
                summary,
            )| {
                let event = audit_event(&event_type)?;
                Some(Notice {
                    key: format!("log:{position}"),
                    event,
                    payload: serde_json::json!({
                        "log_position": position,
                        "case_id": case_id,
                        "community": community,
                        "district": district,
                        "occurred_at": business_at.unwrap_or_else(|| recorded_at.clone()),
                        "recorded_at": recorded_at,
                        "summary_zh": summary,
                    }),
                })
            },
        )
        .collect();
    let n = store(app, &mut tx, &notices).await?;
    on_tx!(&mut tx, c => {
        sqlx::query("UPDATE webhook_cursor SET position = $1 WHERE id = 1")
            .bind(last)
            .execute(&mut *c).await.map_err(StoreError::from)?;
    });
    tx.commit().await?;
    Ok(n)
}

/// Stores a notice for every case past a deadline now: once per case, clock and deadline
/// (a new deadline that passes is told again).
pub async fn enqueue_overdue(app: &App) -> AppResult<usize> {
    if !app
        .settings
        .webhooks
        .iter()
        .any(|e| e.events.iter().any(|x| x == "case.overdue"))
    {
        return Ok(0);
    }
    let now = app.now().to_canonical();
    let late = tiaojie_projections::models::stats::overdue_now(&app.db, &now, None).await?;
    let notices: Vec<Notice> = late
        .into_iter()
        .filter_map(|c| {
            let (kind, due) = (c.due_kind?, c.due_at?);
            Some(Notice {
                key: format!("overdue:{}:{kind}:{due}", c.case_id),
                event: "case.overdue",
                payload: serde_json::json!({
                    "case_id": c.case_id,
                    "community": c.community,
                    "district": c.district,
                    "status": c.status,
                    "due_kind": kind,
                    "due_at": due,
                }),
            })
        })
        .collect();
    if notices.is_empty() {
        return Ok(0);
    }
    let mut tx = app.db.begin().await?;
    let n = store(app, &mut tx, &notices).await?;
    tx.commit().await?;
    Ok(n)
}

/// A row waiting to be sent.
struct Pending {
    id: String,
    endpoint: String,
    event: String,
    payload: String,
    attempts: i64,
    next_attempt_at: String,
}

/// The pause before attempt `n + 1` after `n` failures: 5 s doubling, at most an hour.
pub fn backoff(failures: i64) -> Duration {
    let secs = 5u64.saturating_mul(1u64 << failures.clamp(0, 20));
    Duration::from_secs(secs.min(3600))
}

/// Sends what is due; answers how many were delivered.
pub async fn deliver_due(app: &App, client: &reqwest::Client) -> AppResult<usize> {
    let now = app.now();
    let now_s = now.to_canonical();
    let due: Vec<Pending> = on_db!(&app.db, p => {
        sqlx::query("SELECT delivery_id, endpoint, event, payload, attempts, next_attempt_at FROM webhook_outbox WHERE delivered_at IS NULL AND given_up_at IS NULL AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT 50")
            .bind(&now_s)
            .fetch_all(p).await.map_err(StoreError::from)?
            .iter()
            .map(|r| Ok(Pending { id: r.try_get(0)?, endpoint: r.try_get(1)?, event: r.try_get(2)?, payload: r.try_get(3)?, attempts: r.try_get(4)?, next_attempt_at: r.try_get(5)? }))
            .collect::<Result<Vec<_>, sqlx::Error>>().map_err(StoreError::from)?
    });
    let mut delivered = 0;
    for row in due {
        // Claimed for a minute, so that another instance does not send it meanwhile.
        let lease = later(now, 60).to_canonical();
        let claimed = on_db!(&app.db, p => {
            sqlx::query("UPDATE webhook_outbox SET next_attempt_at = $1 WHERE delivery_id = $2 AND next_attempt_at = $3 AND delivered_at IS NULL")
                .bind(&lease).bind(&row.id).bind(&row.next_attempt_at)
                .execute(p).await.map_err(StoreError::from)?
                .rows_affected()
        });
        if claimed == 0 {
            continue;
        }
        let Some(endpoint) = app
            .settings
            .webhooks
            .iter()
            .find(|e| e.name == row.endpoint)
        else {
            give_up(app, &row.id, "the endpoint is no longer configured").await?;
            continue;
        };
        let result = send(client, endpoint, &row).await;
        match result {
            Ok(()) => {
                on_db!(&app.db, p => {
                    sqlx::query("UPDATE webhook_outbox SET delivered_at = $1, attempts = attempts + 1, last_error = NULL WHERE delivery_id = $2")
                        .bind(app.now().to_canonical()).bind(&row.id)
                        .execute(p).await.map_err(StoreError::from)?;
                });
                delivered += 1;
            }
            Err(why) => {
                let failures = row.attempts + 1;
                if failures >= MAX_ATTEMPTS {
                    tracing::error!(delivery = %row.id, endpoint = %row.endpoint, error = %why, "a webhook was given up after {MAX_ATTEMPTS} attempts");
                    give_up(app, &row.id, &why).await?;
                    continue;
                }
                let next = later(app.now(), backoff(failures - 1).as_secs() as i64);
                tracing::warn!(delivery = %row.id, endpoint = %row.endpoint, attempt = failures, error = %why, "a webhook was not delivered; it is tried again");
                on_db!(&app.db, p => {
                    sqlx::query("UPDATE webhook_outbox SET attempts = $1, next_attempt_at = $2, last_error = $3 WHERE delivery_id = $4")
                        .bind(failures).bind(next.to_canonical()).bind(&why).bind(&row.id)
                        .execute(p).await.map_err(StoreError::from)?;
                });
            }
        }
    }
    Ok(delivered)
}

fn later(t: Timestamp, seconds: i64) -> Timestamp {
    Timestamp::from_offset(t.as_offset() + time::Duration::seconds(seconds))
}

async fn give_up(app: &App, id: &str, why: &str) -> AppResult<()> {
    on_db!(&app.db, p => {
        sqlx::query("UPDATE webhook_outbox SET given_up_at = $1, last_error = $2 WHERE delivery_id = $3")
            .bind(app.now().to_canonical()).bind(why).bind(id)
            .execute(p).await.map_err(StoreError::from)?;
    });
    Ok(())
}

async fn send(client: &reqwest::Client, e: &Endpoint, row: &Pending) -> Result<(), String> {
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
    let body = row.payload.clone().into_bytes();
    let r = client
        .post(&e.url)
        .header("content-type", "application/json")
        .header("user-agent", "tiaojie-webhooks")
        .header("x-tiaojie-event", &row.event)
        .header("x-tiaojie-delivery", &row.id)
        .header("x-tiaojie-timestamp", &timestamp)
        .header(
            "x-tiaojie-signature",
            format!("sha256={}", signature(&e.secret, &timestamp, &body)),
        )
        .body(body)
        .send()
        .await
        .map_err(|e| format!("{e}"))?;
    if r.status().is_success() {
        Ok(())
    } else {
        Err(format!("the receiver answered {}", r.status()))
    }
}

/// Counts of the outbox, for operators: waiting, delivered, given up.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct OutboxCounts {
    pub waiting: i64,
    pub delivered: i64,
    pub given_up: i64,
}

pub async fn counts(app: &App) -> AppResult<OutboxCounts> {
    let (w, d, g): (Option<i64>, Option<i64>, Option<i64>) = on_db!(&app.db, p => {
        let r = sqlx::query("SELECT SUM(CASE WHEN delivered_at IS NULL AND given_up_at IS NULL THEN 1 ELSE 0 END), SUM(CASE WHEN delivered_at IS NOT NULL THEN 1 ELSE 0 END), SUM(CASE WHEN given_up_at IS NOT NULL THEN 1 ELSE 0 END) FROM webhook_outbox")
            .fetch_one(p).await.map_err(StoreError::from)?;
        (r.try_get(0).map_err(StoreError::from)?, r.try_get(1).map_err(StoreError::from)?, r.try_get(2).map_err(StoreError::from)?)
    });
    Ok(OutboxCounts {
        waiting: w.unwrap_or(0),
        delivered: d.unwrap_or(0),
        given_up: g.unwrap_or(0),
    })
}

/// The webhook loop: every second, what the audit trail adds and what is due to be sent;
/// every minute, the cases gone overdue. Ends when `stop` turns true.
pub async fn run(app: App, mut stop: watch::Receiver<bool>) {
    if app.settings.webhooks.is_empty() {
        return;
    }
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "the webhook client could not be made; no webhook is sent");
            return;
        }
    };
    let mut tick = 0u64;
    loop {
        let step = async {
            enqueue_from_audit(&app).await?;
            if tick % 60 == 0 {
                enqueue_overdue(&app).await?;
            }
            deliver_due(&app, &client).await?;
            Ok::<_, AppError>(())
        };
        if let Err(e) = step.await {
            tracing::warn!(code = %e.code, "the webhook loop failed a round; it goes on");
        }
        tick += 1;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}
