use serde::{Deserialize, Serialize};

use super::events::Member;
use crate::ids::{CommunityId, GroupId, MemberId};
use crate::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum GroupCommand {
    FormGroup(FormGroup),
    AddMember(AddMember),
    RemoveMember(RemoveMember),
    ChangeLeader(ChangeLeader),
    ChangeCommunities(ChangeCommunities),
    /// The first half of moving a community between groups: the receiving group takes it
    /// over from the group that covers it now.
    TakeOverCommunity(TakeOverCommunity),
    /// The second half: the giving group hands it over, once the receiver covers it.
    HandOverCommunity(HandOverCommunity),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TakeOverCommunity {
    pub community: CommunityId,
    pub from: GroupId,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandOverCommunity {
    pub community: CommunityId,
    pub to: GroupId,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FormGroup {
    pub name: String,
    /// The street office (街道办事处) that forms the group, by its Chinese name.
    pub street_office: String,
    pub communities: Vec<CommunityId>,
    /// The leader (组长): the office's deputy leader in charge.
    pub leader: Member,
    /// Further members; the leader need not be repeated here.
    pub members: Vec<Member>,
    pub formed_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddMember {
    pub member: Member,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoveMember {
    pub member_id: MemberId,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeLeader {
    pub new_leader: MemberId,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeCommunities {
    pub add: Vec<CommunityId>,
    pub remove: Vec<CommunityId>,
}
