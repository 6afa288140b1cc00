//! The steps a mediator can take on an opened case, and when the case allows each.
//!
//! [`Case::guard`] holds the rules that depend only on the case's state (its status, its
//! kind, whether an agreement exists). `decide` runs it first for every command, so these
//! rules live in one place. [`Case::can`] adds what a step needs to act on (a session not
//! yet held, work still stopped, an order not yet answered): pages offer a step only when
//! `can` says so, and the property tests check that `decide` never accepts a command whose
//! step `can` refused.

use super::aggregate::{Case, CaseStatus};
use super::commands::CaseCommand;
use super::errors::CaseError;
use super::events::CaseKind;

/// One step on an opened case: one per command but opening. The names are the steps'
/// names in URLs and forms.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    strum::EnumIter,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[strum(serialize_all = "snake_case")]
pub enum CaseStep {
    Accept,
    Assign,
    ScheduleSession,
    RecordSession,
    Agreement,
    Failure,
    FollowUp,
    Incident,
    ResumeWork,
    Police,
    ExtendDeadline,
    Escalate,
    AnswerOrder,
    SupervisionOrder,
    AddParty,
    Note,
    Correction,
    Withdrawal,
    Performance,
    UrgePerformance,
    CourtReferral,
    ConfirmationApplication,
    ConfirmationDecision,
    EscalationReply,
    Close,
    Reopen,
}

impl CaseStep {
    pub fn name(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    /// The name of the command the step runs ([`CaseCommand::name`]), which the
    /// permission table is keyed by.
    pub fn command_name(self) -> &'static str {
        use CaseStep as S;
        match self {
            S::Accept => "accept_case",
            S::Assign => "assign_case",
            S::ScheduleSession => "schedule_session",
            S::RecordSession => "record_session",
            S::Agreement => "reach_agreement",
            S::Failure => "fail_mediation",
            S::FollowUp => "record_follow_up",
            S::Incident => "record_incident",
            S::ResumeWork => "resume_work",
            S::Police => "record_police_intervention",
            S::ExtendDeadline => "extend_deadline",
            S::Escalate => "escalate",
            S::AnswerOrder => "answer_supervision_order",
            S::SupervisionOrder => "issue_supervision_order",
            S::AddParty => "add_party",
            S::Note => "add_note",
            S::Correction => "record_correction",
            S::Withdrawal => "withdraw",
            S::Performance => "record_performance",
            S::UrgePerformance => "urge_performance",
            S::CourtReferral => "refer_to_court",
            S::ConfirmationApplication => "apply_for_confirmation",
            S::ConfirmationDecision => "record_confirmation_decision",
            S::EscalationReply => "record_escalation_reply",
            S::Close => "close_case",
            S::Reopen => "reopen_case",
        }
    }
}

impl CaseCommand {
    /// The step a command takes; `None` for opening a case.
    pub fn step(&self) -> Option<CaseStep> {
        use CaseCommand as C;
        Some(match self {
            C::OpenCase(_) | C::TransferCase(_) | C::AddAttachment(_) => return None,
            C::AddParty(_) => CaseStep::AddParty,
            C::AcceptCase(_) => CaseStep::Accept,
            C::AssignCase(_) => CaseStep::Assign,
            C::ScheduleSession(_) => CaseStep::ScheduleSession,
            C::RecordSession(_) => CaseStep::RecordSession,
            C::ExtendDeadline(_) => CaseStep::ExtendDeadline,
            C::ReachAgreement(_) => CaseStep::Agreement,
            C::FailMediation(_) => CaseStep::Failure,
            C::Escalate(_) => CaseStep::Escalate,
            C::RecordIncident(_) => CaseStep::Incident,
            C::RecordPoliceIntervention(_) => CaseStep::Police,
            C::ResumeWork(_) => CaseStep::ResumeWork,
            C::RecordFollowUp(_) => CaseStep::FollowUp,
            C::IssueSupervisionOrder(_) => CaseStep::SupervisionOrder,
            C::AnswerSupervisionOrder(_) => CaseStep::AnswerOrder,
            C::AddNote(_) => CaseStep::Note,
            C::RecordCorrection(_) => CaseStep::Correction,
            C::Withdraw(_) => CaseStep::Withdrawal,
            C::CloseCase(_) => CaseStep::Close,
            C::ReopenCase(_) => CaseStep::Reopen,
            C::RecordPerformance(_) => CaseStep::Performance,
            C::UrgePerformance(_) => CaseStep::UrgePerformance,
            C::ReferToCourt(_) => CaseStep::CourtReferral,
            C::ApplyForConfirmation(_) => CaseStep::ConfirmationApplication,
            C::RecordConfirmationDecision(_) => CaseStep::ConfirmationDecision,
            C::RecordEscalationReply(_) => CaseStep::EscalationReply,
        })
    }
}

impl Case {
    fn ensure_open(&self) -> Result<(), CaseError> {
        match self.status {
            CaseStatus::NotOpened => Err(CaseError::NotFound),
            CaseStatus::Closed => Err(CaseError::Closed),
            CaseStatus::Withdrawn => Err(CaseError::Withdrawn),
            _ => Ok(()),
        }
    }

    /// An agreement in force: recorded, and the case still at the agreement.
    fn agreed(&self, action: &'static str) -> Result<(), CaseError> {
        if self.agreement.is_none() {
            return Err(CaseError::AgreementRequired);
        }
        self.ensure_status(action, &[CaseStatus::Agreed])
    }

    fn ensure_status(&self, action: &'static str, allowed: &[CaseStatus]) -> Result<(), CaseError> {
        if allowed.contains(&self.status) {
            Ok(())
        } else {
            Err(CaseError::WrongStatus {
                action,
                status: self.status,
            })
        }
    }

    /// The rules of a step that depend only on the case's state. `decide` runs this first
    /// for every command but opening.
    pub fn guard(&self, step: CaseStep) -> Result<(), CaseError> {
        use CaseStatus::*;
        use CaseStep as S;
        if step == S::Reopen {
            return match self.status {
                NotOpened => Err(CaseError::NotFound),
                Closed | Withdrawn => Ok(()),
                _ => Err(CaseError::NotClosed),
            };
        }
        self.ensure_open()?;
        match step {
            S::Accept => self.ensure_status("accept", &[Reported]),
            S::Assign => self.ensure_status(
                "assign",
                &[Accepted, InMediation, Agreed, Failed, Escalated],
            ),
            S::ScheduleSession => self.ensure_status(
                "schedule a session for",
                &[Accepted, InMediation, Failed, Escalated],
            ),
            S::ExtendDeadline => {
                self.ensure_status("extend the deadline of", &[Accepted, InMediation])
            }
            S::Agreement => {
                if self.agreement.is_some() {
                    return Err(CaseError::AlreadyAgreed);
                }
                self.ensure_status("reach an agreement in", &[InMediation, Failed, Escalated])?;
                if !self.has_held_session() {
                    return Err(CaseError::NoHeldSession);
                }
                Ok(())
            }
            S::Failure => {
                self.ensure_status("record a failure of", &[InMediation])?;
                if !self.has_held_session() {
                    return Err(CaseError::NoHeldSession);
                }
                Ok(())
            }
            S::Escalate => self.ensure_status(
                "escalate",
                &[Accepted, InMediation, Agreed, Failed, Escalated],
            ),
            S::FollowUp => match self.agreement {
                None => Err(CaseError::AgreementRequired),
                Some(_) => Ok(()),
            },
            S::Performance => {
                self.agreed("record the performance of")?;
                if self.performed() {
                    return Err(CaseError::AlreadyPerformed);
                }
                if self.referred_to_court {
                    return Err(CaseError::AlreadyReferred);
                }
                Ok(())
            }
            S::UrgePerformance | S::CourtReferral => {
                self.agreed("record the performance of")?;
                if self.referred_to_court {
                    return Err(CaseError::AlreadyReferred);
                }
                if !self.short_of_performance() {
                    return Err(CaseError::NotShortOfPerformance);
                }
                Ok(())
            }
            S::ConfirmationApplication => {
                self.agreed("apply for judicial confirmation in")?;
                match self.confirmation.map(|c| c.decision) {
                    Some(None) => Err(CaseError::ConfirmationPending),
                    Some(Some(true)) => Err(CaseError::AlreadyConfirmed),
                    _ => Ok(()),
                }
            }
            S::ConfirmationDecision => match self.confirmation.map(|c| c.decision) {
                Some(None) => Ok(()),
                _ => Err(CaseError::NoConfirmationApplication),
            },
            S::EscalationReply => match self.route {
                Some(r) if r.replied_at.is_none() => Ok(()),
                _ => Err(CaseError::NoReplyAwaited),
            },
            S::Withdrawal => {
                if self.kind != Some(CaseKind::ResidentObjection) {
                    return Err(CaseError::WithdrawalOnlyForObjections);
                }
                Ok(())
            }
            // Police on a resident objection come after it was accepted (an obstruction
            // case arrives with its incident).
            S::Police
                if self.kind == Some(CaseKind::ResidentObjection) && self.incidents.is_empty() =>
            {
                self.ensure_status(
                    "record a police intervention on",
                    &[Accepted, InMediation, Agreed, Failed, Escalated],
                )
            }
            S::RecordSession
            | S::Incident
            | S::ResumeWork
            | S::Police
            | S::AnswerOrder
            | S::SupervisionOrder
            | S::AddParty
            | S::Note
            | S::Correction
            | S::Close
            | S::Reopen => Ok(()),
        }
    }

    /// Whether the step can be taken now: its state rules hold, and there is something for
    /// it to act on. A page offers exactly these steps (subject to the actor's role).
    pub fn can(&self, step: CaseStep) -> bool {
        if self.guard(step).is_err() {
            return false;
        }
        match step {
            CaseStep::RecordSession => self.sessions.values().any(|s| s.held_at.is_none()),
            CaseStep::ResumeWork => self
                .incidents
                .values()
                .any(|i| i.work_stopped_minutes > 0 && i.resumed_at.is_none()),
            CaseStep::AnswerOrder => self.orders.values().any(|answered| !answered),
            // Every party must consent, so a case without parties cannot be extended.
            CaseStep::ExtendDeadline => !self.parties.is_empty(),
            _ => true,
        }
    }

    /// The steps that can be taken now, in the order pages show them.
    pub fn available_steps(&self) -> Vec<CaseStep> {
        use strum::IntoEnumIterator;
        CaseStep::iter().filter(|s| self.can(*s)).collect()
    }
}
