//! Bearer tokens and what each role may do.
//!
//! Tokens are 32 random bytes, shown once; only their SHA-256 is stored. Roles:
//! - `member`: a mediation group's member; acts on cases in the group's communities.
//! - `leader`: as a member, plus assignment, escalation, closure and reopening.
//! - `supervisor`: reads everything, audits; writes only supervision orders.
//! - `dashboard`: reads heat, statistics and counts only.
//! - `admin`: manages groups and tokens; writes no case.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;
use tiaojie_events::case::CaseCommand;
use tiaojie_events::metadata::Role;
use tiaojie_events::{GroupId, Timestamp};
use tiaojie_projections::{on_db, Db, StoreError};
use tokio::sync::Mutex;

/// Who is acting: taken from the token, never from the request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub organisation: String,
    pub group: Option<GroupId>,
}

impl Actor {
    pub fn system(name: &str) -> Self {
        Self {
            id: "system".into(),
            name: name.into(),
            role: Role::System,
            organisation: "tiaojie".into(),
            group: None,
        }
    }

    pub fn is_group_role(&self) -> bool {
        matches!(self.role, Role::Member | Role::Leader)
    }

    /// May read case detail and lists (members and leaders only within their group).
    pub fn reads_cases(&self) -> bool {
        matches!(
            self.role,
            Role::Member | Role::Leader | Role::Supervisor | Role::System
        )
    }

    pub fn reads_audit(&self) -> bool {
        matches!(self.role, Role::Supervisor | Role::System)
    }
}

/// Which roles may run a case command (group scope is checked separately).
pub fn may_run_case_command(
    role: Role,
    command: &CaseCommand,
) -> Result<(), (&'static str, &'static str)> {
    may_run_case_step(role, command.name())
}

/// Which roles may run a case step, by its command name ([`CaseCommand::name`]): checked
/// before a request's body is read. The table is [`crate::steps::CASE_STEPS`].
pub fn may_run_case_step(role: Role, step: &str) -> Result<(), (&'static str, &'static str)> {
    crate::steps::may_run(role, step)
}

pub fn may_manage_groups(role: Role) -> Result<(), (&'static str, &'static str)> {
    match role {
        Role::Admin | Role::System => Ok(()),
        _ => Err((
            "only an administrator manages mediation groups",
            "只有管理员可以管理矛盾调解小组",
        )),
    }
}

/// A stored token, without its secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub role: String,
    pub group_id: Option<String>,
    pub organisation: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!(
        "tj_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Creates a token and returns it with its secret (shown once).
pub async fn create_token(
    db: &Db,
    name: &str,
    role: Role,
    group: Option<GroupId>,
    organisation: &str,
    now: Timestamp,
) -> Result<(TokenInfo, String), StoreError> {
    let secret = new_secret();
    let info = TokenInfo {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.to_string(),
        role: role.as_str().to_string(),
        group_id: group.map(|g| g.to_string()),
        organisation: organisation.to_string(),
        created_at: now.to_canonical(),
        revoked_at: None,
    };
    on_db!(db, p => {
        sqlx::query("INSERT INTO tokens (id, name, role, group_id, organisation, token_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&info.id)
            .bind(&info.name)
            .bind(&info.role)
            .bind(&info.group_id)
            .bind(&info.organisation)
            .bind(hash_token(&secret))
            .bind(&info.created_at)
            .execute(p)
            .await?;
    });
    Ok((info, secret))
}

pub async fn list_tokens(db: &Db) -> Result<Vec<TokenInfo>, StoreError> {
    on_db!(db, p => {
        let rows = sqlx::query("SELECT id, name, role, group_id, organisation, created_at, revoked_at FROM tokens ORDER BY created_at, id")
            .fetch_all(p)
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(TokenInfo {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    role: r.try_get(2)?,
                    group_id: r.try_get(3)?,
                    organisation: r.try_get(4)?,
                    created_at: r.try_get(5)?,
                    revoked_at: r.try_get(6)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(StoreError::from)
    })
}

/// Revokes a token by id (or by a unique prefix of it). Returns false when none matched.
pub async fn revoke_token(db: &Db, id: &str, now: Timestamp) -> Result<bool, StoreError> {
    let n = on_db!(db, p => {
        sqlx::query("UPDATE tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(now.to_canonical())
            .execute(p)
            .await?
            .rows_affected()
    });
    Ok(n == 1)
}

pub async fn count_tokens(db: &Db) -> Result<i64, StoreError> {
    on_db!(db, p => Ok(sqlx::query_scalar("SELECT COUNT(*) FROM tokens").fetch_one(p).await?))
}

type Cached = (Instant, Option<Actor>);
type TokenRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
);

/// Token lookups, cached briefly: a revoked token stops working within [`CACHE_TTL`].
#[derive(Clone)]
pub struct TokenCache {
    db: Db,
    cache: Arc<Mutex<HashMap<String, Cached>>>,
}

pub const CACHE_TTL: Duration = Duration::from_secs(2);

impl TokenCache {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub async fn actor(&self, token: &str) -> Result<Option<Actor>, StoreError> {
        self.actor_by_hash(hash_token(token)).await
    }

    /// The actor of a token known by its hash (a browser session keeps only the hash).
    pub async fn actor_by_hash(&self, hash: String) -> Result<Option<Actor>, StoreError> {
        {
            let cache = self.cache.lock().await;
            if let Some((at, actor)) = cache.get(&hash) {
                if at.elapsed() < CACHE_TTL {
                    return Ok(actor.clone());
                }
            }
        }
        let row: Option<TokenRow> = on_db!(&self.db, p => {
            sqlx::query("SELECT id, name, role, group_id, organisation, revoked_at FROM tokens WHERE token_hash = $1")
                .bind(&hash)
                .fetch_optional(p)
                .await?
                .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?, r.try_get(5)?)))
                .transpose()?
        });
        let actor = row.and_then(|(id, name, role, group, organisation, revoked)| {
            if revoked.is_some() {
                return None;
            }
            Some(Actor {
                id,
                name,
                role: Role::parse(&role)?,
                organisation,
                group: group.and_then(|g| GroupId::parse(&g).ok()),
            })
        });
        let mut cache = self.cache.lock().await;
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(hash, (Instant::now(), actor.clone()));
        Ok(actor)
    }

    pub async fn forget_all(&self) {
        self.cache.lock().await.clear();
    }
}
