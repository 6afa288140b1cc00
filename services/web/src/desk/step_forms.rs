//! The case page's step forms, derived from the step table, and their handling.

use super::*;

pub fn steps(case: &Case, role: Role) -> Vec<CaseStep> {
    if role == Role::System {
        return vec![];
    }
    case.available_steps()
        .into_iter()
        .filter(|s| crate::auth::may_run_case_step(role, s.command_name()).is_ok())
        .collect()
}

/// The choices of a field, filled from the case.
pub(super) fn choices(app: &App, lang: Lang, l: &Loaded, from: Choices) -> Vec<(String, String)> {
    let t = |zh: &'static str, en: &'static str| lang.t(zh, en);
    let at = |ts: &Timestamp| local(app, &ts.to_canonical());
    match from {
        Choices::Members => l
            .members
            .iter()
            .map(|(id, n)| (id.to_string(), n.clone()))
            .collect(),
        Choices::Parties => l
            .parties
            .iter()
            .map(|p| (p.id.clone(), format!("{}（{}）", p.name, p.role)))
            .collect(),
        Choices::SessionsOpen => l
            .case
            .sessions
            .iter()
            .filter(|(_, s)| s.held_at.is_none())
            .map(|(id, s)| {
                let when = at(&s.scheduled_for);
                (id.to_string(), format!("{when} {}", t("调解会", "session")))
            })
            .collect(),
        Choices::SessionsHeld => l
            .case
            .sessions
            .iter()
            .filter_map(|(id, s)| {
                s.held_at.map(|h| {
                    let held = t("已召开的调解会", "held session");
                    (id.to_string(), format!("{} {held}", at(&h)))
                })
            })
            .collect(),
        Choices::Incidents => l
            .case
            .incidents
            .iter()
            .map(|(id, i)| {
                let when = at(&i.occurred_at);
                (
                    id.to_string(),
                    format!("{when} {}", t("阻工事件", "incident")),
                )
            })
            .collect(),
        Choices::StoppedIncidents => l
            .case
            .incidents
            .iter()
            .filter(|(_, i)| i.work_stopped_minutes > 0 && i.resumed_at.is_none())
            .map(|(id, i)| {
                (
                    id.to_string(),
                    format!(
                        "{} {}（{}{}）",
                        at(&i.occurred_at),
                        t("阻工事件", "incident"),
                        t("停工", "stopped "),
                        format_hours(i.work_stopped_minutes)
                    ),
                )
            })
            .collect(),
        Choices::OpenOrders => l
            .case
            .orders
            .iter()
            .filter(|(_, answered)| !**answered)
            .map(|(id, _)| {
                let id = id.to_string();
                let label = format!("{} {}", t("督办", "order"), short(&id));
                (id, label)
            })
            .collect(),
        Choices::WorkItems => app
            .reference
            .dispute_categories
            .iter()
            .filter(|c| c.group == CategoryGroup::WorkItem)
            .map(|c| {
                (
                    c.code.to_string(),
                    lang.t(&c.name_zh, &c.name_en).to_string(),
                )
            })
            .collect(),
        Choices::Routes => labels::ROUTES
            .iter()
            .map(|r| (enum_str(r), labels::route(lang, *r).to_string()))
            .collect(),
        Choices::Satisfactions => labels::SATISFACTIONS
            .iter()
            .map(|s| (enum_str(s), labels::satisfaction(lang, *s).to_string()))
            .collect(),
        Choices::Performances => labels::PERFORMANCES
            .iter()
            .map(|p| {
                (
                    p.as_str().to_string(),
                    labels::performance(lang, p.as_str()).to_string(),
                )
            })
            .collect(),
        Choices::CourtDecisions => vec![
            (
                "confirmed".into(),
                t("确认调解协议有效", "confirmed").to_string(),
            ),
            (
                "refused".into(),
                t("不予确认（驳回申请）", "refused").to_string(),
            ),
        ],
        Choices::Outcomes => labels::OUTCOMES
            .iter()
            .map(|o| {
                (
                    o.as_str().to_string(),
                    labels::outcome(lang, *o).to_string(),
                )
            })
            .collect(),
        Choices::PartyRoles => labels::PARTY_ROLES
            .iter()
            .map(|r| (enum_str(r), labels::party_role(lang, *r).to_string()))
            .collect(),
        Choices::PartyKinds => party_kinds(lang),
        Choices::Genders | Choices::Ethnicities | Choices::IdTypes => registry_choices(lang, from),
        Choices::CorrectableFields => tiaojie_app::steps::CORRECTABLE_FIELDS
            .iter()
            .map(|f| {
                let label = if lang.is_en() {
                    f.to_string()
                } else {
                    field_zh(f).to_string()
                };
                (f.to_string(), label)
            })
            .chain([(String::from("other"), t("其他", "other").to_string())])
            .collect(),
        Choices::Attendees => {
            let group = t("调解小组", "group");
            l.members
                .iter()
                .map(|(id, n)| (format!("m:{id}"), format!("{n}（{group}）")))
                .chain(
                    l.parties
                        .iter()
                        .map(|p| (format!("p:{}", p.id), format!("{}（{}）", p.name, p.role))),
                )
                .collect()
        }
        // A group's choices: not on a case page.
        Choices::OrgRoles
        | Choices::GroupMembers
        | Choices::OtherCommunities
        | Choices::GroupCommunities => vec![],
        Choices::Records => l
            .events
            .iter()
            .rev()
            .map(|e| {
                let what = if lang.is_en() {
                    labels::event_en(e.payload.type_name()).to_string()
                } else {
                    e.payload.describe_zh()
                };
                let n = e.sequence;
                (
                    n.to_string(),
                    format!(
                        "{} {what}",
                        lang.t(&format!("第{n}项"), &format!("No. {n}"))
                    ),
                )
            })
            .collect(),
    }
}

/// The choices of a party's registration fields.
pub(crate) fn registry_choices(lang: Lang, from: Choices) -> Vec<(String, String)> {
    match from {
        Choices::Genders => parties::Gender::ALL
            .iter()
            .map(|g| {
                let en = match g {
                    parties::Gender::Male => "Male",
                    parties::Gender::Female => "Female",
                };
                (g.code().to_string(), lang.t(g.label_zh(), en).to_string())
            })
            .collect(),
        Choices::Ethnicities => tiaojie_app::party_checks::ETHNICITIES
            .iter()
            .map(|e| (e.to_string(), e.to_string()))
            .collect(),
        Choices::IdTypes => parties::IdType::ALL
            .iter()
            .map(|t| (t.code().to_string(), t.label_zh().to_string()))
            .collect(),
        _ => vec![],
    }
}

/// A form field as the step table defines it.
pub(crate) fn form_field(
    lang: Lang,
    def: &FieldDef,
    now: &str,
    choices: &dyn Fn(Choices) -> Vec<(String, String)>,
) -> Field {
    let label = lang.t(def.label.0, def.label.1);
    let field = match def.input {
        Input::Text | Input::OtherAttendees => Field::new(def.name, label, Kind::Text),
        Input::Area => Field::new(def.name, label, Kind::Area),
        Input::Time { now: prefill } => {
            let f = Field::new(def.name, label, Kind::DateTime)
                .hint(lang.t("北京时间", "Beijing time"));
            if prefill {
                f.value(now)
            } else {
                f
            }
        }
        Input::Hours => Field::new(def.name, label, Kind::Number).value("0"),
        Input::Date => Field::new(def.name, label, Kind::Date),
        // Expanded into one text per party by `forms`.
        Input::PerParty => Field::new(def.name, label, Kind::Area),
        Input::Choice { from, blank } => {
            let mut options = choices(from);
            if let Some((zh, en)) = blank {
                options.insert(0, (String::new(), lang.t(zh, en).to_string()));
            }
            Field::new(def.name, label, Kind::Select).options(options)
        }
        Input::Several(from) => Field::new(def.name, label, Kind::Multi).options(choices(from)),
        Input::Flag => Field::new(def.name, label, Kind::Flag),
    };
    let field = match def.hint {
        Some((zh, en)) => field.hint(lang.t(zh, en)),
        None => field,
    };
    if def.required {
        field.required()
    } else {
        field
    }
}

/// The forms of the steps this role may take on the case now, from the step table.
pub(super) fn forms(app: &App, lang: Lang, l: &Loaded, role: Role) -> Vec<FormView> {
    let id = &l.view.row.case_id;
    let now = crate::input_value(app, app.now());
    steps(&l.case, role)
        .into_iter()
        .map(|step| {
            let def = case_step(step);
            let name = step.name();
            let mut form = FormView::new(
                name,
                lang.t(def.title.0, def.title.1),
                format!("/cases/{id}/do/{name}"),
                lang.t(def.submit.0, def.submit.1),
            );
            form.danger = def.danger;
            let choices = |from| choices(app, lang, l, from);
            for f in def.form_fields() {
                if f.input == Input::PerParty {
                    let field = form_field(lang, f, &now, &choices);
                    for (party, who) in choices(Choices::Parties) {
                        let mut one = field.clone();
                        one.name = format!("{}.{party}", f.name);
                        one.label = format!("{}：{who}", field.label);
                        form = form.field(one);
                    }
                    continue;
                }
                form = form.field(form_field(lang, f, &now, &choices));
                if f.input == (Input::Time { now: true }) {
                    // What the page filled in, to tell "left as it was" from a time typed.
                    form = form.field(
                        Field::new(&format!("{}__served", f.name), "", Kind::Hidden).value(&now),
                    );
                }
            }
            if def.step == CaseStep::Incident && role != Role::Supervisor {
                // On site, the photo goes with the incident, in one form.
                form = form.field(
                    Field::new(
                        "photo",
                        lang.t("现场照片（可拍照）", "Photo of the site (camera)"),
                        Kind::Photo,
                    )
                    .hint(lang.t(
                        "照片中的位置信息会去除，按本案密钥加密保存",
                        "location data is removed; sealed with the case's key",
                    )),
                );
            }
            form.field(Field::new("version", "", Kind::Hidden).value(l.version.to_string()))
        })
        .collect()
}

/// Runs one step from its form; back to the case page, or the page with the form refilled.
/// A form with a photo (the incident on site) comes as multipart: the photo is checked
/// before the step runs, and attached to the record the step made.
pub async fn act(
    State(app): State<App>,
    signed: Signed,
    Path((raw, action)): Path<(String, String)>,
    req: axum::extract::Request,
) -> Response {
    let multipart = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("multipart/form-data"));
    let (form, photo) = if multipart {
        use axum::extract::FromRequest;
        let parts = match axum::extract::Multipart::from_request(req, &app).await {
            Ok(m) => m,
            Err(r) => return r.into_response(),
        };
        match super::attachments::read_form(parts, app.settings.attachment_max_bytes).await {
            Ok(x) => x,
            Err(e) => return signed.error(e),
        }
    } else {
        let limit = app.settings.body_limit_bytes;
        let req = req.map(|b| axum::body::Body::new(http_body_util::Limited::new(b, limit)));
        use axum::extract::FromRequest;
        match Form::<FormData>::from_request(req, &app).await {
            Ok(Form(f)) => (f, None),
            Err(r) => return r.into_response(),
        }
    };
    if let Some(r) = signed.csrf_rejection(&form) {
        return r;
    }
    let Ok(case_id) = CaseId::parse(&raw) else {
        return signed.error(AppError::not_found("case"));
    };
    if let Some(bytes) = &photo {
        if let Err(e) = tiaojie_app::attachments::check(&app, bytes).await {
            let e = e.with_field("photo", "refused");
            return case_page_with(&app, &signed, &raw, Some((&action, &form, e)), None, None)
                .await;
        }
    }
    let result = run_step(&app, &signed, &case_id, &action, &form).await;
    match result {
        Ok(mut version) => {
            if let Some(bytes) = photo {
                let upload = tiaojie_app::attachments::Upload {
                    bytes,
                    caption: Some(signed.t("现场照片", "Photo of the site").to_string()),
                    documents: Some(version),
                };
                let meta = RequestMeta::new_request();
                match tiaojie_app::attachments::add(&app, &signed.actor, &meta, &case_id, upload)
                    .await
                {
                    Ok(a) => version = a.outcome.version,
                    Err(e) => {
                        let why = if signed.web.lang.is_en() {
                            e.title
                        } else {
                            e.detail_zh
                        };
                        let flash = signed.t(
                            "事件已记录，但照片未能保存：",
                            "The incident is recorded, but the photo was not saved: ",
                        );
                        return case_page_full(
                            &app,
                            &signed,
                            &raw,
                            None,
                            Some(format!("{flash}{why}")),
                            None,
                            None,
                        )
                        .await;
                    }
                }
            }
            let _ = await_consistency(
                &app,
                Some(&consistency_token("Case", &case_id.to_string(), version)),
            )
            .await;
            Redirect::to(&format!("/cases/{case_id}?done={}", crate::encode(&action)))
                .into_response()
        }
        Err(e) => case_page_with(&app, &signed, &raw, Some((&action, &form, e)), None, None).await,
    }
}

/// A form's refusal next to its field.
pub(crate) fn refuse(def: &FieldDef, zh: &str, en: &str) -> AppError {
    unprocessable(def.name, zh, en)
}

/// The step's JSON body from its form, as the step table's fields say; and the value of
/// the path part, for steps that have one.
pub(crate) fn form_body(
    app: &App,
    fields: &[FieldDef],
    path_part: Option<Sub>,
    f: &FormData,
) -> AppResult<(serde_json::Value, Option<String>)> {
    use serde_json::{json, Value};
    let mut body = serde_json::Map::new();
    let mut sub = None;
    for fd in fields {
        let (zh, en) = fd.label;
        let raw = f.opt(fd.name);
        let value = match fd.input {
            Input::Text | Input::Area if fd.required => Value::String(f.get(fd.name).to_string()),
            Input::Text | Input::Area => match raw {
                Some(v) => Value::String(v.to_string()),
                None => continue,
            },
            Input::Time { now: prefilled } => match raw {
                None if fd.required => {
                    return Err(refuse(fd, "请填写时间", &format!("{en} is required")))
                }
                None => continue,
                // The page fills a business time with the minute it was served; left as it is
                // (or set to the current minute), it means now, to the second, so that a step
                // recorded in the same minute as the one before it is not "earlier".
                Some(s)
                    if prefilled
                        && (f.opt(&format!("{}__served", fd.name)) == Some(s)
                            || s == crate::input_value(app, app.now())) =>
                {
                    continue
                }
                Some(s) => match parse_local(app, s) {
                    Some(t) => Value::String(t.to_canonical()),
                    None => {
                        return Err(refuse(
                            fd,
                            "时间格式不正确（年-月-日 时:分）",
                            &format!("{en} is not a time"),
                        ))
                    }
                },
            },
            Input::Hours => json!(hours_to_minutes(f, fd.name)?),
            Input::PerParty => {
                let prefix = format!("{}.", fd.name);
                let list: Vec<Value> =
                    f.0.iter()
                        .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?, v.trim())))
                        .filter(|(_, v)| !v.is_empty())
                        .map(|(party, duty)| json!({"party_id": party, "duty": duty}))
                        .collect();
                Value::Array(list)
            }
            Input::Date => match raw {
                None if fd.required => {
                    return Err(refuse(
                        fd,
                        &format!("请填写{zh}"),
                        &format!("{en} is required"),
                    ))
                }
                None => continue,
                Some(s) => Value::String(s.to_string()),
            },
            Input::Choice { from, .. } => match raw {
                None if fd.required => {
                    return Err(refuse(
                        fd,
                        &format!("请选择{zh}"),
                        &format!("choose the {en}"),
                    ))
                }
                None => continue,
                Some(v) if path_part.is_some_and(|s| s.param == fd.key) => {
                    sub = Some(v.to_string());
                    continue;
                }
                Some(v) if from == Choices::Records => match v.parse::<u64>() {
                    Ok(n) => json!(n),
                    Err(_) => {
                        return Err(refuse(
                            fd,
                            &format!("{zh}不正确"),
                            &format!("{en} is not valid"),
                        ))
                    }
                },
                Some(v) => Value::String(v.to_string()),
            },
            Input::Several(Choices::Attendees) => {
                let mut attendees = Vec::new();
                for a in f.all(fd.name) {
                    attendees.push(match a.split_once(':') {
                        Some(("m", id)) => json!({"kind": "group_member", "member_id": id}),
                        Some(("p", id)) => json!({"kind": "party", "party_id": id}),
                        _ => {
                            return Err(refuse(
                                fd,
                                &format!("{zh}不正确"),
                                &format!("{en} is not valid"),
                            ))
                        }
                    });
                }
                Value::Array(attendees)
            }
            Input::Several(_) => {
                Value::Array(f.all(fd.name).into_iter().map(Value::String).collect())
            }
            Input::Flag => Value::Bool(f.has(fd.name)),
            Input::OtherAttendees => {
                let others = f
                    .get(fd.name)
                    .split([',', '，', '、'])
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(|role| json!({"kind": "other", "role": role}));
                let list = body.entry(fd.key).or_insert_with(|| Value::Array(vec![]));
                if let Value::Array(list) = list {
                    list.extend(others);
                }
                continue;
            }
        };
        body.insert(fd.key.to_string(), value);
    }
    Ok((Value::Object(body), sub))
}

/// The body of "add a party" from its form: the party is registered first.
pub(super) async fn new_party_body(
    app: &App,
    signed: &Signed,
    case_id: &CaseId,
    f: &FormData,
) -> AppResult<serde_json::Value> {
    let role: PartyRole = code(f, "role", "身份")?;
    let kind: PartyKind = code(f, "kind", "类别")?;
    let (case, _) = app.stores.load_case(&case_id.to_string()).await?;
    let community = case.community.ok_or_else(|| AppError::not_found("case"))?;
    let data = party_from_form(f, "")?;
    let party_id = parties::register(
        app,
        &signed.actor,
        &signed.web.meta,
        kind,
        &community,
        &data,
    )
    .await?;
    Ok(serde_json::json!({"party": PartyRef { party_id, role }}))
}

/// A step's refusal of its body, next to the field it names.
pub(crate) fn step_refusal(fields: &[FieldDef], e: StepError) -> AppError {
    match e {
        StepError::Body { path, message } => {
            let key = path.split(['.', '[']).next().unwrap_or_default();
            match fields.iter().find(|f| f.key == key) {
                Some(fd) => refuse(
                    fd,
                    &format!("{}不正确", fd.label.0),
                    &format!("{} is not valid", fd.label.1),
                ),
                None => unprocessable("", "填写的内容不正确", &message),
            }
        }
        // A path part that names nothing (a session, an order) is the field that chose it.
        StepError::App(e) => match e
            .fields
            .iter()
            .filter(|_| e.kind == ErrorKind::NotFound)
            .find_map(|(key, _)| fields.iter().find(|f| f.key == key))
        {
            Some(fd) => refuse(
                fd,
                &format!("{}不正确", fd.label.0),
                &format!("{} is not valid", fd.label.1),
            ),
            None => {
                // A rule's refusal that names a body key is shown at the form field that
                // fills it.
                let mut e = e;
                for (key, _) in &mut e.fields {
                    if let Some(fd) = fields.iter().find(|f| f.key == key.as_str()) {
                        *key = fd.name.to_string();
                    }
                }
                e
            }
        },
    }
}

pub(super) async fn run_step(
    app: &App,
    signed: &Signed,
    case_id: &CaseId,
    action: &str,
    f: &FormData,
) -> AppResult<u64> {
    let expected: Option<u64> = f.opt("version").and_then(|v| v.parse().ok());
    let def = case_step(CaseStep::parse(action).ok_or_else(|| AppError::not_found("step"))?);
    commands::guard_case_step(app, &signed.actor, case_id, def.step.command_name()).await?;
    let (body, sub) = match def.form {
        FormShape::Fields => form_body(app, def.fields, def.sub, f)?,
        FormShape::NewParty => (new_party_body(app, signed, case_id, f).await?, None),
    };
    let cx = StepContext::of(app, &signed.actor, sub.as_deref());
    let command = (def.parse)(body, &cx)
        .map_err(|e| step_refusal(def.fields, e))?
        .command;
    let o = commands::case_command(app, &signed.actor, &signed.web.meta, case_id, command, expected)
        .await
        .map_err(|e| {
            if e.kind == ErrorKind::VersionMismatch {
                AppError::new(ErrorKind::Conflict,
                    "stale_page",
                    "Someone recorded something on this case since the page was loaded; check the timeline, then submit again",
                    "此案件在您打开页面后已有新的记录，请查看最新记录后再提交",
                )
            } else {
                e
            }
        })?;
    Ok(o.version)
}
