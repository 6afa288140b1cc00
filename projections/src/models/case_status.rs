//! `case_status`: one row per case, for lists, filters and deadlines.
//!
//! Deadlines ("clocks"): a reported case is due for acceptance `acceptance_days` after it
//! was recorded; an accepted case is due for the end of mediation `mediation_days` after
//! acceptance, or at the extended deadline; an agreed case is due for its follow-up visit
//! at the agreement's `follow_up_due`; an unanswered supervision order is due at its
//! `respond_by`. A case is overdue when any of these lies in the past.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use serde::Serialize;
use sqlx::Row;
use tiaojie_events::case::{CaseEvent, CaseStatus};
use tiaojie_events::Timestamp;

use super::{decode_cursor, encode_cursor, Page, ReadModelConfig};
use crate::crypto::Keyring;
use crate::db::{placeholders, upsert, Backend, Db, Tx, Val};
use crate::error::StoreError;
use crate::runtime::{Body, LoggedEvent, ProjectionError, Projector};
use crate::{on_db, on_tx};

pub const NAME: &str = "case_status";

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseRow {
    pub case_id: String,
    pub kind: String,
    pub community: String,
    pub district: String,
    pub category: String,
    pub group_id: String,
    pub channel: String,
    pub status: String,
    pub assignee: Option<String>,
    pub summary: String,
    pub parties: i64,
    pub sessions_scheduled: i64,
    pub sessions_held: i64,
    pub incidents: i64,
    pub work_stopped_minutes: i64,
    pub work_stopped_open: i64,
    pub police_interventions: i64,
    pub escalations: i64,
    pub follow_ups: i64,
    pub notes: i64,
    pub corrections: i64,
    #[serde(skip)]
    pub open_orders: String,
    pub order_due_at: Option<String>,
    pub occurred_at: String,
    pub reported_at: String,
    pub accepted_at: Option<String>,
    pub agreed_at: Option<String>,
    pub follow_up_due: Option<String>,
    pub extended_due: Option<String>,
    pub closed_at: Option<String>,
    pub outcome: Option<String>,
    pub due_kind: Option<String>,
    pub due_at: Option<String>,
    /// The latest report of how the agreement is carried out: `performed`,
    /// `partly_performed`, `not_performed`.
    pub performance: Option<String>,
    /// When the agreement is to be carried out (the agreement's date, or the latest
    /// urging's).
    pub performance_due: Option<String>,
    /// When the case was referred to the court after the agreement was not carried out.
    pub court_referral_at: Option<String>,
    /// Judicial confirmation: `applied`, `confirmed` or `refused`.
    pub confirmation: Option<String>,
    /// The end of the window in which judicial confirmation can be applied for.
    pub confirmation_window_ends: Option<String>,
    /// Where the case went last (an escalation or a failed mediation's next route).
    pub route: Option<String>,
    pub route_since: Option<String>,
    /// When the receiving level replied (empty while a reply is awaited).
    pub route_replied_at: Option<String>,
    /// When mediation last failed, and when the case was first escalated (statistics).
    pub failed_at: Option<String>,
    pub escalated_at: Option<String>,
    pub updated_at: String,
    pub version: i64,
    pub last_position: i64,
}

const COLUMNS: &[&str] = &[
    "case_id",
    "kind",
    "community",
    "district",
    "category",
    "group_id",
    "channel",
    "status",
    "assignee",
    "summary",
    "parties",
    "sessions_scheduled",
    "sessions_held",
    "incidents",
    "work_stopped_minutes",
    "work_stopped_open",
    "police_interventions",
    "escalations",
    "follow_ups",
    "notes",
    "corrections",
    "open_orders",
    "order_due_at",
    "occurred_at",
    "reported_at",
    "accepted_at",
    "agreed_at",
    "follow_up_due",
    "extended_due",
    "closed_at",
    "outcome",
    "due_kind",
    "due_at",
    "updated_at",
    "performance",
    "performance_due",
    "court_referral_at",
    "confirmation",
    "confirmation_window_ends",
    "route",
    "route_since",
    "route_replied_at",
    "failed_at",
    "escalated_at",
    "version",
    "last_position",
];

impl CaseRow {
    fn values(&self) -> Vec<Val> {
        vec![
            self.case_id.clone().into(),
            self.kind.clone().into(),
            self.community.clone().into(),
            self.district.clone().into(),
            self.category.clone().into(),
            self.group_id.clone().into(),
            self.channel.clone().into(),
            self.status.clone().into(),
            self.assignee.clone().into(),
            self.summary.clone().into(),
            self.parties.into(),
            self.sessions_scheduled.into(),
            self.sessions_held.into(),
            self.incidents.into(),
            self.work_stopped_minutes.into(),
            self.work_stopped_open.into(),
            self.police_interventions.into(),
            self.escalations.into(),
            self.follow_ups.into(),
            self.notes.into(),
            self.corrections.into(),
            self.open_orders.clone().into(),
            self.order_due_at.clone().into(),
            self.occurred_at.clone().into(),
            self.reported_at.clone().into(),
            self.accepted_at.clone().into(),
            self.agreed_at.clone().into(),
            self.follow_up_due.clone().into(),
            self.extended_due.clone().into(),
            self.closed_at.clone().into(),
            self.outcome.clone().into(),
            self.due_kind.clone().into(),
            self.due_at.clone().into(),
            self.updated_at.clone().into(),
            self.performance.clone().into(),
            self.performance_due.clone().into(),
            self.court_referral_at.clone().into(),
            self.confirmation.clone().into(),
            self.confirmation_window_ends.clone().into(),
            self.route.clone().into(),
            self.route_since.clone().into(),
            self.route_replied_at.clone().into(),
            self.failed_at.clone().into(),
            self.escalated_at.clone().into(),
            self.version.into(),
            self.last_position.into(),
        ]
    }

    fn from_row<R: Row>(r: &R) -> Result<Self, sqlx::Error>
    where
        usize: sqlx::ColumnIndex<R>,
        String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
        i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
        Option<String>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    {
        Ok(Self {
            case_id: r.try_get(0)?,
            kind: r.try_get(1)?,
            community: r.try_get(2)?,
            district: r.try_get(3)?,
            category: r.try_get(4)?,
            group_id: r.try_get(5)?,
            channel: r.try_get(6)?,
            status: r.try_get(7)?,
            assignee: r.try_get(8)?,
            summary: r.try_get(9)?,
            parties: r.try_get(10)?,
            sessions_scheduled: r.try_get(11)?,
            sessions_held: r.try_get(12)?,
            incidents: r.try_get(13)?,
            work_stopped_minutes: r.try_get(14)?,
            work_stopped_open: r.try_get(15)?,
            police_interventions: r.try_get(16)?,
            escalations: r.try_get(17)?,
            follow_ups: r.try_get(18)?,
            notes: r.try_get(19)?,
            corrections: r.try_get(20)?,
            open_orders: r.try_get(21)?,
            order_due_at: r.try_get(22)?,
            occurred_at: r.try_get(23)?,
            reported_at: r.try_get(24)?,
            accepted_at: r.try_get(25)?,
            agreed_at: r.try_get(26)?,
            follow_up_due: r.try_get(27)?,
            extended_due: r.try_get(28)?,
            closed_at: r.try_get(29)?,
            outcome: r.try_get(30)?,
            due_kind: r.try_get(31)?,
            due_at: r.try_get(32)?,
            updated_at: r.try_get(33)?,
            performance: r.try_get(34)?,
            performance_due: r.try_get(35)?,
            court_referral_at: r.try_get(36)?,
            confirmation: r.try_get(37)?,
            confirmation_window_ends: r.try_get(38)?,
            route: r.try_get(39)?,
            route_since: r.try_get(40)?,
            route_replied_at: r.try_get(41)?,
            failed_at: r.try_get(42)?,
            escalated_at: r.try_get(43)?,
            version: r.try_get(44)?,
            last_position: r.try_get(45)?,
        })
    }

    pub fn is_overdue(&self, now: &str) -> bool {
        self.due_at.as_deref().is_some_and(|d| d < now)
            || self.order_due_at.as_deref().is_some_and(|d| d < now)
    }
}

pub struct CaseStatusProjector {
    config: ReadModelConfig,
}

impl CaseStatusProjector {
    pub fn new(config: ReadModelConfig) -> Self {
        Self { config }
    }

    /// Every clock that runs on the case now, as (kind, due); the case's `due_kind` and
    /// `due_at` are the earliest of them.
    fn clocks(&self, row: &CaseRow) -> Vec<(&'static str, Timestamp)> {
        let ts = |s: &Option<String>| s.as_deref().and_then(|s| Timestamp::parse(s).ok());
        let mut out = Vec::new();
        let status = CaseStatus::parse(&row.status);
        if !status.is_some_and(|s| s.is_open()) {
            return out;
        }
        match status {
            Some(CaseStatus::Reported) => {
                if let Ok(t) = Timestamp::parse(&row.reported_at) {
                    out.push(("acceptance", t.plus_days(self.config.acceptance_days)));
                }
            }
            Some(CaseStatus::Accepted | CaseStatus::InMediation) => match ts(&row.extended_due) {
                Some(d) => out.push(("extension", d)),
                None => {
                    if let Some(a) = ts(&row.accepted_at) {
                        out.push(("mediation", a.plus_days(self.config.mediation_days)));
                    }
                }
            },
            Some(CaseStatus::Agreed) => {
                if row.follow_ups == 0 {
                    if let Some(d) = ts(&row.follow_up_due) {
                        out.push(("follow_up", d));
                    }
                }
                let settled = row.performance.as_deref() == Some("performed")
                    || row.court_referral_at.is_some();
                if !settled {
                    if let Some(d) = ts(&row.performance_due) {
                        out.push(("performance", d));
                    }
                }
                // Within the window, either the application or how the agreement is carried
                // out is on record.
                if row.confirmation.is_none() && row.performance.is_none() && !settled {
                    if let Some(d) = ts(&row.confirmation_window_ends) {
                        out.push(("judicial_confirmation", d));
                    }
                }
            }
            Some(CaseStatus::Failed | CaseStatus::Escalated) if row.route_replied_at.is_none() => {
                let route = row.route.as_deref().and_then(parse_route);
                if let (Some(r), Some(since)) = (route, ts(&row.route_since)) {
                    out.push((
                        "escalation_reply",
                        since.plus_days(self.config.reply_days.of(r)),
                    ));
                }
            }
            _ => {}
        }
        let orders: BTreeMap<String, String> =
            serde_json::from_str(&row.open_orders).unwrap_or_default();
        if let Some(d) = orders.values().min().and_then(|d| Timestamp::parse(d).ok()) {
            out.push(("supervision_order", d));
        }
        out
    }

    fn recompute_due(&self, row: &mut CaseRow) {
        let earliest = self.clocks(row).into_iter().min_by_key(|(_, t)| *t);
        row.due_kind = earliest.map(|(k, _)| k.to_string());
        row.due_at = earliest.map(|(_, t)| t.to_canonical());
        let orders: BTreeMap<String, String> =
            serde_json::from_str(&row.open_orders).unwrap_or_default();
        row.order_due_at = orders.values().min().cloned();
    }
}

fn route_name(r: tiaojie_events::case::Route) -> String {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn parse_route(s: &str) -> Option<tiaojie_events::case::Route> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
}

/// The clocks a case can have, in the order the README lists them.
pub const DUE_KINDS: &[&str] = &[
    "acceptance",
    "mediation",
    "extension",
    "follow_up",
    "performance",
    "judicial_confirmation",
    "escalation_reply",
    "supervision_order",
];

pub fn ddl(suffix: &str) -> Vec<String> {
    let t = format!("{NAME}{suffix}");
    vec![
        format!(
            "CREATE TABLE {t} (
                case_id TEXT PRIMARY KEY,
                kind TEXT NOT NULL, community TEXT NOT NULL, district TEXT NOT NULL, category TEXT NOT NULL,
                group_id TEXT NOT NULL, channel TEXT NOT NULL, status TEXT NOT NULL, assignee TEXT, summary TEXT NOT NULL,
                parties BIGINT NOT NULL, sessions_scheduled BIGINT NOT NULL, sessions_held BIGINT NOT NULL,
                incidents BIGINT NOT NULL, work_stopped_minutes BIGINT NOT NULL, work_stopped_open BIGINT NOT NULL,
                police_interventions BIGINT NOT NULL, escalations BIGINT NOT NULL, follow_ups BIGINT NOT NULL,
                notes BIGINT NOT NULL, corrections BIGINT NOT NULL, open_orders TEXT NOT NULL, order_due_at TEXT,
                occurred_at TEXT NOT NULL, reported_at TEXT NOT NULL, accepted_at TEXT, agreed_at TEXT,
                follow_up_due TEXT, extended_due TEXT, closed_at TEXT, outcome TEXT, due_kind TEXT, due_at TEXT,
                updated_at TEXT NOT NULL, performance TEXT, performance_due TEXT, court_referral_at TEXT,
                confirmation TEXT, confirmation_window_ends TEXT, route TEXT, route_since TEXT, route_replied_at TEXT,
                failed_at TEXT, escalated_at TEXT,
                version BIGINT NOT NULL, last_position BIGINT NOT NULL
            )"
        ),
        format!("CREATE INDEX ix_{t}_reported ON {t} (reported_at, case_id)"),
        format!("CREATE INDEX ix_{t}_status ON {t} (status, reported_at)"),
        format!("CREATE INDEX ix_{t}_community ON {t} (community, reported_at)"),
        format!("CREATE INDEX ix_{t}_district ON {t} (district, reported_at)"),
        format!("CREATE INDEX ix_{t}_due ON {t} (due_at)"),
    ]
}

async fn load(
    tx: &mut Tx,
    table: &str,
    ids: &[String],
) -> Result<HashMap<String, CaseRow>, StoreError> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT {} FROM {table} WHERE case_id IN ({})",
            COLUMNS.join(", "),
            placeholders(1, chunk.len())
        );
        let rows: Vec<CaseRow> = on_tx!(tx, c => {
            let mut q = sqlx::query(&sql).persistent(false);
            for id in chunk {
                q = q.bind(id.clone());
            }
            q.fetch_all(&mut *c).await?.iter().map(CaseRow::from_row).collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        for r in rows {
            out.insert(r.case_id.clone(), r);
        }
    }
    Ok(out)
}

#[async_trait]
impl Projector for CaseStatusProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &[NAME]
    }

    /// 2: the clocks after the agreement and after an escalation (performance, judicial
    /// confirmation, the receiving level's reply).
    fn schema_version(&self) -> i64 {
        2
    }

    fn ddl(&self, _backend: Backend, suffix: &str) -> Vec<String> {
        ddl(suffix)
    }

    async fn apply(
        &self,
        tx: &mut Tx,
        suffix: &str,
        events: &[LoggedEvent],
    ) -> Result<(), ProjectionError> {
        let table = format!("{NAME}{suffix}");
        let mut ids: Vec<String> = events
            .iter()
            .filter(|e| matches!(e.body, Body::Case(_)))
            .map(|e| e.aggregate_id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        let mut rows = load(tx, &table, &ids).await?;
        let mut touched: Vec<String> = Vec::new();
        for e in events {
            let Body::Case(ev) = &e.body else { continue };
            let bad = |m: &str| ProjectionError::Apply {
                position: e.position,
                message: m.to_string(),
            };
            if let CaseEvent::CaseOpened {
                kind,
                community,
                group,
                category,
                summary,
                occurred_at,
                channel,
                parties,
            } = ev
            {
                let district = self.config.district_of(community).ok_or_else(|| {
                    bad(&format!(
                        "community {community} is not in the reference data"
                    ))
                })?;
                rows.insert(
                    e.aggregate_id.clone(),
                    CaseRow {
                        case_id: e.aggregate_id.clone(),
                        kind: kind.as_str().to_string(),
                        community: community.to_string(),
                        district: district.to_string(),
                        category: category.to_string(),
                        group_id: group.to_string(),
                        channel: serde_json::to_value(channel)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
                        status: CaseStatus::Reported.as_str().to_string(),
                        assignee: None,
                        summary: summary.clone(),
                        parties: parties.len() as i64,
                        sessions_scheduled: 0,
                        sessions_held: 0,
                        incidents: 0,
                        work_stopped_minutes: 0,
                        work_stopped_open: 0,
                        police_interventions: 0,
                        escalations: 0,
                        follow_ups: 0,
                        notes: 0,
                        corrections: 0,
                        open_orders: "{}".into(),
                        order_due_at: None,
                        occurred_at: occurred_at.to_canonical(),
                        reported_at: e.recorded_at.clone(),
                        accepted_at: None,
                        agreed_at: None,
                        follow_up_due: None,
                        extended_due: None,
                        closed_at: None,
                        outcome: None,
                        due_kind: None,
                        due_at: None,
                        updated_at: e.recorded_at.clone(),
                        performance: None,
                        performance_due: None,
                        court_referral_at: None,
                        confirmation: None,
                        confirmation_window_ends: None,
                        route: None,
                        route_since: None,
                        route_replied_at: None,
                        failed_at: None,
                        escalated_at: None,
                        version: 0,
                        last_position: 0,
                    },
                );
            }
            let row = rows
                .get_mut(&e.aggregate_id)
                .ok_or_else(|| bad("the case has no row (its CaseOpened was not projected)"))?;
            let status = |s: CaseStatus| s.as_str().to_string();
            match ev {
                CaseEvent::CaseOpened { .. } => {}
                CaseEvent::PartyAdded { .. } => row.parties += 1,
                CaseEvent::CaseAccepted { accepted_at } => {
                    row.status = status(CaseStatus::Accepted);
                    row.accepted_at = Some(accepted_at.to_canonical());
                }
                CaseEvent::CaseAssigned { assignee, .. } => {
                    row.assignee = Some(assignee.to_string())
                }
                CaseEvent::SessionScheduled { .. } => {
                    row.sessions_scheduled += 1;
                    if row.status == "accepted" {
                        row.status = status(CaseStatus::InMediation);
                    }
                }
                CaseEvent::SessionHeld { .. } => {
                    row.sessions_held += 1;
                    if matches!(row.status.as_str(), "accepted" | "failed" | "escalated") {
                        row.status = status(CaseStatus::InMediation);
                    }
                }
                CaseEvent::DeadlineExtended { new_due, .. } => {
                    row.extended_due = Some(new_due.to_canonical())
                }
                CaseEvent::AgreementReached {
                    agreed_at,
                    follow_up_due,
                    performance_due,
                    ..
                } => {
                    row.status = status(CaseStatus::Agreed);
                    row.agreed_at = Some(agreed_at.to_canonical());
                    row.follow_up_due = Some(follow_up_due.to_canonical());
                    row.performance_due = performance_due.map(|t| t.to_canonical());
                    row.confirmation_window_ends = Some(
                        agreed_at
                            .plus_days(self.config.confirmation_window_days)
                            .to_canonical(),
                    );
                }
                CaseEvent::MediationFailed {
                    next_route,
                    failed_at,
                    ..
                } => {
                    row.status = status(CaseStatus::Failed);
                    row.failed_at = Some(failed_at.to_canonical());
                    row.route = Some(route_name(*next_route));
                    row.route_since = Some(failed_at.to_canonical());
                    row.route_replied_at = None;
                }
                CaseEvent::CaseEscalated {
                    route,
                    escalated_at,
                    ..
                } => {
                    row.status = status(CaseStatus::Escalated);
                    row.escalations += 1;
                    row.escalated_at
                        .get_or_insert_with(|| escalated_at.to_canonical());
                    row.route = Some(route_name(*route));
                    row.route_since = Some(escalated_at.to_canonical());
                    row.route_replied_at = None;
                }
                CaseEvent::PerformanceRecorded { performance, .. } => {
                    row.performance = Some(performance.as_str().to_string())
                }
                CaseEvent::PerformanceUrged {
                    performance_due, ..
                } => row.performance_due = Some(performance_due.to_canonical()),
                CaseEvent::ReferredToCourt { referred_at, .. } => {
                    row.court_referral_at = Some(referred_at.to_canonical())
                }
                CaseEvent::JudicialConfirmationApplied { .. } => {
                    row.confirmation = Some("applied".into())
                }
                CaseEvent::JudicialConfirmationDecided { confirmed, .. } => {
                    row.confirmation = Some(if *confirmed { "confirmed" } else { "refused" }.into())
                }
                CaseEvent::EscalationReplied { replied_at, .. } => {
                    row.route_replied_at = Some(replied_at.to_canonical())
                }
                CaseEvent::ObstructionIncidentRecorded { incident } => {
                    row.incidents += 1;
                    row.work_stopped_minutes += i64::from(incident.work_stopped_minutes);
                    if incident.work_stopped_minutes > 0 {
                        row.work_stopped_open += 1;
                    }
                }
                CaseEvent::PoliceInterventionRecorded { .. } => row.police_interventions += 1,
                CaseEvent::WorkResumed { .. } => {
                    row.work_stopped_open = (row.work_stopped_open - 1).max(0)
                }
                CaseEvent::FollowUpVisitRecorded { .. } => row.follow_ups += 1,
                CaseEvent::SupervisionOrderIssued {
                    order_id,
                    respond_by,
                    ..
                } => {
                    let mut orders: BTreeMap<String, String> =
                        serde_json::from_str(&row.open_orders).unwrap_or_default();
                    orders.insert(order_id.to_string(), respond_by.to_canonical());
                    row.open_orders =
                        serde_json::to_string(&orders).unwrap_or_else(|_| "{}".into());
                }
                CaseEvent::SupervisionOrderAnswered { order_id, .. } => {
                    let mut orders: BTreeMap<String, String> =
                        serde_json::from_str(&row.open_orders).unwrap_or_default();
                    orders.remove(&order_id.to_string());
                    row.open_orders =
                        serde_json::to_string(&orders).unwrap_or_else(|_| "{}".into());
                }
                CaseEvent::NoteAdded { .. } => row.notes += 1,
                CaseEvent::AttachmentAdded { .. } => {}
                CaseEvent::CorrectionRecorded { .. } => row.corrections += 1,
                CaseEvent::CaseWithdrawn { withdrawn_at, .. } => {
                    row.status = status(CaseStatus::Withdrawn);
                    row.closed_at = Some(withdrawn_at.to_canonical());
                    row.outcome = Some("withdrawn".into());
                }
                CaseEvent::CaseClosed {
                    outcome, closed_at, ..
                } => {
                    row.status = status(CaseStatus::Closed);
                    row.closed_at = Some(closed_at.to_canonical());
                    row.outcome = Some(outcome.as_str().to_string());
                }
                CaseEvent::CaseTransferred {
                    to_group,
                    unassigned,
                    ..
                } => {
                    row.group_id = to_group.to_string();
                    if unassigned.is_some() {
                        row.assignee = None;
                    }
                }
                CaseEvent::CaseReopened { .. } => {
                    row.status = status(if row.accepted_at.is_some() {
                        CaseStatus::Accepted
                    } else {
                        CaseStatus::Reported
                    });
                    row.closed_at = None;
                    row.outcome = None;
                    row.agreed_at = None;
                    row.follow_up_due = None;
                    row.performance = None;
                    row.performance_due = None;
                    row.court_referral_at = None;
                    row.confirmation = None;
                    row.confirmation_window_ends = None;
                    row.route = None;
                    row.route_since = None;
                    row.route_replied_at = None;
                }
            }
            row.updated_at = e.recorded_at.clone();
            row.version = e.sequence;
            row.last_position = e.position;
            self.recompute_due(row);
            if !touched.contains(&e.aggregate_id) {
                touched.push(e.aggregate_id.clone());
            }
        }
        let values: Vec<Vec<Val>> = touched
            .iter()
            .filter_map(|id| rows.get(id))
            .map(CaseRow::values)
            .collect();
        upsert(tx, &table, COLUMNS, &["case_id"], values).await?;
        Ok(())
    }
}

/// How to order a case list.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    /// Most recently reported first.
    #[default]
    Recent,
    /// Most urgent deadline first (overdue at the top); cases without a deadline last.
    Due,
}

/// Filters of `GET /api/v1/cases`. Empty vectors mean "any".
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    pub status: Vec<String>,
    pub kind: Option<String>,
    pub communities: Vec<String>,
    pub district: Option<String>,
    pub overdue: Option<bool>,
    pub text: Option<String>,
    /// Only these communities are visible to the caller (members and leaders); `None` = all.
    pub visible_communities: Option<Vec<String>>,
    /// Only cases that name one of these parties (an empty list: none).
    pub naming_parties: Option<Vec<String>>,
    /// Only cases held by this member.
    pub assignee: Option<String>,
    /// Only cases whose earliest running clock is of this kind (`due_kind`).
    pub due_kind: Option<String>,
    /// Only cases due from now until this time: not yet overdue, soon to be.
    pub due_before: Option<String>,
    /// Only cases with a supervision order awaiting its answer.
    pub orders_open: bool,
    pub sort: Sort,
    pub limit: i64,
    pub cursor: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct CaseView {
    #[serde(flatten)]
    pub row: CaseRow,
    pub overdue: bool,
    /// The case's number, e.g. 西关北街调〔2026〕12号 (filled in by the application, which
    /// knows the groups' names and the configured format).
    pub case_number: Option<String>,
    /// The case's parties who are repeat obstructors (filled in by the application on a
    /// single case's answer; empty in lists).
    pub repeat_obstructors: Vec<RepeatObstructor>,
}

/// A party with several obstruction incidents.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct RepeatObstructor {
    pub party_id: String,
    /// Obstruction incidents naming the party, in all communities.
    pub incidents: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("the cursor is not valid")]
    BadCursor,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `community = …` for one community (its index gives the order too); for several, on
/// SQLite, `+community IN (…)`: the unary plus keeps SQLite from choosing the community
/// index and sorting every match (1.6 s at 117,000 cases) instead of walking the
/// `reported_at` index and stopping at the page's end (PostgreSQL chooses well unaided).
fn community_condition(db: &Db, placeholders: &[String]) -> String {
    match (placeholders, db) {
        ([one], _) => format!("community = {one}"),
        (many, Db::Sqlite(_)) => format!("+community IN ({})", many.join(", ")),
        (many, Db::Postgres(_)) => format!("community IN ({})", many.join(", ")),
    }
}

/// Lists cases, newest first or most urgent first, with a cursor for the next page.
async fn list_plain(
    db: &Db,
    f: &CaseFilter,
    now: &Timestamp,
) -> Result<Page<CaseView>, QueryError> {
    let now_s = now.to_canonical();
    let mut conds: Vec<String> = Vec::new();
    let mut args: Vec<Val> = Vec::new();
    let arg = |v: Val, args: &mut Vec<Val>| {
        args.push(v);
        format!("${}", args.len())
    };
    if !f.status.is_empty() {
        let ph: Vec<String> = f
            .status
            .iter()
            .map(|s| arg(s.clone().into(), &mut args))
            .collect();
        conds.push(format!("status IN ({})", ph.join(", ")));
    }
    if let Some(k) = &f.kind {
        conds.push(format!("kind = {}", arg(k.clone().into(), &mut args)));
    }
    if !f.communities.is_empty() {
        let ph: Vec<String> = f
            .communities
            .iter()
            .map(|s| arg(s.clone().into(), &mut args))
            .collect();
        conds.push(community_condition(db, &ph));
    }
    if let Some(visible) = &f.visible_communities {
        if visible.is_empty() {
            return Ok(Page {
                items: vec![],
                next_cursor: None,
            });
        }
        let ph: Vec<String> = visible
            .iter()
            .map(|s| arg(s.clone().into(), &mut args))
            .collect();
        conds.push(community_condition(db, &ph));
    }
    if let Some(parties) = &f.naming_parties {
        if parties.is_empty() {
            return Ok(Page {
                items: vec![],
                next_cursor: None,
            });
        }
        let ph: Vec<String> = parties
            .iter()
            .map(|s| arg(s.clone().into(), &mut args))
            .collect();
        conds.push(format!(
            "case_id IN (SELECT case_id FROM {} WHERE party_id IN ({}))",
            crate::models::case_parties::NAME,
            ph.join(", ")
        ));
    }
    if let Some(d) = &f.district {
        conds.push(format!("district = {}", arg(d.clone().into(), &mut args)));
    }
    if let Some(a) = &f.assignee {
        conds.push(format!("assignee = {}", arg(a.clone().into(), &mut args)));
    }
    if let Some(k) = &f.due_kind {
        conds.push(format!("due_kind = {}", arg(k.clone().into(), &mut args)));
    }
    if let Some(until) = &f.due_before {
        let n = arg(now_s.clone().into(), &mut args);
        let u = arg(until.clone().into(), &mut args);
        conds.push(format!("(due_at >= {n} AND due_at < {u})"));
    }
    if f.orders_open {
        conds.push("order_due_at IS NOT NULL".into());
    }
    if let Some(o) = f.overdue {
        let n1 = arg(now_s.clone().into(), &mut args);
        let n2 = arg(now_s.clone().into(), &mut args);
        let cond = format!("((due_at IS NOT NULL AND due_at < {n1}) OR (order_due_at IS NOT NULL AND order_due_at < {n2}))");
        conds.push(if o { cond } else { format!("NOT {cond}") });
    }
    let limit = f.limit.clamp(1, 500);
    let order = match f.sort {
        Sort::Recent => {
            if let Some(c) = &f.cursor {
                let parts = decode_cursor(c, 2).ok_or(QueryError::BadCursor)?;
                let a = arg(parts[0].clone().into(), &mut args);
                let b = arg(parts[0].clone().into(), &mut args);
                let id = arg(parts[1].clone().into(), &mut args);
                conds.push(format!(
                    "(reported_at < {a} OR (reported_at = {b} AND case_id < {id}))"
                ));
            }
            "reported_at DESC, case_id DESC"
        }
        Sort::Due => {
            // Cases without a deadline sort after all others ('~' is after every digit).
            if let Some(c) = &f.cursor {
                let parts = decode_cursor(c, 2).ok_or(QueryError::BadCursor)?;
                let a = arg(parts[0].clone().into(), &mut args);
                let b = arg(parts[0].clone().into(), &mut args);
                let id = arg(parts[1].clone().into(), &mut args);
                conds.push(format!(
                    "(COALESCE(due_at, '~') > {a} OR (COALESCE(due_at, '~') = {b} AND case_id > {id}))"
                ));
            }
            "COALESCE(due_at, '~') ASC, case_id ASC"
        }
    };
    let where_ = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    let sql = format!(
        "SELECT {} FROM {NAME} {where_} ORDER BY {order} LIMIT {}",
        COLUMNS.join(", "),
        limit + 1
    );
    let mut rows: Vec<CaseRow> = on_db!(db, p => {
        let mut q = sqlx::query(&sql);
        for v in &args {
            q = match v {
                Val::I(x) => q.bind(*x),
                Val::F(x) => q.bind(*x),
                Val::T(x) => q.bind(x.clone()),
            };
        }
        q.fetch_all(p).await.map_err(StoreError::from)?.iter().map(CaseRow::from_row).collect::<Result<Vec<_>, sqlx::Error>>().map_err(StoreError::from)?
    });
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| match f.sort {
            Sort::Recent => encode_cursor(&[&r.reported_at, &r.case_id]),
            Sort::Due => encode_cursor(&[r.due_at.as_deref().unwrap_or("~"), &r.case_id]),
        })
    } else {
        None
    };
    Ok(Page {
        items: rows
            .into_iter()
            .map(|row| CaseView {
                overdue: row.is_overdue(&now_s),
                row,
                case_number: None,
                repeat_obstructors: vec![],
            })
            .collect(),
        next_cursor,
    })
}

/// How free text is shown to a viewer who sees personal data masked: applied to each
/// summary before a text filter looks at it, so that a search cannot confirm what the
/// masking hides.
#[async_trait::async_trait]
pub trait SummaryMask: Send + Sync {
    async fn mask(&self, case_id: &str, text: String) -> Result<String, StoreError>;
}

/// How many cases a text search reads (newest first, after the other filters) before it
/// gives up: the summaries are sealed, so they are searched after opening, not in SQL.
pub const TEXT_SCAN_LIMIT: usize = 5000;

/// Lists cases, newest first or most urgent first, with a cursor for the next page. The
/// summaries are opened with the case keys; a text filter is applied to the opened text.
pub async fn list(
    db: &Db,
    keys: &Keyring,
    f: &CaseFilter,
    now: &Timestamp,
    mask: Option<&dyn SummaryMask>,
) -> Result<Page<CaseView>, QueryError> {
    let text = f
        .text
        .as_deref()
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty());
    let Some(text) = text else {
        let mut page = list_plain(db, f, now).await?;
        open_summaries(keys, &mut page.items, mask).await?;
        return Ok(page);
    };
    let limit = f.limit.clamp(1, 500) as usize;
    let mut inner = f.clone();
    inner.text = None;
    inner.limit = 200;
    let mut found: Vec<CaseView> = Vec::new();
    let mut scanned = 0usize;
    let mut more = false;
    loop {
        let mut page = list_plain(db, &inner, now).await?;
        scanned += page.items.len();
        open_summaries(keys, &mut page.items, mask).await?;
        for v in page.items {
            if v.row.summary.to_lowercase().contains(&text) {
                if found.len() == limit {
                    more = true;
                    break;
                }
                found.push(v);
            }
        }
        match page.next_cursor {
            Some(c) if !more && scanned < TEXT_SCAN_LIMIT => inner.cursor = Some(c),
            Some(_) if !more => {
                more = true;
                break;
            }
            _ => break,
        }
    }
    let next_cursor = if more {
        found.last().map(|v| match f.sort {
            Sort::Recent => encode_cursor(&[&v.row.reported_at, &v.row.case_id]),
            Sort::Due => encode_cursor(&[v.row.due_at.as_deref().unwrap_or("~"), &v.row.case_id]),
        })
    } else {
        None
    };
    Ok(Page {
        items: found,
        next_cursor,
    })
}

async fn open_summaries(
    keys: &Keyring,
    items: &mut [CaseView],
    mask: Option<&dyn SummaryMask>,
) -> Result<(), StoreError> {
    for v in items {
        v.row.summary = keys
            .open_case_text(&v.row.case_id, &v.row.summary)
            .await
            .map_err(StoreError::from)?;
        if let Some(m) = mask {
            v.row.summary = m
                .mask(&v.row.case_id, std::mem::take(&mut v.row.summary))
                .await?;
        }
    }
    Ok(())
}

/// One case, its summary opened.
pub async fn get_open(
    db: &Db,
    keys: &Keyring,
    id: &str,
    now: &Timestamp,
) -> Result<Option<CaseView>, StoreError> {
    let mut v = get(db, id, now).await?;
    if let Some(v) = v.as_mut() {
        open_summaries(keys, std::slice::from_mut(v), None).await?;
    }
    Ok(v)
}

/// One case as stored (its summary sealed).
pub async fn get(db: &Db, id: &str, now: &Timestamp) -> Result<Option<CaseView>, StoreError> {
    let sql = format!(
        "SELECT {} FROM {NAME} WHERE case_id = $1",
        COLUMNS.join(", ")
    );
    let row: Option<CaseRow> = on_db!(db, p => {
        sqlx::query(&sql).bind(id).fetch_optional(p).await?.as_ref().map(CaseRow::from_row).transpose()?
    });
    let now_s = now.to_canonical();
    Ok(row.map(|row| CaseView {
        overdue: row.is_overdue(&now_s),
        row,
        case_number: None,
        repeat_obstructors: vec![],
    }))
}

/// Counts by status, kind and overdue, optionally for some communities only.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub total: i64,
    pub open: i64,
    pub overdue: i64,
    pub by_status: BTreeMap<String, i64>,
    pub by_kind: BTreeMap<String, i64>,
}

pub async fn counts(
    db: &Db,
    now: &Timestamp,
    district: Option<&str>,
) -> Result<Counts, StoreError> {
    let now_s = now.to_canonical();
    let (filter, bind) = match district {
        Some(d) => ("WHERE district = $2", Some(d.to_string())),
        None => ("", None),
    };
    let sql = format!(
        "SELECT status, kind, COUNT(*),
                SUM(CASE WHEN (due_at IS NOT NULL AND due_at < $1) OR (order_due_at IS NOT NULL AND order_due_at < $1) THEN 1 ELSE 0 END)
           FROM {NAME} {filter} GROUP BY status, kind"
    );
    let rows: Vec<(String, String, i64, i64)> = on_db!(db, p => {
        let mut q = sqlx::query(&sql).bind(&now_s);
        if let Some(b) = &bind {
            q = q.bind(b.clone());
        }
        q.fetch_all(p)
            .await?
            .into_iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get::<Option<i64>, _>(3)?.unwrap_or(0))))
            .collect::<Result<Vec<_>, sqlx::Error>>()?
    });
    let mut c = Counts::default();
    for (status, kind, n, overdue) in rows {
        c.total += n;
        if CaseStatus::parse(&status).is_some_and(|s| s.is_open()) {
            c.open += n;
        }
        c.overdue += overdue;
        *c.by_status.entry(status).or_default() += n;
        *c.by_kind.entry(kind).or_default() += n;
    }
    Ok(c)
}

/// What a person is reminded of in the navigation: cases due soon (not yet late), cases
/// overdue, cases with a supervision order awaiting its answer, and agreements whose
/// performance is due soon or late.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Reminders {
    pub due_soon: i64,
    pub overdue: i64,
    pub orders: i64,
    pub performance: i64,
}

/// Counts [`Reminders`] among the cases held by `assignee` (when given) within the visible
/// communities (`None`: all); "soon" is before `soon`.
pub async fn reminders(
    db: &Db,
    now: &Timestamp,
    soon: &Timestamp,
    assignee: Option<&str>,
    visible: Option<&[String]>,
) -> Result<Reminders, StoreError> {
    let mut binds: Vec<String> = vec![now.to_canonical(), soon.to_canonical()];
    let mut where_ = String::from("WHERE 1 = 1");
    if let Some(a) = assignee {
        binds.push(a.to_string());
        where_.push_str(&format!(" AND assignee = ${}", binds.len()));
    }
    let Some(scope) = super::within_communities("community", binds.len() + 1, visible) else {
        return Ok(Reminders::default());
    };
    binds.extend(visible.unwrap_or_default().iter().cloned());
    where_.push_str(&scope);
    let sql = format!(
        "SELECT SUM(CASE WHEN due_at >= $1 AND due_at < $2 THEN 1 ELSE 0 END),
                SUM(CASE WHEN due_at < $1 OR order_due_at < $1 THEN 1 ELSE 0 END),
                SUM(CASE WHEN order_due_at IS NOT NULL THEN 1 ELSE 0 END),
                SUM(CASE WHEN due_kind = 'performance' AND due_at < $2 THEN 1 ELSE 0 END)
           FROM {NAME} {where_}"
    );
    let row: (Option<i64>, Option<i64>, Option<i64>, Option<i64>) = on_db!(db, p => {
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = q.bind(b.clone());
        }
        let r = q.fetch_one(p).await?;
        (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)
    });
    Ok(Reminders {
        due_soon: row.0.unwrap_or(0),
        overdue: row.1.unwrap_or(0),
        orders: row.2.unwrap_or(0),
        performance: row.3.unwrap_or(0),
    })
}

/// A case's number as stored: (group id, year, n).
pub type Number = (String, i64, i64);

/// The stored numbers of some cases, by case id.
pub async fn numbers(
    db: &Db,
    ids: &[&str],
) -> Result<std::collections::HashMap<String, Number>, StoreError> {
    let mut out = std::collections::HashMap::new();
    for chunk in ids.chunks(200) {
        let rows: Vec<(String, String, i64, i64)> = match db {
            Db::Sqlite(p) => {
                let sql = format!(
                    "SELECT case_id, group_id, CAST(year AS BIGINT), CAST(n AS BIGINT) FROM case_numbers WHERE case_id IN ({})",
                    crate::db::placeholders(1, chunk.len())
                );
                let mut q = sqlx::query_as(&sql);
                for id in chunk {
                    q = q.bind(*id);
                }
                q.fetch_all(p).await?
            }
            // Each id looked up by its key: the prepared IN-list's generic plan, made while
            // the table was small, scanned all of it on every case list once it had grown
            // (4.5 ms a page at 7,000 cases under load; a lateral lookup cannot be
            // flattened into that scan).
            Db::Postgres(p) => {
                sqlx::query_as(
                    "SELECT c.case_id, c.group_id, CAST(c.year AS BIGINT), CAST(c.n AS BIGINT)
                       FROM unnest($1::text[]) AS k(id)
                      CROSS JOIN LATERAL (SELECT * FROM case_numbers n WHERE n.case_id = k.id LIMIT 1) c",
                )
                .bind(chunk)
                .fetch_all(p)
                .await?
            }
        };
        for (id, g, y, n) in rows {
            out.insert(id, (g, y, n));
        }
    }
    Ok(out)
}

/// The case holding a number, if any.
pub async fn by_number(
    db: &Db,
    group: &str,
    year: i64,
    n: i64,
) -> Result<Option<String>, StoreError> {
    Ok(on_db!(db, p => {
        sqlx::query_scalar("SELECT case_id FROM case_numbers WHERE group_id = $1 AND year = $2 AND n = $3")
            .bind(group)
            .bind(year as i32)
            .bind(n as i32)
            .fetch_optional(p)
            .await?
    }))
}
