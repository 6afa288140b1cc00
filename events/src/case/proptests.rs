//! Random command sequences never break an invariant, and replaying the events they
//! produced rebuilds the same state.

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use proptest::prelude::*;

use super::tests::{fixture, now, services};
use super::*;
use crate::ids::*;
use crate::Clock;

#[derive(Debug, Clone)]
enum Step {
    Open(bool, u8),
    AddParty(u8),
    Accept,
    Assign(bool),
    Schedule(u8),
    Record(u8, bool),
    Extend(bool, i64),
    Agree(u8),
    Fail,
    Escalate,
    Incident(u8, u32),
    Police(Option<u8>),
    Resume(u8),
    FollowUp,
    Issue(u8),
    Answer(u8),
    Note,
    Correct(u64),
    Withdraw,
    Close(u8),
    Reopen,
    Advance(i64),
    Perform(u8),
    Urge(i64),
    Refer(bool),
    Apply,
    Decide(bool),
    Reply,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (any::<bool>(), 0u8..3).prop_map(|(o, p)| Step::Open(o, p)),
        (0u8..4).prop_map(Step::AddParty),
        Just(Step::Accept),
        any::<bool>().prop_map(Step::Assign),
        (0u8..3).prop_map(Step::Schedule),
        (0u8..3, any::<bool>()).prop_map(|(s, m)| Step::Record(s, m)),
        (any::<bool>(), -5i64..40).prop_map(|(a, d)| Step::Extend(a, d)),
        (0u8..3).prop_map(Step::Agree),
        Just(Step::Fail),
        Just(Step::Escalate),
        (0u8..3, prop_oneof![Just(0u32), 1u32..600, Just(50_000u32)])
            .prop_map(|(i, m)| Step::Incident(i, m)),
        proptest::option::of(0u8..3).prop_map(Step::Police),
        (0u8..3).prop_map(Step::Resume),
        Just(Step::FollowUp),
        (0u8..2).prop_map(Step::Issue),
        (0u8..2).prop_map(Step::Answer),
        Just(Step::Note),
        (0u64..12).prop_map(Step::Correct),
        Just(Step::Withdraw),
        (0u8..6).prop_map(Step::Close),
        Just(Step::Reopen),
        (1i64..72).prop_map(Step::Advance),
        (0u8..4).prop_map(Step::Perform),
        (-2i64..20).prop_map(Step::Urge),
        any::<bool>().prop_map(Step::Refer),
        Just(Step::Apply),
        any::<bool>().prop_map(Step::Decide),
        Just(Step::Reply),
    ]
}

fn party(n: u8) -> PartyId {
    PartyId(uuid::Uuid::from_u128(10 + u128::from(n)))
}

fn to_command(s: &Step, case: &Case, clock_now: crate::Timestamp) -> Option<CaseCommand> {
    let f = fixture();
    let session = |n: u8| SessionId(uuid::Uuid::from_u128(20 + u128::from(n)));
    let incident = |n: u8| IncidentId(uuid::Uuid::from_u128(30 + u128::from(n)));
    let order = |n: u8| OrderId(uuid::Uuid::from_u128(40 + u128::from(n)));
    Some(match s {
        Step::Open(obstruction, p) => CaseCommand::OpenCase(OpenCase {
            kind: if *obstruction {
                CaseKind::ConstructionObstruction
            } else {
                CaseKind::ResidentObjection
            },
            community: CommunityId::parse("jingfeng-yuan").unwrap(),
            category: CategoryCode::parse("cause.nuisance").unwrap(),
            summary: "施工噪声".into(),
            occurred_at: None,
            channel: IntakeChannel::Phone,
            parties: (0..*p)
                .map(|i| PartyRef {
                    party_id: party(i),
                    role: if i == 0 {
                        PartyRole::Complainant
                    } else {
                        PartyRole::Obstructor
                    },
                })
                .collect(),
            incident: obstruction.then(|| IncidentInput {
                incident_id: incident(0),
                occurred_at: None,
                location: "工地".into(),
                work_item: CategoryCode::parse("work.roads").unwrap(),
                obstructing_parties: (0..*p).map(party).collect(),
                work_stopped_minutes: 120,
                police_called: false,
                description: "阻工".into(),
            }),
        }),
        Step::AddParty(p) => CaseCommand::AddParty(AddParty {
            party: PartyRef {
                party_id: party(*p),
                role: PartyRole::Respondent,
            },
        }),
        Step::Accept => CaseCommand::AcceptCase(AcceptCase { accepted_at: None }),
        Step::Assign(member) => CaseCommand::AssignCase(AssignCase {
            assignee: if *member { f.member } else { f.outsider },
            assigned_at: None,
        }),
        Step::Schedule(n) => CaseCommand::ScheduleSession(ScheduleSession {
            session_id: session(*n),
            scheduled_for: clock_now,
            location: "会议室".into(),
        }),
        Step::Record(n, with_member) => CaseCommand::RecordSession(RecordSession {
            session_id: session(*n),
            held_at: None,
            attendees: if *with_member {
                vec![Attendee::GroupMember {
                    member_id: f.leader,
                }]
            } else {
                vec![Attendee::Other {
                    role: "律师".into(),
                }]
            },
            minutes_summary: "纪要".into(),
        }),
        Step::Extend(all, days) => CaseCommand::ExtendDeadline(ExtendDeadline {
            new_due: clock_now.plus_days(*days),
            reason: "等待评估".into(),
            consenting_parties: if *all {
                case.parties.iter().map(|p| p.party_id).collect()
            } else {
                vec![]
            },
            extended_at: None,
        }),
        Step::Agree(n) => CaseCommand::ReachAgreement(ReachAgreement {
            session_id: session(*n),
            terms: "条款".into(),
            agreed_at: None,
            follow_up_due: clock_now.plus_days(15),
            details: Default::default(),
        }),
        Step::Fail => CaseCommand::FailMediation(FailMediation {
            reason: "分歧".into(),
            next_route: Route::Court,
            failed_at: None,
        }),
        Step::Escalate => CaseCommand::Escalate(Escalate {
            route: Route::Police,
            reason: "多次阻工".into(),
            escalated_at: None,
        }),
        Step::Incident(n, minutes) => CaseCommand::RecordIncident(RecordIncident {
            incident: IncidentInput {
                incident_id: incident(*n),
                occurred_at: None,
                location: "工地".into(),
                work_item: CategoryCode::parse("work.roof").unwrap(),
                obstructing_parties: case.parties.iter().take(1).map(|p| p.party_id).collect(),
                work_stopped_minutes: *minutes,
                police_called: true,
                description: "阻工".into(),
            },
        }),
        Step::Police(n) => CaseCommand::RecordPoliceIntervention(RecordPoliceIntervention {
            incident_id: n.map(incident),
            police_unit: "派出所".into(),
            intervened_at: None,
            outcome: "劝离".into(),
        }),
        Step::Resume(n) => CaseCommand::ResumeWork(ResumeWork {
            incident_id: incident(*n),
            resumed_at: None,
        }),
        Step::FollowUp => CaseCommand::RecordFollowUp(RecordFollowUp {
            visited_at: None,
            satisfaction: Satisfaction::BasicallySatisfied,
            notes: None,
        }),
        Step::Issue(n) => CaseCommand::IssueSupervisionOrder(IssueSupervisionOrder {
            order_id: order(*n),
            office: "政府督查室".into(),
            instructions: "督办".into(),
            respond_by: clock_now.plus_days(5),
        }),
        Step::Answer(n) => CaseCommand::AnswerSupervisionOrder(AnswerSupervisionOrder {
            order_id: order(*n),
            answer: "已办理".into(),
        }),
        Step::Note => CaseCommand::AddNote(AddNote {
            note: "备注".into(),
        }),
        Step::Correct(n) => CaseCommand::RecordCorrection(RecordCorrection {
            corrects_sequence: *n,
            field: "summary".into(),
            corrected_value: "更正".into(),
            reason: "笔误".into(),
        }),
        Step::Withdraw => CaseCommand::Withdraw(Withdraw {
            reason: "撤回".into(),
            withdrawn_at: None,
        }),
        Step::Close(o) => CaseCommand::CloseCase(CloseCase {
            outcome: [
                None,
                Some(Outcome::ResolvedByAgreement),
                Some(Outcome::ResolvedOtherwise),
                Some(Outcome::Referred),
                Some(Outcome::NotAdmissible),
                Some(Outcome::Unresolved),
            ][*o as usize],
            closed_at: None,
            summary: None,
        }),
        Step::Reopen => CaseCommand::ReopenCase(ReopenCase {
            reason: "重启".into(),
            reopened_at: None,
        }),
        Step::Perform(n) => CaseCommand::RecordPerformance(RecordPerformance {
            performance: [
                Performance::Performed,
                Performance::PartlyPerformed,
                Performance::PartlyPerformed,
                Performance::NotPerformed,
            ][*n as usize],
            // The second "in part" leaves out what remains (refused).
            remaining: (*n != 2).then(|| "尚余部分".into()),
            reported_by: "申请人".into(),
            reported_at: None,
        }),
        Step::Urge(days) => CaseCommand::UrgePerformance(UrgePerformance {
            method: "电话督促".into(),
            performance_due: clock_now.plus_days(*days),
            urged_at: None,
        }),
        Step::Refer(told) => CaseCommand::ReferToCourt(ReferToCourt {
            court: "人民法院".into(),
            right_to_sue_told: *told,
            reason: "未履行".into(),
            referred_at: None,
        }),
        Step::Apply => CaseCommand::ApplyForConfirmation(ApplyForConfirmation {
            court: "人民法院".into(),
            applied_at: None,
        }),
        Step::Decide(confirmed) => {
            CaseCommand::RecordConfirmationDecision(RecordConfirmationDecision {
                confirmed: *confirmed,
                reason: (!*confirmed).then(|| "不予确认".into()),
                decided_at: None,
            })
        }
        Step::Reply => CaseCommand::RecordEscalationReply(RecordEscalationReply {
            reply: "已答复".into(),
            replied_at: None,
        }),
        Step::Advance(_) => return None,
    })
}

fn check_invariants(case: &Case, events: &[CaseEvent]) -> Result<(), TestCaseError> {
    prop_assert_eq!(case.version as usize, events.len());
    if events.is_empty() {
        prop_assert_eq!(case.status, CaseStatus::NotOpened);
        return Ok(());
    }
    prop_assert!(
        matches!(events[0], CaseEvent::CaseOpened { .. }),
        "the first event opens the case"
    );
    prop_assert!(
        events
            .iter()
            .skip(1)
            .all(|e| !matches!(e, CaseEvent::CaseOpened { .. })),
        "opened once"
    );
    prop_assert_ne!(case.status, CaseStatus::NotOpened);
    if case.status == CaseStatus::Agreed {
        prop_assert!(case.agreement.is_some());
    }
    if case.agreement.is_some() {
        prop_assert!(
            case.has_held_session(),
            "an agreement implies a held session"
        );
    }
    for i in case.incidents.values() {
        if let Some(r) = i.resumed_at {
            prop_assert!(r >= i.occurred_at);
            prop_assert!(i.work_stopped_minutes > 0);
        }
        prop_assert!(i.work_stopped_minutes <= MAX_WORK_STOPPED_MINUTES);
    }
    // Parties are unique, and every obstructing party is a party.
    let mut ids: Vec<_> = case.parties.iter().map(|p| p.party_id).collect();
    ids.sort();
    ids.dedup();
    prop_assert_eq!(ids.len(), case.parties.len());
    for e in events {
        if let CaseEvent::ObstructionIncidentRecorded { incident } = e {
            for p in &incident.obstructing_parties {
                prop_assert!(case.is_party(p));
            }
        }
    }
    // Between a close/withdraw and the next reopen, nothing else happens.
    let mut finished = false;
    for e in events {
        match e {
            CaseEvent::CaseClosed { .. } | CaseEvent::CaseWithdrawn { .. } => {
                prop_assert!(!finished, "closed twice without reopening");
                finished = true;
            }
            CaseEvent::CaseReopened { .. } => {
                prop_assert!(finished, "reopened an open case");
                finished = false;
            }
            _ => prop_assert!(!finished, "{} after closure", e.type_name()),
        }
    }
    prop_assert_eq!(finished, !case.status.is_open());
    // A closure for agreement happened only while an agreement stood.
    let mut agreed = false;
    for e in events {
        match e {
            CaseEvent::AgreementReached { .. } => agreed = true,
            CaseEvent::CaseReopened { .. } => agreed = false,
            CaseEvent::CaseClosed {
                outcome: Outcome::ResolvedByAgreement,
                ..
            } => prop_assert!(agreed),
            _ => {}
        }
    }
    // After the agreement: performance, urging, referral and confirmation follow each
    // other in order, and the closing outcome agrees with them.
    let mut agreement: Option<crate::Timestamp> = None;
    let mut short = false;
    let mut referred = false;
    let mut performed = false;
    let mut pending_application: Option<crate::Timestamp> = None;
    let mut confirmed = false;
    let mut awaiting: Option<crate::Timestamp> = None;
    for e in events {
        match e {
            CaseEvent::AgreementReached { agreed_at, .. } => agreement = Some(*agreed_at),
            CaseEvent::PerformanceRecorded {
                performance,
                remaining,
                reported_at,
                ..
            } => {
                prop_assert!(agreement.is_some_and(|a| *reported_at >= a));
                prop_assert!(!performed && !referred);
                if *performance == Performance::PartlyPerformed {
                    prop_assert!(remaining.is_some());
                }
                short = *performance != Performance::Performed;
                performed = *performance == Performance::Performed;
            }
            CaseEvent::PerformanceUrged {
                performance_due,
                urged_at,
                ..
            } => {
                prop_assert!(short && !referred);
                prop_assert!(performance_due > urged_at);
            }
            CaseEvent::ReferredToCourt {
                right_to_sue_told, ..
            } => {
                prop_assert!(short && !referred && *right_to_sue_told);
                referred = true;
            }
            CaseEvent::JudicialConfirmationApplied { applied_at, .. } => {
                let a = agreement.expect("applied without an agreement");
                prop_assert!(
                    *applied_at >= a && *applied_at <= a.plus_days(CONFIRMATION_WINDOW_DAYS)
                );
                prop_assert!(pending_application.is_none() && !confirmed);
                pending_application = Some(*applied_at);
            }
            CaseEvent::JudicialConfirmationDecided {
                confirmed: c,
                reason,
                decided_at,
            } => {
                let applied = pending_application
                    .take()
                    .expect("decided without an application");
                prop_assert!(*decided_at >= applied);
                prop_assert!(*c || reason.is_some());
                confirmed = *c;
            }
            CaseEvent::MediationFailed { failed_at: t, .. }
            | CaseEvent::CaseEscalated {
                escalated_at: t, ..
            } => awaiting = Some(*t),
            CaseEvent::EscalationReplied { replied_at, .. } => {
                let since = awaiting.take().expect("a reply nobody awaited");
                prop_assert!(*replied_at >= since);
            }
            CaseEvent::CaseClosed {
                outcome: Outcome::ResolvedByAgreement,
                ..
            } => {
                prop_assert!(
                    !short && !referred,
                    "resolved by agreement although not carried out"
                );
            }
            CaseEvent::CaseReopened { .. } => {
                agreement = None;
                short = false;
                referred = false;
                performed = false;
                pending_application = None;
                confirmed = false;
                awaiting = None;
            }
            _ => {}
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_commands_keep_invariants_and_replay(steps in proptest::collection::vec(step(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let services = services();
        let clock = std::sync::Arc::new(crate::ManualClock::new(now()));
        let services = crate::CaseServices { clock: clock.clone(), ..services };
        let mut case = Case::default();
        let mut events: Vec<CaseEvent> = Vec::new();
        for s in &steps {
            if let Step::Advance(h) = s {
                clock.advance(time::Duration::hours(*h));
                continue;
            }
            let Some(cmd) = to_command(s, &case, clock.now()) else { continue };
            let before = case.clone();
            let step = cmd.step();
            if let Some(st) = step {
                prop_assert_eq!(st.command_name(), cmd.name());
            }
            let available = step.map(|st| case.can(st));
            let sink = EventSink::<Case>::default();
            let result = rt.block_on(case.handle(cmd, &services, &sink));
            let new = rt.block_on(sink.collect());
            match result {
                Ok(()) => {
                    prop_assert!(!new.is_empty(), "a successful command records something");
                    // A page offers exactly the steps `can` allows: none that succeeds is
                    // ever missing from it.
                    prop_assert!(available != Some(false), "{:?} succeeded although `can` refused it", step);
                    events.extend(new);
                }
                Err(e) => {
                    prop_assert!(new.is_empty());
                    prop_assert_eq!(&case, &before, "a rejected command changes nothing ({})", e);
                    prop_assert!(!e.code().is_empty());
                }
            }
            check_invariants(&case, &events)?;
        }
        // Replaying the events, after a trip through JSON, rebuilds the same state.
        let mut replayed = Case::default();
        for e in &events {
            let json = serde_json::to_value(e).unwrap();
            let back: CaseEvent = serde_json::from_value(json).unwrap();
            prop_assert_eq!(&back, e);
            replayed.apply(back);
        }
        prop_assert_eq!(replayed, case);
    }
}
