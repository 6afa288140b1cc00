//! Tools for developers and demonstrations, outside the production code path: the demo
//! loader (`tiaojie demo`, `serve --demo`) and the benchmarks (`tiaojie bench`).
#![forbid(unsafe_code)]

pub mod bench;
pub mod bench_load;
pub mod bench_parties;
pub mod demo;

use tiaojie_app::{accounts, app, app_error, auth, commands, config, files, parties, party_checks};
