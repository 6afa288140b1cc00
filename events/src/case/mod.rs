//! The case (矛盾纠纷案件): a resident objection (居民异议) or a construction-obstruction
//! incident (阻挡施工事件), from intake through mediation to closure, as immutable events.

mod aggregate;
mod commands;
mod errors;
mod events;
#[cfg(test)]
mod proptests;
mod steps;
#[cfg(test)]
pub(crate) mod tests;

pub use aggregate::{
    Case, CaseStatus, ConfirmationState, PerformanceState, RouteState, CASE_AGGREGATE_TYPE,
    CONFIRMATION_WINDOW_DAYS, MAX_WORK_STOPPED_MINUTES,
};
pub use commands::*;
pub use errors::{field_zh, text_problem_zh, CaseError, CaseErrorKind};
pub use events::*;
pub use steps::CaseStep;
