//! Envelope encryption of personal data.
//!
//! A master key (32 bytes), read from a file or an environment variable and never stored
//! in the database, wraps one data key per case, one per party, and one for search
//! indexes. Free text in case events (which can name people) is sealed with the case's
//! key before it is stored; a party's record with the party's key. Erasing a data key
//! makes what it sealed unreadable for good, while the stored ciphertext, and so the hash
//! chain over it, stays as it was. AEAD: XChaCha20-Poly1305 (RustCrypto), 24-byte random
//! nonces, the owner's id as associated data.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::Row;
use tiaojie_events::case::{free_text_fields, CASE_AGGREGATE_TYPE};
use tokio::sync::Mutex;
use zeroize::Zeroizing;

use crate::append::{Append, AppendError, Appender, NewKey};
use crate::db::Db;
use crate::error::StoreError;
use crate::on_db;

/// Marks a sealed string in a stored payload.
pub const SEALED_PREFIX: &str = "tj1:";
/// What is shown where erased data was.
pub const ERASED: &str = "[已删除 erased]";
/// How long an unwrapped data key is kept in memory; an erasure on another instance takes
/// effect here within this time.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the master key must be 32 bytes, as base64 or 64 hex digits")]
    BadMasterKey,
    #[error("data key {0} is wrapped under master key {1}, which is not configured")]
    UnknownMaster(String, String),
    #[error("data key {0} does not unwrap (wrong master key, or tampering)")]
    Unwrap(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<KeyError> for StoreError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Store(s) => s,
            other => StoreError::Key(other.to_string()),
        }
    }
}

impl From<sqlx::Error> for KeyError {
    fn from(e: sqlx::Error) -> Self {
        KeyError::Store(e.into())
    }
}

/// The key-encryption key.
#[derive(Clone)]
pub struct MasterKey {
    pub id: String,
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let key: [u8; 32] = bytes.try_into().map_err(|_| KeyError::BadMasterKey)?;
        let id = hex::encode(&Sha256::digest(key)[..6]);
        Ok(Self {
            id,
            key: Zeroizing::new(key),
        })
    }

    /// Base64 (standard or URL-safe) or hex; surrounding whitespace ignored.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let t = text.trim();
        if t.len() == 64 && t.chars().all(|c| c.is_ascii_hexdigit()) {
            return Self::from_bytes(&hex::decode(t).map_err(|_| KeyError::BadMasterKey)?);
        }
        let bytes = B64
            .decode(t)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t))
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(t))
            .map_err(|_| KeyError::BadMasterKey)?;
        Self::from_bytes(&bytes)
    }

    /// A new random key and its base64 text.
    pub fn generate() -> (Self, String) {
        let mut k = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut k);
        let text = B64.encode(k);
        (Self::from_bytes(&k).expect("32 bytes"), text)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(Key::from_slice(&self.key[..]))
    }
}

/// Seals `plain` with a 32-byte key; `aad` binds it to its owner.
pub fn seal_with(key: &[u8; 32], aad: &[u8], plain: &[u8]) -> String {
    seal_with_nonce(
        key,
        aad,
        plain,
        XChaCha20Poly1305::generate_nonce(&mut OsRng).into(),
    )
}

fn seal_with_nonce(key: &[u8; 32], aad: &[u8], plain: &[u8], nonce: [u8; 24]) -> String {
    let cipher = XChaCha20Poly1305::new(Key::from_slice(key));
    let nonce = XNonce::from(nonce);
    let ct = cipher
        .encrypt(&nonce, Payload { msg: plain, aad })
        .expect("encryption with a valid key");
    let mut out = nonce.to_vec();
    out.extend(ct);
    format!("{SEALED_PREFIX}{}", B64.encode(out))
}

/// Opens what [`seal_with`] sealed; None when it does not open.
pub fn open_with(key: &[u8; 32], aad: &[u8], sealed: &str) -> Option<Vec<u8>> {
    let raw = B64.decode(sealed.strip_prefix(SEALED_PREFIX)?).ok()?;
    if raw.len() < 24 {
        return None;
    }
    let (nonce, ct) = raw.split_at(24);
    XChaCha20Poly1305::new(Key::from_slice(key))
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
        .ok()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    Case,
    Party,
    Search,
    /// An account's phone and second-factor secret.
    Account,
}

impl KeyKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            KeyKind::Case => "case",
            KeyKind::Party => "party",
            KeyKind::Search => "search",
            KeyKind::Account => "account",
        }
    }
}

/// What a data key's owner has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataKey {
    Active(Zeroizing<[u8; 32]>),
    Erased,
    Missing,
}

type CacheEntry = (DataKey, Instant);

/// Data keys: created, unwrapped (cached briefly), erased, re-wrapped.
pub struct Keyring {
    db: Db,
    current: MasterKey,
    previous: Vec<MasterKey>,
    cache: Mutex<HashMap<(KeyKind, String), CacheEntry>>,
    /// Case ids just made up, which cannot have a key yet: their first append makes one
    /// without asking the store (its insert is refused if one exists after all, and the
    /// command is decided again, then asking).
    fresh: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Tests only: a seeded generator for data keys and nonces, so that a scenario gives
    /// the same bytes (and chain head) wherever it runs.
    seeded: Option<std::sync::Mutex<rand::rngs::StdRng>>,
}

impl Keyring {
    pub fn new(db: Db, current: MasterKey, previous: Vec<MasterKey>) -> Self {
        Self {
            db,
            current,
            previous,
            cache: Mutex::new(HashMap::new()),
            fresh: Default::default(),
            seeded: None,
        }
    }

    /// For tests: keys and nonces from a seeded generator (never for real data).
    pub fn seeded(db: Db, current: MasterKey, seed: u64) -> Self {
        use rand::SeedableRng;
        Self {
            seeded: Some(std::sync::Mutex::new(rand::rngs::StdRng::seed_from_u64(
                seed,
            ))),
            ..Self::new(db, current, vec![])
        }
    }

    fn random<const N: usize>(&self) -> [u8; N] {
        let mut b = [0u8; N];
        match &self.seeded {
            Some(r) => r
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .fill_bytes(&mut b),
            None => OsRng.fill_bytes(&mut b),
        }
        b
    }

    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    fn master(&self, id: &str) -> Option<&MasterKey> {
        std::iter::once(&self.current)
            .chain(self.previous.iter())
            .find(|m| m.id == id)
    }

    fn aad(kind: KeyKind, id: &str) -> Vec<u8> {
        format!("tiaojie-data-key:{}:{id}", kind.as_str()).into_bytes()
    }

    fn unwrap_key(
        &self,
        kind: KeyKind,
        id: &str,
        kek_id: &str,
        wrapped: &str,
    ) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        let master = self.master(kek_id).ok_or_else(|| {
            KeyError::UnknownMaster(format!("{}/{id}", kind.as_str()), kek_id.to_string())
        })?;
        let raw = B64
            .decode(wrapped)
            .map_err(|_| KeyError::Unwrap(id.to_string()))?;
        if raw.len() < 24 {
            return Err(KeyError::Unwrap(id.to_string()));
        }
        let (nonce, ct) = raw.split_at(24);
        let plain = master
            .cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: &Self::aad(kind, id),
                },
            )
            .map_err(|_| KeyError::Unwrap(id.to_string()))?;
        let key: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Unwrap(id.to_string()))?;
        Ok(Zeroizing::new(key))
    }

    fn wrap_key(&self, kind: KeyKind, id: &str, key: &[u8; 32]) -> String {
        let nonce = XNonce::from(self.random::<24>());
        let ct = self
            .current
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: key,
                    aad: &Self::aad(kind, id),
                },
            )
            .expect("wrap");
        let mut out = nonce.to_vec();
        out.extend(ct);
        B64.encode(out)
    }

    /// The owner's key, without creating one.
    pub async fn get(&self, kind: KeyKind, id: &str) -> Result<DataKey, KeyError> {
        {
            let cache = self.cache.lock().await;
            if let Some((k, at)) = cache.get(&(kind, id.to_string())) {
                if at.elapsed() < KEY_CACHE_TTL {
                    return Ok(k.clone());
                }
            }
        }
        let row: Option<(String, String, Option<String>)> = on_db!(&self.db, p => {
            sqlx::query("SELECT kek_id, wrapped, erased_at FROM data_keys WHERE kind = $1 AND id = $2")
                .bind(kind.as_str())
                .bind(id)
                .fetch_optional(p)
                .await?
                .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                .transpose()?
        });
        let key = match row {
            None => DataKey::Missing,
            Some((_, _, Some(_))) => DataKey::Erased,
            Some((kek, wrapped, None)) => {
                DataKey::Active(self.unwrap_key(kind, id, &kek, &wrapped)?)
            }
        };
        if key != DataKey::Missing {
            self.cache_put(kind, id, key.clone()).await;
        }
        Ok(key)
    }

    async fn cache_put(&self, kind: KeyKind, id: &str, key: DataKey) {
        let mut cache = self.cache.lock().await;
        if cache.len() > 50_000 {
            cache.clear();
        }
        cache.insert((kind, id.to_string()), (key, Instant::now()));
    }

    /// A new data key for an owner, with the row that stores it wrapped.
    fn new_key(&self, kind: KeyKind, id: &str) -> (Zeroizing<[u8; 32]>, NewKey) {
        let key = Zeroizing::new(self.random::<32>());
        let row = NewKey {
            kind: kind.as_str(),
            id: id.to_string(),
            kek_id: self.current.id.clone(),
            wrapped: self.wrap_key(kind, id, &key),
            created_at: now_text(),
        };
        (key, row)
    }

    /// The owner's key, created when it has none. None when it was erased.
    pub async fn get_or_create(
        &self,
        kind: KeyKind,
        id: &str,
    ) -> Result<Option<Zeroizing<[u8; 32]>>, KeyError> {
        match self.get(kind, id).await? {
            DataKey::Active(k) => return Ok(Some(k)),
            DataKey::Erased => return Ok(None),
            DataKey::Missing => {}
        }
        let (_, row) = self.new_key(kind, id);
        on_db!(&self.db, p => {
            sqlx::query("INSERT INTO data_keys (kind, id, kek_id, wrapped, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kind, id) DO NOTHING")
                .bind(row.kind)
                .bind(&row.id)
                .bind(&row.kek_id)
                .bind(&row.wrapped)
                .bind(&row.created_at)
                .execute(p)
                .await?;
        });
        // Whoever won a race, read back the key that was stored.
        self.cache.lock().await.remove(&(kind, id.to_string()));
        match self.get(kind, id).await? {
            DataKey::Active(k) => Ok(Some(k)),
            _ => Ok(None),
        }
    }

    /// A case's key for an append: the stored one, or a new one (returned with the row to
    /// store in the append's own transaction, so that a key exists exactly when the events
    /// sealed with it do). `None` when the key was erased.
    pub async fn key_for_append(
        &self,
        kind: KeyKind,
        id: &str,
    ) -> Result<Option<(Zeroizing<[u8; 32]>, Option<NewKey>)>, KeyError> {
        let fresh = kind == KeyKind::Case && {
            let mut fresh = self.fresh.lock().unwrap_or_else(|e| e.into_inner());
            fresh.remove(id)
        };
        let stored = if fresh {
            DataKey::Missing
        } else {
            self.get(kind, id).await?
        };
        match stored {
            DataKey::Active(k) => Ok(Some((k, None))),
            DataKey::Erased => Ok(None),
            DataKey::Missing => {
                let (key, row) = self.new_key(kind, id);
                Ok(Some((key, Some(row))))
            }
        }
    }

    /// Notes a case id just made up (see `fresh`). Used once, by its first append.
    pub fn note_new_case(&self, id: &str) {
        let mut fresh = self.fresh.lock().unwrap_or_else(|e| e.into_inner());
        if fresh.len() > 10_000 {
            fresh.clear();
        }
        fresh.insert(id.to_string());
    }

    /// Keeps a key that was just stored (by an append's transaction) in the cache.
    pub async fn remember(&self, kind: KeyKind, id: &str, key: Zeroizing<[u8; 32]>) {
        self.cache_put(kind, id, DataKey::Active(key)).await;
    }

    /// Seals every free-text field of a case event's JSON payload with the given key.
    pub fn seal_case_payload_with(
        &self,
        key: &[u8; 32],
        case_id: &str,
        event_type: &str,
        payload: &mut Value,
    ) {
        for path in free_text_fields(event_type) {
            for at in string_pointers(payload, path) {
                if let Some(Value::String(s)) = payload.pointer_mut(&at) {
                    if !s.starts_with(SEALED_PREFIX) {
                        *s = seal_with_nonce(key, case_id.as_bytes(), s.as_bytes(), self.random());
                    }
                }
            }
        }
    }

    /// Destroys a key for good. Answers whether there was one to destroy.
    pub async fn erase(&self, kind: KeyKind, id: &str) -> Result<bool, KeyError> {
        let now = now_text();
        let n = on_db!(&self.db, p => {
            sqlx::query("UPDATE data_keys SET wrapped = '', erased_at = $3 WHERE kind = $1 AND id = $2 AND erased_at IS NULL")
                .bind(kind.as_str())
                .bind(id)
                .bind(&now)
                .execute(p)
                .await?
                .rows_affected()
        });
        self.cache
            .lock()
            .await
            .insert((kind, id.to_string()), (DataKey::Erased, Instant::now()));
        Ok(n > 0)
    }

    /// Re-wraps every live data key still under another master key with the current one,
    /// in small transactions, while the service runs. Answers how many it re-wrapped.
    pub async fn rotate(&self) -> Result<usize, KeyError> {
        let mut done = 0;
        loop {
            let rows: Vec<(String, String, String, String)> = on_db!(&self.db, p => {
                sqlx::query("SELECT kind, id, kek_id, wrapped FROM data_keys WHERE kek_id <> $1 AND erased_at IS NULL LIMIT 500")
                    .bind(&self.current.id)
                    .fetch_all(p)
                    .await?
                    .into_iter()
                    .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
                    .collect::<Result<Vec<_>, _>>()?
            });
            if rows.is_empty() {
                return Ok(done);
            }
            for (kind, id, kek, wrapped) in rows {
                let k = match kind.as_str() {
                    "case" => KeyKind::Case,
                    "party" => KeyKind::Party,
                    "account" => KeyKind::Account,
                    _ => KeyKind::Search,
                };
                let key = self.unwrap_key(k, &id, &kek, &wrapped)?;
                let rewrapped = self.wrap_key(k, &id, &key);
                on_db!(&self.db, p => {
                    // Only if nobody erased or re-wrapped it meanwhile.
                    sqlx::query("UPDATE data_keys SET kek_id = $3, wrapped = $4 WHERE kind = $1 AND id = $2 AND kek_id = $5 AND erased_at IS NULL")
                        .bind(&kind)
                        .bind(&id)
                        .bind(&self.current.id)
                        .bind(&rewrapped)
                        .bind(&kek)
                        .execute(p)
                        .await?;
                });
                done += 1;
            }
        }
    }

    /// Checks that the configured master keys open the store's data keys: one live key
    /// under each master key the store uses must unwrap. An error says which master key is
    /// missing or wrong.
    pub async fn check_master(&self) -> Result<(), KeyError> {
        let keks: Vec<String> = on_db!(&self.db, p => {
            sqlx::query_scalar("SELECT DISTINCT kek_id FROM data_keys WHERE erased_at IS NULL")
                .fetch_all(p)
                .await?
        });
        for kek in keks {
            let row: Option<(String, String, String)> = on_db!(&self.db, p => {
                sqlx::query("SELECT kind, id, wrapped FROM data_keys WHERE kek_id = $1 AND erased_at IS NULL LIMIT 1")
                    .bind(&kek)
                    .fetch_optional(p)
                    .await?
                    .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                    .transpose()?
            });
            let Some((kind, id, wrapped)) = row else {
                continue;
            };
            let kind = match kind.as_str() {
                "case" => KeyKind::Case,
                "party" => KeyKind::Party,
                "account" => KeyKind::Account,
                _ => KeyKind::Search,
            };
            self.unwrap_key(kind, &id, &kek, &wrapped)?;
        }
        Ok(())
    }

    /// How many live keys each master key wraps.
    pub async fn master_usage(&self) -> Result<Vec<(String, i64)>, KeyError> {
        Ok(on_db!(&self.db, p => {
            sqlx::query("SELECT kek_id, COUNT(*) FROM data_keys WHERE erased_at IS NULL GROUP BY kek_id ORDER BY kek_id")
                .fetch_all(p)
                .await?
                .into_iter()
                .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<Vec<_>, _>>()?
        }))
    }

    /// A keyed hash for exact search (blind index): the same value gives the same index,
    /// but the index reveals nothing without the search key.
    pub async fn blind_index(&self, purpose: &str, value: &str) -> Result<String, KeyError> {
        let key = self
            .get_or_create(KeyKind::Search, "global")
            .await?
            .ok_or_else(|| KeyError::Unwrap("search".into()))?;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key[..]).expect("any key length");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        Ok(hex::encode(&mac.finalize().into_bytes()[..16]))
    }

    /// Opens text sealed with a case's key; the placeholder when the key was erased.
    pub async fn open_case_text(&self, case_id: &str, sealed: &str) -> Result<String, KeyError> {
        if !sealed.starts_with(SEALED_PREFIX) {
            return Ok(sealed.to_string());
        }
        match self.get(KeyKind::Case, case_id).await? {
            DataKey::Active(k) => Ok(open_with(&k, case_id.as_bytes(), sealed)
                .and_then(|v| String::from_utf8(v).ok())
                .unwrap_or_else(|| ERASED.to_string())),
            DataKey::Erased | DataKey::Missing => Ok(ERASED.to_string()),
        }
    }

    /// Seals bytes (an attachment) with a case's key: nonce and ciphertext, raw. `None`
    /// when the case's key was erased.
    pub async fn seal_case_bytes(
        &self,
        case_id: &str,
        aad: &[u8],
        plain: &[u8],
    ) -> Result<Option<Vec<u8>>, KeyError> {
        let Some(k) = self.get_or_create(KeyKind::Case, case_id).await? else {
            return Ok(None);
        };
        let nonce = XNonce::from(self.random::<24>());
        let ct = XChaCha20Poly1305::new(Key::from_slice(&k[..]))
            .encrypt(&nonce, Payload { msg: plain, aad })
            .expect("encryption with a valid key");
        let mut out = nonce.to_vec();
        out.extend(ct);
        Ok(Some(out))
    }

    /// Opens what [`Keyring::seal_case_bytes`] sealed. `None` when the case's key was
    /// erased (or the bytes do not open).
    pub async fn open_case_bytes(
        &self,
        case_id: &str,
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Option<Vec<u8>>, KeyError> {
        let DataKey::Active(k) = self.get(KeyKind::Case, case_id).await? else {
            return Ok(None);
        };
        if sealed.len() < 24 {
            return Ok(None);
        }
        let (nonce, ct) = sealed.split_at(24);
        Ok(XChaCha20Poly1305::new(Key::from_slice(&k[..]))
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
            .ok())
    }

    /// Opens every free-text field of a case event's JSON payload.
    pub async fn open_case_payload(
        &self,
        case_id: &str,
        event_type: &str,
        payload: &mut Value,
    ) -> Result<(), KeyError> {
        for path in free_text_fields(event_type) {
            for at in string_pointers(payload, path) {
                if let Some(Value::String(s)) = payload.pointer_mut(&at) {
                    if s.starts_with(SEALED_PREFIX) {
                        *s = self.open_case_text(case_id, s).await?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The JSON pointers a free-text path names in a payload: `incident.location` names one,
/// `obligations[].duty` one per element of the array.
pub fn text_pointers(v: &Value, dotted: &str) -> Vec<String> {
    let mut found = vec![(String::new(), v)];
    for part in dotted.split('.') {
        let (key, each) = match part.strip_suffix("[]") {
            Some(k) => (k, true),
            None => (part, false),
        };
        let mut next = vec![];
        for (at, cur) in found {
            let Some(child) = cur.get(key) else { continue };
            let at = format!("{at}/{key}");
            match (each, child) {
                (true, Value::Array(items)) => next.extend(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, x)| (format!("{at}/{i}"), x)),
                ),
                (true, _) => {}
                (false, _) => next.push((at, child)),
            }
        }
        found = next;
    }
    found.into_iter().map(|(at, _)| at).collect()
}

/// The pointers of the string values a free-text path names.
fn string_pointers(v: &Value, dotted: &str) -> Vec<String> {
    text_pointers(v, dotted)
        .into_iter()
        .filter(|p| v.pointer(p).is_some_and(Value::is_string))
        .collect()
}

fn now_text() -> String {
    tiaojie_events::Timestamp::from_offset(time::OffsetDateTime::now_utc()).to_canonical()
}

fn persistence(e: KeyError) -> PersistenceError {
    PersistenceError::UnknownError(Box::new(e))
}

/// Wraps a cqrs-es event repository: case events are sealed on the way in and opened on
/// the way out, so aggregates see plain text and the store holds none.
///
/// Before anything is stored, every event is checked against its stored form
/// ([`crate::codec::check_stored_form`]): what cannot be read back is refused, never stored.
///
/// Reads go to the wrapped cqrs-es repository; appends go to the group-commit
/// [`Appender`], with a new case's data key stored in the same transaction as its events.
pub struct SealingRepository<R> {
    inner: R,
    keys: Arc<Keyring>,
    appender: Appender,
    upcasters: crate::codec::Upcasters,
}

/// Free text for a case whose key was erased (retention or erasure): refused, because it
/// could only be stored as the erased placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the case's text was erased; no new text can be recorded for it")]
pub struct CaseErased;

impl<R> SealingRepository<R> {
    pub fn new(inner: R, keys: Arc<Keyring>, appender: Appender) -> Self {
        Self {
            inner,
            keys,
            appender,
            upcasters: crate::codec::Upcasters::default(),
        }
    }

    async fn open_all(
        &self,
        events: Vec<SerializedEvent>,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let mut out = Vec::with_capacity(events.len());
        for mut e in events {
            if e.aggregate_type == CASE_AGGREGATE_TYPE {
                self.keys
                    .open_case_payload(&e.aggregate_id, &e.event_type, &mut e.payload)
                    .await
                    .map_err(persistence)?;
            }
            out.push(e);
        }
        Ok(out)
    }
}

impl<R: PersistedEventRepository> PersistedEventRepository for SealingRepository<R> {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let events = self.inner.get_events::<A>(aggregate_id).await?;
        self.open_all(events).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let events = self
            .inner
            .get_last_events::<A>(aggregate_id, last_sequence)
            .await?;
        self.open_all(events).await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        self.inner.get_snapshot::<A>(aggregate_id).await
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        if snapshot_update.is_some() {
            // tiaojie runs cqrs-es in event-store mode: there are no snapshots to write.
            return Err(PersistenceError::UnknownError(
                "snapshots are not used by tiaojie".into(),
            ));
        }
        let backend = self.keys.db.backend();
        let check = |e: &SerializedEvent| {
            crate::codec::check_stored_form(backend, e, &self.upcasters)
                .map_err(|u| PersistenceError::UnknownError(Box::new(u)))
        };
        let mut append = Append {
            aggregate_type: A::TYPE,
            events: Vec::with_capacity(events.len()),
            key: None,
            parties: vec![],
        };
        let mut new_key = None;
        if A::TYPE == CASE_AGGREGATE_TYPE {
            append.parties = crate::append::parties_named(events);
            let has_text = events.iter().any(|e| {
                free_text_fields(&e.event_type)
                    .iter()
                    .any(|path| !string_pointers(&e.payload, path).is_empty())
            });
            // The key of the case, only when some event carries text to seal.
            let key = match (has_text, events.first()) {
                (true, Some(first)) => match self
                    .keys
                    .key_for_append(KeyKind::Case, &first.aggregate_id)
                    .await
                    .map_err(persistence)?
                {
                    Some(k) => Some(k),
                    None => return Err(PersistenceError::UnknownError(Box::new(CaseErased))),
                },
                _ => None,
            };
            for e in events {
                let mut e = e.clone();
                if let Some((k, _)) = &key {
                    self.keys.seal_case_payload_with(
                        k,
                        &e.aggregate_id,
                        &e.event_type,
                        &mut e.payload,
                    );
                }
                check(&e)?;
                append.events.push(e);
            }
            if let Some((k, row)) = key {
                append.key = row;
                new_key = append.key.as_ref().map(|r| (r.id.clone(), k));
            }
        } else {
            for e in events {
                check(e)?;
            }
            append.events = events.to_vec();
        }
        match self.appender.append(append).await {
            Ok(named) => {
                if let Some((id, k)) = new_key {
                    self.keys.remember(KeyKind::Case, &id, k).await;
                }
                crate::append::report_named(named);
                Ok(())
            }
            Err(AppendError::Conflict) => Err(PersistenceError::OptimisticLockError),
            Err(AppendError::Party(p)) => Err(PersistenceError::UnknownError(Box::new(p))),
            Err(AppendError::Failed(e)) if e.is_unavailable() => {
                Err(PersistenceError::ConnectionError(Box::new(e)))
            }
            Err(AppendError::Failed(e)) => Err(PersistenceError::UnknownError(Box::new(e))),
        }
    }

    // Replay streams hand out the stored (sealed) events; tiaojie does not use them.
    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        self.inner.stream_events::<A>(aggregate_id).await
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        self.inner.stream_all_events::<A>().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_round_trips_and_binds_the_owner() {
        let key = [7u8; 32];
        let s = seal_with(&key, b"case-1", "张建华 13895412345".as_bytes());
        assert!(s.starts_with(SEALED_PREFIX));
        assert!(!s.contains("张建华"));
        assert_eq!(
            open_with(&key, b"case-1", &s).unwrap(),
            "张建华 13895412345".as_bytes()
        );
        assert!(
            open_with(&key, b"case-2", &s).is_none(),
            "moved to another owner, it does not open"
        );
        assert!(open_with(&[8u8; 32], b"case-1", &s).is_none());
    }

    #[test]
    fn master_keys_parse() {
        let (k, text) = MasterKey::generate();
        assert_eq!(MasterKey::parse(&text).unwrap().id, k.id);
        assert_eq!(
            MasterKey::parse(&hex::encode([1u8; 32])).unwrap().id,
            MasterKey::from_bytes(&[1u8; 32]).unwrap().id
        );
        assert!(MasterKey::parse("too short").is_err());
    }
}
