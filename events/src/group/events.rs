use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::ids::{CommunityId, GroupId, MemberId};
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

    /// The name serde writes.
    pub fn as_str(&self) -> &'static str {
        match self {
            OrgRole::StreetOffice => "street_office",
            OrgRole::Judicial => "judicial",
            OrgRole::Police => "police",
            OrgRole::ResidentsCommittee => "residents_committee",
            OrgRole::PropertyCompany => "property_company",
            OrgRole::Enterprise => "enterprise",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s.trim())
    }

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

/// Serde tags are pinned per variant: they are the stored `event_type`, and renaming a
/// variant must not change what is stored. The golden files in `events/golden/` hold one
/// stored payload per variant; `projections/tests/golden_events.rs` fails when a payload,
/// its tag or its version changes without an upcaster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::EnumDiscriminants)]
#[strum_discriminants(
    name(GroupEventType),
    derive(strum::EnumIter, strum::IntoStaticStr, strum::EnumCount, Hash),
    doc = "The type of a [`GroupEvent`], one per variant: its name is the stored `event_type`."
)]
#[serde(tag = "type")]
pub enum GroupEvent {
    #[serde(rename = "GroupFormed")]
    GroupFormed {
        name: String,
        street_office: String,
        communities: Vec<CommunityId>,
        leader: MemberId,
        members: Vec<Member>,
        formed_at: Timestamp,
    },
    #[serde(rename = "MemberAdded")]
    MemberAdded { member: Member },
    #[serde(rename = "MemberRemoved")]
    MemberRemoved {
        member_id: MemberId,
        reason: Option<String>,
    },
    #[serde(rename = "LeaderChanged")]
    LeaderChanged {
        previous_leader: MemberId,
        new_leader: MemberId,
        reason: Option<String>,
    },
    #[serde(rename = "CommunitiesChanged")]
    CommunitiesChanged {
        added: Vec<CommunityId>,
        removed: Vec<CommunityId>,
    },
    /// A community moved here from another group (its open cases follow, each with a
    /// `CaseTransferred` event).
    #[serde(rename = "CommunityTakenOver")]
    CommunityTakenOver {
        community: CommunityId,
        from: GroupId,
        reason: String,
    },
    /// A community moved from here to another group, which has taken it over.
    #[serde(rename = "CommunityHandedOver")]
    CommunityHandedOver {
        community: CommunityId,
        to: GroupId,
        reason: String,
    },
}

impl GroupEventType {
    /// The payload version of each event type. A type's version is bumped only together
    /// with a golden file of the new shape and an upcaster from the old one (see
    /// `projections/src/upcast.rs`). Every type is at the first release's version.
    pub fn version(self) -> &'static str {
        match self {
            GroupEventType::GroupFormed => EVENT_VERSION,
            GroupEventType::MemberAdded => EVENT_VERSION,
            GroupEventType::MemberRemoved => EVENT_VERSION,
            GroupEventType::LeaderChanged => EVENT_VERSION,
            GroupEventType::CommunitiesChanged => EVENT_VERSION,
            GroupEventType::CommunityTakenOver => EVENT_VERSION,
            GroupEventType::CommunityHandedOver => EVENT_VERSION,
        }
    }

    /// The stored `event_type`.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

impl GroupEvent {
    /// The stored `event_type`: the variant's name, which is also its pinned serde tag.
    pub fn type_name(&self) -> &'static str {
        GroupEventType::from(self).into()
    }

    /// The payload version of this event's type.
    pub fn version(&self) -> &'static str {
        GroupEventType::from(self).version()
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
            GroupEvent::CommunityTakenOver { community, .. } => {
                format!("接管小区 {community}")
            }
            GroupEvent::CommunityHandedOver { community, .. } => {
                format!("移交小区 {community}")
            }
        }
    }
}

impl DomainEvent for GroupEvent {
    fn event_type(&self) -> String {
        self.type_name().to_string()
    }

    fn event_version(&self) -> String {
        self.version().to_string()
    }
}
