//! The daily digest by e-mail: each configured group's leader gets, once a day at the
//! configured hour (local time), what the digest page shows: the group's cases overdue,
//! due within a few days, under an unanswered supervision order, with performance due, and
//! new ones awaiting acceptance. Case numbers, communities and deadlines only, with links;
//! no names, no phone numbers, no summaries. A day's mail is recorded as sent
//! (`digest_sent`) before it goes, so that a restart or a second instance does not send it
//! twice.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use tiaojie_events::GroupId;
use tiaojie_projections::models::case_status::{self, CaseFilter};
use tiaojie_projections::{on_db, StoreError};
use tokio::sync::watch;

use crate::app::App;
use crate::app_error::{AppError, AppResult};

/// `[digest]` in the file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DigestConfig {
    /// The mail relay: `smtp://host:port` (plain, for a relay on the office network),
    /// `smtp://user:password@host:587?tls=required` (STARTTLS) or `smtps://host:465`.
    pub smtp: String,
    /// The sender address.
    pub from: String,
    /// The hour (local time, 0 to 23) the digest goes out; 8 by default.
    #[serde(default = "eight")]
    pub hour: u8,
    /// Where the links in the mail point (this service's address as people reach it).
    #[serde(default)]
    pub public_url: Option<String>,
    /// Who gets which group's digest.
    pub to: Vec<Recipient>,
}

fn eight() -> u8 {
    8
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    /// The mediation group's id.
    pub group: String,
    pub email: String,
}

/// Checks the digest's settings; the message names what is wrong.
pub fn validate(c: &DigestConfig) -> Result<(), String> {
    if c.hour > 23 {
        return Err("digest.hour must be between 0 and 23".into());
    }
    AsyncSmtpTransport::<Tokio1Executor>::from_url(&c.smtp)
        .map_err(|e| format!("digest.smtp is not a usable address: {e}"))?;
    c.from
        .parse::<lettre::message::Mailbox>()
        .map_err(|_| format!("digest.from {:?} is not an e-mail address", c.from))?;
    for r in &c.to {
        GroupId::parse(&r.group)
            .map_err(|_| format!("digest.to: {:?} is not a group id", r.group))?;
        r.email
            .parse::<lettre::message::Mailbox>()
            .map_err(|_| format!("digest.to: {:?} is not an e-mail address", r.email))?;
    }
    Ok(())
}

/// One section of a group's digest: its title and (number, community, due) lines.
pub struct Section {
    pub title: &'static str,
    pub path: String,
    pub lines: Vec<(String, String, String)>,
}

async fn group_of(
    app: &App,
    id: &GroupId,
) -> AppResult<Option<tiaojie_events::group::MediationGroup>> {
    Ok(app
        .directory
        .groups()
        .await?
        .into_iter()
        .find(|(g, _)| g == id)
        .map(|(_, g)| g))
}

/// The digest of one group now.
pub async fn sections(app: &App, group: &GroupId) -> AppResult<Vec<Section>> {
    let communities: Vec<String> = match group_of(app, group).await? {
        Some(g) => g.communities.iter().map(|c| c.to_string()).collect(),
        None => return Err(AppError::not_found("group")),
    };
    let now = app.now();
    let wanted: [(&str, &str, CaseFilter); 5] = [
        (
            "逾期案件",
            "overdue=1",
            CaseFilter {
                overdue: Some(true),
                ..Default::default()
            },
        ),
        (
            "3天内到期",
            "due=soon",
            CaseFilter {
                due_before: Some(now.plus_days(crate::queries::DUE_SOON_DAYS).to_canonical()),
                ..Default::default()
            },
        ),
        (
            "督办待答复",
            "due=orders",
            CaseFilter {
                orders_open: true,
                ..Default::default()
            },
        ),
        (
            "协议履行到期",
            "due=performance",
            CaseFilter {
                due_kind: Some("performance".into()),
                ..Default::default()
            },
        ),
        (
            "待受理的新案件",
            "status=reported",
            CaseFilter {
                status: vec!["reported".into()],
                ..Default::default()
            },
        ),
    ];
    let mut out = vec![];
    for (title, query, mut f) in wanted {
        f.visible_communities = Some(communities.clone());
        f.limit = 50;
        let page = case_status::list(&app.db, &app.keys, &f, &now, None)
            .await
            .map_err(|e| match e {
                case_status::QueryError::Store(s) => AppError::store(s),
                case_status::QueryError::BadCursor => AppError::internal(),
            })?;
        let ids: Vec<&str> = page.items.iter().map(|v| v.row.case_id.as_str()).collect();
        let numbers = crate::numbering::texts(app, &ids).await?;
        out.push(Section {
            title,
            path: format!("/desk?{query}"),
            lines: page
                .items
                .iter()
                .map(|v| {
                    (
                        numbers
                            .get(&v.row.case_id)
                            .cloned()
                            .unwrap_or_else(|| v.row.case_id.clone()),
                        crate::stats::key_name(app, crate::stats::By::Community, &v.row.community),
                        v.row
                            .due_at
                            .as_deref()
                            .map(|d| crate::exports::local(app, d))
                            .unwrap_or_default(),
                    )
                })
                .collect(),
        });
    }
    Ok(out)
}

/// The mail's text.
pub fn text(group_name: &str, day: &str, sections: &[Section], base: &str) -> String {
    let mut t = format!("{group_name}：{day} 每日提醒\n\n");
    for s in sections {
        t.push_str(&format!(
            "{}（{}件）  {base}{}\n",
            s.title,
            s.lines.len(),
            s.path
        ));
        for (number, community, due) in &s.lines {
            if due.is_empty() {
                t.push_str(&format!("  · {number}  {community}\n"));
            } else {
                t.push_str(&format!("  · {number}  {community}  期限 {due}\n"));
            }
        }
        if s.lines.is_empty() {
            t.push_str("  无\n");
        }
        t.push('\n');
    }
    t.push_str("本邮件由调解系统自动发送，不含当事人信息；详情请登录系统查看。\n");
    t
}

/// Sends today's digests not yet sent, when the hour has come; answers how many went.
pub async fn send_due(app: &App) -> AppResult<usize> {
    let Some(c) = &app.settings.digest else {
        return Ok(0);
    };
    let local = app.now().as_offset().to_offset(app.offset());
    if local.hour() < c.hour {
        return Ok(0);
    }
    let day = local.date().to_string();
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&c.smtp)
        .map_err(|e| {
            tracing::error!(error = %e, "the digest's SMTP address is not usable");
            AppError::internal()
        })?
        .timeout(Some(Duration::from_secs(20)))
        .build();
    let base = c.public_url.clone().unwrap_or_default();
    let base = base.trim_end_matches('/');
    let mut sent = 0;
    for r in &c.to {
        let Ok(group) = GroupId::parse(&r.group) else {
            continue;
        };
        // Taken for the day first: another instance, or this one after a restart, skips it.
        let taken = on_db!(&app.db, p => {
            sqlx::query("INSERT INTO digest_sent (group_id, email, day, sent_at) VALUES ($1, $2, $3, $4) ON CONFLICT (group_id, email, day) DO NOTHING")
                .bind(group.to_string()).bind(&r.email).bind(&day).bind(app.now().to_canonical())
                .execute(p).await.map_err(StoreError::from)?
                .rows_affected()
        });
        if taken == 0 {
            continue;
        }
        let name = group_of(app, &group)
            .await?
            .map(|g| g.name)
            .unwrap_or_else(|| r.group.clone());
        let body = text(&name, &day, &sections(app, &group).await?, base);
        let mail = Message::builder()
            .from(c.from.parse().map_err(|_| AppError::internal())?)
            .to(r.email.parse().map_err(|_| AppError::internal())?)
            .subject(format!("{name} 每日提醒 {day}"))
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| {
                tracing::error!(error = %e, "a digest could not be written");
                AppError::internal()
            })?;
        match transport.send(mail).await {
            Ok(_) => sent += 1,
            Err(e) => {
                // Not sent: free the day again, so that the next round tries.
                tracing::warn!(error = %e, group = %group, "a digest was not sent; it is tried again");
                on_db!(&app.db, p => {
                    sqlx::query("DELETE FROM digest_sent WHERE group_id = $1 AND email = $2 AND day = $3")
                        .bind(group.to_string()).bind(&r.email).bind(&day)
                        .execute(p).await.map_err(StoreError::from)?;
                });
            }
        }
    }
    Ok(sent)
}

/// Every minute, the digests that are due. Ends when `stop` turns true.
pub async fn run(app: App, mut stop: watch::Receiver<bool>) {
    if app.settings.digest.is_none() {
        return;
    }
    loop {
        if let Err(e) = send_due(&app).await {
            tracing::warn!(code = %e.code, "the digest round failed; it goes on");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = stop.changed() => return,
        }
    }
}
