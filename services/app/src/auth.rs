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
use tiaojie_events::{GroupId, MemberId, Timestamp};
use tiaojie_projections::directory::StoreDirectory;
use tiaojie_projections::{on_db, Db, StoreError};

use crate::accounts::{self, Account};
use tokio::sync::Mutex;

/// Who is acting: taken from the token, never from the request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub organisation: String,
    pub group: Option<GroupId>,
    /// The account acting (None for a token issued before accounts, and the system).
    pub account: Option<String>,
    /// The mediation group's member the account is.
    pub member: Option<MemberId>,
}

impl Actor {
    pub fn system(name: &str) -> Self {
        Self {
            id: "system".into(),
            name: name.into(),
            role: Role::System,
            organisation: "tiaojie".into(),
            group: None,
            account: None,
            member: None,
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
    /// The account the token belongs to (None: issued before accounts existed).
    pub account_id: Option<String>,
    pub expires_at: Option<String>,
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
        account_id: None,
        expires_at: None,
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

/// Creates a token of an account: it acts as the account does, never with more rights,
/// and ends when the account is disabled or leaves its group. Answers it with its secret.
pub async fn create_account_token(
    db: &Db,
    account: &Account,
    name: &str,
    expires_at: Option<Timestamp>,
    now: Timestamp,
) -> Result<(TokenInfo, String), StoreError> {
    let secret = new_secret();
    let info = TokenInfo {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.to_string(),
        role: account.role.as_str().to_string(),
        group_id: account.group_id.map(|g| g.to_string()),
        organisation: account.organisation.clone(),
        created_at: now.to_canonical(),
        revoked_at: None,
        account_id: Some(account.id.clone()),
        expires_at: expires_at.map(|t| t.to_canonical()),
    };
    on_db!(db, p => {
        sqlx::query("INSERT INTO tokens (id, name, role, group_id, organisation, token_hash, created_at, account_id, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(&info.id)
            .bind(&info.name)
            .bind(&info.role)
            .bind(&info.group_id)
            .bind(&info.organisation)
            .bind(hash_token(&secret))
            .bind(&info.created_at)
            .bind(&info.account_id)
            .bind(&info.expires_at)
            .execute(p)
            .await?;
    });
    Ok((info, secret))
}

/// Revokes one of an account's own tokens. Returns false when it has no such live token.
pub async fn revoke_account_token(
    db: &Db,
    account: &str,
    id: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let n = on_db!(db, p => {
        sqlx::query("UPDATE tokens SET revoked_at = $3 WHERE id = $1 AND account_id = $2 AND revoked_at IS NULL")
            .bind(id)
            .bind(account)
            .bind(now.to_canonical())
            .execute(p)
            .await?
            .rows_affected()
    });
    Ok(n == 1)
}

pub async fn list_tokens(db: &Db) -> Result<Vec<TokenInfo>, StoreError> {
    list_tokens_where(db, None).await
}

/// An account's tokens.
pub async fn account_tokens(db: &Db, account: &str) -> Result<Vec<TokenInfo>, StoreError> {
    list_tokens_where(db, Some(account)).await
}

async fn list_tokens_where(db: &Db, account: Option<&str>) -> Result<Vec<TokenInfo>, StoreError> {
    let sql = format!(
        "SELECT id, name, role, group_id, organisation, created_at, revoked_at, account_id, expires_at FROM tokens{} ORDER BY created_at, id",
        if account.is_some() { " WHERE account_id = $1" } else { "" }
    );
    on_db!(db, p => {
        let mut q = sqlx::query(&sql);
        if let Some(a) = account {
            q = q.bind(a);
        }
        let rows = q.fetch_all(p).await?;
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
                    account_id: r.try_get(7)?,
                    expires_at: r.try_get(8)?,
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

/// What a token hash stands for: a token issued before accounts (its actor is fixed), or an
/// account's token, whose actor is read from the account and its group at every use.
#[derive(Debug, Clone)]
enum Credential {
    Fixed(Actor),
    /// A member's or leader's token from before accounts, tied to the group's member it
    /// names: it acts as that member while the member is in the group.
    Member(Actor, GroupId, MemberId),
    Account(String),
}

type Cached = (Instant, Option<Credential>);
type AccountCache = HashMap<String, (Instant, Option<Account>)>;
type TokenRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Token and account lookups, cached briefly. The cache holds what a token is and what an
/// account row says, never what the account may do: that is read from the group directory
/// at every request, and the directory is refreshed at once by this instance's group
/// commands. A change made on this instance (a token revoked, an account disabled) clears
/// the cache at once; one made on another instance is seen within [`CACHE_TTL`] (and a
/// group change within the directory's freshness, one second).
#[derive(Clone)]
pub struct TokenCache {
    db: Db,
    directory: StoreDirectory,
    cache: Arc<Mutex<HashMap<String, Cached>>>,
    accounts: Arc<Mutex<AccountCache>>,
}

pub const CACHE_TTL: Duration = Duration::from_secs(2);

impl TokenCache {
    pub fn new(db: Db, directory: StoreDirectory) -> Self {
        Self {
            db,
            directory,
            cache: Arc::new(Mutex::new(HashMap::new())),
            accounts: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub async fn actor(&self, token: &str) -> Result<Option<Actor>, StoreError> {
        self.actor_by_hash(hash_token(token)).await
    }

    /// The actor of a token known by its hash (a browser session keeps only the hash).
    pub async fn actor_by_hash(&self, hash: String) -> Result<Option<Actor>, StoreError> {
        match self.credential(hash).await? {
            None => Ok(None),
            Some(Credential::Fixed(a)) => Ok(Some(a)),
            Some(Credential::Member(a, group, member)) => {
                let Some(state) = self.directory.group_state(&group).await? else {
                    return Ok(None);
                };
                let Some(m) = state.members.get(&member) else {
                    return Ok(None);
                };
                Ok(Some(Actor {
                    name: m.name.clone(),
                    role: if state.leader == Some(member) {
                        Role::Leader
                    } else {
                        Role::Member
                    },
                    member: Some(member),
                    ..a
                }))
            }
            Some(Credential::Account(id)) => {
                Ok(self.account_actor(&id).await?.map(|(_, actor)| actor))
            }
        }
    }

    async fn credential(&self, hash: String) -> Result<Option<Credential>, StoreError> {
        {
            let cache = self.cache.lock().await;
            if let Some((at, c)) = cache.get(&hash) {
                if at.elapsed() < CACHE_TTL {
                    return Ok(c.clone());
                }
            }
        }
        let row: Option<TokenRow> = on_db!(&self.db, p => {
            sqlx::query("SELECT id, name, role, group_id, organisation, revoked_at, account_id, expires_at, member_id FROM tokens WHERE token_hash = $1")
                .bind(&hash)
                .fetch_optional(p)
                .await?
                .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?, r.try_get(5)?, r.try_get(6)?, r.try_get(7)?, r.try_get(8)?)))
                .transpose()?
        });
        let now = time::OffsetDateTime::now_utc();
        let credential = row.and_then(
            |(id, name, role, group, organisation, revoked, account, expires, member)| {
                if revoked.is_some() {
                    return None;
                }
                if let Some(e) = expires.as_deref().and_then(|e| Timestamp::parse(e).ok()) {
                    if e.as_offset() <= now {
                        return None;
                    }
                }
                if let Some(a) = account {
                    return Some(Credential::Account(a));
                }
                let actor = Actor {
                    id,
                    name,
                    role: Role::parse(&role)?,
                    organisation,
                    group: group.and_then(|g| GroupId::parse(&g).ok()),
                    account: None,
                    member: None,
                };
                match (actor.group, member.and_then(|m| MemberId::parse(&m).ok())) {
                    (Some(g), Some(m)) if actor.is_group_role() => {
                        Some(Credential::Member(actor, g, m))
                    }
                    _ => Some(Credential::Fixed(actor)),
                }
            },
        );
        let mut cache = self.cache.lock().await;
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(hash, (Instant::now(), credential.clone()));
        Ok(credential)
    }

    /// An account and what it may do now; None when it is disabled or gone, or its member
    /// has left the group.
    pub async fn account_actor(&self, id: &str) -> Result<Option<(Account, Actor)>, StoreError> {
        let cached = {
            let cache = self.accounts.lock().await;
            cache
                .get(id)
                .filter(|(at, _)| at.elapsed() < CACHE_TTL)
                .map(|(_, a)| a.clone())
        };
        let account = match cached {
            Some(a) => a,
            None => {
                let a = accounts::by_id_in(&self.db, id).await?;
                let mut cache = self.accounts.lock().await;
                if cache.len() > 10_000 {
                    cache.clear();
                }
                cache.insert(id.to_string(), (Instant::now(), a.clone()));
                a
            }
        };
        let Some(account) = account else {
            return Ok(None);
        };
        Ok(accounts::actor_in(&self.directory, &account)
            .await?
            .map(|actor| (account, actor)))
    }

    pub async fn forget_all(&self) {
        self.cache.lock().await.clear();
        self.accounts.lock().await.clear();
    }

    /// Ties each member's or leader's token from before accounts to the member of its group
    /// whose name it bears (the demo and most operators named tokens so), once: from then
    /// on it acts as that member and stops when the member leaves the group. A token that
    /// names no member, or several, keeps its fixed role. Answers how many were tied.
    pub async fn tie_old_tokens(&self) -> Result<usize, StoreError> {
        let rows: Vec<(String, String, String)> = on_db!(&self.db, p => {
            sqlx::query("SELECT id, name, group_id FROM tokens WHERE account_id IS NULL AND member_id IS NULL AND group_id IS NOT NULL AND role IN ('member', 'leader') AND revoked_at IS NULL")
                .fetch_all(p)
                .await?
                .into_iter()
                .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                .collect::<Result<Vec<_>, _>>()?
        });
        if rows.is_empty() {
            return Ok(0);
        }
        let groups = self.directory.groups_now().await?;
        let mut tied = 0;
        for (id, name, group) in rows {
            let Some((_, state)) = groups.iter().find(|(g, _)| g.to_string() == group) else {
                continue;
            };
            let named: Vec<_> = state.members.values().filter(|m| m.name == name).collect();
            let [m] = named.as_slice() else { continue };
            on_db!(&self.db, p => {
                sqlx::query("UPDATE tokens SET member_id = $2 WHERE id = $1")
                    .bind(&id)
                    .bind(m.member_id.to_string())
                    .execute(p)
                    .await?;
            });
            tied += 1;
        }
        self.forget_all().await;
        Ok(tied)
    }
}
