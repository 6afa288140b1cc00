//! The command service: checks who may do what, stamps the metadata, and runs the command
//! on the aggregate. The HTTP handlers and the demo loader both come through here.

use std::collections::BTreeSet;

use tiaojie_events::case::{Case, CaseCommand};
use tiaojie_events::group::{GroupCommand, MediationGroup};
use tiaojie_events::metadata::EventMetadata;
use tiaojie_events::{CaseId, CommunityId, GroupId};
use tiaojie_projections::store::Denied;

use crate::app::App;
use crate::app_error::{AppError, AppResult};
use crate::auth::{may_manage_groups, may_run_case_command, Actor};

/// Where a command came from.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub request_id: String,
    pub trace_id: Option<String>,
    pub idempotency_key: Option<String>,
}

impl RequestMeta {
    pub fn new_request() -> Self {
        Self {
            request_id: uuid::Uuid::now_v7().to_string(),
            trace_id: None,
            idempotency_key: None,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CommandOutcome {
    pub id: String,
    pub version: u64,
    pub retries: u32,
    pub events: Vec<String>,
    /// What the caller should know (a party named is already a repeat obstructor).
    pub warnings: Vec<String>,
}

fn metadata(
    app: &App,
    actor: &Actor,
    meta: &RequestMeta,
) -> std::collections::HashMap<String, String> {
    EventMetadata {
        actor_id: actor.id.clone(),
        actor_name: actor.name.clone(),
        role: actor.role,
        organisation: actor.organisation.clone(),
        request_id: meta.request_id.clone(),
        trace_id: meta.trace_id.clone(),
        recorded_at: app.now(),
        app_version: app.version.to_string(),
        idempotency_key: meta.idempotency_key.clone(),
        account_id: actor.account.clone(),
        member_id: actor.member.map(|m| m.to_string()),
    }
    .into_map()
}

/// The communities a member or leader may act in; `None` for roles not bound to a group.
pub async fn scope(app: &App, actor: &Actor) -> AppResult<Option<BTreeSet<CommunityId>>> {
    if !actor.is_group_role() {
        return Ok(None);
    }
    let Some(group) = actor.group else {
        return Ok(Some(BTreeSet::new()));
    };
    let state = app.directory.group_state(&group).await?;
    Ok(Some(
        state
            .map(|g| g.communities.into_iter().collect())
            .unwrap_or_default(),
    ))
}

/// Tells the node's store health what a command found.
fn note_store<T, E: std::error::Error>(
    app: &App,
    result: &Result<T, tiaojie_projections::store::Outcome<E>>,
) {
    use tiaojie_projections::store::Outcome;
    use tiaojie_projections::CommandError;
    match result {
        Ok(_) => app.health.command_result(None),
        Err(Outcome::Failed(CommandError::Store(e))) => app.health.command_result(Some(e)),
        Err(_) => app.health.reachable(),
    }
}

/// Who may run this step on this case, decided before the body is read or any default is
/// computed: the role first, then (for members and leaders) the case's community.
pub async fn guard_case_step(app: &App, actor: &Actor, id: &CaseId, step: &str) -> AppResult<()> {
    crate::auth::may_run_case_step(actor.role, step).map_err(AppError::forbidden_zh)?;
    if let Some(scope) = scope(app, actor).await? {
        match app.stores.case_community(&id.to_string()).await? {
            None => return Err(AppError::not_found("case")),
            Some(c) if !scope.contains(&c) => return Err(AppError::out_of_scope()),
            Some(_) => {}
        }
    }
    Ok(())
}

/// Runs a write to its end in a task of its own. A caller that goes away (a client that
/// disconnects, the request's time-out) then cannot cut a transaction off half-way: sqlx's
/// PostgreSQL transactions are not cancel-safe while `BEGIN` is in flight
/// (transact-rs/sqlx#4393), and the event store's repository begins its own. The write
/// either commits or not, as if the caller had waited.
async fn to_completion<T: Send + 'static>(
    write: impl std::future::Future<Output = T> + Send + 'static,
) -> AppResult<T> {
    tokio::spawn(write).await.map_err(|e| {
        tracing::error!(error = %e, "a write's task failed");
        AppError::internal()
    })
}

pub async fn case_command(
    app: &App,
    actor: &Actor,
    meta: &RequestMeta,
    case_id: &CaseId,
    command: CaseCommand,
    expected: Option<u64>,
) -> AppResult<CommandOutcome> {
    may_run_case_command(actor.role, &command).map_err(AppError::forbidden_zh)?;
    let scope = scope(app, actor).await?;
    if let (Some(scope), CaseCommand::OpenCase(open)) = (&scope, &command) {
        if !scope.contains(&open.community) {
            return Err(AppError::forbidden_zh((
                "the community is not one of your mediation group's communities",
                "该小区不在本矛盾调解小组负责范围内",
            )));
        }
    }
    // Parties a case is opened with, or a party added, must be registered and not erased:
    // the store checks that in the append's own transaction, and answers what the warnings
    // below need of each. The obstructors an incident names are looked up here.
    let mut warnings = match &command {
        CaseCommand::RecordIncident(r) if !r.incident.obstructing_parties.is_empty() => {
            crate::parties::repeat_warnings(app, &r.incident.obstructing_parties).await?
        }
        _ => vec![],
    };
    let authorize = move |case: &Case| -> Result<(), Denied> {
        match (&scope, &case.community) {
            (Some(scope), Some(c)) if !scope.contains(c) => Err(Denied(
                "the case is not in one of your mediation group's communities".into(),
            )),
            _ => Ok(()),
        }
    };
    let command_name = command.name();
    let started = std::time::Instant::now();
    let span = tracing::info_span!(
        "command",
        aggregate = "Case",
        id = %case_id,
        command = command_name,
        outcome = tracing::field::Empty,
        retries = tracing::field::Empty,
    );
    let stores = app.stores.clone();
    let (id, mut metadata) = (case_id.to_string(), metadata(app, actor, meta));
    if command_name == "open_case" {
        // The year of the case's number: the local year it is opened in.
        metadata.insert("case_year".into(), app.today().year().to_string());
    }
    let result = to_completion(tracing::Instrument::instrument(
        async move {
            stores
                .execute_case(&id, command, metadata, expected, authorize)
                .await
        },
        span.clone(),
    ))
    .await?;
    span.record(
        "outcome",
        if result.is_ok() {
            "accepted"
        } else {
            "refused"
        },
    );
    if let Ok(c) = &result {
        span.record("retries", c.retries);
        app.metrics.events_appended(c.events.len());
    }
    app.metrics.record_command(
        "Case",
        command_name,
        started.elapsed(),
        &result.as_ref().map(|c| c.retries).map_err(|_| ()),
    );
    note_store(app, &result);
    let committed = result.map_err(|o| {
        // Members must not learn that a case outside their scope exists.
        AppError::from(o)
    })?;
    // Parties already flagged as repeat obstructors (before this command) are named in a
    // warning. The command is written by now: a warning that cannot be worded is left out,
    // never answered as a failure that a retry would turn into a second case.
    match crate::parties::named_warnings(app, &committed.named).await {
        Ok(w) => warnings.extend(w),
        Err(e) => tracing::warn!(
            code = %e.code,
            error = %e.title,
            "a repeat-obstructor warning could not be worded; the command was written"
        ),
    }
    tracing::debug!(aggregate = "Case", id = %case_id, command = command_name, version = committed.version, retries = committed.retries, "command accepted");
    Ok(CommandOutcome {
        id: case_id.to_string(),
        version: committed.version,
        retries: committed.retries,
        events: committed
            .events
            .iter()
            .map(|e| e.payload.type_name().to_string())
            .collect(),
        warnings,
    })
}

pub async fn group_command(
    app: &App,
    actor: &Actor,
    meta: &RequestMeta,
    group_id: &GroupId,
    command: GroupCommand,
    expected: Option<u64>,
) -> AppResult<CommandOutcome> {
    may_manage_groups(actor.role).map_err(AppError::forbidden_zh)?;
    if let GroupCommand::ChangeCommunities(c) = &command {
        for community in &c.remove {
            if has_open_cases(app, community).await? {
                return Err(AppError::refused(
                    "community_has_open_cases",
                    "The community has open cases: move it to another group with them instead of removing it",
                    "该小区还有未结案件，不能直接移除；请用“移交小区”连同案件交给其他小组",
                )
                .with_field("remove", "该小区还有未结案件，请用“移交小区”"));
            }
        }
    }
    let started = std::time::Instant::now();
    let span = tracing::info_span!("command", aggregate = "MediationGroup", id = %group_id, outcome = tracing::field::Empty);
    let stores = app.stores.clone();
    let (id, metadata) = (group_id.to_string(), metadata(app, actor, meta));
    let result = to_completion(tracing::Instrument::instrument(
        async move {
            stores
                .execute_group(
                    &id,
                    command,
                    metadata,
                    expected,
                    |_: &MediationGroup| Ok(()),
                )
                .await
        },
        span.clone(),
    ))
    .await?;
    span.record(
        "outcome",
        if result.is_ok() {
            "accepted"
        } else {
            "refused"
        },
    );
    if let Ok(c) = &result {
        app.metrics.events_appended(c.events.len());
    }
    app.metrics.record_command(
        "MediationGroup",
        "group_command",
        started.elapsed(),
        &result.as_ref().map(|c| c.retries).map_err(|_| ()),
    );
    note_store(app, &result);
    let committed = result?;
    app.directory.invalidate().await;
    Ok(CommandOutcome {
        id: group_id.to_string(),
        version: committed.version,
        retries: committed.retries,
        events: committed
            .events
            .iter()
            .map(|e| e.payload.type_name().to_string())
            .collect(),
        warnings: vec![],
    })
}

/// What moving a community did.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct MoveOutcome {
    pub community: String,
    pub from: String,
    pub to: String,
    /// Cases that moved with it, closed ones included (each has a `CaseTransferred` event).
    pub cases_moved: usize,
    /// Of those, cases whose assignee is not in the receiving group and was unassigned.
    pub unassigned: usize,
}

/// The ids of every case opened in a community, from the event store itself (so that a
/// case the read models have not caught up with is not missed).
async fn cases_in_community(app: &App, community: &CommunityId) -> AppResult<Vec<String>> {
    let sql = match app.db.backend() {
        tiaojie_projections::db::Backend::Sqlite => "SELECT aggregate_id FROM events WHERE aggregate_type = $1 AND sequence = 1 AND json_extract(payload, '$.community') = $2 ORDER BY aggregate_id",
        tiaojie_projections::db::Backend::Postgres => "SELECT aggregate_id FROM events WHERE aggregate_type = $1 AND sequence = 1 AND payload->>'community' = $2 ORDER BY aggregate_id",
    };
    let ids: Vec<String> = tiaojie_projections::on_db!(&app.db, p => {
        sqlx::query_scalar(sql)
            .bind(tiaojie_events::case::CASE_AGGREGATE_TYPE)
            .bind(community.as_str())
            .fetch_all(p)
            .await?
    });
    Ok(ids)
}

/// Whether a community has cases that are neither closed nor withdrawn (read model).
pub async fn has_open_cases(app: &App, community: &CommunityId) -> AppResult<bool> {
    let n: i64 = tiaojie_projections::on_db!(&app.db, p => {
        sqlx::query_scalar("SELECT COUNT(*) FROM case_status WHERE community = $1 AND status NOT IN ('closed', 'withdrawn')")
            .bind(community.as_str())
            .fetch_one(p)
            .await?
    });
    Ok(n > 0)
}

/// Moves a community from one mediation group to another, with its open cases: the
/// receiver takes it over, the giver hands it over (so that it is never without a group),
/// then each of its cases gets a `CaseTransferred` event naming both groups and why, and an
/// assignee who is not a member of the receiving group is unassigned (closed cases too,
/// so that one reopened later is with the group that covers it). Safe to run again after
/// an interruption: each part that is done already is skipped.
pub async fn move_community(
    app: &App,
    actor: &Actor,
    meta: &RequestMeta,
    from: &GroupId,
    community: &CommunityId,
    to: &GroupId,
    reason: &str,
) -> AppResult<MoveOutcome> {
    use tiaojie_events::case::TransferCase;
    use tiaojie_events::group::{HandOverCommunity, TakeOverCommunity};
    may_manage_groups(actor.role).map_err(AppError::forbidden_zh)?;
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(AppError::invalid(
            "reason_required",
            "Say why the community moves (up to 200 characters)",
            "请填写移交理由（200字以内）",
        )
        .with_field("reason", "请填写移交理由（200字以内）"));
    }
    if from == to {
        return Err(
            AppError::group_rule(tiaojie_events::group::GroupError::SameGroup)
                .with_field("to", "不能移交给本小组"),
        );
    }
    let state = |g: GroupId| async move {
        app.directory
            .group_state(&g)
            .await
            .map_err(AppError::from)?
            .ok_or_else(|| AppError::not_found("mediation group"))
    };
    let (giver, receiver) = (state(*from).await?, state(*to).await?);
    let receiver_has = receiver.communities.contains(community);
    let giver_has = giver.communities.contains(community);
    // Checked before anything is written: the giver keeps at least one community.
    if giver_has && giver.communities.len() == 1 {
        return Err(
            AppError::group_rule(tiaojie_events::group::GroupError::NoCommunities)
                .with_field("community", "矛盾调解小组至少负责一个小区"),
        );
    }
    if !receiver_has {
        group_command(
            app,
            actor,
            meta,
            to,
            GroupCommand::TakeOverCommunity(TakeOverCommunity {
                community: community.clone(),
                from: *from,
                reason: reason.to_string(),
            }),
            None,
        )
        .await?;
    }
    if giver_has || !receiver_has {
        group_command(
            app,
            actor,
            meta,
            from,
            GroupCommand::HandOverCommunity(HandOverCommunity {
                community: community.clone(),
                to: *to,
                reason: reason.to_string(),
            }),
            None,
        )
        .await?;
    }
    let mut outcome = MoveOutcome {
        community: community.to_string(),
        from: from.to_string(),
        to: to.to_string(),
        cases_moved: 0,
        unassigned: 0,
    };
    for id in cases_in_community(app, community).await? {
        let Ok(case_id) = CaseId::parse(&id) else {
            continue;
        };
        let (case, _) = app.stores.load_case(&id).await?;
        // A case moved already is skipped. Closed and withdrawn cases move too (their
        // history stays as recorded): reopened later, they belong to the group that covers
        // their community, and assignment checks that group.
        if case.group == Some(*to) {
            continue;
        }
        case_command(
            app,
            actor,
            meta,
            &case_id,
            CaseCommand::TransferCase(TransferCase {
                to: *to,
                reason: reason.to_string(),
            }),
            None,
        )
        .await?;
        outcome.cases_moved += 1;
        if case
            .assignee
            .is_some_and(|a| !receiver.members.contains_key(&a))
        {
            outcome.unassigned += 1;
        }
    }
    tracing::info!(community = %community, from = %from, to = %to, cases = outcome.cases_moved, "a community moved between mediation groups");
    Ok(outcome)
}
