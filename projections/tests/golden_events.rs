//! The stored event format is pinned.
//!
//! `events/golden/{case,group}/<EventType>.v<version>.json` holds one stored payload per
//! event type and version, as this release writes it. The tests here fail when:
//! - a payload's shape, its `event_type` or its version changes and the golden file was not
//!   changed with it (a stored format must never change by accident);
//! - an event type has no golden file of its current version, or a golden file names a type
//!   that no longer exists;
//! - a golden file of an older version no longer reads, through the upcasters, as the
//!   current sample: bump a version only together with an upcaster;
//! - a string field of an event is neither sealed (`free_text_fields`) nor listed below as
//!   stored in clear, so that a new free-text field cannot be stored in clear by forgetting.
//!
//! After a deliberate change (a new event type, or a new version with its upcaster), write
//! the files with `TIAOJIE_BLESS=1 cargo test -p tiaojie-projections --test golden_events`
//! and review the diff: old versions' files are never rewritten.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{json, Value};
use strum::IntoEnumIterator;
use tiaojie_events::case::*;
use tiaojie_events::group::*;
use tiaojie_events::ids::*;
use tiaojie_events::Timestamp;
use tiaojie_projections::codec::{decode_body, Body, Upcasters};

fn golden_dir(aggregate: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../events/golden")).join(aggregate)
}

fn t(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

fn u(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + n)
}

/// One event of each type, every optional field present, free text in Chinese.
fn case_sample(ty: CaseEventType) -> CaseEvent {
    let party = PartyRef {
        party_id: PartyId(u(1)),
        role: PartyRole::Obstructor,
    };
    match ty {
        CaseEventType::CaseOpened => CaseEvent::CaseOpened {
            kind: CaseKind::ConstructionObstruction,
            community: CommunityId::parse("xiguan-beijie").unwrap(),
            group: GroupId(u(2)),
            category: CategoryCode::parse("work.pipeline").unwrap(),
            summary: "居民阻挡雨污分流管线开挖".into(),
            occurred_at: t("2026-04-01T09:30:00Z"),
            channel: IntakeChannel::OnSite,
            parties: vec![party],
        },
        CaseEventType::PartyAdded => CaseEvent::PartyAdded { party },
        CaseEventType::CaseAccepted => CaseEvent::CaseAccepted {
            accepted_at: t("2026-04-01T10:00:00Z"),
        },
        CaseEventType::CaseAssigned => CaseEvent::CaseAssigned {
            assignee: MemberId(u(3)),
            assigned_at: t("2026-04-01T10:05:00Z"),
        },
        CaseEventType::SessionScheduled => CaseEvent::SessionScheduled {
            session_id: SessionId(u(4)),
            scheduled_for: t("2026-04-03T14:00:00Z"),
            location: "社区居委会二楼调解室".into(),
        },
        CaseEventType::SessionHeld => CaseEvent::SessionHeld {
            session_id: SessionId(u(4)),
            held_at: t("2026-04-03T14:10:00Z"),
            attendees: vec![
                Attendee::GroupMember {
                    member_id: MemberId(u(3)),
                },
                Attendee::Party {
                    party_id: PartyId(u(1)),
                },
                Attendee::Other {
                    role: "施工单位项目经理".into(),
                },
            ],
            minutes_summary: "双方同意调整管线走向".into(),
        },
        CaseEventType::DeadlineExtended => CaseEvent::DeadlineExtended {
            new_due: t("2026-05-15T00:00:00Z"),
            reason: "需等待设计单位出具变更方案".into(),
            consenting_parties: vec![PartyId(u(1))],
            extended_at: t("2026-04-20T08:00:00Z"),
        },
        CaseEventType::AgreementReached => CaseEvent::AgreementReached {
            session_id: SessionId(u(4)),
            terms: "施工单位恢复绿化带，居民不再阻工".into(),
            agreed_at: t("2026-04-03T15:00:00Z"),
            follow_up_due: t("2026-04-17T15:00:00Z"),
            facts: "管网改造开挖占用3号楼前绿化带，居民阻止施工".into(),
            responsibilities: "施工单位未提前公示，负主要责任".into(),
            obligations: vec![Obligation {
                party_id: PartyId(u(5)),
                duty: "4月10日前恢复绿化带".into(),
            }],
            performance_manner: "施工单位自行恢复，社区验收".into(),
            performance_place: "3号楼前绿化带".into(),
            performance_due: Some(t("2026-04-10T10:00:00Z")),
            copies: Some(3),
        },
        CaseEventType::MediationFailed => CaseEvent::MediationFailed {
            reason: "当事人坚持要求赔偿".into(),
            next_route: Route::Court,
            failed_at: t("2026-04-03T16:00:00Z"),
        },
        CaseEventType::CaseEscalated => CaseEvent::CaseEscalated {
            route: Route::LeadershipGroup,
            reason: "涉及设计方案调整".into(),
            escalated_at: t("2026-04-04T09:00:00Z"),
        },
        CaseEventType::ObstructionIncidentRecorded => CaseEvent::ObstructionIncidentRecorded {
            incident: Incident {
                incident_id: IncidentId(u(5)),
                occurred_at: t("2026-04-01T09:30:00Z"),
                location: "3号楼东侧道路".into(),
                work_item: CategoryCode::parse("work.pipeline").unwrap(),
                obstructing_parties: vec![PartyId(u(1))],
                work_stopped_minutes: 210,
                police_called: true,
                description: "两名居民站在沟槽边阻止开挖".into(),
            },
        },
        CaseEventType::PoliceInterventionRecorded => CaseEvent::PoliceInterventionRecorded {
            incident_id: Some(IncidentId(u(5))),
            police_unit: "南关派出所".into(),
            intervened_at: t("2026-04-01T10:00:00Z"),
            outcome: "现场劝离，未采取强制措施".into(),
        },
        CaseEventType::WorkResumed => CaseEvent::WorkResumed {
            incident_id: IncidentId(u(5)),
            resumed_at: t("2026-04-01T13:00:00Z"),
        },
        CaseEventType::FollowUpVisitRecorded => CaseEvent::FollowUpVisitRecorded {
            visited_at: t("2026-04-17T10:00:00Z"),
            satisfaction: Satisfaction::BasicallySatisfied,
            notes: Some("绿化带已恢复一半".into()),
        },
        CaseEventType::SupervisionOrderIssued => CaseEvent::SupervisionOrderIssued {
            order_id: OrderId(u(6)),
            office: "区改造办督查室".into(),
            instructions: "三日内报告处置进展".into(),
            respond_by: t("2026-04-07T09:00:00Z"),
            issued_at: t("2026-04-04T09:00:00Z"),
        },
        CaseEventType::SupervisionOrderAnswered => CaseEvent::SupervisionOrderAnswered {
            order_id: OrderId(u(6)),
            answer: "已召开调解会，达成协议".into(),
            answered_at: t("2026-04-05T09:00:00Z"),
        },
        CaseEventType::NoteAdded => CaseEvent::NoteAdded {
            note: "当事人要求下次调解在晚上进行".into(),
        },
        CaseEventType::CorrectionRecorded => CaseEvent::CorrectionRecorded {
            corrects_sequence: 3,
            field: "地点".into(),
            corrected_value: "5号楼西侧".into(),
            reason: "登记时写错楼号".into(),
        },
        CaseEventType::CaseWithdrawn => CaseEvent::CaseWithdrawn {
            reason: "当事人自行和解".into(),
            withdrawn_at: t("2026-04-02T09:00:00Z"),
        },
        CaseEventType::CaseClosed => CaseEvent::CaseClosed {
            outcome: Outcome::ResolvedByAgreement,
            closed_at: t("2026-04-18T09:00:00Z"),
            summary: Some("协议已履行".into()),
        },
        CaseEventType::CaseReopened => CaseEvent::CaseReopened {
            reason: "施工单位未按协议恢复绿化".into(),
            reopened_at: t("2026-04-25T09:00:00Z"),
        },
        CaseEventType::CaseTransferred => CaseEvent::CaseTransferred {
            from_group: GroupId(u(11)),
            to_group: GroupId(u(12)),
            reason: "小区划归西关南街片区".into(),
            unassigned: Some(MemberId(u(3))),
        },
        CaseEventType::PerformanceRecorded => CaseEvent::PerformanceRecorded {
            performance: Performance::PartlyPerformed,
            remaining: Some("尚余二期补偿款未支付".into()),
            reported_by: "申请人张某".into(),
            reported_at: t("2026-05-10T02:00:00Z"),
        },
        CaseEventType::PerformanceUrged => CaseEvent::PerformanceUrged {
            method: "电话督促施工单位项目经理".into(),
            performance_due: t("2026-05-25T02:00:00Z"),
            urged_at: t("2026-05-11T02:00:00Z"),
        },
        CaseEventType::ReferredToCourt => CaseEvent::ReferredToCourt {
            court: "固原市原州区人民法院".into(),
            right_to_sue_told: true,
            reason: "督促后仍未支付".into(),
            referred_at: t("2026-05-26T02:00:00Z"),
        },
        CaseEventType::JudicialConfirmationApplied => CaseEvent::JudicialConfirmationApplied {
            court: "固原市原州区人民法院".into(),
            applied_at: t("2026-04-20T02:00:00Z"),
        },
        CaseEventType::JudicialConfirmationDecided => CaseEvent::JudicialConfirmationDecided {
            confirmed: false,
            reason: Some("协议内容超出当事人处分权".into()),
            decided_at: t("2026-05-02T02:00:00Z"),
        },
        CaseEventType::AttachmentAdded => CaseEvent::AttachmentAdded {
            attachment_id: AttachmentId(u(13)),
            media_type: "image/jpeg".into(),
            size: 48213,
            sha256: "3f".repeat(32),
            stored_sha256: "a0".repeat(32),
            caption: Some("3号楼东侧阻工现场照片".into()),
            documents: Some(4),
        },
        CaseEventType::EscalationReplied => CaseEvent::EscalationReplied {
            route: Route::LeadershipGroup,
            reply: "领导小组同意调整管线走向".into(),
            replied_at: t("2026-04-12T02:00:00Z"),
        },
    }
}

fn group_sample(ty: GroupEventType) -> GroupEvent {
    let member = Member {
        member_id: MemberId(u(3)),
        name: "李明".into(),
        org_role: OrgRole::Judicial,
        organisation: "南关司法所".into(),
    };
    match ty {
        GroupEventType::GroupFormed => GroupEvent::GroupFormed {
            name: "西关北街片区矛盾调解小组".into(),
            street_office: "南关街道办事处".into(),
            communities: vec![CommunityId::parse("xiguan-beijie").unwrap()],
            leader: MemberId(u(3)),
            members: vec![member],
            formed_at: t("2026-03-01T09:00:00Z"),
        },
        GroupEventType::MemberAdded => GroupEvent::MemberAdded { member },
        GroupEventType::MemberRemoved => GroupEvent::MemberRemoved {
            member_id: MemberId(u(3)),
            reason: Some("工作调动".into()),
        },
        GroupEventType::LeaderChanged => GroupEvent::LeaderChanged {
            previous_leader: MemberId(u(3)),
            new_leader: MemberId(u(7)),
            reason: Some("分管领导调整".into()),
        },
        GroupEventType::CommunitiesChanged => GroupEvent::CommunitiesChanged {
            added: vec![CommunityId::parse("jingfeng-yuan").unwrap()],
            removed: vec![CommunityId::parse("xiguan-beijie").unwrap()],
        },
        GroupEventType::CommunityTakenOver => GroupEvent::CommunityTakenOver {
            community: CommunityId::parse("jingfeng-yuan").unwrap(),
            from: GroupId(u(11)),
            reason: "片区调整".into(),
        },
        GroupEventType::CommunityHandedOver => GroupEvent::CommunityHandedOver {
            community: CommunityId::parse("jingfeng-yuan").unwrap(),
            to: GroupId(u(12)),
            reason: "片区调整".into(),
        },
    }
}

/// Strings that case events store in clear, by event type and path (`[]` for any array
/// element), with the reason. Ids, codes of the reference data, enum values and times are
/// recognised by their form and need no entry. Every other string must be sealed.
fn case_clear_text(event_type: &str) -> &'static [&'static str] {
    match event_type {
        // The office that issued an order, e.g. 区改造办督查室: an organisation, not a person.
        "SupervisionOrderIssued" => &["office"],
        // The police station that intervened: an organisation.
        "PoliceInterventionRecorded" => &["police_unit"],
        // An attendee who is neither a member nor a registered party, by role only
        // (施工单位项目经理). The form asks for a role, never a name.
        "SessionHeld" => &["attendees[].role"],
        // The court applied to or referred to: an institution.
        "ReferredToCourt" | "JudicialConfirmationApplied" => &["court"],
        // A media type and two hashes: about the file, never its content.
        "AttachmentAdded" => &["media_type", "sha256", "stored_sha256"],
        _ => &[],
    }
}

/// Group events name officials acting for their organisations; nothing in them is a
/// resident's personal data, so they are stored in clear (DESIGN.md, personal data).
fn group_clear_text(event_type: &str) -> &'static [&'static str] {
    match event_type {
        "GroupFormed" => &[
            "name",
            "street_office",
            "members[].name",
            "members[].organisation",
        ],
        "MemberAdded" => &["member.name", "member.organisation"],
        // Why a community moved between groups: an administrative reason, about areas.
        "MemberRemoved" | "LeaderChanged" | "CommunityTakenOver" | "CommunityHandedOver" => {
            &["reason"]
        }
        _ => &[],
    }
}

fn stored(event_type: &str, version: &str, payload: &Value) -> Value {
    json!({"event_type": event_type, "event_version": version, "payload": payload})
}

fn bless() -> bool {
    std::env::var("TIAOJIE_BLESS").is_ok_and(|v| v == "1")
}

/// Compares each sample with its golden file; returns the problems found.
fn check_aggregate(
    aggregate: &str,
    aggregate_type: &str,
    samples: Vec<(&'static str, &'static str, Value)>,
) -> Vec<String> {
    let dir = golden_dir(aggregate);
    let mut problems = vec![];
    let mut current: BTreeMap<&str, (&str, Value)> = BTreeMap::new();
    for (ty, version, payload) in samples {
        let file = dir.join(format!("{ty}.v{version}.json"));
        let want = stored(ty, version, &payload);
        if bless() && !file.exists() {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&file, serde_json::to_string_pretty(&want).unwrap() + "\n").unwrap();
        }
        match std::fs::read_to_string(&file) {
            Err(_) => problems.push(format!(
                "{ty} v{version}: no golden file {} (a new type or version needs one)",
                file.display()
            )),
            Ok(text) => {
                let got: Value = serde_json::from_str(&text).unwrap();
                if got != want {
                    problems.push(format!(
                        "{ty} v{version}: the stored form changed without a new version and an upcaster\n  golden: {got}\n  now:    {want}"
                    ));
                }
            }
        }
        current.insert(ty, (version, payload));
    }
    // Every golden file names a current type; older versions still read as the current
    // sample through the upcasters.
    let upcasters = Upcasters::default();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some((ty, version)) = name.strip_suffix(".json").and_then(|n| n.rsplit_once(".v"))
        else {
            problems.push(format!("{name}: not named <EventType>.v<version>.json"));
            continue;
        };
        let Some((current_version, payload)) = current.get(ty) else {
            problems.push(format!("{name}: no event type {ty} any more"));
            continue;
        };
        if version == *current_version {
            continue;
        }
        let text = std::fs::read_to_string(dir.join(&name)).unwrap();
        let old: Value = serde_json::from_str(&text).unwrap();
        let decoded = decode_body(
            aggregate_type,
            "00000000-0000-0000-0000-000000000000",
            1,
            ty,
            version,
            &old["payload"].to_string(),
            &upcasters,
        );
        let now = match decoded {
            Ok(Body::Case(e)) => serde_json::to_value(e).unwrap(),
            Ok(Body::Group(e)) => serde_json::to_value(e).unwrap(),
            other => {
                problems.push(format!("{name}: an old version no longer reads: {other:?}"));
                continue;
            }
        };
        // The upcast keeps each field the old version had, as it was, and has the current
        // version's fields: the current sample's, no more and no fewer.
        let keys = |v: &Value| -> Vec<String> {
            v.as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default()
        };
        let kept = old["payload"]
            .as_object()
            .is_some_and(|o| o.iter().all(|(k, v)| now.get(k) == Some(v)));
        if !kept || keys(&now) != keys(payload) {
            problems.push(format!(
                "{name}: upcast to v{current_version} gives {now}, which loses an old field or lacks a current one (current sample: {payload})"
            ));
        }
    }
    problems
}

/// Every case event sample: (type, version, stored payload).
fn case_samples() -> Vec<(&'static str, &'static str, Value)> {
    CaseEventType::iter()
        .map(|ty| {
            let e = case_sample(ty);
            assert_eq!(CaseEventType::from(&e), ty);
            (ty.name(), ty.version(), serde_json::to_value(&e).unwrap())
        })
        .collect()
}

fn group_samples() -> Vec<(&'static str, &'static str, Value)> {
    GroupEventType::iter()
        .map(|ty| {
            let e = group_sample(ty);
            assert_eq!(GroupEventType::from(&e), ty);
            (ty.name(), ty.version(), serde_json::to_value(&e).unwrap())
        })
        .collect()
}

#[test]
fn every_event_type_has_a_golden_file_and_none_changed() {
    let mut problems = check_aggregate("case", CASE_AGGREGATE_TYPE, case_samples());
    problems.extend(check_aggregate(
        "group",
        GROUP_AGGREGATE_TYPE,
        group_samples(),
    ));
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// The serde tag is the type name, and the stored form reads back as the event.
fn check_tag_and_round_trip<E>(e: E, name: &str)
where
    E: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let v = serde_json::to_value(&e).unwrap();
    assert_eq!(v["type"], name, "{name}: serde tag and type name differ");
    let back: E = serde_json::from_value(v).unwrap();
    assert_eq!(back, e);
}

#[test]
fn the_serde_tag_is_the_type_name_and_golden_files_decode() {
    for ty in CaseEventType::iter() {
        let e = case_sample(ty);
        assert_eq!(e.type_name(), ty.name());
        check_tag_and_round_trip(e, ty.name());
    }
    for ty in GroupEventType::iter() {
        let e = group_sample(ty);
        assert_eq!(e.type_name(), ty.name());
        check_tag_and_round_trip(e, ty.name());
    }
}

/// Every string leaf of a payload, by path (`a.b`, `a[].b` for array elements).
fn string_leaves(v: &Value, path: &str, out: &mut Vec<(String, String)>) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match v {
        Value::String(s) => out.push((path.to_string(), s.clone())),
        Value::Array(a) => a
            .iter()
            .for_each(|x| string_leaves(x, &format!("{path}[]"), out)),
        Value::Object(o) => o.iter().for_each(|(k, x)| string_leaves(x, &join(k), out)),
        _ => {}
    }
}

/// A string whose form says it is not free text: an id, a time, or a lower-case code or
/// enum value of ASCII letters, digits, `-`, `_` and `.`.
fn structured(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
        || Timestamp::parse(s).is_ok()
        || (!s.is_empty()
            && s.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
            }))
}

/// The string fields of one payload that are neither sealed nor listed as clear, and the
/// sealed paths the payload does not have (a renamed field must not leave its text in
/// clear).
fn text_problems(
    event_type: &str,
    payload: &Value,
    sealed: &[&str],
    clear: &[&str],
) -> Vec<String> {
    let mut leaves = vec![];
    string_leaves(payload, "", &mut leaves);
    let mut problems: Vec<String> = leaves
        .iter()
        .filter(|(path, value)| {
            path != "type"
                && !sealed.contains(&path.as_str())
                && !clear.contains(&path.as_str())
                && !structured(value)
        })
        .map(|(path, value)| format!(
            "{event_type}.{path} = {value:?} is free text stored in clear: add it to free_text_fields (sealed), or to the clear-text list with the reason it holds no personal data"
        ))
        .collect();
    for path in sealed {
        if !leaves.iter().any(|(p, _)| p == path) {
            problems.push(format!(
                "{event_type}: free_text_fields names {path}, which the payload does not have"
            ));
        }
    }
    problems
}

#[test]
fn every_free_text_field_is_sealed_or_listed_as_clear() {
    let mut problems = vec![];
    for (ty, _, v) in case_samples() {
        problems.extend(text_problems(
            ty,
            &v,
            free_text_fields(ty),
            case_clear_text(ty),
        ));
    }
    // Group events seal nothing.
    for (ty, _, v) in group_samples() {
        problems.extend(text_problems(ty, &v, &[], group_clear_text(ty)));
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}
