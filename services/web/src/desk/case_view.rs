//! The case page: the case loaded in the viewer's scope, its timeline, facts and parties.

use super::*;

#[derive(Debug, Clone)]
pub struct Fact {
    pub label: String,
    pub value: String,
}

#[derive(Debug, Clone)]
pub struct TimelineEntry {
    pub sequence: u64,
    pub title: String,
    pub at: String,
    pub business_at: String,
    pub who: String,
    pub details: Vec<Fact>,
    pub kind: String,
}

#[derive(Debug, Clone)]
pub struct PartyLine {
    pub id: String,
    pub role: String,
    pub name: String,
    pub phone: String,
    pub place: String,
    pub visibility: String,
    /// The registry record as this viewer sees it (masked for a supervisor), for the
    /// documents.
    pub data: Option<PartyData>,
    pub party_role: Option<PartyRole>,
    /// Obstruction incidents naming the party, when it is a repeat obstructor (else 0).
    pub repeat_incidents: i64,
}

/// What the case page needs, loaded once: the view, the state, the history, the people.
pub(super) struct Loaded {
    pub(super) view: CaseView,
    pub(super) case: Case,
    pub(super) version: u64,
    pub(super) events: Vec<EventEnvelope<Case>>,
    pub(super) parties: Vec<PartyLine>,
    pub(super) party_names: HashMap<String, String>,
    pub(super) members: BTreeMap<MemberId, String>,
    pub(super) group_name: String,
    pub(super) street_office: String,
    /// Every group's name by id, and every group's members, for the timeline.
    pub(super) group_names: BTreeMap<String, String>,
    pub(super) everyone: BTreeMap<MemberId, String>,
}

/// `reveal`: a supervisor's reason to see the parties in clear (each reveal is logged).
pub(super) async fn load(
    app: &App,
    signed: &Signed,
    raw: &str,
    reveal: Option<&str>,
) -> AppResult<Loaded> {
    if !signed.actor.reads_cases() {
        return Err(AppError::forbidden_zh((
            "this role does not read cases",
            "该账号不能查看案件",
        )));
    }
    let case_id = CaseId::parse(raw).map_err(|_| AppError::not_found("case"))?;
    let id = case_id.to_string();
    let (case, version) = app.stores.load_case(&id).await?;
    let Some(community) = case.community.clone() else {
        return Err(AppError::not_found("case"));
    };
    if let Some(scope) = commands::scope(app, &signed.actor).await? {
        if !scope.contains(&community) {
            return Err(AppError::out_of_scope());
        }
    }
    await_consistency(app, Some(&consistency_token("Case", &id, version))).await?;
    let view = case_status::get_open(&app.db, &app.keys, &id, &app.now())
        .await?
        .ok_or_else(|| AppError::not_found("case"))?;
    let mut events = app.stores.case_events(&id).await?;
    let mut view = view;
    view.case_number = crate::numbering::of(app, &id).await?;
    if crate::masking::masks_for(&signed.actor) && reveal.is_none() {
        let ids: Vec<_> = case.parties.iter().map(|p| p.party_id).collect();
        let m = crate::masking::TextMasker::for_parties(app, &ids).await?;
        view.row.summary = m.apply(&view.row.summary);
        for e in &mut events {
            e.payload = m.event(&e.payload);
        }
    }
    let lang = signed.web.lang;
    let mut parties_out = Vec::new();
    let mut party_names = HashMap::new();
    for p in &case.parties {
        let pid = p.party_id.to_string();
        let role = labels::party_role(lang, p.role).to_string();
        let line = match parties::view(
            app,
            &signed.actor,
            &signed.web.meta,
            &pid,
            reveal,
            Some(&id),
        )
        .await
        {
            Ok(v) => {
                let d = v.data.clone().unwrap_or_default();
                let place: Vec<String> = [&d.building, &d.unit, &d.household]
                    .iter()
                    .filter_map(|x| (*x).clone())
                    .collect();
                PartyLine {
                    id: pid.clone(),
                    role,
                    name: if v.data.is_some() {
                        d.name.clone()
                    } else {
                        lang.t("（已删除）", "(erased)").into()
                    },
                    phone: d.phone.clone().unwrap_or_default(),
                    place: [place.join("-"), d.organisation.clone().unwrap_or_default()]
                        .into_iter()
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join(" "),
                    visibility: v.visibility.clone(),
                    data: v.data.clone().filter(|_| v.visibility != "erased"),
                    party_role: Some(p.role),
                    repeat_incidents: if v.repeat_obstructor {
                        v.obstruction_incidents
                    } else {
                        0
                    },
                }
            }
            Err(e) if e.kind == ErrorKind::NotFound => PartyLine {
                id: pid.clone(),
                role,
                name: format!(
                    "{} {}",
                    lang.t("未登记当事人", "unregistered party"),
                    short(&pid)
                ),
                phone: String::new(),
                place: String::new(),
                visibility: "unregistered".into(),
                data: None,
                party_role: Some(p.role),
                repeat_incidents: 0,
            },
            Err(e) => return Err(e),
        };
        party_names.insert(pid, format!("{}（{}）", line.name, line.role));
        parties_out.push(line);
    }
    let (members, group_name, street_office) = match &case.group {
        Some(g) => match app.directory.group_state(g).await? {
            Some(g) => (
                g.members
                    .iter()
                    .map(|(id, m)| (*id, m.name.clone()))
                    .collect(),
                g.name.clone(),
                g.street_office.clone(),
            ),
            None => (BTreeMap::new(), String::new(), String::new()),
        },
        None => (BTreeMap::new(), String::new(), String::new()),
    };
    // Names of every group and member, for a history that crosses groups.
    let mut group_names = BTreeMap::new();
    let mut everyone = BTreeMap::new();
    for (id, g) in app.directory.groups().await? {
        group_names.insert(id.to_string(), g.name.clone());
        for (mid, m) in g.members {
            everyone.insert(mid, m.name);
        }
    }
    Ok(Loaded {
        view,
        case,
        version,
        events,
        parties: parties_out,
        party_names,
        members,
        group_name,
        street_office,
        group_names,
        everyone,
    })
}

pub(super) fn timeline(app: &App, lang: Lang, l: &Loaded) -> Vec<TimelineEntry> {
    let member = |id: &str| {
        MemberId::parse(id)
            .ok()
            .and_then(|m| l.members.get(&m).or_else(|| l.everyone.get(&m)).cloned())
            .unwrap_or_else(|| short(id))
    };
    let group = |id: &str| l.group_names.get(id).cloned().unwrap_or_else(|| short(id));
    let party = |id: &str| l.party_names.get(id).cloned().unwrap_or_else(|| short(id));
    let mut out = Vec::new();
    for e in l.events.iter().rev() {
        let m = EventMetadata::from_map(&e.metadata);
        let mut details = Vec::new();
        let mut add = |zh: &str, en: &str, value: String| {
            if !value.is_empty() {
                details.push(Fact {
                    label: lang.t(zh, en).to_string(),
                    value,
                });
            }
        };
        match &e.payload {
            CaseEvent::CaseOpened {
                community,
                category,
                channel,
                summary,
                ..
            } => {
                add(
                    "小区",
                    "Community",
                    community_name(app, lang, community.as_str()),
                );
                add(
                    "类别",
                    "Category",
                    category_name(app, lang, category.as_str()),
                );
                add(
                    "来源",
                    "Channel",
                    labels::channel(lang, *channel).to_string(),
                );
                add("案情摘要", "Summary", summary.clone());
            }
            CaseEvent::PartyAdded { party: p } => {
                add("当事人", "Party", party(&p.party_id.to_string()));
            }
            CaseEvent::CaseAssigned { assignee, .. } => {
                add("承办人", "Mediator", member(&assignee.to_string()));
            }
            CaseEvent::SessionScheduled {
                scheduled_for,
                location,
                ..
            } => {
                add("时间", "When", local(app, &scheduled_for.to_canonical()));
                add("地点", "Where", location.clone());
            }
            CaseEvent::SessionHeld {
                attendees,
                minutes_summary,
                ..
            } => {
                let names: Vec<String> = attendees
                    .iter()
                    .map(|a| match a {
                        Attendee::GroupMember { member_id } => member(&member_id.to_string()),
                        Attendee::Party { party_id } => party(&party_id.to_string()),
                        Attendee::Other { role } => role.clone(),
                    })
                    .collect();
                add("出席", "Present", names.join("、"));
                add("会议纪要", "Minutes", minutes_summary.clone());
            }
            CaseEvent::DeadlineExtended {
                new_due, reason, ..
            } => {
                add(
                    "新期限",
                    "New deadline",
                    local(app, &new_due.to_canonical()),
                );
                add("理由", "Reason", reason.clone());
            }
            CaseEvent::AgreementReached {
                terms,
                follow_up_due,
                ..
            } => {
                add("协议内容", "Terms", terms.clone());
                add(
                    "回访期限",
                    "Follow-up due",
                    local(app, &follow_up_due.to_canonical()),
                );
            }
            CaseEvent::MediationFailed { reason, .. } | CaseEvent::CaseEscalated { reason, .. } => {
                add("理由", "Reason", reason.clone());
            }
            CaseEvent::ObstructionIncidentRecorded { incident } => {
                add("地点", "Where", incident.location.clone());
                add(
                    "受阻项目",
                    "Work item",
                    category_name(app, lang, incident.work_item.as_str()),
                );
                let names: Vec<String> = incident
                    .obstructing_parties
                    .iter()
                    .map(|p| party(&p.to_string()))
                    .collect();
                add("阻工人员", "Obstructing", names.join("、"));
                add("情况描述", "Description", incident.description.clone());
            }
            CaseEvent::PoliceInterventionRecorded {
                police_unit,
                outcome,
                ..
            } => {
                add("出警单位", "Police unit", police_unit.clone());
                add("处置结果", "Outcome", outcome.clone());
            }
            CaseEvent::FollowUpVisitRecorded { notes, .. } => {
                add("回访记录", "Notes", notes.clone().unwrap_or_default());
            }
            CaseEvent::SupervisionOrderIssued {
                office,
                instructions,
                respond_by,
                ..
            } => {
                add("督办单位", "Office", office.clone());
                add("督办要求", "Instructions", instructions.clone());
                add(
                    "答复期限",
                    "Respond by",
                    local(app, &respond_by.to_canonical()),
                );
            }
            CaseEvent::SupervisionOrderAnswered { answer, .. } => {
                add("答复内容", "Answer", answer.clone());
            }
            CaseEvent::NoteAdded { note } => add("备注", "Note", note.clone()),
            CaseEvent::CorrectionRecorded {
                field,
                corrected_value,
                reason,
                ..
            } => {
                add(
                    "更正的内容",
                    "Part corrected",
                    if lang.is_en() {
                        field.clone()
                    } else {
                        field_zh(field).to_string()
                    },
                );
                add("更正为", "Corrected to", corrected_value.clone());
                add("理由", "Reason", reason.clone());
            }
            CaseEvent::CaseWithdrawn { reason, .. } | CaseEvent::CaseReopened { reason, .. } => {
                add("理由", "Reason", reason.clone());
            }
            CaseEvent::CaseClosed { summary, .. } => {
                add("结案说明", "Summary", summary.clone().unwrap_or_default());
            }
            CaseEvent::CaseTransferred {
                from_group,
                to_group,
                reason,
                unassigned,
            } => {
                add("原小组", "From", group(&from_group.to_string()));
                add("现小组", "To", group(&to_group.to_string()));
                add("理由", "Reason", reason.clone());
                if let Some(m) = unassigned {
                    add("取消指派", "Unassigned", member(&m.to_string()));
                }
            }
            CaseEvent::PerformanceRecorded {
                performance,
                remaining,
                reported_by,
                ..
            } => {
                add(
                    "履行情况",
                    "Performance",
                    labels::performance(lang, performance.as_str()).to_string(),
                );
                add(
                    "尚未履行",
                    "Remaining",
                    remaining.clone().unwrap_or_default(),
                );
                add("反映人", "Reported by", reported_by.clone());
            }
            CaseEvent::PerformanceUrged {
                method,
                performance_due,
                ..
            } => {
                add("督促情况", "How", method.clone());
                add(
                    "新的履行期限",
                    "New due date",
                    local(app, &performance_due.to_canonical()),
                );
            }
            CaseEvent::ReferredToCourt { court, reason, .. } => {
                add("人民法院", "Court", court.clone());
                add(
                    "已告知诉权",
                    "Told of the right to sue",
                    lang.t("是", "yes").into(),
                );
                add("理由", "Reason", reason.clone());
            }
            CaseEvent::JudicialConfirmationApplied { court, .. } => {
                add("人民法院", "Court", court.clone());
            }
            CaseEvent::JudicialConfirmationDecided { reason, .. } => {
                add("理由", "Reason", reason.clone().unwrap_or_default());
            }
            CaseEvent::EscalationReplied { reply, .. } => {
                add("回复内容", "Reply", reply.clone());
            }
            CaseEvent::AttachmentAdded {
                caption,
                size,
                sha256,
                ..
            } => {
                add("说明", "Caption", caption.clone().unwrap_or_default());
                add("大小", "Size", format!("{} KB", size.div_ceil(1024)));
                add("SHA-256", "SHA-256", sha256.clone());
            }
            CaseEvent::CaseAccepted { .. } | CaseEvent::WorkResumed { .. } => {}
        }
        out.push(TimelineEntry {
            sequence: e.sequence as u64,
            title: if lang.is_en() {
                labels::event_en(e.payload.type_name()).to_string()
            } else {
                e.payload.describe_zh()
            },
            at: local(app, &m.recorded_at.to_canonical()),
            business_at: e
                .payload
                .business_time()
                .map(|t| local(app, &t.to_canonical()))
                .unwrap_or_default(),
            who: format!("{} · {}", m.actor_name, labels::role(lang, m.role)),
            details,
            kind: e.payload.type_name().to_string(),
        });
    }
    out
}

/// The next steps the rules allow this role on this case, in the order a mediator takes them.
/// The steps the page offers: those the case allows now ([`Case::can`], which shares its
/// rules with the aggregate's `decide`) and the role may take (the permission table of
/// [`crate::auth::may_run_case_step`], which the API checks too).
pub fn format_hours(minutes: u32) -> String {
    if minutes % 60 == 0 {
        format!("{}h", minutes / 60)
    } else {
        format!("{:.1}h", f64::from(minutes) / 60.0)
    }
}

#[derive(Template)]
#[template(path = "case.html")]
pub(super) struct CasePage {
    chrome: Chrome,
    case: CaseLine,
    facts: Vec<Fact>,
    summary: String,
    parties: Vec<PartyLine>,
    timeline: Vec<TimelineEntry>,
    forms: Vec<FormView>,
    supervisor: bool,
    revealed: bool,
    leader_note: bool,
    /// The documents the case has now: (path under `documents/`, title).
    documents: Vec<(String, String)>,
    attachments: Vec<super::attachments::AttachmentLine>,
    /// The case's group may attach files.
    may_attach: bool,
    /// Thumbnails and links are shown (a supervisor only after a reveal with a reason).
    show_files: bool,
    /// `?reason=…` on a supervisor's links after a reveal.
    reveal_q: String,
    /// The case's records, for "which record the file documents".
    records: Vec<(String, String)>,
    max_mb: usize,
    /// A refused upload's message, shown next to the file field.
    attach_error: String,
}

pub(super) fn facts(app: &App, lang: Lang, l: &Loaded) -> Vec<Fact> {
    let r = &l.view.row;
    let mut f = vec![
        Fact {
            label: lang.t("案号", "Case no.").into(),
            value: l
                .view
                .case_number
                .clone()
                .unwrap_or_else(|| short(&r.case_id)),
        },
        Fact {
            label: lang.t("类型", "Kind").into(),
            value: labels::kind(lang, &r.kind),
        },
        Fact {
            label: lang.t("小区", "Community").into(),
            value: format!(
                "{}（{}）",
                community_name(app, lang, &r.community),
                district_name(app, lang, &r.district)
            ),
        },
        Fact {
            label: lang.t("类别", "Category").into(),
            value: category_name(app, lang, &r.category),
        },
        Fact {
            label: lang.t("调解小组", "Mediation group").into(),
            value: l.group_name.clone(),
        },
        Fact {
            label: lang.t("登记时间", "Reported").into(),
            value: local(app, &r.reported_at),
        },
    ];
    if let Some(a) = &r.assignee {
        f.push(Fact {
            label: lang.t("承办人", "Mediator").into(),
            value: MemberId::parse(a)
                .ok()
                .and_then(|m| l.members.get(&m).cloned())
                .unwrap_or_else(|| short(a)),
        });
    }
    if r.incidents > 0 {
        f.push(Fact {
            label: lang.t("阻工事件", "Incidents").into(),
            value: format!(
                "{}，{} {}",
                r.incidents,
                lang.t("停工", "stopped"),
                format_hours(r.work_stopped_minutes.max(0) as u32)
            ),
        });
    }
    if let Some(p) = &r.performance {
        let due = r
            .performance_due
            .as_deref()
            .filter(|_| p != "performed" && r.court_referral_at.is_none())
            .map(|d| format!("（{} {}）", lang.t("履行期限", "due"), local(app, d)))
            .unwrap_or_default();
        f.push(Fact {
            label: lang.t("协议履行", "Performance").into(),
            value: format!("{}{due}", labels::performance(lang, p)),
        });
    }
    if let Some(at) = &r.court_referral_at {
        f.push(Fact {
            label: lang.t("引导起诉", "Referred to court").into(),
            value: local(app, at),
        });
    }
    if let Some(c) = &r.confirmation {
        f.push(Fact {
            label: lang.t("司法确认", "Judicial confirmation").into(),
            value: labels::confirmation(lang, c).into(),
        });
    } else if let (Some(ends), None) = (&r.confirmation_window_ends, &r.closed_at) {
        f.push(Fact {
            label: lang
                .t("司法确认申请期限", "Confirmation window ends")
                .into(),
            value: local(app, ends),
        });
    }
    if let (Some(route), Some(since)) = (&r.route, &r.route_since) {
        let name = serde_json::from_value(serde_json::Value::String(route.clone()))
            .map(|r| labels::route(lang, r).to_string())
            .unwrap_or_else(|_| route.clone());
        let state = match &r.route_replied_at {
            Some(at) => format!("{} {}", lang.t("已答复", "replied"), local(app, at)),
            None => lang.t("待答复", "awaiting the reply").to_string(),
        };
        f.push(Fact {
            label: lang.t("上报/引导", "Escalated to").into(),
            value: format!("{name}（{} · {state}）", local(app, since)),
        });
    }
    if let Some(o) = &r.outcome {
        f.push(Fact {
            label: lang.t("结果", "Outcome").into(),
            value: labels::outcome_code(lang, o),
        });
    }
    f
}

pub(super) async fn case_page_with(
    app: &App,
    signed: &Signed,
    raw: &str,
    failed: Option<(&str, &FormData, AppError)>,
    flash: Option<String>,
    reveal: Option<&str>,
) -> Response {
    case_page_full(app, signed, raw, failed, flash, reveal, None).await
}

/// The case page, with a refused upload's message next to the upload form.
pub(super) async fn case_page_full(
    app: &App,
    signed: &Signed,
    raw: &str,
    failed: Option<(&str, &FormData, AppError)>,
    flash: Option<String>,
    reveal: Option<&str>,
    attach_error: Option<String>,
) -> Response {
    let lang = signed.web.lang;
    let l = match load(app, signed, raw, reveal).await {
        Ok(l) => l,
        Err(e) => return signed.error(e),
    };
    let attachments = match super::attachments::lines(app, signed, &l, reveal.is_some()).await {
        Ok(a) => a,
        // A role that reads the case but not its files sees no list.
        Err(e) if e.kind == ErrorKind::Forbidden => vec![],
        Err(e) => return signed.error(e),
    };
    let mut forms = forms(app, lang, &l, signed.actor.role);
    let mut status = StatusCode::OK;
    let mut unplaced = None;
    if let Some((action, data, e)) = &failed {
        let page = crate::page_status(e.kind);
        status = if page.is_server_error() || page == StatusCode::CONFLICT {
            page
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        match forms.iter_mut().find(|f| f.action == *action) {
            Some(f) => f.refill(data, e, lang),
            None => {
                unplaced = Some(if lang.is_en() {
                    e.title.clone()
                } else {
                    e.detail_zh.clone()
                })
            }
        }
    }
    let case = line(app, lang, &l.view);
    let mut chrome = signed.chrome(
        format!("{} {}", lang.t("案件", "Case"), case.short),
        if signed.actor.is_group_role() {
            "desk"
        } else {
            "supervision"
        },
    );
    chrome.flash = unplaced.or(flash);
    let page = CasePage {
        chrome,
        facts: facts(app, lang, &l),
        summary: l.view.row.summary.clone(),
        parties: l.parties.clone(),
        timeline: timeline(app, lang, &l),
        forms,
        supervisor: signed.actor.role == Role::Supervisor,
        revealed: reveal.is_some(),
        leader_note: signed.actor.role == Role::Member && l.case.status.is_open(),
        documents: available(&l),
        may_attach: signed.actor.is_group_role(),
        show_files: signed.actor.role != Role::Supervisor || reveal.is_some(),
        reveal_q: reveal
            .map(|r| format!("?reason={}", crate::encode(r)))
            .unwrap_or_default(),
        records: super::step_forms::choices(app, lang, &l, Choices::Records),
        max_mb: app.settings.attachment_max_bytes / (1024 * 1024),
        attach_error: attach_error.unwrap_or_default(),
        attachments,
        case,
    };
    let mut r = render(&page);
    *r.status_mut() = status;
    r
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct DoneQuery {
    pub done: Option<String>,
}

pub async fn case_page(
    State(app): State<App>,
    signed: Signed,
    Path(raw): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let flash = q
        .done
        .as_deref()
        .map(|d| labels::done(signed.web.lang, d).to_string());
    case_page_with(&app, &signed, &raw, None, flash, None).await
}

/// A supervisor sees the parties of a case in clear after giving a reason; the reveal is
/// written to the personal-data access log. Answered with the case page itself (nothing is
/// kept in the session: the next visit is masked again).
pub async fn reveal(
    State(app): State<App>,
    signed: Signed,
    Path(raw): Path<String>,
    Form(form): Form<FormData>,
) -> Response {
    if let Some(r) = signed.csrf_rejection(&form) {
        return r;
    }
    if signed.actor.role != Role::Supervisor {
        return signed.error(AppError::forbidden_zh((
            "only supervisors reveal masked personal data",
            "只有督查人员可以申请查看脱敏信息",
        )));
    }
    let reason = form.get("reason").trim().to_string();
    if reason.is_empty() {
        let flash = signed.t(
            "查看完整信息须填写理由。",
            "Give a reason to see the full data.",
        );
        return case_page_with(&app, &signed, &raw, None, Some(flash.to_string()), None).await;
    }
    let flash = signed.t(
        "已显示完整信息；本次查看已记入访问记录。",
        "Shown in full; this reveal is in the access log.",
    );
    case_page_with(
        &app,
        &signed,
        &raw,
        None,
        Some(flash.to_string()),
        Some(&reason),
    )
    .await
}
