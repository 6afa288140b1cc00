//! Verifying the chain from the first entry to the head.

use super::*;
use sha2::Digest;

/// The result of checking the whole log against the stored events.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verification {
    pub ok: bool,
    pub checked: i64,
    pub head_position: i64,
    pub head_hash: String,
    /// The first position that does not verify, and why.
    pub first_bad_position: Option<i64>,
    pub problem: Option<String>,
    /// Events stored but not yet in the log (normal for a moment after a write).
    pub not_yet_sequenced: i64,
}

/// Recomputes every event hash from the stored events and checks both chains.
pub async fn verify(db: &Db) -> Result<Verification, StoreError> {
    const PAGE: i64 = 5000;
    let sql = match db {
        Db::Sqlite(_) => "SELECT l.position, l.aggregate_type, l.aggregate_id, l.sequence, l.event_type, l.event_hash, l.chain_hash,
                   e.event_type, e.event_version, e.payload, e.metadata, e.aggregate_id
              FROM event_log l
              LEFT JOIN events e ON e.aggregate_type = l.aggregate_type AND e.aggregate_id = l.aggregate_id AND e.sequence = l.sequence
             WHERE l.position > $1 AND l.position <= $3 ORDER BY l.position LIMIT $2",
        Db::Postgres(_) => "SELECT l.position, l.aggregate_type, l.aggregate_id, l.sequence, l.event_type, l.event_hash, l.chain_hash,
                   e.event_type, e.event_version, e.payload::text, e.metadata::text, e.aggregate_id
              FROM event_log l
              LEFT JOIN events e ON e.aggregate_type = l.aggregate_type AND e.aggregate_id = l.aggregate_id AND e.sequence = l.sequence
             WHERE l.position > $1 AND l.position <= $3 ORDER BY l.position LIMIT $2",
    };
    // The head as the sequencer recorded it, read first: the log is checked up to there,
    // so that events sequenced while the check runs do not look like a mismatch.
    let (state_pos, state_head) = log_head(db).await?;
    let mut after = 0i64;
    let mut expected_pos = 1i64;
    let mut chain: Option<Hash> = None;
    let mut last: HashMap<(String, String), (i64, Hash)> = HashMap::new();
    let mut checked = 0i64;
    let fail = |pos: i64, why: String, checked: i64, chain: Option<Hash>| Verification {
        ok: false,
        checked,
        head_position: pos - 1,
        head_hash: chain.map(hex::encode).unwrap_or_default(),
        first_bad_position: Some(pos),
        problem: Some(why),
        not_yet_sequenced: 0,
    };
    type CheckedRow = (
        i64,
        String,
        String,
        i64,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    loop {
        let rows: Vec<CheckedRow> = on_db!(db, p => {
            sqlx::query(sql)
                .bind(after)
                .bind(PAGE)
                .bind(state_pos)
                .fetch_all(p)
                .await?
                .into_iter()
                .map(|r| {
                    Ok((
                        r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?, r.try_get(5)?,
                        r.try_get(6)?, r.try_get(7)?, r.try_get(8)?, r.try_get(9)?, r.try_get(10)?, r.try_get(11)?,
                    ))
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        if rows.is_empty() {
            break;
        }
        for (pos, atype, aid, seq, ltype, ehash, chash, etype, ever, payload, meta, present) in rows
        {
            if pos != expected_pos {
                return Ok(fail(
                    expected_pos,
                    format!("position {expected_pos} is missing from the log (next is {pos})"),
                    checked,
                    chain,
                ));
            }
            if present.is_none() {
                return Ok(fail(pos, format!("the event {atype}/{aid}#{seq} logged at this position is missing from the store"), checked, chain));
            }
            let e = StoredEvent {
                aggregate_type: atype.clone(),
                aggregate_id: aid.clone(),
                sequence: seq,
                event_type: etype.unwrap_or_default(),
                event_version: ever.unwrap_or_default(),
                payload: payload.unwrap_or_default(),
                metadata: meta.unwrap_or_default(),
                db_recorded_at: String::new(),
            };
            if e.event_type != ltype {
                return Ok(fail(
                    pos,
                    "the event type differs between the log and the store".into(),
                    checked,
                    chain,
                ));
            }
            let key = (atype, aid);
            let prev = match last.get(&key) {
                Some((s, h)) if *s == seq - 1 => Some(*h),
                None if seq == 1 => None,
                _ => {
                    return Ok(fail(
                        pos,
                        format!(
                            "the event's predecessor (sequence {}) is not before it in the log",
                            seq - 1
                        ),
                        checked,
                        chain,
                    ))
                }
            };
            let canon = match canonical(&e) {
                Ok(c) => c,
                Err(err) => return Ok(fail(pos, err.to_string(), checked, chain)),
            };
            let eh = event_hash(prev.as_ref(), &canon);
            if hex::encode(eh) != ehash {
                return Ok(fail(
                    pos,
                    "the stored event does not match its hash (altered payload, metadata or order)"
                        .into(),
                    checked,
                    chain,
                ));
            }
            let ch = chain_hash(chain.as_ref(), &eh);
            if hex::encode(ch) != chash {
                return Ok(fail(
                    pos,
                    "the chain hash does not link to the previous position".into(),
                    checked,
                    chain,
                ));
            }
            if e.event_type == "AttachmentAdded" {
                if let Err(why) = check_attachment(db, &e.aggregate_id, &e.payload).await? {
                    return Ok(fail(pos, why, checked, chain));
                }
            }
            last.insert(key, (seq, eh));
            chain = Some(ch);
            checked += 1;
            expected_pos += 1;
            after = pos;
        }
    }
    let head_hash = chain.map(hex::encode).unwrap_or_default();
    if state_pos != checked || state_head != head_hash {
        return Ok(fail(
            checked + 1,
            format!("the sequencer's head ({state_pos}) does not match the log ({checked})"),
            checked,
            chain,
        ));
    }
    let (total, _) = events_pending(db).await?;
    Ok(Verification {
        ok: true,
        checked,
        head_position: checked,
        head_hash,
        first_bad_position: None,
        problem: None,
        not_yet_sequenced: (total - checked).max(0),
    })
}

/// The stored bytes of an attachment against the hash its event recorded (of the sealed
/// bytes, so that no key is needed). `Err` names what is wrong.
async fn check_attachment(
    db: &Db,
    case_id: &str,
    payload: &str,
) -> Result<Result<(), String>, StoreError> {
    let v: serde_json::Value = serde_json::from_str(payload).unwrap_or_default();
    let (Some(aid), Some(expected)) = (
        v.get("attachment_id").and_then(|x| x.as_str()),
        v.get("stored_sha256").and_then(|x| x.as_str()),
    ) else {
        return Ok(Err("the attachment event lacks its id or hash".into()));
    };
    let content: Option<Vec<u8>> = on_db!(db, p => {
        sqlx::query_scalar::<_, Vec<u8>>("SELECT content FROM attachments WHERE attachment_id = $1 AND case_id = $2")
            .bind(aid)
            .bind(case_id)
            .fetch_optional(p)
            .await?
    });
    Ok(match content {
        None => Err(format!("attachment {aid} is missing from the store")),
        Some(c) if hex::encode(sha2::Sha256::digest(&c)) != expected => Err(format!(
            "attachment {aid}: the stored bytes do not match the hash in the chain"
        )),
        Some(_) => Ok(()),
    })
}
