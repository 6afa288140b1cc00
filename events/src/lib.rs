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
    pub bounds: TimeBounds,
}

/// The range business times must fall in. Times are typed by people (and by paper records
/// entered late), so a plausible window is enforced: nothing before the programme could
/// have started, nothing that has happened lies in the future, and nothing is planned
/// absurdly far ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBounds {
    /// No business time may lie before this.
    pub earliest: Timestamp,
    /// How far a "happened" time may run ahead of the server clock.
    pub max_skew_seconds: i64,
    /// How far ahead a planned time (a session, a deadline, a due date) may lie.
    pub horizon_days: i64,
}

/// The default earliest business time when neither the configuration nor the reference
/// data gives one.
pub const DEFAULT_EARLIEST: &str = "2000-01-01T00:00:00Z";

impl Default for TimeBounds {
    fn default() -> Self {
        Self {
            earliest: Timestamp::parse(DEFAULT_EARLIEST).unwrap_or(Timestamp::MIN),
            max_skew_seconds: MAX_CLOCK_SKEW_SECONDS,
            horizon_days: MAX_HORIZON_DAYS,
        }
    }
}

/// Planned times may lie up to five years ahead.
pub const MAX_HORIZON_DAYS: i64 = 5 * 366;

/// Where a business time falls outside its [`TimeBounds`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutOfBounds {
    TooEarly,
    InFuture,
    TooFarAhead,
}

impl TimeBounds {
    /// A time that has happened: between `earliest` and now plus the skew.
    pub fn happened(&self, t: Timestamp, now: Timestamp) -> Result<(), OutOfBounds> {
        if t < self.earliest {
            Err(OutOfBounds::TooEarly)
        } else if now.seconds_until(&t) > self.max_skew_seconds {
            Err(OutOfBounds::InFuture)
        } else {
            Ok(())
        }
    }

    /// A planned time: between `earliest` and now plus the horizon.
    pub fn planned(&self, t: Timestamp, now: Timestamp) -> Result<(), OutOfBounds> {
        if t < self.earliest {
            Err(OutOfBounds::TooEarly)
        } else if t > now.plus_days(self.horizon_days) {
            Err(OutOfBounds::TooFarAhead)
        } else {
            Ok(())
        }
    }
}

/// Everything the MediationGroup aggregate may consult while deciding a command.
pub type GroupServices = CaseServices;

/// Business times may run ahead of the server clock by this much (a mediator's phone or
/// PC clock is rarely exact); anything later is "in the future" and rejected.
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 300;

/// The version string written with every event of this release. Bump only together with
/// an upcaster for the previous version.
pub const EVENT_VERSION: &str = "1";
