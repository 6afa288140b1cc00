//! Rebuilds into fresh tables, swapped in at the end.

use super::*;

/// What a rebuild did.
#[derive(Debug, Clone, Serialize)]
pub struct RebuildReport {
    pub name: String,
    pub events: i64,
    pub position: i64,
    pub seconds: f64,
    pub events_per_second: f64,
}

/// Builds a read model afresh from position 0 into new tables, then swaps them in. The
/// live tables keep serving reads (and the live projector keeps running) until the swap,
/// which happens in one transaction holding the live checkpoint.
pub async fn rebuild(
    db: &Db,
    projector: &dyn Projector,
    batch: i64,
) -> Result<RebuildReport, ProjectionError> {
    rebuild_many(db, &[projector], batch).await
}

/// Rebuilds several read models in one pass over the log. A reader task fetches and
/// decodes the next batch on its own connection while the current one is applied, so
/// reading and writing overlap. Indexes are built once, after the bulk load.
pub async fn rebuild_many(
    db: &Db,
    projectors: &[&dyn Projector],
    batch: i64,
) -> Result<RebuildReport, ProjectionError> {
    let started = std::time::Instant::now();
    let suffix = format!(
        "__rb{}",
        time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000
    );
    let checkpoints: Vec<String> = projectors
        .iter()
        .map(|p| format!("{}{suffix}", p.name()))
        .collect();
    for p in projectors {
        drop_leftovers(db, *p).await?;
    }
    {
        let mut tx = db.begin().await?;
        for p in projectors {
            for stmt in p
                .ddl(db.backend(), &suffix)
                .iter()
                .filter(|s| !s.starts_with("CREATE INDEX"))
            {
                on_tx!(&mut tx, c => { sqlx::query(stmt).execute(&mut *c).await.map_err(StoreError::from)?; });
            }
        }
        let now = now_text();
        for cp in &checkpoints {
            on_tx!(&mut tx, c => {
                sqlx::query("INSERT INTO projection_checkpoint (name, position, updated_at) VALUES ($1, 0, $2)")
                    .bind(cp)
                    .bind(&now)
                    .execute(&mut *c)
                    .await
                    .map_err(StoreError::from)?;
            });
        }
        tx.commit().await?;
    }
    let (head, _) = log::log_head(db).await?;
    // Reader: decoded batches up to the head as it stood when the rebuild began.
    let (send, mut recv) =
        tokio::sync::mpsc::channel::<Result<Vec<LoggedEvent>, ProjectionError>>(2);
    let reader = {
        let db = db.clone();
        tokio::spawn(async move {
            let upcasters = Upcasters::default();
            let mut after = 0i64;
            while after < head {
                let result = async {
                    let mut tx = db.begin_read().await?;
                    let events =
                        read_log(&mut tx, after, batch.min(head - after), &upcasters).await?;
                    tx.rollback().await?;
                    Ok::<_, ProjectionError>(events)
                }
                .await;
                let stop = match &result {
                    Ok(events) if events.is_empty() => true,
                    Ok(events) => {
                        after = events.last().map(|e| e.position).unwrap_or(head);
                        false
                    }
                    Err(_) => true,
                };
                if send.send(result).await.is_err() || stop {
                    return;
                }
            }
        })
    };
    let mut events = 0i64;
    while let Some(batch_events) = recv.recv().await {
        let batch_events = batch_events?;
        if batch_events.is_empty() {
            break;
        }
        refuse_unreadable(projectors, &batch_events)?;
        let last = batch_events.last().map(|e| e.position).unwrap_or(0);
        let mut tx = db.begin().await?;
        for p in projectors {
            p.apply(&mut tx, &suffix, &batch_events).await?;
        }
        for cp in &checkpoints {
            set_checkpoint(&mut tx, cp, last).await?;
        }
        tx.commit().await?;
        events += batch_events.len() as i64;
    }
    let _ = reader.await;
    {
        let mut tx = db.begin().await?;
        for p in projectors {
            for stmt in p
                .ddl(db.backend(), &suffix)
                .iter()
                .filter(|s| s.starts_with("CREATE INDEX"))
            {
                on_tx!(&mut tx, c => { sqlx::query(stmt).execute(&mut *c).await.map_err(StoreError::from)?; });
            }
        }
        tx.commit().await?;
    }
    // The swap: hold the live checkpoints, catch up the last few events, exchange tables.
    let upcasters = Upcasters::default();
    let mut tx = db.begin().await?;
    for p in projectors {
        if lock_checkpoint(&mut tx, p.name(), true).await?.is_none() {
            return Err(
                StoreError::Database(format!("checkpoint {} disappeared", p.name())).into(),
            );
        }
    }
    let mut position = lock_checkpoint(&mut tx, &checkpoints[0], true)
        .await?
        .unwrap_or(0);
    loop {
        let more = read_log(&mut tx, position, batch, &upcasters).await?;
        if more.is_empty() {
            break;
        }
        refuse_unreadable(projectors, &more)?;
        for p in projectors {
            p.apply(&mut tx, &suffix, &more).await?;
        }
        events += more.len() as i64;
        position = more.last().map(|e| e.position).unwrap_or(position);
    }
    for p in projectors {
        let mut stmts: Vec<String> = Vec::new();
        for base in p.tables() {
            stmts.push(format!("DROP TABLE {base}"));
            stmts.push(format!("ALTER TABLE {base}{suffix} RENAME TO {base}"));
        }
        // The new tables' indexes take the live names, so that the next `ensure` finds them
        // instead of building a second set.
        let fresh = p.ddl(db.backend(), &suffix);
        let live = p.ddl(db.backend(), "");
        for (f, l) in fresh.iter().zip(live.iter()) {
            let (Some(from), Some(to)) = (index_name(f), index_name(l)) else {
                continue;
            };
            match db.backend() {
                Backend::Postgres => stmts.push(format!("ALTER INDEX {from} RENAME TO {to}")),
                Backend::Sqlite => {
                    stmts.push(format!("DROP INDEX {from}"));
                    stmts.push(l.clone());
                }
            }
        }
        for stmt in stmts {
            on_tx!(&mut tx, c => { sqlx::query(&stmt).execute(&mut *c).await.map_err(StoreError::from)?; });
        }
        set_checkpoint(&mut tx, p.name(), position).await?;
    }
    for cp in &checkpoints {
        on_tx!(&mut tx, c => {
            sqlx::query("DELETE FROM projection_checkpoint WHERE name = $1").bind(cp).execute(&mut *c).await.map_err(StoreError::from)?;
        });
    }
    tx.commit().await?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(RebuildReport {
        name: projectors
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join("+"),
        events,
        position,
        seconds,
        events_per_second: if seconds > 0.0 {
            events as f64 / seconds
        } else {
            0.0
        },
    })
}

/// A rebuild cannot go past an event a read model cannot read: it stops there and says
/// where and why (the live tables keep serving).
pub(super) fn refuse_unreadable(
    projectors: &[&dyn Projector],
    events: &[LoggedEvent],
) -> Result<(), ProjectionError> {
    match first_unreadable(events) {
        Some((_, e)) if projectors.iter().any(|p| !p.reads_unreadable()) => Err(e),
        _ => Ok(()),
    }
}

/// Removes the tables and checkpoint of a rebuild that was interrupted.
pub(super) async fn drop_leftovers(db: &Db, projector: &dyn Projector) -> Result<(), StoreError> {
    let tables: Vec<String> = on_db!(db, p => {
        let sql = match db.backend() {
            Backend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE $1",
            Backend::Postgres => "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE $1",
        };
        let mut all = Vec::new();
        for base in projector.tables() {
            let pattern = format!("{base}\\_\\_rb%");
            let pattern = if db.backend() == Backend::Sqlite { format!("{base}__rb%") } else { pattern };
            let found: Vec<String> = sqlx::query_scalar(sql).bind(pattern).fetch_all(p).await?;
            all.extend(found);
        }
        all
    });
    let mut tx = db.begin().await?;
    for t in tables {
        on_tx!(&mut tx, c => { sqlx::query(&format!("DROP TABLE IF EXISTS {t}")).execute(&mut *c).await?; });
    }
    let pattern = format!("{}__rb%", projector.name());
    on_tx!(&mut tx, c => {
        sqlx::query("DELETE FROM projection_checkpoint WHERE name LIKE $1").bind(pattern).execute(&mut *c).await?;
    });
    tx.commit().await
}

/// The read models whose stored tables are older than this release's, with the version
/// stored.
pub async fn outdated(
    db: &Db,
    projectors: &[Arc<dyn Projector>],
) -> Result<Vec<(Arc<dyn Projector>, i64)>, StoreError> {
    let mut out = Vec::new();
    for p in projectors {
        let stored: Option<i64> = on_db!(db, c => {
            sqlx::query_scalar("SELECT schema_version FROM projection_checkpoint WHERE name = $1")
                .bind(p.name())
                .fetch_optional(c)
                .await?
        });
        if let Some(v) = stored.filter(|v| *v < p.schema_version()) {
            out.push((p.clone(), v));
        }
    }
    Ok(out)
}

/// Rebuilds every read model whose stored tables are older than this release's, and
/// records the new versions. On PostgreSQL, one instance does it while others starting at
/// the same time wait (a session advisory lock), then find nothing left to do.
pub async fn upgrade(
    db: &Db,
    projectors: &[Arc<dyn Projector>],
) -> Result<Vec<RebuildReport>, ProjectionError> {
    const LOCK: i64 = 0x7469_616f_6a69_6501;
    if outdated(db, projectors).await?.is_empty() {
        return Ok(vec![]);
    }
    let guard = match db {
        Db::Postgres(pool) => {
            let mut conn = pool.acquire().await.map_err(StoreError::from)?;
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(LOCK)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::from)?;
            Some(conn)
        }
        Db::Sqlite(_) => None,
    };
    let result = async {
        let mut reports = Vec::new();
        for (p, from) in outdated(db, projectors).await? {
            tracing::info!(
                projector = p.name(),
                from,
                to = p.schema_version(),
                "rebuilding a read model whose tables changed in this release"
            );
            let report = rebuild(db, p.as_ref(), 2000).await?;
            on_db!(db, c => {
                sqlx::query("UPDATE projection_checkpoint SET schema_version = $2 WHERE name = $1")
                    .bind(p.name())
                    .bind(p.schema_version())
                    .execute(c)
                    .await
                    .map_err(StoreError::from)?;
            });
            reports.push(report);
        }
        Ok::<_, ProjectionError>(reports)
    }
    .await;
    if let Some(mut conn) = guard {
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(LOCK)
            .execute(&mut *conn)
            .await;
    }
    result
}

/// The name an index statement of a DDL creates.
fn index_name(stmt: &str) -> Option<&str> {
    let mut words = stmt.split_whitespace();
    while let Some(w) = words.next() {
        if w == "INDEX" {
            return words.next();
        }
    }
    None
}
