use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::ids::{CommunityId, MemberId};
use crate::time::Timestamp;
use crate::EVENT_VERSION;

/// The organisation a member comes from, as section 6.2 of the plan lists them.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgRole {
    /// 街道办事处
    StreetOffice,
    /// 司法
    Judicial,
    /// 公安
    Police,
    /// 居委会
    ResidentsCommittee,
    /// 物业公司
    PropertyCompany,
    /// 企业 (e.g. the contractor)
    Enterprise,
}

impl OrgRole {
    pub const ALL: [OrgRole; 6] = [
        OrgRole::StreetOffice,
        OrgRole::Judicial,
        OrgRole::Police,
        OrgRole::ResidentsCommittee,
        OrgRole::PropertyCompany,
        OrgRole::Enterprise,
    ];

    pub fn label_zh(&self) -> &'static str {
        match self {
            OrgRole::StreetOffice => "街道办事处",
            OrgRole::Judicial => "司法",
            OrgRole::Police => "公安",
            OrgRole::ResidentsCommittee => "居委会",
            OrgRole::PropertyCompany => "物业公司",
            OrgRole::Enterprise => "企业",
        }
    }
}

/// A member of a group: an official acting for an organisation, not a resident.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub member_id: MemberId,
    pub name: String,
    pub org_role: OrgRole,
    /// The organisation by name, e.g. 南关街道办事处 or 原州区公安分局.
    pub organisation: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum GroupEvent {
    GroupFormed {
        name: String,
        street_office: String,
        communities: Vec<CommunityId>,
        leader: MemberId,
        members: Vec<Member>,
        formed_at: Timestamp,
    },
    MemberAdded {
        member: Member,
    },
    MemberRemoved {
        member_id: MemberId,
        reason: Option<String>,
    },
    LeaderChanged {
        previous_leader: MemberId,
        new_leader: MemberId,
        reason: Option<String>,
    },
    CommunitiesChanged {
        added: Vec<CommunityId>,
        removed: Vec<CommunityId>,
    },
}

impl GroupEvent {
    pub fn type_name(&self) -> &'static str {
        match self {
            GroupEvent::GroupFormed { .. } => "GroupFormed",
            GroupEvent::MemberAdded { .. } => "MemberAdded",
            GroupEvent::MemberRemoved { .. } => "MemberRemoved",
            GroupEvent::LeaderChanged { .. } => "LeaderChanged",
            GroupEvent::CommunitiesChanged { .. } => "CommunitiesChanged",
        }
    }

    /// A one-line description in Chinese for the audit trail (no free text).
    pub fn describe_zh(&self) -> String {
        match self {
            GroupEvent::GroupFormed {
                name,
                communities,
                members,
                ..
            } => format!(
                "成立矛盾调解小组“{name}”，负责{}个小区，成员{}人",
                communities.len(),
                members.len()
            ),
            GroupEvent::MemberAdded { member } => {
                format!("增加成员（{}）", member.org_role.label_zh())
            }
            GroupEvent::MemberRemoved { .. } => "移除成员".to_string(),
            GroupEvent::LeaderChanged { .. } => "更换组长".to_string(),
            GroupEvent::CommunitiesChanged { added, removed } => {
                format!(
                    "调整负责小区：增加{}个，移除{}个",
                    added.len(),
                    removed.len()
                )
            }
        }
    }
}

impl DomainEvent for GroupEvent {
    fn event_type(&self) -> String {
        self.type_name().to_string()
    }

    fn event_version(&self) -> String {
        EVENT_VERSION.to_string()
    }
}
