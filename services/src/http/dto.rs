//! Request and answer bodies of the HTTP API. Unknown fields are refused, so a typo never
//! passes silently. Times are RFC 3339; answers are in UTC.

use serde::{Deserialize, Serialize};
use tiaojie_events::case::{
    Attendee, CaseKind, IntakeChannel, Outcome, PartyRef, Route, Satisfaction,
};
use tiaojie_events::group::OrgRole;
use tiaojie_events::{
    CategoryCode, CommunityId, IncidentId, MemberId, PartyId, SessionId, Timestamp,
};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentBody {
    /// When it happened on site; now when left out.
    pub occurred_at: Option<Timestamp>,
    /// Where on site: building, unit, road section.
    pub location: String,
    /// The work item stopped: a `work.*` category.
    pub work_item: CategoryCode,
    #[serde(default)]
    pub obstructing_parties: Vec<PartyId>,
    /// Minutes of work stopped (0 when work went on).
    #[serde(default)]
    pub work_stopped_minutes: u32,
    #[serde(default)]
    pub police_called: bool,
    pub description: String,
}

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

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptBody {
    pub accepted_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    pub assignee: MemberId,
    pub assigned_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartyBody {
    pub party: PartyRef,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSessionBody {
    pub scheduled_for: Timestamp,
    pub location: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordSessionBody {
    pub held_at: Option<Timestamp>,
    pub attendees: Vec<Attendee>,
    pub minutes_summary: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendDeadlineBody {
    pub new_due: Timestamp,
    pub reason: String,
    /// Every party of the case must consent.
    pub consenting_parties: Vec<PartyId>,
    pub extended_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgreementBody {
    pub session_id: SessionId,
    pub terms: String,
    pub agreed_at: Option<Timestamp>,
    /// When the follow-up visit is due; the configured default (15 days) when left out.
    pub follow_up_due: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailureBody {
    pub reason: String,
    pub next_route: Route,
    pub failed_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalationBody {
    pub route: Route,
    pub reason: String,
    pub escalated_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoliceBody {
    pub incident_id: Option<IncidentId>,
    pub police_unit: String,
    pub intervened_at: Option<Timestamp>,
    pub outcome: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkResumptionBody {
    pub incident_id: IncidentId,
    pub resumed_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowUpBody {
    pub visited_at: Option<Timestamp>,
    pub satisfaction: Satisfaction,
    pub notes: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SupervisionOrderBody {
    /// The issuing office; the token's organisation when left out.
    pub office: Option<String>,
    pub instructions: String,
    pub respond_by: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerOrderBody {
    pub answer: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    pub note: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CorrectionBody {
    /// The version (sequence number) of the event this corrects.
    pub corrects_sequence: u64,
    pub field: String,
    pub corrected_value: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalBody {
    pub reason: String,
    pub withdrawn_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClosureBody {
    /// Required: closing needs an outcome.
    pub outcome: Option<Outcome>,
    pub closed_at: Option<Timestamp>,
    pub summary: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReopeningBody {
    pub reason: String,
    pub reopened_at: Option<Timestamp>,
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
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberBody {
    /// Generated when left out.
    pub member_id: Option<MemberId>,
    pub name: String,
    pub org_role: OrgRole,
    pub organisation: String,
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

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaderBody {
    pub member_id: MemberId,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommunitiesBody {
    #[serde(default)]
    pub add: Vec<CommunityId>,
    #[serde(default)]
    pub remove: Vec<CommunityId>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveMemberBody {
    pub reason: Option<String>,
}
