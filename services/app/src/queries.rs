//! The query service: what every edge (the JSON API, the web pages) needs to read, with
//! the checks applied once. Read-your-writes (`await_consistency`), the audit export, who
//! may read the audit trail, and the text filter. It answers with [`AppError`], never with
//! HTTP.

use std::time::{Duration, Instant};

use futures::StreamExt;
use sqlx::Row;
use tiaojie_projections::models::audit::{self, AuditFilter};
use tiaojie_projections::on_db;

use crate::app::App;
use crate::app_error::{AppError, AppResult, ErrorKind};
use crate::auth::Actor;

/// A command's consistency token: `AggregateType:id:version`.
pub fn consistency_token(aggregate_type: &str, id: &str, version: u64) -> String {
    format!("{aggregate_type}:{id}:{version}")
}

/// Read-your-writes: waits (bounded) until every read model includes the write named by a
/// consistency token. Answers 503 `not_yet_consistent` when the wait runs out.
pub async fn await_consistency(app: &App, token: Option<&str>) -> AppResult<()> {
    let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(());
    };
    let bad = || {
        AppError::invalid(
            "invalid_consistency_token",
            "consistent_with must be a consistency token from a command's answer",
            "一致性令牌无效",
        )
    };
    let mut parts = token.splitn(3, ':');
    let (Some(atype), Some(id), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    if !matches!(atype, "Case" | "MediationGroup") || id.len() > 64 {
        return Err(bad());
    }
    let version: i64 = version.parse().map_err(|_| bad())?;
    // A write that does not exist yet cannot be waited for: answered at once, so that such
    // tokens cannot hold request slots for the whole wait.
    let current: Option<i64> = on_db!(&app.db, p => {
        sqlx::query_scalar("SELECT MAX(sequence) FROM events WHERE aggregate_type = $1 AND aggregate_id = $2")
            .bind(atype)
            .bind(id)
            .fetch_one(p)
            .await
            .map_err(tiaojie_projections::StoreError::from)?
    });
    if version < 1 || current.is_none_or(|c| version > c) {
        return Err(AppError::invalid(
            "unknown_write",
            "consistent_with names a write that has not happened",
            "一致性令牌指向的记录不存在",
        )
        .with_field("consistent_with", "past the record's current version"));
    }
    let deadline = Instant::now() + Duration::from_millis(app.settings.consistency_wait_ms);
    let appended = app.read.log_appended();
    loop {
        // Taken before the look, so that the log growing in between still wakes the wait.
        let grown = appended.notified();
        let position: Option<i64> = on_db!(&app.db, p => {
            sqlx::query("SELECT position FROM event_log WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3")
                .bind(atype)
                .bind(id)
                .bind(version)
                .fetch_optional(p)
                .await
                .map_err(tiaojie_projections::StoreError::from)?
                .map(|r| r.try_get::<i64, _>(0))
                .transpose()
                .map_err(tiaojie_projections::StoreError::from)?
        });
        let left = deadline.saturating_duration_since(Instant::now());
        if let Some(position) = position {
            if app.read.wait_for_position(position, left).await {
                return Ok(());
            }
            break;
        }
        if left.is_zero() {
            break;
        }
        app.stores.committed.notify_one();
        // The log is looked at again when it grows; the slow poll is only a safety net
        // for an announcement that never came (another instance's, over a lost listener).
        tokio::select! {
            _ = grown => {}
            _ = tokio::time::sleep(Duration::from_millis(100).min(left)) => {}
        }
    }
    Err(AppError::new(
        ErrorKind::Unavailable,
        "not_yet_consistent",
        "The read models do not include that write yet; retry shortly",
        "数据正在更新，请稍后重试",
    ))
}

/// Only supervision offices read the audit trail.
pub fn require_auditor(actor: &Actor) -> AppResult<()> {
    if actor.reads_audit() {
        Ok(())
    } else {
        Err(AppError::forbidden_zh((
            "only supervision offices read the audit trail",
            "只有督查室可以查看审计记录",
        )))
    }
}

fn bad_cursor(e: Option<tiaojie_projections::StoreError>) -> AppError {
    match e {
        Some(s) => AppError::store(s),
        None => AppError::invalid("invalid_cursor", "The cursor is not valid", "分页游标无效"),
    }
}

/// At most this many rows in one export.
pub const AUDIT_CSV_MAX_ROWS: usize = 100_000;

/// A text a spreadsheet would run as a formula gets a leading apostrophe.
fn neutralise(s: &str) -> std::borrow::Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}").into()
    } else {
        s.into()
    }
}

/// How a CSV export reads: its headers and names in Chinese (default) or English, and its
/// times at an offset from UTC (Beijing by default) or in UTC.
#[derive(Debug, Clone, Copy)]
pub struct CsvOptions {
    pub en: bool,
    pub offset: time::UtcOffset,
}

impl CsvOptions {
    /// From `?lang=zh|en` and `?tz=UTC|+08:00|-05:30`; `lang` falls back to the given one,
    /// `tz` to the configured offset.
    pub fn parse(
        app: &App,
        lang: Option<&str>,
        tz: Option<&str>,
        default_en: bool,
    ) -> AppResult<Self> {
        let en = match lang.map(str::trim).filter(|l| !l.is_empty()) {
            None => default_en,
            Some("zh") | Some("zh-CN") => false,
            Some("en") => true,
            Some(other) => {
                return Err(AppError::invalid(
                    "invalid_query",
                    "lang must be zh or en",
                    "语言应为 zh 或 en",
                )
                .with_field("lang", other))
            }
        };
        let offset = match tz.map(str::trim).filter(|t| !t.is_empty()) {
            None => app.offset(),
            Some(t) if t.eq_ignore_ascii_case("utc") || t == "Z" => time::UtcOffset::UTC,
            Some(t) => time::UtcOffset::parse(
                t,
                time::macros::format_description!("[offset_hour sign:mandatory]:[offset_minute]"),
            )
            .ok()
            // Offsets in use lie between −12:00 and +14:00.
            .filter(|o| (-12 * 3600..=14 * 3600).contains(&o.whole_seconds()))
            .ok_or_else(|| {
                AppError::invalid(
                    "invalid_query",
                    "tz must be UTC or an offset such as +08:00",
                    "时区应为 UTC 或 +08:00 这样的偏移",
                )
                .with_field("tz", t)
            })?,
        };
        Ok(CsvOptions { en, offset })
    }

    fn zone(&self) -> String {
        if self.offset.is_utc() {
            "UTC".into()
        } else {
            let (h, m, _) = self.offset.as_hms();
            format!(
                "UTC{}{:02}:{:02}",
                if h < 0 || m < 0 { '-' } else { '+' },
                h.abs(),
                m.abs()
            )
        }
    }

    fn time(&self, t: &str) -> String {
        tiaojie_events::Timestamp::parse(t)
            .map(|t| {
                let l = t.as_offset().to_offset(self.offset);
                format!(
                    "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                    l.year(),
                    l.month() as u8,
                    l.day(),
                    l.hour(),
                    l.minute(),
                    l.second()
                )
            })
            .unwrap_or_default()
    }

    /// The header line of the audit export.
    fn audit_header(&self) -> String {
        let z = self.zone();
        if self.en {
            format!("Position,Recorded ({z}),Happened ({z}),What happened (Chinese),Case number,Community,District,By,Role,Organisation,Event type,Case id,Group id,Request id,Trace id,Chain hash\r\n")
        } else {
            format!("序号,录入时间（{z}）,发生时间（{z}）,事项,案号,小区,片区,操作人,身份,单位,事件类型,案件编号,小组编号,请求编号,追踪编号,链哈希\r\n")
        }
    }
}

fn role_label(role: &str, en: bool) -> &str {
    match (role, en) {
        ("member", false) => "调解小组成员",
        ("leader", false) => "调解小组组长",
        ("supervisor", false) => "督查室",
        ("admin", false) => "管理员",
        ("dashboard", false) => "大屏",
        ("system", false) => "系统",
        ("member", true) => "group member",
        ("leader", true) => "group leader",
        ("supervisor", true) => "supervision office",
        ("admin", true) => "administrator",
        ("dashboard", true) => "wall screen",
        ("system", true) => "system",
        (other, _) => other,
    }
}

/// Rows of the audit export, every field quoted (the `csv` crate does the quoting): local
/// times, names rather than codes, and the codes after them for machines.
fn audit_rows(
    app: &App,
    entries: &[audit::AuditEntry],
    numbers: &std::collections::HashMap<String, String>,
    o: CsvOptions,
) -> std::io::Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Always)
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let community = |c: &str| {
        tiaojie_events::CommunityId::parse(c)
            .ok()
            .and_then(|id| app.reference.community(&id))
            .map(|c| {
                if o.en {
                    c.name_en.clone()
                } else {
                    c.name_zh.clone()
                }
            })
            .unwrap_or_else(|| c.to_string())
    };
    let district = |d: &str| {
        tiaojie_events::DistrictId::parse(d)
            .ok()
            .and_then(|id| app.reference.district(&id))
            .map(|d| {
                if o.en {
                    d.name_en.clone()
                } else {
                    d.name_zh.clone()
                }
            })
            .unwrap_or_else(|| d.to_string())
    };
    for e in entries {
        let fields = [
            e.position.to_string(),
            o.time(&e.recorded_at),
            e.business_at
                .as_deref()
                .map(|t| o.time(t))
                .unwrap_or_default(),
            e.summary_zh.clone(),
            e.case_id
                .as_deref()
                .and_then(|c| numbers.get(c))
                .cloned()
                .unwrap_or_default(),
            e.community.as_deref().map(community).unwrap_or_default(),
            e.district.as_deref().map(district).unwrap_or_default(),
            e.actor_name.clone(),
            role_label(&e.role, o.en).to_string(),
            e.organisation.clone(),
            e.event_type.clone(),
            e.case_id.clone().unwrap_or_default(),
            e.group_id.clone().unwrap_or_default(),
            e.request_id.clone(),
            e.trace_id.clone().unwrap_or_default(),
            e.chain_hash.clone(),
        ];
        w.write_record(fields.iter().map(|f| neutralise(f).into_owned()))?;
    }
    w.into_inner().map_err(|e| e.into_error())
}

/// The audit trail as CSV (UTF-8 with a BOM), oldest first, up to
/// [`AUDIT_CSV_MAX_ROWS`] rows, streamed a page at a time so that a large export is never
/// held in memory whole. The first page is read before anything is sent, so that a bad
/// filter or an unavailable store is still an error the edge can answer; a failure later
/// ends the stream (and is logged).
pub async fn audit_csv(
    app: &App,
    mut f: AuditFilter,
    o: CsvOptions,
) -> AppResult<impl futures::Stream<Item = std::io::Result<Vec<u8>>> + Send + 'static> {
    f.ascending = true;
    f.limit = 1000;
    let first = audit::list(&app.db, &f).await.map_err(bad_cursor)?;
    let mut head = format!("\u{feff}{}", o.audit_header()).into_bytes();
    let numbers = crate::numbering::Numberer::new(app).await?;
    let page_numbers = numbers.of_entries(&app.db, &first.items).await?;
    head.extend(audit_rows(app, &first.items, &page_numbers, o).map_err(|_| AppError::internal())?);
    let db = app.db.clone();
    let app = app.clone();
    let rows = first.items.len();
    let next = first.next_cursor;
    let rest = futures::stream::unfold((db, f, next, rows), move |(db, mut f, cursor, rows)| {
        let numbers = numbers.clone();
        let app = app.clone();
        async move {
            let cursor = cursor.filter(|_| rows < AUDIT_CSV_MAX_ROWS)?;
            f.cursor = Some(cursor);
            let page = match audit::list(&db, &f).await {
                Ok(page) => numbers
                    .of_entries(&db, &page.items)
                    .await
                    .map(|n| (page, n))
                    .map_err(|e| tracing::error!(error = ?e, "case numbers for the audit export")),
                Err(e) => {
                    tracing::error!(error = ?e, "the audit export stopped part way");
                    Err(())
                }
            };
            match page {
                Ok((page, page_numbers)) => {
                    let rows = rows + page.items.len();
                    let chunk = audit_rows(&app, &page.items, &page_numbers, o);
                    Some((chunk, (db, f, page.next_cursor, rows)))
                }
                Err(()) => Some((
                    Err(std::io::Error::other("the audit export stopped part way")),
                    (db, f, None, AUDIT_CSV_MAX_ROWS),
                )),
            }
        }
    });
    Ok(futures::stream::once(async move { Ok(head) }).chain(rest))
}

pub const MAX_TEXT_FILTER: usize = 100;

/// A free-text filter from the query; refused when longer than [`MAX_TEXT_FILTER`].
pub fn text_param(given: Option<&str>) -> AppResult<Option<String>> {
    match given.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) if t.chars().count() <= MAX_TEXT_FILTER && !t.chars().any(char::is_control) => {
            Ok(Some(t.to_string()))
        }
        Some(_) => Err(AppError::invalid(
            "invalid_query",
            format!(
                "text must be at most {MAX_TEXT_FILTER} characters, without control characters"
            ),
            format!("搜索内容不能超过{MAX_TEXT_FILTER}个字"),
        )
        .with_field("text", format!("at most {MAX_TEXT_FILTER} characters"))),
    }
}

/// Open cases past a deadline (the mediation's or a supervision order's), per community.
pub async fn overdue_by_community(app: &App) -> AppResult<Vec<(String, i64)>> {
    use sqlx::Row;
    let now = app.now().to_canonical();
    let sql = "SELECT community, COUNT(*) FROM case_status WHERE (due_at IS NOT NULL AND due_at < $1) OR (order_due_at IS NOT NULL AND order_due_at < $1) GROUP BY community";
    let rows: Vec<(String, i64)> = tiaojie_projections::on_db!(&app.db, p => {
        sqlx::query(sql)
            .bind(&now)
            .fetch_all(p)
            .await
            .map_err(tiaojie_projections::StoreError::from)?
            .into_iter()
            .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(tiaojie_projections::StoreError::from)?
    });
    Ok(rows)
}

/// The case's parties who are repeat obstructors, with their incidents.
pub async fn repeat_obstructors_of(
    app: &App,
    case_id: &str,
) -> AppResult<Vec<tiaojie_projections::models::case_status::RepeatObstructor>> {
    Ok(
        tiaojie_projections::models::heat::obstruction_counts_on_case(&app.db, case_id)
            .await?
            .into_iter()
            .filter(|(_, n)| *n >= app.settings.repeat_obstructor_incidents)
            .map(|(party_id, incidents)| {
                tiaojie_projections::models::case_status::RepeatObstructor {
                    party_id,
                    incidents,
                }
            })
            .collect(),
    )
}

/// The repeat obstructors (party ids), for a list of the cases that name them; within the
/// caller's communities for members and leaders.
pub async fn repeat_obstructor_ids(app: &App, actor: &Actor) -> AppResult<Vec<String>> {
    let scope: Option<Vec<String>> = crate::commands::scope(app, actor)
        .await?
        .map(|s| s.iter().map(|c| c.as_str().to_string()).collect());
    Ok(tiaojie_projections::models::heat::repeat_obstructors(
        &app.db,
        app.settings.repeat_obstructor_incidents,
        scope.as_deref(),
    )
    .await?
    .into_iter()
    .map(|(p, _)| p)
    .collect())
}

/// "Due soon": within this many days, and not yet late (the reminders and `due=soon`).
pub const DUE_SOON_DAYS: i64 = 3;

/// Narrows a case list as the reminders do: `due` is `soon` (due within
/// [`DUE_SOON_DAYS`], not yet late), `orders` (a supervision order awaits its answer) or a
/// clock's name (`performance`, …); `mine` keeps the cases the caller holds (none for a
/// caller who is not a group's member).
pub fn narrow_by_due(
    app: &App,
    actor: &Actor,
    due: Option<&str>,
    mine: bool,
    f: &mut tiaojie_projections::models::case_status::CaseFilter,
) -> AppResult<()> {
    use tiaojie_projections::models::case_status::DUE_KINDS;
    match due.map(str::trim).unwrap_or("") {
        "" => {}
        "soon" => {
            f.due_before = Some(app.now().plus_days(DUE_SOON_DAYS).to_canonical());
        }
        "orders" => f.orders_open = true,
        k if DUE_KINDS.contains(&k) => f.due_kind = Some(k.to_string()),
        other => {
            return Err(AppError::invalid(
                "invalid_query",
                format!(
                    "due must be soon, orders or one of {}; got {other:?}",
                    DUE_KINDS.join(", ")
                ),
                "期限筛选不正确",
            )
            .with_field("due", other))
        }
    }
    if mine {
        f.assignee = Some(
            actor
                .member
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_neutralised() {
        assert_eq!(neutralise("=1+1"), "'=1+1");
        assert_eq!(neutralise("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(neutralise("-2"), "'-2");
        assert_eq!(neutralise("调解"), "调解");
        let mut w = csv::WriterBuilder::new()
            .quote_style(csv::QuoteStyle::Always)
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new());
        w.write_record(
            [neutralise("a \"b\", c").as_ref(), "=x"].map(|s| neutralise(s).into_owned()),
        )
        .unwrap();
        let out = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(out, "\"a \"\"b\"\", c\",\"'=x\"\r\n");
    }
}
