//! Request and answer bodies of the HTTP API. Unknown fields are refused, so a typo never
//! passes silently. Times are RFC 3339; answers are in UTC.

use serde::{Deserialize, Serialize};
use tiaojie_events::case::{CaseKind, IntakeChannel, PartyRef};
use tiaojie_events::{CategoryCode, CommunityId, Timestamp};
use utoipa::ToSchema;

pub use tiaojie_app::group_steps::MemberBody;
pub use tiaojie_app::steps::IncidentBody;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenCaseBody {
    pub kind: CaseKind,
    pub community: CommunityId,
    pub category: CategoryCode,
    pub summary: String,
    pub occurred_at: Option<Timestamp>,
    pub channel: IntakeChannel,
    #[serde(default)]
    pub parties: Vec<PartyRef>,
    /// Required for a construction-obstruction case.
    pub incident: Option<IncidentBody>,
}

/// The answer to a command.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CommandAnswer {
    /// The case or group.
    pub id: String,
    /// Its version after the command; also in `ETag`.
    pub version: u64,
    /// The events recorded.
    pub events: Vec<String>,
    /// Pass as `consistent_with` to a query to read your own write.
    pub consistency_token: String,
    /// The id of what the command created inside the case (session, incident, order).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_id: Option<String>,
    /// What the caller should know, e.g. "马**（当事人）已有2次阻挡施工记录" when a party named
    /// is already a repeat obstructor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FormGroupBody {
    pub name: String,
    pub street_office: String,
    pub communities: Vec<CommunityId>,
    pub leader: MemberBody,
    #[serde(default)]
    pub members: Vec<MemberBody>,
    pub formed_at: Option<Timestamp>,
}
