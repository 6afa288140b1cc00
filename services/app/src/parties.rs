//! The party registry: residents and representatives of contractors, property companies
//! and utilities, the people cases name by id only. Only what mediation needs is
//! collected (no national ID numbers). Each record is sealed with a key of its own; blind
//! indexes allow exact search by name or phone within the caller's communities. Every
//! sight or change of a record goes to the access log (who, whose, when, why).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use tiaojie_events::metadata::Role;
use tiaojie_events::{CommunityId, PartyId};
use tiaojie_projections::crypto::{open_with, seal_with, DataKey, KeyKind, ERASED};
use tiaojie_projections::{on_db, StoreError};
use utoipa::ToSchema;

use crate::app::App;
use crate::app_error::{AppError, AppResult};
use crate::auth::Actor;
use crate::commands::{scope, RequestMeta};
use crate::party_checks;
pub use crate::party_checks::{Gender, IdType};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PartyKind {
    /// 居民
    Resident,
    /// 施工单位代表
    Contractor,
    /// 物业公司代表
    PropertyCompany,
    /// 管线单位代表
    Utility,
    /// 企业或其他单位
    Enterprise,
    Other,
}

impl PartyKind {
    fn as_str(&self) -> &'static str {
        match self {
            PartyKind::Resident => "resident",
            PartyKind::Contractor => "contractor",
            PartyKind::PropertyCompany => "property_company",
            PartyKind::Utility => "utility",
            PartyKind::Enterprise => "enterprise",
            PartyKind::Other => "other",
        }
    }

    fn parse(s: &str) -> PartyKind {
        match s {
            "resident" => PartyKind::Resident,
            "contractor" => PartyKind::Contractor,
            "property_company" => PartyKind::PropertyCompany,
            "utility" => PartyKind::Utility,
            "enterprise" => PartyKind::Enterprise,
            _ => PartyKind::Other,
        }
    }
}

/// The personal data of a party, as the People's Mediation registration form asks for it.
/// Fields added after the first release are optional, so records sealed before read as
/// they were.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartyData {
    /// 姓名, or for an organisation its name.
    pub name: String,
    /// Mobile (11 digits) or landline with area code (`0951-5012345`).
    pub phone: Option<String>,
    /// 楼栋
    pub building: Option<String>,
    /// 单元
    pub unit: Option<String>,
    /// 户 (room or household number)
    pub household: Option<String>,
    /// For representatives: the company or unit they speak for.
    pub organisation: Option<String>,
    /// 性别
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<Gender>,
    /// 民族, one of the 56 (e.g. `汉族`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ethnicity: Option<String>,
    /// 出生日期, `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<String>,
    /// 年龄, when the date of birth is not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age: Option<u8>,
    /// 证件类型; a number without a type is taken as a 居民身份证.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_type: Option<IdType>,
    /// 证件号码; a 居民身份证 number is checked with its check digit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_number: Option<String>,
    /// 住址, when it is not a building of the community (or to add to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// 工作单位
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workplace: Option<String>,
    /// For an organisation: 法定代表人 (or 负责人).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_representative: Option<String>,
    /// 委托代理人
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// Corrections: the fields to change (an empty text clears an optional field).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartyPatch {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub building: Option<String>,
    pub unit: Option<String>,
    pub household: Option<String>,
    pub organisation: Option<String>,
    pub gender: Option<Gender>,
    pub ethnicity: Option<String>,
    pub birth_date: Option<String>,
    pub age: Option<u8>,
    pub id_type: Option<IdType>,
    pub id_number: Option<String>,
    pub address: Option<String>,
    pub workplace: Option<String>,
    pub legal_representative: Option<String>,
    pub agent: Option<String>,
    /// Why the correction is made (kept in the access log).
    pub reason: Option<String>,
}

/// A party as a caller may see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartyView {
    pub party_id: String,
    pub kind: PartyKind,
    pub community: String,
    /// `clear`, `masked` or `erased`.
    pub visibility: String,
    pub data: Option<PartyData>,
    pub created_at: String,
    pub updated_at: String,
    pub erased_at: Option<String>,
    /// Obstruction incidents that name this party, in all communities.
    pub obstruction_incidents: i64,
    /// At least `repeat_obstructor_incidents` (default 2) of them.
    pub repeat_obstructor: bool,
}

struct Stored {
    party_id: String,
    kind: String,
    community: String,
    sealed: String,
    created_at: String,
    updated_at: String,
    erased_at: Option<String>,
}

fn bad(field: &str, en: &str, zh: &str) -> AppError {
    AppError::refused("invalid_party", en, zh).with_field(field, en)
}

fn refused(field: &str, (en, zh): party_checks::Refusal) -> AppError {
    bad(field, en, zh)
}

fn clean(field: &'static str, v: Option<&str>, max: usize) -> AppResult<Option<String>> {
    tiaojie_events::text::optional(field, v, max).map_err(|_| {
        bad(
            field,
            &format!("{field} is not valid text (at most {max} characters)"),
            "内容格式不正确或过长",
        )
    })
}

/// Checks and normalises a record (`today` bounds dates of birth): a name; a mobile or
/// landline number; a 居民身份证 number with its check digit, agreeing with the gender and
/// date of birth when those are given; one of the 56 ethnic groups.
pub fn validate(d: &PartyData, today: time::Date) -> AppResult<PartyData> {
    let name = clean("name", Some(&d.name), 50)?
        .ok_or_else(|| bad("name", "a name is required", "姓名不能为空"))?;
    let phone = match clean("phone", d.phone.as_deref(), 40)? {
        None => None,
        Some(p) => Some(party_checks::phone(&p).map_err(|r| refused("phone", r))?),
    };
    let ethnicity = match clean("ethnicity", d.ethnicity.as_deref(), 10)? {
        None => None,
        Some(e) => Some(
            party_checks::ethnicity(&e)
                .map_err(|r| refused("ethnicity", r))?
                .to_string(),
        ),
    };
    let mut birth = match clean("birth_date", d.birth_date.as_deref(), 10)? {
        None => None,
        Some(b) => Some(party_checks::birth_date(&b, today).map_err(|r| refused("birth_date", r))?),
    };
    if d.age.is_some_and(|a| a > 130) {
        return Err(bad("age", "an age is at most 130", "年龄不正确"));
    }
    let mut gender = d.gender;
    let id_number = clean("id_number", d.id_number.as_deref(), 30)?;
    let id_type = match (&id_number, d.id_type) {
        (Some(_), None) => Some(IdType::ResidentId),
        (_, t) => t,
    };
    let id_number = match (&id_number, id_type) {
        (None, _) => None,
        (Some(n), Some(IdType::ResidentId)) => {
            let (n, said) =
                party_checks::resident_id(n, today).map_err(|r| refused("id_number", r))?;
            if gender.is_some_and(|g| g != said.gender) {
                return Err(bad(
                    "gender",
                    "the gender does not agree with the resident ID number",
                    "性别与居民身份证号码不一致",
                ));
            }
            if birth.is_some_and(|b| b != said.birth) {
                return Err(bad(
                    "birth_date",
                    "the date of birth does not agree with the resident ID number",
                    "出生日期与居民身份证号码不一致",
                ));
            }
            gender = Some(said.gender);
            birth = Some(said.birth);
            Some(n)
        }
        (Some(n), Some(t)) => {
            Some(party_checks::other_id(t, n).map_err(|r| refused("id_number", r))?)
        }
        (Some(_), None) => None,
    };
    // An ID number belongs in its own field, not in the address.
    let looks_like_id = |s: &str| s.chars().filter(|c| c.is_ascii_digit()).count() >= 15;
    for (field, v) in [
        ("name", Some(&name)),
        ("building", d.building.as_ref()),
        ("unit", d.unit.as_ref()),
        ("household", d.household.as_ref()),
        ("organisation", d.organisation.as_ref()),
        ("address", d.address.as_ref()),
        ("workplace", d.workplace.as_ref()),
    ] {
        if v.is_some_and(|v| looks_like_id(v)) {
            return Err(bad(
                field,
                "an ID number goes in the ID number field",
                "证件号码请填写在“证件号码”一栏",
            ));
        }
    }
    Ok(PartyData {
        name,
        phone,
        building: clean("building", d.building.as_deref(), 30)?,
        unit: clean("unit", d.unit.as_deref(), 30)?,
        household: clean("household", d.household.as_deref(), 30)?,
        organisation: clean("organisation", d.organisation.as_deref(), 100)?,
        gender,
        ethnicity,
        birth_date: birth.map(|b| b.to_string()),
        age: d.age,
        id_type: id_number.as_ref().and(id_type),
        id_number,
        address: clean("address", d.address.as_deref(), 200)?,
        workplace: clean("workplace", d.workplace.as_deref(), 100)?,
        legal_representative: clean(
            "legal_representative",
            d.legal_representative.as_deref(),
            50,
        )?,
        agent: clean("agent", d.agent.as_deref(), 50)?,
    })
}

fn mask_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => format!("{first}{}", "*".repeat(chars.count().clamp(1, 3))),
        None => String::new(),
    }
}

/// As supervisors see a party: 张**, 138****5678, 6404**********1234, the year of birth
/// only; no room, no free address, no workplace.
pub fn mask(d: &PartyData) -> PartyData {
    let phone = d.phone.as_ref().map(|p| {
        let c: Vec<char> = p.chars().collect();
        if c.len() >= 7 {
            format!(
                "{}****{}",
                c[..3].iter().collect::<String>(),
                c[c.len() - 4..].iter().collect::<String>()
            )
        } else {
            "****".into()
        }
    });
    PartyData {
        name: mask_name(&d.name),
        phone,
        building: d.building.clone(),
        unit: None,
        household: None,
        organisation: d.organisation.clone(),
        gender: d.gender,
        ethnicity: d.ethnicity.clone(),
        birth_date: d
            .birth_date
            .as_ref()
            .map(|b| format!("{}-**-**", b.get(..4).unwrap_or("****"))),
        age: d.age,
        id_type: d.id_type,
        id_number: d.id_number.as_deref().map(party_checks::mask_id),
        address: None,
        workplace: None,
        legal_representative: d.legal_representative.as_deref().map(mask_name),
        agent: d.agent.as_deref().map(mask_name),
    }
}

fn now(app: &App) -> String {
    app.now().to_canonical()
}

fn store_err(e: tiaojie_projections::crypto::KeyError) -> AppError {
    AppError::store(e.into())
}

/// Writes one line of the access log.
pub async fn log_access(
    app: &App,
    actor: &Actor,
    meta: &RequestMeta,
    party: Option<&str>,
    case: Option<&str>,
    action: &str,
    reason: Option<&str>,
) -> AppResult<()> {
    let at = now(app);
    on_db!(&app.db, p => {
        sqlx::query("INSERT INTO access_log (at, actor_id, actor_name, role, party_id, case_id, action, reason, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(&at)
            .bind(&actor.id)
            .bind(&actor.name)
            .bind(actor.role.as_str())
            .bind(party)
            .bind(case)
            .bind(action)
            .bind(reason)
            .bind(&meta.request_id)
            .execute(p)
            .await
            .map_err(StoreError::from)?;
    });
    Ok(())
}

async fn seal(app: &App, id: &str, d: &PartyData) -> AppResult<String> {
    let key = app
        .keys
        .get_or_create(KeyKind::Party, id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| {
            AppError::gone(
                "party_erased",
                "This party's data was erased",
                "该当事人信息已删除",
            )
        })?;
    Ok(seal_with(
        &key,
        id.as_bytes(),
        serde_json::to_string(d).unwrap_or_default().as_bytes(),
    ))
}

/// Blind-index purposes of the search terms.
const NAME_PREFIX: &str = "name_prefix";
const PHONE: &str = "phone";
const ID_NUMBER: &str = "id_number";
/// Prefixes of a name longer than this are not indexed (the full name is, up to 50).
const PREFIXES: usize = 6;

/// The search terms of a record: the keyed hash of each prefix of the name (without
/// spaces), of the phone number's digits, and of the ID number.
async fn terms(app: &App, d: &PartyData) -> AppResult<Vec<String>> {
    let name: Vec<char> = d.name.chars().filter(|c| !c.is_whitespace()).collect();
    let mut wanted: Vec<(&str, String)> = (1..=name.len().min(PREFIXES))
        .chain((name.len() > PREFIXES).then_some(name.len()))
        .map(|n| (NAME_PREFIX, name[..n].iter().collect()))
        .collect();
    if let Some(p) = &d.phone {
        wanted.push((PHONE, phone_digits(p)));
    }
    if let Some(n) = &d.id_number {
        wanted.push((ID_NUMBER, n.clone()));
    }
    let mut out = Vec::with_capacity(wanted.len());
    for (purpose, value) in wanted {
        out.push(
            app.keys
                .blind_index(purpose, &value)
                .await
                .map_err(store_err)?,
        );
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn phone_digits(p: &str) -> String {
    p.chars().filter(|c| c.is_ascii_digit()).collect()
}

/// Replaces a party's search terms: one DELETE and one multi-row INSERT, so a crash
/// leaves the old terms, the new ones, or none (which [`index_unindexed`] fills in when
/// the service opens).
async fn write_terms(app: &App, id: &str, terms: &[String]) -> AppResult<()> {
    on_db!(&app.db, p => {
        sqlx::query("DELETE FROM party_terms WHERE party_id = $1")
            .bind(id)
            .execute(p)
            .await
            .map_err(StoreError::from)?;
        if !terms.is_empty() {
            let values: Vec<String> = (0..terms.len())
                .map(|i| format!("($1, ${})", i + 2))
                .collect();
            let sql = format!("INSERT INTO party_terms (party_id, term) VALUES {}", values.join(", "));
            let mut q = sqlx::query(&sql).bind(id);
            for t in terms {
                q = q.bind(t);
            }
            q.execute(p).await.map_err(StoreError::from)?;
        }
    });
    Ok(())
}

/// Writes the search terms of every readable party that has none: the parties of stores
/// written before the terms existed, and any whose terms a crash cut off. Answers how
/// many were indexed.
pub async fn index_unindexed(app: &App) -> AppResult<usize> {
    let ids: Vec<String> = on_db!(&app.db, p => {
        sqlx::query_scalar("SELECT party_id FROM parties WHERE erased_at IS NULL AND NOT EXISTS (SELECT 1 FROM party_terms t WHERE t.party_id = parties.party_id) ORDER BY party_id")
            .fetch_all(p)
            .await
            .map_err(StoreError::from)?
    });
    let mut done = 0;
    for id in ids {
        if let Some(d) = clear_data(app, &id).await? {
            write_terms(app, &id, &terms(app, &d).await?).await?;
            done += 1;
        }
    }
    Ok(done)
}

pub fn may_write(actor: &Actor) -> AppResult<()> {
    if actor.is_group_role() || actor.role == Role::System {
        Ok(())
    } else {
        Err(AppError::forbidden_zh((
            "only mediation group members register and correct parties",
            "只有矛盾调解小组成员可以登记和更正当事人信息",
        )))
    }
}

async fn in_scope(app: &App, actor: &Actor, community: &str) -> AppResult<bool> {
    Ok(match scope(app, actor).await? {
        None => true,
        Some(s) => s.iter().any(|c| c.as_str() == community),
    })
}

/// Whether the party is named on the given case, and the case is in the caller's scope.
async fn named_on_case_in_scope(
    app: &App,
    actor: &Actor,
    party: &str,
    case: Option<&str>,
) -> AppResult<bool> {
    let Some(case) = case else {
        return Ok(false);
    };
    let Some(community) = app.stores.case_community(case).await? else {
        return Ok(false);
    };
    if !in_scope(app, actor, community.as_str()).await? {
        return Ok(false);
    }
    let (state, _) = app.stores.load_case(case).await?;
    Ok(PartyId::parse(party).is_ok_and(|p| state.is_party(&p)))
}

/// What a command needs of a party it names, found by [`named`].
#[derive(Debug, Clone)]
pub struct NamedParty {
    erased: bool,
    /// Obstruction incidents in all communities (the repeat-obstructor count).
    incidents: i64,
    /// The sealed record, opened only to name a repeat obstructor in a warning.
    sealed: String,
}

/// The registered parties among `ids` (those not registered are absent), with their
/// incident counts and sealed records: one round trip.
async fn named(app: &App, ids: &[PartyId]) -> AppResult<HashMap<String, NamedParty>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let marks: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT p.party_id, p.erased_at IS NOT NULL,
                (SELECT t.incidents FROM {} t WHERE t.party_id = p.party_id),
                p.sealed
           FROM parties p WHERE p.party_id IN ({})",
        tiaojie_projections::models::heat::TOTALS,
        marks.join(", ")
    );
    let found: Vec<(String, bool, Option<i64>, String)> = on_db!(&app.db, p => {
        let mut q = sqlx::query_as(&sql);
        for id in ids {
            q = q.bind(id.to_string());
        }
        q.fetch_all(p).await.map_err(StoreError::from)?
    });
    Ok(found
        .into_iter()
        .map(|(id, erased, n, sealed)| {
            (
                id,
                NamedParty {
                    erased,
                    incidents: n.unwrap_or(0),
                    sealed,
                },
            )
        })
        .collect())
}

/// Registers a party; answers its id.
pub async fn register(
    app: &App,
    actor: &Actor,
    meta: &RequestMeta,
    kind: PartyKind,
    community: &CommunityId,
    data: &PartyData,
) -> AppResult<PartyId> {
    register_as(app, actor, meta, PartyId::new(), kind, community, data).await
}

/// Registers a party under a given id (imports, and scenarios that must give the same
/// bytes wherever they run).
pub async fn register_as(
    app: &App,
    actor: &Actor,
    meta: &RequestMeta,
    id: PartyId,
    kind: PartyKind,
    community: &CommunityId,
    data: &PartyData,
) -> AppResult<PartyId> {
    may_write(actor)?;
    if app.reference.community(community).is_none() {
        return Err(bad(
            "community",
            "the community does not exist",
            "小区不存在",
        ));
    }
    if !in_scope(app, actor, community.as_str()).await? {
        return Err(AppError::forbidden_zh((
            "the community is not one of your mediation group's communities",
            "该小区不在本矛盾调解小组负责范围内",
        )));
    }
    let data = validate(data, app.today())?;
    let sealed = seal(app, &id.to_string(), &data).await?;
    let terms = terms(app, &data).await?;
    let at = now(app);
    on_db!(&app.db, p => {
        sqlx::query("INSERT INTO parties (party_id, kind, community, sealed, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)")
            .bind(id.to_string())
            .bind(kind.as_str())
            .bind(community.as_str())
            .bind(&sealed)
            .bind(&at)
            .execute(p)
            .await
            .map_err(StoreError::from)?;
    });
    write_terms(app, &id.to_string(), &terms).await?;
    log_access(
        app,
        actor,
        meta,
        Some(&id.to_string()),
        None,
        "create",
        None,
    )
    .await?;
    Ok(id)
}

async fn stored(app: &App, id: &str) -> AppResult<Option<Stored>> {
    Ok(on_db!(&app.db, p => {
        sqlx::query("SELECT party_id, kind, community, sealed, created_at, updated_at, erased_at FROM parties WHERE party_id = $1")
            .bind(id)
            .fetch_optional(p)
            .await
            .map_err(StoreError::from)?
            .map(|r| Ok::<_, sqlx::Error>(Stored {
                party_id: r.try_get(0)?,
                kind: r.try_get(1)?,
                community: r.try_get(2)?,
                sealed: r.try_get(3)?,
                created_at: r.try_get(4)?,
                updated_at: r.try_get(5)?,
                erased_at: r.try_get(6)?,
            }))
            .transpose()
            .map_err(StoreError::from)?
    }))
}

async fn open(app: &App, s: &Stored) -> AppResult<Option<PartyData>> {
    if s.erased_at.is_some() {
        return Ok(None);
    }
    open_sealed(app, &s.party_id, &s.sealed).await
}

/// A party's sealed record opened with its data key; None when the key is erased.
async fn open_sealed(app: &App, id: &str, sealed: &str) -> AppResult<Option<PartyData>> {
    match app.keys.get(KeyKind::Party, id).await.map_err(store_err)? {
        DataKey::Active(k) => {
            Ok(open_with(&k, id.as_bytes(), sealed).and_then(|b| serde_json::from_slice(&b).ok()))
        }
        _ => Ok(None),
    }
}

/// A party's data in clear, for the service's own use (masking free text for a masked
/// viewer); never handed to a caller as such, so not logged as a sight.
pub(crate) async fn clear_data(app: &App, id: &str) -> AppResult<Option<PartyData>> {
    match stored(app, id).await? {
        Some(s) => open(app, &s).await,
        None => Ok(None),
    }
}

/// How a caller sees a party: members and leaders of its community in clear, supervisors
/// masked unless they give a reason (then in clear, and the reveal is logged), others not.
pub async fn view(
    app: &App,
    actor: &Actor,
    meta: &RequestMeta,
    id: &str,
    reveal_reason: Option<&str>,
    case: Option<&str>,
) -> AppResult<PartyView> {
    let s = stored(app, id)
        .await?
        .ok_or_else(|| AppError::not_found("party"))?;
    let (visibility, data) = match actor.role {
        Role::Member | Role::Leader | Role::System => {
            // A party registered in another community is still seen by the group of a
            // case that names it.
            if !in_scope(app, actor, &s.community).await?
                && !named_on_case_in_scope(app, actor, id, case).await?
            {
                return Err(AppError::out_of_scope());
            }
            match open(app, &s).await? {
                Some(d) => {
                    log_access(app, actor, meta, Some(id), case, "view", None).await?;
                    ("clear", Some(d))
                }
                None => ("erased", None),
            }
        }
        Role::Supervisor => match (
            open(app, &s).await?,
            reveal_reason.map(str::trim).filter(|r| !r.is_empty()),
        ) {
            (None, _) => ("erased", None),
            (Some(d), Some(reason)) => {
                let reason: String = reason.chars().take(200).collect();
                log_access(app, actor, meta, Some(id), case, "reveal", Some(&reason)).await?;
                ("clear", Some(d))
            }
            (Some(d), None) => ("masked", Some(mask(&d))),
        },
        _ => {
            return Err(AppError::forbidden_zh((
                "this role does not see personal data",
                "该账号不能查看当事人信息",
            )))
        }
    };
    let incidents = obstruction_incidents(app, &s.party_id).await?;
    Ok(PartyView {
        obstruction_incidents: incidents,
        repeat_obstructor: incidents >= app.settings.repeat_obstructor_incidents,
        party_id: s.party_id,
        kind: PartyKind::parse(&s.kind),
        community: s.community,
        visibility: visibility.into(),
        data: if visibility == "erased" {
            Some(PartyData {
                name: ERASED.into(),
                ..Default::default()
            })
        } else {
            data
        },
        created_at: s.created_at,
        updated_at: s.updated_at,
        erased_at: s.erased_at,
    })
}

/// Corrects a party's record; the change is logged with its reason.
pub async fn correct(
    app: &App,
    actor: &Actor,
    meta: &RequestMeta,
    id: &str,
    patch: &PartyPatch,
) -> AppResult<PartyView> {
    may_write(actor)?;
    let s = stored(app, id)
        .await?
        .ok_or_else(|| AppError::not_found("party"))?;
    if !in_scope(app, actor, &s.community).await? {
        return Err(AppError::out_of_scope());
    }
    let Some(mut d) = open(app, &s).await? else {
        return Err(AppError::gone(
            "party_erased",
            "This party's data was erased",
            "该当事人信息已删除",
        ));
    };
    if let Some(v) = &patch.name {
        d.name = v.clone();
    }
    for (field, value) in [
        (&mut d.phone, &patch.phone),
        (&mut d.building, &patch.building),
        (&mut d.unit, &patch.unit),
        (&mut d.household, &patch.household),
        (&mut d.organisation, &patch.organisation),
        (&mut d.ethnicity, &patch.ethnicity),
        (&mut d.birth_date, &patch.birth_date),
        (&mut d.id_number, &patch.id_number),
        (&mut d.address, &patch.address),
        (&mut d.workplace, &patch.workplace),
        (&mut d.legal_representative, &patch.legal_representative),
        (&mut d.agent, &patch.agent),
    ] {
        if let Some(v) = value {
            *field = Some(v.clone()).filter(|x| !x.trim().is_empty());
        }
    }
    if patch.gender.is_some() {
        d.gender = patch.gender;
    }
    if patch.age.is_some() {
        d.age = patch.age;
    }
    if patch.id_type.is_some() {
        d.id_type = patch.id_type;
    }
    let d = validate(&d, app.today())?;
    let sealed = seal(app, id, &d).await?;
    let terms = terms(app, &d).await?;
    let at = now(app);
    on_db!(&app.db, p => {
        sqlx::query("UPDATE parties SET sealed = $2, updated_at = $3 WHERE party_id = $1 AND erased_at IS NULL")
            .bind(id)
            .bind(&sealed)
            .bind(&at)
            .execute(p)
            .await
            .map_err(StoreError::from)?;
    });
    write_terms(app, id, &terms).await?;
    let reason: Option<String> = patch
        .reason
        .as_deref()
        .map(|r| r.chars().take(200).collect());
    log_access(
        app,
        actor,
        meta,
        Some(id),
        None,
        "correct",
        reason.as_deref(),
    )
    .await?;
    view(app, actor, meta, id, None, None).await
}

/// How many obstruction incidents name a party, in all communities.
pub async fn obstruction_incidents(app: &App, party: &str) -> AppResult<i64> {
    Ok(
        tiaojie_projections::models::heat::obstruction_counts(&app.db, &[party.to_string()])
            .await?
            .get(party)
            .copied()
            .unwrap_or(0),
    )
}

/// The warning a page and an answer give when a case or an incident names parties who are
/// already repeat obstructors: "该当事人已有2次阻挡施工记录".
pub async fn repeat_warnings(app: &App, parties: &[PartyId]) -> AppResult<Vec<String>> {
    let found = named(app, parties).await?;
    let mut out = Vec::new();
    for id in parties.iter().map(PartyId::to_string) {
        if let Some(p) = found.get(&id) {
            let sealed = (!p.erased).then_some(p.sealed.as_str());
            out.extend(warning(app, &id, p.incidents, sealed).await?);
        }
    }
    Ok(out)
}

/// The warnings for the parties a written command names (as its append found them in the
/// registry) whose incident counts reach the repeat-obstructor threshold.
pub async fn named_warnings(
    app: &App,
    named: &[tiaojie_projections::append::NamedParty],
) -> AppResult<Vec<String>> {
    let mut out = Vec::new();
    for p in named {
        out.extend(warning(app, &p.party_id, p.incidents, Some(&p.sealed)).await?);
    }
    Ok(out)
}

/// The warning for one party, when its incident count reaches the repeat-obstructor
/// threshold; named from its sealed record (None when its data was erased).
async fn warning(
    app: &App,
    id: &str,
    incidents: i64,
    sealed: Option<&str>,
) -> AppResult<Option<String>> {
    if incidents < app.settings.repeat_obstructor_incidents {
        return Ok(None);
    }
    let data = match sealed {
        Some(sealed) => open_sealed(app, id, sealed).await?,
        None => None,
    };
    let who = match data {
        Some(d) => mask(&d).name,
        None => "该当事人".into(),
    };
    Ok(Some(format!(
        "{who}（当事人）已有{incidents}次阻挡施工记录"
    )))
}

/// What a registry search asks for: one of a name's first characters (a prefix, the
/// full name included), a phone number, or an ID number; or the repeat obstructors.
#[derive(Debug, Clone, Copy, Default)]
pub struct SearchFor<'a> {
    pub name: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub id_number: Option<&'a str>,
    /// Only repeat obstructors (alone: every repeat obstructor who obstructed within the
    /// caller's communities).
    pub repeat_obstructor: bool,
    /// Supervisors searching by phone or ID number: why (logged).
    pub reason: Option<&'a str>,
}

/// At most this many parties answer one search, newest first.
pub const SEARCH_LIMIT: i64 = 50;

/// Search by name prefix, phone or ID number, within the caller's communities
/// (supervisors: all, masked). The registry is encrypted, so the search looks up keyed
/// hashes ([`terms`]) and decrypts only the parties found, never the registry.
///
/// A search by phone or ID number confirms whose number it is, which would let a masked
/// viewer recover a masked number by guessing. So it is limited per account
/// ([`crate::limits::Limits::sensitive_search`]), and a supervisor must give a reason,
/// which is logged with each such search.
pub async fn search(
    app: &App,
    actor: &Actor,
    meta: &RequestMeta,
    q: SearchFor<'_>,
) -> AppResult<Vec<PartyView>> {
    if !(actor.is_group_role() || actor.role == Role::Supervisor) {
        return Err(AppError::forbidden_zh((
            "this role does not search parties",
            "该账号不能查询当事人",
        )));
    }
    let given = |v: Option<&str>| {
        v.map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let reason: Option<String> = given(q.reason).map(|r| r.chars().take(200).collect());
    let phone = given(q.phone);
    let id_number = given(q.id_number).map(|n| n.to_uppercase());
    let name = given(q.name).map(|n| n.chars().filter(|c| !c.is_whitespace()).collect::<String>());
    let by = match (&id_number, &phone, &name) {
        (Some(n), _, _) => (ID_NUMBER, n.clone()),
        (None, Some(p), _) => (
            PHONE,
            phone_digits(&party_checks::phone(p).unwrap_or_else(|_| p.clone())),
        ),
        (None, None, Some(n)) => {
            let n: String = if n.chars().count() > PREFIXES {
                n.clone()
            } else {
                n.chars().take(PREFIXES).collect()
            };
            (NAME_PREFIX, n)
        }
        (None, None, None) if q.repeat_obstructor => {
            return repeat_obstructors(app, actor, meta).await;
        }
        (None, None, None) => {
            return Err(AppError::invalid(
                "invalid_query",
                "give a name (or its first characters), a phone number or an ID number",
                "请输入姓名（或姓名的前几个字）、电话或证件号码",
            ))
        }
    };
    if by.0 != NAME_PREFIX {
        if actor.role == Role::Supervisor && reason.is_none() {
            return Err(AppError::forbidden_zh((
                "a supervisor searching by phone or ID number must give a reason (reason=…), which is logged",
                "督查室按电话或证件号码查询须填写查询理由，理由将被记录",
            ))
            .with_field("reason", "required for a search by phone or ID number"));
        }
        if let Some(wait) = app.limits.sensitive_search.hit(&actor.id) {
            tracing::warn!(actor_id = %actor.id, role = actor.role.as_str(), "too many searches by phone or ID number");
            return Err(AppError::too_many(
                "too_many_searches",
                "Too many searches by phone or ID number; wait before searching again",
                "按电话或证件号码查询过于频繁，请稍后再试",
                wait,
            ));
        }
    }
    let term = app.keys.blind_index(by.0, &by.1).await.map_err(store_err)?;
    let scope = scope(app, actor).await?;
    if scope.as_ref().is_some_and(|s| s.is_empty()) {
        return Ok(vec![]);
    }
    let mut sql = String::from("SELECT p.party_id FROM party_terms t JOIN parties p ON p.party_id = t.party_id WHERE t.term = $1 AND p.erased_at IS NULL");
    let communities: Vec<String> = scope
        .iter()
        .flatten()
        .map(|c| c.as_str().to_string())
        .collect();
    if scope.is_some() {
        let marks: Vec<String> = (0..communities.len())
            .map(|i| format!("${}", i + 2))
            .collect();
        sql.push_str(&format!(" AND p.community IN ({})", marks.join(", ")));
    }
    sql.push_str(&format!(" ORDER BY p.party_id DESC LIMIT {SEARCH_LIMIT}"));
    let ids: Vec<String> = on_db!(&app.db, p => {
        let mut query = sqlx::query_scalar(&sql).bind(&term);
        for c in &communities {
            query = query.bind(c);
        }
        query.fetch_all(p).await.map_err(StoreError::from)?
    });
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(view(app, actor, meta, &id, None, None).await?);
    }
    if q.repeat_obstructor {
        out.retain(|p| p.repeat_obstructor);
    }
    let by = by.0.trim_end_matches("_prefix");
    let line = match &reason {
        Some(r) => format!("{r} ({} result(s) by {by})", out.len()),
        None => format!("{} result(s) by {by}", out.len()),
    };
    log_access(app, actor, meta, None, None, "search", Some(&line)).await?;
    Ok(out)
}

/// Every repeat obstructor who obstructed work in the caller's communities (supervisors:
/// all, masked), most incidents first, at most [`SEARCH_LIMIT`].
async fn repeat_obstructors(
    app: &App,
    actor: &Actor,
    meta: &RequestMeta,
) -> AppResult<Vec<PartyView>> {
    let found = crate::queries::repeat_obstructor_ids(app, actor).await?;
    let mut out = Vec::new();
    for id in found.into_iter().take(SEARCH_LIMIT as usize) {
        match view(app, actor, meta, &id, None, None).await {
            Ok(v) => out.push(v),
            // Registered in another group's community: named here only by its cases.
            Err(e) if e.kind == crate::app_error::ErrorKind::Forbidden => {}
            Err(e) if e.kind == crate::app_error::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    log_access(
        app,
        actor,
        meta,
        None,
        None,
        "search",
        Some(&format!("{} result(s): repeat obstructors", out.len())),
    )
    .await?;
    Ok(out)
}

/// Erases a party: its key is destroyed, its record and search indexes cleared. Cases keep
/// its id, now pointing at nothing readable; counts and heat are unchanged.
pub async fn erase(
    app: &App,
    actor: &Actor,
    meta: &RequestMeta,
    id: &str,
    reason: &str,
) -> AppResult<bool> {
    if !matches!(actor.role, Role::Admin | Role::System) {
        return Err(AppError::forbidden_zh((
            "only an administrator erases personal data",
            "只有管理员可以删除个人信息",
        )));
    }
    if stored(app, id).await?.is_none() {
        return Err(AppError::not_found("party"));
    }
    let erased = app
        .keys
        .erase(KeyKind::Party, id)
        .await
        .map_err(store_err)?;
    let at = now(app);
    on_db!(&app.db, p => {
        sqlx::query("UPDATE parties SET sealed = '', name_index = NULL, phone_index = NULL, erased_at = COALESCE(erased_at, $2), updated_at = $2 WHERE party_id = $1")
            .bind(id)
            .bind(&at)
            .execute(p)
            .await
            .map_err(StoreError::from)?;
        sqlx::query("DELETE FROM party_terms WHERE party_id = $1")
            .bind(id)
            .execute(p)
            .await
            .map_err(StoreError::from)?;
    });
    log_access(app, actor, meta, Some(id), None, "erase", Some(reason)).await?;
    Ok(erased)
}

/// The right to a copy: the party's data, the cases that name it, and who saw it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartyExport {
    pub exported_at: String,
    pub party: PartyView,
    pub cases: Vec<PartyCase>,
    pub access_log: Vec<AccessEntry>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartyCase {
    pub case_id: String,
    pub role: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccessEntry {
    pub id: i64,
    pub at: String,
    pub actor_id: String,
    pub actor_name: String,
    pub role: String,
    pub party_id: Option<String>,
    pub case_id: Option<String>,
    pub action: String,
    pub reason: Option<String>,
    pub request_id: String,
}

pub async fn access_log(
    app: &App,
    party: Option<&str>,
    actor_id: Option<&str>,
    after: Option<i64>,
    limit: i64,
) -> AppResult<Vec<AccessEntry>> {
    let mut sql = String::from("SELECT id, at, actor_id, actor_name, role, party_id, case_id, action, reason, request_id FROM access_log WHERE id < $1");
    let mut binds: Vec<String> = Vec::new();
    if let Some(p) = party {
        binds.push(p.to_string());
        sql.push_str(&format!(" AND party_id = ${}", binds.len() + 1));
    }
    if let Some(a) = actor_id {
        binds.push(a.to_string());
        sql.push_str(&format!(" AND actor_id = ${}", binds.len() + 1));
    }
    sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", limit.clamp(1, 1000)));
    Ok(on_db!(&app.db, p => {
        let mut q = sqlx::query(&sql).bind(after.unwrap_or(i64::MAX));
        for b in &binds {
            q = q.bind(b.clone());
        }
        q.fetch_all(p)
            .await
            .map_err(StoreError::from)?
            .into_iter()
            .map(|r| Ok::<_, sqlx::Error>(AccessEntry {
                id: r.try_get(0)?,
                at: r.try_get(1)?,
                actor_id: r.try_get(2)?,
                actor_name: r.try_get(3)?,
                role: r.try_get(4)?,
                party_id: r.try_get(5)?,
                case_id: r.try_get(6)?,
                action: r.try_get(7)?,
                reason: r.try_get(8)?,
                request_id: r.try_get(9)?,
            }))
            .collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::from)?
    }))
}

/// The right of access (a copy of everything held about a party): an explicit act with a
/// reason, such as the person's written request, logged with it. Members and leaders of
/// the party's community, and administrators (who handle such requests for the office).
pub async fn export(
    app: &App,
    actor: &Actor,
    meta: &RequestMeta,
    id: &str,
    reason: Option<&str>,
) -> AppResult<PartyExport> {
    if !(actor.is_group_role() || matches!(actor.role, Role::Admin | Role::System)) {
        return Err(AppError::forbidden_zh((
            "only the mediation group or an administrator exports a party's data",
            "只有矛盾调解小组或管理员可以导出当事人信息",
        )));
    }
    let Some(reason) = reason
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| r.chars().take(200).collect::<String>())
    else {
        return Err(AppError::invalid(
            "reason_required",
            "Exporting a party's data needs a reason (reason=…, e.g. the person's request), which is logged",
            "导出当事人信息须填写理由（如本人的书面申请），理由将被记录",
        )
        .with_field("reason", "required"));
    };
    let system = Actor {
        role: Role::System,
        ..actor.clone()
    };
    let reader = if actor.role == Role::Admin {
        &system
    } else {
        actor
    };
    let party = view(app, reader, meta, id, None, None).await?;
    let cases = tiaojie_projections::models::case_parties::cases_of(&app.db, id)
        .await?
        .into_iter()
        .map(|(case_id, role)| PartyCase { case_id, role })
        .collect();
    log_access(app, actor, meta, Some(id), None, "export", Some(&reason)).await?;
    let access_log = access_log(app, Some(id), None, None, 1000).await?;
    Ok(PartyExport {
        exported_at: now(app),
        party,
        cases,
        access_log,
    })
}

/// What the retention job did.
#[derive(Debug, Default, Serialize)]
pub struct RetentionReport {
    pub cutoff: String,
    pub cases_erased: usize,
    pub parties_erased: usize,
}

/// Erases the free text of cases closed (or withdrawn) before the retention period, and
/// the parties that appear in no case still kept.
pub async fn retention(app: &App, years: u32) -> AppResult<RetentionReport> {
    let cutoff = app
        .now()
        .minus(time::Duration::days(365 * i64::from(years)))
        .to_canonical();
    let actor = Actor::system("retention");
    let meta = RequestMeta::new_request();
    let expired: Vec<String> = on_db!(&app.db, p => {
        sqlx::query_scalar("SELECT case_id FROM case_status WHERE status IN ('closed', 'withdrawn') AND closed_at < $1")
            .bind(&cutoff)
            .fetch_all(p)
            .await
            .map_err(StoreError::from)?
    });
    let mut report = RetentionReport {
        cutoff: cutoff.clone(),
        ..Default::default()
    };
    let mut candidates: Vec<String> = Vec::new();
    for case in &expired {
        if app
            .keys
            .erase(KeyKind::Case, case)
            .await
            .map_err(store_err)?
        {
            report.cases_erased += 1;
            log_access(
                app,
                &actor,
                &meta,
                None,
                Some(case),
                "retention_erase_case",
                Some(&format!("closed before {cutoff}")),
            )
            .await?;
        }
        for (party, _) in
            tiaojie_projections::models::case_parties::parties_of(&app.db, case).await?
        {
            if !candidates.contains(&party) {
                candidates.push(party);
            }
        }
    }
    for party in candidates {
        let cases = tiaojie_projections::models::case_parties::cases_of(&app.db, &party).await?;
        let kept = cases.iter().any(|(c, _)| !expired.contains(c));
        if kept
            || stored(app, &party)
                .await?
                .is_none_or(|s| s.erased_at.is_some())
        {
            continue;
        }
        erase(
            app,
            &actor,
            &meta,
            &party,
            &format!("retention: every case closed before {cutoff}"),
        )
        .await?;
        report.parties_erased += 1;
    }
    tracing::info!(cases = report.cases_erased, parties = report.parties_erased, cutoff = %report.cutoff, "retention job done");
    Ok(report)
}

/// The design the registry's search does not use, kept so that its benchmark can compare:
/// decrypt every readable party of a community and match the name's start in memory.
/// Answers how many matched.
pub async fn scan_by_name_prefix(app: &App, community: &str, prefix: &str) -> AppResult<usize> {
    let ids: Vec<String> = on_db!(&app.db, p => {
        sqlx::query_scalar("SELECT party_id FROM parties WHERE community = $1 AND erased_at IS NULL")
            .bind(community)
            .fetch_all(p)
            .await
            .map_err(StoreError::from)?
    });
    let mut found = 0;
    for id in ids {
        if clear_data(app, &id)
            .await?
            .is_some_and(|d| d.name.starts_with(prefix))
        {
            found += 1;
        }
    }
    Ok(found)
}
