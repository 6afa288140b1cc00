//! Extractors that answer every rejection with a problem document.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use crate::app::App;
use crate::auth::Actor;
use crate::commands::RequestMeta;
use crate::error::ApiError;

pub use crate::edge::{check_auth_failures, note_auth_failure, ClientAddr};

/// The client's address that the context middleware left in the request.
pub fn client_of(parts: &Parts) -> ClientAddr {
    parts
        .extensions
        .get::<ClientAddr>()
        .cloned()
        .unwrap_or_else(|| ClientAddr("unknown".into()))
}

/// The caller, from `Authorization: Bearer …`.
pub struct Auth(pub Actor);

impl FromRequestParts<App> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        if let Some(actor) = parts.extensions.get::<Actor>() {
            return Ok(Auth(actor.clone()));
        }
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(ApiError::unauthorized)?;
        let addr = client_of(parts);
        check_auth_failures(app, &addr)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 200);
        let actor = match token {
            Some(t) => app.tokens.actor(t).await?,
            None => None,
        };
        let Some(actor) = actor else {
            return Err(note_auth_failure(app, &addr, "bearer token")
                .map(ApiError::from)
                .unwrap_or_else(ApiError::unauthorized));
        };
        parts.extensions.insert(actor.clone());
        Ok(Auth(actor))
    }
}

/// An administrator (or the system), checked before the body is read.
pub struct Administrator(pub Actor);

impl FromRequestParts<App> for Administrator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let Auth(actor) = Auth::from_request_parts(parts, app).await?;
        crate::auth::may_manage_groups(actor.role).map_err(ApiError::forbidden_zh)?;
        Ok(Administrator(actor))
    }
}

/// A member or leader of a mediation group (or the system), checked before the body is
/// read: the roles that register and correct parties.
pub struct GroupMember(pub Actor);

impl FromRequestParts<App> for GroupMember {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let Auth(actor) = Auth::from_request_parts(parts, app).await?;
        tiaojie_app::parties::may_write(&actor)?;
        Ok(GroupMember(actor))
    }
}

/// The request's id, trace and idempotency key.
pub struct Meta(pub RequestMeta);

impl<S: Send + Sync> FromRequestParts<S> for Meta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let mut meta = parts
            .extensions
            .get::<RequestMeta>()
            .cloned()
            .unwrap_or_else(RequestMeta::new_request);
        if let Some(k) = parts.headers.get("idempotency-key") {
            let k = k.to_str().ok().map(str::trim).filter(|k| {
                !k.is_empty() && k.len() <= 200 && k.chars().all(|c| c.is_ascii_graphic())
            });
            match k {
                Some(k) => meta.idempotency_key = Some(k.to_string()),
                None => {
                    return Err(ApiError::bad_request(
                        "bad_idempotency_key",
                        "Idempotency-Key must be 1-200 visible ASCII characters",
                        "Idempotency-Key 须为1至200个可见ASCII字符",
                    ))
                }
            }
        }
        Ok(Meta(meta))
    }
}

/// `If-Match` with the expected version: `"5"`, `W/"5"` or `5`.
pub struct IfMatch(pub Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(v) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let s = v.to_str().unwrap_or("").trim();
        if s == "*" {
            return Ok(IfMatch(None));
        }
        let s = s.trim_start_matches("W/").trim_matches('"');
        s.parse::<u64>().map(|n| IfMatch(Some(n))).map_err(|_| {
            ApiError::bad_request(
                "bad_if_match",
                "If-Match must carry a version number, e.g. \"5\"",
                "If-Match 须为版本号，如 \"5\"",
            )
        })
    }
}

/// JSON bodies, with precise 400 / 413 / 415 problems.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(r) => Err(json_rejection(r)),
        }
    }
}

/// A body that is JSON but does not fit the schema; `detail` starts with the field's path
/// (`parties[0].role: unknown variant …`).
pub fn body_data_error(detail: &str) -> ApiError {
    if detail.contains(tiaojie_events::time::OUT_OF_RANGE) {
        return ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "time_out_of_range",
            format!(
                "A time lies outside the years 0001 to 9999: {}",
                clip(detail)
            ),
            "时间超出可登记的范围，请核对年份",
        )
        .with_field(field_of(detail), clip(detail));
    }
    ApiError::bad_request(
        "invalid_body",
        format!("The body does not fit the schema: {}", clip(detail)),
        "请求内容不符合格式要求",
    )
    .with_field(field_of(detail), clip(detail))
}

pub fn json_rejection(r: JsonRejection) -> ApiError {
    match r {
        JsonRejection::JsonDataError(e) => {
            let detail = e.body_text();
            body_data_error(
                detail.trim_start_matches(
                    "Failed to deserialize the JSON body into the target type: ",
                ),
            )
        }
        JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(
            "malformed_json",
            format!("The body is not valid JSON: {}", clip(&e.body_text())),
            "请求内容不是有效的 JSON",
        ),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the body as application/json",
            "请求内容须为 application/json",
        ),
        JsonRejection::BytesRejection(e) => {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                ApiError::bad_request(
                    "unreadable_body",
                    "The body could not be read",
                    "无法读取请求内容",
                )
            }
        }
        _ => ApiError::bad_request(
            "invalid_body",
            "The body could not be read",
            "无法读取请求内容",
        ),
    }
}

pub fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        "The body is larger than allowed",
        "请求内容过大",
    )
}

fn clip(s: &str) -> String {
    s.chars().take(300).collect()
}

fn field_of(detail: &str) -> String {
    // serde's messages start with the path: "summary: invalid type…" or "parties[0].role: …".
    match detail.split_once(": ") {
        Some((path, _)) if !path.contains(' ') => path.to_string(),
        _ => String::new(),
    }
}

/// Query strings, with a 400 problem when they do not parse.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(ApiError::bad_request(
                "invalid_query",
                format!("The query string is not valid: {}", clip(&e.body_text())),
                "查询参数不正确",
            )),
            Err(_) => Err(ApiError::bad_request(
                "invalid_query",
                "The query string is not valid",
                "查询参数不正确",
            )),
        }
    }
}

/// Parses a path id, answering 404 for anything that is not one (an id that cannot exist).
pub fn parse_id<T>(
    s: &str,
    what: &str,
    parse: impl Fn(&str) -> Result<T, tiaojie_events::ids::IdError>,
) -> Result<T, ApiError> {
    parse(s).map_err(|_| ApiError::not_found(what))
}

/// A page size from the query: `default` when left out; refused outside 1..=`max`.
pub fn limit_param(given: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    match given {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be between 1 and {max}, not {n}"),
            format!("每页条数须在1至{max}之间"),
        )
        .with_field("limit", format!("between 1 and {max}"))),
    }
}

/// The longest text filter, in characters.
pub use crate::queries::{text_param, MAX_TEXT_FILTER};
