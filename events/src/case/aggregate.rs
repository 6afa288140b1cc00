use std::collections::BTreeMap;
use std::fmt;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use super::commands::*;
use super::errors::CaseError;
use super::events::*;
use crate::directory::GroupInfo;
use crate::ids::{CategoryCode, CommunityId, GroupId, IncidentId, MemberId, OrderId, SessionId};
use crate::reference::CategoryGroup;
use crate::text::{self, LONG, SHORT};
use crate::time::Timestamp;
use crate::{CaseServices, OutOfBounds, TimeBounds};

/// Never rename: stored with every event.
pub const CASE_AGGREGATE_TYPE: &str = "Case";

/// One incident cannot stop work for more than 30 days; longer is a typing error.
pub const MAX_WORK_STOPPED_MINUTES: u32 = 30 * 24 * 60;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(
    Debug,
    Default,
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
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum CaseStatus {
    #[default]
    NotOpened,
    /// 待受理
    Reported,
    /// 已受理
    Accepted,
    /// 调解中
    InMediation,
    /// 已达成协议
    Agreed,
    /// 调解不成
    Failed,
    /// 已上报/移交
    Escalated,
    /// 已结案
    Closed,
    /// 已撤回
    Withdrawn,
}

impl CaseStatus {
    pub const ALL: [CaseStatus; 8] = [
        CaseStatus::Reported,
        CaseStatus::Accepted,
        CaseStatus::InMediation,
        CaseStatus::Agreed,
        CaseStatus::Failed,
        CaseStatus::Escalated,
        CaseStatus::Closed,
        CaseStatus::Withdrawn,
    ];

    /// The status's name, as serde writes it.
    pub fn as_str(&self) -> &'static str {
        self.into()
    }

    /// A status a case can be in (never `not_opened`).
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok().filter(|x| *x != CaseStatus::NotOpened)
    }

    pub fn label_zh(&self) -> &'static str {
        match self {
            CaseStatus::NotOpened => "未登记",
            CaseStatus::Reported => "待受理",
            CaseStatus::Accepted => "已受理",
            CaseStatus::InMediation => "调解中",
            CaseStatus::Agreed => "已达成协议",
            CaseStatus::Failed => "调解不成",
            CaseStatus::Escalated => "已上报",
            CaseStatus::Closed => "已结案",
            CaseStatus::Withdrawn => "已撤回",
        }
    }

    /// Closed and withdrawn cases are finished; everything else is open.
    pub fn is_open(&self) -> bool {
        !matches!(
            self,
            CaseStatus::NotOpened | CaseStatus::Closed | CaseStatus::Withdrawn
        )
    }
}

impl fmt::Display for CaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionState {
    pub scheduled_for: Timestamp,
    pub held_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentState {
    pub occurred_at: Timestamp,
    pub work_stopped_minutes: u32,
    pub resumed_at: Option<Timestamp>,
    /// The sequence of the event that recorded it (what a correction names).
    #[serde(default)]
    pub recorded_in: u64,
    /// The stoppage as a later correction states it, when one does.
    #[serde(default)]
    pub corrected_minutes: Option<u32>,
}

impl IncidentState {
    /// When the recorded stoppage ends: work cannot resume before.
    pub fn stoppage_ends(&self) -> Timestamp {
        let minutes = self.corrected_minutes.unwrap_or(self.work_stopped_minutes);
        self.occurred_at
            .plus(time::Duration::minutes(i64::from(minutes)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgreementState {
    pub agreed_at: Timestamp,
    pub follow_up_due: Timestamp,
}

/// The latest report of how the agreement is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerformanceState {
    pub performance: Performance,
    pub reported_at: Timestamp,
}

/// An application for judicial confirmation, and the court's decision once made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmationState {
    pub applied_at: Timestamp,
    /// `Some(true)` confirmed, `Some(false)` refused, `None` awaiting the decision.
    pub decision: Option<bool>,
}

/// Where the case went last (an escalation or a failed mediation's next route), and the
/// receiving level's reply once recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteState {
    pub route: Route,
    pub since: Timestamp,
    pub replied_at: Option<Timestamp>,
}

/// Judicial confirmation is applied for within 30 days of the agreement taking effect
/// (People's Mediation Law, Art. 33).
pub const CONFIRMATION_WINDOW_DAYS: i64 = 30;

/// The state a case needs to decide the next command. Everything else lives in read models.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub status: CaseStatus,
    pub kind: Option<CaseKind>,
    pub community: Option<CommunityId>,
    pub group: Option<GroupId>,
    pub category: Option<CategoryCode>,
    pub occurred_at: Option<Timestamp>,
    pub parties: Vec<PartyRef>,
    pub accepted_at: Option<Timestamp>,
    pub assignee: Option<MemberId>,
    pub sessions: BTreeMap<SessionId, SessionState>,
    pub extended_due: Option<Timestamp>,
    pub agreement: Option<AgreementState>,
    pub failed: bool,
    pub escalated: bool,
    pub incidents: BTreeMap<IncidentId, IncidentState>,
    pub orders: BTreeMap<OrderId, bool>,
    pub follow_ups: u32,
    /// The status to return to when a closed case is reopened.
    pub reopen_status: Option<CaseStatus>,
    #[serde(default)]
    pub performance: Option<PerformanceState>,
    /// When the agreement is to be carried out: the agreement's date, or the latest
    /// urging's.
    #[serde(default)]
    pub performance_due: Option<Timestamp>,
    #[serde(default)]
    pub urged_at: Option<Timestamp>,
    #[serde(default)]
    pub referred_to_court: bool,
    #[serde(default)]
    pub confirmation: Option<ConfirmationState>,
    #[serde(default)]
    pub route: Option<RouteState>,
    /// Files attached, whatever the status.
    #[serde(default)]
    pub attachments: u32,
    /// Number of events applied: the aggregate's version.
    pub version: u64,
}

type Res<T> = Result<T, CaseError>;

fn txt(field: &'static str, s: &str, max: usize) -> Res<String> {
    text::required(field, s, max).map_err(CaseError::InvalidText)
}

/// A business time outside its bounds, as the refusal for `field`.
pub(crate) fn out_of_bounds(field: &'static str, e: OutOfBounds) -> CaseError {
    match e {
        OutOfBounds::TooEarly => CaseError::TooEarly(field),
        OutOfBounds::InFuture => CaseError::InFuture(field),
        OutOfBounds::TooFarAhead => CaseError::TooFarAhead(field),
    }
}

/// A planned time (a session, a deadline, a due date) within its bounds.
fn planned(
    field: &'static str,
    t: Timestamp,
    (now, bounds): (Timestamp, &TimeBounds),
) -> Res<Timestamp> {
    bounds
        .planned(t, now)
        .map_err(|e| out_of_bounds(field, e))?;
    Ok(t)
}

fn opt_txt(field: &'static str, s: Option<&str>, max: usize) -> Res<Option<String>> {
    text::optional(field, s, max).map_err(CaseError::InvalidText)
}

impl Case {
    pub fn has_held_session(&self) -> bool {
        self.sessions.values().any(|s| s.held_at.is_some())
    }

    pub fn is_party(&self, id: &crate::ids::PartyId) -> bool {
        self.parties.iter().any(|p| &p.party_id == id)
    }

    /// The agreement is recorded as not carried out in full (partly or not at all).
    pub fn short_of_performance(&self) -> bool {
        matches!(
            self.performance.map(|p| p.performance),
            Some(Performance::PartlyPerformed | Performance::NotPerformed)
        )
    }

    /// The agreement is recorded as carried out in full.
    pub fn performed(&self) -> bool {
        self.performance.map(|p| p.performance) == Some(Performance::Performed)
    }

    /// A business time: defaults to now, may not lie in the future, may not precede the
    /// case's own time (`occurred_at`) nor the other time given.
    fn when(
        &self,
        given: Option<Timestamp>,
        field: &'static str,
        (now, bounds): (Timestamp, &TimeBounds),
        not_before: &[(&'static str, Option<Timestamp>)],
    ) -> Res<Timestamp> {
        let t = given.unwrap_or(now);
        bounds
            .happened(t, now)
            .map_err(|e| out_of_bounds(field, e))?;
        if let Some(occurred) = self.occurred_at {
            if t < occurred {
                return Err(CaseError::TimeOrder {
                    field,
                    earlier: "the case",
                });
            }
        }
        for (earlier, bound) in not_before {
            if let Some(b) = bound {
                if t < *b {
                    return Err(CaseError::TimeOrder { field, earlier });
                }
            }
        }
        Ok(t)
    }

    async fn group(&self, services: &CaseServices) -> Res<Option<GroupInfo>> {
        match &self.group {
            None => Ok(None),
            Some(g) => services
                .directory
                .group(g)
                .await
                .map_err(|e| CaseError::Unavailable(e.0)),
        }
    }

    fn incident(
        &self,
        services: &CaseServices,
        input: IncidentInput,
        now: (Timestamp, &TimeBounds),
        parties: &[PartyRef],
    ) -> Res<Incident> {
        if self.incidents.contains_key(&input.incident_id) {
            return Err(CaseError::IncidentExists(input.incident_id));
        }
        let occurred_at = self.when(input.occurred_at, "incident.occurred_at", now, &[])?;
        match services.reference.category(&input.work_item) {
            None => return Err(CaseError::UnknownCategory(input.work_item)),
            Some(c) if c.group != CategoryGroup::WorkItem => {
                return Err(CaseError::NotAWorkItem(input.work_item))
            }
            Some(_) => {}
        }
        if input.work_stopped_minutes > MAX_WORK_STOPPED_MINUTES {
            return Err(CaseError::TooManyMinutes {
                max: MAX_WORK_STOPPED_MINUTES,
            });
        }
        let mut obstructing = Vec::new();
        for p in input.obstructing_parties {
            if !parties.iter().any(|x| x.party_id == p) {
                return Err(CaseError::UnknownParty(p));
            }
            if obstructing.contains(&p) {
                return Err(CaseError::DuplicateParty(p));
            }
            obstructing.push(p);
        }
        Ok(Incident {
            incident_id: input.incident_id,
            occurred_at,
            location: txt("location", &input.location, SHORT)?,
            work_item: input.work_item,
            obstructing_parties: obstructing,
            work_stopped_minutes: input.work_stopped_minutes,
            police_called: input.police_called,
            description: txt("description", &input.description, LONG)?,
        })
    }

    async fn decide(&self, command: CaseCommand, services: &CaseServices) -> Res<Vec<CaseEvent>> {
        use CaseStatus::*;
        let now = (services.clock.now(), &services.bounds);
        // The rules that depend only on the case's state, shared with `Case::can`.
        if let Some(step) = command.step() {
            self.guard(step)?;
        }
        let event = match command {
            CaseCommand::OpenCase(c) => {
                if self.status != NotOpened {
                    return Err(CaseError::AlreadyOpened);
                }
                if services.reference.community(&c.community).is_none() {
                    return Err(CaseError::UnknownCommunity(c.community));
                }
                if services.reference.category(&c.category).is_none() {
                    return Err(CaseError::UnknownCategory(c.category));
                }
                let summary = txt("summary", &c.summary, LONG)?;
                let occurred_at = self.when(c.occurred_at, "occurred_at", now, &[])?;
                let mut parties: Vec<PartyRef> = Vec::new();
                for p in c.parties {
                    if parties.iter().any(|x| x.party_id == p.party_id) {
                        return Err(CaseError::DuplicateParty(p.party_id));
                    }
                    parties.push(p);
                }
                if c.kind == CaseKind::ResidentObjection
                    && !parties.iter().any(|p| p.role == PartyRole::Complainant)
                {
                    return Err(CaseError::NoComplainant);
                }
                let incident = match (c.kind, c.incident) {
                    (CaseKind::ConstructionObstruction, None) => {
                        return Err(CaseError::ObstructionNeedsIncident)
                    }
                    (_, Some(mut i)) => {
                        // The incident that opens a case happened when the case did,
                        // unless its own time is given.
                        i.occurred_at = i.occurred_at.or(Some(occurred_at));
                        let probe = Case {
                            occurred_at: Some(occurred_at),
                            ..Case::default()
                        };
                        Some(probe.incident(services, i, now, &parties)?)
                    }
                    (_, None) => None,
                };
                let group = services
                    .directory
                    .group_for_community(&c.community)
                    .await
                    .map_err(|e| CaseError::Unavailable(e.0))?
                    .ok_or_else(|| CaseError::NoGroupForCommunity(c.community.clone()))?;
                let mut events = vec![CaseEvent::CaseOpened {
                    kind: c.kind,
                    community: c.community,
                    group: group.id,
                    category: c.category,
                    summary,
                    occurred_at,
                    channel: c.channel,
                    parties,
                }];
                if let Some(incident) = incident {
                    events.push(CaseEvent::ObstructionIncidentRecorded { incident });
                }
                return Ok(events);
            }
            CaseCommand::AddParty(c) => {
                if self.is_party(&c.party.party_id) {
                    return Err(CaseError::DuplicateParty(c.party.party_id));
                }
                CaseEvent::PartyAdded { party: c.party }
            }
            CaseCommand::AcceptCase(c) => CaseEvent::CaseAccepted {
                accepted_at: self.when(c.accepted_at, "accepted_at", now, &[])?,
            },
            CaseCommand::AssignCase(c) => {
                let group = self.group(services).await?;
                if !group.is_some_and(|g| g.has_member(&c.assignee)) {
                    return Err(CaseError::NotGroupMember(c.assignee));
                }
                CaseEvent::CaseAssigned {
                    assignee: c.assignee,
                    assigned_at: self.when(
                        c.assigned_at,
                        "assigned_at",
                        now,
                        &[("acceptance", self.accepted_at)],
                    )?,
                }
            }
            CaseCommand::ScheduleSession(c) => {
                if self.sessions.contains_key(&c.session_id) {
                    return Err(CaseError::SessionExists(c.session_id));
                }
                let scheduled_for = planned("scheduled_for", c.scheduled_for, now)?;
                // Not planned before the dispute happened. (Planned before the acceptance
                // was recorded is possible: the acceptance is often entered later.)
                if self.occurred_at.is_some_and(|o| scheduled_for < o) {
                    return Err(CaseError::TimeOrder {
                        field: "scheduled_for",
                        earlier: "the case",
                    });
                }
                CaseEvent::SessionScheduled {
                    session_id: c.session_id,
                    scheduled_for,
                    location: txt("location", &c.location, SHORT)?,
                }
            }
            CaseCommand::RecordSession(c) => {
                let Some(session) = self.sessions.get(&c.session_id) else {
                    return Err(CaseError::SessionNotFound(c.session_id));
                };
                if session.held_at.is_some() {
                    return Err(CaseError::SessionAlreadyHeld(c.session_id));
                }
                let held_at = self.when(
                    c.held_at,
                    "held_at",
                    now,
                    &[("acceptance", self.accepted_at)],
                )?;
                let group = self.group(services).await?;
                let mut present_member = false;
                let mut attendees = Vec::with_capacity(c.attendees.len());
                for a in c.attendees {
                    match &a {
                        Attendee::GroupMember { member_id } => {
                            if !group.as_ref().is_some_and(|g| g.has_member(member_id)) {
                                return Err(CaseError::NotGroupMember(*member_id));
                            }
                            present_member = true;
                        }
                        Attendee::Party { party_id } => {
                            if !self.is_party(party_id) {
                                return Err(CaseError::UnknownParty(*party_id));
                            }
                        }
                        Attendee::Other { role } => {
                            let role = txt("attendee.role", role, SHORT)?;
                            attendees.push(Attendee::Other { role });
                            continue;
                        }
                    }
                    if !attendees.contains(&a) {
                        attendees.push(a);
                    }
                }
                if !present_member {
                    return Err(CaseError::NoGroupMemberPresent);
                }
                CaseEvent::SessionHeld {
                    session_id: c.session_id,
                    held_at,
                    attendees,
                    minutes_summary: txt("minutes_summary", &c.minutes_summary, LONG)?,
                }
            }
            CaseCommand::ExtendDeadline(c) => {
                for p in &self.parties {
                    if !c.consenting_parties.contains(&p.party_id) {
                        return Err(CaseError::ConsentMissing(p.party_id));
                    }
                }
                for p in &c.consenting_parties {
                    if !self.is_party(p) {
                        return Err(CaseError::UnknownParty(*p));
                    }
                }
                if c.consenting_parties.is_empty() {
                    return Err(CaseError::ConsentMissing(Default::default()));
                }
                planned("new_due", c.new_due, now)?;
                if c.new_due <= now.0 || self.extended_due.is_some_and(|d| c.new_due <= d) {
                    return Err(CaseError::DeadlineNotLater);
                }
                let mut consenting = c.consenting_parties;
                consenting.sort();
                consenting.dedup();
                CaseEvent::DeadlineExtended {
                    new_due: c.new_due,
                    reason: txt("reason", &c.reason, LONG)?,
                    consenting_parties: consenting,
                    extended_at: self.when(c.extended_at, "extended_at", now, &[])?,
                }
            }
            CaseCommand::ReachAgreement(c) => {
                match self.sessions.get(&c.session_id) {
                    None => return Err(CaseError::SessionNotFound(c.session_id)),
                    Some(s) if s.held_at.is_none() => {
                        return Err(CaseError::SessionNotHeld(c.session_id))
                    }
                    Some(_) => {}
                }
                let held = self.sessions[&c.session_id].held_at;
                let agreed_at = self.when(c.agreed_at, "agreed_at", now, &[("held_at", held)])?;
                planned("follow_up_due", c.follow_up_due, now)?;
                if c.follow_up_due <= agreed_at {
                    return Err(CaseError::TimeOrder {
                        field: "follow_up_due",
                        earlier: "agreed_at",
                    });
                }
                let d = c.details;
                let mut obligations = Vec::with_capacity(d.obligations.len());
                for o in d.obligations {
                    if !self.is_party(&o.party_id) {
                        return Err(CaseError::UnknownParty(o.party_id));
                    }
                    if obligations
                        .iter()
                        .any(|x: &Obligation| x.party_id == o.party_id)
                    {
                        return Err(CaseError::DuplicateParty(o.party_id));
                    }
                    obligations.push(Obligation {
                        party_id: o.party_id,
                        duty: txt("obligations", &o.duty, LONG)?,
                    });
                }
                if let Some(due) = d.performance_due {
                    planned("performance_due", due, now)?;
                    if due < agreed_at {
                        return Err(CaseError::TimeOrder {
                            field: "performance_due",
                            earlier: "agreed_at",
                        });
                    }
                }
                let text =
                    |field, s: &str| opt_txt(field, Some(s), LONG).map(Option::unwrap_or_default);
                CaseEvent::AgreementReached {
                    session_id: c.session_id,
                    terms: txt("terms", &c.terms, LONG)?,
                    agreed_at,
                    follow_up_due: c.follow_up_due,
                    facts: text("facts", &d.facts)?,
                    responsibilities: text("responsibilities", &d.responsibilities)?,
                    obligations,
                    performance_manner: text("performance_manner", &d.performance_manner)?,
                    performance_place: text("performance_place", &d.performance_place)?,
                    performance_due: d.performance_due,
                    copies: d.copies.filter(|c| *c > 0),
                }
            }
            CaseCommand::FailMediation(c) => CaseEvent::MediationFailed {
                reason: txt("reason", &c.reason, LONG)?,
                next_route: c.next_route,
                failed_at: self.when(c.failed_at, "failed_at", now, &[])?,
            },
            CaseCommand::Escalate(c) => CaseEvent::CaseEscalated {
                route: c.route,
                reason: txt("reason", &c.reason, LONG)?,
                escalated_at: self.when(c.escalated_at, "escalated_at", now, &[])?,
            },
            CaseCommand::RecordIncident(c) => CaseEvent::ObstructionIncidentRecorded {
                incident: self.incident(services, c.incident, now, &self.parties)?,
            },
            CaseCommand::RecordPoliceIntervention(c) => {
                let bound = match c.incident_id {
                    Some(id) => match self.incidents.get(&id) {
                        None => return Err(CaseError::IncidentNotFound(id)),
                        Some(i) => Some(i.occurred_at),
                    },
                    None => None,
                };
                CaseEvent::PoliceInterventionRecorded {
                    incident_id: c.incident_id,
                    police_unit: txt("police_unit", &c.police_unit, SHORT)?,
                    intervened_at: self.when(
                        c.intervened_at,
                        "intervened_at",
                        now,
                        &[("the incident", bound)],
                    )?,
                    outcome: txt("outcome", &c.outcome, LONG)?,
                }
            }
            CaseCommand::ResumeWork(c) => {
                let Some(i) = self.incidents.get(&c.incident_id) else {
                    return Err(CaseError::IncidentNotFound(c.incident_id));
                };
                if i.work_stopped_minutes == 0 {
                    return Err(CaseError::WorkNotStopped(c.incident_id));
                }
                if i.resumed_at.is_some() {
                    return Err(CaseError::WorkAlreadyResumed(c.incident_id));
                }
                CaseEvent::WorkResumed {
                    incident_id: c.incident_id,
                    resumed_at: self.when(
                        c.resumed_at,
                        "resumed_at",
                        now,
                        &[
                            ("the incident", Some(i.occurred_at)),
                            ("the end of the stoppage", Some(i.stoppage_ends())),
                        ],
                    )?,
                }
            }
            CaseCommand::RecordFollowUp(c) => {
                let Some(a) = &self.agreement else {
                    return Err(CaseError::AgreementRequired);
                };
                CaseEvent::FollowUpVisitRecorded {
                    visited_at: self.when(
                        c.visited_at,
                        "visited_at",
                        now,
                        &[("the agreement", Some(a.agreed_at))],
                    )?,
                    satisfaction: c.satisfaction,
                    notes: opt_txt("notes", c.notes.as_deref(), LONG)?,
                }
            }
            CaseCommand::IssueSupervisionOrder(c) => {
                if self.orders.contains_key(&c.order_id) {
                    return Err(CaseError::OrderExists(c.order_id));
                }
                planned("respond_by", c.respond_by, now)?;
                if c.respond_by <= now.0 {
                    return Err(CaseError::TimeOrder {
                        field: "respond_by",
                        earlier: "now",
                    });
                }
                CaseEvent::SupervisionOrderIssued {
                    order_id: c.order_id,
                    office: txt("office", &c.office, SHORT)?,
                    instructions: txt("instructions", &c.instructions, LONG)?,
                    respond_by: c.respond_by,
                    issued_at: now.0,
                }
            }
            CaseCommand::AnswerSupervisionOrder(c) => {
                match self.orders.get(&c.order_id) {
                    None => return Err(CaseError::OrderNotFound(c.order_id)),
                    Some(true) => return Err(CaseError::OrderAlreadyAnswered(c.order_id)),
                    Some(false) => {}
                }
                CaseEvent::SupervisionOrderAnswered {
                    order_id: c.order_id,
                    answer: txt("answer", &c.answer, LONG)?,
                    answered_at: now.0,
                }
            }
            CaseCommand::AddNote(c) => CaseEvent::NoteAdded {
                note: txt("note", &c.note, LONG)?,
            },
            CaseCommand::RecordCorrection(c) => {
                if c.corrects_sequence == 0 || c.corrects_sequence > self.version {
                    return Err(CaseError::CorrectionTarget(c.corrects_sequence));
                }
                CaseEvent::CorrectionRecorded {
                    corrects_sequence: c.corrects_sequence,
                    field: txt("field", &c.field, SHORT)?,
                    corrected_value: txt("corrected_value", &c.corrected_value, LONG)?,
                    reason: txt("reason", &c.reason, LONG)?,
                }
            }
            CaseCommand::Withdraw(c) => CaseEvent::CaseWithdrawn {
                reason: txt("reason", &c.reason, LONG)?,
                withdrawn_at: self.when(c.withdrawn_at, "withdrawn_at", now, &[])?,
            },
            CaseCommand::CloseCase(c) => {
                let outcome = c.outcome.ok_or(CaseError::OutcomeRequired)?;
                let possible = match outcome {
                    Outcome::ResolvedByAgreement => self.agreement.is_some(),
                    Outcome::Referred => self.failed || self.escalated || self.referred_to_court,
                    Outcome::NotAdmissible => self.status == Reported,
                    Outcome::ResolvedOtherwise | Outcome::Unresolved => self.status != Reported,
                };
                if !possible {
                    return Err(CaseError::OutcomeNotPossible(outcome.as_str()));
                }
                if outcome == Outcome::ResolvedByAgreement
                    && (self.short_of_performance() || self.referred_to_court)
                {
                    return Err(CaseError::AgreementNotPerformed);
                }
                if let Some((id, _)) = self.orders.iter().find(|(_, answered)| !**answered) {
                    return Err(CaseError::OrderUnanswered(*id));
                }
                if let Some((id, _)) = self
                    .incidents
                    .iter()
                    .find(|(_, i)| i.work_stopped_minutes > 0 && i.resumed_at.is_none())
                {
                    return Err(CaseError::WorkStillStopped(*id));
                }
                CaseEvent::CaseClosed {
                    outcome,
                    closed_at: self.when(
                        c.closed_at,
                        "closed_at",
                        now,
                        &[("acceptance", self.accepted_at)],
                    )?,
                    summary: opt_txt("summary", c.summary.as_deref(), LONG)?,
                }
            }
            CaseCommand::ReopenCase(c) => CaseEvent::CaseReopened {
                reason: txt("reason", &c.reason, LONG)?,
                reopened_at: self.when(c.reopened_at, "reopened_at", now, &[])?,
            },
            CaseCommand::RecordPerformance(c) => {
                let agreed = self.agreement.as_ref().map(|a| a.agreed_at);
                let reported_at = self.when(
                    c.reported_at,
                    "reported_at",
                    now,
                    &[
                        ("the agreement", agreed),
                        (
                            "the performance report",
                            self.performance.map(|p| p.reported_at),
                        ),
                    ],
                )?;
                let remaining = opt_txt("remaining", c.remaining.as_deref(), LONG)?;
                if c.performance == Performance::PartlyPerformed && remaining.is_none() {
                    return Err(CaseError::RemainingRequired);
                }
                CaseEvent::PerformanceRecorded {
                    performance: c.performance,
                    remaining: remaining.filter(|_| c.performance != Performance::Performed),
                    reported_by: txt("reported_by", &c.reported_by, SHORT)?,
                    reported_at,
                }
            }
            CaseCommand::UrgePerformance(c) => {
                let urged_at = self.when(
                    c.urged_at,
                    "urged_at",
                    now,
                    &[
                        (
                            "the performance report",
                            self.performance.map(|p| p.reported_at),
                        ),
                        ("the urging", self.urged_at),
                    ],
                )?;
                let due = planned("performance_due", c.performance_due, now)?;
                if due <= urged_at {
                    return Err(CaseError::TimeOrder {
                        field: "performance_due",
                        earlier: "urged_at",
                    });
                }
                CaseEvent::PerformanceUrged {
                    method: txt("method", &c.method, LONG)?,
                    performance_due: due,
                    urged_at,
                }
            }
            CaseCommand::ReferToCourt(c) => {
                if !c.right_to_sue_told {
                    return Err(CaseError::RightToSueNotTold);
                }
                CaseEvent::ReferredToCourt {
                    court: txt("court", &c.court, SHORT)?,
                    right_to_sue_told: true,
                    reason: txt("reason", &c.reason, LONG)?,
                    referred_at: self.when(
                        c.referred_at,
                        "referred_at",
                        now,
                        &[
                            (
                                "the performance report",
                                self.performance.map(|p| p.reported_at),
                            ),
                            ("the urging", self.urged_at),
                        ],
                    )?,
                }
            }
            CaseCommand::ApplyForConfirmation(c) => {
                let agreed = self.agreement.as_ref().map(|a| a.agreed_at);
                let applied_at = self.when(
                    c.applied_at,
                    "applied_at",
                    now,
                    &[("the agreement", agreed)],
                )?;
                if agreed.is_some_and(|a| applied_at > a.plus_days(CONFIRMATION_WINDOW_DAYS)) {
                    return Err(CaseError::ConfirmationWindowClosed {
                        days: CONFIRMATION_WINDOW_DAYS,
                    });
                }
                CaseEvent::JudicialConfirmationApplied {
                    court: txt("court", &c.court, SHORT)?,
                    applied_at,
                }
            }
            CaseCommand::RecordConfirmationDecision(c) => {
                let applied = self.confirmation.map(|x| x.applied_at);
                let reason = opt_txt("reason", c.reason.as_deref(), LONG)?;
                if !c.confirmed && reason.is_none() {
                    return Err(CaseError::ReasonRequired);
                }
                CaseEvent::JudicialConfirmationDecided {
                    confirmed: c.confirmed,
                    reason,
                    decided_at: self.when(
                        c.decided_at,
                        "decided_at",
                        now,
                        &[("the application", applied)],
                    )?,
                }
            }
            CaseCommand::RecordEscalationReply(c) => {
                let Some(route) = self.route.filter(|r| r.replied_at.is_none()) else {
                    return Err(CaseError::NoReplyAwaited);
                };
                CaseEvent::EscalationReplied {
                    route: route.route,
                    reply: txt("reply", &c.reply, LONG)?,
                    replied_at: self.when(
                        c.replied_at,
                        "replied_at",
                        now,
                        &[("the escalation", Some(route.since))],
                    )?,
                }
            }
            CaseCommand::AddAttachment(c) => {
                // Papers arrive after the case closed too (a signed agreement's scan).
                if self.status == NotOpened {
                    return Err(CaseError::NotFound);
                }
                if let Some(n) = c.documents {
                    if n == 0 || n > self.version {
                        return Err(CaseError::AttachmentTarget(n));
                    }
                }
                let hex = |h: &str| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit());
                if c.size == 0 || !hex(&c.sha256) || !hex(&c.stored_sha256) {
                    return Err(CaseError::InvalidAttachment);
                }
                CaseEvent::AttachmentAdded {
                    attachment_id: c.attachment_id,
                    media_type: c.media_type,
                    size: c.size,
                    sha256: c.sha256,
                    stored_sha256: c.stored_sha256,
                    caption: opt_txt("caption", c.caption.as_deref(), SHORT)?,
                    documents: c.documents,
                }
            }
            CaseCommand::TransferCase(c) => {
                if self.status == NotOpened {
                    return Err(CaseError::NotFound);
                }
                let Some(from_group) = self.group else {
                    return Err(CaseError::NotFound);
                };
                if from_group == c.to {
                    return Err(CaseError::AlreadyInGroup);
                }
                // The case follows its community: the receiving group must cover it now.
                let receiver = services
                    .directory
                    .group(&c.to)
                    .await
                    .map_err(|e| CaseError::Unavailable(e.0))?;
                let Some(receiver) = receiver.filter(|g| {
                    self.community
                        .as_ref()
                        .is_some_and(|c| g.communities.contains(c))
                }) else {
                    return Err(CaseError::CommunityNotInGroup(c.to));
                };
                CaseEvent::CaseTransferred {
                    from_group,
                    to_group: c.to,
                    reason: txt("reason", &c.reason, LONG)?,
                    unassigned: self.assignee.filter(|a| !receiver.has_member(a)),
                }
            }
        };
        Ok(vec![event])
    }
}

impl Aggregate for Case {
    const TYPE: &'static str = CASE_AGGREGATE_TYPE;
    type Command = CaseCommand;
    type Event = CaseEvent;
    type Error = CaseError;
    type Services = CaseServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command, services).await? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    /// Only state changes; every rule is checked in `handle`.
    fn apply(&mut self, event: Self::Event) {
        use CaseStatus::*;
        self.version += 1;
        match event {
            CaseEvent::CaseOpened {
                kind,
                community,
                group,
                category,
                occurred_at,
                parties,
                ..
            } => {
                self.status = Reported;
                self.kind = Some(kind);
                self.community = Some(community);
                self.group = Some(group);
                self.category = Some(category);
                self.occurred_at = Some(occurred_at);
                self.parties = parties;
            }
            CaseEvent::PartyAdded { party } => self.parties.push(party),
            CaseEvent::CaseAccepted { accepted_at } => {
                self.status = Accepted;
                self.accepted_at = Some(accepted_at);
            }
            CaseEvent::CaseAssigned { assignee, .. } => self.assignee = Some(assignee),
            CaseEvent::SessionScheduled {
                session_id,
                scheduled_for,
                ..
            } => {
                self.sessions.insert(
                    session_id,
                    SessionState {
                        scheduled_for,
                        held_at: None,
                    },
                );
                if matches!(self.status, Accepted) {
                    self.status = InMediation;
                }
            }
            CaseEvent::SessionHeld {
                session_id,
                held_at,
                ..
            } => {
                if let Some(s) = self.sessions.get_mut(&session_id) {
                    s.held_at = Some(held_at);
                }
                if matches!(self.status, Accepted | Failed | Escalated) {
                    self.status = InMediation;
                }
            }
            CaseEvent::DeadlineExtended { new_due, .. } => self.extended_due = Some(new_due),
            CaseEvent::AgreementReached {
                agreed_at,
                follow_up_due,
                performance_due,
                ..
            } => {
                self.performance_due = performance_due;
                self.status = Agreed;
                self.agreement = Some(AgreementState {
                    agreed_at,
                    follow_up_due,
                });
            }
            CaseEvent::MediationFailed {
                next_route,
                failed_at,
                ..
            } => {
                self.status = Failed;
                self.failed = true;
                self.route = Some(RouteState {
                    route: next_route,
                    since: failed_at,
                    replied_at: None,
                });
            }
            CaseEvent::CaseEscalated {
                route,
                escalated_at,
                ..
            } => {
                self.status = Escalated;
                self.escalated = true;
                self.route = Some(RouteState {
                    route,
                    since: escalated_at,
                    replied_at: None,
                });
            }
            CaseEvent::PerformanceRecorded {
                performance,
                reported_at,
                ..
            } => {
                self.performance = Some(PerformanceState {
                    performance,
                    reported_at,
                })
            }
            CaseEvent::PerformanceUrged {
                performance_due,
                urged_at,
                ..
            } => {
                self.urged_at = Some(urged_at);
                self.performance_due = Some(performance_due);
            }
            CaseEvent::ReferredToCourt { .. } => self.referred_to_court = true,
            CaseEvent::JudicialConfirmationApplied { applied_at, .. } => {
                self.confirmation = Some(ConfirmationState {
                    applied_at,
                    decision: None,
                })
            }
            CaseEvent::JudicialConfirmationDecided { confirmed, .. } => {
                if let Some(c) = &mut self.confirmation {
                    c.decision = Some(confirmed);
                }
            }
            CaseEvent::AttachmentAdded { .. } => self.attachments += 1,
            CaseEvent::EscalationReplied { replied_at, .. } => {
                if let Some(r) = &mut self.route {
                    r.replied_at = Some(replied_at);
                }
            }
            CaseEvent::ObstructionIncidentRecorded { incident } => {
                self.incidents.insert(
                    incident.incident_id,
                    IncidentState {
                        occurred_at: incident.occurred_at,
                        work_stopped_minutes: incident.work_stopped_minutes,
                        resumed_at: None,
                        recorded_in: self.version,
                        corrected_minutes: None,
                    },
                );
            }
            CaseEvent::PoliceInterventionRecorded { .. } => {}
            CaseEvent::WorkResumed {
                incident_id,
                resumed_at,
            } => {
                if let Some(i) = self.incidents.get_mut(&incident_id) {
                    i.resumed_at = Some(resumed_at);
                }
            }
            CaseEvent::FollowUpVisitRecorded { .. } => self.follow_ups += 1,
            CaseEvent::SupervisionOrderIssued { order_id, .. } => {
                self.orders.insert(order_id, false);
            }
            CaseEvent::SupervisionOrderAnswered { order_id, .. } => {
                self.orders.insert(order_id, true);
            }
            CaseEvent::CorrectionRecorded {
                corrects_sequence,
                field,
                corrected_value,
                ..
            } => {
                if field == "work_stopped_minutes" {
                    if let Some(i) = self
                        .incidents
                        .values_mut()
                        .find(|i| i.recorded_in == corrects_sequence)
                    {
                        i.corrected_minutes = crate::time::stoppage_minutes(&corrected_value)
                            .filter(|m| *m <= MAX_WORK_STOPPED_MINUTES);
                    }
                }
            }
            CaseEvent::NoteAdded { .. } => {}
            CaseEvent::CaseWithdrawn { .. } => {
                self.reopen_status = Some(self.status);
                self.status = Withdrawn;
            }
            CaseEvent::CaseClosed { .. } => {
                self.reopen_status = Some(self.status);
                self.status = Closed;
            }
            CaseEvent::CaseTransferred {
                to_group,
                unassigned,
                ..
            } => {
                self.group = Some(to_group);
                if unassigned.is_some() {
                    self.assignee = None;
                }
            }
            CaseEvent::CaseReopened { .. } => {
                // A reopened case starts mediation afresh: the earlier agreement or failure
                // stays in the record but no longer settles the case.
                self.status = if self.accepted_at.is_some() {
                    Accepted
                } else {
                    Reported
                };
                self.agreement = None;
                self.failed = false;
                self.escalated = false;
                self.reopen_status = None;
                self.performance = None;
                self.performance_due = None;
                self.urged_at = None;
                self.referred_to_court = false;
                self.confirmation = None;
                self.route = None;
            }
        }
    }
}
