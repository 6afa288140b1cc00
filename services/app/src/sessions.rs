//! Browser sessions: a random id in an HttpOnly, SameSite=Strict cookie; the store keeps
//! only its SHA-256, the account signed in (or, for a sign-in with a token, the token's
//! hash), and a CSRF secret. A session ends when it has been idle too long, at its absolute
//! limit, when its account is disabled or leaves its group (or its token is revoked), or on
//! signing out. A wall screen's kiosk session has no absolute limit and a long idle time.

use base64::Engine;
use rand::RngCore;
use sqlx::Row;
use tiaojie_events::Timestamp;
use tiaojie_projections::{on_db, Db, StoreError};

use crate::auth::hash_token;

/// Idle time after which a session ends.
pub const IDLE_MINUTES: i64 = 120;
/// A session ends this long after sign-in, whatever happens.
pub const MAX_HOURS: i64 = 12;
/// Idle time after which a kiosk's session ends (a wall screen refreshes every minute).
pub const KIOSK_IDLE_DAYS: i64 = 30;

/// Who a session is for.
#[derive(Debug, Clone, Copy)]
pub enum Holder<'a> {
    /// A sign-in with an access token (by its hash).
    Token(&'a str),
    /// A sign-in to an account; `kiosk` for a wall screen's credential.
    Account { id: &'a str, kiosk: bool },
}

pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A live session as found from its cookie.
#[derive(Debug, Clone)]
pub struct Stored {
    pub id_hash: String,
    pub token_hash: String,
    pub csrf: String,
    pub account_id: Option<String>,
    pub kiosk: bool,
}

fn idle(kiosk: bool) -> time::Duration {
    if kiosk {
        time::Duration::days(KIOSK_IDLE_DAYS)
    } else {
        time::Duration::minutes(IDLE_MINUTES)
    }
}

/// Starts a session; answers the cookie value and the CSRF secret. Expired sessions are
/// purged on the way.
pub async fn create(
    db: &Db,
    holder: Holder<'_>,
    address: &str,
    now: Timestamp,
) -> Result<(String, String), StoreError> {
    let id = random_secret();
    let csrf = random_secret();
    let now_s = now.to_canonical();
    let (token_hash, account, kiosk) = match holder {
        Holder::Token(h) => (h, None, false),
        Holder::Account { id, kiosk } => ("", Some(id), kiosk),
    };
    let expires = now.plus(idle(kiosk)).to_canonical();
    on_db!(db, p => {
        sqlx::query("DELETE FROM web_sessions WHERE expires_at < $1")
            .bind(&now_s)
            .execute(p)
            .await?;
        sqlx::query("INSERT INTO web_sessions (id_hash, token_hash, csrf, created_at, last_seen_at, expires_at, account_id, kiosk, address) VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8)")
            .bind(hash_token(&id))
            .bind(token_hash)
            .bind(&csrf)
            .bind(&now_s)
            .bind(&expires)
            .bind(account)
            .bind(kiosk as i64)
            .bind(address)
            .execute(p)
            .await?;
    });
    Ok((id, csrf))
}

/// Finds a live session and slides its idle expiry (at most once a minute).
pub async fn find(db: &Db, cookie: &str, now: Timestamp) -> Result<Option<Stored>, StoreError> {
    if cookie.is_empty() || cookie.len() > 100 {
        return Ok(None);
    }
    let id_hash = hash_token(cookie);
    let now_s = now.to_canonical();
    type Row = (String, String, String, String, Option<String>, i64);
    let row: Option<Row> = on_db!(db, p => {
        sqlx::query("SELECT token_hash, csrf, created_at, last_seen_at, account_id, kiosk FROM web_sessions WHERE id_hash = $1 AND expires_at > $2")
            .bind(&id_hash)
            .bind(&now_s)
            .fetch_optional(p)
            .await?
            .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?, r.try_get(5)?)))
            .transpose()?
    });
    let Some((token_hash, csrf, created, last_seen, account_id, kiosk)) = row else {
        return Ok(None);
    };
    let kiosk = kiosk != 0;
    let created = Timestamp::parse(&created).unwrap_or(now);
    if !kiosk && created.seconds_until(&now) > MAX_HOURS * 3600 {
        delete(db, cookie).await?;
        return Ok(None);
    }
    let last_seen = Timestamp::parse(&last_seen).unwrap_or(now);
    if last_seen.seconds_until(&now) >= 60 {
        let expires = now.plus(idle(kiosk)).to_canonical();
        on_db!(db, p => {
            sqlx::query("UPDATE web_sessions SET last_seen_at = $2, expires_at = $3 WHERE id_hash = $1")
                .bind(&id_hash)
                .bind(&now_s)
                .bind(&expires)
                .execute(p)
                .await?;
        });
    }
    Ok(Some(Stored {
        id_hash,
        token_hash,
        csrf,
        account_id,
        kiosk,
    }))
}

/// A session as its account sees it on its own page.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id_hash: String,
    pub created_at: String,
    pub last_seen_at: String,
    pub address: Option<String>,
}

/// An account's live sessions, newest first.
pub async fn of_account(
    db: &Db,
    account: &str,
    now: Timestamp,
) -> Result<Vec<SessionInfo>, StoreError> {
    on_db!(db, p => {
        Ok(sqlx::query("SELECT id_hash, created_at, last_seen_at, address FROM web_sessions WHERE account_id = $1 AND expires_at > $2 ORDER BY created_at DESC")
            .bind(account)
            .bind(now.to_canonical())
            .fetch_all(p)
            .await?
            .into_iter()
            .map(|r| Ok::<_, sqlx::Error>(SessionInfo { id_hash: r.try_get(0)?, created_at: r.try_get(1)?, last_seen_at: r.try_get(2)?, address: r.try_get(3)? }))
            .collect::<Result<Vec<_>, _>>()?)
    })
}

pub async fn delete(db: &Db, cookie: &str) -> Result<(), StoreError> {
    on_db!(db, p => {
        sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
            .bind(hash_token(cookie))
            .execute(p)
            .await?;
    });
    Ok(())
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
