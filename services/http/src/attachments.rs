//! Attachments through the API: upload (multipart), the list, and the bytes.

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use tiaojie_app::attachments::{self, AttachmentInfo, Part, Upload};
use tiaojie_events::CaseId;
use utoipa::{IntoParams, ToSchema};

use super::consistency_token;
use super::extract::{parse_id, ApiQuery, Auth, Meta};
use crate::app::App;
use crate::error::{ApiError, ApiResult, Problem};

/// The upload form.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The file: a JPEG or PNG photo, or a PDF (checked by its content).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// A short caption (现场照片、签字的协议书).
    caption: Option<String>,
    /// The sequence of the recorded step it documents (an incident, a session, the
    /// agreement).
    step: Option<u64>,
}

/// The answer to an upload.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AttachmentAnswer {
    /// The attachment's id.
    pub id: String,
    pub case_id: String,
    /// SHA-256 of the content as stored (location data removed from photos), in hex.
    pub sha256: String,
    pub size: u64,
    pub media_type: String,
    /// The case's version after the upload.
    pub version: u64,
    pub consistency_token: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RevealQuery {
    /// A supervisor's reason for opening the file (logged); required for supervisors.
    pub reason: Option<String>,
}

fn case_id(raw: &str) -> ApiResult<CaseId> {
    parse_id(raw, "case", CaseId::parse)
}

fn bad_form(message: &str) -> ApiError {
    ApiError::from(
        tiaojie_app::app_error::AppError::invalid(
            "invalid_upload",
            format!("the upload is not a valid multipart form: {message}"),
            "上传的表单格式不正确",
        )
        .with_field("file", message.to_string()),
    )
}

/// Reads the multipart form, counting bytes against the limit as they arrive.
pub async fn read_upload(mut form: Multipart, max: usize) -> ApiResult<Upload> {
    let mut upload = Upload::default();
    let mut file = None;
    let mut total = 0usize;
    let too_large = || ApiError::from(attachments::too_large(max));
    while let Some(mut field) = form
        .next_field()
        .await
        .map_err(|e| bad_form(&e.body_text()))?
    {
        let name = field.name().unwrap_or_default().to_string();
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(|e| bad_form(&e.body_text()))? {
            total += chunk.len();
            if total > max + 64 * 1024 {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        match name.as_str() {
            "file" => {
                if file.is_some() {
                    return Err(bad_form("one file per upload"));
                }
                if bytes.len() > max {
                    return Err(too_large());
                }
                file = Some(bytes);
            }
            "caption" => {
                let text = String::from_utf8(bytes).map_err(|_| bad_form("caption is not text"))?;
                upload.caption = Some(text).filter(|t| !t.trim().is_empty());
            }
            "step" => {
                let text =
                    String::from_utf8(bytes).map_err(|_| bad_form("step is not a number"))?;
                let text = text.trim();
                if !text.is_empty() {
                    upload.documents =
                        Some(text.parse().map_err(|_| bad_form("step is not a number"))?);
                }
            }
            other => return Err(bad_form(&format!("unknown field {other}"))),
        }
    }
    upload.bytes = file.ok_or_else(|| bad_form("the field file is missing"))?;
    Ok(upload)
}

/// Attaches a file to a case (multipart: `file`, optional `caption` and `step`). Its type
/// is checked by its content; a photo loses its location data; the file is sealed with the
/// case's key and its SHA-256 enters the hash chain.
#[utoipa::path(post, path = "/api/v1/cases/{id}/attachments", tag = "cases",
    params(("id" = String, Path, description = "Case id")),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = AttachmentAnswer), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 410, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn upload(
    State(app): State<App>,
    Auth(actor): Auth,
    Meta(meta): Meta,
    Path(raw): Path<String>,
    form: Result<Multipart, MultipartRejection>,
) -> ApiResult<Response> {
    let id = case_id(&raw)?;
    // Who may attach, before a byte of the body is read.
    crate::commands::guard_case_step(&app, &actor, &id, "add_attachment").await?;
    let form = form.map_err(|e| {
        ApiError::from(tiaojie_app::app_error::AppError::new(
            tiaojie_app::app_error::ErrorKind::UnsupportedType,
            "not_multipart",
            format!(
                "an upload is sent as multipart/form-data with the field file ({})",
                e.body_text()
            ),
            "上传须使用 multipart/form-data 格式，文件放在 file 字段",
        ))
    })?;
    let upload = read_upload(form, app.settings.attachment_max_bytes).await?;
    let added = attachments::add(&app, &actor, &meta, &id, upload).await?;
    let token = consistency_token("Case", &id.to_string(), added.outcome.version);
    let a = added.attachment;
    let answer = AttachmentAnswer {
        id: a.id.clone(),
        case_id: a.case_id,
        sha256: a.sha256,
        size: a.size,
        media_type: a.media_type,
        version: added.outcome.version,
        consistency_token: token,
    };
    let mut resp = (StatusCode::CREATED, Json(answer)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/cases/{id}/attachments/{}", a.id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// The case's attachments, oldest first. Supervisors see captions only with `reason`.
#[utoipa::path(get, path = "/api/v1/cases/{id}/attachments", tag = "cases",
    params(("id" = String, Path, description = "Case id"), RevealQuery),
    responses((status = 200, body = [AttachmentInfo]), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn list(
    State(app): State<App>,
    Auth(actor): Auth,
    Meta(meta): Meta,
    Path(raw): Path<String>,
    ApiQuery(q): ApiQuery<RevealQuery>,
) -> ApiResult<Json<Vec<AttachmentInfo>>> {
    let id = case_id(&raw)?;
    let reason = q.reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
    let list = attachments::list(&app, &actor, &id, reason.is_some()).await?;
    if let (Some(r), tiaojie_events::metadata::Role::Supervisor) = (reason, actor.role) {
        tiaojie_app::parties::log_access(
            &app,
            &actor,
            &meta,
            None,
            Some(&id.to_string()),
            "reveal_attachments",
            Some(r),
        )
        .await?;
    }
    Ok(Json(list))
}

fn bytes_response(media_type: String, bytes: Vec<u8>, name: &str) -> Response {
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&media_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox",
        ),
    );
    resp
}

fn extension(media_type: &str) -> &'static str {
    match media_type {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "application/pdf" => "pdf",
        _ => "bin",
    }
}

/// One part of an attachment, as its own answer.
async fn serve(
    app: &App,
    actor: &crate::auth::Actor,
    meta: &crate::commands::RequestMeta,
    (raw, aid): (String, String),
    part: Part,
    reason: Option<&str>,
) -> ApiResult<Response> {
    let id = case_id(&raw)?;
    let (media_type, bytes) = attachments::read(app, actor, meta, &id, &aid, part, reason).await?;
    let name = match part {
        Part::Content => format!("{aid}.{}", extension(&media_type)),
        Part::Thumbnail => format!("{aid}-thumbnail.jpg"),
    };
    Ok(bytes_response(media_type, bytes, &name))
}

/// An attachment's bytes, byte for byte as stored. Supervisors give a `reason` (logged).
#[utoipa::path(get, path = "/api/v1/cases/{id}/attachments/{aid}", tag = "cases",
    params(("id" = String, Path, description = "Case id"), ("aid" = String, Path, description = "Attachment id"), RevealQuery),
    responses((status = 200, description = "The file", content_type = "application/octet-stream"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 410, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn content(
    State(app): State<App>,
    Auth(actor): Auth,
    Meta(meta): Meta,
    Path(path): Path<(String, String)>,
    ApiQuery(q): ApiQuery<RevealQuery>,
) -> ApiResult<Response> {
    serve(
        &app,
        &actor,
        &meta,
        path,
        Part::Content,
        q.reason.as_deref(),
    )
    .await
}

/// An image attachment's thumbnail (JPEG).
#[utoipa::path(get, path = "/api/v1/cases/{id}/attachments/{aid}/thumbnail", tag = "cases",
    params(("id" = String, Path, description = "Case id"), ("aid" = String, Path, description = "Attachment id"), RevealQuery),
    responses((status = 200, description = "The thumbnail", content_type = "image/jpeg"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 410, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn thumbnail(
    State(app): State<App>,
    Auth(actor): Auth,
    Meta(meta): Meta,
    Path(path): Path<(String, String)>,
    ApiQuery(q): ApiQuery<RevealQuery>,
) -> ApiResult<Response> {
    serve(
        &app,
        &actor,
        &meta,
        path,
        Part::Thumbnail,
        q.reason.as_deref(),
    )
    .await
}
