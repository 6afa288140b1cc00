//! Reading the log: entries after a position, decoded and upcast.

use super::*;

/// Reads log entries after `after`, with their events decoded (upcast first). An event
/// this release cannot read comes back as [`Body::Unreadable`], never as an error: which
/// read models can go on past it is theirs to say ([`Projector::reads_unreadable`]).
pub async fn read_log(
    tx: &mut Tx,
    after: i64,
    limit: i64,
    upcasters: &Upcasters,
) -> Result<Vec<LoggedEvent>, ProjectionError> {
    let sql = match tx.backend() {
        Backend::Sqlite => "SELECT l.position, l.aggregate_type, l.aggregate_id, l.sequence, l.event_type, l.recorded_at, l.chain_hash,
                e.event_version, e.payload, e.metadata
           FROM event_log l JOIN events e
             ON e.aggregate_type = l.aggregate_type AND e.aggregate_id = l.aggregate_id AND e.sequence = l.sequence
          WHERE l.position > $1 ORDER BY l.position LIMIT $2",
        // The page of the log first, then each event by its key. Written as a join, the
        // generic plan of the prepared statement (which cannot see the LIMIT) hashed the
        // whole events table on every batch: two full scans per projector batch, about
        // 480 rows read per command at a few thousand events and growing with history.
        // The LIMIT 1 keeps the lateral lookup from being flattened back into that join.
        Backend::Postgres => "SELECT l.position, l.aggregate_type, l.aggregate_id, l.sequence, l.event_type, l.recorded_at, l.chain_hash,
                e.event_version, e.payload::text, e.metadata::text
           FROM (SELECT position, aggregate_type, aggregate_id, sequence, event_type, recorded_at, chain_hash
                   FROM event_log WHERE position > $1 ORDER BY position LIMIT $2) l
          CROSS JOIN LATERAL (
                SELECT event_version, payload, metadata FROM events e
                 WHERE e.aggregate_type = l.aggregate_type AND e.aggregate_id = l.aggregate_id AND e.sequence = l.sequence
                 LIMIT 1) e
          ORDER BY l.position",
    };
    let rows: Vec<RawLogRow> = on_tx!(tx, c => {
        sqlx::query(sql)
            .bind(after)
            .bind(limit)
            .fetch_all(&mut *c)
            .await
            .map_err(StoreError::from)?
            .into_iter()
            .map(|r| {
                Ok((
                    r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?,
                    r.try_get(5)?, r.try_get(6)?, r.try_get(7)?, r.try_get(8)?, r.try_get(9)?,
                ))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(StoreError::from)?
    });
    Ok(rows.into_iter().map(|r| decode(r, upcasters)).collect())
}

pub(super) type RawLogRow = crate::log::LogRow;

pub(super) fn decode(row: RawLogRow, upcasters: &Upcasters) -> LoggedEvent {
    let (
        position,
        aggregate_type,
        aggregate_id,
        sequence,
        event_type,
        recorded_at,
        chain_hash,
        version,
        payload,
        metadata,
    ) = row;
    let (meta_map, meta_error) = match codec::decode_metadata(&metadata) {
        Ok(m) => (m, None),
        Err(e) => (HashMap::new(), Some(e)),
    };
    let body = match codec::decode_body(
        &aggregate_type,
        &aggregate_id,
        sequence,
        &event_type,
        &version,
        &payload,
        upcasters,
    ) {
        Ok(body) => match meta_error {
            Some(e) if !matches!(body, Body::Other) => Body::Unreadable(e),
            _ => body,
        },
        Err(e) => Body::Unreadable(e),
    };
    LoggedEvent {
        position,
        aggregate_type,
        aggregate_id,
        sequence,
        event_type,
        recorded_at,
        chain_hash,
        metadata: EventMetadata::from_map(&meta_map),
        body,
    }
}

/// The first event of a batch that a read model cannot apply because this release cannot
/// read it, as the error that stops that read model there.
pub fn first_unreadable(events: &[LoggedEvent]) -> Option<(usize, ProjectionError)> {
    events.iter().enumerate().find_map(|(i, e)| match &e.body {
        Body::Unreadable(why) => Some((
            i,
            ProjectionError::Apply {
                position: e.position,
                message: format!(
                    "this release cannot read the {} event {} #{}: {why}",
                    e.event_type, e.aggregate_id, e.sequence
                ),
            },
        )),
        _ => None,
    })
}
