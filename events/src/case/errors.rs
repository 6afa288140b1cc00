use super::aggregate::CaseStatus;
use crate::ids::{CategoryCode, CommunityId, IncidentId, MemberId, OrderId, PartyId, SessionId};
use crate::text::{TextProblem, TextProblemKind};

/// Why a case command was refused: one variant per rule, each with a stable `code` and a
/// message in English (`Display`) and Chinese ([`CaseError::message_zh`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error, strum::EnumDiscriminants)]
#[strum_discriminants(name(CaseErrorKind), derive(strum::EnumIter))]
pub enum CaseError {
    #[error("the case does not exist")]
    NotFound,
    #[error("the case has already been opened")]
    AlreadyOpened,
    #[error("the case is closed; only reopening is possible")]
    Closed,
    #[error("the case was withdrawn; only reopening is possible")]
    Withdrawn,
    #[error("cannot {action} a case that is {status}")]
    WrongStatus {
        action: &'static str,
        status: CaseStatus,
    },
    #[error("community {0} does not exist in the reference data")]
    UnknownCommunity(CommunityId),
    #[error("no mediation group covers community {0}; form one first")]
    NoGroupForCommunity(CommunityId),
    #[error("dispute category {0} does not exist")]
    UnknownCategory(CategoryCode),
    #[error("{0} is not a renovation work item")]
    NotAWorkItem(CategoryCode),
    #[error("field {} is invalid: {:?}", .0.field, .0.kind)]
    InvalidText(TextProblem),
    #[error("{0} lies in the future")]
    InFuture(&'static str),
    #[error("{0} lies before the earliest date this programme accepts")]
    TooEarly(&'static str),
    #[error("{0} lies too far ahead")]
    TooFarAhead(&'static str),
    #[error("{field} lies before {earlier}")]
    TimeOrder {
        field: &'static str,
        earlier: &'static str,
    },
    #[error("a resident objection needs at least one complainant")]
    NoComplainant,
    #[error("party {0} is listed twice")]
    DuplicateParty(PartyId),
    #[error("party {0} is not a party to this case")]
    UnknownParty(PartyId),
    #[error("a construction-obstruction case is opened with the incident that caused it")]
    ObstructionNeedsIncident,
    #[error("member {0} is not a member of the case's mediation group")]
    NotGroupMember(MemberId),
    #[error("session {0} already exists")]
    SessionExists(SessionId),
    #[error("session {0} does not exist")]
    SessionNotFound(SessionId),
    #[error("session {0} has already been recorded")]
    SessionAlreadyHeld(SessionId),
    #[error("session {0} has not been held")]
    SessionNotHeld(SessionId),
    #[error("a session needs at least one member of the mediation group present")]
    NoGroupMemberPresent,
    #[error("an agreement needs a mediation session that was held")]
    NoHeldSession,
    #[error(
        "the deadline can only be extended with the recorded consent of every party; missing {0}"
    )]
    ConsentMissing(PartyId),
    #[error("the new deadline must be later than the current one and than now")]
    DeadlineNotLater,
    #[error("the case already has an agreement")]
    AlreadyAgreed,
    #[error("this needs an agreement first")]
    AgreementRequired,
    #[error("incident {0} already exists")]
    IncidentExists(IncidentId),
    #[error("incident {0} does not exist")]
    IncidentNotFound(IncidentId),
    #[error("incident {0} did not stop work")]
    WorkNotStopped(IncidentId),
    #[error("work stopped by incident {0} has already resumed")]
    WorkAlreadyResumed(IncidentId),
    #[error("work stopped for more than {max} minutes cannot be one incident")]
    TooManyMinutes { max: u32 },
    #[error("work stopped by incident {0} has not resumed")]
    WorkStillStopped(IncidentId),
    #[error("supervision order {0} already exists")]
    OrderExists(OrderId),
    #[error("supervision order {0} does not exist")]
    OrderNotFound(OrderId),
    #[error("supervision order {0} has already been answered")]
    OrderAlreadyAnswered(OrderId),
    #[error("supervision order {0} must be answered before the case is closed")]
    OrderUnanswered(OrderId),
    #[error("closing needs an outcome")]
    OutcomeRequired,
    #[error("outcome {0} does not fit the case's history")]
    OutcomeNotPossible(&'static str),
    #[error("there is no event {0} in this case to correct")]
    CorrectionTarget(u64),
    #[error("only a resident objection can be withdrawn")]
    WithdrawalOnlyForObjections,
    #[error("only a closed or withdrawn case can be reopened")]
    NotClosed,
    #[error("the group directory is unavailable: {0}")]
    Unavailable(String),
    #[error("the case is already with that mediation group")]
    AlreadyInGroup,
    #[error("mediation group {0} does not cover the case's community")]
    CommunityNotInGroup(crate::ids::GroupId),
    #[error("the agreement has already been recorded as carried out in full")]
    AlreadyPerformed,
    #[error("a partly performed agreement needs what remains to be done")]
    RemainingRequired,
    #[error("this needs a report that the agreement was not carried out in full")]
    NotShortOfPerformance,
    #[error("the case has already been referred to the court")]
    AlreadyReferred,
    #[error("a referral to the court needs the party told of the right to sue")]
    RightToSueNotTold,
    #[error("judicial confirmation is applied for within {days} days of the agreement")]
    ConfirmationWindowClosed { days: i64 },
    #[error("an application for judicial confirmation is awaiting the court's decision")]
    ConfirmationPending,
    #[error("the agreement has already been confirmed by the court")]
    AlreadyConfirmed,
    #[error("there is no application for judicial confirmation awaiting a decision")]
    NoConfirmationApplication,
    #[error("a refusal needs its reason")]
    ReasonRequired,
    #[error("no escalation or next route is awaiting a reply")]
    NoReplyAwaited,
    #[error("the agreement is recorded as not carried out in full and was not referred; it cannot close as resolved by agreement")]
    AgreementNotPerformed,
    #[error("there is no recorded step {0} in this case for the attachment to document")]
    AttachmentTarget(u64),
    #[error("the attachment's description is not valid")]
    InvalidAttachment,
}

pub fn text_problem_zh(p: &TextProblem) -> String {
    match p.kind {
        TextProblemKind::Empty => format!("{}不能为空", field_zh(p.field)),
        TextProblemKind::TooLong { max } => format!("{}不能超过{}个字", field_zh(p.field), max),
        TextProblemKind::ControlCharacters => format!("{}含有不可见的控制字符", field_zh(p.field)),
    }
}

/// A field's name as a mediator says it.
pub fn field_zh(field: &str) -> &str {
    match field {
        "summary" => "案情摘要",
        "location" => "地点",
        "minutes_summary" => "会议纪要",
        "reason" => "理由",
        "terms" => "协议内容",
        "description" => "情况描述",
        "police_unit" => "出警单位",
        "outcome" => "处置结果",
        "notes" => "回访记录",
        "office" => "督查单位",
        "instructions" => "督办要求",
        "answer" => "答复内容",
        "note" => "备注",
        "field" => "更正字段",
        "corrected_value" => "更正内容",
        "name" => "名称",
        "street_office" => "街道办事处",
        "member.name" => "成员姓名",
        "member.organisation" => "成员单位",
        "attendee.role" => "出席人身份",
        "facts" => "纠纷主要事实、争议事项",
        "responsibilities" => "各方责任",
        "obligations" => "当事人义务",
        "performance_manner" => "履行方式",
        "performance_place" => "履行地点",
        "performance_due" => "履行期限",
        "agreed_at" => "达成时间",
        "follow_up_due" => "回访期限",
        "occurred_at" => "发生时间",
        "held_at" => "召开时间",
        "scheduled_for" => "调解会时间",
        "visited_at" => "回访时间",
        "intervened_at" => "出警时间",
        "resumed_at" => "恢复施工时间",
        "closed_at" => "结案时间",
        "accepted_at" => "受理时间",
        "work_stopped_minutes" => "停工时长",
        "satisfaction" => "满意度",
        "remaining" => "尚未履行的内容",
        "caption" => "附件说明",
        "reported_at" => "履行情况反映时间",
        "reported_by" => "反映人",
        "method" => "督促方式",
        "court" => "人民法院",
        "reply" => "回复内容",
        "performance" => "履行情况",
        "right_to_sue_told" => "已告知诉权",
        other => other,
    }
}

impl CaseError {
    /// The input field the refusal is about, when there is one (forms show the message
    /// next to it).
    pub fn field(&self) -> Option<&'static str> {
        Some(match self {
            CaseError::InvalidText(p) => p.field,
            CaseError::InFuture(f) | CaseError::TooEarly(f) | CaseError::TooFarAhead(f) => f,
            CaseError::TimeOrder { field, .. } => field,
            CaseError::UnknownCommunity(_) | CaseError::NoGroupForCommunity(_) => "community",
            CaseError::UnknownCategory(_) => "category",
            CaseError::NotAWorkItem(_) => "incident.work_item",
            CaseError::NoComplainant | CaseError::DuplicateParty(_) => "parties",
            CaseError::ObstructionNeedsIncident => "incident",
            CaseError::NoGroupMemberPresent => "attendees",
            CaseError::ConsentMissing(_) => "consenting_parties",
            CaseError::DeadlineNotLater => "new_due",
            CaseError::TooManyMinutes { .. } => "work_stopped_minutes",
            CaseError::OutcomeRequired | CaseError::OutcomeNotPossible(_) => "outcome",
            CaseError::CorrectionTarget(_) => "corrects_sequence",
            CaseError::RemainingRequired => "remaining",
            CaseError::RightToSueNotTold => "right_to_sue_told",
            CaseError::ConfirmationWindowClosed { .. } => "applied_at",
            CaseError::ReasonRequired => "reason",
            CaseError::AgreementNotPerformed => "outcome",
            CaseError::AttachmentTarget(_) => "step",
            _ => return None,
        })
    }

    pub fn code(&self) -> &'static str {
        use CaseError::*;
        match self {
            NotFound => "case_not_found",
            AlreadyOpened => "case_already_opened",
            Closed => "case_closed",
            Withdrawn => "case_withdrawn",
            WrongStatus { .. } => "wrong_status",
            UnknownCommunity(_) => "unknown_community",
            NoGroupForCommunity(_) => "no_group_for_community",
            UnknownCategory(_) => "unknown_category",
            NotAWorkItem(_) => "not_a_work_item",
            InvalidText(_) => "invalid_text",
            InFuture(_) => "time_in_future",
            TooEarly(_) => "time_too_early",
            TooFarAhead(_) => "time_too_far_ahead",
            TimeOrder { .. } => "time_order",
            NoComplainant => "no_complainant",
            DuplicateParty(_) => "duplicate_party",
            UnknownParty(_) => "unknown_party",
            ObstructionNeedsIncident => "obstruction_needs_incident",
            NotGroupMember(_) => "not_group_member",
            SessionExists(_) => "session_exists",
            SessionNotFound(_) => "session_not_found",
            SessionAlreadyHeld(_) => "session_already_held",
            SessionNotHeld(_) => "session_not_held",
            NoGroupMemberPresent => "no_group_member_present",
            NoHeldSession => "no_held_session",
            ConsentMissing(_) => "consent_missing",
            DeadlineNotLater => "deadline_not_later",
            AlreadyAgreed => "already_agreed",
            AgreementRequired => "agreement_required",
            IncidentExists(_) => "incident_exists",
            IncidentNotFound(_) => "incident_not_found",
            WorkNotStopped(_) => "work_not_stopped",
            WorkAlreadyResumed(_) => "work_already_resumed",
            TooManyMinutes { .. } => "too_many_minutes",
            WorkStillStopped(_) => "work_still_stopped",
            OrderExists(_) => "order_exists",
            OrderNotFound(_) => "order_not_found",
            OrderAlreadyAnswered(_) => "order_already_answered",
            OrderUnanswered(_) => "order_unanswered",
            OutcomeRequired => "outcome_required",
            OutcomeNotPossible(_) => "outcome_not_possible",
            CorrectionTarget(_) => "correction_target",
            WithdrawalOnlyForObjections => "withdrawal_only_for_objections",
            NotClosed => "not_closed",
            Unavailable(_) => "store_unavailable",
            AlreadyInGroup => "already_in_group",
            CommunityNotInGroup(_) => "community_not_in_group",
            AlreadyPerformed => "already_performed",
            RemainingRequired => "remaining_required",
            NotShortOfPerformance => "not_short_of_performance",
            AlreadyReferred => "already_referred",
            RightToSueNotTold => "right_to_sue_not_told",
            ConfirmationWindowClosed { .. } => "confirmation_window_closed",
            ConfirmationPending => "confirmation_pending",
            AlreadyConfirmed => "already_confirmed",
            NoConfirmationApplication => "no_confirmation_application",
            ReasonRequired => "reason_required",
            NoReplyAwaited => "no_reply_awaited",
            AgreementNotPerformed => "agreement_not_performed",
            AttachmentTarget(_) => "attachment_target",
            InvalidAttachment => "invalid_attachment",
        }
    }

    pub fn message_zh(&self) -> String {
        use CaseError::*;
        match self {
            NotFound => "案件不存在".into(),
            AlreadyOpened => "该案件已登记".into(),
            Closed => "案件已结案，只能重新启动".into(),
            Withdrawn => "案件已撤回，只能重新启动".into(),
            WrongStatus { action, status } => {
                format!(
                    "案件当前状态为“{}”，不能{}",
                    status.label_zh(),
                    action_zh(action)
                )
            }
            UnknownCommunity(c) => format!("小区 {c} 不在参考数据中"),
            NoGroupForCommunity(_) => "该小区尚未成立矛盾调解小组，请先成立".into(),
            UnknownCategory(c) => format!("纠纷类别 {c} 不存在"),
            NotAWorkItem(c) => format!("{c} 不是改造施工项目"),
            InvalidText(p) => text_problem_zh(p),
            InFuture(f) => format!("{}不能晚于当前时间", time_field_zh(f)),
            TooEarly(f) => format!("{}早于本项目可登记的最早日期，请核对年份", time_field_zh(f)),
            TooFarAhead(f) => format!("{}距今过远（最多五年之内），请核对年份", time_field_zh(f)),
            TimeOrder { field, earlier } => {
                format!("{}不能早于{}", time_field_zh(field), time_field_zh(earlier))
            }
            NoComplainant => "居民异议案件至少需要一名申请人".into(),
            DuplicateParty(_) => "当事人重复".into(),
            UnknownParty(_) => "该人员不是本案当事人".into(),
            ObstructionNeedsIncident => "阻挡施工案件须同时登记阻工事件".into(),
            NotGroupMember(_) => "该人员不是本案矛盾调解小组成员".into(),
            SessionExists(_) => "该调解会已存在".into(),
            SessionNotFound(_) => "调解会不存在".into(),
            SessionAlreadyHeld(_) => "该调解会已记录".into(),
            SessionNotHeld(_) => "该调解会尚未召开".into(),
            NoGroupMemberPresent => "调解会至少需要一名调解小组成员出席".into(),
            NoHeldSession => "达成调解协议前须召开调解会".into(),
            ConsentMissing(_) => "延长调解期限须经全部当事人同意并记录".into(),
            DeadlineNotLater => "新的期限须晚于当前期限和当前时间".into(),
            AlreadyAgreed => "案件已达成调解协议".into(),
            AgreementRequired => "须先达成调解协议".into(),
            IncidentExists(_) => "该阻工事件已存在".into(),
            IncidentNotFound(_) => "阻工事件不存在".into(),
            WorkNotStopped(_) => "该阻工事件未造成停工".into(),
            WorkAlreadyResumed(_) => "该阻工事件造成的停工已恢复".into(),
            TooManyMinutes { max } => format!("单次阻工停工时长不能超过{}小时", max / 60),
            WorkStillStopped(_) => "仍有停工尚未恢复，不能结案".into(),
            OrderExists(_) => "该督办已存在".into(),
            OrderNotFound(_) => "督办不存在".into(),
            OrderAlreadyAnswered(_) => "该督办已答复".into(),
            OrderUnanswered(_) => "尚有督办未答复，不能结案".into(),
            OutcomeRequired => "结案须填写结案结果".into(),
            OutcomeNotPossible(o) => format!("结案结果“{}”与案件经过不符", outcome_zh(o)),
            CorrectionTarget(n) => format!("本案没有第{n}条记录可供更正"),
            WithdrawalOnlyForObjections => "只有居民异议案件可以撤回".into(),
            NotClosed => "只有已结案或已撤回的案件可以重新启动".into(),
            Unavailable(_) => "数据存储暂时不可用，请稍后重试".into(),
            AlreadyInGroup => "案件已在该矛盾调解小组".into(),
            CommunityNotInGroup(_) => "该矛盾调解小组不负责本案所在小区".into(),
            AlreadyPerformed => "调解协议已记录为全部履行".into(),
            RemainingRequired => "部分履行须写明尚未履行的内容".into(),
            NotShortOfPerformance => "须先记录协议未履行或部分履行".into(),
            AlreadyReferred => "案件已引导至人民法院".into(),
            RightToSueNotTold => "引导至人民法院前须告知当事人有权提起诉讼".into(),
            ConfirmationWindowClosed { days } => {
                format!("司法确认须在调解协议生效之日起{days}日内申请，已超过期限")
            }
            ConfirmationPending => "已申请司法确认，尚待人民法院作出决定".into(),
            AlreadyConfirmed => "调解协议已经人民法院确认".into(),
            NoConfirmationApplication => "没有待人民法院决定的司法确认申请".into(),
            ReasonRequired => "不予确认须写明理由".into(),
            NoReplyAwaited => "没有等待回复的上报或移交".into(),
            AttachmentTarget(n) => format!("本案没有第{n}项记录，附件无法对应"),
            InvalidAttachment => "附件信息不完整".into(),
            AgreementNotPerformed => {
                "调解协议记录为未履行或部分履行，且未引导至人民法院，不能以“调解成功”结案".into()
            }
        }
    }
}

pub(super) fn outcome_zh(o: &str) -> &str {
    match o {
        "resolved_by_agreement" => "调解成功",
        "resolved_otherwise" => "以其他方式化解",
        "referred" => "移交处理",
        "not_admissible" => "不予受理",
        "unresolved" => "未能化解",
        other => other,
    }
}

pub(super) fn action_zh(a: &str) -> &str {
    match a {
        "accept" => "受理",
        "assign" => "指派",
        "schedule a session for" => "安排调解会",
        "extend the deadline of" => "延长期限",
        "reach an agreement in" => "达成协议",
        "record a failure of" => "记录调解不成",
        "escalate" => "上报",
        "record a follow-up visit in" => "记录回访",
        "record the performance of" => "记录协议履行情况",
        "apply for judicial confirmation in" => "申请司法确认",
        _ => "执行该操作",
    }
}

pub(super) fn time_field_zh(f: &str) -> &str {
    match f {
        "occurred_at" => "发生时间",
        "accepted_at" => "受理时间",
        "assigned_at" => "指派时间",
        "held_at" => "调解会时间",
        "extended_at" => "延期时间",
        "agreed_at" => "协议时间",
        "failed_at" => "调解不成时间",
        "escalated_at" => "上报时间",
        "intervened_at" => "出警时间",
        "resumed_at" => "复工时间",
        "visited_at" => "回访时间",
        "withdrawn_at" => "撤回时间",
        "closed_at" => "结案时间",
        "reopened_at" => "重启时间",
        "scheduled_for" => "调解会安排时间",
        "new_due" => "新的调解期限",
        "respond_by" => "答复期限",
        "follow_up_due" => "回访期限",
        "incident.occurred_at" => "阻工时间",
        "the case" => "案件发生时间",
        "the agreement" => "协议时间",
        "the incident" => "阻工时间",
        "the end of the stoppage" => "阻工时记录的停工时长结束（如停工时长有误，请先更正）",
        "performance_due" => "履行期限",
        "reported_at" => "履行情况反映时间",
        "urged_at" => "督促时间",
        "referred_at" => "引导起诉时间",
        "applied_at" => "申请司法确认时间",
        "decided_at" => "法院决定时间",
        "replied_at" => "回复时间",
        "the performance report" => "最近一次履行情况记录时间",
        "the urging" => "督促履行时间",
        "the application" => "申请司法确认时间",
        "the escalation" => "上报或引导时间",
        "acceptance" => "受理时间",
        "now" => "当前时间",
        other => other,
    }
}
