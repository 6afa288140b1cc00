//! The crate layout's rules, checked on the manifests (`cargo metadata`): the application
//! knows no HTTP, the two edges do not depend on each other, and neither touches SQL.

use std::collections::BTreeMap;
use std::process::Command;

fn dependencies() -> BTreeMap<String, Vec<String>> {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().unwrap().to_string())
                .collect();
            (p["name"].as_str().unwrap().to_string(), deps)
        })
        .collect()
}

#[test]
fn the_layers_depend_only_downwards() {
    let deps = dependencies();
    let of = |name: &str| -> &Vec<String> {
        deps.get(name)
            .unwrap_or_else(|| panic!("no crate {name} in the workspace"))
    };
    let has = |name: &str, dep: &str| of(name).iter().any(|d| d == dep);
    // The domain is pure; the store knows nothing of the service.
    for dep in [
        "sqlx",
        "axum",
        "tokio",
        "tiaojie-projections",
        "tiaojie-app",
    ] {
        assert!(
            !has("tiaojie-events", dep),
            "tiaojie-events depends on {dep}"
        );
    }
    assert!(!has("tiaojie-projections", "tiaojie-app"));
    // The application knows no HTTP and no edge.
    for dep in [
        "axum",
        "axum-extra",
        "tower-http",
        "askama",
        "tiaojie-http",
        "tiaojie-web",
    ] {
        assert!(!has("tiaojie-app", dep), "tiaojie-app depends on {dep}");
    }
    // Neither edge depends on the other, and neither runs SQL of its own.
    assert!(!has("tiaojie-http", "tiaojie-web"));
    assert!(!has("tiaojie-web", "tiaojie-http"));
    for edge in ["tiaojie-http", "tiaojie-web"] {
        assert!(!has(edge, "sqlx"), "{edge} depends on sqlx");
        assert!(has(edge, "tiaojie-app"));
    }
    // The demo and the benchmarks stay out of the edges and the application.
    for name in ["tiaojie-app", "tiaojie-http", "tiaojie-web"] {
        assert!(
            !has(name, "tiaojie-devtools"),
            "{name} depends on the devtools"
        );
    }
}
