//! The stored form of an event: its payload and metadata as JSON text, and how that text
//! is read back into a domain event.
//!
//! The projectors read every event through [`decode_body`] and [`decode_metadata`]. The
//! write path runs each event it is about to append through [`check_stored_form`], which
//! uses the same two functions on the exact text that will be stored, and refuses the
//! command when the event would not come back as it went in. So nothing the write side
//! accepts can stop the read side: the log is immutable, and an event that cannot be read
//! back would stop every projector at its position for good.

use std::collections::HashMap;

use cqrs_es::persist::{EventUpcaster, SerializedEvent};
use serde_json::Value;
use tiaojie_events::case::{CaseEvent, CASE_AGGREGATE_TYPE};
use tiaojie_events::group::{GroupEvent, GROUP_AGGREGATE_TYPE};
use tiaojie_events::metadata::RECORDED_AT;
use tiaojie_events::Timestamp;

use crate::db::Backend;

/// A decoded event.
#[derive(Debug, Clone)]
pub enum Body {
    Case(CaseEvent),
    Group(GroupEvent),
    /// An aggregate this release's read models do not follow.
    Other,
    /// An event of a known aggregate that this release cannot read (written by a newer
    /// release, or damaged). Each read model decides: the audit trail shows it as such,
    /// the others stop at it until an upcaster in a new release can read it.
    Unreadable(String),
}

/// The upcasters of both aggregates, applied before decoding.
pub struct Upcasters(Vec<Box<dyn EventUpcaster>>);

impl Default for Upcasters {
    fn default() -> Self {
        let mut v = crate::upcast::case_upcasters();
        v.extend(crate::upcast::group_upcasters());
        Self(v)
    }
}

impl Upcasters {
    fn applies(&self, event_type: &str, version: &str) -> bool {
        self.0.iter().any(|u| u.can_upcast(event_type, version))
    }

    fn upcast(&self, mut e: SerializedEvent) -> SerializedEvent {
        for u in &self.0 {
            if u.can_upcast(&e.event_type, &e.event_version) {
                e = u.upcast(e);
            }
        }
        e
    }
}

/// Decodes a stored payload (upcast first when an upcaster applies). An error is the
/// reason it cannot be read.
pub fn decode_body(
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: i64,
    event_type: &str,
    version: &str,
    payload: &str,
    upcasters: &Upcasters,
) -> Result<Body, String> {
    if !matches!(aggregate_type, CASE_AGGREGATE_TYPE | GROUP_AGGREGATE_TYPE) {
        return Ok(Body::Other);
    }
    let typed = |v: Result<Body, serde_json::Error>| v.map_err(|e| format!("{event_type}: {e}"));
    if upcasters.applies(event_type, version) {
        let value: Value =
            serde_json::from_str(payload).map_err(|e| format!("payload is not JSON: {e}"))?;
        let upcast = upcasters.upcast(SerializedEvent::new(
            aggregate_id.to_string(),
            sequence.max(0) as usize,
            aggregate_type.to_string(),
            event_type.to_string(),
            version.to_string(),
            value,
            Value::Null,
        ));
        return typed(match aggregate_type {
            CASE_AGGREGATE_TYPE => serde_json::from_value(upcast.payload).map(Body::Case),
            _ => serde_json::from_value(upcast.payload).map(Body::Group),
        });
    }
    typed(match aggregate_type {
        CASE_AGGREGATE_TYPE => serde_json::from_str(payload).map(Body::Case),
        _ => serde_json::from_str(payload).map(Body::Group),
    })
}

/// Decodes stored metadata: a flat map of strings.
pub fn decode_metadata(text: &str) -> Result<HashMap<String, String>, String> {
    serde_json::from_str(text).map_err(|e| format!("metadata: {e}"))
}

/// Why an event cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{event_type} would not read back as written: {reason}")]
pub struct Unstorable {
    pub event_type: String,
    pub reason: String,
}

/// The text a payload or metadata value is stored as.
pub fn stored_text(v: &Value) -> String {
    // Serialising a `Value` cannot fail: its keys are strings.
    serde_json::to_string(v).unwrap_or_default()
}

/// Checks that an event about to be appended reads back, from the exact text that will be
/// stored and through the projectors' own decoding, as the same event.
pub fn check_stored_form(
    backend: Backend,
    e: &SerializedEvent,
    upcasters: &Upcasters,
) -> Result<(), Unstorable> {
    let refuse = |reason: String| Unstorable {
        event_type: e.event_type.clone(),
        reason,
    };
    let payload = stored_text(&e.payload);
    let metadata = stored_text(&e.metadata);
    if backend == Backend::Postgres && (payload.contains("\\u0000") || metadata.contains("\\u0000"))
    {
        // jsonb cannot hold U+0000; the insert would fail, or worse, differ.
        return Err(refuse("it contains a NUL character".into()));
    }
    let body = decode_body(
        &e.aggregate_type,
        &e.aggregate_id,
        e.sequence as i64,
        &e.event_type,
        &e.event_version,
        &payload,
        upcasters,
    )
    .map_err(refuse)?;
    let again = match &body {
        Body::Case(c) => serde_json::to_value(c),
        Body::Group(g) => serde_json::to_value(g),
        Body::Other | Body::Unreadable(_) => {
            return Err(refuse(format!(
                "aggregate type {:?} is not one this release reads",
                e.aggregate_type
            )))
        }
    }
    .map_err(|x| refuse(x.to_string()))?;
    if again != e.payload {
        return Err(refuse("the payload decodes to a different event".into()));
    }
    let type_name = match &body {
        Body::Case(c) => c.type_name(),
        Body::Group(g) => g.type_name(),
        _ => "",
    };
    if type_name != e.event_type {
        return Err(refuse(format!("stored as {:?}", e.event_type)));
    }
    let map = decode_metadata(&metadata).map_err(refuse)?;
    if serde_json::to_value(&map).ok().as_ref() != Some(&e.metadata) {
        return Err(refuse("the metadata decodes differently".into()));
    }
    match map.get(RECORDED_AT).map(|t| Timestamp::parse(t)) {
        Some(Ok(_)) => Ok(()),
        _ => Err(refuse("the metadata has no readable recorded_at".into())),
    }
}

#[cfg(test)]
mod tests {
    //! Every event variant, with extreme values in every field, either reads back exactly
    //! as it was written or is refused before it is stored.

    use std::collections::HashMap;

    use proptest::prelude::*;
    use tiaojie_events::case::*;
    use tiaojie_events::group::{GroupEvent, Member, OrgRole};
    use tiaojie_events::ids::*;
    use tiaojie_events::metadata::{EventMetadata, Role};

    use super::*;

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[\\u{4e00}-\\u{9fa5}]{0,40}",
            Just(String::new()),
            Just("\0".to_string()),
            Just("a\u{0}b".to_string()),
            Just("\u{202E}\u{202B}مرحبا\u{200F} RTL".to_string()),
            Just("\u{200B}\u{200C}\u{200D}\u{2060}\u{FEFF}".to_string()),
            Just("\"\\/\u{8}\u{c}\n\r\t\u{7f}\u{1b}[0m".to_string()),
            Just("😀👨‍👩‍👧\u{10FFFF}\u{E000}".to_string()),
            Just("王\u{0301}\u{0336}".to_string()),
            Just("字".repeat(64 * 1024 / 3 + 1)),
            Just("x".repeat(64 * 1024)),
        ]
    }

    fn ts() -> impl Strategy<Value = Timestamp> {
        let parsed = |s: &'static str| Just(Timestamp::parse(s).expect("in range"));
        prop_oneof![
            Just(Timestamp::MIN),
            Just(Timestamp::MAX),
            parsed("0001-01-01T00:00:00.000001Z"),
            parsed("1899-12-31T23:59:59.9999999+08:00"),
            parsed("1900-01-01T00:00:00-00:01"),
            parsed("2022-03-15T16:30:00.123456789+05:45"),
            parsed("9999-12-31T23:59:59+23:59"),
            parsed("1970-01-01T00:00:00Z"),
            (Timestamp::MIN.unix_micros()..=Timestamp::MAX.unix_micros())
                .prop_map(|m| Timestamp::from_unix_micros(m).expect("in range")),
        ]
    }

    fn uuid() -> impl Strategy<Value = uuid::Uuid> {
        prop_oneof![
            Just(uuid::Uuid::nil()),
            Just(uuid::Uuid::max()),
            any::<u128>().prop_map(uuid::Uuid::from_u128),
        ]
    }

    fn code() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9][a-z0-9._-]{0,63}",
            Just("jingfeng-yuan".to_string()),
            Just("work.roof".to_string()),
        ]
    }

    fn community() -> impl Strategy<Value = CommunityId> {
        code().prop_map(|c| CommunityId::parse(&c).expect("valid code"))
    }

    fn category() -> impl Strategy<Value = CategoryCode> {
        code().prop_map(|c| CategoryCode::parse(&c).expect("valid code"))
    }

    fn party_role() -> impl Strategy<Value = PartyRole> {
        prop_oneof![
            Just(PartyRole::Complainant),
            Just(PartyRole::Respondent),
            Just(PartyRole::Obstructor),
            Just(PartyRole::Contractor),
            Just(PartyRole::PropertyCompany),
            Just(PartyRole::Utility),
            Just(PartyRole::Other),
        ]
    }

    fn party_ref() -> impl Strategy<Value = PartyRef> {
        (uuid(), party_role()).prop_map(|(u, role)| PartyRef {
            party_id: PartyId(u),
            role,
        })
    }

    fn route() -> impl Strategy<Value = Route> {
        prop_oneof![
            Just(Route::Police),
            Just(Route::JudicialOffice),
            Just(Route::Petition),
            Just(Route::Court),
            Just(Route::LeadershipGroup),
        ]
    }

    fn attendee() -> impl Strategy<Value = Attendee> {
        prop_oneof![
            uuid().prop_map(|u| Attendee::GroupMember {
                member_id: MemberId(u)
            }),
            uuid().prop_map(|u| Attendee::Party {
                party_id: PartyId(u)
            }),
            text().prop_map(|role| Attendee::Other { role }),
        ]
    }

    fn incident() -> impl Strategy<Value = Incident> {
        (
            uuid(),
            ts(),
            text(),
            category(),
            prop::collection::vec(uuid(), 0..3),
            prop_oneof![Just(0u32), Just(u32::MAX), any::<u32>()],
            any::<bool>(),
            text(),
        )
            .prop_map(
                |(id, at, location, work_item, ps, minutes, police, d)| Incident {
                    incident_id: IncidentId(id),
                    occurred_at: at,
                    location,
                    work_item,
                    obstructing_parties: ps.into_iter().map(PartyId).collect(),
                    work_stopped_minutes: minutes,
                    police_called: police,
                    description: d,
                },
            )
    }

    fn case_event() -> impl Strategy<Value = CaseEvent> {
        let kind = prop_oneof![
            Just(CaseKind::ResidentObjection),
            Just(CaseKind::ConstructionObstruction)
        ];
        let channel = prop_oneof![
            Just(IntakeChannel::Visit),
            Just(IntakeChannel::Phone),
            Just(IntakeChannel::Hotline),
            Just(IntakeChannel::GridWorker),
            Just(IntakeChannel::OnSite),
            Just(IntakeChannel::Petition),
            Just(IntakeChannel::Referral),
            Just(IntakeChannel::Deputy),
        ];
        let satisfaction = prop_oneof![
            Just(Satisfaction::Satisfied),
            Just(Satisfaction::BasicallySatisfied),
            Just(Satisfaction::Dissatisfied),
        ];
        let outcome = prop_oneof![
            Just(Outcome::ResolvedByAgreement),
            Just(Outcome::ResolvedOtherwise),
            Just(Outcome::Referred),
            Just(Outcome::NotAdmissible),
            Just(Outcome::Unresolved),
        ];
        prop_oneof![
            (
                kind,
                community(),
                uuid(),
                category(),
                text(),
                ts(),
                channel,
                prop::collection::vec(party_ref(), 0..4)
            )
                .prop_map(
                    |(kind, community, g, category, summary, at, channel, parties)| {
                        CaseEvent::CaseOpened {
                            kind,
                            community,
                            group: GroupId(g),
                            category,
                            summary,
                            occurred_at: at,
                            channel,
                            parties,
                        }
                    }
                ),
            party_ref().prop_map(|party| CaseEvent::PartyAdded { party }),
            ts().prop_map(|accepted_at| CaseEvent::CaseAccepted { accepted_at }),
            (uuid(), ts()).prop_map(|(m, at)| CaseEvent::CaseAssigned {
                assignee: MemberId(m),
                assigned_at: at
            }),
            (uuid(), ts(), text()).prop_map(|(s, at, location)| CaseEvent::SessionScheduled {
                session_id: SessionId(s),
                scheduled_for: at,
                location
            }),
            (
                uuid(),
                ts(),
                prop::collection::vec(attendee(), 0..4),
                text()
            )
                .prop_map(|(s, at, attendees, minutes_summary)| {
                    CaseEvent::SessionHeld {
                        session_id: SessionId(s),
                        held_at: at,
                        attendees,
                        minutes_summary,
                    }
                }),
            (ts(), text(), prop::collection::vec(uuid(), 0..3), ts()).prop_map(
                |(new_due, reason, ps, at)| CaseEvent::DeadlineExtended {
                    new_due,
                    reason,
                    consenting_parties: ps.into_iter().map(PartyId).collect(),
                    extended_at: at
                }
            ),
            (
                uuid(),
                text(),
                ts(),
                ts(),
                (text(), uuid(), text()),
                proptest::option::of(ts())
            )
                .prop_map(
                    |(s, terms, at, due, (facts, party, duty), performance_due)| {
                        CaseEvent::AgreementReached {
                            session_id: SessionId(s),
                            terms,
                            agreed_at: at,
                            follow_up_due: due,
                            facts: facts.clone(),
                            responsibilities: facts,
                            obligations: vec![Obligation {
                                party_id: PartyId(party),
                                duty,
                            }],
                            performance_manner: String::new(),
                            performance_place: "现场".into(),
                            performance_due,
                            copies: Some(3),
                        }
                    }
                ),
            (text(), route(), ts()).prop_map(|(reason, next_route, at)| {
                CaseEvent::MediationFailed {
                    reason,
                    next_route,
                    failed_at: at,
                }
            }),
            (route(), text(), ts()).prop_map(|(route, reason, at)| CaseEvent::CaseEscalated {
                route,
                reason,
                escalated_at: at
            }),
            incident().prop_map(|incident| CaseEvent::ObstructionIncidentRecorded { incident }),
            (proptest::option::of(uuid()), text(), ts(), text()).prop_map(
                |(i, police_unit, at, outcome)| CaseEvent::PoliceInterventionRecorded {
                    incident_id: i.map(IncidentId),
                    police_unit,
                    intervened_at: at,
                    outcome
                }
            ),
            (uuid(), ts()).prop_map(|(i, at)| CaseEvent::WorkResumed {
                incident_id: IncidentId(i),
                resumed_at: at
            }),
            (ts(), satisfaction, proptest::option::of(text())).prop_map(
                |(at, satisfaction, notes)| CaseEvent::FollowUpVisitRecorded {
                    visited_at: at,
                    satisfaction,
                    notes
                }
            ),
            (uuid(), text(), text(), ts(), ts()).prop_map(
                |(o, office, instructions, respond_by, at)| {
                    CaseEvent::SupervisionOrderIssued {
                        order_id: OrderId(o),
                        office,
                        instructions,
                        respond_by,
                        issued_at: at,
                    }
                }
            ),
            (uuid(), text(), ts()).prop_map(|(o, answer, at)| {
                CaseEvent::SupervisionOrderAnswered {
                    order_id: OrderId(o),
                    answer,
                    answered_at: at,
                }
            }),
            text().prop_map(|note| CaseEvent::NoteAdded { note }),
            (
                prop_oneof![Just(0u64), Just(u64::MAX), any::<u64>()],
                text(),
                text(),
                text()
            )
                .prop_map(|(n, field, corrected_value, reason)| {
                    CaseEvent::CorrectionRecorded {
                        corrects_sequence: n,
                        field,
                        corrected_value,
                        reason,
                    }
                }),
            (text(), ts()).prop_map(|(reason, at)| CaseEvent::CaseWithdrawn {
                reason,
                withdrawn_at: at
            }),
            (outcome, ts(), proptest::option::of(text())).prop_map(|(outcome, at, summary)| {
                CaseEvent::CaseClosed {
                    outcome,
                    closed_at: at,
                    summary,
                }
            }),
            (text(), ts()).prop_map(|(reason, at)| CaseEvent::CaseReopened {
                reason,
                reopened_at: at
            }),
            (uuid(), uuid(), text(), proptest::option::of(uuid())).prop_map(|(a, b, reason, m)| {
                CaseEvent::CaseTransferred {
                    from_group: GroupId(a),
                    to_group: GroupId(b),
                    reason,
                    unassigned: m.map(MemberId),
                }
            }),
            (
                prop_oneof![
                    Just(Performance::Performed),
                    Just(Performance::PartlyPerformed),
                    Just(Performance::NotPerformed)
                ],
                proptest::option::of(text()),
                text(),
                ts()
            )
                .prop_map(|(performance, remaining, reported_by, at)| {
                    CaseEvent::PerformanceRecorded {
                        performance,
                        remaining,
                        reported_by,
                        reported_at: at,
                    }
                }),
            (text(), ts(), ts()).prop_map(|(method, due, at)| CaseEvent::PerformanceUrged {
                method,
                performance_due: due,
                urged_at: at,
            }),
            (text(), any::<bool>(), text(), ts()).prop_map(|(court, told, reason, at)| {
                CaseEvent::ReferredToCourt {
                    court,
                    right_to_sue_told: told,
                    reason,
                    referred_at: at,
                }
            }),
            (text(), ts()).prop_map(|(court, at)| CaseEvent::JudicialConfirmationApplied {
                court,
                applied_at: at,
            }),
            (any::<bool>(), proptest::option::of(text()), ts()).prop_map(|(c, reason, at)| {
                CaseEvent::JudicialConfirmationDecided {
                    confirmed: c,
                    reason,
                    decided_at: at,
                }
            }),
            (route(), text(), ts()).prop_map(|(route, reply, at)| CaseEvent::EscalationReplied {
                route,
                reply,
                replied_at: at,
            }),
            (
                uuid(),
                1u64..20_000_000,
                proptest::option::of(text()),
                proptest::option::of(1u64..50)
            )
                .prop_map(|(a, size, caption, documents)| CaseEvent::AttachmentAdded {
                    attachment_id: AttachmentId(a),
                    media_type: "image/jpeg".into(),
                    size,
                    sha256: "ab".repeat(32),
                    stored_sha256: "cd".repeat(32),
                    caption,
                    documents,
                }),
        ]
    }

    fn member() -> impl Strategy<Value = Member> {
        (uuid(), text(), 0usize..6, text()).prop_map(|(m, name, r, organisation)| Member {
            member_id: MemberId(m),
            name,
            org_role: OrgRole::ALL[r],
            organisation,
        })
    }

    fn group_event() -> impl Strategy<Value = GroupEvent> {
        prop_oneof![
            (
                text(),
                text(),
                prop::collection::vec(community(), 0..4),
                uuid(),
                prop::collection::vec(member(), 0..4),
                ts()
            )
                .prop_map(|(name, street_office, communities, l, members, at)| {
                    GroupEvent::GroupFormed {
                        name,
                        street_office,
                        communities,
                        leader: MemberId(l),
                        members,
                        formed_at: at,
                    }
                }),
            member().prop_map(|member| GroupEvent::MemberAdded { member }),
            (uuid(), proptest::option::of(text())).prop_map(|(m, reason)| {
                GroupEvent::MemberRemoved {
                    member_id: MemberId(m),
                    reason,
                }
            }),
            (uuid(), uuid(), proptest::option::of(text())).prop_map(|(a, b, reason)| {
                GroupEvent::LeaderChanged {
                    previous_leader: MemberId(a),
                    new_leader: MemberId(b),
                    reason,
                }
            }),
            (
                prop::collection::vec(community(), 0..4),
                prop::collection::vec(community(), 0..4)
            )
                .prop_map(|(added, removed)| GroupEvent::CommunitiesChanged { added, removed }),
            (community(), uuid(), text()).prop_map(|(community, g, reason)| {
                GroupEvent::CommunityTakenOver {
                    community,
                    from: GroupId(g),
                    reason,
                }
            }),
            (community(), uuid(), text()).prop_map(|(community, g, reason)| {
                GroupEvent::CommunityHandedOver {
                    community,
                    to: GroupId(g),
                    reason,
                }
            }),
        ]
    }

    /// Fails to compile when a variant is added without a generator above.
    #[allow(dead_code)]
    fn every_variant_is_generated(c: &CaseEvent, g: &GroupEvent) {
        match c {
            CaseEvent::CaseOpened { .. }
            | CaseEvent::PartyAdded { .. }
            | CaseEvent::CaseAccepted { .. }
            | CaseEvent::CaseAssigned { .. }
            | CaseEvent::SessionScheduled { .. }
            | CaseEvent::SessionHeld { .. }
            | CaseEvent::DeadlineExtended { .. }
            | CaseEvent::AgreementReached { .. }
            | CaseEvent::MediationFailed { .. }
            | CaseEvent::CaseEscalated { .. }
            | CaseEvent::ObstructionIncidentRecorded { .. }
            | CaseEvent::PoliceInterventionRecorded { .. }
            | CaseEvent::WorkResumed { .. }
            | CaseEvent::FollowUpVisitRecorded { .. }
            | CaseEvent::SupervisionOrderIssued { .. }
            | CaseEvent::SupervisionOrderAnswered { .. }
            | CaseEvent::NoteAdded { .. }
            | CaseEvent::CorrectionRecorded { .. }
            | CaseEvent::CaseWithdrawn { .. }
            | CaseEvent::CaseClosed { .. }
            | CaseEvent::CaseReopened { .. }
            | CaseEvent::CaseTransferred { .. }
            | CaseEvent::PerformanceRecorded { .. }
            | CaseEvent::PerformanceUrged { .. }
            | CaseEvent::ReferredToCourt { .. }
            | CaseEvent::JudicialConfirmationApplied { .. }
            | CaseEvent::JudicialConfirmationDecided { .. }
            | CaseEvent::EscalationReplied { .. }
            | CaseEvent::AttachmentAdded { .. } => {}
        }
        match g {
            GroupEvent::GroupFormed { .. }
            | GroupEvent::MemberAdded { .. }
            | GroupEvent::MemberRemoved { .. }
            | GroupEvent::LeaderChanged { .. }
            | GroupEvent::CommunitiesChanged { .. }
            | GroupEvent::CommunityTakenOver { .. }
            | GroupEvent::CommunityHandedOver { .. } => {}
        }
    }

    fn metadata(name: String, at: Timestamp) -> Value {
        let map: HashMap<String, String> = EventMetadata {
            actor_id: "a".into(),
            actor_name: name,
            role: Role::Member,
            organisation: "南关街道办事处".into(),
            request_id: "r".into(),
            trace_id: None,
            recorded_at: at,
            app_version: "test".into(),
            idempotency_key: None,
            account_id: None,
            member_id: None,
        }
        .into_map();
        serde_json::to_value(map).expect("a map of strings")
    }

    fn serialized(
        aggregate_type: &str,
        event_type: &str,
        payload: Value,
        meta: Value,
    ) -> SerializedEvent {
        SerializedEvent::new(
            "00000000-0000-0000-0000-000000000001".into(),
            1,
            aggregate_type.into(),
            event_type.into(),
            tiaojie_events::EVENT_VERSION.into(),
            payload,
            meta,
        )
    }

    /// The property for one event, on both backends.
    fn round_trips(aggregate_type: &str, event_type: &str, payload: Value, meta: Value) {
        let e = serialized(aggregate_type, event_type, payload, meta);
        let up = Upcasters::default();
        check_stored_form(Backend::Sqlite, &e, &up).expect("SQLite stores every event faithfully");
        let text = stored_text(&e.payload);
        let decoded = decode_body(aggregate_type, "x", 1, event_type, "1", &text, &up)
            .expect("what was checked decodes");
        let again = match decoded {
            Body::Case(c) => serde_json::to_value(c).unwrap(),
            Body::Group(g) => serde_json::to_value(g).unwrap(),
            other => panic!("decoded as {other:?}"),
        };
        assert_eq!(again, e.payload);
        let nul = text.contains("\\u0000") || stored_text(&e.metadata).contains("\\u0000");
        match check_stored_form(Backend::Postgres, &e, &up) {
            Ok(()) => assert!(!nul, "a NUL would not survive jsonb"),
            Err(u) => assert!(nul, "refused without a reason: {u}"),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        #[test]
        fn every_case_event_reads_back_or_is_refused(ev in case_event(), name in text(), at in ts()) {
            let payload = serde_json::to_value(&ev).unwrap();
            round_trips(CASE_AGGREGATE_TYPE, ev.type_name(), payload, metadata(name, at));
        }

        #[test]
        fn every_group_event_reads_back_or_is_refused(ev in group_event(), name in text(), at in ts()) {
            let payload = serde_json::to_value(&ev).unwrap();
            round_trips(GROUP_AGGREGATE_TYPE, ev.type_name(), payload, metadata(name, at));
        }
    }

    #[test]
    fn what_would_not_read_back_is_refused() {
        let up = Upcasters::default();
        let meta = metadata("王建国".into(), Timestamp::MIN);
        // A time the projectors could not parse (the year -1 written by time's formatter).
        let bad_time = serde_json::json!({"type": "CaseAccepted", "accepted_at": "-0001-12-31T23:00:00.000000Z"});
        let e = serialized(CASE_AGGREGATE_TYPE, "CaseAccepted", bad_time, meta.clone());
        assert!(check_stored_form(Backend::Sqlite, &e, &up).is_err());
        // A payload of another shape than its type says.
        let e = serialized(
            CASE_AGGREGATE_TYPE,
            "CaseAccepted",
            serde_json::json!({"type": "NoteAdded", "note": "x"}),
            meta.clone(),
        );
        assert!(check_stored_form(Backend::Sqlite, &e, &up).is_err());
        // A field the event does not have would be dropped on the way back.
        let e = serialized(
            CASE_AGGREGATE_TYPE,
            "NoteAdded",
            serde_json::json!({"type": "NoteAdded", "note": "x", "extra": 1}),
            meta.clone(),
        );
        assert!(check_stored_form(Backend::Sqlite, &e, &up).is_err());
        // Metadata without a readable recording time.
        let e = serialized(
            CASE_AGGREGATE_TYPE,
            "NoteAdded",
            serde_json::json!({"type": "NoteAdded", "note": "x"}),
            serde_json::json!({"recorded_at": "yesterday"}),
        );
        assert!(check_stored_form(Backend::Sqlite, &e, &up).is_err());
    }

    #[test]
    fn stored_text_with_a_lone_surrogate_is_unreadable_not_a_panic() {
        let up = Upcasters::default();
        let text = r#"{"type":"NoteAdded","note":"\ud800"}"#;
        assert!(decode_body(CASE_AGGREGATE_TYPE, "x", 1, "NoteAdded", "1", text, &up).is_err());
        let text = r#"{"type":"NoteAdded","note":"\ud83d\ude00"}"#;
        assert!(decode_body(CASE_AGGREGATE_TYPE, "x", 1, "NoteAdded", "1", text, &up).is_ok());
    }
}
