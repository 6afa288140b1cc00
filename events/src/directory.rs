//! The port through which aggregates learn about mediation groups they do not own: which
//! group covers a community and who its members are. The service implements it over the
//! event store (always current); tests use [`InMemoryDirectory`].

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::RwLock;

use crate::group::OrgRole;
use crate::ids::{CommunityId, GroupId, MemberId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub id: GroupId,
    pub communities: Vec<CommunityId>,
    pub leader: MemberId,
    pub members: Vec<(MemberId, OrgRole)>,
}

impl GroupInfo {
    pub fn has_member(&self, m: &MemberId) -> bool {
        self.members.iter().any(|(id, _)| id == m)
    }
}

/// The directory could not be consulted (the store is unreachable). Not a rule violation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the group directory is unavailable: {0}")]
pub struct DirectoryError(pub String);

pub type DirectoryFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, DirectoryError>> + Send + 'a>>;

pub trait Directory: Send + Sync {
    /// The group that covers a community, if any.
    fn group_for_community<'a>(
        &'a self,
        community: &'a CommunityId,
    ) -> DirectoryFuture<'a, Option<GroupInfo>>;
    /// A group by id.
    fn group<'a>(&'a self, id: &'a GroupId) -> DirectoryFuture<'a, Option<GroupInfo>>;
}

/// A directory held in memory, for tests and for tools.
#[derive(Debug, Default)]
pub struct InMemoryDirectory {
    groups: RwLock<BTreeMap<GroupId, GroupInfo>>,
}

impl InMemoryDirectory {
    pub fn new(groups: impl IntoIterator<Item = GroupInfo>) -> Self {
        Self {
            groups: RwLock::new(groups.into_iter().map(|g| (g.id, g)).collect()),
        }
    }

    pub fn put(&self, g: GroupInfo) {
        self.groups
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(g.id, g);
    }
}

impl Directory for InMemoryDirectory {
    fn group_for_community<'a>(
        &'a self,
        community: &'a CommunityId,
    ) -> DirectoryFuture<'a, Option<GroupInfo>> {
        let found = self
            .groups
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .find(|g| g.communities.contains(community))
            .cloned();
        Box::pin(async move { Ok(found) })
    }

    fn group<'a>(&'a self, id: &'a GroupId) -> DirectoryFuture<'a, Option<GroupInfo>> {
        let found = self
            .groups
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned();
        Box::pin(async move { Ok(found) })
    }
}
