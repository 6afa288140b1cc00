//! The web interface, served by `tiaojie serve` itself: sign-in with a token, the mediator
//! desk, the supervision room and the dashboard. Pages are rendered on the server (askama
//! templates compiled into the binary) and work without JavaScript; the only script keeps
//! the dashboard live over server-sent events. Chinese first, English by a switch; times in
//! Beijing time (the configured offset). Every form goes through the same command service
//! and domain rules as the HTTP API, and comes back with what was typed and the problem
//! message next to its field when a rule refuses it.
#![forbid(unsafe_code)]

pub mod account;
pub mod admin;
pub mod dashboard;
pub mod desk;
pub mod forms;
pub mod labels;
pub mod party;
pub mod reminders;
pub mod report;
pub mod screen;
mod stats;
pub mod supervision;

use tiaojie_app::{
    accounts, app, app_error, auth, commands, edge, group_steps, health, masking, numbering,
    parties, queries, sessions, steps,
};

use askama::Template;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;
use tiaojie_events::metadata::Role;
use tiaojie_events::Timestamp;

use crate::app::App;
use crate::app_error::{AppError, ErrorKind};
use crate::auth::{hash_token, Actor};
use crate::commands::RequestMeta;
use crate::sessions as session;

pub const SESSION_COOKIE: &str = "tj_session";
pub const LANG_COOKIE: &str = "tj_lang";
const LOGIN_CSRF_COOKIE: &str = "tj_login_csrf";

const CSS: &str = include_str!("../assets/app.css");
const JS: &str = include_str!("../assets/app.js");

pub fn routes() -> Router<App> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/lang/{code}", get(switch_lang))
        .route("/assets/app.css", get(css))
        .route("/assets/app.js", get(js))
        .route("/desk", get(desk::desk))
        .route("/cases/new", get(desk::new_case_page).post(desk::new_case))
        .route("/cases/{id}", get(desk::case_page))
        .route("/cases/{id}/print", get(desk::print))
        .route("/cases/{id}/documents/{*kind}", get(desk::document))
        .route("/parties/{id}", get(party::view).post(party::correct))
        .route("/verify", get(supervision::verify_document))
        .route("/verify/{code}", get(supervision::verify_code))
        .route(
            "/cases/{id}/do/{action}",
            // A form with a photo is multipart and counts its own bytes; every other form
            // keeps the body limit (applied in the handler).
            post(desk::act).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/cases/{id}/reveal", post(desk::reveal))
        .route(
            "/cases/{id}/attachments",
            post(desk::attachment_upload).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/cases/{id}/attachments/{aid}", get(desk::attachment_file))
        .route(
            "/cases/{id}/attachments/{aid}/thumbnail",
            get(desk::attachment_thumbnail),
        )
        .route("/supervision", get(supervision::room))
        .route("/supervision/audit", get(supervision::audit))
        .route("/supervision/audit.csv", get(supervision::audit_csv))
        .route("/supervision/verify", get(supervision::verify))
        .route("/supervision/access-log", get(supervision::access_log))
        .route("/account", get(account::page))
        .route("/account/password", post(account::change_password))
        .route("/account/totp/{step}", post(account::totp))
        .route("/account/sessions/end-others", post(account::end_others))
        .route("/account/tokens", post(account::create_token))
        .route("/account/tokens/{id}/revoke", post(account::revoke_token))
        .route(
            "/kiosk",
            get(account::kiosk_page).post(account::kiosk_sign_in),
        )
        .route(
            "/admin/accounts",
            get(account::admin_page).post(account::admin_create),
        )
        .route("/admin/accounts/{id}/{action}", post(account::admin_act))
        .route("/admin/kiosks", post(account::admin_create_kiosk))
        .route("/admin", get(admin::page))
        .route("/admin/tokens", post(admin::create_token))
        .route("/admin/tokens/{id}/revoke", post(admin::revoke_token))
        .route("/admin/groups", post(admin::form_group))
        .route("/admin/groups/{id}/do/{step}", post(admin::group_act))
        .route("/admin/groups/{id}/move", post(admin::move_community))
        .route("/stats", get(stats::page))
        .route("/stats/export.xlsx", get(stats::export))
        .route("/stats/cases.xlsx", get(stats::ledger))
        .route("/stats/cases", get(stats::figure_cases))
        .route("/reports/monthly", get(report::monthly))
        .route("/digest", get(reminders::digest))
        .route("/dashboard", get(dashboard::page))
        .route("/dashboard/live", get(dashboard::live))
        .route("/screen", get(screen::page))
        .route("/screen/live", get(screen::live))
}

/// Interface language: Chinese first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    pub fn t<'a>(&self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }

    pub fn html(&self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    pub fn is_en(&self) -> bool {
        *self == Lang::En
    }
}

/// What every page's frame needs: language, who is signed in, the CSRF secret, the path.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub lang: Lang,
    pub user: Option<UserLine>,
    pub csrf: String,
    pub path: String,
    pub title: String,
    /// The section of the navigation to mark: desk, supervision, dashboard.
    pub section: &'static str,
    pub flash: Option<String>,
    pub desk: bool,
    pub supervision: bool,
    pub admin: bool,
    pub reminders: Vec<reminders::NavReminder>,
}

impl Chrome {
    /// The current path, encoded for the language switch's way back.
    pub fn back(&self) -> String {
        encode(&self.path)
    }

    pub fn on(&self, section: &str) -> &'static str {
        if self.section == section {
            "on"
        } else {
            ""
        }
    }
}

#[derive(Debug, Clone)]
pub struct UserLine {
    pub name: String,
    pub role: String,
    pub organisation: String,
}

/// The browser's request: language, and the session when signed in.
pub struct Web {
    pub lang: Lang,
    pub path: String,
    pub secure: bool,
    pub session: Option<(Actor, String)>,
    /// The account signed in (None for a sign-in with a token).
    pub account: Option<accounts::Account>,
    /// The session's id hash (to tell it from the account's other sessions).
    pub session_hash: Option<String>,
    pub meta: RequestMeta,
}

/// A cookie's value from the request (parsed by axum-extra's cookie jar).
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(name)
        .map(|c| c.value().to_string())
}

impl FromRequestParts<App> for Web {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let lang = match cookie(&parts.headers, LANG_COOKIE).as_deref() {
            Some("en") => Lang::En,
            _ => Lang::Zh,
        };
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let secure = parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
            || parts.uri.scheme_str() == Some("https");
        let meta = parts
            .extensions
            .get::<RequestMeta>()
            .cloned()
            .unwrap_or_else(RequestMeta::new_request);
        let mut session = None;
        let mut account = None;
        let mut session_hash = None;
        if let Some(c) = cookie(&parts.headers, SESSION_COOKIE) {
            let found = session::find(&app.db, &c, app.now())
                .await
                .map_err(|e| error_page_plain(lang, AppError::store(e)))?;
            if let Some(s) = found {
                // What the session may do is read again at every request: from the
                // account and its group's current state, or from the token.
                let actor = match &s.account_id {
                    Some(id) => app.tokens.account_actor(id).await.map(|found| {
                        found.map(|(a, actor)| {
                            account = Some(a);
                            actor
                        })
                    }),
                    None => app.tokens.actor_by_hash(s.token_hash.clone()).await,
                }
                .map_err(|e| error_page_plain(lang, AppError::store(e)))?;
                if let Some(actor) = actor {
                    session = Some((actor, s.csrf));
                    session_hash = Some(s.id_hash);
                }
            }
        }
        Ok(Web {
            lang,
            path,
            secure,
            session,
            account,
            session_hash,
            meta,
        })
    }
}

/// A signed-in browser; anyone else is sent to the sign-in page and back.
pub struct Signed {
    pub web: Web,
    pub actor: Actor,
    pub csrf: String,
    /// The navigation's reminders (pages only: not for live streams or downloads).
    pub reminders: Vec<reminders::NavReminder>,
}

impl FromRequestParts<App> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let web = Web::from_request_parts(parts, app).await?;
        if let Some(a) = &web.account {
            // A one-time password must be changed, and a required second factor set up,
            // before anything else; the account page and signing out stay open.
            let open = web.path.starts_with("/account") || web.path == "/logout";
            if !open && a.must_change {
                return Err(Redirect::to("/account?must=password").into_response());
            }
            if !open && accounts::needs_second_factor(app, a) {
                return Err(Redirect::to("/account?must=totp").into_response());
            }
        }
        match web.session.clone() {
            Some((actor, csrf)) => {
                let page = parts.method == axum::http::Method::GET
                    && !web.path.ends_with("/live")
                    && !web.path.contains('.')
                    && !web.path.contains("/attachments/");
                let reminders = if page {
                    reminders::for_actor(app, &actor, web.lang).await
                } else {
                    vec![]
                };
                Ok(Signed {
                    web,
                    actor,
                    csrf,
                    reminders,
                })
            }
            None => {
                let next = if parts.method == axum::http::Method::GET {
                    web.path.clone()
                } else {
                    "/".into()
                };
                Err(Redirect::to(&format!("/login?next={}", encode(&next))).into_response())
            }
        }
    }
}

impl Signed {
    pub fn chrome(&self, title: String, section: &'static str) -> Chrome {
        Chrome {
            lang: self.web.lang,
            user: Some(UserLine {
                name: self.actor.name.clone(),
                role: labels::role(self.web.lang, self.actor.role).to_string(),
                organisation: self.actor.organisation.clone(),
            }),
            csrf: self.csrf.clone(),
            path: self.web.path.clone(),
            title,
            section,
            flash: None,
            desk: self.actor.is_group_role(),
            supervision: self.actor.reads_audit(),
            admin: self.actor.role == Role::Admin,
            reminders: self.reminders.clone(),
        }
    }

    pub fn t<'a>(&self, zh: &'a str, en: &'a str) -> &'a str {
        self.web.lang.t(zh, en)
    }

    /// Checks the form's CSRF field against the session's; the refusal page when it fails.
    pub fn csrf_rejection(&self, form: &FormData) -> Option<Response> {
        if session::same_secret(form.get("_csrf"), &self.csrf) {
            None
        } else {
            Some(self.error(AppError::forbidden_zh((
                "the form has expired or did not come from this site; reload the page and try again",
                "表单已过期或来源不明，请刷新页面后重试",
            ))))
        }
    }

    pub fn error(&self, e: AppError) -> Response {
        error_page(self.web.lang, Some(self.chrome(String::new(), "")), e)
    }
}

/// Form fields in order, repeated names kept (checkbox groups).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    pub fn opt(&self, name: &str) -> Option<&str> {
        Some(self.get(name).trim()).filter(|v| !v.is_empty())
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }
}

/// Percent-encodes a path for a query parameter.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Only a path of this site may be a redirect target; anything else goes to `/`.
fn local_path(s: Option<&str>) -> String {
    s.and_then(same_site_path).unwrap_or_else(|| "/".into())
}

/// A redirect target that stays on this site, or None. Browsers drop tabs and line breaks
/// from URLs and read a backslash as a slash, so `/\t/evil.example` and `/\\evil.example`
/// lead off the site as `//evil.example` does. Accepted: printable ASCII only, starting
/// with exactly one `/`, with no backslash and no control character, and the same again
/// after percent-decoding (repeatedly, so that encoded forms are caught too).
pub fn same_site_path(raw: &str) -> Option<String> {
    if raw.len() > 2000 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let mut s = raw.to_string();
    for _ in 0..4 {
        let b = s.as_bytes();
        if b.first() != Some(&b'/') || matches!(b.get(1), Some(b'/' | b'\\')) {
            return None;
        }
        if s.bytes()
            .any(|c| c == b'\\' || c.is_ascii_control() || c == b' ')
        {
            return None;
        }
        let decoded = percent_decode(&s)?;
        if decoded == s {
            return Some(raw.to_string());
        }
        s = decoded;
    }
    // Still changing after four rounds of decoding: not a path anyone types.
    None
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok()?;
            match u8::from_str_radix(hex, 16) {
                Ok(v) => {
                    out.push(v);
                    i += 3;
                    continue;
                }
                Err(_) => out.push(b[i]),
            }
        } else {
            out.push(b[i]);
        }
        i += 1;
    }
    // Bytes that are not UTF-8 are not a path of this site either.
    String::from_utf8(out).ok()
}

/// The interface's UTC offset (Beijing time unless configured otherwise).
pub fn offset(app: &App) -> time::UtcOffset {
    app.offset()
}

/// A stored UTC time as local `YYYY-MM-DD HH:MM`.
pub fn local(app: &App, canonical: &str) -> String {
    match Timestamp::parse(canonical) {
        Ok(t) => local_ts(app, t),
        Err(_) => canonical.to_string(),
    }
}

pub fn local_ts(app: &App, t: Timestamp) -> String {
    let d = t.as_offset().to_offset(offset(app));
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        d.year(),
        d.month() as u8,
        d.day(),
        d.hour(),
        d.minute()
    )
}

/// A time for a `datetime-local` input.
pub fn input_value(app: &App, t: Timestamp) -> String {
    local_ts(app, t).replace(' ', "T")
}

/// Reads a `datetime-local` value (local time) or a full RFC 3339 time.
pub fn parse_local(app: &App, s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(t) = Timestamp::parse(s) {
        return Some(t);
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let fmt_s = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let pd = time::PrimitiveDateTime::parse(s, &fmt)
        .or_else(|_| time::PrimitiveDateTime::parse(s, &fmt_s))
        .ok()?;
    Some(Timestamp::from_offset(pd.assume_offset(offset(app))))
}

/// Security headers of every page: no framing, no foreign script or style, no caching of
/// pages that can show personal data.
pub fn html(body: String) -> Response {
    let mut r = axum::response::Html(body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(s) => html(s),
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "页面生成失败 / the page failed to render",
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    status: u16,
    message: String,
    code: String,
}

/// The status of a page that shows an application error. A stale page (someone wrote since
/// it was loaded) is a conflict to resolve on the page, not a failed precondition.
pub fn page_status(kind: ErrorKind) -> StatusCode {
    use ErrorKind as K;
    match kind {
        K::Invalid => StatusCode::BAD_REQUEST,
        K::Refused => StatusCode::UNPROCESSABLE_ENTITY,
        K::Forbidden => StatusCode::FORBIDDEN,
        K::NotFound => StatusCode::NOT_FOUND,
        K::Gone => StatusCode::GONE,
        K::Conflict | K::VersionMismatch => StatusCode::CONFLICT,
        K::TooMany => StatusCode::TOO_MANY_REQUESTS,
        K::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        K::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
        K::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        K::UnsupportedType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        K::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

pub fn error_page(lang: Lang, chrome: Option<Chrome>, e: AppError) -> Response {
    let status = page_status(e.kind);
    let chrome = chrome.unwrap_or_else(|| anonymous(lang, String::new()));
    let page = ErrorPage {
        chrome: Chrome {
            title: lang.t("出错了", "Something went wrong").to_string(),
            ..chrome
        },
        status: status.as_u16(),
        message: if lang.is_en() {
            e.title.clone()
        } else {
            e.detail_zh.clone()
        },
        code: e.code.clone(),
    };
    let mut r = render(&page);
    *r.status_mut() = status;
    if e.code == "store_unavailable" {
        r.headers_mut()
            .insert(crate::health::STORE_DOWN, HeaderValue::from_static("1"));
    }
    r
}

fn error_page_plain(lang: Lang, e: AppError) -> Response {
    error_page(lang, None, e)
}

pub fn anonymous(lang: Lang, path: String) -> Chrome {
    Chrome {
        lang,
        user: None,
        csrf: String::new(),
        path,
        title: String::new(),
        section: "",
        flash: None,
        desk: false,
        supervision: false,
        admin: false,
        reminders: vec![],
    }
}

/// Where each role starts.
pub fn landing(actor: &Actor) -> &'static str {
    match actor.role {
        Role::Member | Role::Leader => "/desk",
        Role::Supervisor | Role::System => "/supervision",
        Role::Dashboard => "/dashboard",
        Role::Admin => "/admin",
    }
}

async fn home(web: Web) -> Response {
    match &web.session {
        Some((actor, _)) => Redirect::to(landing(actor)).into_response(),
        None => Redirect::to("/login").into_response(),
    }
}

async fn css() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}

async fn js() -> Response {
    asset(JS, "text/javascript; charset=utf-8")
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

/// A `Set-Cookie` value: the whole site, HttpOnly, SameSite=Strict, Secure behind HTTPS.
fn set_cookie(name: &str, value: &str, max_age: Option<i64>, secure: bool) -> HeaderValue {
    let mut c = Cookie::build((name.to_string(), value.to_string()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure);
    if let Some(age) = max_age {
        c = c.max_age(time::Duration::seconds(age));
    }
    HeaderValue::from_str(&c.build().to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    next: String,
    error: Option<String>,
    login_csrf: String,
    login: String,
    ask_code: bool,
}

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

async fn login_page(web: Web, Query(q): Query<NextQuery>) -> Response {
    if let Some((actor, _)) = &web.session {
        return Redirect::to(landing(actor)).into_response();
    }
    login_form(&web, local_path(q.next.as_deref()), None)
}

fn login_form(web: &Web, next: String, error: Option<String>) -> Response {
    login_form_with(web, next, error, String::new(), false)
}

/// The sign-in form: login and password, the second factor's code when it is needed, and
/// (folded away) an access token for those who still sign in with one.
fn login_form_with(
    web: &Web,
    next: String,
    error: Option<String>,
    login: String,
    ask_code: bool,
) -> Response {
    let secret = session::random_secret();
    let mut chrome = anonymous(web.lang, web.path.clone());
    chrome.title = web.lang.t("登录", "Sign in").to_string();
    let mut r = render(&LoginPage {
        chrome,
        next,
        error,
        login_csrf: secret.clone(),
        login,
        ask_code,
    });
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LOGIN_CSRF_COOKIE, &secret, Some(1800), web.secure),
    );
    r
}

/// The session cookie, the sign-in form's CSRF cookie cleared, and a redirect.
fn signed_in(web: &Web, id: &str, target: &str, max_age: i64) -> Response {
    let mut r = Redirect::to(target).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, id, Some(max_age), web.secure),
    );
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LOGIN_CSRF_COOKIE, "", Some(0), web.secure),
    );
    r
}

async fn login(
    State(app): State<App>,
    web: Web,
    Client(addr): Client,
    headers: HeaderMap,
    Form(form): Form<FormData>,
) -> Response {
    let next = local_path(form.opt("next"));
    if let Err(e) = crate::edge::check_auth_failures(&app, &addr) {
        return too_many_sign_ins(&web, next, e);
    }
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !session::same_secret(form.get("_csrf"), &expected) {
        let mut r = login_form(
            &web,
            next,
            Some(
                web.lang
                    .t(
                        "登录表单已过期，请重新输入",
                        "The sign-in form expired; please sign in again",
                    )
                    .into(),
            ),
        );
        *r.status_mut() = StatusCode::FORBIDDEN;
        return r;
    }
    let token = form.get("token").trim();
    if !token.is_empty() {
        return token_login(&app, &web, &addr, token, next).await;
    }
    let login = form.get("login").trim().to_string();
    let password = form.get("password");
    if login.is_empty() || password.is_empty() {
        let mut r = login_form_with(
            &web,
            next,
            Some(
                web.lang
                    .t("请输入登录名和密码", "Enter your login and password")
                    .into(),
            ),
            login,
            false,
        );
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return r;
    }
    let outcome = accounts::sign_in(&app, &login, password, form.opt("totp"), &addr.0).await;
    let account = match outcome {
        Err(e) => return error_page(web.lang, None, e),
        Ok(Ok(account)) => account,
        Ok(Err(refusal)) => {
            use accounts::Refusal;
            let counts = matches!(refusal, Refusal::Wrong | Refusal::CodeWrong);
            if counts {
                if let Some(e) = crate::edge::note_auth_failure(&app, &addr, "web sign-in") {
                    return too_many_sign_ins(&web, next, e);
                }
            }
            let status = match refusal {
                Refusal::Locked { .. } => StatusCode::TOO_MANY_REQUESTS,
                Refusal::NotInGroup => StatusCode::FORBIDDEN,
                _ => StatusCode::UNAUTHORIZED,
            };
            let ask_code = matches!(refusal, Refusal::CodeNeeded | Refusal::CodeWrong);
            let mut r = login_form_with(
                &web,
                next,
                Some(refusal.message(web.lang.is_en())),
                login,
                ask_code,
            );
            *r.status_mut() = status;
            return r;
        }
    };
    let holder = session::Holder::Account {
        id: &account.id,
        kiosk: false,
    };
    let (id, _) = match session::create(&app.db, holder, &addr.0, app.now()).await {
        Ok(s) => s,
        Err(e) => return error_page(web.lang, None, AppError::store(e)),
    };
    let target = if account.must_change {
        "/account?must=password".to_string()
    } else if accounts::needs_second_factor(&app, &account) {
        "/account?must=totp".to_string()
    } else if next == "/" {
        landing(&accounts::self_actor(&account)).to_string()
    } else {
        next
    };
    signed_in(&web, &id, &target, session::MAX_HOURS * 3600)
}

/// A sign-in with an access token (as before accounts; scripts and old tokens).
async fn token_login(
    app: &App,
    web: &Web,
    addr: &crate::edge::ClientAddr,
    token: &str,
    next: String,
) -> Response {
    let actor = if token.len() > 200 {
        None
    } else {
        match app.tokens.actor(token).await {
            Ok(a) => a,
            Err(e) => return error_page(web.lang, None, AppError::store(e)),
        }
    };
    let Some(actor) = actor else {
        if let Some(e) = crate::edge::note_auth_failure(app, addr, "web sign-in") {
            return too_many_sign_ins(web, next, e);
        }
        let mut r = login_form(
            web,
            next,
            Some(
                web.lang
                    .t(
                        "令牌无效或已被吊销，请向管理员确认",
                        "The token is not valid or has been revoked; ask your administrator",
                    )
                    .into(),
            ),
        );
        *r.status_mut() = StatusCode::UNAUTHORIZED;
        return r;
    };
    let hash = hash_token(token);
    let (id, _) =
        match session::create(&app.db, session::Holder::Token(&hash), &addr.0, app.now()).await {
            Ok(s) => s,
            Err(e) => return error_page(web.lang, None, AppError::store(e)),
        };
    tracing::info!(actor_id = %actor.id, role = actor.role.as_str(), "signed in to the web interface with a token");
    let target = if next == "/" {
        landing(&actor).to_string()
    } else {
        next
    };
    signed_in(web, &id, &target, session::MAX_HOURS * 3600)
}

fn too_many_sign_ins(web: &Web, next: String, e: AppError) -> Response {
    let wait = e.retry_after.map_or(60, |d| d.as_secs().max(1));
    let mut r = login_form(
        web,
        next,
        Some(if web.lang.is_en() {
            format!(
                "Too many failed sign-ins from this computer; try again in {} minutes",
                wait.div_ceil(60)
            )
        } else {
            format!("本机登录失败次数过多，请{}分钟后再试", wait.div_ceil(60))
        }),
    );
    *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(wait));
    r
}

async fn logout(
    State(app): State<App>,
    signed: Signed,
    Client(addr): Client,
    headers: HeaderMap,
    Form(form): Form<FormData>,
) -> Response {
    if let Some(r) = signed.csrf_rejection(&form) {
        return r;
    }
    if let Some(c) = cookie(&headers, SESSION_COOKIE) {
        if let Err(e) = session::delete(&app.db, &c).await {
            return signed.error(AppError::store(e));
        }
    }
    if let Some(a) = &signed.web.account {
        if let Err(e) = accounts::log(&app, &signed.actor, a, "sign_out", None, &addr.0).await {
            return signed.error(e);
        }
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", Some(0), signed.web.secure),
    );
    r
}

#[derive(Debug, Deserialize)]
struct BackQuery {
    back: Option<String>,
}

async fn switch_lang(
    web: Web,
    axum::extract::Path(code): axum::extract::Path<String>,
    Query(q): Query<BackQuery>,
) -> Response {
    let value = if code == "en" { "en" } else { "zh" };
    let mut r = Redirect::to(&local_path(q.back.as_deref())).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LANG_COOKIE, value, Some(365 * 24 * 3600), web.secure),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::same_site_path;

    #[test]
    fn only_same_site_paths_are_redirect_targets() {
        // Cases after the WHATWG URL parser: what a browser would read as another host,
        // or as a scheme, must never come back.
        for bad in [
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example",
            "/%09/evil.example",
            "/%0a/evil.example",
            "/%0D/evil.example",
            "/%2F/evil.example",
            "/%2f%2fevil.example",
            "/%5Cevil.example",
            "/%5cevil.example",
            "/%255Cevil.example",
            "/%25252F/evil.example",
            "/%01",
            "/%7F",
            "/%00",
            "%2F%2Fevil.example",
            "https://evil.example",
            "http:evil.example",
            "javascript:alert(1)",
            " /desk",
            "/desk evil",
            "evil.example",
            "",
            "/\u{3000}/evil.example",
            "/%E4",
        ] {
            assert_eq!(same_site_path(bad), None, "{bad:?} must be refused");
        }
        for good in [
            "/",
            "/desk",
            "/cases/01a2?done=opened",
            "/supervision/audit?from=2022-01-01&to=2022-02-01",
            "/desk?text=%E8%B4%B9%E7%94%A8",
            "/a/b/../c",
        ] {
            assert_eq!(same_site_path(good).as_deref(), Some(good), "{good:?}");
        }
    }
}

#[cfg(test)]
mod cookie_tests {
    use super::*;

    #[test]
    fn cookies_are_set_strict_and_read_back() {
        let v = set_cookie(SESSION_COOKIE, "abc", Some(60), true);
        let v = v.to_str().unwrap();
        for part in [
            "tj_session=abc",
            "HttpOnly",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=60",
            "Secure",
        ] {
            assert!(v.contains(part), "{part} missing from {v}");
        }
        let plain = set_cookie(LANG_COOKIE, "en", None, false);
        assert!(!plain.to_str().unwrap().contains("Secure"));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("tj_lang=en; tj_session=s3cr3t"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("s3cr3t"));
        assert_eq!(cookie(&headers, LANG_COOKIE).as_deref(), Some("en"));
        assert_eq!(cookie(&headers, LOGIN_CSRF_COOKIE), None);
    }
}

/// The client's address, which the HTTP layer's context middleware leaves in every
/// request's extensions.
pub struct Client(pub crate::edge::ClientAddr);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Client(
            parts
                .extensions
                .get::<crate::edge::ClientAddr>()
                .cloned()
                .unwrap_or_else(|| crate::edge::ClientAddr("unknown".into())),
        ))
    }
}
