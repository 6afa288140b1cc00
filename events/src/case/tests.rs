//! Given / when / then for every case command, accepted and rejected.

use std::sync::Arc;

use cqrs_es::test::TestFramework;

use super::*;
use crate::directory::{GroupInfo, InMemoryDirectory};
use crate::group::OrgRole;
use crate::ids::*;
use crate::{CaseServices, ManualClock, Reference, Timestamp};

pub(crate) struct Fixture {
    pub group: GroupId,
    pub leader: MemberId,
    pub member: MemberId,
    pub outsider: MemberId,
    pub complainant: PartyId,
    pub respondent: PartyId,
    pub obstructor: PartyId,
    pub session: SessionId,
    pub incident: IncidentId,
    pub order: OrderId,
}

pub(crate) fn fixture() -> Fixture {
    Fixture {
        group: GroupId(uuid::Uuid::from_u128(1)),
        leader: MemberId(uuid::Uuid::from_u128(2)),
        member: MemberId(uuid::Uuid::from_u128(3)),
        outsider: MemberId(uuid::Uuid::from_u128(4)),
        complainant: PartyId(uuid::Uuid::from_u128(10)),
        respondent: PartyId(uuid::Uuid::from_u128(11)),
        obstructor: PartyId(uuid::Uuid::from_u128(12)),
        session: SessionId(uuid::Uuid::from_u128(20)),
        incident: IncidentId(uuid::Uuid::from_u128(30)),
        order: OrderId(uuid::Uuid::from_u128(40)),
    }
}

pub(crate) fn t(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

/// "Now" in these tests: 2022-05-01 10:00 Beijing time.
pub(crate) fn now() -> Timestamp {
    t("2022-05-01T02:00:00Z")
}

pub(crate) fn services() -> CaseServices {
    let f = fixture();
    CaseServices {
        clock: Arc::new(ManualClock::new(now())),
        reference: Arc::new(Reference::guyuan_2022()),
        bounds: crate::TimeBounds::default(),
        directory: Arc::new(InMemoryDirectory::new([GroupInfo {
            id: f.group,
            communities: vec![CommunityId::parse("jingfeng-yuan").unwrap()],
            leader: f.leader,
            members: vec![
                (f.leader, OrgRole::StreetOffice),
                (f.member, OrgRole::Judicial),
            ],
        }])),
    }
}

fn framework() -> TestFramework<Case> {
    TestFramework::with(services())
}

fn community() -> CommunityId {
    CommunityId::parse("jingfeng-yuan").unwrap()
}

fn cat(s: &str) -> CategoryCode {
    CategoryCode::parse(s).unwrap()
}

pub(crate) fn opened() -> CaseEvent {
    let f = fixture();
    CaseEvent::CaseOpened {
        kind: CaseKind::ResidentObjection,
        community: community(),
        group: f.group,
        category: cat("cause.cost-sharing"),
        summary: "居民对楼体改造费用分摊有异议".into(),
        occurred_at: t("2022-04-01T01:00:00Z"),
        channel: IntakeChannel::Visit,
        parties: vec![
            PartyRef {
                party_id: f.complainant,
                role: PartyRole::Complainant,
            },
            PartyRef {
                party_id: f.respondent,
                role: PartyRole::Contractor,
            },
        ],
    }
}

pub(crate) fn accepted() -> CaseEvent {
    CaseEvent::CaseAccepted {
        accepted_at: t("2022-04-02T01:00:00Z"),
    }
}

pub(crate) fn scheduled() -> CaseEvent {
    CaseEvent::SessionScheduled {
        session_id: fixture().session,
        scheduled_for: t("2022-04-05T01:00:00Z"),
        location: "社区居委会会议室".into(),
    }
}

pub(crate) fn held() -> CaseEvent {
    let f = fixture();
    CaseEvent::SessionHeld {
        session_id: f.session,
        held_at: t("2022-04-05T01:00:00Z"),
        attendees: vec![
            Attendee::GroupMember {
                member_id: f.leader,
            },
            Attendee::Party {
                party_id: f.complainant,
            },
        ],
        minutes_summary: "双方陈述意见".into(),
    }
}

pub(crate) fn agreed() -> CaseEvent {
    CaseEvent::AgreementReached {
        session_id: fixture().session,
        terms: "分期缴纳".into(),
        agreed_at: t("2022-04-05T03:00:00Z"),
        follow_up_due: t("2022-04-20T03:00:00Z"),
        facts: String::new(),
        responsibilities: String::new(),
        obligations: vec![],
        performance_manner: String::new(),
        performance_place: String::new(),
        performance_due: None,
        copies: None,
    }
}

fn incident_input(minutes: u32) -> IncidentInput {
    let f = fixture();
    IncidentInput {
        incident_id: f.incident,
        occurred_at: Some(t("2022-04-03T01:00:00Z")),
        location: "3号楼东侧".into(),
        work_item: cat("work.roof"),
        obstructing_parties: vec![f.complainant],
        work_stopped_minutes: minutes,
        police_called: true,
        description: "阻止吊车进场".into(),
    }
}

fn incident_event(minutes: u32) -> CaseEvent {
    let i = incident_input(minutes);
    CaseEvent::ObstructionIncidentRecorded {
        incident: Incident {
            incident_id: i.incident_id,
            occurred_at: i.occurred_at.unwrap(),
            location: i.location,
            work_item: i.work_item,
            obstructing_parties: i.obstructing_parties,
            work_stopped_minutes: minutes,
            police_called: true,
            description: i.description,
        },
    }
}

fn open_cmd() -> OpenCase {
    let f = fixture();
    OpenCase {
        kind: CaseKind::ResidentObjection,
        community: community(),
        category: cat("cause.cost-sharing"),
        summary: "  居民对楼体改造费用分摊有异议 ".into(),
        occurred_at: Some(t("2022-04-01T01:00:00Z")),
        channel: IntakeChannel::Visit,
        parties: vec![
            PartyRef {
                party_id: f.complainant,
                role: PartyRole::Complainant,
            },
            PartyRef {
                party_id: f.respondent,
                role: PartyRole::Contractor,
            },
        ],
        incident: None,
    }
}

fn closed() -> CaseEvent {
    CaseEvent::CaseClosed {
        outcome: Outcome::ResolvedByAgreement,
        closed_at: t("2022-04-21T01:00:00Z"),
        summary: None,
    }
}

// ---- open ----

#[test]
fn open_objection() {
    framework()
        .given_no_previous_events()
        .when(CaseCommand::OpenCase(open_cmd()))
        .then_expect_events(vec![opened()]);
}

#[test]
fn open_obstruction_records_its_incident() {
    let f = fixture();
    let mut c = open_cmd();
    c.kind = CaseKind::ConstructionObstruction;
    c.parties = vec![PartyRef {
        party_id: f.complainant,
        role: PartyRole::Obstructor,
    }];
    c.occurred_at = Some(t("2022-04-03T01:00:00Z"));
    c.incident = Some(incident_input(150));
    let events = framework()
        .given_no_previous_events()
        .when(CaseCommand::OpenCase(c))
        .inspect_result()
        .unwrap();
    assert_eq!(events.len(), 2);
    assert!(
        matches!(&events[1], CaseEvent::ObstructionIncidentRecorded { incident } if incident.work_stopped_minutes == 150)
    );
}

#[test]
fn open_rejections() {
    let f = fixture();
    let err = |c: OpenCase| {
        framework()
            .given_no_previous_events()
            .when(CaseCommand::OpenCase(c))
            .inspect_result()
            .unwrap_err()
    };

    let mut c = open_cmd();
    c.community = CommunityId::parse("atlantis").unwrap();
    assert_eq!(
        err(c),
        CaseError::UnknownCommunity(CommunityId::parse("atlantis").unwrap())
    );

    let mut c = open_cmd();
    c.community = CommunityId::parse("meiyuan").unwrap();
    assert_eq!(err(c).code(), "no_group_for_community");

    let mut c = open_cmd();
    c.category = cat("cause.unheard-of");
    assert_eq!(err(c).code(), "unknown_category");

    let mut c = open_cmd();
    c.summary = "   ".into();
    assert_eq!(err(c).code(), "invalid_text");

    let mut c = open_cmd();
    c.summary = "长".repeat(4001);
    assert_eq!(err(c).code(), "invalid_text");

    let mut c = open_cmd();
    c.occurred_at = Some(t("2022-05-02T02:00:00Z"));
    assert_eq!(err(c), CaseError::InFuture("occurred_at"));

    let mut c = open_cmd();
    c.parties.retain(|p| p.role != PartyRole::Complainant);
    assert_eq!(err(c), CaseError::NoComplainant);

    let mut c = open_cmd();
    c.parties.push(PartyRef {
        party_id: f.complainant,
        role: PartyRole::Respondent,
    });
    assert_eq!(err(c), CaseError::DuplicateParty(f.complainant));

    let mut c = open_cmd();
    c.kind = CaseKind::ConstructionObstruction;
    assert_eq!(err(c), CaseError::ObstructionNeedsIncident);

    let mut c = open_cmd();
    c.kind = CaseKind::ConstructionObstruction;
    let mut i = incident_input(60);
    i.work_item = cat("cause.nuisance");
    c.incident = Some(i);
    assert_eq!(err(c).code(), "not_a_work_item");

    let mut c = open_cmd();
    c.kind = CaseKind::ConstructionObstruction;
    let mut i = incident_input(60);
    i.obstructing_parties = vec![f.obstructor];
    c.incident = Some(i);
    assert_eq!(err(c), CaseError::UnknownParty(f.obstructor));

    framework()
        .given(vec![opened()])
        .when(CaseCommand::OpenCase(open_cmd()))
        .then_expect_error(CaseError::AlreadyOpened);
}

#[test]
fn a_small_clock_skew_is_tolerated() {
    let mut c = open_cmd();
    c.occurred_at = Some(now().plus(time::Duration::seconds(120)));
    assert!(framework()
        .given_no_previous_events()
        .when(CaseCommand::OpenCase(c))
        .inspect_result()
        .is_ok());
}

#[test]
fn business_times_must_fall_within_the_programme_and_the_horizon() {
    let services = CaseServices {
        bounds: crate::TimeBounds {
            earliest: t("2021-01-01T00:00:00Z"),
            ..crate::TimeBounds::default()
        },
        ..services()
    };
    let fw = || TestFramework::<Case>::with(services.clone());
    for (at, expected) in [
        ("2020-12-31T23:59:59Z", CaseError::TooEarly("occurred_at")),
        ("0001-01-01T00:00:00Z", CaseError::TooEarly("occurred_at")),
        ("9999-12-31T23:59:59Z", CaseError::InFuture("occurred_at")),
    ] {
        let mut c = open_cmd();
        c.occurred_at = Some(t(at));
        fw().given_no_previous_events()
            .when(CaseCommand::OpenCase(c))
            .then_expect_error(expected);
    }
    let mut c = open_cmd();
    c.occurred_at = Some(t("2021-01-01T00:00:00Z"));
    assert!(fw()
        .given_no_previous_events()
        .when(CaseCommand::OpenCase(c))
        .inspect_result()
        .is_ok());
    // Planned times: not absurdly far ahead, not before the programme.
    for (at, expected) in [
        (
            "9999-12-31T23:59:59Z",
            CaseError::TooFarAhead("scheduled_for"),
        ),
        ("1970-01-01T00:00:00Z", CaseError::TooEarly("scheduled_for")),
    ] {
        fw().given(vec![opened(), accepted()])
            .when(CaseCommand::ScheduleSession(ScheduleSession {
                session_id: fixture().session,
                scheduled_for: t(at),
                location: "居委会".into(),
            }))
            .then_expect_error(expected);
    }
    fw().given(vec![opened(), accepted(), scheduled(), held()])
        .when(CaseCommand::ReachAgreement(ReachAgreement {
            session_id: fixture().session,
            terms: "分期缴纳".into(),
            agreed_at: None,
            follow_up_due: crate::Timestamp::MAX,
            details: Default::default(),
        }))
        .then_expect_error(CaseError::TooFarAhead("follow_up_due"));
    fw().given(vec![opened()])
        .when(CaseCommand::IssueSupervisionOrder(IssueSupervisionOrder {
            order_id: fixture().order,
            office: "区委督查室".into(),
            instructions: "限期答复".into(),
            respond_by: crate::Timestamp::MAX,
        }))
        .then_expect_error(CaseError::TooFarAhead("respond_by"));
}

#[test]
fn nothing_happens_to_an_unopened_case() {
    framework()
        .given_no_previous_events()
        .when(CaseCommand::AcceptCase(AcceptCase { accepted_at: None }))
        .then_expect_error(CaseError::NotFound);
}

// ---- parties ----

#[test]
fn add_party() {
    let f = fixture();
    let party = PartyRef {
        party_id: f.obstructor,
        role: PartyRole::Obstructor,
    };
    framework()
        .given(vec![opened()])
        .when(CaseCommand::AddParty(AddParty { party }))
        .then_expect_events(vec![CaseEvent::PartyAdded { party }]);
    let dup = PartyRef {
        party_id: f.complainant,
        role: PartyRole::Other,
    };
    framework()
        .given(vec![opened()])
        .when(CaseCommand::AddParty(AddParty { party: dup }))
        .then_expect_error(CaseError::DuplicateParty(f.complainant));
}

// ---- accept, assign ----

#[test]
fn accept() {
    framework()
        .given(vec![opened()])
        .when(CaseCommand::AcceptCase(AcceptCase {
            accepted_at: Some(t("2022-04-02T01:00:00Z")),
        }))
        .then_expect_events(vec![accepted()]);
    framework()
        .given(vec![opened()])
        .when(CaseCommand::AcceptCase(AcceptCase { accepted_at: None }))
        .then_expect_events(vec![CaseEvent::CaseAccepted { accepted_at: now() }]);
    framework()
        .given(vec![opened(), accepted()])
        .when(CaseCommand::AcceptCase(AcceptCase { accepted_at: None }))
        .then_expect_error(CaseError::WrongStatus {
            action: "accept",
            status: CaseStatus::Accepted,
        });
    framework()
        .given(vec![opened()])
        .when(CaseCommand::AcceptCase(AcceptCase {
            accepted_at: Some(t("2022-03-01T01:00:00Z")),
        }))
        .then_expect_error(CaseError::TimeOrder {
            field: "accepted_at",
            earlier: "the case",
        });
}

#[test]
fn assign() {
    let f = fixture();
    framework()
        .given(vec![opened(), accepted()])
        .when(CaseCommand::AssignCase(AssignCase {
            assignee: f.member,
            assigned_at: None,
        }))
        .then_expect_events(vec![CaseEvent::CaseAssigned {
            assignee: f.member,
            assigned_at: now(),
        }]);
    framework()
        .given(vec![opened(), accepted()])
        .when(CaseCommand::AssignCase(AssignCase {
            assignee: f.outsider,
            assigned_at: None,
        }))
        .then_expect_error(CaseError::NotGroupMember(f.outsider));
    framework()
        .given(vec![opened()])
        .when(CaseCommand::AssignCase(AssignCase {
            assignee: f.member,
            assigned_at: None,
        }))
        .then_expect_error(CaseError::WrongStatus {
            action: "assign",
            status: CaseStatus::Reported,
        });
}

// ---- sessions ----

#[test]
fn schedule_session() {
    framework()
        .given(vec![opened(), accepted()])
        .when(CaseCommand::ScheduleSession(ScheduleSession {
            session_id: fixture().session,
            scheduled_for: t("2022-04-05T01:00:00Z"),
            location: "社区居委会会议室".into(),
        }))
        .then_expect_events(vec![scheduled()]);
    framework()
        .given(vec![opened()])
        .when(CaseCommand::ScheduleSession(ScheduleSession {
            session_id: fixture().session,
            scheduled_for: t("2022-04-05T01:00:00Z"),
            location: "x".into(),
        }))
        .then_expect_error(CaseError::WrongStatus {
            action: "schedule a session for",
            status: CaseStatus::Reported,
        });
    framework()
        .given(vec![opened(), accepted(), scheduled()])
        .when(CaseCommand::ScheduleSession(ScheduleSession {
            session_id: fixture().session,
            scheduled_for: t("2022-04-06T01:00:00Z"),
            location: "x".into(),
        }))
        .then_expect_error(CaseError::SessionExists(fixture().session));
}

fn record(attendees: Vec<Attendee>) -> CaseCommand {
    CaseCommand::RecordSession(RecordSession {
        session_id: fixture().session,
        held_at: Some(t("2022-04-05T01:00:00Z")),
        attendees,
        minutes_summary: "双方陈述意见".into(),
    })
}

#[test]
fn record_session() {
    let f = fixture();
    framework()
        .given(vec![opened(), accepted(), scheduled()])
        .when(record(vec![
            Attendee::GroupMember {
                member_id: f.leader,
            },
            Attendee::Party {
                party_id: f.complainant,
            },
        ]))
        .then_expect_events(vec![held()]);
}

#[test]
fn record_session_rejections() {
    let f = fixture();
    framework()
        .given(vec![opened(), accepted(), scheduled()])
        .when(record(vec![Attendee::Party {
            party_id: f.complainant,
        }]))
        .then_expect_error(CaseError::NoGroupMemberPresent);
    framework()
        .given(vec![opened(), accepted(), scheduled()])
        .when(record(vec![Attendee::GroupMember {
            member_id: f.outsider,
        }]))
        .then_expect_error(CaseError::NotGroupMember(f.outsider));
    framework()
        .given(vec![opened(), accepted(), scheduled()])
        .when(record(vec![
            Attendee::GroupMember {
                member_id: f.leader,
            },
            Attendee::Party {
                party_id: f.obstructor,
            },
        ]))
        .then_expect_error(CaseError::UnknownParty(f.obstructor));
    framework()
        .given(vec![opened(), accepted()])
        .when(record(vec![Attendee::GroupMember {
            member_id: f.leader,
        }]))
        .then_expect_error(CaseError::SessionNotFound(f.session));
    framework()
        .given(vec![opened(), accepted(), scheduled(), held()])
        .when(record(vec![Attendee::GroupMember {
            member_id: f.leader,
        }]))
        .then_expect_error(CaseError::SessionAlreadyHeld(f.session));
}

// ---- deadline ----

#[test]
fn extend_deadline_needs_every_partys_consent() {
    let f = fixture();
    let cmd = |parties: Vec<PartyId>, due: &str| {
        CaseCommand::ExtendDeadline(ExtendDeadline {
            new_due: t(due),
            reason: "需等待造价评审结果".into(),
            consenting_parties: parties,
            extended_at: None,
        })
    };
    framework()
        .given(vec![opened(), accepted()])
        .when(cmd(
            vec![f.respondent, f.complainant],
            "2022-06-01T00:00:00Z",
        ))
        .then_expect_events(vec![CaseEvent::DeadlineExtended {
            new_due: t("2022-06-01T00:00:00Z"),
            reason: "需等待造价评审结果".into(),
            consenting_parties: vec![f.complainant, f.respondent],
            extended_at: now(),
        }]);
    framework()
        .given(vec![opened(), accepted()])
        .when(cmd(vec![f.complainant], "2022-06-01T00:00:00Z"))
        .then_expect_error(CaseError::ConsentMissing(f.respondent));
    framework()
        .given(vec![opened(), accepted()])
        .when(cmd(
            vec![f.complainant, f.respondent],
            "2022-04-30T00:00:00Z",
        ))
        .then_expect_error(CaseError::DeadlineNotLater);
    framework()
        .given(vec![opened()])
        .when(cmd(
            vec![f.complainant, f.respondent],
            "2022-06-01T00:00:00Z",
        ))
        .then_expect_error(CaseError::WrongStatus {
            action: "extend the deadline of",
            status: CaseStatus::Reported,
        });
}

// ---- agreement, failure ----

fn agree(at: &str) -> CaseCommand {
    CaseCommand::ReachAgreement(ReachAgreement {
        session_id: fixture().session,
        terms: "分期缴纳".into(),
        agreed_at: Some(t(at)),
        follow_up_due: t("2022-04-20T03:00:00Z"),
        details: Default::default(),
    })
}

#[test]
fn agreement_needs_a_held_session() {
    framework()
        .given(vec![opened(), accepted(), scheduled(), held()])
        .when(agree("2022-04-05T03:00:00Z"))
        .then_expect_events(vec![agreed()]);
    framework()
        .given(vec![opened(), accepted(), scheduled()])
        .when(agree("2022-04-05T03:00:00Z"))
        .then_expect_error(CaseError::NoHeldSession);
    framework()
        .given(vec![opened(), accepted()])
        .when(agree("2022-04-05T03:00:00Z"))
        .then_expect_error(CaseError::WrongStatus {
            action: "reach an agreement in",
            status: CaseStatus::Accepted,
        });
    framework()
        .given(vec![opened(), accepted(), scheduled(), held(), agreed()])
        .when(agree("2022-04-05T03:00:00Z"))
        .then_expect_error(CaseError::AlreadyAgreed);
    framework()
        .given(vec![opened(), accepted(), scheduled(), held()])
        .when(agree("2022-04-04T03:00:00Z"))
        .then_expect_error(CaseError::TimeOrder {
            field: "agreed_at",
            earlier: "held_at",
        });
}

#[test]
fn mediation_failure() {
    let cmd = || {
        CaseCommand::FailMediation(FailMediation {
            reason: "双方分歧较大".into(),
            next_route: Route::JudicialOffice,
            failed_at: None,
        })
    };
    framework()
        .given(vec![opened(), accepted(), scheduled(), held()])
        .when(cmd())
        .then_expect_events(vec![CaseEvent::MediationFailed {
            reason: "双方分歧较大".into(),
            next_route: Route::JudicialOffice,
            failed_at: now(),
        }]);
    framework()
        .given(vec![opened(), accepted(), scheduled()])
        .when(cmd())
        .then_expect_error(CaseError::NoHeldSession);
}

#[test]
fn escalation() {
    let cmd = || {
        CaseCommand::Escalate(Escalate {
            route: Route::Police,
            reason: "多次阻挡施工".into(),
            escalated_at: None,
        })
    };
    framework()
        .given(vec![opened(), accepted()])
        .when(cmd())
        .then_expect_events(vec![CaseEvent::CaseEscalated {
            route: Route::Police,
            reason: "多次阻挡施工".into(),
            escalated_at: now(),
        }]);
    framework()
        .given(vec![opened()])
        .when(cmd())
        .then_expect_error(CaseError::WrongStatus {
            action: "escalate",
            status: CaseStatus::Reported,
        });
}

// ---- incidents, police, work ----

#[test]
fn incidents_police_and_resumption() {
    let f = fixture();
    framework()
        .given(vec![opened()])
        .when(CaseCommand::RecordIncident(RecordIncident {
            incident: incident_input(90),
        }))
        .then_expect_events(vec![incident_event(90)]);
    framework()
        .given(vec![opened(), incident_event(90)])
        .when(CaseCommand::RecordIncident(RecordIncident {
            incident: incident_input(90),
        }))
        .then_expect_error(CaseError::IncidentExists(f.incident));
    framework()
        .given(vec![opened()])
        .when(CaseCommand::RecordIncident(RecordIncident {
            incident: incident_input(MAX_WORK_STOPPED_MINUTES + 1),
        }))
        .then_expect_error(CaseError::TooManyMinutes {
            max: MAX_WORK_STOPPED_MINUTES,
        });

    framework()
        .given(vec![opened(), incident_event(90)])
        .when(CaseCommand::RecordPoliceIntervention(
            RecordPoliceIntervention {
                incident_id: Some(f.incident),
                police_unit: "原州区公安分局南关派出所".into(),
                intervened_at: Some(t("2022-04-03T01:30:00Z")),
                outcome: "现场劝离".into(),
            },
        ))
        .then_expect_events(vec![CaseEvent::PoliceInterventionRecorded {
            incident_id: Some(f.incident),
            police_unit: "原州区公安分局南关派出所".into(),
            intervened_at: t("2022-04-03T01:30:00Z"),
            outcome: "现场劝离".into(),
        }]);
    let police = |incident_id| {
        CaseCommand::RecordPoliceIntervention(RecordPoliceIntervention {
            incident_id,
            police_unit: "派出所".into(),
            intervened_at: None,
            outcome: "x".into(),
        })
    };
    framework()
        .given(vec![opened(), accepted()])
        .when(police(Some(f.incident)))
        .then_expect_error(CaseError::IncidentNotFound(f.incident));
    // No police on an objection that was not accepted and had no incident.
    framework()
        .given(vec![opened()])
        .when(police(None))
        .then_expect_error(CaseError::WrongStatus {
            action: "record a police intervention on",
            status: CaseStatus::Reported,
        });

    let resume = |at: &str| {
        CaseCommand::ResumeWork(ResumeWork {
            incident_id: f.incident,
            resumed_at: Some(t(at)),
        })
    };
    framework()
        .given(vec![opened(), incident_event(90)])
        .when(resume("2022-04-03T03:00:00Z"))
        .then_expect_events(vec![CaseEvent::WorkResumed {
            incident_id: f.incident,
            resumed_at: t("2022-04-03T03:00:00Z"),
        }]);
    framework()
        .given(vec![opened(), incident_event(90)])
        .when(resume("2022-04-02T03:00:00Z"))
        .then_expect_error(CaseError::TimeOrder {
            field: "resumed_at",
            earlier: "the incident",
        });
    framework()
        .given(vec![opened(), incident_event(0)])
        .when(resume("2022-04-03T03:00:00Z"))
        .then_expect_error(CaseError::WorkNotStopped(f.incident));
    framework()
        .given(vec![
            opened(),
            incident_event(90),
            CaseEvent::WorkResumed {
                incident_id: f.incident,
                resumed_at: t("2022-04-03T03:00:00Z"),
            },
        ])
        .when(resume("2022-04-03T04:00:00Z"))
        .then_expect_error(CaseError::WorkAlreadyResumed(f.incident));
}

// ---- follow-up ----

#[test]
fn follow_up_needs_agreement() {
    let cmd = || {
        CaseCommand::RecordFollowUp(RecordFollowUp {
            visited_at: None,
            satisfaction: Satisfaction::Satisfied,
            notes: Some("已按协议施工".into()),
        })
    };
    framework()
        .given(vec![opened(), accepted(), scheduled(), held(), agreed()])
        .when(cmd())
        .then_expect_events(vec![CaseEvent::FollowUpVisitRecorded {
            visited_at: now(),
            satisfaction: Satisfaction::Satisfied,
            notes: Some("已按协议施工".into()),
        }]);
    framework()
        .given(vec![opened(), accepted(), scheduled(), held()])
        .when(cmd())
        .then_expect_error(CaseError::AgreementRequired);
}

// ---- supervision ----

#[test]
fn supervision_orders() {
    let f = fixture();
    let issue = CaseCommand::IssueSupervisionOrder(IssueSupervisionOrder {
        order_id: f.order,
        office: "区委督查室".into(),
        instructions: "请于5日内报告进展".into(),
        respond_by: t("2022-05-06T02:00:00Z"),
    });
    let issued = CaseEvent::SupervisionOrderIssued {
        order_id: f.order,
        office: "区委督查室".into(),
        instructions: "请于5日内报告进展".into(),
        respond_by: t("2022-05-06T02:00:00Z"),
        issued_at: now(),
    };
    framework()
        .given(vec![opened()])
        .when(issue.clone())
        .then_expect_events(vec![issued.clone()]);
    framework()
        .given(vec![opened(), issued.clone()])
        .when(issue)
        .then_expect_error(CaseError::OrderExists(f.order));

    let answer = || {
        CaseCommand::AnswerSupervisionOrder(AnswerSupervisionOrder {
            order_id: f.order,
            answer: "已召开调解会".into(),
        })
    };
    let answered = CaseEvent::SupervisionOrderAnswered {
        order_id: f.order,
        answer: "已召开调解会".into(),
        answered_at: now(),
    };
    framework()
        .given(vec![opened(), issued.clone()])
        .when(answer())
        .then_expect_events(vec![answered.clone()]);
    framework()
        .given(vec![opened()])
        .when(answer())
        .then_expect_error(CaseError::OrderNotFound(f.order));
    framework()
        .given(vec![opened(), issued.clone(), answered])
        .when(answer())
        .then_expect_error(CaseError::OrderAlreadyAnswered(f.order));

    // An unanswered order blocks closing.
    framework()
        .given(vec![
            opened(),
            accepted(),
            scheduled(),
            held(),
            agreed(),
            issued,
        ])
        .when(CaseCommand::CloseCase(CloseCase {
            outcome: Some(Outcome::ResolvedByAgreement),
            closed_at: None,
            summary: None,
        }))
        .then_expect_error(CaseError::OrderUnanswered(f.order));
}

// ---- notes and corrections ----

#[test]
fn notes_and_corrections() {
    framework()
        .given(vec![opened()])
        .when(CaseCommand::AddNote(AddNote {
            note: "申请人下午再来".into(),
        }))
        .then_expect_events(vec![CaseEvent::NoteAdded {
            note: "申请人下午再来".into(),
        }]);
    let correction = |n| {
        CaseCommand::RecordCorrection(RecordCorrection {
            corrects_sequence: n,
            field: "location".into(),
            corrected_value: "社区党群服务中心".into(),
            reason: "录入错误".into(),
        })
    };
    framework()
        .given(vec![opened(), accepted(), scheduled()])
        .when(correction(3))
        .then_expect_events(vec![CaseEvent::CorrectionRecorded {
            corrects_sequence: 3,
            field: "location".into(),
            corrected_value: "社区党群服务中心".into(),
            reason: "录入错误".into(),
        }]);
    framework()
        .given(vec![opened(), accepted()])
        .when(correction(3))
        .then_expect_error(CaseError::CorrectionTarget(3));
    framework()
        .given(vec![opened()])
        .when(correction(0))
        .then_expect_error(CaseError::CorrectionTarget(0));
}

// ---- withdraw, close, reopen ----

#[test]
fn withdrawal() {
    let cmd = || {
        CaseCommand::Withdraw(Withdraw {
            reason: "已与施工方私下协商".into(),
            withdrawn_at: None,
        })
    };
    framework()
        .given(vec![opened()])
        .when(cmd())
        .then_expect_events(vec![CaseEvent::CaseWithdrawn {
            reason: "已与施工方私下协商".into(),
            withdrawn_at: now(),
        }]);
    let obstruction = match opened() {
        CaseEvent::CaseOpened {
            community,
            group,
            category,
            summary,
            occurred_at,
            channel,
            parties,
            ..
        } => CaseEvent::CaseOpened {
            kind: CaseKind::ConstructionObstruction,
            community,
            group,
            category,
            summary,
            occurred_at,
            channel,
            parties,
        },
        _ => unreachable!(),
    };
    framework()
        .given(vec![obstruction])
        .when(cmd())
        .then_expect_error(CaseError::WithdrawalOnlyForObjections);
}

#[test]
fn closing_needs_a_fitting_outcome() {
    let close = |o: Option<Outcome>| {
        CaseCommand::CloseCase(CloseCase {
            outcome: o,
            closed_at: Some(t("2022-04-21T01:00:00Z")),
            summary: None,
        })
    };
    let history = vec![opened(), accepted(), scheduled(), held(), agreed()];
    framework()
        .given(history.clone())
        .when(close(Some(Outcome::ResolvedByAgreement)))
        .then_expect_events(vec![closed()]);
    framework()
        .given(history.clone())
        .when(close(None))
        .then_expect_error(CaseError::OutcomeRequired);
    framework()
        .given(vec![opened(), accepted()])
        .when(close(Some(Outcome::ResolvedByAgreement)))
        .then_expect_error(CaseError::OutcomeNotPossible("resolved_by_agreement"));
    framework()
        .given(vec![opened(), accepted()])
        .when(close(Some(Outcome::Referred)))
        .then_expect_error(CaseError::OutcomeNotPossible("referred"));
    framework()
        .given(vec![opened(), accepted()])
        .when(close(Some(Outcome::NotAdmissible)))
        .then_expect_error(CaseError::OutcomeNotPossible("not_admissible"));
    framework()
        .given(vec![opened()])
        .when(close(Some(Outcome::NotAdmissible)))
        .then_expect_events(vec![CaseEvent::CaseClosed {
            outcome: Outcome::NotAdmissible,
            closed_at: t("2022-04-21T01:00:00Z"),
            summary: None,
        }]);
    framework()
        .given(vec![opened(), accepted(), incident_event(60)])
        .when(close(Some(Outcome::ResolvedOtherwise)))
        .then_expect_error(CaseError::WorkStillStopped(fixture().incident));
}

#[test]
fn nothing_happens_to_a_closed_case_but_reopening() {
    let f = fixture();
    let history = vec![
        opened(),
        accepted(),
        scheduled(),
        held(),
        agreed(),
        closed(),
    ];
    let commands = vec![
        CaseCommand::AcceptCase(AcceptCase { accepted_at: None }),
        CaseCommand::AddNote(AddNote { note: "x".into() }),
        CaseCommand::AddParty(AddParty {
            party: PartyRef {
                party_id: f.obstructor,
                role: PartyRole::Other,
            },
        }),
        CaseCommand::RecordIncident(RecordIncident {
            incident: incident_input(10),
        }),
        CaseCommand::RecordFollowUp(RecordFollowUp {
            visited_at: None,
            satisfaction: Satisfaction::Satisfied,
            notes: None,
        }),
        CaseCommand::CloseCase(CloseCase {
            outcome: Some(Outcome::ResolvedByAgreement),
            closed_at: None,
            summary: None,
        }),
        CaseCommand::Withdraw(Withdraw {
            reason: "x".into(),
            withdrawn_at: None,
        }),
        CaseCommand::RecordCorrection(RecordCorrection {
            corrects_sequence: 1,
            field: "f".into(),
            corrected_value: "v".into(),
            reason: "r".into(),
        }),
    ];
    for c in commands {
        framework()
            .given(history.clone())
            .when(c)
            .then_expect_error(CaseError::Closed);
    }
    let reopen = CaseCommand::ReopenCase(ReopenCase {
        reason: "协议未履行".into(),
        reopened_at: None,
    });
    framework()
        .given(history)
        .when(reopen.clone())
        .then_expect_events(vec![CaseEvent::CaseReopened {
            reason: "协议未履行".into(),
            reopened_at: now(),
        }]);
    framework()
        .given(vec![opened()])
        .when(reopen.clone())
        .then_expect_error(CaseError::NotClosed);
    framework()
        .given(vec![
            opened(),
            CaseEvent::CaseWithdrawn {
                reason: "x".into(),
                withdrawn_at: now(),
            },
        ])
        .when(CaseCommand::AddNote(AddNote { note: "x".into() }))
        .then_expect_error(CaseError::Withdrawn);
}

#[test]
fn a_reopened_case_needs_a_new_agreement() {
    let mut history = vec![
        opened(),
        accepted(),
        scheduled(),
        held(),
        agreed(),
        closed(),
    ];
    history.push(CaseEvent::CaseReopened {
        reason: "协议未履行".into(),
        reopened_at: now(),
    });
    let mut case = Case::default();
    for e in history.clone() {
        cqrs_es::Aggregate::apply(&mut case, e);
    }
    assert_eq!(case.status, CaseStatus::Accepted);
    assert!(case.agreement.is_none());
    framework()
        .given(history)
        .when(CaseCommand::CloseCase(CloseCase {
            outcome: Some(Outcome::ResolvedByAgreement),
            closed_at: None,
            summary: None,
        }))
        .then_expect_error(CaseError::OutcomeNotPossible("resolved_by_agreement"));
}

/// One error of each kind; the match is exhaustive, so a new variant must be added here.
fn error_of(kind: CaseErrorKind) -> CaseError {
    use CaseErrorKind as K;
    let community = CommunityId::parse("xiguan-beijie").unwrap();
    let category = CategoryCode::parse("work.pipeline").unwrap();
    let id = uuid::Uuid::from_u128(7);
    match kind {
        K::NotFound => CaseError::NotFound,
        K::AlreadyOpened => CaseError::AlreadyOpened,
        K::Closed => CaseError::Closed,
        K::Withdrawn => CaseError::Withdrawn,
        K::WrongStatus => CaseError::WrongStatus {
            action: "accept",
            status: CaseStatus::Closed,
        },
        K::UnknownCommunity => CaseError::UnknownCommunity(community),
        K::NoGroupForCommunity => CaseError::NoGroupForCommunity(community),
        K::UnknownCategory => CaseError::UnknownCategory(category),
        K::NotAWorkItem => CaseError::NotAWorkItem(category),
        K::InvalidText => CaseError::InvalidText(crate::text::TextProblem {
            field: "summary",
            kind: crate::text::TextProblemKind::TooLong { max: 10 },
        }),
        K::InFuture => CaseError::InFuture("occurred_at"),
        K::TooEarly => CaseError::TooEarly("occurred_at"),
        K::TooFarAhead => CaseError::TooFarAhead("scheduled_for"),
        K::TimeOrder => CaseError::TimeOrder {
            field: "resumed_at",
            earlier: "the incident",
        },
        K::NoComplainant => CaseError::NoComplainant,
        K::DuplicateParty => CaseError::DuplicateParty(PartyId(id)),
        K::UnknownParty => CaseError::UnknownParty(PartyId(id)),
        K::ObstructionNeedsIncident => CaseError::ObstructionNeedsIncident,
        K::NotGroupMember => CaseError::NotGroupMember(MemberId(id)),
        K::SessionExists => CaseError::SessionExists(SessionId(id)),
        K::SessionNotFound => CaseError::SessionNotFound(SessionId(id)),
        K::SessionAlreadyHeld => CaseError::SessionAlreadyHeld(SessionId(id)),
        K::SessionNotHeld => CaseError::SessionNotHeld(SessionId(id)),
        K::NoGroupMemberPresent => CaseError::NoGroupMemberPresent,
        K::NoHeldSession => CaseError::NoHeldSession,
        K::ConsentMissing => CaseError::ConsentMissing(PartyId(id)),
        K::DeadlineNotLater => CaseError::DeadlineNotLater,
        K::AlreadyAgreed => CaseError::AlreadyAgreed,
        K::AgreementRequired => CaseError::AgreementRequired,
        K::IncidentExists => CaseError::IncidentExists(IncidentId(id)),
        K::IncidentNotFound => CaseError::IncidentNotFound(IncidentId(id)),
        K::WorkNotStopped => CaseError::WorkNotStopped(IncidentId(id)),
        K::WorkAlreadyResumed => CaseError::WorkAlreadyResumed(IncidentId(id)),
        K::TooManyMinutes => CaseError::TooManyMinutes {
            max: MAX_WORK_STOPPED_MINUTES,
        },
        K::WorkStillStopped => CaseError::WorkStillStopped(IncidentId(id)),
        K::OrderExists => CaseError::OrderExists(OrderId(id)),
        K::OrderNotFound => CaseError::OrderNotFound(OrderId(id)),
        K::OrderAlreadyAnswered => CaseError::OrderAlreadyAnswered(OrderId(id)),
        K::OrderUnanswered => CaseError::OrderUnanswered(OrderId(id)),
        K::OutcomeRequired => CaseError::OutcomeRequired,
        K::OutcomeNotPossible => CaseError::OutcomeNotPossible("referred"),
        K::CorrectionTarget => CaseError::CorrectionTarget(12),
        K::WithdrawalOnlyForObjections => CaseError::WithdrawalOnlyForObjections,
        K::NotClosed => CaseError::NotClosed,
        K::Unavailable => CaseError::Unavailable("connection refused".into()),
        K::AlreadyInGroup => CaseError::AlreadyInGroup,
        K::CommunityNotInGroup => {
            CaseError::CommunityNotInGroup(crate::ids::GroupId(uuid::Uuid::from_u128(8)))
        }
        K::AlreadyPerformed => CaseError::AlreadyPerformed,
        K::RemainingRequired => CaseError::RemainingRequired,
        K::NotShortOfPerformance => CaseError::NotShortOfPerformance,
        K::AlreadyReferred => CaseError::AlreadyReferred,
        K::RightToSueNotTold => CaseError::RightToSueNotTold,
        K::ConfirmationWindowClosed => CaseError::ConfirmationWindowClosed { days: 30 },
        K::ConfirmationPending => CaseError::ConfirmationPending,
        K::AlreadyConfirmed => CaseError::AlreadyConfirmed,
        K::NoConfirmationApplication => CaseError::NoConfirmationApplication,
        K::ReasonRequired => CaseError::ReasonRequired,
        K::NoReplyAwaited => CaseError::NoReplyAwaited,
        K::AgreementNotPerformed => CaseError::AgreementNotPerformed,
        K::AttachmentTarget => CaseError::AttachmentTarget(9),
        K::InvalidAttachment => CaseError::InvalidAttachment,
    }
}

fn is_chinese(s: &str) -> bool {
    s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

#[test]
fn every_error_has_a_code_and_chinese_message() {
    use strum::IntoEnumIterator;
    let mut codes = std::collections::HashSet::new();
    for kind in CaseErrorKind::iter() {
        let e = error_of(kind);
        assert_eq!(CaseErrorKind::from(&e), kind);
        assert!(!e.code().is_empty(), "{kind:?}");
        assert!(codes.insert(e.code()), "{kind:?}: code {} twice", e.code());
        let zh = e.message_zh();
        assert!(is_chinese(&zh), "{kind:?}: {zh}");
        assert!(!zh.contains('_'), "{kind:?}: untranslated field in {zh}");
        assert!(
            !zh.contains("connection"),
            "{kind:?}: internal detail in {zh}"
        );
    }
}

/// Every name the aggregate passes into an error (a field, a time it must follow, an action,
/// an outcome) has a Chinese translation: an untranslated one would show English or a
/// field name to the mediator. The names are the string literals of `aggregate.rs`.
#[test]
fn every_name_the_aggregate_passes_into_an_error_is_translated() {
    use super::errors::{action_zh, field_zh, outcome_zh, time_field_zh};
    let source = include_str!("aggregate.rs");
    let mut untranslated = vec![];
    for (i, part) in source.split('"').enumerate() {
        // Odd parts are inside quotes; keep lower-case names (skip format strings, paths).
        let name = part;
        // Attribute values, not names.
        let attribute = matches!(name, "openapi" | "snake_case");
        if i % 2 == 0
            || attribute
            || name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.' || c == ' ')
        {
            continue;
        }
        let translated = [
            field_zh(name),
            time_field_zh(name),
            action_zh(name),
            outcome_zh(name),
        ]
        .iter()
        .any(|zh| is_chinese(zh) && *zh != "执行该操作");
        if !translated {
            untranslated.push(name.to_string());
        }
    }
    assert!(untranslated.is_empty(), "no Chinese for: {untranslated:?}");
}

#[test]
fn nested_parts_of_commands_refuse_unknown_fields() {
    let p =
        r#"{"party_id":"00000000-0000-0000-0000-00000000000a","role":"complainant","name":"x"}"#;
    assert!(serde_json::from_str::<PartyRef>(p).is_err());
    let a = r#"{"kind":"party","party_id":"00000000-0000-0000-0000-00000000000a","name":"x"}"#;
    assert!(serde_json::from_str::<Attendee>(a).is_err());
    let a = r#"{"kind":"other","role":"律师","phone":"1"}"#;
    assert!(serde_json::from_str::<Attendee>(a).is_err());
    let a = r#"{"kind":"other","role":"律师"}"#;
    assert!(serde_json::from_str::<Attendee>(a).is_ok());
}

#[test]
fn every_step_names_its_command() {
    use strum::IntoEnumIterator;
    // The step's command name is the name of a command that takes that step.
    let names: std::collections::HashSet<&str> =
        CaseStep::iter().map(|s| s.command_name()).collect();
    assert_eq!(
        names.len(),
        CaseStep::iter().count(),
        "two steps share a command"
    );
    for s in CaseStep::iter() {
        assert_eq!(CaseStep::parse(s.name()), Some(s));
    }
}

#[test]
fn times_must_tell_a_possible_story() {
    let f = fixture();
    // A session is not planned before the case happened, nor before it was accepted.
    let schedule = |at: &str| {
        CaseCommand::ScheduleSession(ScheduleSession {
            session_id: f.session,
            scheduled_for: t(at),
            location: "社区会议室".into(),
        })
    };
    framework()
        .given(vec![opened(), accepted()])
        .when(schedule("2022-03-31T01:00:00Z"))
        .then_expect_error(CaseError::TimeOrder {
            field: "scheduled_for",
            earlier: "the case",
        });
    // Work stopped for 90 minutes at 01:00 does not resume at 01:00 or 02:00, but at 02:30.
    let resume = |at: &str| {
        CaseCommand::ResumeWork(ResumeWork {
            incident_id: f.incident,
            resumed_at: Some(t(at)),
        })
    };
    for early in ["2022-04-03T01:00:00Z", "2022-04-03T02:00:00Z"] {
        framework()
            .given(vec![opened(), incident_event(90)])
            .when(resume(early))
            .then_expect_error(CaseError::TimeOrder {
                field: "resumed_at",
                earlier: "the end of the stoppage",
            });
    }
    framework()
        .given(vec![opened(), incident_event(90)])
        .when(resume("2022-04-03T02:30:00Z"))
        .then_expect_events(vec![CaseEvent::WorkResumed {
            incident_id: f.incident,
            resumed_at: t("2022-04-03T02:30:00Z"),
        }]);
    // Unless the stoppage hours are corrected: the incident is the case's 2nd record.
    let corrected = CaseEvent::CorrectionRecorded {
        corrects_sequence: 2,
        field: "work_stopped_minutes".into(),
        corrected_value: "0.5小时".into(),
        reason: "现场核实停工半小时".into(),
    };
    framework()
        .given(vec![opened(), incident_event(90), corrected])
        .when(resume("2022-04-03T02:00:00Z"))
        .then_expect_events(vec![CaseEvent::WorkResumed {
            incident_id: f.incident,
            resumed_at: t("2022-04-03T02:00:00Z"),
        }]);
}

// ---------------------------------------------------------------------------------------
// After the agreement: performance, urging, referral, judicial confirmation; and the
// receiving level's reply to an escalation.

fn performance(p: Performance, remaining: Option<&str>) -> CaseCommand {
    CaseCommand::RecordPerformance(RecordPerformance {
        performance: p,
        remaining: remaining.map(str::to_string),
        reported_by: "申请人本人".into(),
        reported_at: Some(t("2022-04-20T01:00:00Z")),
    })
}

fn not_performed() -> CaseEvent {
    CaseEvent::PerformanceRecorded {
        performance: Performance::NotPerformed,
        remaining: None,
        reported_by: "申请人本人".into(),
        reported_at: t("2022-04-20T01:00:00Z"),
    }
}

fn urged() -> CaseEvent {
    CaseEvent::PerformanceUrged {
        method: "电话督促施工单位".into(),
        performance_due: t("2022-05-10T01:00:00Z"),
        urged_at: t("2022-04-21T01:00:00Z"),
    }
}

fn agreed_case() -> Vec<CaseEvent> {
    vec![opened(), accepted(), scheduled(), held(), agreed()]
}

#[test]
fn performance_is_recorded_in_full_in_part_or_not_at_all() {
    framework()
        .given(agreed_case())
        .when(performance(
            Performance::PartlyPerformed,
            Some("  尚余二期费用 "),
        ))
        .then_expect_events(vec![CaseEvent::PerformanceRecorded {
            performance: Performance::PartlyPerformed,
            remaining: Some("尚余二期费用".into()),
            reported_by: "申请人本人".into(),
            reported_at: t("2022-04-20T01:00:00Z"),
        }]);
    // In part, without what remains: refused.
    framework()
        .given(agreed_case())
        .when(performance(Performance::PartlyPerformed, None))
        .then_expect_error(CaseError::RemainingRequired);
    // Before the agreement: refused.
    framework()
        .given(agreed_case())
        .when(CaseCommand::RecordPerformance(RecordPerformance {
            performance: Performance::Performed,
            remaining: None,
            reported_by: "调解员回访核实".into(),
            reported_at: Some(t("2022-04-05T02:00:00Z")),
        }))
        .then_expect_error(CaseError::TimeOrder {
            field: "reported_at",
            earlier: "the agreement",
        });
    // Without an agreement: refused.
    framework()
        .given(vec![opened(), accepted(), scheduled(), held()])
        .when(performance(Performance::Performed, None))
        .then_expect_error(CaseError::AgreementRequired);
    // After it was carried out in full: refused.
    let mut done = agreed_case();
    done.push(CaseEvent::PerformanceRecorded {
        performance: Performance::Performed,
        remaining: None,
        reported_by: "x".into(),
        reported_at: t("2022-04-20T01:00:00Z"),
    });
    framework()
        .given(done)
        .when(performance(Performance::NotPerformed, None))
        .then_expect_error(CaseError::AlreadyPerformed);
}

#[test]
fn non_performance_leads_to_urging_and_then_referral() {
    let mut history = agreed_case();
    // Urging needs a report that it was not carried out in full.
    framework()
        .given(history.clone())
        .when(CaseCommand::UrgePerformance(UrgePerformance {
            method: "电话督促".into(),
            performance_due: t("2022-05-10T01:00:00Z"),
            urged_at: None,
        }))
        .then_expect_error(CaseError::NotShortOfPerformance);
    history.push(not_performed());
    framework()
        .given(history.clone())
        .when(CaseCommand::UrgePerformance(UrgePerformance {
            method: "电话督促施工单位".into(),
            performance_due: t("2022-05-10T01:00:00Z"),
            urged_at: Some(t("2022-04-21T01:00:00Z")),
        }))
        .then_expect_events(vec![urged()]);
    // The new due date comes after the urging.
    framework()
        .given(history.clone())
        .when(CaseCommand::UrgePerformance(UrgePerformance {
            method: "电话督促".into(),
            performance_due: t("2022-04-21T00:00:00Z"),
            urged_at: Some(t("2022-04-21T01:00:00Z")),
        }))
        .then_expect_error(CaseError::TimeOrder {
            field: "performance_due",
            earlier: "urged_at",
        });
    // Urged before the report it answers: refused.
    framework()
        .given(history.clone())
        .when(CaseCommand::UrgePerformance(UrgePerformance {
            method: "电话督促".into(),
            performance_due: t("2022-05-10T01:00:00Z"),
            urged_at: Some(t("2022-04-19T01:00:00Z")),
        }))
        .then_expect_error(CaseError::TimeOrder {
            field: "urged_at",
            earlier: "the performance report",
        });
    history.push(urged());
    let referral = |told: bool| {
        CaseCommand::ReferToCourt(ReferToCourt {
            court: "固原市原州区人民法院".into(),
            right_to_sue_told: told,
            reason: "督促后仍未履行".into(),
            referred_at: None,
        })
    };
    framework()
        .given(history.clone())
        .when(referral(false))
        .then_expect_error(CaseError::RightToSueNotTold);
    framework()
        .given(history.clone())
        .when(referral(true))
        .then_expect_events(vec![CaseEvent::ReferredToCourt {
            court: "固原市原州区人民法院".into(),
            right_to_sue_told: true,
            reason: "督促后仍未履行".into(),
            referred_at: now(),
        }]);
    history.push(CaseEvent::ReferredToCourt {
        court: "x".into(),
        right_to_sue_told: true,
        reason: "x".into(),
        referred_at: now(),
    });
    framework()
        .given(history.clone())
        .when(referral(true))
        .then_expect_error(CaseError::AlreadyReferred);
    // Closing: not "resolved by agreement", but "referred".
    let close = |o| {
        CaseCommand::CloseCase(CloseCase {
            outcome: Some(o),
            closed_at: None,
            summary: None,
        })
    };
    framework()
        .given(history.clone())
        .when(close(Outcome::ResolvedByAgreement))
        .then_expect_error(CaseError::AgreementNotPerformed);
    framework()
        .given(history)
        .when(close(Outcome::Referred))
        .then_expect_events(vec![CaseEvent::CaseClosed {
            outcome: Outcome::Referred,
            closed_at: now(),
            summary: None,
        }]);
}

#[test]
fn an_agreement_not_carried_out_cannot_close_as_resolved() {
    let mut history = agreed_case();
    history.push(not_performed());
    framework()
        .given(history.clone())
        .when(CaseCommand::CloseCase(CloseCase {
            outcome: Some(Outcome::ResolvedByAgreement),
            closed_at: None,
            summary: None,
        }))
        .then_expect_error(CaseError::AgreementNotPerformed);
    // Carried out after all: it can.
    history.push(CaseEvent::PerformanceRecorded {
        performance: Performance::Performed,
        remaining: None,
        reported_by: "x".into(),
        reported_at: t("2022-04-25T01:00:00Z"),
    });
    framework()
        .given(history)
        .when(CaseCommand::CloseCase(CloseCase {
            outcome: Some(Outcome::ResolvedByAgreement),
            closed_at: None,
            summary: None,
        }))
        .then_expect_events(vec![CaseEvent::CaseClosed {
            outcome: Outcome::ResolvedByAgreement,
            closed_at: now(),
            summary: None,
        }]);
}

#[test]
fn judicial_confirmation_is_applied_for_within_thirty_days_and_then_decided() {
    let apply = |at: &str| {
        CaseCommand::ApplyForConfirmation(ApplyForConfirmation {
            court: "固原市原州区人民法院".into(),
            applied_at: Some(t(at)),
        })
    };
    framework()
        .given(agreed_case())
        .when(apply("2022-04-30T01:00:00Z"))
        .then_expect_events(vec![CaseEvent::JudicialConfirmationApplied {
            court: "固原市原州区人民法院".into(),
            applied_at: t("2022-04-30T01:00:00Z"),
        }]);
    // Agreed on 04-05 03:00Z: the window ends on 05-05 03:00Z.
    let mut late = vec![opened(), accepted(), scheduled(), held()];
    late.push(CaseEvent::AgreementReached {
        session_id: fixture().session,
        terms: "x".into(),
        agreed_at: t("2022-03-30T01:00:00Z"),
        follow_up_due: t("2022-04-20T03:00:00Z"),
        facts: String::new(),
        responsibilities: String::new(),
        obligations: vec![],
        performance_manner: String::new(),
        performance_place: String::new(),
        performance_due: None,
        copies: None,
    });
    framework()
        .given(late)
        .when(apply("2022-04-30T01:00:00Z"))
        .then_expect_error(CaseError::ConfirmationWindowClosed { days: 30 });
    framework()
        .given(agreed_case())
        .when(apply("2022-04-05T02:00:00Z"))
        .then_expect_error(CaseError::TimeOrder {
            field: "applied_at",
            earlier: "the agreement",
        });
    let mut applied = agreed_case();
    applied.push(CaseEvent::JudicialConfirmationApplied {
        court: "x".into(),
        applied_at: t("2022-04-20T01:00:00Z"),
    });
    framework()
        .given(applied.clone())
        .when(apply("2022-04-21T01:00:00Z"))
        .then_expect_error(CaseError::ConfirmationPending);
    let decide = |confirmed: bool, reason: Option<&str>| {
        CaseCommand::RecordConfirmationDecision(RecordConfirmationDecision {
            confirmed,
            reason: reason.map(str::to_string),
            decided_at: None,
        })
    };
    framework()
        .given(applied.clone())
        .when(decide(false, None))
        .then_expect_error(CaseError::ReasonRequired);
    framework()
        .given(applied.clone())
        .when(decide(false, Some("协议内容违反法律强制性规定")))
        .then_expect_events(vec![CaseEvent::JudicialConfirmationDecided {
            confirmed: false,
            reason: Some("协议内容违反法律强制性规定".into()),
            decided_at: now(),
        }]);
    framework()
        .given(agreed_case())
        .when(decide(true, None))
        .then_expect_error(CaseError::NoConfirmationApplication);
    applied.push(CaseEvent::JudicialConfirmationDecided {
        confirmed: true,
        reason: None,
        decided_at: t("2022-04-25T01:00:00Z"),
    });
    framework()
        .given(applied)
        .when(apply("2022-04-26T01:00:00Z"))
        .then_expect_error(CaseError::AlreadyConfirmed);
}

#[test]
fn the_receiving_level_replies_to_an_escalation_once_and_after_it() {
    let escalated = CaseEvent::CaseEscalated {
        route: Route::LeadershipGroup,
        reason: "涉及规划调整".into(),
        escalated_at: t("2022-04-10T01:00:00Z"),
    };
    let reply = |at: &str| {
        CaseCommand::RecordEscalationReply(RecordEscalationReply {
            reply: "领导小组同意调整管线走向".into(),
            replied_at: Some(t(at)),
        })
    };
    let history = vec![opened(), accepted(), escalated.clone()];
    framework()
        .given(history.clone())
        .when(reply("2022-04-12T01:00:00Z"))
        .then_expect_events(vec![CaseEvent::EscalationReplied {
            route: Route::LeadershipGroup,
            reply: "领导小组同意调整管线走向".into(),
            replied_at: t("2022-04-12T01:00:00Z"),
        }]);
    framework()
        .given(history.clone())
        .when(reply("2022-04-09T01:00:00Z"))
        .then_expect_error(CaseError::TimeOrder {
            field: "replied_at",
            earlier: "the escalation",
        });
    framework()
        .given(vec![opened(), accepted()])
        .when(reply("2022-04-12T01:00:00Z"))
        .then_expect_error(CaseError::NoReplyAwaited);
    let mut replied = history;
    replied.push(CaseEvent::EscalationReplied {
        route: Route::LeadershipGroup,
        reply: "x".into(),
        replied_at: t("2022-04-12T01:00:00Z"),
    });
    framework()
        .given(replied)
        .when(reply("2022-04-13T01:00:00Z"))
        .then_expect_error(CaseError::NoReplyAwaited);
    // A failed mediation's next route awaits a reply too.
    framework()
        .given(vec![
            opened(),
            accepted(),
            scheduled(),
            held(),
            CaseEvent::MediationFailed {
                reason: "x".into(),
                next_route: Route::JudicialOffice,
                failed_at: t("2022-04-06T01:00:00Z"),
            },
        ])
        .when(reply("2022-04-12T01:00:00Z"))
        .then_expect_events(vec![CaseEvent::EscalationReplied {
            route: Route::JudicialOffice,
            reply: "领导小组同意调整管线走向".into(),
            replied_at: t("2022-04-12T01:00:00Z"),
        }]);
}
