//! A party's page: the registration record as the viewer may see it (in clear for the
//! mediation group, masked for supervisors), the cases that name the party, the
//! repeat-obstructor flag, and for the group a correction form with every registration
//! field, its reason kept in the access log.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use tiaojie_events::PartyId;

use super::desk::{party_from_form, registry_choices};
use super::forms::{Field, FormView, Kind};
use super::{labels, render, Chrome, FormData, Signed};
use crate::app::App;
use crate::app_error::{AppError, AppResult};
use crate::parties::{self, PartyData, PartyPatch, PartyView};
use crate::steps::PARTY_FIELDS;

#[derive(Debug, Default, Deserialize)]
pub struct PartyQuery {
    /// The case the viewer came from (a party registered elsewhere is seen through it).
    case: Option<String>,
    done: Option<String>,
}

#[derive(Template)]
#[template(path = "party.html")]
struct PartyPage {
    chrome: Chrome,
    party: PartyView,
    facts: Vec<(String, String)>,
    cases: Vec<(String, String, String)>,
    form: Option<FormView>,
    case: String,
}

/// A registration field's value: as shown (`shown`: gender and ID type in words), or as the
/// form sends it (their codes).
fn value_of(d: &PartyData, name: &str, shown: bool) -> String {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    match name {
        "name" => d.name.clone(),
        "phone" => text(&d.phone),
        "gender" => d
            .gender
            .map(|g| if shown { g.label_zh() } else { g.code() }.to_string())
            .unwrap_or_default(),
        "ethnicity" => text(&d.ethnicity),
        "birth_date" => text(&d.birth_date),
        "age" => d.age.map(|a| a.to_string()).unwrap_or_default(),
        "id_type" => d
            .id_type
            .map(|t| if shown { t.label_zh() } else { t.code() }.to_string())
            .unwrap_or_default(),
        "id_number" => text(&d.id_number),
        "building" => text(&d.building),
        "unit" => text(&d.unit),
        "household" => text(&d.household),
        "address" => text(&d.address),
        "workplace" => text(&d.workplace),
        "organisation" => text(&d.organisation),
        "legal_representative" => text(&d.legal_representative),
        "agent" => text(&d.agent),
        _ => String::new(),
    }
}

/// The record's fields as label and value, in the order of the registration form.
fn facts(signed: &Signed, d: &PartyData) -> Vec<(String, String)> {
    let lang = signed.web.lang;
    PARTY_FIELDS
        .iter()
        .map(|def| {
            (
                lang.t(def.label.0, def.label.1).to_string(),
                value_of(d, def.name, true),
            )
        })
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

/// The correction form, filled with the record (or with what was typed).
fn correction_form(signed: &Signed, id: &str, d: &PartyData, case: &str) -> FormView {
    let lang = signed.web.lang;
    let mut form = FormView::new(
        "correct",
        lang.t("更正登记信息", "Correct the record"),
        format!("/parties/{id}"),
        lang.t("保存更正", "Save the correction"),
    );
    for def in PARTY_FIELDS {
        let f = super::desk::form_field(lang, def, "", &|c| registry_choices(lang, c));
        form = form.field(f.value(value_of(d, def.name, false)));
    }
    form = form.field(
        Field::new(
            "reason",
            lang.t("更正理由（记入查阅记录）", "Why (kept in the access log)"),
            Kind::Text,
        )
        .required(),
    );
    form.field(Field::new("case", "", Kind::Hidden).value(case))
}

async fn page(
    app: &App,
    signed: &Signed,
    raw: &str,
    case: Option<&str>,
    refused: Option<(&FormData, AppError)>,
    flash: Option<String>,
) -> Response {
    let Ok(id) = PartyId::parse(raw).map(|p| p.to_string()) else {
        return signed.error(AppError::not_found("party"));
    };
    let case = case.filter(|c| !c.is_empty());
    let party = match parties::view(app, &signed.actor, &signed.web.meta, &id, None, case).await {
        Ok(p) => p,
        Err(e) => return signed.error(e),
    };
    let lang = signed.web.lang;
    let cases = match cases_of(app, &id).await {
        Ok(c) => c,
        Err(e) => return signed.error(e),
    };
    let data = party.data.clone().unwrap_or_default();
    let mut form = (signed.actor.is_group_role() && party.visibility == "clear")
        .then(|| correction_form(signed, &id, &data, case.unwrap_or_default()));
    let mut status = StatusCode::OK;
    if let (Some(f), Some((typed, e))) = (form.as_mut(), refused) {
        status = StatusCode::UNPROCESSABLE_ENTITY;
        f.refill(typed, &e, lang);
    }
    let mut chrome = signed.chrome(
        format!("{} {}", lang.t("当事人", "Party"), data.name),
        "desk",
    );
    chrome.flash = flash;
    let mut r = render(&PartyPage {
        chrome,
        facts: facts(signed, &data),
        cases,
        form,
        case: case.unwrap_or_default().to_string(),
        party,
    });
    *r.status_mut() = status;
    r
}

/// The cases naming the party: (case id, number or short id, role).
async fn cases_of(app: &App, id: &str) -> AppResult<Vec<(String, String, String)>> {
    let named = tiaojie_projections::models::case_parties::cases_of(&app.db, id).await?;
    let ids: Vec<&str> = named.iter().map(|(c, _)| c.as_str()).collect();
    let numbers = crate::numbering::texts(app, &ids).await?;
    Ok(named
        .iter()
        .map(|(c, role)| {
            let role = serde_json::from_value(serde_json::Value::String(role.clone()))
                .map(|r| labels::party_role(super::Lang::Zh, r).to_string())
                .unwrap_or_else(|_| role.clone());
            let number = numbers
                .get(c)
                .cloned()
                .unwrap_or_else(|| c.chars().take(8).collect());
            (c.clone(), number, role)
        })
        .collect())
}

pub async fn view(
    State(app): State<App>,
    signed: Signed,
    Path(raw): Path<String>,
    Query(q): Query<PartyQuery>,
) -> Response {
    let flash = q.done.is_some().then(|| {
        signed
            .t(
                "已更正；原登记内容和更正理由记入查阅记录。",
                "Corrected; the reason is in the access log.",
            )
            .to_string()
    });
    page(&app, &signed, &raw, q.case.as_deref(), None, flash).await
}

pub async fn correct(
    State(app): State<App>,
    signed: Signed,
    Path(raw): Path<String>,
    Form(form): Form<FormData>,
) -> Response {
    if let Some(r) = signed.csrf_rejection(&form) {
        return r;
    }
    let case = form.opt("case").map(str::to_string);
    let result = async {
        let Some(reason) = form.opt("reason") else {
            return Err(AppError::invalid(
                "reason_required",
                "give the reason for the correction",
                "请填写更正理由",
            )
            .with_field("reason", "required"));
        };
        let d = party_from_form(&form, "")?;
        let text = |name: &str| Some(form.get(name).trim().to_string());
        let patch = PartyPatch {
            name: Some(d.name.clone()),
            phone: text("phone"),
            building: text("building"),
            unit: text("unit"),
            household: text("household"),
            organisation: text("organisation"),
            gender: d.gender,
            ethnicity: text("ethnicity"),
            birth_date: text("birth_date"),
            age: d.age,
            id_type: d.id_type,
            id_number: text("id_number"),
            address: text("address"),
            workplace: text("workplace"),
            legal_representative: text("legal_representative"),
            agent: text("agent"),
            reason: Some(reason.to_string()),
        };
        let id = PartyId::parse(&raw)
            .map_err(|_| AppError::not_found("party"))?
            .to_string();
        parties::correct(&app, &signed.actor, &signed.web.meta, &id, &patch).await
    }
    .await;
    match result {
        Ok(_) => {
            let back = match &case {
                Some(c) => format!("/parties/{raw}?done=1&case={}", super::encode(c)),
                None => format!("/parties/{raw}?done=1"),
            };
            Redirect::to(&back).into_response()
        }
        Err(e) if e.kind == crate::app_error::ErrorKind::Forbidden => signed.error(e),
        Err(e) => page(&app, &signed, &raw, case.as_deref(), Some((&form, e)), None).await,
    }
}
