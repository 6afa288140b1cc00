//! The metadata written with every event. Who did it, for whom, through which request, and
//! when it was recorded; business time (when it happened on site) stays in the payload.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

pub const ACTOR_ID: &str = "actor_id";
pub const ACTOR_NAME: &str = "actor_name";
pub const ROLE: &str = "role";
pub const ORGANISATION: &str = "organisation";
pub const REQUEST_ID: &str = "request_id";
pub const TRACE_ID: &str = "trace_id";
pub const RECORDED_AT: &str = "recorded_at";
pub const APP_VERSION: &str = "app_version";
pub const IDEMPOTENCY_KEY: &str = "idempotency_key";
pub const ACCOUNT_ID: &str = "account_id";
pub const MEMBER_ID: &str = "member_id";

/// The actor's role, as the token says. Clients cannot set it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::EnumIter,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Role {
    Member,
    Leader,
    Supervisor,
    Dashboard,
    Admin,
    /// The system itself (demo loader, retention jobs, migrations).
    System,
}

impl Role {
    /// The role's name, as serde writes it.
    pub fn as_str(&self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    pub fn label_zh(&self) -> &'static str {
        match self {
            Role::Member => "调解员",
            Role::Leader => "组长",
            Role::Supervisor => "督查室",
            Role::Dashboard => "大屏",
            Role::Admin => "管理员",
            Role::System => "系统",
        }
    }
}

/// Typed view of an event's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    pub actor_id: String,
    pub actor_name: String,
    pub role: Role,
    pub organisation: String,
    pub request_id: String,
    pub trace_id: Option<String>,
    pub recorded_at: Timestamp,
    pub app_version: String,
    pub idempotency_key: Option<String>,
    /// The account that acted (absent for the system and for tokens from before accounts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The mediation group's member the actor is, when a member or leader acted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
}

impl EventMetadata {
    pub fn into_map(self) -> HashMap<String, String> {
        let mut m = HashMap::new();
        m.insert(ACTOR_ID.into(), self.actor_id);
        m.insert(ACTOR_NAME.into(), self.actor_name);
        m.insert(ROLE.into(), self.role.as_str().into());
        m.insert(ORGANISATION.into(), self.organisation);
        m.insert(REQUEST_ID.into(), self.request_id);
        if let Some(t) = self.trace_id {
            m.insert(TRACE_ID.into(), t);
        }
        m.insert(RECORDED_AT.into(), self.recorded_at.to_canonical());
        m.insert(APP_VERSION.into(), self.app_version);
        if let Some(k) = self.idempotency_key {
            m.insert(IDEMPOTENCY_KEY.into(), k);
        }
        if let Some(a) = self.account_id {
            m.insert(ACCOUNT_ID.into(), a);
        }
        if let Some(id) = self.member_id {
            m.insert(MEMBER_ID.into(), id);
        }
        m
    }

    /// Reads metadata back; missing fields become empty rather than failing, because the
    /// audit trail must show even an event written by an older release.
    pub fn from_map(m: &HashMap<String, String>) -> Self {
        let get = |k: &str| m.get(k).cloned().unwrap_or_default();
        Self {
            actor_id: get(ACTOR_ID),
            actor_name: get(ACTOR_NAME),
            role: m
                .get(ROLE)
                .and_then(|r| Role::parse(r))
                .unwrap_or(Role::System),
            organisation: get(ORGANISATION),
            request_id: get(REQUEST_ID),
            trace_id: m.get(TRACE_ID).cloned(),
            recorded_at: m
                .get(RECORDED_AT)
                .and_then(|t| Timestamp::parse(t).ok())
                .unwrap_or_else(|| Timestamp::from_unix_micros(0).expect("epoch")),
            app_version: get(APP_VERSION),
            idempotency_key: m.get(IDEMPOTENCY_KEY).cloned(),
            account_id: m.get(ACCOUNT_ID).cloned(),
            member_id: m.get(MEMBER_ID).cloned(),
        }
    }
}
