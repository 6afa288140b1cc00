//! The mediation group (矛盾调解小组): formed by a street office for one or more
//! communities, led by the office's deputy leader in charge (分管领导), with members from the
//! judicial office, police, residents' committee, property company and enterprises.

mod aggregate;
mod commands;
mod errors;
mod events;
#[cfg(test)]
mod tests;

pub use aggregate::{MediationGroup, GROUP_AGGREGATE_TYPE};
pub use commands::*;
pub use errors::{GroupError, GroupErrorKind};
pub use events::*;
