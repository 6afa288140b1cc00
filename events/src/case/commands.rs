use serde::{Deserialize, Serialize};

use super::events::*;
use crate::ids::{
    AttachmentId, CategoryCode, CommunityId, GroupId, IncidentId, MemberId, OrderId, PartyId,
    SessionId,
};
use crate::time::Timestamp;

/// A command to the Case aggregate. Times marked optional default to "now" (the injected
/// clock); all of them are business times and may not lie in the future.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum CaseCommand {
    OpenCase(OpenCase),
    AddParty(AddParty),
    AcceptCase(AcceptCase),
    AssignCase(AssignCase),
    ScheduleSession(ScheduleSession),
    RecordSession(RecordSession),
    ExtendDeadline(ExtendDeadline),
    ReachAgreement(ReachAgreement),
    FailMediation(FailMediation),
    Escalate(Escalate),
    RecordIncident(RecordIncident),
    RecordPoliceIntervention(RecordPoliceIntervention),
    ResumeWork(ResumeWork),
    RecordFollowUp(RecordFollowUp),
    IssueSupervisionOrder(IssueSupervisionOrder),
    AnswerSupervisionOrder(AnswerSupervisionOrder),
    AddNote(AddNote),
    RecordCorrection(RecordCorrection),
    Withdraw(Withdraw),
    CloseCase(CloseCase),
    ReopenCase(ReopenCase),
    /// The case follows its community to another mediation group (run by the move of a
    /// community between groups, never by a person's form).
    TransferCase(TransferCase),
    RecordPerformance(RecordPerformance),
    UrgePerformance(UrgePerformance),
    ReferToCourt(ReferToCourt),
    ApplyForConfirmation(ApplyForConfirmation),
    RecordConfirmationDecision(RecordConfirmationDecision),
    RecordEscalationReply(RecordEscalationReply),
    /// Run by the attachment service once the file is checked and stored (never a form of
    /// its own).
    AddAttachment(AddAttachment),
}

impl CaseCommand {
    pub fn name(&self) -> &'static str {
        match self {
            CaseCommand::OpenCase(_) => "open_case",
            CaseCommand::AddParty(_) => "add_party",
            CaseCommand::AcceptCase(_) => "accept_case",
            CaseCommand::AssignCase(_) => "assign_case",
            CaseCommand::ScheduleSession(_) => "schedule_session",
            CaseCommand::RecordSession(_) => "record_session",
            CaseCommand::ExtendDeadline(_) => "extend_deadline",
            CaseCommand::ReachAgreement(_) => "reach_agreement",
            CaseCommand::FailMediation(_) => "fail_mediation",
            CaseCommand::Escalate(_) => "escalate",
            CaseCommand::RecordIncident(_) => "record_incident",
            CaseCommand::RecordPoliceIntervention(_) => "record_police_intervention",
            CaseCommand::ResumeWork(_) => "resume_work",
            CaseCommand::RecordFollowUp(_) => "record_follow_up",
            CaseCommand::IssueSupervisionOrder(_) => "issue_supervision_order",
            CaseCommand::AnswerSupervisionOrder(_) => "answer_supervision_order",
            CaseCommand::AddNote(_) => "add_note",
            CaseCommand::RecordCorrection(_) => "record_correction",
            CaseCommand::Withdraw(_) => "withdraw",
            CaseCommand::CloseCase(_) => "close_case",
            CaseCommand::ReopenCase(_) => "reopen_case",
            CaseCommand::TransferCase(_) => "transfer_case",
            CaseCommand::RecordPerformance(_) => "record_performance",
            CaseCommand::UrgePerformance(_) => "urge_performance",
            CaseCommand::ReferToCourt(_) => "refer_to_court",
            CaseCommand::ApplyForConfirmation(_) => "apply_for_confirmation",
            CaseCommand::RecordConfirmationDecision(_) => "record_confirmation_decision",
            CaseCommand::RecordEscalationReply(_) => "record_escalation_reply",
            CaseCommand::AddAttachment(_) => "add_attachment",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentInput {
    pub incident_id: IncidentId,
    pub occurred_at: Option<Timestamp>,
    pub location: String,
    pub work_item: CategoryCode,
    pub obstructing_parties: Vec<PartyId>,
    pub work_stopped_minutes: u32,
    pub police_called: bool,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenCase {
    pub kind: CaseKind,
    pub community: CommunityId,
    pub category: CategoryCode,
    pub summary: String,
    pub occurred_at: Option<Timestamp>,
    pub channel: IntakeChannel,
    pub parties: Vec<PartyRef>,
    /// Required for a construction-obstruction case: the incident that opened it.
    pub incident: Option<IncidentInput>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddParty {
    pub party: PartyRef,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AcceptCase {
    pub accepted_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssignCase {
    pub assignee: MemberId,
    pub assigned_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleSession {
    pub session_id: SessionId,
    pub scheduled_for: Timestamp,
    pub location: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordSession {
    pub session_id: SessionId,
    pub held_at: Option<Timestamp>,
    pub attendees: Vec<Attendee>,
    pub minutes_summary: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtendDeadline {
    pub new_due: Timestamp,
    pub reason: String,
    pub consenting_parties: Vec<PartyId>,
    pub extended_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReachAgreement {
    pub session_id: SessionId,
    pub terms: String,
    pub agreed_at: Option<Timestamp>,
    /// When the follow-up visit is due; the service fills in its configured default.
    pub follow_up_due: Timestamp,
    /// What else the 协议书 states (Art. 29 of the People's Mediation Law).
    pub details: AgreementDetails,
}

/// The parts of a 协议书 besides its terms. All may be left empty by the API; the page's
/// form asks for the facts, the obligations and how they are carried out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgreementDetails {
    /// 纠纷的主要事实、争议事项.
    pub facts: String,
    /// 各方当事人的责任.
    pub responsibilities: String,
    /// Each party's obligations; every party named must be a party to the case, once.
    pub obligations: Vec<Obligation>,
    /// 履行方式.
    pub performance_manner: String,
    /// 履行地点.
    pub performance_place: String,
    /// 履行期限: no earlier than the agreement.
    pub performance_due: Option<Timestamp>,
    /// 份数.
    pub copies: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailMediation {
    pub reason: String,
    pub next_route: Route,
    pub failed_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Escalate {
    pub route: Route,
    pub reason: String,
    pub escalated_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordIncident {
    pub incident: IncidentInput,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordPoliceIntervention {
    pub incident_id: Option<IncidentId>,
    pub police_unit: String,
    pub intervened_at: Option<Timestamp>,
    pub outcome: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResumeWork {
    pub incident_id: IncidentId,
    pub resumed_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordFollowUp {
    pub visited_at: Option<Timestamp>,
    pub satisfaction: Satisfaction,
    pub notes: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssueSupervisionOrder {
    pub order_id: OrderId,
    /// The supervision office, e.g. 区委督查室 or 政府督查室.
    pub office: String,
    pub instructions: String,
    pub respond_by: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnswerSupervisionOrder {
    pub order_id: OrderId,
    pub answer: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddNote {
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordCorrection {
    pub corrects_sequence: u64,
    pub field: String,
    pub corrected_value: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Withdraw {
    pub reason: String,
    pub withdrawn_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloseCase {
    pub outcome: Option<Outcome>,
    pub closed_at: Option<Timestamp>,
    pub summary: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReopenCase {
    pub reason: String,
    pub reopened_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferCase {
    /// The group the case's community now belongs to.
    pub to: GroupId,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordPerformance {
    pub performance: Performance,
    pub remaining: Option<String>,
    pub reported_by: String,
    pub reported_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UrgePerformance {
    pub method: String,
    pub performance_due: Timestamp,
    pub urged_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferToCourt {
    pub court: String,
    pub right_to_sue_told: bool,
    pub reason: String,
    pub referred_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplyForConfirmation {
    pub court: String,
    pub applied_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordConfirmationDecision {
    pub confirmed: bool,
    pub reason: Option<String>,
    pub decided_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordEscalationReply {
    pub reply: String,
    pub replied_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddAttachment {
    pub attachment_id: AttachmentId,
    pub media_type: String,
    pub size: u64,
    pub sha256: String,
    pub stored_sha256: String,
    pub caption: Option<String>,
    pub documents: Option<u64>,
}
