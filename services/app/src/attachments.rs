//! Files attached to a case: photos of the site, scans or PDFs of signed papers.
//!
//! An upload is checked before anything is stored: its size and the case's count against
//! the configured limits (413, 422), its type by its bytes, never its name (415). A photo
//! loses its location data (the whole EXIF block; a photo taken sideways is turned upright
//! first, since its orientation lived there too) unless `attachments_keep_location` is set,
//! and gets a thumbnail. The content and the thumbnail are sealed with the case's key and
//! stored in the `attachments` table, then the case's `AttachmentAdded` event records the
//! hashes of the content and of the sealed bytes, so that the hash chain covers them. When
//! the event is refused, the stored row is deleted again.

use image::ImageDecoder;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tiaojie_events::case::{AddAttachment, CaseCommand, CaseEvent};
use tiaojie_events::metadata::{EventMetadata, Role};
use tiaojie_events::{AttachmentId, CaseId};
use tiaojie_projections::{on_db, StoreError};

use crate::app::App;
use crate::app_error::{AppError, AppResult, ErrorKind};
use crate::auth::Actor;
use crate::commands::{self, CommandOutcome, RequestMeta};

/// The types taken, as sniffed from the bytes.
pub const MEDIA_TYPES: &[&str] = &["image/jpeg", "image/png", "application/pdf"];

/// Thumbnails fit in this many pixels each way.
const THUMBNAIL: u32 = 480;

/// An image larger than this each way is refused (a decompression bomb, or not a photo).
const MAX_PIXELS_EACH_WAY: u32 = 12_000;

/// What a caller uploads.
#[derive(Debug, Clone, Default)]
pub struct Upload {
    pub bytes: Vec<u8>,
    pub caption: Option<String>,
    /// The sequence of the recorded step it documents.
    pub documents: Option<u64>,
}

/// An attachment as listed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AttachmentInfo {
    pub id: String,
    pub case_id: String,
    pub media_type: String,
    pub size: u64,
    /// SHA-256 of the content, in hex.
    pub sha256: String,
    /// Empty for a supervisor who has not revealed the case's attachments.
    pub caption: Option<String>,
    /// The sequence of the step it documents.
    pub documents: Option<u64>,
    /// The sequence of the event that added it.
    pub sequence: u64,
    pub added_at: String,
    pub added_by: String,
    pub has_thumbnail: bool,
}

/// What an accepted upload answers.
#[derive(Debug, Clone)]
pub struct Added {
    pub outcome: CommandOutcome,
    pub attachment: AttachmentInfo,
}

/// The content of a file as it will be stored: its type, the bytes, and an image's
/// thumbnail.
struct Prepared {
    media_type: &'static str,
    content: Vec<u8>,
    thumbnail: Option<Vec<u8>>,
}

/// The refusal of an upload larger than `max` bytes (413).
pub fn too_large(max: usize) -> AppError {
    AppError::new(
        ErrorKind::TooLarge,
        "attachment_too_large",
        format!("an attachment may be at most {} MiB", max / (1024 * 1024)),
        format!("附件不能超过{}MB", max / (1024 * 1024)),
    )
    .with_field("file", "too large")
}

fn unsupported(found: &str) -> AppError {
    let zh = if found.contains("heif") || found.contains("heic") {
        "暂不支持HEIC格式照片：请在手机“设置—相机—格式”中选择“兼容性最佳”（JPEG），或截图后上传"
            .to_string()
    } else {
        "只能上传照片（JPEG、PNG）或PDF文件；文件内容与其类型不符".to_string()
    };
    AppError::new(
        ErrorKind::UnsupportedType,
        "unsupported_attachment_type",
        format!("only JPEG and PNG photos and PDF files are taken (the content is {found})"),
        zh,
    )
    .with_field("file", "unsupported type")
}

fn unreadable() -> AppError {
    AppError::refused(
        "unreadable_image",
        "the image cannot be read (damaged, or larger than 12000 pixels each way)",
        "照片无法读取（文件损坏或尺寸过大）",
    )
    .with_field("file", "unreadable")
}

/// Checks the bytes and makes what will be stored: CPU work, run off the async threads.
fn prepare(bytes: Vec<u8>, keep_location: bool) -> AppResult<Prepared> {
    let found = infer::get(&bytes)
        .map(|t| t.mime_type())
        .unwrap_or("unknown");
    let media_type = MEDIA_TYPES
        .iter()
        .copied()
        .find(|m| *m == found)
        .ok_or_else(|| unsupported(found))?;
    if media_type == "application/pdf" {
        return Ok(Prepared {
            media_type,
            content: bytes,
            thumbnail: None,
        });
    }
    let format = if media_type == "image/png" {
        image::ImageFormat::Png
    } else {
        image::ImageFormat::Jpeg
    };
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_PIXELS_EACH_WAY);
    limits.max_image_height = Some(MAX_PIXELS_EACH_WAY);
    limits.max_alloc = Some(512 * 1024 * 1024);
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(&bytes[..]), format);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|_| unreadable())?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = image::DynamicImage::from_decoder(decoder).map_err(|_| unreadable())?;
    img.apply_orientation(orientation);
    let thumbnail = {
        let t = img.thumbnail(THUMBNAIL, THUMBNAIL).to_rgb8();
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
            .encode_image(&t)
            .map_err(|_| unreadable())?;
        out
    };
    let content = if keep_location {
        bytes
    } else if orientation != image::metadata::Orientation::NoTransforms {
        // Upright, without the metadata that turned it.
        let mut out = Vec::new();
        match format {
            image::ImageFormat::Png => img
                .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
                .map_err(|_| unreadable())?,
            _ => image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92)
                .encode_image(&img.to_rgb8())
                .map_err(|_| unreadable())?,
        }
        out
    } else {
        without_metadata(bytes, format)?
    };
    Ok(Prepared {
        media_type,
        content,
        thumbnail: Some(thumbnail),
    })
}

/// The image's bytes without EXIF (where phones keep the place a photo was taken) and
/// XMP, the picture itself untouched.
fn without_metadata(bytes: Vec<u8>, format: image::ImageFormat) -> AppResult<Vec<u8>> {
    use img_parts::ImageEXIF;
    let input = bytes::Bytes::from(bytes);
    match format {
        image::ImageFormat::Png => {
            let mut png = img_parts::png::Png::from_bytes(input).map_err(|_| unreadable())?;
            png.set_exif(None);
            png.chunks_mut()
                .retain(|c| !matches!(&c.kind(), b"iTXt" | b"tEXt" | b"zTXt"));
            Ok(png.encoder().bytes().to_vec())
        }
        _ => {
            let mut jpeg = img_parts::jpeg::Jpeg::from_bytes(input).map_err(|_| unreadable())?;
            jpeg.set_exif(None);
            // XMP lives in APP1 too; comments may carry anything.
            jpeg.segments_mut().retain(|s| {
                let xmp = s.marker() == img_parts::jpeg::markers::APP1
                    && s.contents().starts_with(b"http://ns.adobe.com/xap/1.0/");
                !xmp && s.marker() != img_parts::jpeg::markers::COM
            });
            Ok(jpeg.encoder().bytes().to_vec())
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// What binds a sealed attachment to its case and itself.
fn aad(case_id: &str, attachment: &str, part: &str) -> Vec<u8> {
    format!("attachment:{case_id}:{attachment}:{part}").into_bytes()
}

fn store_err(e: impl Into<StoreError>) -> AppError {
    AppError::store(e.into())
}

/// Checks a file as an upload would (size, type, readable), storing nothing: a form that
/// records a step with a photo checks the photo before the step runs.
pub async fn check(app: &App, bytes: &[u8]) -> AppResult<()> {
    let max = app.settings.attachment_max_bytes;
    if bytes.len() > max {
        return Err(too_large(max));
    }
    let keep = app.settings.attachments_keep_location;
    let bytes = bytes.to_vec();
    tokio::task::spawn_blocking(move || prepare(bytes, keep))
        .await
        .map_err(|_| AppError::internal())??;
    Ok(())
}

/// Attaches a file to a case.
pub async fn add(
    app: &App,
    actor: &Actor,
    meta: &RequestMeta,
    case_id: &CaseId,
    upload: Upload,
) -> AppResult<Added> {
    commands::guard_case_step(app, actor, case_id, "add_attachment").await?;
    let max = app.settings.attachment_max_bytes;
    if upload.bytes.len() > max {
        return Err(too_large(max));
    }
    if upload.bytes.is_empty() {
        return Err(AppError::refused(
            "empty_attachment",
            "the file is empty",
            "请选择要上传的文件",
        )
        .with_field("file", "required"));
    }
    let id = case_id.to_string();
    let count = list_rows(app, &id).await?.len();
    if count >= app.settings.attachments_per_case {
        return Err(AppError::refused(
            "too_many_attachments",
            format!(
                "a case holds at most {} attachments",
                app.settings.attachments_per_case
            ),
            format!("每个案件最多{}个附件", app.settings.attachments_per_case),
        )
        .with_field("file", "too many"));
    }
    let keep = app.settings.attachments_keep_location;
    let bytes = upload.bytes;
    let prepared = tokio::task::spawn_blocking(move || prepare(bytes, keep))
        .await
        .map_err(|_| AppError::internal())??;
    let attachment = AttachmentId::new();
    let aid = attachment.to_string();
    let sealed = app
        .keys
        .seal_case_bytes(&id, &aad(&id, &aid, "content"), &prepared.content)
        .await
        .map_err(store_err)?
        .ok_or_else(erased)?;
    let thumbnail = match &prepared.thumbnail {
        Some(t) => app
            .keys
            .seal_case_bytes(&id, &aad(&id, &aid, "thumbnail"), t)
            .await
            .map_err(store_err)?,
        None => None,
    };
    let now = app.now().to_canonical();
    on_db!(&app.db, p => {
        sqlx::query("INSERT INTO attachments (attachment_id, case_id, content, thumbnail, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&aid)
            .bind(&id)
            .bind(&sealed)
            .bind(&thumbnail)
            .bind(&now)
            .execute(p)
            .await
            .map_err(StoreError::from)?;
    });
    let info = (
        prepared.media_type.to_string(),
        prepared.content.len() as u64,
        sha256_hex(&prepared.content),
        upload.caption.filter(|c| !c.trim().is_empty()),
        upload.documents,
    );
    let command = CaseCommand::AddAttachment(AddAttachment {
        attachment_id: attachment,
        media_type: info.0.clone(),
        size: info.1,
        sha256: info.2.clone(),
        stored_sha256: sha256_hex(&sealed),
        caption: info.3.clone(),
        documents: info.4,
    });
    let outcome = match commands::case_command(app, actor, meta, case_id, command, None).await {
        Ok(o) => o,
        Err(e) => {
            // Nothing refers to the stored bytes: take them away again.
            let gone: Result<(), sqlx::Error> = on_db!(&app.db, p => {
                sqlx::query("DELETE FROM attachments WHERE attachment_id = $1")
                    .bind(&aid)
                    .execute(p)
                    .await
                    .map(|_| ())
            });
            if let Err(d) = gone {
                tracing::warn!(attachment = %aid, error = %d, "could not delete an attachment whose event was refused");
            }
            return Err(e);
        }
    };
    let attachment = AttachmentInfo {
        id: aid,
        case_id: id,
        media_type: info.0,
        size: info.1,
        sha256: info.2,
        caption: info.3,
        documents: info.4,
        sequence: outcome.version,
        added_at: now,
        added_by: actor.name.clone(),
        has_thumbnail: thumbnail.is_some(),
    };
    Ok(Added {
        outcome,
        attachment,
    })
}

fn erased() -> AppError {
    AppError::gone(
        "case_erased",
        "the case's free text and attachments were erased",
        "本案的文字记录和附件已按规定删除",
    )
}

/// Who may see a case's attachments: the case's group (in scope), and supervisors; never
/// dashboards or administrators.
async fn check_reader(app: &App, actor: &Actor, case_id: &str) -> AppResult<()> {
    match actor.role {
        Role::Member | Role::Leader | Role::Supervisor | Role::System => {}
        _ => {
            return Err(AppError::forbidden_zh((
                "this role does not see attachments",
                "该账号不能查看附件",
            )))
        }
    }
    let community = app
        .stores
        .case_community(case_id)
        .await?
        .ok_or_else(|| AppError::not_found("case"))?;
    if let Some(scope) = commands::scope(app, actor).await? {
        if !scope.contains(&community) {
            return Err(AppError::out_of_scope());
        }
    }
    Ok(())
}

/// (attachment id, has a thumbnail) of the case's stored attachments.
async fn list_rows(app: &App, case_id: &str) -> AppResult<Vec<(String, bool)>> {
    let rows: Vec<(String, bool)> = on_db!(&app.db, p => {
        sqlx::query_as::<_, (String, bool)>("SELECT attachment_id, thumbnail IS NOT NULL FROM attachments WHERE case_id = $1")
            .bind(case_id)
            .fetch_all(p)
            .await
            .map_err(StoreError::from)?
    });
    Ok(rows)
}

/// The case's attachments, oldest first. Captions are shown to the case's group, and to
/// a supervisor who revealed them (`revealed`).
pub async fn list(
    app: &App,
    actor: &Actor,
    case_id: &CaseId,
    revealed: bool,
) -> AppResult<Vec<AttachmentInfo>> {
    let id = case_id.to_string();
    check_reader(app, actor, &id).await?;
    let events = app.stores.case_events(&id).await?;
    infos(
        app,
        &id,
        &events,
        actor.role != Role::Supervisor || revealed,
    )
    .await
}

/// The attachments among a case's events (already loaded, and already checked for who may
/// read them), with or without their captions.
pub async fn infos(
    app: &App,
    case_id: &str,
    events: &[cqrs_es::EventEnvelope<tiaojie_events::case::Case>],
    captions: bool,
) -> AppResult<Vec<AttachmentInfo>> {
    let stored = list_rows(app, case_id).await?;
    Ok(events
        .iter()
        .filter_map(|e| {
            let CaseEvent::AttachmentAdded {
                attachment_id,
                media_type,
                size,
                sha256,
                caption,
                documents,
                ..
            } = &e.payload
            else {
                return None;
            };
            let aid = attachment_id.to_string();
            let thumb = stored.iter().find(|(a, _)| *a == aid).map(|(_, t)| *t)?;
            let m = EventMetadata::from_map(&e.metadata);
            Some(AttachmentInfo {
                id: aid,
                case_id: case_id.to_string(),
                media_type: media_type.clone(),
                size: *size,
                sha256: sha256.clone(),
                caption: caption.clone().filter(|_| captions),
                documents: *documents,
                sequence: e.sequence as u64,
                added_at: m.recorded_at.to_canonical(),
                added_by: m.actor_name,
                has_thumbnail: thumb,
            })
        })
        .collect())
}

/// Which part of an attachment to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Content,
    Thumbnail,
}

/// An attachment's bytes and type. A supervisor must give the reason (a logged reveal:
/// photos show faces); the case's group reads them, and each read is logged too.
pub async fn read(
    app: &App,
    actor: &Actor,
    meta: &RequestMeta,
    case_id: &CaseId,
    attachment: &str,
    part: Part,
    reveal_reason: Option<&str>,
) -> AppResult<(String, Vec<u8>)> {
    let id = case_id.to_string();
    check_reader(app, actor, &id).await?;
    let reason = reveal_reason.map(str::trim).filter(|r| !r.is_empty());
    if actor.role == Role::Supervisor && reason.is_none() {
        return Err(AppError::forbidden_zh((
            "a supervisor opens an attachment only with a reason, which is logged",
            "督查人员查看附件须填写理由，并记入查阅日志",
        )));
    }
    let events = app.stores.case_events(&id).await?;
    let info = infos(app, &id, &events, true)
        .await?
        .into_iter()
        .find(|a| a.id == attachment)
        .ok_or_else(|| AppError::not_found("attachment"))?;
    let column = match part {
        Part::Content => "content",
        Part::Thumbnail => "thumbnail",
    };
    let sql = format!("SELECT {column} FROM attachments WHERE attachment_id = $1 AND case_id = $2");
    let sealed: Option<Vec<u8>> = on_db!(&app.db, p => {
        sqlx::query_scalar::<_, Option<Vec<u8>>>(&sql)
            .bind(attachment)
            .bind(&id)
            .fetch_optional(p)
            .await
            .map_err(StoreError::from)?
            .flatten()
    });
    let sealed = sealed.ok_or_else(|| AppError::not_found("attachment"))?;
    let plain = app
        .keys
        .open_case_bytes(&id, &aad(&id, attachment, column), &sealed)
        .await
        .map_err(store_err)?
        .ok_or_else(erased)?;
    if part == Part::Content && sha256_hex(&plain) != info.sha256 {
        tracing::error!(case = %id, attachment, "an attachment's content does not match its recorded hash");
        return Err(AppError::internal());
    }
    // Every file a supervisor opens is logged with the reason; the group's own opening of a
    // file is logged too, its thumbnails on the case page are not.
    let action = match (actor.role, part) {
        (Role::Supervisor, _) => Some("reveal_attachment"),
        (_, Part::Content) => Some("view_attachment"),
        (_, Part::Thumbnail) => None,
    };
    if let Some(action) = action {
        crate::parties::log_access(app, actor, meta, None, Some(&id), action, reason).await?;
    }
    let media_type = match part {
        Part::Content => info.media_type,
        Part::Thumbnail => "image/jpeg".to_string(),
    };
    Ok((media_type, plain))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small JPEG with an EXIF block holding a GPS position and a marker text.
    fn jpeg_with_exif() -> Vec<u8> {
        let img =
            image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 3, y as u8 * 5, 90]));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&img)
            .unwrap();
        let mut jpeg = img_parts::jpeg::Jpeg::from_bytes(out.into()).unwrap();
        use img_parts::ImageEXIF;
        let mut exif = b"II*\0\x08\0\0\0".to_vec();
        exif.extend(b"GPSLatitude 36.0158 GPSLongitude 106.2425 TIAOJIE-EXIF-MARKER");
        jpeg.set_exif(Some(exif.into()));
        jpeg.encoder().bytes().to_vec()
    }

    #[test]
    fn a_photo_loses_its_location_and_keeps_its_picture() {
        let input = jpeg_with_exif();
        assert!(input.windows(19).any(|w| w == b"TIAOJIE-EXIF-MARKER"));
        let p = prepare(input.clone(), false).unwrap();
        assert_eq!(p.media_type, "image/jpeg");
        assert!(!p.content.windows(19).any(|w| w == b"TIAOJIE-EXIF-MARKER"));
        let a = image::load_from_memory(&input).unwrap().to_rgb8();
        let b = image::load_from_memory(&p.content).unwrap().to_rgb8();
        assert_eq!(a, b, "the picture is untouched");
        assert!(p.thumbnail.is_some());
        // Kept when configured.
        let kept = prepare(input.clone(), true).unwrap();
        assert_eq!(kept.content, input);
    }

    #[test]
    fn types_are_sniffed_from_the_bytes() {
        let pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF".to_vec();
        assert_eq!(prepare(pdf, false).unwrap().media_type, "application/pdf");
        let disguised = b"MZ\x90\0this is a program, named photo.jpg".to_vec();
        let e = prepare(disguised, false).err().unwrap();
        assert_eq!(e.kind, ErrorKind::UnsupportedType);
        let text = "居民签字的协议书".as_bytes().to_vec();
        assert_eq!(
            prepare(text, false).err().unwrap().kind,
            ErrorKind::UnsupportedType
        );
        // A JPEG header on garbage is refused as unreadable, not stored.
        let mut broken = vec![0xFF, 0xD8, 0xFF, 0xE0];
        broken.extend([0u8; 64]);
        assert_eq!(
            prepare(broken, false).err().unwrap().code,
            "unreadable_image"
        );
    }
}
