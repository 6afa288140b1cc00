//! Opening a case: the form, kept picks from the registry, and the command.

use super::*;

#[derive(Debug, Clone)]
pub struct Pick {
    pub value: String,
    pub label: String,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "new_case.html")]
pub(super) struct NewCasePage {
    chrome: Chrome,
    form: FormData,
    errors: HashMap<String, String>,
    general: Option<String>,
    kinds: Vec<(String, String)>,
    communities: Vec<(String, String)>,
    causes: Vec<(String, String)>,
    work_items: Vec<(String, String)>,
    channels: Vec<(String, String)>,
    roles: Vec<(String, String)>,
    party_kinds: Vec<(String, String)>,
    /// The registry's fields of each new party row (named `p{i}_{name}` on the page).
    party_fields: Vec<Field>,
    /// Registry parties found by the search or chosen before, as `party_id|role`.
    picks: Vec<Pick>,
    searched: bool,
    now: String,
}

impl NewCasePage {
    /// The registration fields shown in each party row; the others fold under "more".
    fn basic(&self, name: &str) -> bool {
        matches!(
            name,
            "name" | "phone" | "building" | "unit" | "household" | "organisation"
        )
    }
}

impl FormData {
    /// Whether a field holds this value (selected options).
    pub fn is(&self, name: &str, value: &str) -> bool {
        self.get(name) == value
    }

    /// The value of a field, or a default when the form is new.
    pub fn or<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        if self.0.is_empty() {
            default
        } else {
            self.get(name)
        }
    }
}

pub(super) fn party_kinds(lang: Lang) -> Vec<(String, String)> {
    [
        ("resident", "居民", "Resident"),
        ("contractor", "施工单位代表", "Contractor's representative"),
        ("property_company", "物业公司代表", "Property company"),
        ("utility", "管线单位代表", "Utility"),
        (
            "enterprise",
            "企业或其他单位",
            "Enterprise or other organisation",
        ),
        ("other", "其他", "Other"),
    ]
    .iter()
    .map(|(v, zh, en)| (v.to_string(), lang.t(zh, en).to_string()))
    .collect()
}

pub(super) async fn new_case_form(
    app: &App,
    signed: &Signed,
    form: FormData,
    error: Option<AppError>,
    picks: Vec<Pick>,
    searched: bool,
) -> Response {
    let lang = signed.web.lang;
    let scope = match commands::scope(app, &signed.actor).await {
        Ok(s) => s,
        Err(e) => return signed.error(e),
    };
    let communities = app
        .reference
        .communities
        .iter()
        .filter(|c| scope.as_ref().is_none_or(|s| s.contains(&c.id)))
        .map(|c| {
            (
                c.id.to_string(),
                format!(
                    "{}（{}）",
                    lang.t(&c.name_zh, &c.name_en),
                    district_name(app, lang, c.district.as_str())
                ),
            )
        })
        .collect();
    let cats = |g: CategoryGroup| {
        app.reference
            .dispute_categories
            .iter()
            .filter(|c| c.group == g)
            .map(|c| {
                (
                    c.code.to_string(),
                    lang.t(&c.name_zh, &c.name_en).to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    let mut errors = HashMap::new();
    let mut general = None;
    if let Some(e) = &error {
        let message = if lang.is_en() {
            e.title.clone()
        } else {
            e.detail_zh.clone()
        };
        match e.fields.first() {
            Some((field, _)) => {
                let f = field.trim_start_matches('/').replace('/', ".");
                errors.insert(f, message);
            }
            None => general = Some(message),
        }
    }
    let mut chrome = signed.chrome(signed.t("登记新案件", "Open a case").into(), "desk");
    if errors.is_empty() && general.is_none() && error.is_some() {
        chrome.flash = None;
    }
    let page = NewCasePage {
        chrome,
        form,
        errors,
        general,
        kinds: vec![
            (
                "resident_objection".into(),
                labels::kind(lang, "resident_objection"),
            ),
            (
                "construction_obstruction".into(),
                labels::kind(lang, "construction_obstruction"),
            ),
        ],
        communities,
        causes: cats(CategoryGroup::Cause),
        work_items: cats(CategoryGroup::WorkItem),
        channels: labels::CHANNELS
            .iter()
            .map(|c| (enum_str(c), labels::channel(lang, *c).to_string()))
            .collect(),
        roles: labels::PARTY_ROLES
            .iter()
            .map(|r| (enum_str(r), labels::party_role(lang, *r).to_string()))
            .collect(),
        party_kinds: party_kinds(lang),
        party_fields: tiaojie_app::steps::PARTY_FIELDS
            .iter()
            .map(|f| form_field(lang, f, "", &|c| registry_choices(lang, c)))
            .collect(),
        picks,
        searched,
        now: crate::input_value(app, app.now()),
    };
    let mut r = render(&page);
    if let Some(e) = error {
        let status = crate::page_status(e.kind);
        *r.status_mut() = if status.is_client_error() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            status
        };
    }
    r
}

pub async fn new_case_page(State(app): State<App>, signed: Signed) -> Response {
    if !signed.actor.is_group_role() {
        return signed.error(AppError::forbidden_zh((
            "only mediation group members open cases",
            "只有矛盾调解小组成员可以登记案件",
        )));
    }
    new_case_form(&app, &signed, FormData::default(), None, vec![], false).await
}

pub(super) fn party_label(lang: Lang, v: &PartyView) -> String {
    match &v.data {
        Some(d) => {
            let mut s = d.name.clone();
            let place: Vec<&str> = [&d.building, &d.unit, &d.household]
                .iter()
                .filter_map(|x| x.as_deref())
                .collect();
            if !place.is_empty() {
                s.push_str(&format!("（{}）", place.join("-")));
            }
            if let Some(o) = &d.organisation {
                s.push_str(&format!(" {o}"));
            }
            s
        }
        None => lang.t("（已删除）", "(erased)").to_string(),
    }
}

/// The registry parties the form already carries (chosen before, or registered by an
/// earlier attempt that the rules then refused), kept checked.
pub(super) async fn kept_picks(app: &App, signed: &Signed, form: &FormData) -> Vec<Pick> {
    let mut picks = Vec::new();
    for v in form.all("existing") {
        let Some((pid, _)) = v.split_once('|') else {
            continue;
        };
        let label = match parties::view(app, &signed.actor, &signed.web.meta, pid, None, None).await
        {
            Ok(p) => party_label(signed.web.lang, &p),
            Err(_) => continue,
        };
        let role = v
            .split_once('|')
            .and_then(|(_, r)| {
                serde_json::from_value::<PartyRole>(serde_json::Value::String(r.into())).ok()
            })
            .map(|r| labels::party_role(signed.web.lang, r))
            .unwrap_or("");
        picks.push(Pick {
            value: v.clone(),
            label: format!("{label} · {role}"),
            checked: true,
        });
    }
    picks
}

pub async fn new_case(
    State(app): State<App>,
    signed: Signed,
    Form(form): Form<FormData>,
) -> Response {
    if let Some(r) = signed.csrf_rejection(&form) {
        return r;
    }
    if !signed.actor.is_group_role() {
        return signed.error(AppError::forbidden_zh((
            "only mediation group members open cases",
            "只有矛盾调解小组成员可以登记案件",
        )));
    }
    let mut picks = kept_picks(&app, &signed, &form).await;
    if form.get("do") == "search" {
        let (name, phone) = (form.opt("search_name"), form.opt("search_phone"));
        if name.is_none() && phone.is_none() {
            let e = unprocessable(
                "search_name",
                "请输入姓名或电话再查找",
                "enter a name or a phone number to search",
            );
            return new_case_form(&app, &signed, form, Some(e), picks, false).await;
        }
        // The second box takes a phone number or an ID number.
        let is_id = phone.is_some_and(|v| {
            v.chars().any(|c| c.is_ascii_alphabetic())
                || v.chars().filter(|c| c.is_ascii_digit()).count() >= 15
        });
        let q = parties::SearchFor {
            name,
            phone: phone.filter(|_| !is_id),
            id_number: phone.filter(|_| is_id),
            repeat_obstructor: false,
            reason: None,
        };
        let found = match parties::search(&app, &signed.actor, &signed.web.meta, q).await {
            Ok(f) => f,
            Err(e) => return new_case_form(&app, &signed, form, Some(e), picks, false).await,
        };
        let role = form.opt("search_role").unwrap_or("complainant").to_string();
        for p in found {
            let value = format!("{}|{}", p.party_id, role);
            if picks.iter().any(|x| x.value.starts_with(&p.party_id)) {
                continue;
            }
            let role_label =
                serde_json::from_value::<PartyRole>(serde_json::Value::String(role.clone()))
                    .map(|r| labels::party_role(signed.web.lang, r))
                    .unwrap_or("");
            picks.push(Pick {
                value,
                label: format!("{} · {role_label}", party_label(signed.web.lang, &p)),
                checked: false,
            });
        }
        return new_case_form(&app, &signed, form, None, picks, true).await;
    }
    match open_from_form(&app, &signed, &form).await {
        Ok((case_id, version)) => {
            let _ =
                await_consistency(&app, Some(&consistency_token("Case", &case_id, version))).await;
            Redirect::to(&format!("/cases/{case_id}?done=opened")).into_response()
        }
        Err((e, registered)) => {
            // Parties registered before the rules refused the case stay registered: carry
            // them as chosen parties so that a second attempt does not register them again.
            let mut form = form;
            for (i, (pid, role)) in registered.iter().enumerate() {
                let prefix = format!("p{}_", i + 1);
                form.0.retain(|(k, _)| !k.starts_with(&prefix));
                let value = format!("{pid}|{role}");
                form.0.push(("existing".into(), value.clone()));
                picks.push(Pick {
                    value,
                    label: format!(
                        "{} · {}",
                        form_name_of(&form, i + 1),
                        signed.t("已登记", "registered")
                    ),
                    checked: true,
                });
            }
            let picks = if registered.is_empty() {
                picks
            } else {
                kept_picks(&app, &signed, &form).await
            };
            new_case_form(&app, &signed, form, Some(e), picks, false).await
        }
    }
}

/// A party's registration from the form's fields named `{prefix}{field}` (see
/// [`tiaojie_app::steps::PARTY_FIELDS`]); `parties::validate` checks it.
pub(crate) fn party_from_form(form: &FormData, prefix: &str) -> AppResult<PartyData> {
    let opt = |f: &str| form.opt(&format!("{prefix}{f}")).map(str::to_string);
    fn pick<T: serde::de::DeserializeOwned>(
        v: Option<String>,
        field: String,
        zh: &str,
        en: &str,
    ) -> AppResult<Option<T>> {
        v.map(|v| serde_json::from_value(serde_json::Value::String(v)))
            .transpose()
            .map_err(|_| unprocessable(&field, zh, en))
    }
    let age = opt("age")
        .map(|a| a.trim().trim_end_matches('岁').parse::<u8>())
        .transpose()
        .map_err(|_| {
            unprocessable(
                &format!("{prefix}age"),
                "年龄应为数字",
                "an age is a number",
            )
        })?;
    Ok(PartyData {
        name: opt("name").unwrap_or_default(),
        phone: opt("phone"),
        building: opt("building"),
        unit: opt("unit"),
        household: opt("household"),
        organisation: opt("organisation"),
        gender: pick(
            opt("gender"),
            format!("{prefix}gender"),
            "性别不正确",
            "gender is not valid",
        )?,
        ethnicity: opt("ethnicity"),
        birth_date: opt("birth_date"),
        age,
        id_type: pick(
            opt("id_type"),
            format!("{prefix}id_type"),
            "证件类型不正确",
            "ID type is not valid",
        )?,
        id_number: opt("id_number"),
        address: opt("address"),
        workplace: opt("workplace"),
        legal_representative: opt("legal_representative"),
        agent: opt("agent"),
    })
}

pub(super) fn form_name_of(form: &FormData, i: usize) -> String {
    form.get(&format!("p{i}_name")).to_string()
}

pub(super) const NEW_PARTY_ROWS: usize = 2;

/// Registers the new parties and opens the case. On refusal, answers the problem and the
/// parties registered on the way.
pub(super) async fn open_from_form(
    app: &App,
    signed: &Signed,
    form: &FormData,
) -> Result<(String, u64), (AppError, Vec<(String, String)>)> {
    let fail = |e: AppError| (e, vec![]);
    let kind: CaseKind = code(form, "kind", "案件类型").map_err(fail)?;
    let community = id(form, "community", "小区", CommunityId::parse).map_err(fail)?;
    let category = id(form, "category", "纠纷类别", CategoryCode::parse).map_err(fail)?;
    let channel: IntakeChannel = code(form, "channel", "来源渠道").map_err(fail)?;
    let occurred_at = when(app, form, "occurred_at").map_err(fail)?;
    let mut refs: Vec<PartyRef> = Vec::new();
    for v in form.all("existing") {
        let Some((pid, role)) = v.split_once('|') else {
            continue;
        };
        let party_id = PartyId::parse(pid).map_err(|_| {
            fail(unprocessable(
                "parties",
                "当事人不正确",
                "a chosen party is not valid",
            ))
        })?;
        let role: PartyRole = serde_json::from_value(serde_json::Value::String(role.into()))
            .map_err(|_| {
                fail(unprocessable(
                    "parties",
                    "当事人身份不正确",
                    "a party role is not valid",
                ))
            })?;
        refs.push(PartyRef { party_id, role });
    }
    // Check every new party before registering any.
    let mut new_parties = Vec::new();
    for i in 1..=NEW_PARTY_ROWS {
        let p = |f: &str| format!("p{i}_{f}");
        if form.opt(&p("name")).is_none() && form.opt(&p("phone")).is_none() {
            continue;
        }
        let role: PartyRole = code(form, &p("role"), "当事人身份").map_err(fail)?;
        let pkind: PartyKind = code(form, &p("kind"), "当事人类别").map_err(fail)?;
        let data = party_from_form(form, &p("")).map_err(fail)?;
        let data = parties::validate(&data, app.today()).map_err(|mut e| {
            for (field, _) in &mut e.fields {
                *field = p(field.trim_start_matches('/'));
            }
            fail(e)
        })?;
        new_parties.push((role, pkind, data));
    }
    let incident = if kind == CaseKind::ConstructionObstruction {
        Some(IncidentInput {
            incident_id: IncidentId::new(),
            occurred_at,
            location: form.get("incident_location").to_string(),
            work_item: id(
                form,
                "incident_work_item",
                "受阻施工项目",
                CategoryCode::parse,
            )
            .map_err(fail)?,
            obstructing_parties: vec![],
            work_stopped_minutes: hours_to_minutes(form, "incident_hours").map_err(fail)?,
            police_called: form.has("incident_police"),
            description: form.get("incident_description").to_string(),
        })
    } else {
        None
    };
    let mut registered = Vec::new();
    for (role, pkind, data) in new_parties {
        match parties::register(
            app,
            &signed.actor,
            &signed.web.meta,
            pkind,
            &community,
            &data,
        )
        .await
        {
            Ok(pid) => {
                registered.push((pid.to_string(), enum_str(&role)));
                refs.push(PartyRef {
                    party_id: pid,
                    role,
                });
            }
            Err(e) => return Err((e, registered)),
        }
    }
    let incident = incident.map(|mut i| {
        i.obstructing_parties = refs
            .iter()
            .filter(|r| r.role == PartyRole::Obstructor)
            .map(|r| r.party_id)
            .collect();
        i
    });
    let case_id = CaseId::new();
    app.stores.note_new_case(&case_id.to_string());
    let command = CaseCommand::OpenCase(OpenCase {
        kind,
        community,
        category,
        summary: form.get("summary").to_string(),
        occurred_at,
        channel,
        parties: refs,
        incident,
    });
    match commands::case_command(
        app,
        &signed.actor,
        &signed.web.meta,
        &case_id,
        command,
        None,
    )
    .await
    {
        Ok(o) => Ok((o.id, o.version)),
        Err(mut e) => {
            for (field, _) in &mut e.fields {
                *field = match field.as_str() {
                    "location" | "incident.location" => "incident_location",
                    "description" | "incident.description" => "incident_description",
                    "work_stopped_minutes" => "incident_hours",
                    "incident.work_item" => "incident_work_item",
                    "incident.occurred_at" => "occurred_at",
                    other => other,
                }
                .to_string();
            }
            Err((e, registered))
        }
    }
}
