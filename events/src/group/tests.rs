use std::sync::Arc;

use cqrs_es::test::TestFramework;

use super::*;
use crate::case::tests::{now, services};
use crate::directory::{GroupInfo, InMemoryDirectory};
use crate::ids::*;
use crate::{CaseServices, ManualClock, Reference};

fn member(n: u128, role: OrgRole) -> Member {
    Member {
        member_id: MemberId(uuid::Uuid::from_u128(n)),
        name: format!("成员{n}"),
        org_role: role,
        organisation: "南关街道办事处".into(),
    }
}

fn c(s: &str) -> CommunityId {
    CommunityId::parse(s).unwrap()
}

fn empty_services() -> CaseServices {
    CaseServices {
        clock: Arc::new(ManualClock::new(now())),
        reference: Arc::new(Reference::guyuan_2022()),
        bounds: crate::TimeBounds::default(),
        directory: Arc::new(InMemoryDirectory::default()),
    }
}

fn form() -> FormGroup {
    FormGroup {
        name: "靖丰苑矛盾调解小组".into(),
        street_office: "南关街道办事处".into(),
        communities: vec![c("meiyuan"), c("defu")],
        leader: member(100, OrgRole::StreetOffice),
        members: vec![member(101, OrgRole::Judicial), member(102, OrgRole::Police)],
        formed_at: None,
    }
}

fn formed() -> GroupEvent {
    GroupEvent::GroupFormed {
        name: "靖丰苑矛盾调解小组".into(),
        street_office: "南关街道办事处".into(),
        communities: vec![c("meiyuan"), c("defu")],
        leader: member(100, OrgRole::StreetOffice).member_id,
        members: vec![
            member(100, OrgRole::StreetOffice),
            member(101, OrgRole::Judicial),
            member(102, OrgRole::Police),
        ],
        formed_at: now(),
    }
}

#[test]
fn form_group() {
    TestFramework::<MediationGroup>::with(empty_services())
        .given_no_previous_events()
        .when(GroupCommand::FormGroup(form()))
        .then_expect_events(vec![formed()]);
}

#[test]
fn form_group_rejections() {
    let err = |f: FormGroup, s: CaseServices| {
        TestFramework::<MediationGroup>::with(s)
            .given_no_previous_events()
            .when(GroupCommand::FormGroup(f))
            .inspect_result()
            .unwrap_err()
    };
    let mut f = form();
    f.leader = member(100, OrgRole::Police);
    assert_eq!(
        err(f, empty_services()),
        GroupError::LeaderNotFromStreetOffice
    );

    let mut f = form();
    f.communities = vec![];
    assert_eq!(err(f, empty_services()), GroupError::NoCommunities);

    let mut f = form();
    f.communities = vec![c("nowhere")];
    assert_eq!(
        err(f, empty_services()),
        GroupError::UnknownCommunity(c("nowhere"))
    );

    let mut f = form();
    f.communities = vec![c("jingfeng-yuan")];
    assert_eq!(err(f, services()).code(), "community_already_covered");

    let mut f = form();
    f.members.push(member(101, OrgRole::Enterprise));
    assert_eq!(
        err(f, empty_services()),
        GroupError::DuplicateMember(member(101, OrgRole::Judicial).member_id)
    );

    let mut f = form();
    f.name = " ".into();
    assert_eq!(err(f, empty_services()).code(), "invalid_text");

    TestFramework::<MediationGroup>::with(empty_services())
        .given(vec![formed()])
        .when(GroupCommand::FormGroup(form()))
        .then_expect_error(GroupError::AlreadyFormed);
}

#[test]
fn members_and_leader() {
    let fw = || TestFramework::<MediationGroup>::with(empty_services());
    let m = member(103, OrgRole::ResidentsCommittee);
    fw().given(vec![formed()])
        .when(GroupCommand::AddMember(AddMember { member: m.clone() }))
        .then_expect_events(vec![GroupEvent::MemberAdded { member: m.clone() }]);
    fw().given(vec![
        formed(),
        GroupEvent::MemberAdded { member: m.clone() },
    ])
    .when(GroupCommand::AddMember(AddMember { member: m.clone() }))
    .then_expect_error(GroupError::DuplicateMember(m.member_id));

    fw().given(vec![formed()])
        .when(GroupCommand::RemoveMember(RemoveMember {
            member_id: member(101, OrgRole::Judicial).member_id,
            reason: None,
        }))
        .then_expect_events(vec![GroupEvent::MemberRemoved {
            member_id: member(101, OrgRole::Judicial).member_id,
            reason: None,
        }]);
    fw().given(vec![formed()])
        .when(GroupCommand::RemoveMember(RemoveMember {
            member_id: member(100, OrgRole::StreetOffice).member_id,
            reason: None,
        }))
        .then_expect_error(GroupError::CannotRemoveLeader);
    fw().given(vec![formed()])
        .when(GroupCommand::RemoveMember(RemoveMember {
            member_id: m.member_id,
            reason: None,
        }))
        .then_expect_error(GroupError::MemberNotFound(m.member_id));

    let deputy = member(104, OrgRole::StreetOffice);
    fw().given(vec![
        formed(),
        GroupEvent::MemberAdded {
            member: deputy.clone(),
        },
    ])
    .when(GroupCommand::ChangeLeader(ChangeLeader {
        new_leader: deputy.member_id,
        reason: Some("工作调整".into()),
    }))
    .then_expect_events(vec![GroupEvent::LeaderChanged {
        previous_leader: member(100, OrgRole::StreetOffice).member_id,
        new_leader: deputy.member_id,
        reason: Some("工作调整".into()),
    }]);
    fw().given(vec![formed()])
        .when(GroupCommand::ChangeLeader(ChangeLeader {
            new_leader: member(101, OrgRole::Judicial).member_id,
            reason: None,
        }))
        .then_expect_error(GroupError::LeaderNotFromStreetOffice);
    fw().given(vec![formed()])
        .when(GroupCommand::ChangeLeader(ChangeLeader {
            new_leader: member(100, OrgRole::StreetOffice).member_id,
            reason: None,
        }))
        .then_expect_error(GroupError::AlreadyLeader(
            member(100, OrgRole::StreetOffice).member_id,
        ));
    fw().given_no_previous_events()
        .when(GroupCommand::AddMember(AddMember { member: m }))
        .then_expect_error(GroupError::NotFound);
}

#[test]
fn communities_change() {
    let s = CaseServices {
        directory: Arc::new(InMemoryDirectory::new([GroupInfo {
            id: GroupId(uuid::Uuid::from_u128(9)),
            communities: vec![c("dianxin")],
            leader: MemberId(uuid::Uuid::from_u128(9)),
            members: vec![],
        }])),
        ..empty_services()
    };
    let fw = || TestFramework::<MediationGroup>::with(s.clone());
    fw().given(vec![formed()])
        .when(GroupCommand::ChangeCommunities(ChangeCommunities {
            add: vec![c("baxiao")],
            remove: vec![c("defu")],
        }))
        .then_expect_events(vec![GroupEvent::CommunitiesChanged {
            added: vec![c("baxiao")],
            removed: vec![c("defu")],
        }]);
    fw().given(vec![formed()])
        .when(GroupCommand::ChangeCommunities(ChangeCommunities {
            add: vec![c("dianxin")],
            remove: vec![],
        }))
        .then_expect_error(GroupError::CommunityCovered {
            community: c("dianxin"),
            group: GroupId(uuid::Uuid::from_u128(9)),
        });
    fw().given(vec![formed()])
        .when(GroupCommand::ChangeCommunities(ChangeCommunities {
            add: vec![],
            remove: vec![c("defu"), c("meiyuan")],
        }))
        .then_expect_error(GroupError::NoCommunities);
    fw().given(vec![formed()])
        .when(GroupCommand::ChangeCommunities(ChangeCommunities {
            add: vec![c("meiyuan")],
            remove: vec![],
        }))
        .then_expect_error(GroupError::NothingToChange);
}

/// One error of each kind; the match is exhaustive, so a new variant must be added here.
fn error_of(kind: GroupErrorKind) -> GroupError {
    use GroupErrorKind as K;
    let community = CommunityId::parse("xiguan-beijie").unwrap();
    let member = MemberId(uuid::Uuid::from_u128(7));
    match kind {
        K::NotFound => GroupError::NotFound,
        K::AlreadyFormed => GroupError::AlreadyFormed,
        K::InvalidText => GroupError::InvalidText(crate::text::TextProblem {
            field: "member.name",
            kind: crate::text::TextProblemKind::Empty,
        }),
        K::NoCommunities => GroupError::NoCommunities,
        K::UnknownCommunity => GroupError::UnknownCommunity(community),
        K::CommunityCovered => GroupError::CommunityCovered {
            community,
            group: GroupId(uuid::Uuid::from_u128(8)),
        },
        K::LeaderNotFromStreetOffice => GroupError::LeaderNotFromStreetOffice,
        K::DuplicateMember => GroupError::DuplicateMember(member),
        K::MemberNotFound => GroupError::MemberNotFound(member),
        K::CannotRemoveLeader => GroupError::CannotRemoveLeader,
        K::AlreadyLeader => GroupError::AlreadyLeader(member),
        K::InFuture => GroupError::InFuture,
        K::TooEarly => GroupError::TooEarly,
        K::NothingToChange => GroupError::NothingToChange,
        K::Unavailable => GroupError::Unavailable("connection refused".into()),
        K::NotCoveredBy => GroupError::NotCoveredBy {
            community,
            group: GroupId(uuid::Uuid::from_u128(8)),
        },
        K::SameGroup => GroupError::SameGroup,
    }
}

#[test]
fn every_group_error_has_a_code_and_chinese_message() {
    use strum::IntoEnumIterator;
    let mut codes = std::collections::HashSet::new();
    for kind in GroupErrorKind::iter() {
        let e = error_of(kind);
        assert_eq!(GroupErrorKind::from(&e), kind);
        assert!(codes.insert(e.code()), "{kind:?}: code {} twice", e.code());
        let zh = e.message_zh();
        assert!(
            zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
            "{kind:?}: {zh}"
        );
        assert!(!zh.contains('_'), "{kind:?}: untranslated field in {zh}");
        assert!(
            !zh.contains("connection"),
            "{kind:?}: internal detail in {zh}"
        );
    }
}

#[test]
fn a_community_moves_only_from_the_group_that_covers_it_and_is_never_left_without_one() {
    let other = GroupId(uuid::Uuid::from_u128(9));
    let other_with = |communities: Vec<CommunityId>| CaseServices {
        directory: Arc::new(InMemoryDirectory::new([GroupInfo {
            id: other,
            communities,
            leader: MemberId(uuid::Uuid::from_u128(9)),
            members: vec![],
        }])),
        ..empty_services()
    };
    let take = |community: &str, reason: &str| {
        GroupCommand::TakeOverCommunity(TakeOverCommunity {
            community: c(community),
            from: other,
            reason: reason.into(),
        })
    };
    let hand = |community: &str| {
        GroupCommand::HandOverCommunity(HandOverCommunity {
            community: c(community),
            to: other,
            reason: "片区调整".into(),
        })
    };
    // Taking over: only what the giver covers, with a reason, and not what one has.
    let s = other_with(vec![c("dianxin")]);
    TestFramework::<MediationGroup>::with(s.clone())
        .given(vec![formed()])
        .when(take("dianxin", "片区调整"))
        .then_expect_events(vec![GroupEvent::CommunityTakenOver {
            community: c("dianxin"),
            from: other,
            reason: "片区调整".into(),
        }]);
    TestFramework::<MediationGroup>::with(s.clone())
        .given(vec![formed()])
        .when(take("baxiao", "片区调整"))
        .then_expect_error(GroupError::NotCoveredBy {
            community: c("baxiao"),
            group: other,
        });
    TestFramework::<MediationGroup>::with(s.clone())
        .given(vec![formed()])
        .when(take("meiyuan", "片区调整"))
        .then_expect_error(GroupError::SameGroup);
    let refused = TestFramework::<MediationGroup>::with(s.clone())
        .given(vec![formed()])
        .when(take("dianxin", "  "));
    assert!(matches!(
        refused.inspect_result(),
        Err(GroupError::InvalidText(_))
    ));
    // Handing over: only once the receiver covers it.
    TestFramework::<MediationGroup>::with(s.clone())
        .given(vec![formed()])
        .when(hand("meiyuan"))
        .then_expect_error(GroupError::NotCoveredBy {
            community: c("meiyuan"),
            group: other,
        });
    TestFramework::<MediationGroup>::with(other_with(vec![c("meiyuan")]))
        .given(vec![formed()])
        .when(hand("meiyuan"))
        .then_expect_events(vec![GroupEvent::CommunityHandedOver {
            community: c("meiyuan"),
            to: other,
            reason: "片区调整".into(),
        }]);
    // The last community is not handed over: a group covers at least one.
    TestFramework::<MediationGroup>::with(other_with(vec![c("defu")]))
        .given(vec![
            formed(),
            GroupEvent::CommunityHandedOver {
                community: c("meiyuan"),
                to: other,
                reason: "片区调整".into(),
            },
        ])
        .when(hand("defu"))
        .then_expect_error(GroupError::NoCommunities);
}
