//! Names of codes in the interface: Chinese from the domain crate, English here.

use tiaojie_events::case::{
    CaseKind, CaseStatus, IntakeChannel, Outcome, PartyRole, Performance, Route, Satisfaction,
};
use tiaojie_events::metadata::Role;

use super::Lang;

pub fn role(lang: Lang, r: Role) -> &'static str {
    match r {
        Role::Member => lang.t("调解小组成员", "Group member"),
        Role::Leader => lang.t("调解小组组长", "Group leader"),
        Role::Supervisor => lang.t("督查室", "Supervision office"),
        Role::Dashboard => lang.t("大屏", "Dashboard"),
        Role::Admin => lang.t("管理员", "Administrator"),
        Role::System => lang.t("系统", "System"),
    }
}

pub fn role_code(lang: Lang, code: &str) -> String {
    Role::parse(code)
        .map(|r| role(lang, r).to_string())
        .unwrap_or_else(|| code.to_string())
}

pub fn status(lang: Lang, code: &str) -> String {
    let Some(s) = CaseStatus::parse(code) else {
        return code.to_string();
    };
    let en = match s {
        CaseStatus::NotOpened => "Not opened",
        CaseStatus::Reported => "Reported",
        CaseStatus::Accepted => "Accepted",
        CaseStatus::InMediation => "In mediation",
        CaseStatus::Agreed => "Agreed",
        CaseStatus::Failed => "Mediation failed",
        CaseStatus::Escalated => "Escalated",
        CaseStatus::Closed => "Closed",
        CaseStatus::Withdrawn => "Withdrawn",
    };
    lang.t(s.label_zh(), en).to_string()
}

pub fn kind(lang: Lang, code: &str) -> String {
    match code {
        "resident_objection" => {
            lang.t(CaseKind::ResidentObjection.label_zh(), "Resident objection")
        }
        "construction_obstruction" => lang.t(
            CaseKind::ConstructionObstruction.label_zh(),
            "Construction obstruction",
        ),
        other => other,
    }
    .to_string()
}

pub const CHANNELS: [IntakeChannel; 8] = [
    IntakeChannel::Visit,
    IntakeChannel::Phone,
    IntakeChannel::Hotline,
    IntakeChannel::GridWorker,
    IntakeChannel::OnSite,
    IntakeChannel::Petition,
    IntakeChannel::Referral,
    IntakeChannel::Deputy,
];

pub fn channel(lang: Lang, c: IntakeChannel) -> &'static str {
    let en = match c {
        IntakeChannel::Visit => "Walk-in visit",
        IntakeChannel::Phone => "Phone call",
        IntakeChannel::Hotline => "12345 hotline",
        IntakeChannel::GridWorker => "Grid worker",
        IntakeChannel::OnSite => "Found on site",
        IntakeChannel::Petition => "Petition office",
        IntakeChannel::Referral => "Referral",
        IntakeChannel::Deputy => "People's deputy",
    };
    lang.t(c.label_zh(), en)
}

pub const PARTY_ROLES: [PartyRole; 7] = [
    PartyRole::Complainant,
    PartyRole::Respondent,
    PartyRole::Obstructor,
    PartyRole::Contractor,
    PartyRole::PropertyCompany,
    PartyRole::Utility,
    PartyRole::Other,
];

pub fn party_role(lang: Lang, r: PartyRole) -> &'static str {
    let en = match r {
        PartyRole::Complainant => "Complainant",
        PartyRole::Respondent => "Respondent",
        PartyRole::Obstructor => "Obstructor",
        PartyRole::Contractor => "Contractor",
        PartyRole::PropertyCompany => "Property company",
        PartyRole::Utility => "Utility",
        PartyRole::Other => "Other",
    };
    lang.t(r.label_zh(), en)
}

pub const ROUTES: [Route; 5] = [
    Route::JudicialOffice,
    Route::Police,
    Route::Petition,
    Route::Court,
    Route::LeadershipGroup,
];

pub fn route(lang: Lang, r: Route) -> &'static str {
    let en = match r {
        Route::Police => "Police",
        Route::JudicialOffice => "Judicial office",
        Route::Petition => "Petition office",
        Route::Court => "Court",
        Route::LeadershipGroup => "Renovation leadership group",
    };
    lang.t(r.label_zh(), en)
}

pub const PERFORMANCES: [Performance; 3] = [
    Performance::Performed,
    Performance::PartlyPerformed,
    Performance::NotPerformed,
];

pub const SATISFACTIONS: [Satisfaction; 3] = [
    Satisfaction::Satisfied,
    Satisfaction::BasicallySatisfied,
    Satisfaction::Dissatisfied,
];

pub fn satisfaction(lang: Lang, s: Satisfaction) -> &'static str {
    let en = match s {
        Satisfaction::Satisfied => "Satisfied",
        Satisfaction::BasicallySatisfied => "Mostly satisfied",
        Satisfaction::Dissatisfied => "Dissatisfied",
    };
    lang.t(s.label_zh(), en)
}

pub const OUTCOMES: [Outcome; 5] = [
    Outcome::ResolvedByAgreement,
    Outcome::ResolvedOtherwise,
    Outcome::Referred,
    Outcome::NotAdmissible,
    Outcome::Unresolved,
];

pub fn outcome(lang: Lang, o: Outcome) -> &'static str {
    let en = match o {
        Outcome::ResolvedByAgreement => "Resolved by agreement",
        Outcome::ResolvedOtherwise => "Resolved otherwise",
        Outcome::Referred => "Referred",
        Outcome::NotAdmissible => "Not admissible",
        Outcome::Unresolved => "Unresolved",
    };
    lang.t(o.label_zh(), en)
}

pub fn outcome_code(lang: Lang, code: &str) -> String {
    OUTCOMES
        .iter()
        .find(|o| o.as_str() == code)
        .map(|o| outcome(lang, *o).to_string())
        .unwrap_or_else(|| code.to_string())
}

pub fn due_kind(lang: Lang, code: &str) -> &'static str {
    match code {
        "acceptance" => lang.t("受理期限", "acceptance due"),
        "mediation" => lang.t("调解期限", "mediation due"),
        "follow_up" => lang.t("回访期限", "follow-up due"),
        "extension" => lang.t("延长后的调解期限", "extended mediation due"),
        "performance" => lang.t("协议履行期限", "performance due"),
        "judicial_confirmation" => lang.t(
            "司法确认申请期限（协议生效30日内）",
            "judicial confirmation window",
        ),
        "escalation_reply" => lang.t("上报答复期限", "reply to the escalation due"),
        "supervision_order" => lang.t("督办答复期限", "supervision order due"),
        _ => lang.t("期限", "due"),
    }
}

/// The performance of an agreement, by its code.
pub fn performance(lang: Lang, code: &str) -> &'static str {
    match code {
        "performed" => lang.t("已全部履行", "carried out in full"),
        "partly_performed" => lang.t("部分履行", "partly carried out"),
        "not_performed" => lang.t("未履行", "not carried out"),
        _ => lang.t("—", "—"),
    }
}

/// Judicial confirmation, by its state.
pub fn confirmation(lang: Lang, code: &str) -> &'static str {
    match code {
        "applied" => lang.t(
            "已申请司法确认，待法院决定",
            "applied for, awaiting the court",
        ),
        "confirmed" => lang.t("人民法院已确认", "confirmed by the court"),
        "refused" => lang.t("人民法院不予确认", "refused by the court"),
        _ => lang.t("—", "—"),
    }
}

pub fn band(lang: Lang, code: &str) -> &'static str {
    match code {
        "red" => lang.t("红", "red"),
        "amber" => lang.t("黄", "amber"),
        "green" => lang.t("绿", "green"),
        _ => lang.t("无报告", "no reports"),
    }
}

/// An event type in Chinese, by its name alone (an event's own description, with its
/// details, is the domain's `describe_zh`).
pub fn event_zh(type_name: &str) -> &'static str {
    match type_name {
        "CaseOpened" => "登记案件",
        "PartyAdded" => "追加当事人",
        "CaseAccepted" => "受理案件",
        "CaseAssigned" => "指派承办调解员",
        "SessionScheduled" => "安排调解会",
        "SessionHeld" => "召开调解会",
        "DeadlineExtended" => "延长调解期限",
        "AgreementReached" => "达成调解协议",
        "MediationFailed" => "调解不成",
        "CaseEscalated" => "上报/移交",
        "ObstructionIncidentRecorded" => "阻挡施工事件",
        "PoliceInterventionRecorded" => "公安机关出警处置",
        "WorkResumed" => "恢复施工",
        "FollowUpVisitRecorded" => "回访",
        "SupervisionOrderIssued" => "下达督办",
        "SupervisionOrderAnswered" => "答复督办",
        "NoteAdded" => "备注",
        "CorrectionRecorded" => "更正",
        "CaseWithdrawn" => "撤回",
        "CaseClosed" => "结案",
        "CaseReopened" => "重新办理",
        "CaseTransferred" => "随小区移交其他调解小组",
        "PerformanceRecorded" => "协议履行情况",
        "PerformanceUrged" => "督促履行",
        "ReferredToCourt" => "引导至人民法院",
        "JudicialConfirmationApplied" => "申请司法确认",
        "JudicialConfirmationDecided" => "司法确认结果",
        "EscalationReplied" => "上报答复",
        "AttachmentAdded" => "附件",
        _ => "记录",
    }
}

/// An event type in English (Chinese descriptions come from the domain crate).
pub fn event_en(type_name: &str) -> &'static str {
    match type_name {
        "CaseOpened" => "Case opened",
        "PartyAdded" => "Party added",
        "CaseAccepted" => "Case accepted",
        "CaseAssigned" => "Mediator assigned",
        "SessionScheduled" => "Session scheduled",
        "SessionHeld" => "Session held",
        "DeadlineExtended" => "Deadline extended",
        "AgreementReached" => "Agreement reached",
        "MediationFailed" => "Mediation failed",
        "CaseEscalated" => "Escalated",
        "ObstructionIncidentRecorded" => "Obstruction incident",
        "PoliceInterventionRecorded" => "Police intervention",
        "WorkResumed" => "Work resumed",
        "FollowUpVisitRecorded" => "Follow-up visit",
        "SupervisionOrderIssued" => "Supervision order issued",
        "SupervisionOrderAnswered" => "Supervision order answered",
        "NoteAdded" => "Note",
        "CorrectionRecorded" => "Correction",
        "CaseWithdrawn" => "Withdrawn",
        "CaseClosed" => "Closed",
        "CaseReopened" => "Reopened",
        "CaseTransferred" => "Moved to another group with its community",
        "PerformanceRecorded" => "Performance of the agreement",
        "PerformanceUrged" => "Parties urged to perform",
        "ReferredToCourt" => "Referred to the court",
        "JudicialConfirmationApplied" => "Judicial confirmation applied for",
        "JudicialConfirmationDecided" => "Judicial confirmation decided",
        "EscalationReplied" => "Reply to the escalation",
        "AttachmentAdded" => "Attachment",
        "GroupFormed" => "Group formed",
        "MemberAdded" => "Member added",
        "MemberRemoved" => "Member removed",
        "LeaderChanged" => "Leader changed",
        "CommunitiesChanged" => "Communities changed",
        "CommunityTakenOver" => "Community taken over",
        "CommunityHandedOver" => "Community handed over",
        _ => "Event",
    }
}

/// What a step did and what comes next, shown after it succeeded.
pub fn done(lang: Lang, step: &str) -> &'static str {
    let (zh, en) = match step {
        "opened" => (
            "案件已登记。下一步：受理（应在2日内）。",
            "The case is opened. Next: accept it (within 2 days).",
        ),
        "accept" => (
            "已受理。下一步：指派承办调解员，安排调解会。",
            "Accepted. Next: assign a mediator and schedule a session.",
        ),
        "assign" => (
            "已指派承办调解员。下一步：安排调解会。",
            "The mediator is assigned. Next: schedule a session.",
        ),
        "schedule_session" => (
            "调解会已安排。下一步：开会后记录到场人员和调解经过。",
            "The session is scheduled. Next: after it, record who came and what was said.",
        ),
        "record_session" => (
            "调解记录已保存。下一步：达成协议，或记录调解不成；可打印调解笔录签字。",
            "The session is recorded. Next: record the agreement or the failure; print the minutes for signing.",
        ),
        "agreement" => (
            "调解协议已保存。下一步：打印协议书供各方签字盖章，按期回访。",
            "The agreement is recorded. Next: print it for signatures and the seal; follow up on time.",
        ),
        "failure" => (
            "已记录调解不成。下一步：告知当事人其他途径，必要时上报。",
            "The failure is recorded. Next: tell the parties of other routes; escalate where needed.",
        ),
        "follow_up" => (
            "回访已记录。下一步：协议履行完毕后由组长结案。",
            "The visit is recorded. Next: once the agreement is carried out, the leader closes the case.",
        ),
        "incident" => (
            "阻工事件已记录。下一步：记录出警处置或恢复施工。",
            "The incident is recorded. Next: record the police response or the resumption of work.",
        ),
        "resume_work" => ("已记录恢复施工。", "The resumption of work is recorded."),
        "police" => ("出警处置已记录。", "The police response is recorded."),
        "extend_deadline" => (
            "调解期限已延长（经当事人同意）。",
            "The deadline is extended, with the parties' consent.",
        ),
        "escalate" => (
            "已上报/移交。下一步：跟进接收单位的答复。",
            "Escalated. Next: follow the receiving body's reply.",
        ),
        "supervision_order" => (
            "督办已下达。下一步：等待调解小组在期限内答复。",
            "The order is issued. Next: the group answers by the deadline.",
        ),
        "answer_order" => ("督办答复已保存。", "The answer is saved."),
        "add_party" => ("当事人已追加。", "The party is added."),
        "note" => ("备注已保存。", "The note is saved."),
        "correction" => (
            "更正已记录；原记录保留不变，卷宗中一并显示。",
            "The correction is recorded; the original stays, and both show in the file.",
        ),
        "withdrawal" => (
            "已记录撤回。下一步：由组长结案。",
            "The withdrawal is recorded. Next: the leader closes the case.",
        ),
        "close" => (
            "已结案。可打印卷宗归档。",
            "Closed. Print the case file for the archive.",
        ),
        "performance" => (
            "履行情况已记录。未全部履行的，下一步：督促履行；仍不履行的，告知诉权并引导至人民法院。",
            "The performance is recorded. If not carried out in full: urge the parties; if still not, tell them of the right to sue and refer to the court.",
        ),
        "urge_performance" => (
            "已督促履行。下一步：到新的履行期限时记录履行情况。",
            "The parties are urged. Next: record the performance by the new due date.",
        ),
        "court_referral" => (
            "已告知诉权并引导至人民法院。下一步：由组长以“移交处理”结案。",
            "Referred to the court. Next: the leader closes the case as referred.",
        ),
        "confirmation_application" => (
            "司法确认申请已记录。下一步：记录人民法院的决定。",
            "The application is recorded. Next: record the court's decision.",
        ),
        "confirmation_decision" => ("法院决定已记录。", "The court's decision is recorded."),
        "escalation_reply" => (
            "答复已记录。下一步：按答复继续办理或结案。",
            "The reply is recorded. Next: act on it, or close the case.",
        ),
        "attachment" => (
            "附件已上传，已加密保存并记入办理经过。",
            "The file is attached, sealed, and in the timeline.",
        ),
        "reopen" => (
            "案件已重新办理。下一步：安排调解会。",
            "Reopened. Next: schedule a session.",
        ),
        _ => ("已保存。", "Saved."),
    };
    lang.t(zh, en)
}
