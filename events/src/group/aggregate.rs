use std::collections::BTreeMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use super::commands::*;
use super::errors::GroupError;
use super::events::{GroupEvent, Member, OrgRole};
use crate::directory::GroupInfo;
use crate::ids::{CommunityId, GroupId, MemberId};
use crate::text;
use crate::{GroupServices, OutOfBounds};

/// Never rename: stored with every event.
pub const GROUP_AGGREGATE_TYPE: &str = "MediationGroup";

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediationGroup {
    pub formed: bool,
    pub name: String,
    pub street_office: String,
    pub communities: Vec<CommunityId>,
    pub leader: Option<MemberId>,
    pub members: BTreeMap<MemberId, Member>,
    pub version: u64,
}

impl MediationGroup {
    pub fn info(&self, id: GroupId) -> Option<GroupInfo> {
        Some(GroupInfo {
            id,
            communities: self.communities.clone(),
            leader: self.leader?,
            members: self
                .members
                .values()
                .map(|m| (m.member_id, m.org_role))
                .collect(),
        })
    }
}

fn check_member(m: &Member) -> Result<Member, GroupError> {
    Ok(Member {
        member_id: m.member_id,
        name: text::required("member.name", &m.name, text::SHORT)
            .map_err(GroupError::InvalidText)?,
        org_role: m.org_role,
        organisation: text::required("member.organisation", &m.organisation, text::SHORT)
            .map_err(GroupError::InvalidText)?,
    })
}

impl Aggregate for MediationGroup {
    const TYPE: &'static str = GROUP_AGGREGATE_TYPE;
    type Command = GroupCommand;
    type Event = GroupEvent;
    type Error = GroupError;
    type Services = GroupServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let now = services.clock.now();
        if !self.formed && !matches!(command, GroupCommand::FormGroup(_)) {
            return Err(GroupError::NotFound);
        }
        let event = match command {
            GroupCommand::FormGroup(c) => {
                if self.formed {
                    return Err(GroupError::AlreadyFormed);
                }
                let name = text::required("name", &c.name, text::SHORT)
                    .map_err(GroupError::InvalidText)?;
                let street_office = text::required("street_office", &c.street_office, text::SHORT)
                    .map_err(GroupError::InvalidText)?;
                if c.communities.is_empty() {
                    return Err(GroupError::NoCommunities);
                }
                let mut communities: Vec<CommunityId> = Vec::new();
                for community in c.communities {
                    if services.reference.community(&community).is_none() {
                        return Err(GroupError::UnknownCommunity(community));
                    }
                    if let Some(g) = services
                        .directory
                        .group_for_community(&community)
                        .await
                        .map_err(|e| GroupError::Unavailable(e.0))?
                    {
                        return Err(GroupError::CommunityCovered {
                            community,
                            group: g.id,
                        });
                    }
                    if !communities.contains(&community) {
                        communities.push(community);
                    }
                }
                let leader = check_member(&c.leader)?;
                if leader.org_role != OrgRole::StreetOffice {
                    return Err(GroupError::LeaderNotFromStreetOffice);
                }
                let mut members = vec![leader.clone()];
                for m in &c.members {
                    if m.member_id == leader.member_id && *m == c.leader {
                        continue;
                    }
                    if members.iter().any(|x| x.member_id == m.member_id) {
                        return Err(GroupError::DuplicateMember(m.member_id));
                    }
                    members.push(check_member(m)?);
                }
                let formed_at = c.formed_at.unwrap_or(now);
                match services.bounds.happened(formed_at, now) {
                    Ok(()) => {}
                    Err(OutOfBounds::TooEarly) => return Err(GroupError::TooEarly),
                    Err(_) => return Err(GroupError::InFuture),
                }
                GroupEvent::GroupFormed {
                    name,
                    street_office,
                    communities,
                    leader: leader.member_id,
                    members,
                    formed_at,
                }
            }
            GroupCommand::AddMember(c) => {
                if self.members.contains_key(&c.member.member_id) {
                    return Err(GroupError::DuplicateMember(c.member.member_id));
                }
                GroupEvent::MemberAdded {
                    member: check_member(&c.member)?,
                }
            }
            GroupCommand::RemoveMember(c) => {
                if !self.members.contains_key(&c.member_id) {
                    return Err(GroupError::MemberNotFound(c.member_id));
                }
                if self.leader == Some(c.member_id) {
                    return Err(GroupError::CannotRemoveLeader);
                }
                let reason = text::optional("reason", c.reason.as_deref(), text::SHORT)
                    .map_err(GroupError::InvalidText)?;
                GroupEvent::MemberRemoved {
                    member_id: c.member_id,
                    reason,
                }
            }
            GroupCommand::ChangeLeader(c) => {
                let Some(m) = self.members.get(&c.new_leader) else {
                    return Err(GroupError::MemberNotFound(c.new_leader));
                };
                if self.leader == Some(c.new_leader) {
                    return Err(GroupError::AlreadyLeader(c.new_leader));
                }
                if m.org_role != OrgRole::StreetOffice {
                    return Err(GroupError::LeaderNotFromStreetOffice);
                }
                let reason = text::optional("reason", c.reason.as_deref(), text::SHORT)
                    .map_err(GroupError::InvalidText)?;
                GroupEvent::LeaderChanged {
                    previous_leader: self.leader.unwrap_or_default(),
                    new_leader: c.new_leader,
                    reason,
                }
            }
            GroupCommand::ChangeCommunities(c) => {
                let mut added = Vec::new();
                for community in c.add {
                    if services.reference.community(&community).is_none() {
                        return Err(GroupError::UnknownCommunity(community));
                    }
                    if self.communities.contains(&community) || added.contains(&community) {
                        continue;
                    }
                    if let Some(g) = services
                        .directory
                        .group_for_community(&community)
                        .await
                        .map_err(|e| GroupError::Unavailable(e.0))?
                    {
                        return Err(GroupError::CommunityCovered {
                            community,
                            group: g.id,
                        });
                    }
                    added.push(community);
                }
                let mut removed = Vec::new();
                for community in c.remove {
                    if self.communities.contains(&community) && !removed.contains(&community) {
                        removed.push(community);
                    }
                }
                if added.is_empty() && removed.is_empty() {
                    return Err(GroupError::NothingToChange);
                }
                let remaining = self.communities.len() + added.len() - removed.len();
                if remaining == 0 {
                    return Err(GroupError::NoCommunities);
                }
                GroupEvent::CommunitiesChanged { added, removed }
            }
            GroupCommand::TakeOverCommunity(c) => {
                if services.reference.community(&c.community).is_none() {
                    return Err(GroupError::UnknownCommunity(c.community));
                }
                if self.communities.contains(&c.community) {
                    return Err(GroupError::SameGroup);
                }
                let reason = text::required("reason", &c.reason, text::SHORT)
                    .map_err(GroupError::InvalidText)?;
                let giver = services
                    .directory
                    .group(&c.from)
                    .await
                    .map_err(|e| GroupError::Unavailable(e.0))?;
                if !giver.is_some_and(|g| g.communities.contains(&c.community)) {
                    return Err(GroupError::NotCoveredBy {
                        community: c.community,
                        group: c.from,
                    });
                }
                GroupEvent::CommunityTakenOver {
                    community: c.community,
                    from: c.from,
                    reason,
                }
            }
            GroupCommand::HandOverCommunity(c) => {
                if !self.communities.contains(&c.community) {
                    return Err(GroupError::NotCoveredBy {
                        community: c.community,
                        group: c.to,
                    });
                }
                if self.communities.len() == 1 {
                    return Err(GroupError::NoCommunities);
                }
                let reason = text::required("reason", &c.reason, text::SHORT)
                    .map_err(GroupError::InvalidText)?;
                // Never left without a group: the receiver covers it already.
                let receiver = services
                    .directory
                    .group(&c.to)
                    .await
                    .map_err(|e| GroupError::Unavailable(e.0))?;
                if !receiver.is_some_and(|g| g.communities.contains(&c.community)) {
                    return Err(GroupError::NotCoveredBy {
                        community: c.community,
                        group: c.to,
                    });
                }
                GroupEvent::CommunityHandedOver {
                    community: c.community,
                    to: c.to,
                    reason,
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.version += 1;
        match event {
            GroupEvent::GroupFormed {
                name,
                street_office,
                communities,
                leader,
                members,
                ..
            } => {
                self.formed = true;
                self.name = name;
                self.street_office = street_office;
                self.communities = communities;
                self.leader = Some(leader);
                self.members = members.into_iter().map(|m| (m.member_id, m)).collect();
            }
            GroupEvent::MemberAdded { member } => {
                self.members.insert(member.member_id, member);
            }
            GroupEvent::MemberRemoved { member_id, .. } => {
                self.members.remove(&member_id);
            }
            GroupEvent::LeaderChanged { new_leader, .. } => {
                self.leader = Some(new_leader);
            }
            GroupEvent::CommunitiesChanged { added, removed } => {
                self.communities.retain(|c| !removed.contains(c));
                self.communities.extend(added);
            }
            GroupEvent::CommunityTakenOver { community, .. } => {
                if !self.communities.contains(&community) {
                    self.communities.push(community);
                }
            }
            GroupEvent::CommunityHandedOver { community, .. } => {
                self.communities.retain(|c| *c != community);
            }
        }
    }
}
