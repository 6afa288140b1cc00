//! Accounts: the people who sign in, and the kiosks of wall screens.
//!
//! - A password is kept as an argon2id hash (the `argon2` crate, OWASP's parameters:
//!   19 MiB, 2 passes, 1 lane). A one-time password (new account, reset) must be changed at
//!   the first sign-in.
//! - Failed sign-ins slow down from the [`SLOW_AFTER`]th and lock the account for
//!   [`LOCK_MINUTES`] at the [`LOCK_AFTER`]th; the client address has its own limit
//!   ([`crate::limits::Limits::auth_failures`]). Administrators can unlock.
//! - A second factor (TOTP, RFC 6238: SHA-1, 6 digits, 30 s, one step of skew) can be
//!   turned on per account, and required by configuration for supervisors and admins.
//! - A member's or leader's account is linked to a member of a mediation group. What it may
//!   do is read from the group's current state at every request ([`actor_of`]): removed
//!   from the group, it can do nothing; the group's leader has the leader's powers; the
//!   group's communities are its scope.
//! - Sign-ins, sign-outs, failures, lockouts, password changes and resets are written to
//!   the access log with the time, the client's address and the account.
//!
//! The phone and the second factor's secret are sealed with the account's own data key.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::Rng;
use serde::Serialize;
use sqlx::Row;
use tiaojie_events::group::MediationGroup;
use tiaojie_events::metadata::Role;
use tiaojie_events::{GroupId, MemberId, Timestamp};
use tiaojie_projections::crypto::{open_with, seal_with, KeyKind};
use tiaojie_projections::directory::StoreDirectory;
use tiaojie_projections::{on_db, Db, StoreError};

use crate::app::App;
use crate::app_error::{AppError, AppResult, ErrorKind};
use crate::auth::Actor;

/// Failed sign-ins after which each further failure is answered more slowly.
pub const SLOW_AFTER: i64 = 3;
/// Failed sign-ins in a row after which the account is locked.
pub const LOCK_AFTER: i64 = 5;
/// How long a lock lasts (an administrator can lift it sooner).
pub const LOCK_MINUTES: i64 = 15;

pub const LOGIN_RULE_ZH: &str = "登录名为3至32位小写英文字母、数字、点、横线或下划线，以字母开头";
pub const LOGIN_RULE_EN: &str =
    "A login is 3-32 lower-case letters, digits, dots, dashes or underscores, starting with a letter";
pub const PASSWORD_RULE_ZH: &str =
    "密码至少10位，须含字母、数字、符号中的至少两类，且不能包含登录名";
pub const PASSWORD_RULE_EN: &str = "A password has at least 10 characters, of at least two kinds among letters, digits and symbols, and does not contain the login";

/// A person, or a wall screen's kiosk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Person,
    Kiosk,
}

impl Kind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Person => "person",
            Kind::Kiosk => "kiosk",
        }
    }
}

/// An account as stored, without its secrets.
#[derive(Debug, Clone, Serialize)]
pub struct Account {
    pub id: String,
    pub login: String,
    pub display_name: String,
    pub organisation: String,
    /// As stored: `member` for every group account (leadership is the group's to say),
    /// `supervisor`, `dashboard` or `admin`.
    pub role: Role,
    pub kind: Kind,
    pub group_id: Option<GroupId>,
    pub member_id: Option<MemberId>,
    #[serde(skip)]
    pub password_hash: Option<String>,
    pub must_change: bool,
    pub totp_enabled: bool,
    #[serde(skip)]
    pub totp_sealed: Option<String>,
    #[serde(skip)]
    pub phone_sealed: Option<String>,
    pub failed_count: i64,
    pub locked_until: Option<String>,
    pub disabled_at: Option<String>,
    pub created_at: String,
    pub last_sign_in_at: Option<String>,
    pub last_sign_in_from: Option<String>,
}

impl Account {
    /// Whether a password is this account's. An account without one costs the same work,
    /// so that timing does not tell them apart.
    pub async fn password_matches(&self, password: &str) -> bool {
        match &self.password_hash {
            Some(h) => verify_password(h, password).await,
            None => {
                let _ = verify_password(dummy_hash(), password).await;
                false
            }
        }
    }

    /// Whether the account's member is still in its group.
    async fn still_in_group(&self, app: &App) -> AppResult<bool> {
        Ok(match (self.group_id, self.member_id) {
            (Some(g), Some(m)) => app
                .directory
                .group_state(&g)
                .await?
                .is_some_and(|s| s.members.contains_key(&m)),
            _ => false,
        })
    }

    /// Whether the login can go to a new member: a member's account whose member left.
    async fn linkable(&self, app: &App) -> AppResult<bool> {
        Ok(self.role == Role::Member
            && self.kind == Kind::Person
            && !self.still_in_group(app).await?)
    }

    pub fn is_group_account(&self) -> bool {
        self.group_id.is_some()
    }

    pub fn locked(&self, now: Timestamp) -> Option<Timestamp> {
        self.locked_until
            .as_deref()
            .and_then(|t| Timestamp::parse(t).ok())
            .filter(|t| now.seconds_until(t) > 0)
    }
}

const COLUMNS: &str = "id, login, display_name, organisation, role, kind, group_id, member_id, password_hash, must_change, totp_enabled, totp_sealed, phone_sealed, failed_count, locked_until, disabled_at, created_at, last_sign_in_at, last_sign_in_from";

fn from_row<R: Row>(r: &R) -> Result<Account, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    Option<String>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let role: String = r.try_get("role")?;
    let kind: String = r.try_get("kind")?;
    let group: Option<String> = r.try_get("group_id")?;
    let member: Option<String> = r.try_get("member_id")?;
    Ok(Account {
        id: r.try_get("id")?,
        login: r.try_get("login")?,
        display_name: r.try_get("display_name")?,
        organisation: r.try_get("organisation")?,
        role: Role::parse(&role).unwrap_or(Role::Dashboard),
        kind: if kind == "kiosk" {
            Kind::Kiosk
        } else {
            Kind::Person
        },
        group_id: group.and_then(|g| GroupId::parse(&g).ok()),
        member_id: member.and_then(|m| MemberId::parse(&m).ok()),
        password_hash: r.try_get("password_hash")?,
        must_change: r.try_get::<i64, _>("must_change")? != 0,
        totp_enabled: r.try_get::<i64, _>("totp_enabled")? != 0,
        totp_sealed: r.try_get("totp_sealed")?,
        phone_sealed: r.try_get("phone_sealed")?,
        failed_count: r.try_get("failed_count")?,
        locked_until: r.try_get("locked_until")?,
        disabled_at: r.try_get("disabled_at")?,
        created_at: r.try_get("created_at")?,
        last_sign_in_at: r.try_get("last_sign_in_at")?,
        last_sign_in_from: r.try_get("last_sign_in_from")?,
    })
}

// ---- rules ----

/// A login as stored (lower case), or the rule it breaks.
pub fn check_login(login: &str) -> AppResult<String> {
    let l = login.trim().to_lowercase();
    let ok = (3..=32).contains(&l.len())
        && l.starts_with(|c: char| c.is_ascii_lowercase())
        && l.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if ok {
        Ok(l)
    } else {
        Err(AppError::invalid("bad_login", LOGIN_RULE_EN, LOGIN_RULE_ZH)
            .with_field("login", LOGIN_RULE_ZH))
    }
}

/// Whether a new password follows the rule ([`PASSWORD_RULE_ZH`]).
pub fn check_password(login: &str, password: &str, field: &str) -> AppResult<()> {
    let kinds = [
        password.chars().any(|c| c.is_alphabetic()),
        password.chars().any(|c| c.is_ascii_digit()),
        password
            .chars()
            .any(|c| !c.is_alphanumeric() && !c.is_whitespace()),
    ]
    .iter()
    .filter(|k| **k)
    .count();
    let long_enough = password.chars().count() >= 10 && password.len() <= 200;
    let has_login = !login.is_empty() && password.to_lowercase().contains(&login.to_lowercase());
    if long_enough && kinds >= 2 && !has_login {
        Ok(())
    } else {
        Err(
            AppError::invalid("weak_password", PASSWORD_RULE_EN, PASSWORD_RULE_ZH)
                .with_field(field, PASSWORD_RULE_ZH),
        )
    }
}

fn argon2() -> Argon2<'static> {
    // OWASP's first recommended argon2id setting: m=19 MiB, t=2, p=1.
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The argon2id hash of a password (PHC string), computed off the async threads.
pub async fn hash_password(password: &str) -> AppResult<String> {
    let password = zeroize::Zeroizing::new(password.to_string());
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .map_err(|_| AppError::internal())?
    .map_err(|e| {
        tracing::error!(error = %e, "hashing a password failed");
        AppError::internal()
    })
}

/// Whether a password matches a stored hash (false for a malformed hash).
pub async fn verify_password(hash: &str, password: &str) -> bool {
    let (hash, password) = (
        hash.to_string(),
        zeroize::Zeroizing::new(password.to_string()),
    );
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A one-time password: 12 characters in three groups, letters and digits, without the
/// ones that look alike (0/O, 1/l/I).
pub fn one_time_password() -> String {
    const LETTERS: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";
    const DIGITS: &[u8] = b"23456789";
    let mut rng = rand::thread_rng();
    let mut groups = Vec::new();
    for _ in 0..3 {
        let mut g = String::new();
        for i in 0..4 {
            let set = if i == 3 { DIGITS } else { LETTERS };
            g.push(set[rng.gen_range(0..set.len())] as char);
        }
        groups.push(g);
    }
    groups.join("-")
}

/// A kiosk's login (never typed: a screen signs in with its key).
pub fn new_kiosk_login() -> String {
    format!("kiosk-{}", &uuid::Uuid::now_v7().simple().to_string()[20..])
}

// ---- storage ----

pub async fn by_login(app: &App, login: &str) -> AppResult<Option<Account>> {
    by_login_in(&app.db, login).await.map_err(AppError::from)
}

pub async fn by_login_in(db: &Db, login: &str) -> Result<Option<Account>, StoreError> {
    let login = login.trim().to_lowercase();
    if login.is_empty() || login.len() > 64 {
        return Ok(None);
    }
    let sql = format!("SELECT {COLUMNS} FROM accounts WHERE login = $1");
    Ok(on_db!(db, p => {
        sqlx::query(&sql).bind(&login).fetch_optional(p).await?.map(|r| from_row(&r)).transpose()?
    }))
}

pub async fn by_id(app: &App, id: &str) -> AppResult<Option<Account>> {
    by_id_in(&app.db, id).await.map_err(AppError::from)
}

pub async fn by_id_in(db: &Db, id: &str) -> Result<Option<Account>, StoreError> {
    if id.is_empty() || id.len() > 64 {
        return Ok(None);
    }
    let sql = format!("SELECT {COLUMNS} FROM accounts WHERE id = $1");
    Ok(on_db!(db, p => {
        sqlx::query(&sql).bind(id).fetch_optional(p).await?.map(|r| from_row(&r)).transpose()?
    }))
}

/// The account linked to a group's member, if any.
pub async fn by_member(
    app: &App,
    group: &GroupId,
    member: &MemberId,
) -> AppResult<Option<Account>> {
    let sql = format!("SELECT {COLUMNS} FROM accounts WHERE group_id = $1 AND member_id = $2");
    Ok(on_db!(&app.db, p => {
        sqlx::query(&sql).bind(group.to_string()).bind(member.to_string()).fetch_optional(p).await?.map(|r| from_row(&r)).transpose()?
    }))
}

pub async fn list(app: &App) -> AppResult<Vec<Account>> {
    let sql = format!("SELECT {COLUMNS} FROM accounts ORDER BY kind, role, login");
    Ok(on_db!(&app.db, p => {
        sqlx::query(&sql).fetch_all(p).await?.iter().map(from_row).collect::<Result<Vec<_>, _>>()?
    }))
}

pub async fn count(app: &App) -> Result<i64, StoreError> {
    on_db!(&app.db, p => Ok(sqlx::query_scalar("SELECT COUNT(*) FROM accounts").fetch_one(p).await?))
}

/// What a new account is.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub login: String,
    pub display_name: String,
    pub organisation: String,
    pub role: Role,
    pub kind: Kind,
    /// For a member or leader: the group and the member the account is.
    pub member: Option<(GroupId, MemberId)>,
    pub phone: Option<String>,
    /// A password chosen now (the demo); None gives a one-time password.
    pub password: Option<String>,
}

/// Creates an account; answers it with its one-time password (shown once).
pub async fn create(
    app: &App,
    new: NewAccount,
    by: &Actor,
    address: &str,
) -> AppResult<(Account, String)> {
    let login = check_login(&new.login)?;
    let display_name = new.display_name.trim();
    if display_name.is_empty() || display_name.chars().count() > 60 {
        return Err(AppError::invalid(
            "bad_name",
            "The display name must be 1-60 characters",
            "姓名须为1至60个字",
        )
        .with_field("name", "姓名须为1至60个字"));
    }
    let role = match new.role {
        Role::Leader => Role::Member,
        Role::System => {
            return Err(AppError::invalid(
                "bad_role",
                "An account's role is member, leader, supervisor, dashboard or admin",
                "角色须为调解员、组长、督查室、大屏或管理员",
            )
            .with_field("role", "请选择角色"))
        }
        r => r,
    };
    if (role == Role::Member) != new.member.is_some() {
        return Err(AppError::invalid(
            "bad_group",
            "A member's or leader's account needs its mediation group; other roles have none",
            "调解员和组长账号须属于一个矛盾调解小组，其他角色不属于小组",
        )
        .with_field("group", "调解员和组长须选择所在小组"));
    }
    if by_login(app, &login).await?.is_some() {
        return Err(
            AppError::refused("login_taken", "This login is taken", "该登录名已被使用")
                .with_field("login", "该登录名已被使用"),
        );
    }
    if let Some((g, m)) = &new.member {
        if by_member(app, g, m).await?.is_some() {
            return Err(AppError::refused(
                "member_has_account",
                "This member already has an account",
                "该成员已有账号",
            ));
        }
    }
    let (password, must_change) = match &new.password {
        Some(p) => {
            check_password(&login, p, "password")?;
            (p.clone(), false)
        }
        // A kiosk never signs in with a password (its key is a token): nothing to change.
        None => (one_time_password(), new.kind == Kind::Person),
    };
    let hash = hash_password(&password).await?;
    let id = uuid::Uuid::now_v7().to_string();
    let now = app.now().to_canonical();
    let phone = match new
        .phone
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        Some(p) => Some(seal(app, &id, "phone", p).await?),
        None => None,
    };
    let inserted: Result<(), sqlx::Error> = on_db!(&app.db, p => {
        sqlx::query("INSERT INTO accounts (id, login, display_name, organisation, role, kind, group_id, member_id, phone_sealed, password_hash, must_change, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
            .bind(&id)
            .bind(&login)
            .bind(display_name)
            .bind(new.organisation.trim())
            .bind(role.as_str())
            .bind(new.kind.as_str())
            .bind(new.member.map(|(g, _)| g.to_string()))
            .bind(new.member.map(|(_, m)| m.to_string()))
            .bind(&phone)
            .bind(&hash)
            .bind(must_change as i64)
            .bind(&now)
            .execute(p)
            .await
            .map(|_| ())
    });
    match inserted {
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
            return Err(
                AppError::refused("login_taken", "This login is taken", "该登录名已被使用")
                    .with_field("login", "该登录名已被使用"),
            )
        }
        r => r.map_err(StoreError::from)?,
    }
    let account = by_id(app, &id).await?.ok_or_else(AppError::internal)?;
    log(app, by, &account, "account_created", None, address).await?;
    Ok((account, password))
}

async fn seal(app: &App, id: &str, what: &str, plain: &str) -> AppResult<String> {
    let key = app
        .keys
        .get_or_create(KeyKind::Account, id)
        .await
        .map_err(|e| AppError::store(e.into()))?
        .ok_or_else(AppError::internal)?;
    Ok(seal_with(
        &key,
        format!("account:{id}:{what}").as_bytes(),
        plain.as_bytes(),
    ))
}

async fn open(app: &App, id: &str, what: &str, sealed: &str) -> AppResult<Option<String>> {
    use tiaojie_projections::crypto::DataKey;
    match app
        .keys
        .get(KeyKind::Account, id)
        .await
        .map_err(|e| AppError::store(e.into()))?
    {
        DataKey::Active(k) => Ok(
            open_with(&k, format!("account:{id}:{what}").as_bytes(), sealed)
                .and_then(|b| String::from_utf8(b).ok()),
        ),
        _ => Ok(None),
    }
}

/// The account's phone, opened.
pub async fn phone(app: &App, account: &Account) -> AppResult<Option<String>> {
    match &account.phone_sealed {
        Some(s) => open(app, &account.id, "phone", s).await,
        None => Ok(None),
    }
}

/// Changes an account's row; this instance's cached copy of it is dropped at once.
async fn exec(app: &App, sql: &str, id: &str, args: &[Option<String>]) -> AppResult<u64> {
    let n = on_db!(&app.db, p => {
        let mut q = sqlx::query(sql).bind(id);
        for a in args {
            q = q.bind(a.clone());
        }
        q.execute(p).await?.rows_affected()
    });
    app.tokens.forget_all().await;
    Ok(n)
}

/// Writes an entry about an account to the access log.
pub async fn log(
    app: &App,
    by: &Actor,
    account: &Account,
    action: &str,
    detail: Option<&str>,
    address: &str,
) -> AppResult<()> {
    log_raw(app, by, Some(&account.id), action, detail, address).await
}

async fn log_raw(
    app: &App,
    by: &Actor,
    account: Option<&str>,
    action: &str,
    detail: Option<&str>,
    address: &str,
) -> AppResult<()> {
    let reason = match (account, detail) {
        (Some(a), Some(d)) if a != by.id => Some(format!("account {a}: {d}")),
        (Some(a), None) if a != by.id => Some(format!("account {a}")),
        (_, d) => d.map(str::to_string),
    };
    on_db!(&app.db, p => {
        sqlx::query("INSERT INTO access_log (at, actor_id, actor_name, role, party_id, case_id, action, reason, request_id, address) VALUES ($1, $2, $3, $4, NULL, NULL, $5, $6, $7, $8)")
            .bind(app.now().to_canonical())
            .bind(&by.id)
            .bind(&by.name)
            .bind(by.role.as_str())
            .bind(action)
            .bind(&reason)
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(address)
            .execute(p)
            .await?;
    });
    tracing::info!(actor_id = %by.id, action, account, client = address, "account event");
    Ok(())
}

/// The actor an account acts as for its own actions on itself (sign-in, password change).
pub fn self_actor(a: &Account) -> Actor {
    Actor {
        id: a.id.clone(),
        name: a.display_name.clone(),
        role: a.role,
        organisation: a.organisation.clone(),
        group: a.group_id,
        account: Some(a.id.clone()),
        member: a.member_id,
    }
}

/// Ends every web session of an account (all but `except`, an id hash) and, with
/// `tokens`, revokes its tokens.
pub async fn end_sessions(
    app: &App,
    id: &str,
    except: Option<&str>,
    tokens: bool,
) -> AppResult<()> {
    on_db!(&app.db, p => {
        sqlx::query("DELETE FROM web_sessions WHERE account_id = $1 AND id_hash <> $2")
            .bind(id)
            .bind(except.unwrap_or(""))
            .execute(p)
            .await?;
        if tokens {
            sqlx::query("UPDATE tokens SET revoked_at = $2 WHERE account_id = $1 AND revoked_at IS NULL")
                .bind(id)
                .bind(app.now().to_canonical())
                .execute(p)
                .await?;
        }
    });
    app.tokens.forget_all().await;
    Ok(())
}

/// Links an existing member account to a (new) member of a group: a person who left one
/// group and joins another keeps their login. Refused for other accounts, and for an
/// account whose member is still in a group.
pub async fn link_member(
    app: &App,
    account: &Account,
    group: GroupId,
    member: MemberId,
    by: &Actor,
    address: &str,
) -> AppResult<()> {
    if !account.linkable(app).await? {
        return Err(login_taken());
    }
    exec(
        app,
        "UPDATE accounts SET group_id = $2, member_id = $3 WHERE id = $1",
        &account.id,
        &[Some(group.to_string()), Some(member.to_string())],
    )
    .await?;
    log(
        app,
        by,
        account,
        "account_linked",
        Some(&format!("group {group}")),
        address,
    )
    .await
}

/// Whether a login can be given to a new member: free, or an account that can be linked
/// ([`link_member`]). Answers the account to link, if any. Checked before the member is
/// added, so that a refusal writes nothing.
pub async fn login_for_new_member(app: &App, login: &str) -> AppResult<Option<Account>> {
    let login = check_login(login)?;
    match by_login(app, &login).await? {
        None => Ok(None),
        Some(existing) if existing.linkable(app).await? => Ok(Some(existing)),
        Some(_) => Err(login_taken()),
    }
}

fn login_taken() -> AppError {
    AppError::refused("login_taken", "This login is taken", "该登录名已被使用")
        .with_field("login", "该登录名已被使用")
}

/// A new one-time password, to be changed at the next sign-in; unlocks, and ends the
/// account's sessions.
pub async fn reset(app: &App, id: &str, by: &Actor, address: &str) -> AppResult<String> {
    let account = by_id(app, id)
        .await?
        .ok_or_else(|| AppError::not_found("account"))?;
    let password = one_time_password();
    let hash = hash_password(&password).await?;
    exec(app, "UPDATE accounts SET password_hash = $2, must_change = 1, failed_count = 0, locked_until = NULL WHERE id = $1", id, &[Some(hash)]).await?;
    end_sessions(app, id, None, false).await?;
    log(app, by, &account, "password_reset", None, address).await?;
    Ok(password)
}

/// Disables (revoking its tokens and ending its sessions) or enables an account.
pub async fn set_disabled(
    app: &App,
    id: &str,
    disabled: bool,
    by: &Actor,
    address: &str,
) -> AppResult<Account> {
    let account = by_id(app, id)
        .await?
        .ok_or_else(|| AppError::not_found("account"))?;
    if disabled && by.account.as_deref() == Some(id) {
        return Err(AppError::refused(
            "own_account",
            "You cannot disable your own account",
            "不能停用自己的账号",
        ));
    }
    let at = disabled.then(|| app.now().to_canonical());
    exec(
        app,
        "UPDATE accounts SET disabled_at = $2 WHERE id = $1",
        id,
        &[at],
    )
    .await?;
    if disabled {
        end_sessions(app, id, None, true).await?;
    }
    app.tokens.forget_all().await;
    log(
        app,
        by,
        &account,
        if disabled {
            "account_disabled"
        } else {
            "account_enabled"
        },
        None,
        address,
    )
    .await?;
    by_id(app, id).await?.ok_or_else(AppError::internal)
}

pub async fn unlock(app: &App, id: &str, by: &Actor, address: &str) -> AppResult<()> {
    let account = by_id(app, id)
        .await?
        .ok_or_else(|| AppError::not_found("account"))?;
    exec(
        app,
        "UPDATE accounts SET failed_count = 0, locked_until = NULL WHERE id = $1",
        id,
        &[],
    )
    .await?;
    log(app, by, &account, "account_unlocked", None, address).await
}

/// Changes one's own password (the current one is asked for again).
pub async fn change_password(
    app: &App,
    account: &Account,
    current: &str,
    new: &str,
    confirm: &str,
    session: Option<&str>,
    address: &str,
) -> AppResult<()> {
    if !account.password_matches(current).await {
        return Err(AppError::refused(
            "wrong_password",
            "The current password is not right",
            "当前密码不正确",
        )
        .with_field("current", "当前密码不正确"));
    }
    check_password(&account.login, new, "new")?;
    if new != confirm {
        return Err(AppError::invalid(
            "passwords_differ",
            "The two new passwords differ",
            "两次输入的新密码不一致",
        )
        .with_field("confirm", "两次输入的新密码不一致"));
    }
    if new == current {
        return Err(AppError::invalid(
            "same_password",
            "The new password must differ from the current one",
            "新密码不能与当前密码相同",
        )
        .with_field("new", "新密码不能与当前密码相同"));
    }
    let hash = hash_password(new).await?;
    exec(
        app,
        "UPDATE accounts SET password_hash = $2, must_change = 0 WHERE id = $1",
        &account.id,
        &[Some(hash)],
    )
    .await?;
    // Other sessions end: whoever knew the old password is signed out.
    end_sessions(app, &account.id, session, false).await?;
    log(
        app,
        &self_actor(account),
        account,
        "password_changed",
        None,
        address,
    )
    .await
}

// ---- signing in ----

/// Why a sign-in was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown login, wrong password, disabled account: one answer for all.
    Wrong,
    Locked {
        minutes: i64,
    },
    /// The password was right; the second factor's code is needed.
    CodeNeeded,
    CodeWrong,
    /// A member's account whose member has left the group.
    NotInGroup,
}

impl Refusal {
    pub fn message(&self, en: bool) -> String {
        match (self, en) {
            (Refusal::Wrong, false) => "登录名或密码不正确".into(),
            (Refusal::Wrong, true) => "The login or the password is not right".into(),
            (Refusal::Locked { minutes }, false) => {
                format!("登录失败次数过多，账号已锁定，请{minutes}分钟后再试，或请管理员解锁")
            }
            (Refusal::Locked { minutes }, true) => format!(
                "Too many failed sign-ins: the account is locked; try again in {minutes} minutes, or ask an administrator to unlock it"
            ),
            (Refusal::CodeNeeded, false) => "请输入手机验证器上的6位动态验证码".into(),
            (Refusal::CodeNeeded, true) => {
                "Enter the 6-digit code from your authenticator app".into()
            }
            (Refusal::CodeWrong, false) => "动态验证码不正确或已过期".into(),
            (Refusal::CodeWrong, true) => "The code is not right or has expired".into(),
            (Refusal::NotInGroup, false) => {
                "您已不在所属的矛盾调解小组中，账号不能再使用；如有疑问请联系管理员".into()
            }
            (Refusal::NotInGroup, true) => {
                "You are no longer a member of your mediation group; ask your administrator"
                    .into()
            }
        }
    }
}

fn anonymous(login: &str) -> Actor {
    Actor {
        id: "anonymous".into(),
        name: login.chars().take(64).collect(),
        role: Role::System,
        organisation: String::new(),
        group: None,
        account: None,
        member: None,
    }
}

/// Checks a login, a password and (when turned on) a code. Counts failures, slows them
/// down and locks; logs every outcome.
pub async fn sign_in(
    app: &App,
    login: &str,
    password: &str,
    code: Option<&str>,
    address: &str,
) -> AppResult<Result<Account, Refusal>> {
    let now = app.now();
    let Some(account) = by_login(app, login).await? else {
        // The same work as for a real account, so that timing does not tell logins apart.
        let _ = verify_password(dummy_hash(), password).await;
        log_raw(
            app,
            &anonymous(login),
            None,
            "sign_in_failed",
            Some("unknown login"),
            address,
        )
        .await?;
        return Ok(Err(Refusal::Wrong));
    };
    if let Some(until) = account.locked(now) {
        log(
            app,
            &self_actor(&account),
            &account,
            "sign_in_refused",
            Some("locked"),
            address,
        )
        .await?;
        return Ok(Err(Refusal::Locked {
            minutes: (now.seconds_until(&until) + 59) / 60,
        }));
    }
    let right = account.password_matches(password).await;
    if !right || account.disabled_at.is_some() {
        let why = if right { "disabled" } else { "wrong password" };
        return failed(app, &account, why, address).await.map(Err);
    }
    if account.totp_enabled {
        let Some(code) = code.map(str::trim).filter(|c| !c.is_empty()) else {
            return Ok(Err(Refusal::CodeNeeded));
        };
        if !check_code(app, &account, code).await? {
            return failed(app, &account, "wrong code", address).await.map(|r| {
                Err(match r {
                    Refusal::Wrong => Refusal::CodeWrong,
                    other => other,
                })
            });
        }
    }
    if account.is_group_account() && actor_of(app, &account).await?.is_none() {
        log(
            app,
            &self_actor(&account),
            &account,
            "sign_in_refused",
            Some("not in the group"),
            address,
        )
        .await?;
        return Ok(Err(Refusal::NotInGroup));
    }
    exec(
        app,
        "UPDATE accounts SET failed_count = 0, locked_until = NULL, last_sign_in_at = $2, last_sign_in_from = $3 WHERE id = $1",
        &account.id,
        &[Some(now.to_canonical()), Some(address.to_string())],
    )
    .await?;
    log(
        app,
        &self_actor(&account),
        &account,
        "sign_in",
        None,
        address,
    )
    .await?;
    Ok(Ok(account))
}

async fn failed(app: &App, account: &Account, why: &str, address: &str) -> AppResult<Refusal> {
    let n = account.failed_count + 1;
    let lock = n >= LOCK_AFTER;
    let until = lock.then(|| {
        app.now()
            .plus(time::Duration::minutes(LOCK_MINUTES))
            .to_canonical()
    });
    let sql = if lock {
        "UPDATE accounts SET failed_count = 0, locked_until = $2 WHERE id = $1"
    } else {
        "UPDATE accounts SET failed_count = failed_count + 1 WHERE id = $1"
    };
    exec(
        app,
        sql,
        &account.id,
        if lock {
            std::slice::from_ref(&until)
        } else {
            &[]
        },
    )
    .await?;
    let me = self_actor(account);
    log(app, &me, account, "sign_in_failed", Some(why), address).await?;
    if lock {
        tracing::warn!(account = %account.id, client = address, "account locked after repeated failed sign-ins");
        log(app, &me, account, "account_locked", None, address).await?;
        return Ok(Refusal::Locked {
            minutes: LOCK_MINUTES,
        });
    }
    if n >= SLOW_AFTER {
        let ms = (500 * (n - SLOW_AFTER + 1)).min(3000) as u64;
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    Ok(Refusal::Wrong)
}

fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        let salt = SaltString::encode_b64(b"tiaojie-no-such-login").expect("salt");
        argon2()
            .hash_password(b"no such login", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

// ---- the second factor ----

fn totp_of(secret: &[u8], login: &str) -> Option<totp_rs::TOTP> {
    totp_rs::TOTP::new(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        secret.to_vec(),
        Some("tiaojie".into()),
        login.to_string(),
    )
    .ok()
}

async fn totp_secret(app: &App, account: &Account) -> AppResult<Option<Vec<u8>>> {
    let Some(sealed) = &account.totp_sealed else {
        return Ok(None);
    };
    Ok(open(app, &account.id, "totp", sealed)
        .await?
        .and_then(|b32| totp_rs::Secret::Encoded(b32).to_bytes().ok()))
}

async fn check_code(app: &App, account: &Account, code: &str) -> AppResult<bool> {
    let Some(secret) = totp_secret(app, account).await? else {
        return Ok(false);
    };
    let Some(totp) = totp_of(&secret, &account.login) else {
        return Ok(false);
    };
    let t = app.now().unix_micros().max(0) as u64 / 1_000_000;
    Ok(code.len() == 6 && totp.check(code, t))
}

/// A second factor being set up: its secret (base32, to type in) and the QR code to scan.
pub struct TotpSetup {
    pub secret: String,
    pub qr_svg: String,
}

/// Starts setting up a second factor: a new secret, stored but not yet turned on.
pub async fn totp_begin(app: &App, account: &Account) -> AppResult<TotpSetup> {
    let raw: [u8; 20] = rand::random();
    let b32 = totp_rs::Secret::Raw(raw.to_vec()).to_encoded().to_string();
    let sealed = seal(app, &account.id, "totp", &b32).await?;
    exec(
        app,
        "UPDATE accounts SET totp_sealed = $2 WHERE id = $1 AND totp_enabled = 0",
        &account.id,
        &[Some(sealed)],
    )
    .await?;
    totp_setup(&raw, &b32, &account.login)
}

/// The pending secret's setup page again (after a wrong code).
pub async fn totp_pending(app: &App, account: &Account) -> AppResult<Option<TotpSetup>> {
    if account.totp_enabled {
        return Ok(None);
    }
    let Some(raw) = totp_secret(app, account).await? else {
        return Ok(None);
    };
    let b32 = totp_rs::Secret::Raw(raw.clone()).to_encoded().to_string();
    totp_setup(&raw, &b32, &account.login).map(Some)
}

fn totp_setup(raw: &[u8], b32: &str, login: &str) -> AppResult<TotpSetup> {
    let totp = totp_of(raw, login).ok_or_else(AppError::internal)?;
    let qr = qrcode::QrCode::new(totp.get_url().as_bytes()).map_err(|_| AppError::internal())?;
    let svg = qr
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    Ok(TotpSetup {
        secret: b32.to_string(),
        qr_svg: svg,
    })
}

/// Turns the second factor on once a code from the pending secret is right.
pub async fn totp_confirm(
    app: &App,
    account: &Account,
    code: &str,
    address: &str,
) -> AppResult<()> {
    if !check_code(app, account, code.trim()).await? {
        return Err(AppError::invalid(
            "wrong_code",
            "The code is not right or has expired",
            "动态验证码不正确或已过期",
        )
        .with_field("code", "动态验证码不正确或已过期"));
    }
    exec(
        app,
        "UPDATE accounts SET totp_enabled = 1 WHERE id = $1",
        &account.id,
        &[],
    )
    .await?;
    log(
        app,
        &self_actor(account),
        account,
        "totp_enabled",
        None,
        address,
    )
    .await
}

/// Turns the second factor off (the password is asked for again).
pub async fn totp_remove(
    app: &App,
    account: &Account,
    password: &str,
    by: &Actor,
    address: &str,
) -> AppResult<()> {
    let own = by.account.as_deref() == Some(account.id.as_str());
    if own && !account.password_matches(password).await {
        return Err(
            AppError::refused("wrong_password", "The password is not right", "密码不正确")
                .with_field("password", "密码不正确"),
        );
    }
    exec(
        app,
        "UPDATE accounts SET totp_enabled = 0, totp_sealed = NULL WHERE id = $1",
        &account.id,
        &[],
    )
    .await?;
    log(app, by, account, "totp_removed", None, address).await
}

/// Whether configuration requires a second factor of this account that it lacks.
pub fn needs_second_factor(app: &App, account: &Account) -> bool {
    app.settings.require_totp_for_oversight
        && !account.totp_enabled
        && account.kind == Kind::Person
        && matches!(account.role, Role::Supervisor | Role::Admin)
}

// ---- what an account may do ----

/// The actor an account is now, read from its mediation group's current state: None when
/// the account is disabled, or its member has left the group.
pub async fn actor_of(app: &App, account: &Account) -> AppResult<Option<Actor>> {
    actor_in(&app.directory, account)
        .await
        .map_err(AppError::from)
}

/// [`actor_of`], over the group directory alone.
pub async fn actor_in(
    directory: &StoreDirectory,
    account: &Account,
) -> Result<Option<Actor>, StoreError> {
    if account.disabled_at.is_some() {
        return Ok(None);
    }
    let (Some(group), Some(member)) = (account.group_id, account.member_id) else {
        return Ok(Some(self_actor(account)));
    };
    let Some(state) = directory.group_state(&group).await? else {
        return Ok(None);
    };
    Ok(group_actor(account, group, member, &state))
}

fn group_actor(
    account: &Account,
    group: GroupId,
    member: MemberId,
    state: &MediationGroup,
) -> Option<Actor> {
    let m = state.members.get(&member)?;
    Some(Actor {
        id: account.id.clone(),
        name: m.name.clone(),
        role: if state.leader == Some(member) {
            Role::Leader
        } else {
            Role::Member
        },
        organisation: m.organisation.clone(),
        group: Some(group),
        account: Some(account.id.clone()),
        member: Some(member),
    })
}

/// Access-log entries about the account's own sign-ins, newest first.
pub async fn recent_sign_ins(app: &App, id: &str, limit: i64) -> AppResult<Vec<SignInEntry>> {
    Ok(on_db!(&app.db, p => {
        sqlx::query("SELECT at, action, reason, address FROM access_log WHERE actor_id = $1 AND action IN ('sign_in', 'sign_in_failed', 'sign_in_refused', 'sign_out', 'account_locked', 'password_changed', 'totp_enabled', 'totp_removed') ORDER BY id DESC LIMIT $2")
            .bind(id)
            .bind(limit)
            .fetch_all(p)
            .await?
            .into_iter()
            .map(|r| Ok(SignInEntry { at: r.try_get(0)?, action: r.try_get(1)?, detail: r.try_get(2)?, address: r.try_get(3)? }))
            .collect::<Result<Vec<_>, sqlx::Error>>()?
    }))
}

#[derive(Debug, Clone, Serialize)]
pub struct SignInEntry {
    pub at: String,
    pub action: String,
    pub detail: Option<String>,
    pub address: Option<String>,
}

/// Failures tell the caller which kind they are.
pub fn is_refusal(e: &AppError) -> bool {
    matches!(e.kind, ErrorKind::Invalid | ErrorKind::Refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_rules() {
        assert!(check_password("wangfang", "short1!", "p").is_err());
        assert!(check_password("wangfang", "onlyletterslong", "p").is_err());
        assert!(check_password("wangfang", "Wangfang-2026x", "p").is_err());
        assert!(check_password("wangfang", "调解工作2026年度", "p").is_ok());
        assert!(check_password("wangfang", "renovation2026", "p").is_ok());
        let otp = one_time_password();
        assert_eq!(otp.len(), 14);
        assert!(check_password("anyone", &otp, "p").is_ok(), "{otp}");
    }

    #[test]
    fn login_rules() {
        assert_eq!(check_login(" WangFang ").unwrap(), "wangfang");
        assert!(check_login("王芳").is_err());
        assert!(check_login("1abc").is_err());
        assert!(check_login("ab").is_err());
        assert!(check_login("li.ming-2").is_ok());
    }

    #[tokio::test]
    async fn hashes_verify() {
        let h = hash_password("renovation2026").await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password(&h, "renovation2026").await);
        assert!(!verify_password(&h, "renovation2027").await);
        assert!(!verify_password("not a hash", "x").await);
    }
}
