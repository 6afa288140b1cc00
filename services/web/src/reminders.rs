//! Reminders in the navigation: each person's cases due soon and overdue, supervision
//! orders awaiting an answer, and agreements whose performance is due, each linking to the
//! list behind it. A member counts the cases they hold; a leader the group's; a supervision
//! office the whole programme's overdue cases and unanswered orders.
//!
//! Counted from `case_status` in one query, and kept per person until the log moves on or
//! a minute passes (a deadline can pass with nothing recorded).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use tiaojie_events::metadata::Role;
use tiaojie_projections::models::case_status::{self, Reminders};

use super::Lang;
use crate::app::App;
use crate::auth::Actor;

const KEEP: Duration = Duration::from_secs(60);

/// One reminder in the navigation.
#[derive(Debug, Clone)]
pub struct NavReminder {
    pub id: &'static str,
    pub label: String,
    pub count: i64,
    pub href: String,
    pub alert: bool,
}

type Kept = HashMap<String, (i64, Instant, Reminders)>;
static KEPT: LazyLock<Mutex<Kept>> = LazyLock::new(|| Mutex::new(HashMap::new()));

async fn counts(app: &App, actor: &Actor) -> Option<Reminders> {
    let (assignee, everyone) = match actor.role {
        Role::Member => (actor.member.as_ref().map(|m| m.to_string()), false),
        Role::Leader => (None, false),
        Role::Supervisor | Role::System => (None, true),
        Role::Dashboard | Role::Admin => return None,
    };
    let position = app.read.position().await.unwrap_or(0);
    let key = format!("{}:{}", actor.id, assignee.as_deref().unwrap_or(""));
    if let Ok(kept) = KEPT.lock() {
        if let Some((at, when, r)) = kept.get(&key) {
            if *at == position && when.elapsed() < KEEP {
                return Some(*r);
            }
        }
    }
    let visible: Option<Vec<String>> = if everyone {
        None
    } else {
        let scope = crate::commands::scope(app, actor).await.ok()?;
        Some(
            scope
                .unwrap_or_default()
                .into_iter()
                .map(|c| c.to_string())
                .collect(),
        )
    };
    let now = app.now();
    let soon = now.plus_days(crate::queries::DUE_SOON_DAYS);
    let r = case_status::reminders(
        &app.db,
        &now,
        &soon,
        assignee.as_deref(),
        visible.as_deref(),
    )
    .await
    .map_err(|e| tracing::warn!(error = %e, "the reminders could not be counted"))
    .ok()?;
    if let Ok(mut kept) = KEPT.lock() {
        if kept.len() > 10_000 {
            kept.clear();
        }
        kept.insert(key, (position, Instant::now(), r));
    }
    Some(r)
}

/// The reminders to show `actor`, those with something to count.
pub async fn for_actor(app: &App, actor: &Actor, lang: Lang) -> Vec<NavReminder> {
    let Some(r) = counts(app, actor).await else {
        return vec![];
    };
    let supervision = matches!(actor.role, Role::Supervisor | Role::System);
    let (base, mine) = if supervision {
        ("/supervision", "")
    } else if actor.role == Role::Member && actor.member.is_some() {
        ("/desk", "&mine=1")
    } else {
        ("/desk", "")
    };
    let item = |id, zh, en, count, query: &str, alert| NavReminder {
        id,
        label: lang.t(zh, en).to_string(),
        count,
        href: format!("{base}?{query}{mine}"),
        alert,
    };
    let mut all = vec![];
    if !supervision {
        all.push(item(
            "due-soon", "临期", "Due soon", r.due_soon, "due=soon", false,
        ));
    }
    all.push(item(
        "overdue",
        "逾期",
        "Overdue",
        r.overdue,
        "overdue=1",
        true,
    ));
    all.push(item(
        "orders",
        "待答复督办",
        "Orders to answer",
        r.orders,
        "due=orders",
        true,
    ));
    if !supervision {
        all.push(item(
            "performance",
            "履行到期",
            "Performance due",
            r.performance,
            "due=performance",
            false,
        ));
    }
    all.into_iter().filter(|i| i.count > 0).collect()
}
