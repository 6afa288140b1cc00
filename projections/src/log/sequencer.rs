//! The sequencer: settled events copied in commit order into the log, with their positions
//! and the hash chain.

use super::*;

pub(super) const SQLITE_PENDING: &str = "SELECT o.id, e.aggregate_type, e.aggregate_id, e.sequence, e.event_type, e.event_version,
        e.payload, e.metadata, e.recorded_at
   FROM event_order o
   JOIN events e ON e.aggregate_type = o.aggregate_type AND e.aggregate_id = o.aggregate_id AND e.sequence = o.sequence
  WHERE o.id > $1
  ORDER BY o.id
  LIMIT $2";

// The cursor test is written as a range on tx_id plus a filter: PostgreSQL does not turn a
// row comparison against cast parameters into an index bound, and a generic plan would
// scan the whole index (measured: 106 ms at 1M events, against 0.1 ms).
pub(super) const PG_PENDING: &str = "SELECT e.tx_id::text::bigint AS tx, e.id, e.aggregate_type, e.aggregate_id, e.sequence, e.event_type,
        e.event_version, e.payload::text, e.metadata::text,
        to_char(e.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')
   FROM events e
  WHERE e.tx_id >= $1::bigint::text::xid8
    AND (e.tx_id > $1::bigint::text::xid8 OR e.id > $2)
    AND e.tx_id < pg_snapshot_xmin(pg_current_snapshot())
  ORDER BY e.tx_id, e.id
  LIMIT $3";

/// Copies up to `limit` settled events into the log, in one transaction.
pub async fn sequence_batch(db: &Db, limit: i64) -> Result<SequenceOutcome, StoreError> {
    let mut tx = db.begin().await?;
    match sequence_in(&mut tx, limit).await? {
        None => {
            tx.rollback().await?;
            Ok(SequenceOutcome::Busy)
        }
        Some((0, head)) => {
            tx.rollback().await?;
            Ok(SequenceOutcome::Appended { count: 0, head })
        }
        Some((count, head)) => {
            tx.commit().await?;
            Ok(SequenceOutcome::Appended { count, head })
        }
    }
}

/// The sequencer's work inside a transaction the caller commits: `None` when another
/// instance holds the sequencer lock, else how many events were appended and the head.
pub async fn sequence_in(tx: &mut Tx, limit: i64) -> Result<Option<(usize, i64)>, StoreError> {
    sequence_handing(tx, limit, None).await
}

/// [`sequence_in`], handing the entries it appends to `handed` as well, in log order, as
/// they would be read back: the read side projects them without reading the log again.
pub async fn sequence_handing(
    tx: &mut Tx,
    limit: i64,
    mut handed: Option<&mut Vec<LogRow>>,
) -> Result<Option<(usize, i64)>, StoreError> {
    // Cursor (two parts on PostgreSQL), position, chain head.
    let (cursor, position, head): ((i64, i64), i64, String) = match tx {
        Tx::Sqlite(t) => {
            let r = sqlx::query(
                "SELECT last_order, position, chain_head FROM sequencer_state WHERE id = 1",
            )
            .fetch_one(&mut **t)
            .await?;
            ((r.try_get(0)?, 0), r.try_get(1)?, r.try_get(2)?)
        }
        Tx::Postgres(t) => {
            // The lock and the state in one round trip: no row when another instance holds
            // the sequencer lock (sequencer_state has its one row, id 1).
            let r = sqlx::query("SELECT last_tx, last_id, position, chain_head FROM sequencer_state WHERE id = 1 AND pg_try_advisory_xact_lock($1) FOR UPDATE")
                .bind(SEQUENCER_LOCK)
                .fetch_optional(&mut **t)
                .await?;
            let Some(r) = r else {
                return Ok(None);
            };
            ((r.try_get(0)?, r.try_get(1)?), r.try_get(2)?, r.try_get(3)?)
        }
    };

    let mut pending: Vec<((i64, i64), StoredEvent)> = Vec::new();
    match &mut *tx {
        Tx::Sqlite(t) => {
            for r in sqlx::query(SQLITE_PENDING)
                .bind(cursor.0)
                .bind(limit)
                .fetch_all(&mut **t)
                .await?
            {
                pending.push((
                    (r.try_get(0)?, 0),
                    StoredEvent {
                        aggregate_type: r.try_get(1)?,
                        aggregate_id: r.try_get(2)?,
                        sequence: r.try_get(3)?,
                        event_type: r.try_get(4)?,
                        event_version: r.try_get(5)?,
                        payload: r.try_get(6)?,
                        metadata: r.try_get(7)?,
                        db_recorded_at: r.try_get(8)?,
                    },
                ));
            }
        }
        Tx::Postgres(t) => {
            for r in sqlx::query(PG_PENDING)
                .bind(cursor.0)
                .bind(cursor.1)
                .bind(limit)
                .fetch_all(&mut **t)
                .await?
            {
                pending.push((
                    (r.try_get(0)?, r.try_get(1)?),
                    StoredEvent {
                        aggregate_type: r.try_get(2)?,
                        aggregate_id: r.try_get(3)?,
                        sequence: r.try_get(4)?,
                        event_type: r.try_get(5)?,
                        event_version: r.try_get(6)?,
                        payload: r.try_get(7)?,
                        metadata: r.try_get(8)?,
                        db_recorded_at: r.try_get(9)?,
                    },
                ));
            }
        }
    }
    if pending.is_empty() {
        return Ok(Some((0, position)));
    }

    // The previous event hash of every aggregate whose first event here is not its first.
    let mut last: HashMap<(String, String), (i64, Hash)> = HashMap::new();
    let mut seen: std::collections::HashSet<(&str, &str)> = std::collections::HashSet::new();
    let mut wanted: Vec<(String, String, i64)> = Vec::new();
    for (_, e) in &pending {
        if seen.insert((&e.aggregate_type, &e.aggregate_id)) && e.sequence > 1 {
            wanted.push((
                e.aggregate_type.clone(),
                e.aggregate_id.clone(),
                e.sequence - 1,
            ));
        }
    }
    for chunk in wanted.chunks(300) {
        let rows_sql = (0..chunk.len())
            .map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT aggregate_type, aggregate_id, sequence, event_hash FROM event_log
              WHERE (aggregate_type, aggregate_id, sequence) IN (VALUES {rows_sql})"
        );
        let found: Vec<(String, String, i64, String)> = on_tx!(&mut *tx, c => {
            let mut q = sqlx::query(&sql).persistent(false);
            for (t, id, s) in chunk {
                q = q.bind(t.clone()).bind(id.clone()).bind(*s);
            }
            q.fetch_all(&mut *c)
                .await?
                .into_iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        for (t, id, s, h) in found {
            let h = parse_hash(&h)
                .ok_or_else(|| StoreError::Corrupt(format!("bad hash in log for {t}/{id}#{s}")))?;
            last.insert((t, id), (s, h));
        }
    }

    let mut chain = if head.is_empty() {
        None
    } else {
        Some(parse_hash(&head).ok_or_else(|| StoreError::Corrupt("bad chain head".into()))?)
    };
    let mut pos = position;
    let mut rows = Vec::with_capacity(pending.len());
    let mut new_cursor = cursor;
    for (c, e) in pending {
        let key = (e.aggregate_type.clone(), e.aggregate_id.clone());
        let prev = match last.get(&key) {
            Some((s, h)) if *s == e.sequence - 1 => Some(*h),
            _ if e.sequence == 1 => None,
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "event {}/{}#{} has no predecessor in the log",
                    e.aggregate_type, e.aggregate_id, e.sequence
                )))
            }
        };
        let eh = event_hash(prev.as_ref(), &canonical(&e)?);
        let ch = chain_hash(chain.as_ref(), &eh);
        pos += 1;
        let at = recorded_at(&e);
        let chain_hex = hex::encode(ch);
        rows.push(vec![
            Val::from(pos),
            Val::from(e.aggregate_type.clone()),
            Val::from(e.aggregate_id.clone()),
            Val::from(e.sequence),
            Val::from(e.event_type.clone()),
            Val::from(at.clone()),
            Val::from(hex::encode(eh)),
            Val::from(chain_hex.clone()),
        ]);
        last.insert(key, (e.sequence, eh));
        chain = Some(ch);
        new_cursor = c;
        if let Some(out) = handed.as_deref_mut() {
            out.push((
                pos,
                e.aggregate_type,
                e.aggregate_id,
                e.sequence,
                e.event_type,
                at,
                chain_hex,
                e.event_version,
                e.payload,
                e.metadata,
            ));
        }
    }
    let count = rows.len();
    upsert(
        tx,
        "event_log",
        &[
            "position",
            "aggregate_type",
            "aggregate_id",
            "sequence",
            "event_type",
            "recorded_at",
            "event_hash",
            "chain_hash",
        ],
        &[],
        rows,
    )
    .await?;
    let head_hex = hex::encode(chain.expect("at least one event"));
    let now =
        tiaojie_events::Timestamp::from_offset(time::OffsetDateTime::now_utc()).to_canonical();
    match tx {
        Tx::Sqlite(t) => {
            sqlx::query("UPDATE sequencer_state SET last_order = $1, position = $2, chain_head = $3, updated_at = $4 WHERE id = 1")
                .bind(new_cursor.0)
                .bind(pos)
                .bind(&head_hex)
                .bind(&now)
                .execute(&mut **t)
                .await?;
        }
        Tx::Postgres(t) => {
            // The new state, and the wake-up of every instance's readers (delivered at
            // commit), in one round trip.
            sqlx::query("WITH moved AS (UPDATE sequencer_state SET last_tx = $1, last_id = $2, position = $3, chain_head = $4, updated_at = $5 WHERE id = 1 RETURNING position) SELECT pg_notify('tiaojie_log', position::text) FROM moved")
                .bind(new_cursor.0)
                .bind(new_cursor.1)
                .bind(pos)
                .bind(&head_hex)
                .bind(&now)
                .execute(&mut **t)
                .await?;
        }
    }
    Ok(Some((count, pos)))
}

/// Runs batches until nothing is pending (or another instance holds the lock).
pub async fn sequence_all(db: &Db, batch: i64) -> Result<i64, StoreError> {
    loop {
        match sequence_batch(db, batch).await? {
            SequenceOutcome::Appended { count, head } if (count as i64) < batch => return Ok(head),
            SequenceOutcome::Appended { .. } => continue,
            SequenceOutcome::Busy => return log_head(db).await.map(|(p, _)| p),
        }
    }
}

/// The log's last position and chain hash.
pub async fn log_head(db: &Db) -> Result<(i64, String), StoreError> {
    on_db!(db, p => {
        let r = sqlx::query("SELECT position, chain_head FROM sequencer_state WHERE id = 1").fetch_one(p).await?;
        Ok((r.try_get(0)?, r.try_get(1)?))
    })
}

/// How many events exist, and how many of them are not in the log yet.
pub async fn events_pending(db: &Db) -> Result<(i64, i64), StoreError> {
    on_db!(db, p => {
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events").fetch_one(p).await?;
        let logged: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM event_log").fetch_one(p).await?;
        Ok((total, total - logged))
    })
}
