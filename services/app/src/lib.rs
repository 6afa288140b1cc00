//! The application layer of tiaojie: the App and its configuration, the command and query
//! services, the step table, the permission table, the party registry, sessions and
//! idempotency records, and the application's error. It knows no HTTP: the JSON API
//! (`tiaojie-http`) and the web pages (`tiaojie-web`) are its two edges.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod app;
pub mod app_error;
pub mod attachments;
pub mod auth;
pub mod commands;
pub mod config;
pub mod digest;
pub mod documents;
pub mod edge;
pub mod exports;
pub mod files;
pub mod group_steps;
pub mod health;
pub mod idempotency;
pub mod limits;
pub mod masking;
pub mod metrics;
pub mod numbering;
pub mod parties;
pub mod party_checks;
pub mod queries;
pub mod sessions;
pub mod stats;
pub mod steps;
pub mod webhooks;
