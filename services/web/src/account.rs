//! One's own account (password, second factor, sessions, access tokens, recent sign-ins),
//! the administrators' accounts page (create with a one-time password shown once, reset,
//! disable, enable, unlock; wall-screen kiosks), and a kiosk's sign-in.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use tiaojie_events::metadata::Role;
use tiaojie_events::{GroupId, MemberId};

use super::forms::{Field, FormView, Kind};
use super::{
    accounts, cookie, labels, local, render, session, set_cookie, Chrome, Client, FormData, Lang,
    Signed, Web, LOGIN_CSRF_COOKIE,
};
use crate::accounts::Account;
use crate::app::App;
use crate::app_error::{AppError, AppResult};
use crate::auth;

#[derive(Debug, Deserialize)]
pub struct AccountQuery {
    must: Option<String>,
    done: Option<String>,
}

struct TokenLine {
    id: String,
    name: String,
    created: String,
    expires: String,
    revoked: String,
}

struct SessionLine {
    created: String,
    last_seen: String,
    address: String,
    this: bool,
}

struct SignInLine {
    at: String,
    what: String,
    address: String,
}

struct TotpView {
    enabled: bool,
    /// A secret being set up: (base32, QR code as SVG).
    pending: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    must: String,
    login: String,
    name: String,
    role: String,
    group: String,
    organisation: String,
    password_form: FormView,
    totp: TotpView,
    code_form: FormView,
    remove_totp_form: FormView,
    sessions: Vec<SessionLine>,
    tokens: Vec<TokenLine>,
    token_form: FormView,
    issued: Option<(String, String)>,
    sign_ins: Vec<SignInLine>,
}

fn action_label(lang: Lang, a: &str) -> String {
    let (zh, en) = match a {
        "sign_in" => ("登录", "signed in"),
        "sign_in_failed" => ("登录失败", "failed sign-in"),
        "sign_in_refused" => ("拒绝登录", "sign-in refused"),
        "sign_out" => ("退出", "signed out"),
        "account_locked" => ("账号锁定", "locked"),
        "account_unlocked" => ("解除锁定", "unlocked"),
        "password_changed" => ("修改密码", "password changed"),
        "password_reset" => ("重置密码", "password reset"),
        "totp_enabled" => ("启用动态验证码", "second factor on"),
        "totp_removed" => ("停用动态验证码", "second factor off"),
        "account_created" => ("创建账号", "account created"),
        "account_disabled" => ("停用账号", "account disabled"),
        "account_enabled" => ("启用账号", "account enabled"),
        other => (other, other),
    };
    lang.t(zh, en).to_string()
}

fn password_form(lang: Lang) -> FormView {
    let mut f = FormView::new(
        "password",
        lang.t("修改密码", "Change the password"),
        "/account/password".into(),
        lang.t("修改密码", "Change"),
    )
    .field(
        Field::new(
            "current",
            lang.t("当前密码", "Current password"),
            Kind::Password,
        )
        .required(),
    )
    .field(
        Field::new("new", lang.t("新密码", "New password"), Kind::Password)
            .required()
            .hint(lang.t(accounts::PASSWORD_RULE_ZH, accounts::PASSWORD_RULE_EN)),
    )
    .field(
        Field::new(
            "confirm",
            lang.t("再次输入新密码", "New password again"),
            Kind::Password,
        )
        .required(),
    );
    f.open = true;
    f
}

fn code_form(lang: Lang) -> FormView {
    let mut f = FormView::new(
        "totp-confirm",
        lang.t("输入验证码以启用", "Enter a code to turn it on"),
        "/account/totp/confirm".into(),
        lang.t("启用", "Turn on"),
    )
    .field(
        Field::new("code", lang.t("6位动态验证码", "6-digit code"), Kind::Text)
            .required()
            .hint(lang.t(
                "用验证器应用扫描上方二维码（或输入密钥）后显示的数字",
                "shown by your authenticator app after scanning the code above",
            )),
    );
    f.open = true;
    f
}

fn remove_totp_form(lang: Lang) -> FormView {
    let mut f = FormView::new(
        "totp-remove",
        lang.t("停用动态验证码", "Turn the second factor off"),
        "/account/totp/remove".into(),
        lang.t("停用", "Turn off"),
    )
    .field(Field::new("password", lang.t("密码", "Password"), Kind::Password).required());
    f.danger = true;
    f
}

fn token_form(lang: Lang) -> FormView {
    FormView::new(
        "account-token",
        lang.t(
            "新建访问令牌（供程序调用接口）",
            "New access token (for programs)",
        ),
        "/account/tokens".into(),
        lang.t("新建", "Create"),
    )
    .field(
        Field::new("name", lang.t("用途", "Purpose"), Kind::Text)
            .required()
            .hint(lang.t("如：数据报送脚本", "e.g. the reporting script")),
    )
    .field(
        Field::new("days", lang.t("有效天数", "Valid for (days)"), Kind::Text)
            .value("90")
            .hint(lang.t("1至365天", "1-365 days")),
    )
}

/// The signed-in account, or a page saying there is none (a sign-in with a token).
fn own(signed: &Signed) -> Result<Account, Box<Response>> {
    signed.web.account.clone().ok_or_else(|| {
        Box::new(signed.error(AppError::refused(
            "no_account",
            "You signed in with an access token; there is no account page for it",
            "您是用访问令牌登录的，没有个人账号页面",
        )))
    })
}

enum Failed<'a> {
    None,
    Password(&'a FormData, AppError),
    Code(&'a FormData, AppError),
    Remove(&'a FormData, AppError),
    Token(&'a FormData, AppError),
}

async fn account_page(
    app: &App,
    signed: &Signed,
    account: &Account,
    must: Option<&str>,
    failed: Failed<'_>,
    issued: Option<(String, String)>,
    flash: Option<String>,
) -> AppResult<Response> {
    let lang = signed.web.lang;
    let mut password = password_form(lang);
    let mut code = code_form(lang);
    let mut remove = remove_totp_form(lang);
    let mut token = token_form(lang);
    let mut status = StatusCode::OK;
    match failed {
        Failed::None => {}
        Failed::Password(d, e) => {
            password.refill(d, &e, lang);
            status = StatusCode::UNPROCESSABLE_ENTITY;
        }
        Failed::Code(d, e) => {
            code.refill(d, &e, lang);
            status = StatusCode::UNPROCESSABLE_ENTITY;
        }
        Failed::Remove(d, e) => {
            remove.refill(d, &e, lang);
            status = StatusCode::UNPROCESSABLE_ENTITY;
        }
        Failed::Token(d, e) => {
            token.refill(d, &e, lang);
            status = StatusCode::UNPROCESSABLE_ENTITY;
        }
    }
    let pending = accounts::totp_pending(app, account)
        .await?
        .map(|s| (s.secret, s.qr_svg));
    let group = match account.group_id {
        Some(g) => app
            .directory
            .group_state(&g)
            .await?
            .map(|s| s.name)
            .unwrap_or_default(),
        None => String::new(),
    };
    let sessions = session::of_account(&app.db, &account.id, app.now())
        .await?
        .into_iter()
        .map(|s| SessionLine {
            created: local(app, &s.created_at),
            last_seen: local(app, &s.last_seen_at),
            address: s.address.unwrap_or_default(),
            this: signed.web.session_hash.as_deref() == Some(s.id_hash.as_str()),
        })
        .collect();
    let tokens = auth::account_tokens(&app.db, &account.id)
        .await?
        .into_iter()
        .rev()
        .map(|t| TokenLine {
            created: local(app, &t.created_at),
            expires: t
                .expires_at
                .as_deref()
                .map(|e| local(app, e))
                .unwrap_or_default(),
            revoked: t
                .revoked_at
                .as_deref()
                .map(|e| local(app, e))
                .unwrap_or_default(),
            id: t.id,
            name: t.name,
        })
        .collect();
    let sign_ins = accounts::recent_sign_ins(app, &account.id, 20)
        .await?
        .into_iter()
        .map(|e| SignInLine {
            at: local(app, &e.at),
            what: action_label(lang, &e.action),
            address: e.address.unwrap_or_default(),
        })
        .collect();
    let mut chrome = signed.chrome(lang.t("我的账号", "My account").into(), "account");
    chrome.flash = flash;
    let must = match must {
        Some("password") if account.must_change => "password",
        Some("totp") if accounts::needs_second_factor(app, account) => "totp",
        _ if account.must_change => "password",
        _ => "",
    };
    let mut r = render(&AccountPage {
        chrome,
        must: must.to_string(),
        login: account.login.clone(),
        name: signed.actor.name.clone(),
        role: labels::role(lang, signed.actor.role).to_string(),
        group,
        organisation: signed.actor.organisation.clone(),
        password_form: password,
        totp: TotpView {
            enabled: account.totp_enabled,
            pending,
        },
        code_form: code,
        remove_totp_form: remove,
        sessions,
        tokens,
        token_form: token,
        issued,
        sign_ins,
    });
    *r.status_mut() = status;
    Ok(r)
}

pub async fn page(
    State(app): State<App>,
    signed: Signed,
    Query(q): Query<AccountQuery>,
) -> Response {
    let account = match own(&signed) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let flash = q.done.as_deref().map(|d| {
        match d {
            "password" => signed.t(
                "密码已修改，其他会话已结束。",
                "The password is changed; your other sessions ended.",
            ),
            "totp-on" => signed.t(
                "动态验证码已启用，下次登录时需要输入。",
                "The second factor is on; you will need a code to sign in.",
            ),
            "totp-off" => signed.t("动态验证码已停用。", "The second factor is off."),
            "sessions" => signed.t("其他会话已结束。", "Your other sessions ended."),
            "revoked" => signed.t("令牌已吊销。", "The token is revoked."),
            _ => signed.t("已保存。", "Saved."),
        }
        .to_string()
    });
    account_page(
        &app,
        &signed,
        &account,
        q.must.as_deref(),
        Failed::None,
        None,
        flash,
    )
    .await
    .unwrap_or_else(|e| signed.error(e))
}

pub async fn change_password(
    State(app): State<App>,
    signed: Signed,
    Client(addr): Client,
    Form(form): Form<FormData>,
) -> Response {
    if let Some(r) = signed.csrf_rejection(&form) {
        return r;
    }
    let account = match own(&signed) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let changed = accounts::change_password(
        &app,
        &account,
        form.get("current"),
        form.get("new"),
        form.get("confirm"),
        signed.web.session_hash.as_deref(),
        &addr.0,
    )
    .await;
    match changed {
        Ok(()) => {
            let to = if account.must_change {
                super::landing(&signed.actor).to_string()
            } else {
                "/account?done=password".to_string()
            };
            Redirect::to(&to).into_response()
        }
        Err(e) if accounts::is_refusal(&e) => account_page(
            &app,
            &signed,
            &account,
            None,
            Failed::Password(&form, e),
            None,
            None,
        )
        .await
        .unwrap_or_else(|e| signed.error(e)),
        Err(e) => signed.error(e),
    }
}

pub async fn totp(
    State(app): State<App>,
    signed: Signed,
    Client(addr): Client,
    Path(step): Path<String>,
    Form(form): Form<FormData>,
) -> Response {
    if let Some(r) = signed.csrf_rejection(&form) {
        return r;
    }
    let account = match own(&signed) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let r = match step.as_str() {
        "begin" => accounts::totp_begin(&app, &account)
            .await
            .map(|_| Redirect::to("/account#totp").into_response()),
        "confirm" => {
            match accounts::totp_confirm(&app, &account, form.get("code"), &addr.0).await {
                Ok(()) => Ok(Redirect::to("/account?done=totp-on").into_response()),
                Err(e) if accounts::is_refusal(&e) => {
                    account_page(
                        &app,
                        &signed,
                        &account,
                        None,
                        Failed::Code(&form, e),
                        None,
                        None,
                    )
                    .await
                }
                Err(e) => Err(e),
            }
        }
        "remove" => {
            match accounts::totp_remove(
                &app,
                &account,
                form.get("password"),
                &signed.actor,
                &addr.0,
            )
            .await
            {
                Ok(()) => Ok(Redirect::to("/account?done=totp-off").into_response()),
                Err(e) if accounts::is_refusal(&e) => {
                    account_page(
                        &app,
                        &signed,
                        &account,
                        None,
                        Failed::Remove(&form, e),
                        None,
                        None,
                    )
                    .await
                }
                Err(e) => Err(e),
            }
        }
        _ => Err(AppError::not_found("step")),
    };
    r.unwrap_or_else(|e| signed.error(e))
}

pub async fn end_others(
    State(app): State<App>,
    signed: Signed,
    Form(form): Form<FormData>,
) -> Response {
    if let Some(r) = signed.csrf_rejection(&form) {
        return r;
    }
    let account = match own(&signed) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    match accounts::end_sessions(&app, &account.id, signed.web.session_hash.as_deref(), false).await
    {
        Ok(()) => Redirect::to("/account?done=sessions").into_response(),
        Err(e) => signed.error(e),
    }
}

pub async fn create_token(
    State(app): State<App>,
    signed: Signed,
    Form(form): Form<FormData>,
) -> Response {
    if let Some(r) = signed.csrf_rejection(&form) {
        return r;
    }
    let account = match own(&signed) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let made = async {
        let name = form.get("name").trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(super::desk::unprocessable(
                "name",
                "请填写令牌用途（100字以内）",
                "give the token's purpose (up to 100 characters)",
            ));
        }
        let days = match form.get("days").trim() {
            "" => 90,
            d => d
                .parse::<i64>()
                .ok()
                .filter(|d| (1..=365).contains(d))
                .ok_or_else(|| {
                    super::desk::unprocessable("days", "有效天数须为1至365", "1-365 days")
                })?,
        };
        let now = app.now();
        let (_, secret) =
            auth::create_account_token(&app.db, &account, name, Some(now.plus_days(days)), now)
                .await?;
        Ok::<_, AppError>((name.to_string(), secret))
    }
    .await;
    let r = match made {
        Ok(issued) => {
            account_page(
                &app,
                &signed,
                &account,
                None,
                Failed::None,
                Some(issued),
                None,
            )
            .await
        }
        Err(e) if accounts::is_refusal(&e) => {
            account_page(
                &app,
                &signed,
                &account,
                None,
                Failed::Token(&form, e),
                None,
                None,
            )
            .await
        }
        Err(e) => Err(e),
    };
    r.unwrap_or_else(|e| signed.error(e))
}

pub async fn revoke_token(
    State(app): State<App>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<FormData>,
) -> Response {
    if let Some(r) = signed.csrf_rejection(&form) {
        return r;
    }
    let account = match own(&signed) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    match auth::revoke_account_token(&app.db, &account.id, &id, app.now()).await {
        Ok(true) => {
            app.tokens.forget_all().await;
            Redirect::to("/account?done=revoked").into_response()
        }
        Ok(false) => signed.error(AppError::not_found("token")),
        Err(e) => signed.error(AppError::store(e)),
    }
}

// ---- administrators ----

struct AccountRow {
    id: String,
    login: String,
    name: String,
    role: String,
    group: String,
    status: String,
    last: String,
    disabled: bool,
    locked: bool,
    totp: bool,
    kiosk: bool,
}

#[derive(Template)]
#[template(path = "admin_accounts.html")]
struct AdminAccountsPage {
    chrome: Chrome,
    /// (login or screen, one-time password or kiosk key, is a kiosk)
    issued: Option<(String, String, bool)>,
    create_form: FormView,
    kiosk_form: FormView,
    rows: Vec<AccountRow>,
}

fn require_admin(signed: &Signed) -> Option<Response> {
    (signed.actor.role != Role::Admin).then(|| {
        signed.error(AppError::forbidden_zh((
            "only administrators manage accounts",
            "只有管理员可以管理账号",
        )))
    })
}

/// Members of every group without an account yet: ("group:member", "group · name").
async fn unlinked_members(app: &App) -> AppResult<Vec<(String, String)>> {
    let linked: Vec<(Option<GroupId>, Option<MemberId>)> = accounts::list(app)
        .await?
        .into_iter()
        .map(|a| (a.group_id, a.member_id))
        .collect();
    let mut out = vec![(String::new(), "—".to_string())];
    for (gid, g) in app.directory.groups().await? {
        for m in g.members.values() {
            if linked.contains(&(Some(gid), Some(m.member_id))) {
                continue;
            }
            let leader = if g.leader == Some(m.member_id) {
                "（组长）"
            } else {
                ""
            };
            out.push((
                format!("{gid}:{}", m.member_id),
                format!("{} · {}{leader}", g.name, m.name),
            ));
        }
    }
    Ok(out)
}

async fn create_form(app: &App, lang: Lang) -> AppResult<FormView> {
    let roles = [Role::Member, Role::Supervisor, Role::Dashboard, Role::Admin]
        .iter()
        .map(|r| {
            let label = if *r == Role::Member {
                lang.t("调解小组成员或组长", "Group member or leader")
                    .to_string()
            } else {
                labels::role(lang, *r).to_string()
            };
            (r.as_str().to_string(), label)
        })
        .collect();
    let mut f = FormView::new(
        "account",
        lang.t("新建账号", "New account"),
        "/admin/accounts".into(),
        lang.t("新建", "Create"),
    )
    .field(
        Field::new("login", lang.t("登录名", "Login"), Kind::Text)
            .required()
            .hint(lang.t(accounts::LOGIN_RULE_ZH, accounts::LOGIN_RULE_EN)),
    )
    .field(Field::new("name", lang.t("姓名", "Name"), Kind::Text).required())
    .field(Field::new("role", lang.t("角色", "Role"), Kind::Select).options(roles).required())
    .field(
        Field::new("member", lang.t("对应调解小组成员", "The group's member"), Kind::Select)
            .options(unlinked_members(app).await?)
            .hint(lang.t(
                "调解员和组长须选择；新成员请先在“系统管理”的调解小组中增加。组长权限随小组更换组长而变",
                "required for members and leaders; add a new member to the group first. Leader powers follow the group's leader",
            )),
    )
    .field(Field::new("organisation", lang.t("单位", "Organisation"), Kind::Text))
    .field(Field::new("phone", lang.t("手机号（可选，加密保存）", "Phone (optional, kept encrypted)"), Kind::Text));
    f.open = true;
    Ok(f)
}

fn kiosk_form(lang: Lang) -> FormView {
    FormView::new(
        "kiosk",
        lang.t("新建大屏登录凭据", "New wall-screen credential"),
        "/admin/kiosks".into(),
        lang.t("新建", "Create"),
    )
    .field(
        Field::new("name", lang.t("大屏名称", "Screen"), Kind::Text)
            .required()
            .hint(lang.t("如：指挥中心大屏", "e.g. the command centre's screen")),
    )
    .field(Field::new(
        "organisation",
        lang.t("所在单位", "Organisation"),
        Kind::Text,
    ))
}

pub(super) enum AdminFailed<'a> {
    None,
    Create(&'a FormData, AppError),
    Kiosk(&'a FormData, AppError),
}

pub(super) async fn admin_page_with(
    app: &App,
    signed: &Signed,
    failed: AdminFailed<'_>,
    issued: Option<(String, String, bool)>,
    flash: Option<String>,
) -> AppResult<Response> {
    let lang = signed.web.lang;
    let mut create = create_form(app, lang).await?;
    let mut kiosk = kiosk_form(lang);
    let mut status = StatusCode::OK;
    match failed {
        AdminFailed::None => {}
        AdminFailed::Create(d, e) => {
            create.refill(d, &e, lang);
            status = StatusCode::UNPROCESSABLE_ENTITY;
        }
        AdminFailed::Kiosk(d, e) => {
            kiosk.refill(d, &e, lang);
            kiosk.open = true;
            status = StatusCode::UNPROCESSABLE_ENTITY;
        }
    }
    let groups = app.directory.groups().await?;
    let now = app.now();
    let rows = accounts::list(app)
        .await?
        .into_iter()
        .map(|a| {
            let state = a
                .group_id
                .and_then(|g| groups.iter().find(|(id, _)| *id == g).map(|(_, s)| s));
            let in_group = match (state, a.member_id) {
                (Some(s), Some(m)) => s.members.contains_key(&m),
                _ => false,
            };
            let role = match (state, a.member_id) {
                (Some(s), Some(m)) if s.leader == Some(m) => labels::role(lang, Role::Leader),
                _ => labels::role(lang, a.role),
            };
            let locked = a.locked(now).is_some();
            let mut status = vec![];
            if a.disabled_at.is_some() {
                status.push(lang.t("已停用", "disabled"));
            }
            if locked {
                status.push(lang.t("已锁定", "locked"));
            }
            if a.is_group_account() && !in_group {
                status.push(lang.t("已不在小组", "left the group"));
            }
            if a.must_change {
                status.push(lang.t("待改初始密码", "one-time password"));
            }
            if a.totp_enabled {
                status.push(lang.t("动态验证码", "2FA"));
            }
            AccountRow {
                login: a.login.clone(),
                name: a.display_name.clone(),
                role: if a.kind == accounts::Kind::Kiosk {
                    lang.t("大屏", "Wall screen").to_string()
                } else {
                    role.to_string()
                },
                group: state.map(|s| s.name.clone()).unwrap_or_default(),
                status: status.join("、"),
                last: a
                    .last_sign_in_at
                    .as_deref()
                    .map(|t| {
                        format!(
                            "{} {}",
                            local(app, t),
                            a.last_sign_in_from.as_deref().unwrap_or("")
                        )
                    })
                    .unwrap_or_default(),
                disabled: a.disabled_at.is_some(),
                locked,
                totp: a.totp_enabled,
                kiosk: a.kind == accounts::Kind::Kiosk,
                id: a.id,
            }
        })
        .collect();
    let mut chrome = signed.chrome(lang.t("账号管理", "Accounts").into(), "admin");
    chrome.flash = flash;
    let mut r = render(&AdminAccountsPage {
        chrome,
        issued,
        create_form: create,
        kiosk_form: kiosk,
        rows,
    });
    *r.status_mut() = status;
    Ok(r)
}

pub async fn admin_page(
    State(app): State<App>,
    signed: Signed,
    Query(q): Query<AccountQuery>,
) -> Response {
    if let Some(r) = require_admin(&signed) {
        return r;
    }
    let flash = q.done.as_deref().map(|d| {
        match d {
            "disable" => signed.t(
                "账号已停用，其会话和令牌已失效。",
                "The account is disabled; its sessions and tokens ended.",
            ),
            "enable" => signed.t("账号已启用。", "The account is enabled."),
            "unlock" => signed.t("账号已解锁。", "The account is unlocked."),
            "totp-off" => signed.t(
                "该账号的动态验证码已停用。",
                "The account's second factor is off.",
            ),
            _ => signed.t("已保存。", "Saved."),
        }
        .to_string()
    });
    admin_page_with(&app, &signed, AdminFailed::None, None, flash)
        .await
        .unwrap_or_else(|e| signed.error(e))
}

pub async fn admin_create(
    State(app): State<App>,
    signed: Signed,
    Client(addr): Client,
    Form(form): Form<FormData>,
) -> Response {
    if let Some(r) = signed
        .csrf_rejection(&form)
        .or_else(|| require_admin(&signed))
    {
        return r;
    }
    let made = async {
        let role = Role::parse(form.get("role"))
            .filter(|r| *r != Role::System)
            .ok_or_else(|| super::desk::unprocessable("role", "请选择角色", "choose a role"))?;
        let member = match form.get("member").trim() {
            "" => None,
            m => {
                let (g, id) = m.split_once(':').unwrap_or(("", ""));
                let (Ok(g), Ok(id)) = (GroupId::parse(g), MemberId::parse(id)) else {
                    return Err(super::desk::unprocessable(
                        "member",
                        "请选择小组成员",
                        "choose a member",
                    ));
                };
                Some((g, id))
            }
        };
        let mut organisation = form.get("organisation").trim().to_string();
        if let Some((g, m)) = &member {
            let state = app.directory.group_state(g).await?;
            let found = state.as_ref().and_then(|s| s.members.get(m));
            let Some(found) = found else {
                return Err(super::desk::unprocessable(
                    "member",
                    "该成员不在调解小组中",
                    "not a member of the group",
                ));
            };
            if organisation.is_empty() {
                organisation = found.organisation.clone();
            }
        }
        let new = accounts::NewAccount {
            login: form.get("login").to_string(),
            display_name: form.get("name").to_string(),
            organisation,
            role,
            kind: accounts::Kind::Person,
            member,
            phone: Some(form.get("phone").to_string()),
            password: None,
        };
        accounts::create(&app, new, &signed.actor, &addr.0).await
    }
    .await;
    let r = match made {
        Ok((a, password)) => {
            admin_page_with(
                &app,
                &signed,
                AdminFailed::None,
                Some((a.login, password, false)),
                None,
            )
            .await
        }
        Err(e) if accounts::is_refusal(&e) => {
            admin_page_with(&app, &signed, AdminFailed::Create(&form, e), None, None).await
        }
        Err(e) => Err(e),
    };
    r.unwrap_or_else(|e| signed.error(e))
}

pub async fn admin_create_kiosk(
    State(app): State<App>,
    signed: Signed,
    Client(addr): Client,
    Form(form): Form<FormData>,
) -> Response {
    if let Some(r) = signed
        .csrf_rejection(&form)
        .or_else(|| require_admin(&signed))
    {
        return r;
    }
    let made = create_kiosk(
        &app,
        form.get("name"),
        form.get("organisation"),
        &signed.actor,
        &addr.0,
    )
    .await;
    let r = match made {
        Ok((name, key)) => {
            admin_page_with(
                &app,
                &signed,
                AdminFailed::None,
                Some((name, key, true)),
                None,
            )
            .await
        }
        Err(e) if accounts::is_refusal(&e) => {
            admin_page_with(&app, &signed, AdminFailed::Kiosk(&form, e), None, None).await
        }
        Err(e) => Err(e),
    };
    r.unwrap_or_else(|e| signed.error(e))
}

/// A wall screen's kiosk: an account of the dashboard role and its key (shown once).
pub async fn create_kiosk(
    app: &App,
    name: &str,
    organisation: &str,
    by: &crate::auth::Actor,
    address: &str,
) -> AppResult<(String, String)> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 60 {
        return Err(super::desk::unprocessable(
            "name",
            "请填写大屏名称（60字以内）",
            "name the screen (up to 60 characters)",
        ));
    }
    let login = accounts::new_kiosk_login();
    let (account, _) = accounts::create(
        app,
        accounts::NewAccount {
            login,
            display_name: name.to_string(),
            organisation: organisation.trim().to_string(),
            role: Role::Dashboard,
            kind: accounts::Kind::Kiosk,
            member: None,
            phone: None,
            password: None,
        },
        by,
        address,
    )
    .await?;
    let (_, key) = auth::create_account_token(&app.db, &account, "kiosk", None, app.now()).await?;
    Ok((name.to_string(), key))
}

pub async fn admin_act(
    State(app): State<App>,
    signed: Signed,
    Client(addr): Client,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<FormData>,
) -> Response {
    if let Some(r) = signed
        .csrf_rejection(&form)
        .or_else(|| require_admin(&signed))
    {
        return r;
    }
    let done = match action.as_str() {
        "reset" => match accounts::reset(&app, &id, &signed.actor, &addr.0).await {
            Ok(password) => {
                let login = accounts::by_id(&app, &id)
                    .await
                    .ok()
                    .flatten()
                    .map(|a| a.login)
                    .unwrap_or_default();
                return admin_page_with(
                    &app,
                    &signed,
                    AdminFailed::None,
                    Some((login, password, false)),
                    None,
                )
                .await
                .unwrap_or_else(|e| signed.error(e));
            }
            Err(e) => Err(e),
        },
        "disable" => accounts::set_disabled(&app, &id, true, &signed.actor, &addr.0)
            .await
            .map(|_| ()),
        "enable" => accounts::set_disabled(&app, &id, false, &signed.actor, &addr.0)
            .await
            .map(|_| ()),
        "unlock" => accounts::unlock(&app, &id, &signed.actor, &addr.0).await,
        "totp-off" => match accounts::by_id(&app, &id).await {
            Ok(Some(a)) => accounts::totp_remove(&app, &a, "", &signed.actor, &addr.0).await,
            Ok(None) => Err(AppError::not_found("account")),
            Err(e) => Err(e),
        },
        _ => Err(AppError::not_found("action")),
    };
    match done {
        Ok(()) => Redirect::to(&format!("/admin/accounts?done={action}")).into_response(),
        Err(e) => signed.error(e),
    }
}

// ---- a wall screen's sign-in ----

#[derive(Template)]
#[template(path = "kiosk.html")]
struct KioskPage {
    chrome: Chrome,
    error: Option<String>,
    login_csrf: String,
}

fn kiosk_form_page(web: &Web, error: Option<String>, status: StatusCode) -> Response {
    let secret = session::random_secret();
    let mut chrome = super::anonymous(web.lang, web.path.clone());
    chrome.title = web.lang.t("大屏登录", "Wall-screen sign-in").to_string();
    let mut r = render(&KioskPage {
        chrome,
        error,
        login_csrf: secret.clone(),
    });
    *r.status_mut() = status;
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LOGIN_CSRF_COOKIE, &secret, Some(1800), web.secure),
    );
    r
}

pub async fn kiosk_page(web: Web) -> Response {
    kiosk_form_page(&web, None, StatusCode::OK)
}

/// A wall screen signs in once with its key; its session is not ended by the 12-hour rule.
pub async fn kiosk_sign_in(
    State(app): State<App>,
    web: Web,
    Client(addr): Client,
    headers: HeaderMap,
    Form(form): Form<FormData>,
) -> Response {
    if let Err(e) = crate::edge::check_auth_failures(&app, &addr) {
        return super::error_page(web.lang, None, e);
    }
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !session::same_secret(form.get("_csrf"), &expected) {
        return kiosk_form_page(
            &web,
            Some(
                web.lang
                    .t(
                        "表单已过期，请重新输入",
                        "The form expired; please enter the key again",
                    )
                    .into(),
            ),
            StatusCode::FORBIDDEN,
        );
    }
    let key = form.get("key").trim();
    let hash = auth::hash_token(key);
    let found = async {
        if key.is_empty() || key.len() > 200 {
            return Ok(None);
        }
        let Some(actor) = app.tokens.actor_by_hash(hash.clone()).await? else {
            return Ok(None);
        };
        let Some(id) = actor.account else {
            return Ok(None);
        };
        Ok::<_, AppError>(
            accounts::by_id(&app, &id)
                .await?
                .filter(|a| a.kind == accounts::Kind::Kiosk),
        )
    }
    .await;
    let account = match found {
        Ok(Some(a)) => a,
        Ok(None) => {
            if let Some(e) = crate::edge::note_auth_failure(&app, &addr, "kiosk sign-in") {
                return super::error_page(web.lang, None, e);
            }
            return kiosk_form_page(
                &web,
                Some(
                    web.lang
                        .t(
                            "大屏凭据无效或已被吊销",
                            "The key is not valid or has been revoked",
                        )
                        .into(),
                ),
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(e) => return super::error_page(web.lang, None, e),
    };
    let holder = session::Holder::Account {
        id: &account.id,
        kiosk: true,
    };
    let (id, _) = match session::create(&app.db, holder, &addr.0, app.now()).await {
        Ok(s) => s,
        Err(e) => return super::error_page(web.lang, None, AppError::store(e)),
    };
    if let Err(e) = accounts::log(
        &app,
        &accounts::self_actor(&account),
        &account,
        "sign_in",
        Some("kiosk"),
        &addr.0,
    )
    .await
    {
        return super::error_page(web.lang, None, e);
    }
    super::signed_in(&web, &id, "/screen", 365 * 24 * 3600)
}
