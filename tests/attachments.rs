//! Attachments: photos of the site and scans of signed papers, in the store itself, sealed
//! with the case's key, their hashes in the chain.

use axum::http::StatusCode;
use serde_json::{json, Value};
use sha2::Digest;
use tiaojie_tests::*;

const PDF_MARKER: &str = "TIAOJIE-SIGNED-AGREEMENT-MARKER";

fn pdf() -> Vec<u8> {
    format!("%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\n% {PDF_MARKER} 人民调解协议书（签字版）\ntrailer<<>>\n%%EOF\n")
        .into_bytes()
}

/// A photo with an EXIF block that holds a place and a marker.
fn photo() -> Vec<u8> {
    use img_parts::ImageEXIF;
    let img = image::RgbImage::from_fn(80, 60, |x, y| {
        image::Rgb([(x * 3) as u8, (y * 4) as u8, 120])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&img)
        .unwrap();
    let mut jpeg = img_parts::jpeg::Jpeg::from_bytes(out.into()).unwrap();
    let mut exif = b"II*\0\x08\0\0\0".to_vec();
    exif.extend(b"GPS 36.0158N 106.2425E TIAOJIE-GPS-MARKER");
    jpeg.set_exif(Some(exif.into()));
    jpeg.encoder().bytes().to_vec()
}

fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (Vec<u8>, String) {
    let boundary = "----tiaojie-test-boundary-7d1f";
    let mut body = Vec::new();
    for (name, file, bytes) in parts {
        body.extend(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(f) => body.extend(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            ),
            None => body.extend(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend(*bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    (body, format!("multipart/form-data; boundary={boundary}"))
}

async fn upload(
    t: &TestApp,
    token: &str,
    case: &str,
    parts: &[(&str, Option<&str>, &[u8])],
) -> Reply {
    let (body, ct) = multipart(parts);
    t.call_with(
        "POST",
        &format!("/api/v1/cases/{case}/attachments"),
        Some(token),
        Some(body),
        &[("content-type", &ct)],
    )
    .await
}

async fn rows(t: &TestApp) -> i64 {
    tiaojie_projections::on_db!(&t.app.db, p => {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM attachments").fetch_one(p).await.unwrap()
    })
}

fn sha(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

both!(
    attachments_round_trip_and_their_hashes_are_in_the_chain,
    |b| async move {
        let (_store, w) = world(b).await;
        let t = &w.t;
        let case = open_case_id(t, &w.member, w.objection("meiyuan")).await;
        // A signed paper, byte for byte.
        let a = upload(
            t,
            &w.member,
            &case,
            &[
                ("file", Some("协议书.pdf"), &pdf()),
                ("caption", None, "签字的调解协议书".as_bytes()),
                ("step", None, b"1"),
            ],
        )
        .await
        .expect(StatusCode::CREATED);
        assert_eq!(a.json["media_type"], "application/pdf");
        assert_eq!(a.json["sha256"], sha(&pdf()));
        let pdf_id = a.json["id"].as_str().unwrap().to_string();
        let back = t
            .call(
                "GET",
                &format!("/api/v1/cases/{case}/attachments/{pdf_id}"),
                Some(&w.member),
                None,
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(back.bytes, pdf(), "byte for byte");
        assert_eq!(
            back.header("content-type").as_deref(),
            Some("application/pdf")
        );
        // A photo: its location is gone, its picture is the same.
        let p = upload(
            t,
            &w.member,
            &case,
            &[
                ("file", Some("IMG_0001.jpg"), &photo()),
                ("caption", None, "3号楼东侧现场".as_bytes()),
            ],
        )
        .await
        .expect(StatusCode::CREATED);
        let photo_id = p.json["id"].as_str().unwrap().to_string();
        let stored = t
            .call(
                "GET",
                &format!("/api/v1/cases/{case}/attachments/{photo_id}"),
                Some(&w.member),
                None,
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(sha(&stored.bytes), p.json["sha256"].as_str().unwrap());
        assert!(
            !stored.bytes.windows(18).any(|w| w == b"TIAOJIE-GPS-MARKER"),
            "location data removed"
        );
        assert_eq!(
            image::load_from_memory(&stored.bytes).unwrap().to_rgb8(),
            image::load_from_memory(&photo()).unwrap().to_rgb8()
        );
        let thumb = t
            .call(
                "GET",
                &format!("/api/v1/cases/{case}/attachments/{photo_id}/thumbnail"),
                Some(&w.member),
                None,
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(thumb.header("content-type").as_deref(), Some("image/jpeg"));
        // The list, with captions and the step documented.
        let list = t
            .call(
                "GET",
                &format!("/api/v1/cases/{case}/attachments"),
                Some(&w.member),
                None,
            )
            .await
            .expect(StatusCode::OK);
        let list = list.json.as_array().unwrap().clone();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["caption"], "签字的调解协议书");
        assert_eq!(list[0]["documents"], 1);
        assert_eq!(list[1]["has_thumbnail"], true);
        // The history holds the hashes, and the chain verifies.
        let history = t
            .call(
                "GET",
                &format!("/api/v1/cases/{case}/history"),
                Some(&w.member),
                None,
            )
            .await
            .expect(StatusCode::OK);
        let added: Vec<&Value> = history
            .json
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["event_type"] == "AttachmentAdded")
            .collect();
        assert_eq!(added.len(), 2);
        assert_eq!(added[0]["event"]["sha256"], sha(&pdf()));
        t.app.read.catch_up().await.unwrap();
        let v = tiaojie_projections::log::verify(&t.app.db).await.unwrap();
        assert!(v.ok, "{v:?}");
        // The printed case file lists them with their hashes, and shows the photo.
        let mut web = NoJs::new(t);
        web.sign_in(&w.member).await;
        let doc = web
            .send("GET", &format!("/cases/{case}/documents/attachments"), None)
            .await;
        assert_eq!(doc.status, StatusCode::OK);
        assert!(doc.body.contains(&sha(&pdf())), "the hash is printed");
        assert!(
            doc.body
                .contains(&format!("/cases/{case}/attachments/{photo_id}")),
            "the photo is shown"
        );
        let file = web
            .send("GET", &format!("/cases/{case}/documents/file"), None)
            .await;
        assert!(file.body.contains("附件清单"));
        let page = web.send("GET", &format!("/cases/{case}"), None).await;
        assert!(page
            .body
            .contains(&format!("/cases/{case}/attachments/{photo_id}/thumbnail")));
        let img = web
            .send(
                "GET",
                &format!("/cases/{case}/attachments/{photo_id}"),
                None,
            )
            .await;
        assert_eq!(img.status, StatusCode::OK);
        // A stored blob changed behind the service's back is named by the verification.
        tiaojie_projections::on_db!(&t.app.db, p => {
            sqlx::query("UPDATE attachments SET content = $1 WHERE attachment_id = $2")
                .bind(b"not what was sealed".to_vec())
                .bind(&photo_id)
                .execute(p)
                .await
                .unwrap();
        });
        let v = tiaojie_projections::log::verify(&t.app.db).await.unwrap();
        assert!(!v.ok);
        let why = v.problem.unwrap_or_default();
        assert!(
            why.contains(&photo_id) && why.contains("do not match"),
            "{why}"
        );
        // Reading it refuses rather than serve other bytes.
        let r = t
            .call(
                "GET",
                &format!("/api/v1/cases/{case}/attachments/{photo_id}"),
                Some(&w.member),
                None,
            )
            .await;
        assert!(
            r.status.is_server_error() || r.status == StatusCode::GONE,
            "{}",
            r.status
        );
        w.t.stop().await;
    }
);

both!(refused_uploads_store_nothing, |b| async move {
    let (_store, w) = world_with(b, None, |s| {
        s.attachment_max_bytes = 4096;
        s.attachments_per_case = 2;
    })
    .await;
    let t = &w.t;
    let case = open_case_id(t, &w.member, w.objection("meiyuan")).await;
    let before = t
        .call(
            "GET",
            &format!("/api/v1/cases/{case}/history"),
            Some(&w.member),
            None,
        )
        .await
        .json
        .as_array()
        .unwrap()
        .len();
    // Too large: 413, problem+json, naming the field.
    let big = vec![b'%'; 5000];
    let r = upload(t, &w.member, &case, &[("file", Some("big.pdf"), &big)])
        .await
        .expect(StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.is_problem());
    assert_eq!(r.json["code"], "attachment_too_large");
    // A program named like a photo: 415.
    let exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00 a program".to_vec();
    let r = upload(t, &w.member, &case, &[("file", Some("photo.jpg"), &exe)])
        .await
        .expect(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(r.json["code"], "unsupported_attachment_type");
    // Plain text named .pdf: 415.
    upload(
        t,
        &w.member,
        &case,
        &[("file", Some("a.pdf"), "只是文字".as_bytes())],
    )
    .await
    .expect(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // No file: 400. An unknown field: 400. A step that was never recorded: 422.
    upload(t, &w.member, &case, &[("caption", None, b"x")])
        .await
        .expect(StatusCode::BAD_REQUEST);
    upload(
        t,
        &w.member,
        &case,
        &[("file", Some("a.pdf"), &pdf()), ("owner", None, b"x")],
    )
    .await
    .expect(StatusCode::BAD_REQUEST);
    let r = upload(
        t,
        &w.member,
        &case,
        &[("file", Some("a.pdf"), &pdf()), ("step", None, b"99")],
    )
    .await
    .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json["code"], "attachment_target");
    // Not multipart at all: 415, as problem+json, not a 5xx.
    t.call(
        "POST",
        &format!("/api/v1/cases/{case}/attachments"),
        Some(&w.member),
        Some(json!({"file": "x"})),
    )
    .await
    .expect(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Roles and scope: dashboards and other groups cannot attach.
    upload(t, &w.dashboard, &case, &[("file", Some("a.pdf"), &pdf())])
        .await
        .expect(StatusCode::FORBIDDEN);
    let r = upload(
        t,
        &w.other_member,
        &case,
        &[("file", Some("a.pdf"), &pdf())],
    )
    .await;
    assert!(
        r.status == StatusCode::FORBIDDEN || r.status == StatusCode::NOT_FOUND,
        "{}",
        r.status
    );
    assert_eq!(rows(t).await, 0, "nothing was stored");
    let after = t
        .call(
            "GET",
            &format!("/api/v1/cases/{case}/history"),
            Some(&w.member),
            None,
        )
        .await
        .json
        .as_array()
        .unwrap()
        .len();
    assert_eq!(after, before, "no event was recorded");
    // The count per case.
    for _ in 0..2 {
        upload(t, &w.member, &case, &[("file", Some("a.pdf"), &pdf())])
            .await
            .expect(StatusCode::CREATED);
    }
    let r = upload(t, &w.member, &case, &[("file", Some("a.pdf"), &pdf())])
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json["code"], "too_many_attachments");
    assert_eq!(rows(t).await, 2);
    // Dashboards never see them; supervisors only with a logged reason.
    let id = t
        .call(
            "GET",
            &format!("/api/v1/cases/{case}/attachments"),
            Some(&w.member),
            None,
        )
        .await
        .json[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    t.call(
        "GET",
        &format!("/api/v1/cases/{case}/attachments"),
        Some(&w.dashboard),
        None,
    )
    .await
    .expect(StatusCode::FORBIDDEN);
    let listed = t
        .call(
            "GET",
            &format!("/api/v1/cases/{case}/attachments"),
            Some(&w.supervisor),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(listed.json[0]["caption"], Value::Null);
    t.call(
        "GET",
        &format!("/api/v1/cases/{case}/attachments/{id}"),
        Some(&w.supervisor),
        None,
    )
    .await
    .expect(StatusCode::FORBIDDEN);
    let seen = t
        .call(
            "GET",
            &format!(
                "/api/v1/cases/{case}/attachments/{id}?reason={}",
                enc("核查督办事项")
            ),
            Some(&w.supervisor),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(seen.bytes, pdf());
    let log = t
        .call(
            "GET",
            "/api/v1/access-log?limit=50",
            Some(&w.supervisor),
            None,
        )
        .await;
    if log.status == StatusCode::OK {
        assert!(
            log.json.to_string().contains("reveal_attachment"),
            "{}",
            log.json
        );
    }
    w.t.stop().await;
});

both!(
    erasing_a_case_makes_its_attachments_unreadable,
    |b| async move {
        let clock = std::sync::Arc::new(tiaojie_events::ManualClock::new(t0()));
        let (_store, w) = world_at(b, Some(clock.clone())).await;
        let t = &w.t;
        let case = open_case_id(t, &w.member, w.objection("meiyuan")).await;
        let a = upload(t, &w.member, &case, &[("file", Some("a.pdf"), &pdf())])
            .await
            .expect(StatusCode::CREATED);
        let id = a.json["id"].as_str().unwrap().to_string();
        t.call(
            "POST",
            &format!("/api/v1/cases/{case}/closure"),
            Some(&w.leader),
            Some(json!({"outcome": "not_admissible"})),
        )
        .await
        .expect(StatusCode::OK);
        clock.advance(time::Duration::days(4 * 365));
        t.app.read.catch_up().await.unwrap();
        let r = tiaojie::parties::retention(&t.app, 3).await.unwrap();
        assert!(r.cases_erased >= 1, "{r:?}");
        let gone = t
            .call(
                "GET",
                &format!("/api/v1/cases/{case}/attachments/{id}"),
                Some(&w.member),
                None,
            )
            .await
            .expect(StatusCode::GONE);
        assert!(gone.is_problem());
        // The chain still verifies: the sealed bytes are still those it recorded.
        let v = tiaojie_projections::log::verify(&t.app.db).await.unwrap();
        assert!(v.ok, "{v:?}");
        w.t.stop().await;
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_carries_attachments_and_the_store_file_holds_none_in_clear() {
    let (store, w) = world(Backend::Sqlite).await;
    let t = &w.t;
    let case = open_case_id(t, &w.member, w.objection("meiyuan")).await;
    let a = upload(t, &w.member, &case, &[("file", Some("a.pdf"), &pdf())])
        .await
        .expect(StatusCode::CREATED);
    let id = a.json["id"].as_str().unwrap().to_string();
    // The raw store (the file and its write-ahead log) holds no byte of it in clear.
    let path = store
        .url
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap()
        .to_string();
    for f in [path.clone(), format!("{path}-wal")] {
        if let Ok(raw) = std::fs::read(&f) {
            assert!(
                !raw.windows(PDF_MARKER.len())
                    .any(|w| w == PDF_MARKER.as_bytes()),
                "{f} holds the file in clear"
            );
        }
    }
    let dir = TempDir::new("tiaojie-attachment-backup");
    let backup = dir.0.join("backup.db");
    tiaojie::backup::backup(&t.app.db, &backup).await.unwrap();
    w.t.stop().await;
    let target = TempDir::new("tiaojie-attachment-restore");
    let mut s = settings(&format!("sqlite:{}/tiaojie.db", target.0.display()));
    tiaojie::backup::restore(&s, &backup).await.unwrap();
    s.database_url = format!("sqlite:{}/tiaojie.db", target.0.display());
    let restored = Store::existing(&s.database_url);
    let t2 = TestApp::start_with(&restored, None, s, true).await;
    let member = t2
        .token(tiaojie_events::metadata::Role::Member, Some(w.group))
        .await;
    let back = t2
        .call(
            "GET",
            &format!("/api/v1/cases/{case}/attachments/{id}"),
            Some(&member),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(back.bytes, pdf());
    let v = tiaojie_projections::log::verify(&t2.app.db).await.unwrap();
    assert!(v.ok, "{v:?}");
    t2.stop().await;
}
