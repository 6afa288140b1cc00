//! `tiaojie account create|reset|disable|enable|unlock|list`: accounts from the shell, with
//! the same rules as the administrators' page. Refusals are sentences, not backtraces.

use anyhow::bail;
use tiaojie_events::group::{AddMember, GroupCommand, Member, OrgRole};
use tiaojie_events::metadata::Role;
use tiaojie_events::{GroupId, MemberId};

use crate::accounts::{self, Account, NewAccount};
use crate::app::App;
use crate::app_error::AppError;
use crate::auth::Actor;
use crate::commands::{self, RequestMeta};
use crate::config::AccountCommand;

fn sentence(e: AppError) -> anyhow::Error {
    let field = e
        .fields
        .first()
        .map(|(f, _)| format!(" (--{f})"))
        .unwrap_or_default();
    anyhow::anyhow!("{}{field}. {}", e.title, e.detail_zh)
}

async fn find(app: &App, login: &str) -> anyhow::Result<Account> {
    match accounts::by_login(app, login).await.map_err(sentence)? {
        Some(a) => Ok(a),
        None => bail!("there is no account with the login {login:?} (see `tiaojie account list`)"),
    }
}

/// The group named by its id or its name.
async fn group(app: &App, g: &str) -> anyhow::Result<GroupId> {
    let groups = app.directory.groups_now().await?;
    if let Ok(id) = GroupId::parse(g) {
        if groups.iter().any(|(x, _)| *x == id) {
            return Ok(id);
        }
    }
    let named: Vec<_> = groups.iter().filter(|(_, s)| s.name == g.trim()).collect();
    match named.as_slice() {
        [(id, _)] => Ok(*id),
        [] => bail!(
            "there is no mediation group {g:?}; the groups are: {}",
            groups
                .iter()
                .map(|(id, s)| format!("{} ({id})", s.name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => bail!("several groups are named {g:?}; give the group's id"),
    }
}

pub async fn run(app: &App, cmd: AccountCommand) -> anyhow::Result<i32> {
    let by = Actor::system("tiaojie account");
    let here = "cli";
    match cmd {
        AccountCommand::Create {
            login,
            name,
            role,
            group: g,
            organisation,
            org_role,
        } => {
            let role = match Role::parse(&role) {
                Some(Role::System) | None => bail!(
                    "the role must be one of member, leader, supervisor, dashboard, admin (got {role:?})"
                ),
                Some(r) => r,
            };
            let member = match (role, g) {
                (Role::Member | Role::Leader, None) => {
                    bail!(
                        "a {} account needs --group (the mediation group's id or name)",
                        role.as_str()
                    )
                }
                (Role::Member | Role::Leader, Some(g)) => {
                    let gid = group(app, &g).await?;
                    let state = app.directory.group_state(&gid).await?.unwrap_or_default();
                    let found: Vec<&Member> = state
                        .members
                        .values()
                        .filter(|m| m.name == name.trim())
                        .collect();
                    let member = match found.as_slice() {
                        [m] => (*m).clone(),
                        [] if role == Role::Leader => bail!(
                            "{name} is not on the roster of {}; a leader is made by the group (add the member, then change the leader on the administration page)",
                            state.name
                        ),
                        [] => {
                            // Not on the roster yet: added to the group, as on the page.
                            let org_role = OrgRole::parse(&org_role).ok_or_else(|| anyhow::anyhow!("--org-role must be one of street_office, judicial, police, residents_committee, property_company, enterprise (got {org_role:?})"))?;
                            let m = Member {
                                member_id: MemberId::new(),
                                name: name.trim().to_string(),
                                org_role,
                                organisation: organisation
                                    .clone()
                                    .unwrap_or_else(|| state.street_office.clone()),
                            };
                            commands::group_command(
                                app,
                                &Actor {
                                    role: Role::Admin,
                                    ..by.clone()
                                },
                                &RequestMeta::new_request(),
                                &gid,
                                GroupCommand::AddMember(AddMember { member: m.clone() }),
                                None,
                            )
                            .await
                            .map_err(sentence)?;
                            println!("{} is added to {} as a member.", m.name, state.name);
                            m
                        }
                        _ => bail!("several members of {} are named {name}", state.name),
                    };
                    if role == Role::Leader && state.leader != Some(member.member_id) {
                        bail!(
                            "{name} is not the leader of {}; leader powers follow the group's leader (change the leader first, or create a member account)",
                            state.name
                        );
                    }
                    Some((gid, member))
                }
                (_, Some(_)) => bail!("--group is only for member and leader accounts"),
                (_, None) => None,
            };
            let new = NewAccount {
                login,
                display_name: name.clone(),
                organisation: organisation
                    .or_else(|| member.as_ref().map(|(_, m)| m.organisation.clone()))
                    .unwrap_or_default(),
                role,
                kind: accounts::Kind::Person,
                member: member.as_ref().map(|(g, m)| (*g, m.member_id)),
                phone: None,
                password: None,
            };
            let (a, password) = accounts::create(app, new, &by, here)
                .await
                .map_err(sentence)?;
            println!(
                "Account {} for {} ({}) is created. Its one-time password, shown only this once, must be changed at the first sign-in:",
                a.login, a.display_name, role.as_str()
            );
            println!("{password}");
        }
        AccountCommand::Reset { login } => {
            let a = find(app, &login).await?;
            let password = accounts::reset(app, &a.id, &by, here)
                .await
                .map_err(sentence)?;
            println!("Account {} has a new one-time password (shown only this once; to be changed at the next sign-in); its sessions ended:", a.login);
            println!("{password}");
        }
        AccountCommand::Disable { login } => {
            let a = find(app, &login).await?;
            accounts::set_disabled(app, &a.id, true, &by, here)
                .await
                .map_err(sentence)?;
            println!(
                "Account {} is disabled: its sessions ended and its tokens are revoked.",
                a.login
            );
        }
        AccountCommand::Enable { login } => {
            let a = find(app, &login).await?;
            accounts::set_disabled(app, &a.id, false, &by, here)
                .await
                .map_err(sentence)?;
            println!("Account {} is enabled.", a.login);
        }
        AccountCommand::Unlock { login } => {
            let a = find(app, &login).await?;
            accounts::unlock(app, &a.id, &by, here)
                .await
                .map_err(sentence)?;
            println!("Account {} is unlocked.", a.login);
        }
        AccountCommand::List => {
            let groups = app.directory.groups().await?;
            let now = app.now();
            println!(
                "{:<24} {:<10} {:<20} {:<26} {:<20} name",
                "login", "role", "state", "group", "last sign-in"
            );
            for a in accounts::list(app).await.map_err(sentence)? {
                let state = a
                    .group_id
                    .and_then(|g| groups.iter().find(|(x, _)| *x == g));
                let role = match (state, a.member_id) {
                    (Some((_, s)), Some(m)) if s.leader == Some(m) => "leader",
                    _ if a.kind == accounts::Kind::Kiosk => "kiosk",
                    _ => a.role.as_str(),
                };
                let mut st = vec![];
                if a.disabled_at.is_some() {
                    st.push("disabled");
                }
                if a.locked(now).is_some() {
                    st.push("locked");
                }
                if let (Some((_, s)), Some(m)) = (state, a.member_id) {
                    if !s.members.contains_key(&m) {
                        st.push("left-group");
                    }
                }
                if a.must_change {
                    st.push("one-time-pw");
                }
                if st.is_empty() {
                    st.push("active");
                }
                println!(
                    "{:<24} {:<10} {:<20} {:<26} {:<20} {}",
                    a.login,
                    role,
                    st.join(","),
                    state.map(|(_, s)| s.name.as_str()).unwrap_or("-"),
                    a.last_sign_in_at.as_deref().unwrap_or("-"),
                    a.display_name
                );
            }
        }
    }
    Ok(0)
}
