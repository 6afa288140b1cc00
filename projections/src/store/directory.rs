//! The group directory over the event store. It reads the MediationGroup events
//! themselves, loads only what changed since it last looked, and looks at most once per
//! [`FRESHNESS`]: groups change rarely and every command consults them. A group command
//! run by this process refreshes it at once ([`StoreDirectory::invalidate`]); a lookup
//! that finds nothing refreshes before answering, so a group just formed on another
//! instance is found too. Only a removal made on another instance can take up to
//! [`FRESHNESS`] to be seen here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cqrs_es::Aggregate;
use sqlx::Row;
use tiaojie_events::directory::{Directory, DirectoryError, DirectoryFuture, GroupInfo};
use tiaojie_events::group::{GroupEvent, MediationGroup, GROUP_AGGREGATE_TYPE};
use tiaojie_events::{CommunityId, GroupId};
use tokio::sync::Mutex;

use crate::db::Db;
use crate::error::StoreError;
use crate::on_db;

/// How old the directory's view may be before it looks again.
pub const FRESHNESS: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Cache {
    groups: HashMap<String, MediationGroup>,
    /// The formed groups in id order, shared: every command asks, few need a copy.
    formed: Arc<Vec<(GroupId, MediationGroup)>>,
    refreshed: Option<Instant>,
}

#[derive(Clone)]
pub struct StoreDirectory {
    db: Db,
    cache: Arc<Mutex<Cache>>,
}

impl StoreDirectory {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            cache: Arc::new(Mutex::new(Cache::default())),
        }
    }

    /// Forgets when it last looked, so that the next lookup reads the store.
    pub async fn invalidate(&self) {
        self.cache.lock().await.refreshed = None;
    }

    /// Every formed group, at most [`FRESHNESS`] old.
    pub async fn groups(&self) -> Result<Vec<(GroupId, MediationGroup)>, StoreError> {
        Ok(self.shared().await?.as_ref().clone())
    }

    /// Every formed group, current as of now.
    pub async fn groups_now(&self) -> Result<Vec<(GroupId, MediationGroup)>, StoreError> {
        Ok(self.shared_now().await?.as_ref().clone())
    }

    /// [`Self::groups`] without copying them.
    async fn shared(&self) -> Result<Arc<Vec<(GroupId, MediationGroup)>>, StoreError> {
        {
            let cache = self.cache.lock().await;
            if cache.refreshed.is_some_and(|t| t.elapsed() < FRESHNESS) {
                return Ok(cache.formed.clone());
            }
        }
        self.shared_now().await
    }

    /// [`Self::groups_now`] without copying them.
    async fn shared_now(&self) -> Result<Arc<Vec<(GroupId, MediationGroup)>>, StoreError> {
        let versions: Vec<(String, i64)> = on_db!(&self.db, p => {
            sqlx::query(
                "SELECT aggregate_id, MAX(sequence) AS v FROM events WHERE aggregate_type = $1 GROUP BY aggregate_id",
            )
            .bind(GROUP_AGGREGATE_TYPE)
            .fetch_all(p)
            .await?
            .into_iter()
            .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        let mut guard = self.cache.lock().await;
        for (id, version) in &versions {
            let have = guard.groups.get(id).map(|g| g.version as i64).unwrap_or(0);
            if have >= *version {
                continue;
            }
            let sql = match self.db {
                Db::Sqlite(_) => "SELECT sequence, payload FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3 ORDER BY sequence",
                Db::Postgres(_) => "SELECT sequence, payload::text FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3 ORDER BY sequence",
            };
            let rows: Vec<String> = on_db!(&self.db, p => {
                sqlx::query(sql)
                    .bind(GROUP_AGGREGATE_TYPE)
                    .bind(id)
                    .bind(have)
                    .fetch_all(p)
                    .await?
                    .into_iter()
                    .map(|r| r.try_get::<String, _>(1))
                    .collect::<Result<Vec<_>, sqlx::Error>>()?
            });
            let group = guard.groups.entry(id.clone()).or_default();
            for payload in rows {
                let event: GroupEvent = serde_json::from_str(&payload)
                    .map_err(|e| StoreError::Corrupt(format!("group {id}: {e}")))?;
                group.apply(event);
            }
        }
        guard.refreshed = Some(Instant::now());
        guard.formed = Arc::new(formed(&guard.groups));
        Ok(guard.formed.clone())
    }

    pub async fn group_state(&self, id: &GroupId) -> Result<Option<MediationGroup>, StoreError> {
        let find = |groups: Arc<Vec<(GroupId, MediationGroup)>>| {
            groups.iter().find(|(g, _)| g == id).map(|(_, g)| g.clone())
        };
        match find(self.shared().await?) {
            Some(g) => Ok(Some(g)),
            None => Ok(find(self.shared_now().await?)),
        }
    }
}

fn formed(groups: &HashMap<String, MediationGroup>) -> Vec<(GroupId, MediationGroup)> {
    let mut out: Vec<(GroupId, MediationGroup)> = groups
        .iter()
        .filter(|(_, g)| g.formed)
        .filter_map(|(id, g)| GroupId::parse(id).ok().map(|gid| (gid, g.clone())))
        .collect();
    out.sort_by_key(|(id, _)| *id);
    out
}

fn unavailable(e: StoreError) -> DirectoryError {
    DirectoryError(e.to_string())
}

impl Directory for StoreDirectory {
    fn group_for_community<'a>(
        &'a self,
        community: &'a CommunityId,
    ) -> DirectoryFuture<'a, Option<GroupInfo>> {
        Box::pin(async move {
            let find = |groups: Arc<Vec<(GroupId, MediationGroup)>>| {
                groups
                    .iter()
                    .find(|(_, g)| g.communities.contains(community))
                    .and_then(|(id, g)| g.info(*id))
            };
            match find(self.shared().await.map_err(unavailable)?) {
                Some(g) => Ok(Some(g)),
                None => Ok(find(self.shared_now().await.map_err(unavailable)?)),
            }
        })
    }

    fn group<'a>(&'a self, id: &'a GroupId) -> DirectoryFuture<'a, Option<GroupInfo>> {
        Box::pin(async move {
            let find = |groups: Arc<Vec<(GroupId, MediationGroup)>>| {
                groups
                    .iter()
                    .find(|(g, _)| g == id)
                    .and_then(|(id, g)| g.info(*id))
            };
            match find(self.shared().await.map_err(unavailable)?) {
                Some(g) => Ok(Some(g)),
                None => Ok(find(self.shared_now().await.map_err(unavailable)?)),
            }
        })
    }
}
