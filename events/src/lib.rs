//! The mediation domain of tiaojie (调解).
//!
//! Two aggregates, [`case::Case`] (矛盾纠纷案件) and [`group::MediationGroup`]
//! (矛盾调解小组), with their commands, events and domain errors, plus the reference data
//! of a renovation programme ([`reference::Reference`]). Nothing here does I/O: the
//! clock, the reference data and the group directory come in through [`CaseServices`] and
//! [`GroupServices`], so that rules are tested without a database.
#![forbid(unsafe_code)]

pub mod case;
pub mod directory;
pub mod group;
pub mod ids;
pub mod metadata;
pub mod reference;
pub mod text;
pub mod time;

use std::sync::Arc;

pub use directory::{Directory, DirectoryError, GroupInfo};
pub use ids::*;
pub use reference::Reference;
pub use time::{Clock, ManualClock, SystemClock, Timestamp};

/// Everything the Case aggregate may consult while deciding a command.
#[derive(Clone)]
pub struct CaseServices {
    pub clock: Arc<dyn Clock>,
    pub reference: Arc<Reference>,
    pub directory: Arc<dyn Directory>,
}

/// Everything the MediationGroup aggregate may consult while deciding a command.
pub type GroupServices = CaseServices;

/// Business times may run ahead of the server clock by this much (a mediator's phone or
/// PC clock is rarely exact); anything later is "in the future" and rejected.
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 300;

/// The version string written with every event of this release. Bump only together with
/// an upcaster for the previous version.
pub const EVENT_VERSION: &str = "1";
