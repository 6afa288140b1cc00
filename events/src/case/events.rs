use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::ids::{
    AttachmentId, CategoryCode, CommunityId, GroupId, IncidentId, MemberId, OrderId, PartyId,
    SessionId,
};
use crate::time::Timestamp;
use crate::EVENT_VERSION;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::EnumIter,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum CaseKind {
    /// 居民异议
    ResidentObjection,
    /// 阻挡施工
    ConstructionObstruction,
}

impl CaseKind {
    pub fn as_str(&self) -> &'static str {
        self.into()
    }
    pub fn label_zh(&self) -> &'static str {
        match self {
            CaseKind::ResidentObjection => "居民异议",
            CaseKind::ConstructionObstruction => "阻挡施工",
        }
    }
}

/// How the case came in.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntakeChannel {
    /// 来访
    Visit,
    /// 来电
    Phone,
    /// 12345 热线
    Hotline,
    /// 网格员上报
    GridWorker,
    /// 现场发现
    OnSite,
    /// 信访转办
    Petition,
    /// 上级或部门转办
    Referral,
    /// 人大代表、政协委员反映
    Deputy,
}

impl IntakeChannel {
    pub fn label_zh(&self) -> &'static str {
        match self {
            IntakeChannel::Visit => "来访",
            IntakeChannel::Phone => "来电",
            IntakeChannel::Hotline => "12345热线",
            IntakeChannel::GridWorker => "网格员上报",
            IntakeChannel::OnSite => "现场发现",
            IntakeChannel::Petition => "信访转办",
            IntakeChannel::Referral => "部门转办",
            IntakeChannel::Deputy => "人大代表、政协委员反映",
        }
    }
}

/// The part a party plays in a case.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartyRole {
    /// 申请人 / 反映人
    Complainant,
    /// 被申请人
    Respondent,
    /// 阻工人员
    Obstructor,
    /// 施工单位代表
    Contractor,
    /// 物业公司代表
    PropertyCompany,
    /// 管线单位代表（水、电、气、热、通信）
    Utility,
    /// 其他相关人
    Other,
}

impl PartyRole {
    pub fn label_zh(&self) -> &'static str {
        match self {
            PartyRole::Complainant => "申请人",
            PartyRole::Respondent => "被申请人",
            PartyRole::Obstructor => "阻工人员",
            PartyRole::Contractor => "施工单位",
            PartyRole::PropertyCompany => "物业公司",
            PartyRole::Utility => "管线单位",
            PartyRole::Other => "其他",
        }
    }
}

/// A pseudonymous reference to a party: an id into the party registry and a role. Never a
/// name or a phone number.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyRef {
    pub party_id: PartyId,
    pub role: PartyRole,
}

/// Where a case goes when mediation cannot settle it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// 公安机关
    Police,
    /// 司法所
    JudicialOffice,
    /// 信访
    Petition,
    /// 法院诉讼
    Court,
    /// 改造工作领导小组
    LeadershipGroup,
}

impl Route {
    pub fn label_zh(&self) -> &'static str {
        match self {
            Route::Police => "公安机关",
            Route::JudicialOffice => "司法所",
            Route::Petition => "信访部门",
            Route::Court => "人民法院",
            Route::LeadershipGroup => "改造工作领导小组",
        }
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Satisfaction {
    Satisfied,
    BasicallySatisfied,
    Dissatisfied,
}

impl Satisfaction {
    pub fn label_zh(&self) -> &'static str {
        match self {
            Satisfaction::Satisfied => "满意",
            Satisfaction::BasicallySatisfied => "基本满意",
            Satisfaction::Dissatisfied => "不满意",
        }
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::EnumIter,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Outcome {
    /// 调解成功，协议履行
    ResolvedByAgreement,
    /// 以其他方式化解（自行和解、方案调整等）
    ResolvedOtherwise,
    /// 移交其他途径处理
    Referred,
    /// 不予受理
    NotAdmissible,
    /// 未能化解
    Unresolved,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        self.into()
    }
    pub fn label_zh(&self) -> &'static str {
        match self {
            Outcome::ResolvedByAgreement => "调解成功",
            Outcome::ResolvedOtherwise => "以其他方式化解",
            Outcome::Referred => "移交处理",
            Outcome::NotAdmissible => "不予受理",
            Outcome::Unresolved => "未能化解",
        }
    }
}

/// How an agreement has been carried out, as reported to the committee (履行情况).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::EnumIter,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Performance {
    /// 已全部履行
    Performed,
    /// 部分履行 (what remains is stated)
    PartlyPerformed,
    /// 未履行
    NotPerformed,
}

impl Performance {
    pub fn as_str(&self) -> &'static str {
        self.into()
    }
    pub fn label_zh(&self) -> &'static str {
        match self {
            Performance::Performed => "已全部履行",
            Performance::PartlyPerformed => "部分履行",
            Performance::NotPerformed => "未履行",
        }
    }
}

/// Who attended a mediation session, by role.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Attendee {
    GroupMember {
        member_id: MemberId,
    },
    Party {
        party_id: PartyId,
    },
    /// Anyone else, by role only (e.g. "施工单位项目经理", "律师").
    Other {
        role: String,
    },
}

/// What one party undertakes in an agreement.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Obligation {
    pub party_id: PartyId,
    /// 义务: what the party will do, and by when.
    pub duty: String,
}

/// An obstruction incident as recorded on site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub incident_id: IncidentId,
    pub occurred_at: Timestamp,
    /// Where on site (building, unit, road section).
    pub location: String,
    /// The work item that was stopped (a `work.*` category).
    pub work_item: CategoryCode,
    pub obstructing_parties: Vec<PartyId>,
    /// Minutes of work stopped; whole minutes keep the record exact.
    pub work_stopped_minutes: u32,
    pub police_called: bool,
    pub description: String,
}

/// Serde tags are pinned per variant: they are the stored `event_type`, and renaming a
/// variant must not change what is stored. The golden files in `events/golden/` hold one
/// stored payload per variant; `projections/tests/golden_events.rs` fails when a payload,
/// its tag or its version changes without an upcaster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::EnumDiscriminants)]
#[strum_discriminants(
    name(CaseEventType),
    derive(strum::EnumIter, strum::IntoStaticStr, strum::EnumCount, Hash),
    doc = "The type of a [`CaseEvent`], one per variant: its name is the stored `event_type`."
)]
#[serde(tag = "type")]
pub enum CaseEvent {
    #[serde(rename = "CaseOpened")]
    CaseOpened {
        kind: CaseKind,
        community: CommunityId,
        /// The mediation group that covers the community when the case was opened.
        group: GroupId,
        category: CategoryCode,
        summary: String,
        occurred_at: Timestamp,
        channel: IntakeChannel,
        parties: Vec<PartyRef>,
    },
    #[serde(rename = "PartyAdded")]
    PartyAdded { party: PartyRef },
    #[serde(rename = "CaseAccepted")]
    CaseAccepted { accepted_at: Timestamp },
    #[serde(rename = "CaseAssigned")]
    CaseAssigned {
        assignee: MemberId,
        assigned_at: Timestamp,
    },
    #[serde(rename = "SessionScheduled")]
    SessionScheduled {
        session_id: SessionId,
        scheduled_for: Timestamp,
        location: String,
    },
    #[serde(rename = "SessionHeld")]
    SessionHeld {
        session_id: SessionId,
        held_at: Timestamp,
        attendees: Vec<Attendee>,
        minutes_summary: String,
    },
    #[serde(rename = "DeadlineExtended")]
    DeadlineExtended {
        new_due: Timestamp,
        reason: String,
        consenting_parties: Vec<PartyId>,
        extended_at: Timestamp,
    },
    /// Version 2 adds what Art. 29 of the People's Mediation Law asks of the 协议书;
    /// version 1 payloads are upcast with those parts empty.
    #[serde(rename = "AgreementReached")]
    AgreementReached {
        session_id: SessionId,
        /// 协议内容: the agreed terms.
        terms: String,
        agreed_at: Timestamp,
        follow_up_due: Timestamp,
        /// 纠纷的主要事实、争议事项.
        facts: String,
        /// 各方当事人的责任.
        responsibilities: String,
        /// Each party's obligations.
        obligations: Vec<Obligation>,
        /// 履行方式.
        performance_manner: String,
        /// 履行地点.
        performance_place: String,
        /// 履行期限.
        performance_due: Option<Timestamp>,
        /// 协议书份数 (when not given: one per party and one for the committee).
        copies: Option<u8>,
    },
    #[serde(rename = "MediationFailed")]
    MediationFailed {
        reason: String,
        next_route: Route,
        failed_at: Timestamp,
    },
    #[serde(rename = "CaseEscalated")]
    CaseEscalated {
        route: Route,
        reason: String,
        escalated_at: Timestamp,
    },
    #[serde(rename = "ObstructionIncidentRecorded")]
    ObstructionIncidentRecorded { incident: Incident },
    #[serde(rename = "PoliceInterventionRecorded")]
    PoliceInterventionRecorded {
        incident_id: Option<IncidentId>,
        police_unit: String,
        intervened_at: Timestamp,
        outcome: String,
    },
    #[serde(rename = "WorkResumed")]
    WorkResumed {
        incident_id: IncidentId,
        resumed_at: Timestamp,
    },
    #[serde(rename = "FollowUpVisitRecorded")]
    FollowUpVisitRecorded {
        visited_at: Timestamp,
        satisfaction: Satisfaction,
        notes: Option<String>,
    },
    #[serde(rename = "SupervisionOrderIssued")]
    SupervisionOrderIssued {
        order_id: OrderId,
        office: String,
        instructions: String,
        respond_by: Timestamp,
        issued_at: Timestamp,
    },
    #[serde(rename = "SupervisionOrderAnswered")]
    SupervisionOrderAnswered {
        order_id: OrderId,
        answer: String,
        answered_at: Timestamp,
    },
    #[serde(rename = "NoteAdded")]
    NoteAdded { note: String },
    #[serde(rename = "CorrectionRecorded")]
    CorrectionRecorded {
        /// The sequence number (version) of the event this corrects.
        corrects_sequence: u64,
        field: String,
        corrected_value: String,
        reason: String,
    },
    #[serde(rename = "CaseWithdrawn")]
    CaseWithdrawn {
        reason: String,
        withdrawn_at: Timestamp,
    },
    #[serde(rename = "CaseClosed")]
    CaseClosed {
        outcome: Outcome,
        closed_at: Timestamp,
        summary: Option<String>,
    },
    #[serde(rename = "CaseReopened")]
    CaseReopened {
        reason: String,
        reopened_at: Timestamp,
    },
    /// How the agreement has been carried out, as reported (履行情况), and by whom.
    #[serde(rename = "PerformanceRecorded")]
    PerformanceRecorded {
        performance: Performance,
        /// What remains to be done (required when partly performed).
        remaining: Option<String>,
        /// Who reported it (e.g. 申请人本人, 施工单位项目经理, 调解员回访核实).
        reported_by: String,
        reported_at: Timestamp,
    },
    /// The committee urged the parties to carry out the agreement (督促履行), with a new
    /// due date.
    #[serde(rename = "PerformanceUrged")]
    PerformanceUrged {
        /// How and whom the committee urged.
        method: String,
        /// The new date by which the agreement is to be carried out.
        performance_due: Timestamp,
        urged_at: Timestamp,
    },
    /// The agreement was not carried out: the dispute goes to the court, and the party was
    /// told of the right to sue (告知诉权).
    #[serde(rename = "ReferredToCourt")]
    ReferredToCourt {
        court: String,
        right_to_sue_told: bool,
        reason: String,
        referred_at: Timestamp,
    },
    /// The parties applied to a court for judicial confirmation of the agreement (司法确认),
    /// within 30 days of it taking effect.
    #[serde(rename = "JudicialConfirmationApplied")]
    JudicialConfirmationApplied {
        court: String,
        applied_at: Timestamp,
    },
    /// The court's decision on the application: confirmed, or refused with its reason.
    #[serde(rename = "JudicialConfirmationDecided")]
    JudicialConfirmationDecided {
        confirmed: bool,
        reason: Option<String>,
        decided_at: Timestamp,
    },
    /// The receiving level's reply to an escalation or to a failed mediation's next route
    /// (领导小组、司法所、公安机关、信访部门、人民法院的回复).
    #[serde(rename = "EscalationReplied")]
    EscalationReplied {
        route: Route,
        reply: String,
        replied_at: Timestamp,
    },
    /// A file attached to the case. The bytes live in the store's attachment table, sealed
    /// with the case's key; the event holds their hashes, so the chain covers the content.
    #[serde(rename = "AttachmentAdded")]
    AttachmentAdded {
        attachment_id: AttachmentId,
        /// What the content is, as sniffed from its bytes (image/jpeg, image/png,
        /// application/pdf).
        media_type: String,
        /// Bytes of the content as stored (location data removed from photos).
        size: u64,
        /// SHA-256 of that content, in hex.
        sha256: String,
        /// SHA-256 of the sealed bytes in the store, in hex: `audit verify` checks it
        /// without any key.
        stored_sha256: String,
        caption: Option<String>,
        /// The sequence of the recorded step it documents (an incident, a session, the
        /// agreement).
        documents: Option<u64>,
    },
    /// The case's community moved to another mediation group, and the case with it. An
    /// assignee who is not a member of the new group is unassigned.
    #[serde(rename = "CaseTransferred")]
    CaseTransferred {
        from_group: GroupId,
        to_group: GroupId,
        reason: String,
        unassigned: Option<MemberId>,
    },
}

impl CaseEventType {
    /// The payload version of each event type. A type's version is bumped only together
    /// with a golden file of the new shape and an upcaster from the old one (see
    /// `projections/src/upcast.rs`). Every type is at the first release's version.
    pub fn version(self) -> &'static str {
        match self {
            CaseEventType::CaseOpened => EVENT_VERSION,
            CaseEventType::PartyAdded => EVENT_VERSION,
            CaseEventType::CaseAccepted => EVENT_VERSION,
            CaseEventType::CaseAssigned => EVENT_VERSION,
            CaseEventType::SessionScheduled => EVENT_VERSION,
            CaseEventType::SessionHeld => EVENT_VERSION,
            CaseEventType::DeadlineExtended => EVENT_VERSION,
            CaseEventType::AgreementReached => "2",
            CaseEventType::MediationFailed => EVENT_VERSION,
            CaseEventType::CaseEscalated => EVENT_VERSION,
            CaseEventType::ObstructionIncidentRecorded => EVENT_VERSION,
            CaseEventType::PoliceInterventionRecorded => EVENT_VERSION,
            CaseEventType::WorkResumed => EVENT_VERSION,
            CaseEventType::FollowUpVisitRecorded => EVENT_VERSION,
            CaseEventType::SupervisionOrderIssued => EVENT_VERSION,
            CaseEventType::SupervisionOrderAnswered => EVENT_VERSION,
            CaseEventType::NoteAdded => EVENT_VERSION,
            CaseEventType::CorrectionRecorded => EVENT_VERSION,
            CaseEventType::CaseWithdrawn => EVENT_VERSION,
            CaseEventType::CaseClosed => EVENT_VERSION,
            CaseEventType::CaseReopened => EVENT_VERSION,
            CaseEventType::CaseTransferred => EVENT_VERSION,
            CaseEventType::PerformanceRecorded => EVENT_VERSION,
            CaseEventType::PerformanceUrged => EVENT_VERSION,
            CaseEventType::ReferredToCourt => EVENT_VERSION,
            CaseEventType::JudicialConfirmationApplied => EVENT_VERSION,
            CaseEventType::JudicialConfirmationDecided => EVENT_VERSION,
            CaseEventType::EscalationReplied => EVENT_VERSION,
            CaseEventType::AttachmentAdded => EVENT_VERSION,
        }
    }

    /// The stored `event_type`.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

impl CaseEvent {
    /// The stored `event_type`: the variant's name, which is also its pinned serde tag.
    pub fn type_name(&self) -> &'static str {
        CaseEventType::from(self).into()
    }

    /// The payload version of this event's type.
    pub fn version(&self) -> &'static str {
        CaseEventType::from(self).version()
    }

    /// The business time of the event, when it has one (when it happened on site).
    pub fn business_time(&self) -> Option<Timestamp> {
        Some(match self {
            CaseEvent::CaseOpened { occurred_at, .. } => *occurred_at,
            CaseEvent::CaseAccepted { accepted_at } => *accepted_at,
            CaseEvent::CaseAssigned { assigned_at, .. } => *assigned_at,
            CaseEvent::SessionHeld { held_at, .. } => *held_at,
            CaseEvent::DeadlineExtended { extended_at, .. } => *extended_at,
            CaseEvent::AgreementReached { agreed_at, .. } => *agreed_at,
            CaseEvent::MediationFailed { failed_at, .. } => *failed_at,
            CaseEvent::CaseEscalated { escalated_at, .. } => *escalated_at,
            CaseEvent::ObstructionIncidentRecorded { incident } => incident.occurred_at,
            CaseEvent::PoliceInterventionRecorded { intervened_at, .. } => *intervened_at,
            CaseEvent::WorkResumed { resumed_at, .. } => *resumed_at,
            CaseEvent::FollowUpVisitRecorded { visited_at, .. } => *visited_at,
            CaseEvent::SupervisionOrderIssued { issued_at, .. } => *issued_at,
            CaseEvent::SupervisionOrderAnswered { answered_at, .. } => *answered_at,
            CaseEvent::CaseWithdrawn { withdrawn_at, .. } => *withdrawn_at,
            CaseEvent::CaseClosed { closed_at, .. } => *closed_at,
            CaseEvent::CaseReopened { reopened_at, .. } => *reopened_at,
            CaseEvent::PerformanceRecorded { reported_at, .. } => *reported_at,
            CaseEvent::PerformanceUrged { urged_at, .. } => *urged_at,
            CaseEvent::ReferredToCourt { referred_at, .. } => *referred_at,
            CaseEvent::JudicialConfirmationApplied { applied_at, .. } => *applied_at,
            CaseEvent::JudicialConfirmationDecided { decided_at, .. } => *decided_at,
            CaseEvent::EscalationReplied { replied_at, .. } => *replied_at,
            CaseEvent::PartyAdded { .. }
            | CaseEvent::SessionScheduled { .. }
            | CaseEvent::NoteAdded { .. }
            | CaseEvent::CorrectionRecorded { .. }
            | CaseEvent::CaseTransferred { .. }
            | CaseEvent::AttachmentAdded { .. } => return None,
        })
    }

    /// A one-line description in Chinese for the audit trail. It names kinds, counts and
    /// routes, never free text, so that it can be shown to every role.
    pub fn describe_zh(&self) -> String {
        match self {
            CaseEvent::CaseOpened {
                kind,
                channel,
                parties,
                ..
            } => format!(
                "登记{}案件（{}），当事人{}方",
                kind.label_zh(),
                channel.label_zh(),
                parties.len()
            ),
            CaseEvent::PartyAdded { party } => format!("追加当事人（{}）", party.role.label_zh()),
            CaseEvent::CaseAccepted { .. } => "受理案件".into(),
            CaseEvent::CaseAssigned { .. } => "指派承办调解员".into(),
            CaseEvent::SessionScheduled { .. } => "安排调解会".into(),
            CaseEvent::SessionHeld { attendees, .. } => {
                format!("召开调解会，出席{}人", attendees.len())
            }
            CaseEvent::DeadlineExtended {
                consenting_parties, ..
            } => {
                format!("经{}方当事人同意延长调解期限", consenting_parties.len())
            }
            CaseEvent::AgreementReached { .. } => "达成调解协议".into(),
            CaseEvent::MediationFailed { next_route, .. } => {
                format!("调解不成，引导至{}", next_route.label_zh())
            }
            CaseEvent::CaseEscalated { route, .. } => format!("上报/移交{}", route.label_zh()),
            CaseEvent::ObstructionIncidentRecorded { incident } => {
                let minutes = incident.work_stopped_minutes;
                let stop = if minutes == 0 {
                    "未停工".to_string()
                } else if minutes % 60 == 0 {
                    format!("停工{}小时", minutes / 60)
                } else {
                    format!("停工{:.1}小时", f64::from(minutes) / 60.0)
                };
                format!(
                    "记录阻挡施工事件：{}，阻工{}人，{}",
                    stop,
                    incident.obstructing_parties.len(),
                    if incident.police_called {
                        "已报警"
                    } else {
                        "未报警"
                    }
                )
            }
            CaseEvent::PoliceInterventionRecorded { .. } => "记录公安机关出警处置".into(),
            CaseEvent::WorkResumed { .. } => "恢复施工".into(),
            CaseEvent::FollowUpVisitRecorded { satisfaction, .. } => {
                format!("回访：{}", satisfaction.label_zh())
            }
            CaseEvent::SupervisionOrderIssued { .. } => "下达督办".into(),
            CaseEvent::SupervisionOrderAnswered { .. } => "答复督办".into(),
            CaseEvent::NoteAdded { .. } => "添加备注".into(),
            CaseEvent::CorrectionRecorded {
                corrects_sequence, ..
            } => {
                format!("更正第{corrects_sequence}条记录")
            }
            CaseEvent::CaseWithdrawn { .. } => "申请人撤回".into(),
            CaseEvent::CaseClosed { outcome, .. } => format!("结案：{}", outcome.label_zh()),
            CaseEvent::CaseReopened { .. } => "重新启动案件".into(),
            CaseEvent::PerformanceRecorded { performance, .. } => {
                format!("记录协议履行情况：{}", performance.label_zh())
            }
            CaseEvent::PerformanceUrged { .. } => "督促履行调解协议".into(),
            CaseEvent::ReferredToCourt { .. } => "协议未履行，告知诉权，引导至人民法院".into(),
            CaseEvent::JudicialConfirmationApplied { .. } => "申请司法确认".into(),
            CaseEvent::JudicialConfirmationDecided { confirmed, .. } => {
                if *confirmed {
                    "人民法院确认调解协议有效".into()
                } else {
                    "人民法院裁定不予确认".into()
                }
            }
            CaseEvent::EscalationReplied { route, .. } => format!("{}回复", route.label_zh()),
            CaseEvent::AttachmentAdded { media_type, .. } => {
                if media_type.starts_with("image/") {
                    "添加附件（照片）".into()
                } else {
                    "添加附件（文件）".into()
                }
            }
            CaseEvent::CaseTransferred { unassigned, .. } => {
                if unassigned.is_some() {
                    "随小区移交其他矛盾调解小组（原承办人不在新小组，已取消指派）".into()
                } else {
                    "随小区移交其他矛盾调解小组".into()
                }
            }
        }
    }
}

/// The free-text fields of each case event, as paths into its JSON payload. They can name
/// people, so they are stored sealed with the case's key (and can be erased with it).
/// Everything else in a case event is ids, codes, enums, numbers and times.
pub fn free_text_fields(event_type: &str) -> &'static [&'static str] {
    match event_type {
        "CaseOpened" => &["summary"],
        "SessionScheduled" => &["location"],
        "SessionHeld" => &["minutes_summary"],
        "DeadlineExtended" => &["reason"],
        "AgreementReached" => &[
            "terms",
            "facts",
            "responsibilities",
            "obligations[].duty",
            "performance_manner",
            "performance_place",
        ],
        "MediationFailed" => &["reason"],
        "CaseEscalated" => &["reason"],
        "ObstructionIncidentRecorded" => &["incident.location", "incident.description"],
        "PoliceInterventionRecorded" => &["outcome"],
        "FollowUpVisitRecorded" => &["notes"],
        "SupervisionOrderIssued" => &["instructions"],
        "SupervisionOrderAnswered" => &["answer"],
        "NoteAdded" => &["note"],
        "CorrectionRecorded" => &["field", "corrected_value", "reason"],
        "CaseWithdrawn" => &["reason"],
        "CaseClosed" => &["summary"],
        "CaseReopened" => &["reason"],
        "CaseTransferred" => &["reason"],
        "PerformanceRecorded" => &["remaining", "reported_by"],
        "PerformanceUrged" => &["method"],
        "ReferredToCourt" => &["reason"],
        "JudicialConfirmationDecided" => &["reason"],
        "EscalationReplied" => &["reply"],
        "AttachmentAdded" => &["caption"],
        _ => &[],
    }
}

impl DomainEvent for CaseEvent {
    fn event_type(&self) -> String {
        self.type_name().to_string()
    }

    fn event_version(&self) -> String {
        self.version().to_string()
    }
}
