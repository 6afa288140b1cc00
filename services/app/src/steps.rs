//! One definition per step on a case.
//!
//! Each entry of [`CASE_STEPS`] holds everything about one step: the domain's
//! [`CaseStep`], who may run it, its JSON path and body, the doc line of its OpenAPI entry,
//! the case page's form (title, fields with Chinese and English labels, where each field's
//! choices come from) and, in the body's [`StepBody::command`], the defaults and the
//! conversion to the domain command. Everything else is derived from this table:
//! - the JSON routes and their OpenAPI entries (`http::steps`);
//! - the case page's forms and their handling (`web::desk`);
//! - the permission table ([`may_run`]), checked before a body is read and again by the
//!   command service.
//!
//! When a step is offered is the domain's business ([`tiaojie_events::case::Case::can`]).
//! Adding a step means adding its command to the domain and one entry here.
//!
//! The application layer knows no HTTP: a body that does not fit comes back as
//! [`StepError::Body`] with the path of the field, and each edge words it its own way.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tiaojie_events::case::*;
use tiaojie_events::metadata::Role;
use tiaojie_events::{CategoryCode, IncidentId, MemberId, OrderId, PartyId, SessionId, Timestamp};
use utoipa::openapi::{RefOr, Schema};
use utoipa::ToSchema;

use crate::app_error::AppError;
use crate::auth::Actor;

/// A label in Chinese and in English.
pub type Words = (&'static str, &'static str);

/// Who may run a step (members and leaders only on cases of their group's communities,
/// which the command service checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// Members and leaders of the case's group.
    Group,
    /// The group's leader only.
    Leader,
    /// A supervision office only.
    Supervisor,
}

/// Where a field's choices come from: the case page fills them from the case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choices {
    /// The group's members.
    Members,
    /// The case's parties.
    Parties,
    /// Sessions scheduled and not yet held.
    SessionsOpen,
    /// Sessions held.
    SessionsHeld,
    /// Every incident of the case.
    Incidents,
    /// Incidents whose stopped work has not resumed.
    StoppedIncidents,
    /// Supervision orders not yet answered.
    OpenOrders,
    /// The programme's work items.
    WorkItems,
    /// Where a case can go next.
    Routes,
    Satisfactions,
    /// How an agreement was carried out.
    Performances,
    /// A court's decision on judicial confirmation.
    CourtDecisions,
    Outcomes,
    PartyRoles,
    PartyKinds,
    /// The parts of a record a correction can name ([`CORRECTABLE_FIELDS`]).
    CorrectableFields,
    Genders,
    /// The 56 ethnic groups.
    Ethnicities,
    IdTypes,
    /// Group members and parties, as attendees.
    Attendees,
    /// The case's recorded events, by sequence (a number in the body).
    Records,
    /// The kinds of organisation a group member comes from.
    OrgRoles,
    /// The members of the group.
    GroupMembers,
    /// The programme's communities not yet covered by the group.
    OtherCommunities,
    /// The communities the group covers.
    GroupCommunities,
}

/// How a field is entered, and how the form's text becomes the body's JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// One line.
    Text,
    /// Several lines.
    Area,
    /// A local (Beijing) time; `now` prefills the current time.
    Time { now: bool },
    /// Hours with decimals, as people say them, sent as whole minutes.
    Hours,
    /// A calendar date (`YYYY-MM-DD`).
    Date,
    /// One text per party of the case, sent as `[{"party_id", "duty"}]` (an agreement's
    /// obligations); a party left empty is left out.
    PerParty,
    /// One of a list; `blank` is the first, empty choice.
    Choice { from: Choices, blank: Option<Words> },
    /// Several of a list (check boxes).
    Several(Choices),
    /// One check box.
    Flag,
    /// Roles typed as text, comma-separated: attendees who are neither members nor parties.
    OtherAttendees,
}

/// One field of a step's form.
#[derive(Debug, Clone, Copy)]
pub struct FieldDef {
    /// The form field's name.
    pub name: &'static str,
    /// The body's key it fills (usually the same name).
    pub key: &'static str,
    pub label: Words,
    pub input: Input,
    pub required: bool,
    pub hint: Option<Words>,
}

pub(crate) const fn field(name: &'static str, label: Words, input: Input) -> FieldDef {
    FieldDef {
        name,
        key: name,
        label,
        input,
        required: false,
        hint: None,
    }
}

impl FieldDef {
    pub(crate) const fn required(mut self) -> Self {
        self.required = true;
        self
    }

    pub(crate) const fn hint(mut self, hint: Words) -> Self {
        self.hint = Some(hint);
        self
    }

    pub(crate) const fn key(mut self, key: &'static str) -> Self {
        self.key = key;
        self
    }
}

pub(crate) const fn text(name: &'static str, label: Words) -> FieldDef {
    field(name, label, Input::Text)
}

pub(crate) const fn area(name: &'static str, label: Words) -> FieldDef {
    field(name, label, Input::Area)
}

/// A business time, prefilled with now and left to default to now.
pub(crate) const fn at(name: &'static str, label: Words) -> FieldDef {
    field(name, label, Input::Time { now: true })
}

pub(crate) const fn choice(name: &'static str, label: Words, from: Choices) -> FieldDef {
    field(name, label, Input::Choice { from, blank: None })
}

pub(crate) const fn choice_or(
    name: &'static str,
    label: Words,
    from: Choices,
    blank: Words,
) -> FieldDef {
    field(
        name,
        label,
        Input::Choice {
            from,
            blank: Some(blank),
        },
    )
}

pub(crate) const CHOOSE: Words = ("— 请选择 —", "— choose —");

/// The parts of recorded steps a correction names, in the order a mediator meets them.
pub const CORRECTABLE_FIELDS: &[&str] = &[
    "summary",
    "occurred_at",
    "accepted_at",
    "scheduled_for",
    "location",
    "held_at",
    "minutes_summary",
    "facts",
    "responsibilities",
    "terms",
    "obligations",
    "performance_manner",
    "performance_place",
    "performance_due",
    "agreed_at",
    "reason",
    "description",
    "work_stopped_minutes",
    "police_unit",
    "outcome",
    "intervened_at",
    "resumed_at",
    "visited_at",
    "satisfaction",
    "notes",
    "note",
    "instructions",
    "answer",
    "closed_at",
    "remaining",
    "reported_by",
    "reported_at",
    "method",
    "court",
    "reply",
];

/// The fields of a party's registration (after its role and kind), as the People's
/// Mediation registration form asks: the new-case page's party rows and the "add a party"
/// form. `parties::validate` checks them.
pub const PARTY_FIELDS: &[FieldDef] = &[
    text("name", ("姓名或名称", "Name")).required(),
    text("phone", ("联系电话", "Phone")).hint((
        "手机11位，或区号-号码（0951-5012345）",
        "Mobile (11 digits), or area code-number",
    )),
    choice_or("gender", ("性别", "Gender"), Choices::Genders, ("—", "—")),
    choice_or(
        "ethnicity",
        ("民族", "Ethnicity"),
        Choices::Ethnicities,
        ("—", "—"),
    ),
    field("birth_date", ("出生日期", "Date of birth"), Input::Date),
    text(
        "age",
        ("年龄（不知出生日期时）", "Age (without a date of birth)"),
    ),
    choice_or(
        "id_type",
        ("证件类型", "ID type"),
        Choices::IdTypes,
        ("—", "—"),
    ),
    text("id_number", ("证件号码", "ID number")).hint((
        "居民身份证号码按校验位核对",
        "A resident ID number is checked with its check digit",
    )),
    text("building", ("楼栋", "Building")),
    text("unit", ("单元", "Unit")),
    text("household", ("户（室）", "Room")),
    text("address", ("其他住址", "Other address")),
    text("workplace", ("工作单位", "Workplace")),
    text(
        "organisation",
        ("单位名称（单位当事人或代表）", "Organisation"),
    ),
    text(
        "legal_representative",
        ("法定代表人（单位当事人）", "Legal representative"),
    ),
    text("agent", ("委托代理人", "Agent")),
];

/// A part of the path that names something inside the case (a session, an order). On the
/// case page it is a field of the form.
#[derive(Debug, Clone, Copy)]
pub struct Sub {
    /// The path parameter.
    pub param: &'static str,
    /// What it names, for "not found".
    pub what: &'static str,
    pub description: &'static str,
}

/// How the case page builds the step's body from its form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormShape {
    /// Field by field, as the fields say.
    Fields,
    /// The form registers a new party (role, kind and the registry's fields), and the step
    /// adds it to the case.
    NewParty,
}

/// A step's body, checked and typed, ready for the command service.
#[derive(Debug)]
pub struct Parsed<C = CaseCommand> {
    pub command: C,
    /// The id of what the step creates inside the case (a session, an incident, an order).
    pub created: Option<String>,
    /// The body as understood, for the idempotency fingerprint.
    pub body: serde_json::Value,
}

/// Why a body was refused.
#[derive(Debug)]
pub enum StepError {
    /// It does not fit the step's body: `path` names the field (`parties[0].role`).
    Body {
        path: String,
        message: String,
    },
    App(AppError),
}

impl From<AppError> for StepError {
    fn from(e: AppError) -> Self {
        Self::App(e)
    }
}

/// What a step's conversion may use besides its body.
pub struct StepContext<'a> {
    pub now: Timestamp,
    pub follow_up_days: i64,
    pub actor: &'a Actor,
    /// The value of the step's [`Sub`] path part, if it has one.
    pub sub: Option<&'a str>,
}

impl<'a> StepContext<'a> {
    /// The context of a step run now by `actor`, with the value of its path part.
    pub fn of(app: &crate::app::App, actor: &'a Actor, sub: Option<&'a str>) -> Self {
        Self {
            now: app.now(),
            follow_up_days: app.settings.follow_up_days,
            actor,
            sub,
        }
    }

    /// The path part, parsed; "not found", naming the path parameter, when it does not
    /// parse.
    pub(crate) fn sub<T>(
        &self,
        param: &str,
        what: &str,
        parse: impl Fn(&str) -> Result<T, tiaojie_events::ids::IdError>,
    ) -> Result<T, AppError> {
        self.sub
            .and_then(|s| parse(s).ok())
            .ok_or_else(|| AppError::not_found(what).with_field(param, format!("no such {what}")))
    }
}

/// A step's JSON body and its conversion to the domain command.
pub trait StepBody: DeserializeOwned + Serialize + ToSchema + 'static {
    /// The aggregate's command type.
    type Command;
    /// The command, with the step's defaults applied, and the id of anything it creates.
    fn command(self, cx: &StepContext<'_>) -> Result<(Self::Command, Option<String>), AppError>;
}

/// A step's body schema for the OpenAPI document: its name, its schema, and the schemas it
/// refers to.
pub struct BodySchema {
    pub name: Cow<'static, str>,
    pub schema: RefOr<Schema>,
    pub refers_to: Vec<(String, RefOr<Schema>)>,
}

pub(crate) fn parse<B: StepBody>(
    v: serde_json::Value,
    cx: &StepContext<'_>,
) -> Result<Parsed<B::Command>, StepError> {
    let body: B = serde_path_to_error::deserialize(v).map_err(|e| StepError::Body {
        path: e.path().to_string(),
        message: e.inner().to_string(),
    })?;
    let understood = serde_json::to_value(&body).unwrap_or_default();
    let (command, created) = body.command(cx)?;
    Ok(Parsed {
        command,
        created,
        body: understood,
    })
}

pub(crate) fn schema<B: StepBody>() -> BodySchema {
    let mut refers_to = Vec::new();
    B::schemas(&mut refers_to);
    BodySchema {
        name: B::name(),
        schema: B::schema(),
        refers_to,
    }
}

/// One step, defined once.
pub struct CaseStepDef {
    pub step: CaseStep,
    pub who: Who,
    /// The JSON route (POST).
    pub path: &'static str,
    pub sub: Option<Sub>,
    /// The OpenAPI entry's summary.
    pub doc: &'static str,
    /// The form's title and its button.
    pub title: Words,
    pub submit: Words,
    /// Shown as a step that ends something.
    pub danger: bool,
    pub form: FormShape,
    /// The form's fields, in order. A field whose key is the [`Sub`]'s parameter fills
    /// the path part instead of the body.
    pub fields: &'static [FieldDef],
    /// Reads and converts the body.
    pub parse: ParseFn,
    pub schema: fn() -> BodySchema,
}

impl CaseStepDef {
    /// The form's fields: a form that registers a party adds the registry's
    /// ([`PARTY_FIELDS`]) to the step's own.
    pub fn form_fields(&self) -> impl Iterator<Item = &'static FieldDef> {
        let registry: &'static [FieldDef] = if self.form == FormShape::NewParty {
            PARTY_FIELDS
        } else {
            &[]
        };
        self.fields.iter().chain(registry)
    }

    /// The form field that fills the path part, if any.
    pub fn sub_field(&self) -> Option<&FieldDef> {
        let sub = self.sub?;
        self.fields.iter().find(|f| f.key == sub.param)
    }
}

/// Reads and converts a step's body.
pub type ParseFn<C = CaseCommand> =
    for<'a, 'b> fn(serde_json::Value, &'a StepContext<'b>) -> Result<Parsed<C>, StepError>;

macro_rules! body {
    ($b:ty) => {
        (parse::<$b> as ParseFn, schema::<$b> as fn() -> BodySchema)
    };
}

const fn def(
    step: CaseStep,
    who: Who,
    path: &'static str,
    doc: &'static str,
    (title, submit): (Words, Words),
    fields: &'static [FieldDef],
    (parse, schema): (ParseFn, fn() -> BodySchema),
) -> CaseStepDef {
    CaseStepDef {
        step,
        who,
        path,
        sub: None,
        doc,
        title,
        submit,
        danger: false,
        form: FormShape::Fields,
        fields,
        parse,
        schema,
    }
}

impl CaseStepDef {
    const fn sub(mut self, sub: Sub) -> Self {
        self.sub = Some(sub);
        self
    }

    const fn danger(mut self) -> Self {
        self.danger = true;
        self
    }

    const fn form(mut self, form: FormShape) -> Self {
        self.form = form;
        self
    }
}

/// Every step on an opened case, in the order the case page shows them.
pub static CASE_STEPS: [CaseStepDef; 26] = [
    def(
        CaseStep::Accept,
        Who::Group,
        "/api/v1/cases/{id}/acceptance",
        "Accepts a reported case (受理).",
        (("受理", "Accept"), ("受理案件", "Accept the case")),
        &[at("accepted_at", ("受理时间", "Accepted at"))],
        body!(AcceptBody),
    ),
    def(
        CaseStep::Assign,
        Who::Leader,
        "/api/v1/cases/{id}/assignment",
        "Assigns the case to a member of its group (leader only).",
        (("指派承办人", "Assign a mediator"), ("指派", "Assign")),
        &[
            choice_or(
                "assignee",
                ("承办调解员", "Mediator"),
                Choices::Members,
                CHOOSE,
            )
            .required(),
            at("assigned_at", ("指派时间", "Assigned at")),
        ],
        body!(AssignBody),
    ),
    def(
        CaseStep::ScheduleSession,
        Who::Group,
        "/api/v1/cases/{id}/sessions",
        "Schedules a mediation session (调解会); answers its id.",
        (("安排调解会", "Schedule a session"), ("安排", "Schedule")),
        &[
            field(
                "scheduled_for",
                ("调解时间", "When"),
                Input::Time { now: false },
            )
            .required(),
            text("location", ("地点", "Where")).required(),
        ],
        body!(ScheduleSessionBody),
    ),
    def(
        CaseStep::RecordSession,
        Who::Group,
        "/api/v1/cases/{id}/sessions/{sid}/record",
        "Records a scheduled session as held: attendees by role and the minutes.",
        (
            ("记录调解会", "Record a session"),
            ("保存调解记录", "Save the record"),
        ),
        &[
            choice("session_id", ("调解会", "Session"), Choices::SessionsOpen)
                .key("sid")
                .required(),
            at("held_at", ("召开时间", "Held at")),
            field(
                "attendees",
                ("出席人员", "Present"),
                Input::Several(Choices::Attendees),
            )
            .hint(("至少一名调解小组成员", "at least one group member")),
            field(
                "other_attendees",
                (
                    "其他出席人员（身份，用逗号分隔）",
                    "Others present (roles, comma-separated)",
                ),
                Input::OtherAttendees,
            )
            .key("attendees"),
            area("minutes_summary", ("会议纪要", "Minutes")).required(),
        ],
        body!(RecordSessionBody),
    )
    .sub(Sub {
        param: "sid",
        what: "session",
        description: "Session id",
    }),
    def(
        CaseStep::Agreement,
        Who::Group,
        "/api/v1/cases/{id}/agreement",
        "Records the agreement (调解协议) reached at a held session.",
        (
            ("达成调解协议", "Record the agreement"),
            ("保存协议", "Save the agreement"),
        ),
        &[
            choice(
                "session_id",
                ("达成协议的调解会", "Session"),
                Choices::SessionsHeld,
            )
            .required(),
            area(
                "facts",
                (
                    "纠纷主要事实、争议事项",
                    "Main facts and matters in dispute",
                ),
            )
            .required(),
            area(
                "responsibilities",
                ("各方责任", "Each side's responsibility"),
            ),
            area("terms", ("协议内容", "Agreed terms")).required(),
            field(
                "obligations",
                ("当事人义务", "Obligations"),
                Input::PerParty,
            )
            .hint((
                "写明每一方做什么、何时做完；不承担义务的一方可不填",
                "what each party does and by when; leave empty for a party without one",
            )),
            text("performance_manner", ("履行方式", "How it is carried out")).required(),
            text("performance_place", ("履行地点", "Where")),
            field(
                "performance_due",
                ("履行期限", "Carried out by"),
                Input::Time { now: false },
            )
            .required(),
            at("agreed_at", ("达成时间", "Agreed at")),
            field(
                "follow_up_due",
                ("回访期限", "Follow-up due"),
                Input::Time { now: false },
            )
            .hint(("不填则按规定天数", "default period when left empty")),
        ],
        body!(AgreementBody),
    ),
    def(
        CaseStep::Failure,
        Who::Group,
        "/api/v1/cases/{id}/failure",
        "Records that mediation failed, and where the case goes next.",
        (
            ("调解不成", "Mediation failed"),
            ("记录调解不成", "Record the failure"),
        ),
        &[
            choice("next_route", ("引导途径", "Next route"), Choices::Routes).required(),
            area("reason", ("理由", "Reason")).required(),
            at("failed_at", ("时间", "When")),
        ],
        body!(FailureBody),
    ),
    def(
        CaseStep::FollowUp,
        Who::Group,
        "/api/v1/cases/{id}/follow-ups",
        "Records a follow-up visit (回访).",
        (("回访", "Follow-up visit"), ("保存回访", "Save the visit")),
        &[
            choice(
                "satisfaction",
                ("满意度", "Satisfaction"),
                Choices::Satisfactions,
            )
            .required(),
            area("notes", ("回访记录", "Notes")),
            at("visited_at", ("回访时间", "Visited at")),
        ],
        body!(FollowUpBody),
    ),
    def(
        CaseStep::Performance,
        Who::Group,
        "/api/v1/cases/{id}/performance",
        "Records how the agreement is carried out (履行情况): in full, in part (with what remains), or not at all.",
        (
            ("记录协议履行情况", "Record the performance"),
            ("保存履行情况", "Save"),
        ),
        &[
            choice_or(
                "performance",
                ("履行情况", "Performance"),
                Choices::Performances,
                CHOOSE,
            )
            .required(),
            area("remaining", ("尚未履行的内容", "What remains")).hint((
                "部分履行时必填",
                "required when partly carried out",
            )),
            text("reported_by", ("反映人", "Reported by"))
                .required()
                .hint((
                    "如：申请人本人、施工单位项目经理、调解员回访核实",
                    "e.g. the complainant, the contractor's manager, the mediator's visit",
                )),
            at("reported_at", ("反映时间", "When")),
        ],
        body!(PerformanceBody),
    ),
    def(
        CaseStep::UrgePerformance,
        Who::Group,
        "/api/v1/cases/{id}/performance-urgings",
        "Urges the parties to carry out the agreement (督促履行), with a new due date.",
        (("督促履行", "Urge performance"), ("记录督促", "Record")),
        &[
            area("method", ("督促方式和内容", "How, and whom")).required(),
            field(
                "performance_due",
                ("新的履行期限", "New due date"),
                Input::Time { now: false },
            )
            .required(),
            at("urged_at", ("督促时间", "When")),
        ],
        body!(UrgingBody),
    ),
    def(
        CaseStep::CourtReferral,
        Who::Group,
        "/api/v1/cases/{id}/court-referral",
        "Records that the agreement was not carried out and the party was told of the right to sue and referred to the court.",
        (
            ("告知诉权，引导至人民法院", "Refer to the court"),
            ("记录引导起诉", "Record the referral"),
        ),
        &[
            text("court", ("人民法院", "Court")).required(),
            area("reason", ("理由", "Reason")).required(),
            field(
                "right_to_sue_told",
                (
                    "已告知当事人可就调解协议的履行或内容向人民法院提起诉讼",
                    "The party was told of the right to sue over the agreement",
                ),
                Input::Flag,
            )
            .required(),
            at("referred_at", ("时间", "When")),
        ],
        body!(CourtReferralBody),
    ),
    def(
        CaseStep::ConfirmationApplication,
        Who::Group,
        "/api/v1/cases/{id}/judicial-confirmation",
        "Records the parties' application for judicial confirmation (司法确认), within 30 days of the agreement.",
        (
            ("申请司法确认", "Judicial confirmation"),
            ("记录申请", "Record the application"),
        ),
        &[
            text("court", ("受理的人民法院", "Court")).required(),
            at("applied_at", ("申请时间", "Applied at")),
        ],
        body!(ConfirmationBody),
    ),
    def(
        CaseStep::ConfirmationDecision,
        Who::Group,
        "/api/v1/cases/{id}/judicial-confirmation/decision",
        "Records the court's decision on judicial confirmation (confirmed, or refused with the reason).",
        (
            ("记录司法确认结果", "The court's decision"),
            ("保存", "Save"),
        ),
        &[
            choice_or(
                "decision",
                ("法院决定", "Decision"),
                Choices::CourtDecisions,
                CHOOSE,
            )
            .required(),
            area("reason", ("不予确认的理由", "Reason for refusal")).hint((
                "不予确认时必填",
                "required when refused",
            )),
            at("decided_at", ("决定时间", "Decided at")),
        ],
        body!(DecisionBody),
    ),
    def(
        CaseStep::EscalationReply,
        Who::Group,
        "/api/v1/cases/{id}/escalation-reply",
        "Records the receiving level's reply to an escalation or a failed mediation's next route.",
        (
            ("记录上报答复", "Record the reply"),
            ("保存答复", "Save the reply"),
        ),
        &[
            area("reply", ("答复内容", "Reply")).required(),
            at("replied_at", ("答复时间", "Replied at")),
        ],
        body!(EscalationReplyBody),
    ),
    def(
        CaseStep::Incident,
        Who::Group,
        "/api/v1/cases/{id}/incidents",
        "Records an obstruction incident (阻挡施工事件); answers its id.",
        (
            ("记录阻挡施工事件", "Record an obstruction incident"),
            ("保存事件", "Save the incident"),
        ),
        &[
            at("occurred_at", ("发生时间", "When")),
            text(
                "location",
                ("地点（楼栋、单元、路段）", "Where (building, unit, road)"),
            )
            .required(),
            choice_or(
                "work_item",
                ("受阻施工项目", "Work item stopped"),
                Choices::WorkItems,
                CHOOSE,
            )
            .required(),
            field(
                "obstructing_parties",
                ("阻工人员", "Obstructing parties"),
                Input::Several(Choices::Parties),
            ),
            field(
                "work_stopped_hours",
                ("停工时长（小时）", "Hours of work stopped"),
                Input::Hours,
            )
            .key("work_stopped_minutes"),
            field("police_called", ("已报警", "Police called"), Input::Flag),
            area("description", ("情况描述", "Description")).required(),
        ],
        body!(IncidentBody),
    ),
    def(
        CaseStep::ResumeWork,
        Who::Group,
        "/api/v1/cases/{id}/work-resumptions",
        "Records that work stopped by an incident resumed.",
        (("恢复施工", "Work resumed"), ("记录复工", "Record")),
        &[
            choice(
                "incident_id",
                ("阻工事件", "Incident"),
                Choices::StoppedIncidents,
            )
            .required(),
            at("resumed_at", ("复工时间", "Resumed at")),
        ],
        body!(WorkResumptionBody),
    ),
    def(
        CaseStep::Police,
        Who::Group,
        "/api/v1/cases/{id}/police-interventions",
        "Records a police intervention.",
        (
            ("公安机关出警处置", "Police intervention"),
            ("保存", "Save"),
        ),
        &[
            choice_or(
                "incident_id",
                ("相关阻工事件", "Incident"),
                Choices::Incidents,
                ("（无）", "(none)"),
            ),
            text("police_unit", ("出警单位", "Police unit")).required(),
            at("intervened_at", ("出警时间", "When")),
            area("outcome", ("处置结果", "Outcome")).required(),
        ],
        body!(PoliceBody),
    ),
    def(
        CaseStep::ExtendDeadline,
        Who::Group,
        "/api/v1/cases/{id}/deadline-extensions",
        "Extends the mediation deadline with every party's recorded consent.",
        (("延长调解期限", "Extend the deadline"), ("延长", "Extend")),
        &[
            field(
                "new_due",
                ("新期限", "New deadline"),
                Input::Time { now: false },
            )
            .required(),
            field(
                "consenting_parties",
                (
                    "同意延期的当事人（须全部同意）",
                    "Consenting parties (all must consent)",
                ),
                Input::Several(Choices::Parties),
            ),
            area("reason", ("理由", "Reason")).required(),
        ],
        body!(ExtendDeadlineBody),
    ),
    def(
        CaseStep::Escalate,
        Who::Leader,
        "/api/v1/cases/{id}/escalations",
        "Escalates the case (上报/移交; leader only).",
        (("上报/移交", "Escalate"), ("上报", "Escalate")),
        &[
            choice("route", ("上报/移交至", "To"), Choices::Routes).required(),
            area("reason", ("理由", "Reason")).required(),
            at("escalated_at", ("时间", "When")),
        ],
        body!(EscalationBody),
    ),
    def(
        CaseStep::AnswerOrder,
        Who::Group,
        "/api/v1/cases/{id}/supervision-orders/{oid}/answer",
        "Answers a supervision order.",
        (
            ("答复督办", "Answer a supervision order"),
            ("答复", "Answer"),
        ),
        &[
            choice("order_id", ("督办", "Order"), Choices::OpenOrders)
                .key("oid")
                .required(),
            area("answer", ("答复内容", "Answer")).required(),
        ],
        body!(AnswerOrderBody),
    )
    .sub(Sub {
        param: "oid",
        what: "supervision order",
        description: "Supervision order id",
    }),
    def(
        CaseStep::SupervisionOrder,
        Who::Supervisor,
        "/api/v1/cases/{id}/supervision-orders",
        "Issues a supervision order (督办; supervisors only); answers its id.",
        (
            ("下达督办", "Issue a supervision order"),
            ("下达督办", "Issue"),
        ),
        &[
            area("instructions", ("督办要求", "Instructions")).required(),
            field(
                "respond_by",
                ("答复期限", "Respond by"),
                Input::Time { now: false },
            )
            .required(),
        ],
        body!(SupervisionOrderBody),
    ),
    def(
        CaseStep::AddParty,
        Who::Group,
        "/api/v1/cases/{id}/parties",
        "Adds a party to the case (by registry id).",
        (("追加当事人", "Add a party"), ("追加", "Add")),
        &[
            choice("role", ("身份", "Role"), Choices::PartyRoles).required(),
            choice("kind", ("类别", "Kind"), Choices::PartyKinds).required(),
        ],
        body!(PartyBody),
    )
    .form(FormShape::NewParty),
    def(
        CaseStep::Note,
        Who::Group,
        "/api/v1/cases/{id}/notes",
        "Adds a note.",
        (("添加备注", "Add a note"), ("添加", "Add")),
        &[area("note", ("备注", "Note")).required()],
        body!(NoteBody),
    ),
    def(
        CaseStep::Correction,
        Who::Group,
        "/api/v1/cases/{id}/corrections",
        "Records a correction of an earlier event (the record itself never changes).",
        (
            ("更正记录", "Correct a record"),
            ("记录更正", "Record the correction"),
        ),
        &[
            choice(
                "corrects_sequence",
                ("被更正的记录", "Record corrected"),
                Choices::Records,
            )
            .required(),
            choice_or(
                "field",
                ("更正哪一项内容", "Which part"),
                Choices::CorrectableFields,
                CHOOSE,
            )
            .required(),
            area("corrected_value", ("更正为", "Corrected value")).required(),
            area("reason", ("理由", "Reason")).required(),
        ],
        body!(CorrectionBody),
    ),
    def(
        CaseStep::Withdrawal,
        Who::Group,
        "/api/v1/cases/{id}/withdrawal",
        "Records the complainant's withdrawal (objections only).",
        (
            ("申请人撤回", "Withdrawal"),
            ("记录撤回", "Record the withdrawal"),
        ),
        &[
            area("reason", ("理由", "Reason")).required(),
            at("withdrawn_at", ("撤回时间", "When")),
        ],
        body!(WithdrawalBody),
    ),
    def(
        CaseStep::Close,
        Who::Leader,
        "/api/v1/cases/{id}/closure",
        "Closes the case with its outcome (结案; leader only).",
        (("结案", "Close the case"), ("结案", "Close")),
        &[
            choice_or("outcome", ("结果", "Outcome"), Choices::Outcomes, CHOOSE)
                .required()
                .hint((
                    "“调解成功”须已达成调解协议；“移交处理”须已上报或引导至其他途径",
                    "\"Resolved by agreement\" needs a recorded agreement; \"referred\" needs an escalation or another route",
                )),
            area("summary", ("结案说明", "Summary")),
            at("closed_at", ("结案时间", "Closed at")),
            field(
                "confirm",
                (
                    "我已确认：结案后不能再记录调解进展，如需继续办理须重新办理（重新计算期限）",
                    "I confirm: after closing, nothing more is recorded unless the case is reopened (with a new deadline)",
                ),
                Input::Flag,
            )
            .required(),
        ],
        body!(ClosureBody),
    )
    .danger(),
    def(
        CaseStep::Reopen,
        Who::Leader,
        "/api/v1/cases/{id}/reopening",
        "Reopens a closed or withdrawn case (leader only).",
        (("重新启动", "Reopen"), ("重新启动案件", "Reopen the case")),
        &[area("reason", ("理由", "Reason")).required()],
        body!(ReopeningBody),
    ),
];

/// The definition of a step.
pub fn case_step(step: CaseStep) -> &'static CaseStepDef {
    CASE_STEPS
        .iter()
        .find(|d| d.step == step)
        .unwrap_or(&CASE_STEPS[0])
}

/// Who may run a command, by its name ([`CaseCommand::name`]); opening a case is for the
/// group, like most steps.
pub fn who_runs(command: &str) -> Option<Who> {
    if command == "open_case" || command == "add_attachment" {
        return Some(Who::Group);
    }
    CASE_STEPS
        .iter()
        .find(|d| d.step.command_name() == command)
        .map(|d| d.who)
}

/// The permission table: whether `role` may run the command named `command` (group scope
/// is checked separately). The refusal is in English and Chinese.
pub fn may_run(role: Role, command: &str) -> Result<(), Words> {
    if command == "transfer_case" {
        // Not a step of anyone's desk: run by an administrator's move of a community.
        return match role {
            Role::Admin | Role::System => Ok(()),
            _ => Err((
                "a case moves to another group only with its community",
                "案件只能随小区一并移交",
            )),
        };
    }
    let Some(who) = who_runs(command) else {
        return Err(("no such step", "没有这一办理步骤"));
    };
    match (role, who) {
        (Role::System, _) => Ok(()),
        (Role::Supervisor, Who::Supervisor) => Ok(()),
        (Role::Supervisor, _) => Err((
            "supervisors write nothing but supervision orders",
            "督查室只能下达督办，不能修改案件",
        )),
        (Role::Member | Role::Leader, Who::Supervisor) => Err((
            "only a supervision office issues supervision orders",
            "督办只能由督查室下达",
        )),
        (Role::Member, Who::Leader) => Err((
            "assignment, escalation, closure and reopening need the group leader",
            "指派、上报、结案和重新启动须由组长办理",
        )),
        (Role::Member | Role::Leader, _) => Ok(()),
        (Role::Admin, _) => Err((
            "administrators manage groups and tokens and write no case",
            "管理员不能办理案件",
        )),
        (Role::Dashboard, _) => Err((
            "dashboards only read aggregates",
            "大屏账号只能查看汇总数据",
        )),
    }
}

// ---------------------------------------------------------------------------------------
// The bodies and their conversions, in the order of the table.

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptBody {
    pub accepted_at: Option<Timestamp>,
}

impl StepBody for AcceptBody {
    type Command = CaseCommand;

    fn command(self, _: &StepContext<'_>) -> Result<(CaseCommand, Option<String>), AppError> {
        Ok((
            CaseCommand::AcceptCase(AcceptCase {
                accepted_at: self.accepted_at,
            }),
            None,
        ))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    pub assignee: MemberId,
    pub assigned_at: Option<Timestamp>,
}

impl StepBody for AssignBody {
    type Command = CaseCommand;

    fn command(self, _: &StepContext<'_>) -> Result<(CaseCommand, Option<String>), AppError> {
        Ok((
            CaseCommand::AssignCase(AssignCase {
                assignee: self.assignee,
                assigned_at: self.assigned_at,
            }),
            None,
        ))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSessionBody {
    pub scheduled_for: Timestamp,
    pub location: String,
}

impl StepBody for ScheduleSessionBody {
    type Command = CaseCommand;

    fn command(self, _: &StepContext<'_>) -> Result<(CaseCommand, Option<String>), AppError> {
        let session_id = SessionId::new();
        Ok((
            CaseCommand::ScheduleSession(ScheduleSession {
                session_id,
                scheduled_for: self.scheduled_for,
                location: self.location,
            }),
            Some(session_id.to_string()),
        ))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordSessionBody {
    pub held_at: Option<Timestamp>,
    pub attendees: Vec<Attendee>,
    pub minutes_summary: String,
}

impl StepBody for RecordSessionBody {
    type Command = CaseCommand;

    fn command(self, cx: &StepContext<'_>) -> Result<(CaseCommand, Option<String>), AppError> {
        Ok((
            CaseCommand::RecordSession(RecordSession {
                session_id: cx.sub("sid", "session", SessionId::parse)?,
                held_at: self.held_at,
                attendees: self.attendees,
                minutes_summary: self.minutes_summary,
            }),
            None,
        ))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgreementBody {
    pub session_id: SessionId,
    /// 协议内容: the agreed terms.
    pub terms: String,
    pub agreed_at: Option<Timestamp>,
    /// When left out: the agreement's time plus the configured follow-up period.
    pub follow_up_due: Option<Timestamp>,
    /// 纠纷的主要事实、争议事项 (Art. 29).
    #[serde(default)]
    pub facts: String,
    /// 各方当事人的责任.
    #[serde(default)]
    pub responsibilities: String,
    /// Each party's obligations (parties of the case, once each).
    #[serde(default)]
    pub obligations: Vec<Obligation>,
    /// 履行方式.
    #[serde(default)]
    pub performance_manner: String,
    /// 履行地点.
    #[serde(default)]
    pub performance_place: String,
    /// 履行期限.
    pub performance_due: Option<Timestamp>,
    /// 协议书份数, 1 to 20 (default: one per party and one for the committee).
    pub copies: Option<u8>,
}

impl StepBody for AgreementBody {
    type Command = CaseCommand;

    fn command(self, cx: &StepContext<'_>) -> Result<(CaseCommand, Option<String>), AppError> {
        if self.copies.is_some_and(|c| !(1..=20).contains(&c)) {
            return Err(AppError::refused(
                "invalid_copies",
                "copies is the number of copies of the agreement, 1 to 20",
                "协议书份数应为1至20份",
            )
            .with_field("copies", "1 to 20"));
        }
        let due = self.follow_up_due.unwrap_or_else(|| {
            self.agreed_at
                .unwrap_or(cx.now)
                .plus_days(cx.follow_up_days)
        });
        Ok((
            CaseCommand::ReachAgreement(ReachAgreement {
                session_id: self.session_id,
                terms: self.terms,
                agreed_at: self.agreed_at,
                follow_up_due: due,
                details: AgreementDetails {
                    facts: self.facts,
                    responsibilities: self.responsibilities,
                    obligations: self.obligations,
                    performance_manner: self.performance_manner,
                    performance_place: self.performance_place,
                    performance_due: self.performance_due,
                    copies: self.copies,
                },
            }),
            None,
        ))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailureBody {
    pub reason: String,
    pub next_route: Route,
    pub failed_at: Option<Timestamp>,
}

impl StepBody for FailureBody {
    type Command = CaseCommand;

    fn command(self, _: &StepContext<'_>) -> Result<(CaseCommand, Option<String>), AppError> {
        Ok((
            CaseCommand::FailMediation(FailMediation {
                reason: self.reason,
                next_route: self.next_route,
                failed_at: self.failed_at,
            }),
            None,
        ))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowUpBody {
    pub visited_at: Option<Timestamp>,
    pub satisfaction: Satisfaction,
    pub notes: Option<String>,
}

impl StepBody for FollowUpBody {
    type Command = CaseCommand;

    fn command(self, _: &StepContext<'_>) -> Result<(CaseCommand, Option<String>), AppError> {
        Ok((
            CaseCommand::RecordFollowUp(RecordFollowUp {
                visited_at: self.visited_at,
                satisfaction: self.satisfaction,
                notes: self.notes,
            }),
            None,
        ))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentBody {
    /// When left out: now.
    pub occurred_at: Option<Timestamp>,
    /// Building, unit or road section.
    pub location: String,
    pub work_item: CategoryCode,
    #[serde(default)]
    pub obstructing_parties: Vec<PartyId>,
    /// 0 when work did not stop.
    #[serde(default)]
    pub work_stopped_minutes: u32,
    #[serde(default)]
    pub police_called: bool,
    pub description: String,
}

impl IncidentBody {
    /// The incident as the domain takes it, under a new id.
    pub fn into_input(self, incident_id: IncidentId) -> IncidentInput {
        IncidentInput {
            incident_id,
            occurred_at: self.occurred_at,
            location: self.location,
            work_item: self.work_item,
            obstructing_parties: self.obstructing_parties,
            work_stopped_minutes: self.work_stopped_minutes,
            police_called: self.police_called,
            description: self.description,
        }
    }
}

impl StepBody for IncidentBody {
    type Command = CaseCommand;

    fn command(self, _: &StepContext<'_>) -> Result<(CaseCommand, Option<String>), AppError> {
        let id = IncidentId::new();
        Ok((
            CaseCommand::RecordIncident(RecordIncident {
                incident: self.into_input(id),
            }),
            Some(id.to_string()),
        ))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkResumptionBody {
    pub incident_id: IncidentId,
    pub resumed_at: Option<Timestamp>,
}

impl StepBody for WorkResumptionBody {
    type Command = CaseCommand;

    fn command(self, _: &StepContext<'_>) -> Result<(CaseCommand, Option<String>), AppError> {
        Ok((
            CaseCommand::ResumeWork(ResumeWork {
                incident_id: self.incident_id,
                resumed_at: self.resumed_at,
            }),
            None,
        ))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoliceBody {
    pub incident_id: Option<IncidentId>,
    pub police_unit: String,
    pub intervened_at: Option<Timestamp>,
    pub outcome: String,
}

impl StepBody for PoliceBody {
    type Command = CaseCommand;

    fn command(self, _: &StepContext<'_>) -> Result<(CaseCommand, Option<String>), AppError> {
        Ok((
            CaseCommand::RecordPoliceIntervention(RecordPoliceIntervention {
                incident_id: self.incident_id,
                police_unit: self.police_unit,
                intervened_at: self.intervened_at,
                outcome: self.outcome,
            }),
            None,
        ))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendDeadlineBody {
    pub new_due: Timestamp,
    pub reason: String,
    /// Every party must consent.
    pub consenting_parties: Vec<PartyId>,
    pub extended_at: Option<Timestamp>,
}

impl StepBody for ExtendDeadlineBody {
    type Command = CaseCommand;

    fn command(self, _: &StepContext<'_>) -> Result<(CaseCommand, Option<String>), AppError> {
        Ok((
            CaseCommand::ExtendDeadline(ExtendDeadline {
                new_due: self.new_due,
                reason: self.reason,
                consenting_parties: self.consenting_parties,
                extended_at: self.extended_at,
            }),
            None,
        ))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalationBody {
    pub route: Route,
    pub reason: String,
    pub escalated_at: Option<Timestamp>,
}

impl StepBody for EscalationBody {
    type Command = CaseCommand;

    fn command(self, _: &StepContext<'_>) -> Result<(CaseCommand, Option<String>), AppError> {
        Ok((
            CaseCommand::Escalate(Escalate {
                route: self.route,
                reason: self.reason,
                escalated_at: self.escalated_at,
            }),
            None,
        ))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerOrderBody {
    pub answer: String,
}

impl StepBody for AnswerOrderBody {
    type Command = CaseCommand;

    fn command(self, cx: &StepContext<'_>) -> Result<(CaseCommand, Option<String>), AppError> {
        Ok((
            CaseCommand::AnswerSupervisionOrder(AnswerSupervisionOrder {
                order_id: cx.sub("oid", "supervision order", OrderId::parse)?,
                answer: self.answer,
            }),
            None,
        ))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SupervisionOrderBody {
    /// The issuing office; the caller's organisation when left out.
    pub office: Option<String>,
    pub instructions: String,
    pub respond_by: Timestamp,
}

impl StepBody for SupervisionOrderBody {
    type Command = CaseCommand;

    fn command(self, cx: &StepContext<'_>) -> Result<(CaseCommand, Option<String>), AppError> {
        let order_id = OrderId::new();
        Ok((
            CaseCommand::IssueSupervisionOrder(IssueSupervisionOrder {
                order_id,
                office: self.office.unwrap_or_else(|| cx.actor.organisation.clone()),
                instructions: self.instructions,
                respond_by: self.respond_by,
            }),
            Some(order_id.to_string()),
        ))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartyBody {
    pub party: PartyRef,
}

impl StepBody for PartyBody {
    type Command = CaseCommand;

    fn command(self, _: &StepContext<'_>) -> Result<(CaseCommand, Option<String>), AppError> {
        Ok((CaseCommand::AddParty(AddParty { party: self.party }), None))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    pub note: String,
}

impl StepBody for NoteBody {
    type Command = CaseCommand;

    fn command(self, _: &StepContext<'_>) -> Result<(CaseCommand, Option<String>), AppError> {
        Ok((CaseCommand::AddNote(AddNote { note: self.note }), None))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CorrectionBody {
    /// The sequence number of the event corrected.
    pub corrects_sequence: u64,
    pub field: String,
    pub corrected_value: String,
    pub reason: String,
}

impl StepBody for CorrectionBody {
    type Command = CaseCommand;

    fn command(self, _: &StepContext<'_>) -> Result<(CaseCommand, Option<String>), AppError> {
        Ok((
            CaseCommand::RecordCorrection(RecordCorrection {
                corrects_sequence: self.corrects_sequence,
                field: self.field,
                corrected_value: self.corrected_value,
                reason: self.reason,
            }),
            None,
        ))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalBody {
    pub reason: String,
    pub withdrawn_at: Option<Timestamp>,
}

impl StepBody for WithdrawalBody {
    type Command = CaseCommand;

    fn command(self, _: &StepContext<'_>) -> Result<(CaseCommand, Option<String>), AppError> {
        Ok((
            CaseCommand::Withdraw(Withdraw {
                reason: self.reason,
                withdrawn_at: self.withdrawn_at,
            }),
            None,
        ))
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClosureBody {
    /// Required: closing needs an outcome.
    pub outcome: Option<Outcome>,
    pub closed_at: Option<Timestamp>,
    pub summary: Option<String>,
    /// The page's confirmation that the closer read what closing means; `false` refuses.
    /// API callers leave it out.
    pub confirm: Option<bool>,
}

impl StepBody for ClosureBody {
    type Command = CaseCommand;

    fn command(self, _: &StepContext<'_>) -> Result<(CaseCommand, Option<String>), AppError> {
        if self.confirm == Some(false) {
            return Err(AppError::invalid(
                "not_confirmed",
                "tick the box to confirm the closure",
                "请勾选确认后再结案",
            )
            .with_field("confirm", "required"));
        }
        Ok((
            CaseCommand::CloseCase(CloseCase {
                outcome: self.outcome,
                closed_at: self.closed_at,
                summary: self.summary,
            }),
            None,
        ))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReopeningBody {
    pub reason: String,
    pub reopened_at: Option<Timestamp>,
}

impl StepBody for ReopeningBody {
    type Command = CaseCommand;

    fn command(self, _: &StepContext<'_>) -> Result<(CaseCommand, Option<String>), AppError> {
        Ok((
            CaseCommand::ReopenCase(ReopenCase {
                reason: self.reason,
                reopened_at: self.reopened_at,
            }),
            None,
        ))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PerformanceBody {
    pub performance: Performance,
    /// What remains to be done (required when partly performed).
    pub remaining: Option<String>,
    /// Who reported it.
    pub reported_by: String,
    pub reported_at: Option<Timestamp>,
}

impl StepBody for PerformanceBody {
    type Command = CaseCommand;

    fn command(self, _: &StepContext<'_>) -> Result<(CaseCommand, Option<String>), AppError> {
        Ok((
            CaseCommand::RecordPerformance(RecordPerformance {
                performance: self.performance,
                remaining: self.remaining,
                reported_by: self.reported_by,
                reported_at: self.reported_at,
            }),
            None,
        ))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UrgingBody {
    /// How, and whom, the committee urged.
    pub method: String,
    /// The new date by which the agreement is to be carried out.
    pub performance_due: Timestamp,
    pub urged_at: Option<Timestamp>,
}

impl StepBody for UrgingBody {
    type Command = CaseCommand;

    fn command(self, _: &StepContext<'_>) -> Result<(CaseCommand, Option<String>), AppError> {
        Ok((
            CaseCommand::UrgePerformance(UrgePerformance {
                method: self.method,
                performance_due: self.performance_due,
                urged_at: self.urged_at,
            }),
            None,
        ))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CourtReferralBody {
    pub court: String,
    pub reason: String,
    /// Must be true: the party was told of the right to sue.
    #[serde(default)]
    pub right_to_sue_told: bool,
    pub referred_at: Option<Timestamp>,
}

impl StepBody for CourtReferralBody {
    type Command = CaseCommand;

    fn command(self, _: &StepContext<'_>) -> Result<(CaseCommand, Option<String>), AppError> {
        Ok((
            CaseCommand::ReferToCourt(ReferToCourt {
                court: self.court,
                right_to_sue_told: self.right_to_sue_told,
                reason: self.reason,
                referred_at: self.referred_at,
            }),
            None,
        ))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmationBody {
    /// The court applied to.
    pub court: String,
    pub applied_at: Option<Timestamp>,
}

impl StepBody for ConfirmationBody {
    type Command = CaseCommand;

    fn command(self, _: &StepContext<'_>) -> Result<(CaseCommand, Option<String>), AppError> {
        Ok((
            CaseCommand::ApplyForConfirmation(ApplyForConfirmation {
                court: self.court,
                applied_at: self.applied_at,
            }),
            None,
        ))
    }
}

/// A court's decision on judicial confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CourtDecision {
    /// 确认调解协议有效.
    Confirmed,
    /// 裁定驳回申请 / 不予确认.
    Refused,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    pub decision: CourtDecision,
    /// Required when refused.
    pub reason: Option<String>,
    pub decided_at: Option<Timestamp>,
}

impl StepBody for DecisionBody {
    type Command = CaseCommand;

    fn command(self, _: &StepContext<'_>) -> Result<(CaseCommand, Option<String>), AppError> {
        Ok((
            CaseCommand::RecordConfirmationDecision(RecordConfirmationDecision {
                confirmed: self.decision == CourtDecision::Confirmed,
                reason: self.reason,
                decided_at: self.decided_at,
            }),
            None,
        ))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalationReplyBody {
    pub reply: String,
    pub replied_at: Option<Timestamp>,
}

impl StepBody for EscalationReplyBody {
    type Command = CaseCommand;

    fn command(self, _: &StepContext<'_>) -> Result<(CaseCommand, Option<String>), AppError> {
        Ok((
            CaseCommand::RecordEscalationReply(RecordEscalationReply {
                reply: self.reply,
                replied_at: self.replied_at,
            }),
            None,
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use strum::IntoEnumIterator;

    use super::*;

    #[test]
    fn every_step_is_defined_once() {
        let defined: Vec<CaseStep> = CASE_STEPS.iter().map(|d| d.step).collect();
        let unique: HashSet<_> = defined.iter().collect();
        assert_eq!(unique.len(), defined.len(), "a step is defined twice");
        for step in CaseStep::iter() {
            assert!(defined.contains(&step), "{step:?} has no definition");
            assert_eq!(case_step(step).step, step);
        }
        let paths: HashSet<_> = CASE_STEPS.iter().map(|d| d.path).collect();
        assert_eq!(paths.len(), CASE_STEPS.len(), "two steps share a path");
    }

    #[test]
    fn every_field_fills_a_key_of_its_body_or_its_path() {
        for d in &CASE_STEPS {
            let schema = serde_json::to_value((d.schema)().schema).unwrap();
            let props = schema["properties"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            for f in d.fields {
                let into_path = d.sub.is_some_and(|s| s.param == f.key);
                let registers = d.form == FormShape::NewParty;
                assert!(
                    into_path || registers || props.contains_key(f.key),
                    "{:?}: field {} fills {}, which its body lacks",
                    d.step,
                    f.name,
                    f.key
                );
                assert!(!f.label.0.is_empty() && !f.label.1.is_empty());
            }
            if let Some(s) = d.sub {
                assert!(d.path.contains(&format!("{{{}}}", s.param)));
                assert!(
                    d.sub_field().is_some(),
                    "{:?}: no field fills {}",
                    d.step,
                    s.param
                );
            }
        }
    }

    #[test]
    fn the_permission_table_follows_the_definitions() {
        for d in &CASE_STEPS {
            let name = d.step.command_name();
            let member = may_run(Role::Member, name).is_ok();
            let leader = may_run(Role::Leader, name).is_ok();
            let supervisor = may_run(Role::Supervisor, name).is_ok();
            assert_eq!(
                (member, leader, supervisor),
                match d.who {
                    Who::Group => (true, true, false),
                    Who::Leader => (false, true, false),
                    Who::Supervisor => (false, false, true),
                },
                "{name}"
            );
            assert!(may_run(Role::Admin, name).is_err());
            assert!(may_run(Role::Dashboard, name).is_err());
            assert!(may_run(Role::System, name).is_ok());
        }
        assert!(may_run(Role::Member, "open_case").is_ok());
        assert!(may_run(Role::Leader, "no_such_step").is_err());
    }

    #[test]
    fn defaults_are_applied_once_in_the_conversion() {
        let actor = Actor::system("test");
        let now = Timestamp::parse("2026-03-01T08:00:00Z").unwrap();
        let cx = StepContext {
            now,
            follow_up_days: 15,
            actor: &actor,
            sub: None,
        };
        let session = SessionId::new().to_string();
        let p = (case_step(CaseStep::Agreement).parse)(
            serde_json::json!({"session_id": session, "terms": "t"}),
            &cx,
        )
        .unwrap();
        let CaseCommand::ReachAgreement(a) = p.command else {
            panic!("not an agreement")
        };
        assert_eq!(a.follow_up_due, now.plus_days(15));
        let err = (case_step(CaseStep::Agreement).parse)(
            serde_json::json!({"session_id": "x", "terms": "t"}),
            &cx,
        )
        .unwrap_err();
        assert!(matches!(err, StepError::Body { ref path, .. } if path == "session_id"));
        let err = (case_step(CaseStep::RecordSession).parse)(
            serde_json::json!({"attendees": [], "minutes_summary": "m"}),
            &cx,
        )
        .unwrap_err();
        assert!(matches!(err, StepError::App(ref e) if e.code == "not_found"));
    }
}
