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

/// One section of the digest: what it lists, and the list's link.
pub struct DigestSection {
    pub id: &'static str,
    pub title: String,
    pub href: String,
    pub cases: Vec<super::desk::CaseLine>,
    pub more: bool,
}

#[derive(askama::Template)]
#[template(path = "digest.html")]
struct DigestPage {
    chrome: super::Chrome,
    date: String,
    sections: Vec<DigestSection>,
}

/// The daily digest (`/digest`): for a member the cases they hold, for a leader the
/// group's, for a supervision office the programme's: overdue, due within a few days,
/// supervision orders awaiting an answer, agreements whose performance is due, and what
/// came in yesterday. A page to open each morning; each section links to its full list.
pub async fn digest(
    axum::extract::State(app): axum::extract::State<App>,
    signed: super::Signed,
) -> axum::response::Response {
    let lang = signed.web.lang;
    if matches!(signed.actor.role, Role::Dashboard | Role::Admin) {
        use axum::response::IntoResponse;
        return axum::response::Redirect::to(super::landing(&signed.actor)).into_response();
    }
    let supervision = matches!(signed.actor.role, Role::Supervisor | Role::System);
    let mine = signed.actor.role == Role::Member && signed.actor.member.is_some();
    let base = if supervision { "/supervision" } else { "/desk" };
    let wanted: Vec<(&'static str, &str, &str, &str, super::desk::ListQuery)> = vec![
        (
            "overdue",
            "overdue=1",
            "逾期",
            "Overdue",
            super::desk::ListQuery {
                overdue: Some("1".into()),
                ..Default::default()
            },
        ),
        (
            "due-soon",
            "due=soon",
            "3天内到期",
            "Due within 3 days",
            super::desk::ListQuery {
                due: Some("soon".into()),
                ..Default::default()
            },
        ),
        (
            "orders",
            "due=orders",
            "督办待答复",
            "Orders awaiting an answer",
            super::desk::ListQuery {
                due: Some("orders".into()),
                ..Default::default()
            },
        ),
        (
            "performance",
            "due=performance",
            "协议履行到期",
            "Performance due",
            super::desk::ListQuery {
                due: Some("performance".into()),
                ..Default::default()
            },
        ),
        (
            "recent",
            "status=reported&sort=recent",
            "待受理的新案件",
            "New, awaiting acceptance",
            super::desk::ListQuery {
                sort: Some("recent".into()),
                status: Some("reported".into()),
                ..Default::default()
            },
        ),
    ];
    let mut sections = vec![];
    for (id, query, zh, en, mut q) in wanted {
        let mut href = format!("{base}?{query}");
        if mine && id != "recent" {
            q.mine = Some("1".into());
            href.push_str("&mine=1");
        }
        match super::desk::list_for(&app, &signed.actor, lang, &q, 20).await {
            Ok((cases, filters)) => sections.push(DigestSection {
                id,
                title: lang.t(zh, en).to_string(),
                href,
                more: filters.next.is_some(),
                cases,
            }),
            Err(e) => return signed.error(e),
        }
    }
    super::render(&DigestPage {
        chrome: signed.chrome(lang.t("每日提醒", "Daily digest").into(), "digest"),
        date: app.today().to_string(),
        sections,
    })
}
