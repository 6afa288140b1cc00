//! The `tiaojie` binary, run as a process: help, readable errors, migrate, demo, status,
//! rebuild, audit verify (and its exit code after tampering), tokens, serve and SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The master key of the test stores (32 bytes, base64).
const TEST_KEY: &str = "dGlhb2ppZS10ZXN0LW1hc3Rlci1rZXktMzItYnl0ZXM=";

struct Dir(PathBuf);

impl Dir {
    fn new() -> Self {
        let p = std::env::temp_dir().join(format!("tiaojie-cli-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
    fn url(&self) -> String {
        format!("sqlite:{}/tiaojie.db", self.0.display())
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tiaojie(dir: &Dir, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tiaojie"))
        .args(args)
        .env("DATABASE_URL", dir.url())
        .env("TIAOJIE_MASTER_KEY", TEST_KEY)
        .env_remove("TIAOJIE_CONFIG")
        .current_dir(&dir.0)
        .output()
        .expect("run tiaojie")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn help_lists_the_commands() {
    let d = Dir::new();
    let o = tiaojie(&d, &["--help"]);
    assert!(o.status.success());
    let t = text(&o);
    for c in ["serve", "migrate", "demo", "projections", "audit", "token"] {
        assert!(t.contains(c), "{c} missing from --help: {t}");
    }
}

#[test]
fn logs_written_to_a_file_carry_no_colour_codes() {
    let d = Dir::new();
    let o = Command::new(env!("CARGO_BIN_EXE_tiaojie"))
        .args(["migrate"])
        .env("DATABASE_URL", d.url())
        .env("TIAOJIE_MASTER_KEY", TEST_KEY)
        .env("RUST_LOG", "info")
        .env_remove("TIAOJIE_CONFIG")
        .env_remove("TIAOJIE_LOG_FORMAT")
        .current_dir(&d.0)
        .output()
        .expect("run tiaojie");
    assert!(o.status.success(), "{}", text(&o));
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(log.contains("opening the store"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "a log that is not a terminal holds no escape codes: {log:?}"
    );
}

#[test]
fn a_terminal_gets_colours_unless_no_color_is_set() {
    // `script` (util-linux, in every Debian) runs the command on a pseudo-terminal.
    let d = Dir::new();
    let on_terminal = |no_color: Option<&str>| {
        let mut c = Command::new("script");
        c.args([
            "-qec",
            &format!("{} migrate", env!("CARGO_BIN_EXE_tiaojie")),
            "/dev/null",
        ])
        .env("DATABASE_URL", d.url())
        .env("TIAOJIE_MASTER_KEY", TEST_KEY)
        .env("RUST_LOG", "info")
        .env_remove("TIAOJIE_CONFIG")
        .env_remove("TIAOJIE_LOG_FORMAT")
        .env_remove("NO_COLOR")
        .current_dir(&d.0);
        if let Some(v) = no_color {
            c.env("NO_COLOR", v);
        }
        let o = c.output().expect("run script(1)");
        assert!(o.status.success(), "{}", text(&o));
        let t = text(&o);
        assert!(t.contains("opening the store"), "{t}");
        t.contains('\u{1b}')
    };
    assert!(on_terminal(None), "a terminal gets colours");
    assert!(!on_terminal(Some("1")), "NO_COLOR turns them off");
}

#[test]
fn errors_are_sentences_not_panics() {
    let d = Dir::new();
    let o = Command::new(env!("CARGO_BIN_EXE_tiaojie"))
        .args(["--database-url", "mysql://x", "migrate"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(t.contains("must start with sqlite: or postgres://"), "{t}");
    assert!(
        !t.contains("panicked") && !t.contains("stack backtrace"),
        "{t}"
    );

    std::fs::write(d.0.join("bad.toml"), "mediation_days = \"thirty\"\n").unwrap();
    let o = tiaojie(&d, &["--config", "bad.toml", "migrate"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("bad.toml is not valid"), "{}", text(&o));

    let o = tiaojie(&d, &["--reference", "missing.toml", "migrate"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("cannot read the reference file"),
        "{}",
        text(&o)
    );

    let o = Command::new(env!("CARGO_BIN_EXE_tiaojie"))
        .args([
            "--database-url",
            "postgres://nobody@127.0.0.1:1/none",
            "migrate",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(
        t.contains("could not open the store") && !t.contains("panicked"),
        "{t}"
    );
}

#[test]
fn demo_status_rebuild_and_verify() {
    let d = Dir::new();
    let o = tiaojie(&d, &["migrate"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = tiaojie(&d, &["demo"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("Demo loaded: 3 mediation groups"),
        "{}",
        text(&o)
    );
    let again = tiaojie(&d, &["demo"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again).contains("already holds"), "{}", text(&again));

    let o = tiaojie(&d, &["projections", "status"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("case_status") && text(&o).contains("up to date"),
        "{}",
        text(&o)
    );
    let o = tiaojie(&d, &["projections", "rebuild", "community_heat"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("community_heat: rebuilt from"),
        "{}",
        text(&o)
    );
    let o = tiaojie(&d, &["projections", "rebuild", "nonsense"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("no read model named"), "{}", text(&o));

    let o = tiaojie(&d, &["audit", "verify"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("The audit chain verifies"),
        "{}",
        text(&o)
    );

    // Tamper with a payload behind the triggers' back: verify names the position and fails.
    let db = d.0.join("tiaojie.db");
    let status = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sqlite3; c = sqlite3.connect('{}'); c.execute('DROP TRIGGER events_no_update'); \
             c.execute(\"UPDATE events SET payload = replace(payload, 'tj1:', 'tj1:A') WHERE rowid = (SELECT rowid FROM events WHERE event_type = 'SessionHeld' LIMIT 1)\"); c.commit()",
            db.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    let o = tiaojie(&d, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("First bad position"), "{}", text(&o));
}

#[test]
fn tokens_are_created_listed_and_revoked() {
    let d = Dir::new();
    let o = tiaojie(
        &d,
        &[
            "token",
            "create",
            "--role",
            "supervisor",
            "--name",
            "区委督查室 张三",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let secret = out
        .lines()
        .find(|l| l.starts_with("tj_"))
        .expect("the secret is printed once")
        .to_string();
    let id = out.split_whitespace().nth(1).unwrap().to_string();
    let o = tiaojie(&d, &["token", "list"]);
    let listed = text(&o);
    assert!(
        listed.contains(&id) && listed.contains("supervisor") && !listed.contains(&secret),
        "{listed}"
    );
    let o = tiaojie(&d, &["token", "create", "--role", "member", "--name", "x"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("needs --member-of"), "{}", text(&o));
    let o = tiaojie(&d, &["token", "create", "--role", "king", "--name", "x"]);
    assert_eq!(o.status.code(), Some(1));
    let o = tiaojie(&d, &["token", "revoke", &id]);
    assert!(o.status.success(), "{}", text(&o));
    let o = tiaojie(&d, &["token", "revoke", &id]);
    assert_eq!(o.status.code(), Some(1));
}

#[tokio::test]
async fn serve_answers_and_stops_gracefully_on_sigterm() {
    let d = Dir::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tiaojie"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", d.url())
        .env("TIAOJIE_MASTER_KEY", TEST_KEY)
        .current_dir(&d.0)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut address = None;
    let mut admin_file = None;
    for _ in 0..10 {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(rest) = line.split("listening on http://").nth(1) {
            address = rest.split_whitespace().next().map(str::to_string);
            break;
        }
        if let Some(rest) = line.strip_prefix("First administrator's account written to ") {
            admin_file = rest.split(':').next().map(str::to_string);
        }
    }
    let address = address.expect("serve prints its address");
    // An empty store gets its first administrator: an account with a one-time password,
    // in a file only the operator can read.
    let admin_file = admin_file.expect("the first administrator's account is announced");
    let text_of_file = std::fs::read_to_string(d.0.join(&admin_file)).unwrap();
    assert!(text_of_file.contains("login\tadmin"), "{text_of_file}");
    let password = text_of_file
        .lines()
        .find_map(|l| l.strip_prefix("password\t"))
        .expect("a one-time password")
        .to_string();
    assert!(password.len() >= 12);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.0.join(&admin_file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the file is private");
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let health = client
        .get(format!("http://{address}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // The administrator signs in with it and is sent to choose a password.
    let login = client
        .get(format!("http://{address}/login"))
        .send()
        .await
        .unwrap();
    let cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("; ");
    let page = login.text().await.unwrap();
    let csrf = page
        .split("name=\"_csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let signed = client
        .post(format!("http://{address}/login"))
        .header("cookie", cookie)
        .form(&[
            ("_csrf", csrf.as_str()),
            ("login", "admin"),
            ("password", password.as_str()),
            ("next", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303);
    assert_eq!(
        signed.headers()["location"].to_str().unwrap(),
        "/account?must=password"
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "a graceful shutdown exits 0: {exit:?}");
    // One administrator, whose sign-in is on record.
    let o = tiaojie(&d, &["account", "list"]);
    let admins: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("admin"))
        .map(str::to_string)
        .collect();
    assert_eq!(admins.len(), 1, "{}", text(&o));
    assert!(admins[0].contains("one-time-pw"), "{admins:?}");
}

/// `tiaojie account …` from the shell: create (a member added to the group's roster when
/// not on it yet), list, reset, disable, enable, and readable refusals.
#[tokio::test]
async fn accounts_are_managed_from_the_shell() {
    let d = Dir::new();
    let o = tiaojie(&d, &["demo"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = tiaojie(
        &d,
        &[
            "account",
            "create",
            "--login",
            "wangfang",
            "--name",
            "王芳",
            "--role",
            "member",
            "--group",
            "南城路片区矛盾调解小组",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        out.contains("王芳 is added to 南城路片区矛盾调解小组"),
        "{out}"
    );
    let password = out.lines().last().unwrap().trim().to_string();
    assert_eq!(password.len(), 14, "{out}");
    // A leader's account only for the group's leader.
    let o = tiaojie(
        &d,
        &[
            "account",
            "create",
            "--login",
            "wf2",
            "--name",
            "王芳",
            "--role",
            "leader",
            "--group",
            "南城路片区矛盾调解小组",
        ],
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("is not the leader"), "{}", text(&o));
    for (args, says) in [
        (
            vec![
                "account",
                "create",
                "--login",
                "王芳",
                "--name",
                "王芳",
                "--role",
                "supervisor",
            ],
            "login",
        ),
        (
            vec![
                "account", "create", "--login", "wangfang", "--name", "x", "--role", "admin",
            ],
            "taken",
        ),
        (
            vec![
                "account", "create", "--login", "xx1", "--name", "x", "--role", "member",
            ],
            "--group",
        ),
        (
            vec![
                "account", "create", "--login", "xx1", "--name", "x", "--role", "chief",
            ],
            "role",
        ),
        (vec!["account", "reset", "nobody"], "no account"),
    ] {
        let o = tiaojie(&d, &args);
        assert!(!o.status.success(), "{args:?} must fail");
        assert!(text(&o).contains(says), "{args:?}: {}", text(&o));
        assert!(!text(&o).contains("panicked"), "{}", text(&o));
    }
    let o = tiaojie(&d, &["account", "list"]);
    let list = String::from_utf8_lossy(&o.stdout).to_string();
    let line = list
        .lines()
        .find(|l| l.starts_with("wangfang"))
        .unwrap_or_default()
        .to_string();
    assert!(
        line.contains("member") && line.contains("one-time-pw") && line.contains("南城路"),
        "{list}"
    );
    let o = tiaojie(&d, &["account", "disable", "wangfang"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = tiaojie(&d, &["account", "list"]);
    assert!(String::from_utf8_lossy(&o.stdout)
        .lines()
        .any(|l| l.starts_with("wangfang") && l.contains("disabled")));
    let o = tiaojie(&d, &["account", "enable", "wangfang"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = tiaojie(&d, &["account", "reset", "wangfang"]);
    assert!(o.status.success(), "{}", text(&o));
    let again = String::from_utf8_lossy(&o.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string();
    assert_ne!(again, password);
    // A token of the account, from the shell.
    let o = tiaojie(
        &d,
        &[
            "token",
            "create",
            "--account",
            "wangfang",
            "--name",
            "script",
            "--days",
            "30",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout)
        .lines()
        .last()
        .unwrap()
        .starts_with("tj_"));
}

#[tokio::test]
async fn logs_hold_no_personal_data_or_free_text() {
    let d = Dir::new();
    let log_path = d.0.join("serve.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tiaojie"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--demo",
            "--log-format",
            "json",
        ])
        .env("DATABASE_URL", d.url())
        .env("TIAOJIE_MASTER_KEY", TEST_KEY)
        .env("RUST_LOG", "debug")
        .current_dir(&d.0)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut address = String::new();
    while let Some(Ok(line)) = lines.next() {
        if let Some(rest) = line.split("listening on http://").nth(1) {
            address = rest.split_whitespace().next().unwrap().to_string();
            break;
        }
    }
    // A supervisor reads everything there is to read, revealing party data with a reason.
    let o = tiaojie(
        &d,
        &["token", "create", "--role", "supervisor", "--name", "督查"],
    );
    let supervisor = String::from_utf8_lossy(&o.stdout)
        .lines()
        .find(|l| l.starts_with("tj_"))
        .unwrap()
        .to_string();
    let client = reqwest::Client::new();
    let base = format!("http://{address}");
    // The demo is loaded before the service listens; its read models follow a moment
    // later. Wait until readiness says every event is in the log and in every read model.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r: serde_json::Value = client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let caught_up = r["unsequenced_events"] == 0
            && r["log_head"].as_i64().is_some_and(|h| h > 0)
            && r["projections"]
                .as_array()
                .is_some_and(|p| p.iter().all(|p| p["lag"] == 0));
        if caught_up {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never caught up: {r}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let cases: serde_json::Value = client
        .get(format!("{base}/api/v1/cases?limit=100"))
        .bearer_auth(&supervisor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = cases["items"].as_array().unwrap();
    assert!(items.len() > 30);
    for c in items.iter().take(10) {
        let id = c["case_id"].as_str().unwrap();
        for path in [
            format!("/api/v1/cases/{id}"),
            format!("/api/v1/cases/{id}/history"),
            format!("/api/v1/cases/{id}/parties?reveal_reason=core"),
        ] {
            let r = client
                .get(format!("{base}{path}"))
                .bearer_auth(&supervisor)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{path}: {}", r.status());
        }
    }
    let r = client
        .get(format!(
            "{base}/api/v1/parties?phone=13895412345&reason=%E6%A0%B8%E6%9F%A5%E7%9D%A3%E5%8A%9E"
        ))
        .bearer_auth(&supervisor)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(logs.lines().count() > 100, "debug logs were captured");
    for (name, phone) in tiaojie::demo::RESIDENTS {
        assert!(!logs.contains(name), "{name} is in the logs");
        assert!(!logs.contains(phone), "{phone} is in the logs");
    }
    for text in ["分期缴纳", "居民对电梯加装", "各方陈述意见", "民警到场劝解"]
    {
        assert!(!logs.contains(text), "free text {text:?} is in the logs");
    }
}
