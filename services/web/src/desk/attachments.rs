//! Attachments on the case page: the list with thumbnails, the upload form (a photo taken
//! on the phone, or a scan), and the files themselves for the signed-in session.

use axum::extract::Multipart;
use axum::http::{header, HeaderValue};

use super::*;
use tiaojie_app::attachments::{self as service, Part, Upload};

/// One attachment as the case page shows it.
#[derive(Debug, Clone)]
pub struct AttachmentLine {
    pub id: String,
    pub caption: String,
    pub kind: String,
    pub size: String,
    pub sha256: String,
    pub sha_short: String,
    pub image: bool,
    pub added: String,
    pub documents: String,
}

fn size_text(n: u64) -> String {
    if n >= 1024 * 1024 {
        format!("{:.1} MB", n as f64 / (1024.0 * 1024.0))
    } else {
        format!("{} KB", n.div_ceil(1024))
    }
}

/// The case's attachments, for the page. Dashboards and administrators never get here.
pub(super) async fn lines(
    app: &App,
    signed: &Signed,
    l: &Loaded,
    revealed: bool,
) -> AppResult<Vec<AttachmentLine>> {
    let lang = signed.web.lang;
    // The page already loaded the case's events and checked who may read it.
    let captions = signed.actor.role != Role::Supervisor || revealed;
    let list = service::infos(app, &l.view.row.case_id, &l.events, captions).await?;
    Ok(list
        .into_iter()
        .map(|a| {
            let image = a.media_type.starts_with("image/");
            AttachmentLine {
                caption: a.caption.clone().unwrap_or_else(|| {
                    if signed.actor.role == Role::Supervisor {
                        lang.t("（说明已隐藏）", "(caption hidden)").to_string()
                    } else {
                        String::new()
                    }
                }),
                kind: match a.media_type.as_str() {
                    "application/pdf" => "PDF".into(),
                    "image/png" => lang.t("照片（PNG）", "photo (PNG)").into(),
                    _ => lang.t("照片", "photo").into(),
                },
                size: size_text(a.size),
                sha_short: a.sha256.chars().take(16).collect(),
                sha256: a.sha256,
                image,
                added: format!("{} · {}", local(app, &a.added_at), a.added_by),
                documents: a
                    .documents
                    .map(|n| {
                        lang.t(
                            &format!("对应第{n}项记录"),
                            &format!("documents record {n}"),
                        )
                        .to_string()
                    })
                    .unwrap_or_default(),
                id: a.id,
            }
        })
        .collect())
}

/// Reads a multipart form: its text fields, and the file (field `file` or `photo`),
/// counting bytes against the attachment limit as they arrive.
pub(super) async fn read_form(
    mut form: Multipart,
    max: usize,
) -> AppResult<(FormData, Option<Vec<u8>>)> {
    let too_large = || service::too_large(max);
    let broken = || {
        AppError::invalid(
            "invalid_upload",
            "the upload did not arrive whole; try again",
            "上传未完成，请重试",
        )
    };
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut file: Option<Vec<u8>> = None;
    let mut total = 0usize;
    while let Some(mut field) = form.next_field().await.map_err(|_| broken())? {
        let name = field.name().unwrap_or_default().to_string();
        let mut bytes = Vec::new();
        while let Some(c) = field.chunk().await.map_err(|_| broken())? {
            total += c.len();
            if total > max + 64 * 1024 {
                return Err(too_large());
            }
            bytes.extend_from_slice(&c);
        }
        if name == "file" || name == "photo" {
            if bytes.len() > max {
                return Err(too_large());
            }
            file = Some(bytes).filter(|b| !b.is_empty());
        } else {
            fields.push((name, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    Ok((FormData(fields), file))
}

/// Uploads a file from the case page (multipart: `_csrf`, `file`, `caption`, `step`).
pub async fn upload(
    State(app): State<App>,
    signed: Signed,
    Path(raw): Path<String>,
    form: Multipart,
) -> Response {
    let Ok(case_id) = CaseId::parse(&raw) else {
        return signed.error(AppError::not_found("case"));
    };
    let (data, file) = match read_form(form, app.settings.attachment_max_bytes).await {
        Ok((data, file)) => (data, Ok(file)),
        Err(e) => (FormData(vec![]), Err(e)),
    };
    if file.is_ok() {
        if let Some(r) = signed.csrf_rejection(&data) {
            return r;
        }
    }
    let result = match file {
        Err(e) => Err(e),
        Ok(None) => Err(AppError::refused(
            "empty_attachment",
            "choose a photo or a file to upload",
            "请选择要上传的照片或文件",
        )),
        Ok(Some(bytes)) => {
            let documents = data.get("step").trim().parse::<u64>().ok();
            let caption = Some(data.get("caption").trim().to_string()).filter(|c| !c.is_empty());
            let meta = RequestMeta::new_request();
            service::add(
                &app,
                &signed.actor,
                &meta,
                &case_id,
                Upload {
                    bytes,
                    caption,
                    documents,
                },
            )
            .await
            .map(|_| ())
        }
    };
    match result {
        Ok(()) => {
            Redirect::to(&format!("/cases/{case_id}?done=attachment#attachments")).into_response()
        }
        Err(e) if matches!(e.kind, ErrorKind::Forbidden | ErrorKind::NotFound) => signed.error(e),
        Err(e) => {
            let message = if signed.web.lang.is_en() {
                e.title.clone()
            } else {
                e.detail_zh.clone()
            };
            let mut r = case_page_full(&app, &signed, &raw, None, None, None, Some(message)).await;
            *r.status_mut() = crate::page_status(e.kind);
            r
        }
    }
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct RevealParam {
    pub reason: Option<String>,
}

async fn serve(
    app: &App,
    signed: &Signed,
    raw: &str,
    aid: &str,
    part: Part,
    reason: Option<&str>,
) -> Response {
    let Ok(case_id) = CaseId::parse(raw) else {
        return signed.error(AppError::not_found("case"));
    };
    let meta = RequestMeta::new_request();
    match service::read(app, &signed.actor, &meta, &case_id, aid, part, reason).await {
        Ok((media_type, bytes)) => {
            let mut r = bytes.into_response();
            let h = r.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&media_type) {
                h.insert(header::CONTENT_TYPE, v);
            }
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox",
                ),
            );
            r
        }
        Err(e) => signed.error(e),
    }
}

pub async fn file(
    State(app): State<App>,
    signed: Signed,
    Path((raw, aid)): Path<(String, String)>,
    Query(q): Query<RevealParam>,
) -> Response {
    serve(
        &app,
        &signed,
        &raw,
        &aid,
        Part::Content,
        q.reason.as_deref(),
    )
    .await
}

pub async fn thumbnail(
    State(app): State<App>,
    signed: Signed,
    Path((raw, aid)): Path<(String, String)>,
    Query(q): Query<RevealParam>,
) -> Response {
    serve(
        &app,
        &signed,
        &raw,
        &aid,
        Part::Thumbnail,
        q.reason.as_deref(),
    )
    .await
}
