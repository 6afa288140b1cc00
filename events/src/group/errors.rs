use crate::ids::{CommunityId, GroupId, MemberId};
use crate::text::TextProblem;

/// Why a group command was refused. Each has a stable `code` for clients.
#[derive(Debug, Clone, PartialEq, thiserror::Error, strum::EnumDiscriminants)]
#[strum_discriminants(name(GroupErrorKind), derive(strum::EnumIter))]
pub enum GroupError {
    #[error("the mediation group does not exist")]
    NotFound,
    #[error("the mediation group has already been formed")]
    AlreadyFormed,
    #[error("field {} is invalid: {:?}", .0.field, .0.kind)]
    InvalidText(TextProblem),
    #[error("a mediation group needs at least one community")]
    NoCommunities,
    #[error("community {0} does not exist in the reference data")]
    UnknownCommunity(CommunityId),
    #[error("community {community} is already covered by mediation group {group}")]
    CommunityCovered {
        community: CommunityId,
        group: GroupId,
    },
    #[error("the leader must come from the street office (the office's deputy leader in charge)")]
    LeaderNotFromStreetOffice,
    #[error("member {0} is listed twice")]
    DuplicateMember(MemberId),
    #[error("member {0} is not in this group")]
    MemberNotFound(MemberId),
    #[error("the leader cannot be removed; change the leader first")]
    CannotRemoveLeader,
    #[error("member {0} already leads this group")]
    AlreadyLeader(MemberId),
    #[error("the time given lies in the future")]
    InFuture,
    #[error("the time given lies before the earliest date this programme accepts")]
    TooEarly,
    #[error("nothing to change")]
    NothingToChange,
    #[error("the group directory is unavailable: {0}")]
    Unavailable(String),
    #[error("community {community} is not covered by mediation group {group}")]
    NotCoveredBy {
        community: CommunityId,
        group: GroupId,
    },
    #[error("a community cannot be moved to the group that covers it")]
    SameGroup,
}

impl GroupError {
    pub fn code(&self) -> &'static str {
        match self {
            GroupError::NotFound => "group_not_found",
            GroupError::AlreadyFormed => "group_already_formed",
            GroupError::InvalidText(_) => "invalid_text",
            GroupError::NoCommunities => "group_needs_community",
            GroupError::UnknownCommunity(_) => "unknown_community",
            GroupError::CommunityCovered { .. } => "community_already_covered",
            GroupError::LeaderNotFromStreetOffice => "leader_not_from_street_office",
            GroupError::DuplicateMember(_) => "duplicate_member",
            GroupError::MemberNotFound(_) => "member_not_found",
            GroupError::CannotRemoveLeader => "cannot_remove_leader",
            GroupError::AlreadyLeader(_) => "already_leader",
            GroupError::InFuture => "time_in_future",
            GroupError::TooEarly => "time_too_early",
            GroupError::NothingToChange => "nothing_to_change",
            GroupError::Unavailable(_) => "store_unavailable",
            GroupError::NotCoveredBy { .. } => "community_not_covered",
            GroupError::SameGroup => "same_group",
        }
    }

    pub fn message_zh(&self) -> String {
        match self {
            GroupError::NotFound => "矛盾调解小组不存在".into(),
            GroupError::AlreadyFormed => "该矛盾调解小组已成立".into(),
            GroupError::InvalidText(p) => crate::case::text_problem_zh(p),
            GroupError::NoCommunities => "矛盾调解小组至少负责一个小区".into(),
            GroupError::UnknownCommunity(c) => format!("小区 {c} 不在参考数据中"),
            GroupError::CommunityCovered { community, .. } => {
                format!("小区 {community} 已由其他矛盾调解小组负责")
            }
            GroupError::LeaderNotFromStreetOffice => "组长须由街道办事处分管领导担任".into(),
            GroupError::DuplicateMember(_) => "成员重复".into(),
            GroupError::MemberNotFound(_) => "该成员不在本小组".into(),
            GroupError::CannotRemoveLeader => "不能移除组长，请先更换组长".into(),
            GroupError::AlreadyLeader(_) => "该成员已是组长".into(),
            GroupError::InFuture => "时间不能晚于当前时间".into(),
            GroupError::TooEarly => "时间早于本项目可登记的最早日期，请核对年份".into(),
            GroupError::NothingToChange => "没有需要调整的内容".into(),
            GroupError::Unavailable(_) => "数据存储暂时不可用，请稍后重试".into(),
            GroupError::NotCoveredBy { community, .. } => {
                format!("小区 {community} 不由该矛盾调解小组负责")
            }
            GroupError::SameGroup => "不能移交给本小组".into(),
        }
    }
}
