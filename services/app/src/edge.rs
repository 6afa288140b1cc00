//! What both edges (the JSON API and the web pages) need from a request before either
//! handles it: the client's address, and the limit on failed authentications from it.

use crate::app::App;
use crate::app_error::{AppError, AppResult};

/// The client's address, as the HTTP layer's context middleware found it (the peer's
/// address, or with `trust_forwarded_for` the last hop of `X-Forwarded-For`) and left in
/// the request's extensions for both edges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddr(pub String);

/// Refuses a client address that has failed to authenticate too often (429).
pub fn check_auth_failures(app: &App, addr: &ClientAddr) -> AppResult<()> {
    match app.limits.auth_failures.blocked(&addr.0) {
        None => Ok(()),
        Some(wait) => Err(too_many_failures(wait)),
    }
}

/// Counts a failed sign-in or bearer token from a client address, and logs it.
pub fn note_auth_failure(app: &App, addr: &ClientAddr, what: &str) -> Option<AppError> {
    let over = app.limits.auth_failures.hit(&addr.0);
    match over {
        Some(wait) => {
            tracing::warn!(client = %addr.0, what, retry_after_s = wait.as_secs(), "too many failed authentications from this address; refusing it for a while");
            Some(too_many_failures(wait))
        }
        None => {
            tracing::warn!(client = %addr.0, what, "authentication failed");
            None
        }
    }
}

fn too_many_failures(wait: std::time::Duration) -> AppError {
    AppError::too_many(
        "too_many_failures",
        "Too many failed sign-ins or tokens from this address; wait before trying again",
        "该地址登录失败次数过多，请稍后再试",
        wait,
    )
}
