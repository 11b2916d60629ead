//! The files in `systemd/`: the unit passes `systemd-analyze verify` with no complaint and
//! keeps its hardening score; the example environment and config files name every setting
//! and are accepted by `livechatd check-config` once uncommented.
//!
//! Needs `systemd-analyze` (`.ci/deps-service.sh` installs it) and the daemon binary
//! (`LIVECHATD_BIN`, else `target/debug/livechatd`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The highest `systemd-analyze security` exposure accepted (docs/service.md has the table).
const MAX_EXPOSURE: f64 = 1.5;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

fn bin() -> PathBuf {
    let p = match std::env::var_os("LIVECHATD_BIN") {
        Some(p) => PathBuf::from(p),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo().join("target"))
            .join("debug/livechatd"),
    };
    std::fs::canonicalize(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (cargo build -p livechatd, or set LIVECHATD_BIN)",
            p.display()
        )
    })
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("livechat-systemd-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

fn systemd_analyze(args: &[&str]) -> Output {
    Command::new("systemd-analyze")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("systemd-analyze: {e}; install systemd (bash .ci/deps-service.sh)")
        })
}

/// The shipped unit with ExecStart pointing at the built binary (the .deb puts it at
/// /usr/bin/livechatd; verify checks that the program exists), plus `extra` lines.
fn unit_copy(dir: &Path, extra: &str) -> PathBuf {
    let unit = read("systemd/livechatd.service");
    let exec = "ExecStart=/usr/bin/livechatd\n";
    assert_eq!(
        unit.matches(exec).count(),
        1,
        "one ExecStart=/usr/bin/livechatd"
    );
    let mut copy = unit.replace(exec, &format!("ExecStart={}\n", bin().display()));
    copy = copy.replace("[Service]\n", &format!("[Service]\n{extra}"));
    let path = dir.join("livechatd.service");
    std::fs::write(&path, copy).expect("write unit");
    path
}

fn complaints(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    let dir = scratch("verify");
    let unit = unit_copy(&dir, "");
    let out = systemd_analyze(&["verify", unit.to_str().expect("utf8")]);
    let said = complaints(&out);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify complained:\n{said}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn verify_does_complain_about_a_broken_unit() {
    // The check above is only worth something if verify speaks up on a mistake.
    let dir = scratch("broken");
    let unit = unit_copy(&dir, "ProtectSystm=strict\n");
    let out = systemd_analyze(&["verify", unit.to_str().expect("utf8")]);
    let said = complaints(&out);
    assert!(said.contains("ProtectSystm"), "no complaint: {said:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_unit_keeps_its_hardening_score() {
    let dir = scratch("security");
    let unit = unit_copy(&dir, "");
    let out = systemd_analyze(&["security", "--offline=true", unit.to_str().expect("utf8")]);
    let said = complaints(&out);
    let score: f64 = said
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for livechatd.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no overall exposure in:\n{said}"));
    assert!(
        score <= MAX_EXPOSURE,
        "exposure {score} > {MAX_EXPOSURE}; update docs/service.md if intended:\n{said}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_unit_has_the_service_essentials() {
    let unit = read("systemd/livechatd.service");
    for line in [
        "Type=notify",
        "NotifyAccess=main",
        "WatchdogSec=",
        "Restart=on-failure",
        "EnvironmentFile=-/etc/livechat/livechatd.env",
        "ExecStart=/usr/bin/livechatd",
        "DynamicUser=yes",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=\n",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "MemoryMax=",
        "SystemCallFilter=@system-service",
        "SystemCallArchitectures=native",
    ] {
        assert!(unit.contains(line), "missing {line:?}");
    }
}

/// Every setting as `check-config` lists it: (key, environment variable).
fn settings() -> Vec<(String, String)> {
    let out = Command::new(bin())
        .arg("check-config")
        .env("LIVECHAT_CONFIG", "/nonexistent/livechatd.toml")
        .output()
        .expect("check-config");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).expect("utf8");
    let list: Vec<_> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let key = l.split_whitespace().next()?.to_owned();
            let env = l.split("# ").nth(1)?.split(',').next()?.to_owned();
            Some((key, env))
        })
        .collect();
    assert!(list.len() >= 16, "{text}");
    list
}

/// Lines `#KEY...` made live.
fn uncomment(text: &str, is_setting: impl Fn(&str) -> bool) -> String {
    text.lines()
        .map(|l| {
            let bare = l.trim_start_matches('#').trim_start();
            if l.starts_with('#') && is_setting(bare) {
                bare
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_example_files_name_every_setting_and_parse() {
    let settings = settings();
    let env = read("systemd/livechatd.env");
    let toml = read("systemd/livechatd.toml");
    for (key, var) in &settings {
        assert!(
            env.contains(&format!("#{var}=")),
            "{var} missing from livechatd.env"
        );
        assert!(
            toml.contains(&format!("# {key} = ")),
            "{key} missing from livechatd.toml"
        );
    }
    assert!(env.contains("#LIVECHAT_CONFIG="));

    // Every example value is valid: the uncommented TOML file...
    let dir = scratch("examples");
    let live = uncomment(&toml, |l| {
        settings
            .iter()
            .any(|(k, _)| l.starts_with(&format!("{k} = ")))
    });
    let path = dir.join("livechatd.toml");
    std::fs::write(&path, &live).expect("write");
    let out = Command::new(bin())
        .arg("check-config")
        .env("LIVECHAT_CONFIG", &path)
        .output()
        .expect("check-config");
    assert!(out.status.success(), "livechatd.toml examples: {out:?}");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("config file"), "{shown}");
    assert!(
        !shown.contains("change-me"),
        "the secret is masked: {shown}"
    );

    // ...and the uncommented environment file.
    let live = uncomment(&env, |l| l.starts_with("LIVECHAT_"));
    let mut cmd = Command::new(bin());
    cmd.arg("check-config");
    for line in live.lines().filter(|l| l.starts_with("LIVECHAT_")) {
        let (k, v) = line.split_once('=').expect("KEY=VALUE");
        cmd.env(k, v);
    }
    cmd.env("LIVECHAT_CONFIG", "/nonexistent/livechatd.toml");
    let out = cmd.output().expect("check-config");
    assert!(out.status.success(), "livechatd.env examples: {out:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
