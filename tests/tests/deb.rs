//! The .deb packages (daemon/Cargo.toml `[package.metadata.deb]`, built by cross/deb.sh):
//! control data, file list, conffiles, and the packaged binary itself (architecture, libraries
//! against Depends, and that it runs, under qemu-user for ARM).
//!
//! Needs built packages: `LIVECHAT_DEBS` = paths of .deb files (space separated) or a
//! directory holding them. .ci/arm.sh builds them and runs this with `--include-ignored`:
//!
//!     bash cross/build.sh && cargo build --release -p livechatd && bash cross/deb.sh
//!     LIVECHAT_DEBS=target/debian cargo test -p livechat-tests --test deb -- --include-ignored

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The packages to check, from `LIVECHAT_DEBS`.
fn debs() -> Vec<PathBuf> {
    let spec = std::env::var("LIVECHAT_DEBS").expect(
        "LIVECHAT_DEBS: the .deb files to check (or their directory); cross/deb.sh builds them",
    );
    let mut out = Vec::new();
    for word in spec.split_whitespace() {
        let p = PathBuf::from(word);
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(&p)
                .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "deb"))
                .collect();
            found.sort();
            out.extend(found);
        } else {
            out.push(p);
        }
    }
    assert!(!out.is_empty(), "LIVECHAT_DEBS={spec:?} names no .deb");
    out
}

/// Runs `program args`, failing the test unless it succeeds; returns stdout.
fn output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

/// One control field (`dpkg-deb -f`), empty when absent.
fn field(deb: &str, name: &str) -> String {
    output("dpkg-deb", &["-f", deb, name]).trim().to_owned()
}

/// What each Debian architecture we package means for the binary.
struct Arch {
    /// `readelf -h` Machine.
    machine: &'static str,
    /// The emulator that runs it here, if it is foreign.
    runner: Option<&'static str>,
}

fn arch(name: &str) -> Arch {
    match name {
        "arm64" => Arch {
            machine: "AArch64",
            runner: Some("qemu-aarch64-static -L /usr/aarch64-linux-gnu"),
        },
        "armhf" => Arch {
            machine: "ARM",
            runner: Some("qemu-arm-static -L /usr/arm-linux-gnueabihf"),
        },
        "amd64" => Arch {
            machine: "Advanced Micro Devices X86-64",
            runner: None,
        },
        other => panic!("unexpected Architecture {other:?}: packages are arm64, armhf, amd64"),
    }
}

/// `2.34` -> `(2, 34)`, for comparing glibc versions.
fn version_key(v: &str) -> Vec<u32> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

/// Depends as `package -> version constraint` (empty string when unversioned).
fn depends(deb: &str) -> BTreeMap<String, String> {
    field(deb, "Depends")
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| match d.split_once('(') {
            Some((name, rest)) => (
                name.trim().to_owned(),
                rest.trim_end_matches(')').trim().to_owned(),
            ),
            None => (d.to_owned(), String::new()),
        })
        .collect()
}

/// Checks the packaged binary: machine, libraries against Depends, and that it runs.
fn check_binary(deb: &str, arch_name: &str, bin: &Path) {
    let a = arch(arch_name);
    let bin_s = bin.to_str().expect("utf-8 path");
    let header = output("readelf", &["-h", bin_s]);
    assert!(
        header
            .lines()
            .any(|l| l.trim_start().starts_with("Machine:") && l.trim_end().ends_with(a.machine)),
        "{deb}: Architecture {arch_name} but the binary's ELF header says:\n{header}"
    );
    if arch_name == "armhf" {
        let attrs = output("readelf", &["-A", bin_s]);
        assert!(
            attrs.contains("Tag_ABI_VFP_args: VFP registers"),
            "{deb}: an armhf binary passes floats in VFP registers (hard float): {attrs}"
        );
    }
    let dynamic = output("readelf", &["-d", bin_s]);
    let needed: Vec<String> = dynamic
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1))
        .map(|l| l.trim_end_matches(']').to_owned())
        .collect();
    let deps = depends(deb);
    assert!(
        !field(deb, "Depends").contains('$'),
        "{deb}: Depends must be explicit, not $auto"
    );
    if needed.is_empty() {
        assert!(
            deps.is_empty(),
            "{deb}: a static binary needs no libraries, yet Depends is {deps:?}"
        );
    }
    for lib in &needed {
        match lib.as_str() {
            "libc.so.6" | "libm.so.6" => {
                let symbols = output("readelf", &["-V", "-W", bin_s]);
                let newest = symbols
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                    .filter_map(|w| w.strip_prefix("GLIBC_"))
                    .filter(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.'))
                    .max_by_key(|v| version_key(v))
                    .unwrap_or("0")
                    .to_owned();
                let declared = deps
                    .get("libc6")
                    .unwrap_or_else(|| panic!("{deb}: NEEDED {lib} but no libc6 in {deps:?}"));
                let min = declared
                    .strip_prefix(">=")
                    .map(str::trim)
                    .unwrap_or_else(|| {
                        panic!("{deb}: libc6 needs a (>= VERSION), got {declared:?}")
                    });
                assert!(
                    version_key(min) >= version_key(&newest),
                    "{deb}: the binary uses GLIBC_{newest} symbols but Depends says libc6 \
                     (>= {min})"
                );
            }
            "libgcc_s.so.1" => assert!(
                deps.contains_key("libgcc-s1"),
                "{deb}: NEEDED libgcc_s.so.1 but Depends {deps:?} lacks libgcc-s1"
            ),
            other => panic!("{deb}: unexpected NEEDED library {other} (Depends {deps:?})"),
        }
    }

    let version = match a.runner {
        Some(r) => {
            let mut words: Vec<&str> = r.split_whitespace().collect();
            let program = words.remove(0);
            words.extend([bin_s, "--version"]);
            output(program, &words)
        }
        None => output(bin_s, &["--version"]),
    };
    let name = bin
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a file name");
    assert_eq!(
        version.trim(),
        format!("{name} {}", env!("CARGO_PKG_VERSION")),
        "{deb}: the packaged binary runs and says its version"
    );
}

fn check(deb: &Path) {
    let deb_s = deb.to_str().expect("utf-8 path");
    let arch_name = field(deb_s, "Architecture");
    assert_eq!(field(deb_s, "Package"), "livechatd", "{deb_s}: Package");
    assert_eq!(
        field(deb_s, "Version"),
        format!("{}-1", env!("CARGO_PKG_VERSION")),
        "{deb_s}: Version is the workspace version, Debian revision 1"
    );
    let name = deb.file_name().and_then(|n| n.to_str()).unwrap_or("");
    assert!(
        name.ends_with(&format!("_{arch_name}.deb")),
        "{deb_s}: Architecture {arch_name} does not match the file name"
    );
    for f in ["Maintainer", "Description", "Section", "Priority"] {
        assert!(!field(deb_s, f).is_empty(), "{deb_s}: {f} is empty");
    }

    // The file list: path -> mode string and owner.
    let listing = output("dpkg-deb", &["-c", deb_s]);
    let files: BTreeMap<String, (String, String)> = listing
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols.len() >= 6).then(|| {
                (
                    cols[5].trim_start_matches('.').to_owned(),
                    (cols[0].to_owned(), cols[1].to_owned()),
                )
            })
        })
        .collect();
    for (path, mode) in [
        ("/usr/bin/livechatd", "-rwxr-xr-x"),
        ("/usr/bin/lcadmin", "-rwxr-xr-x"),
        ("/usr/bin/lctrace", "-rwxr-xr-x"),
        ("/lib/systemd/system/livechatd.service", "-rw-r--r--"),
        // systemd reads it as root; it is where LIVECHAT_SECRET goes.
        ("/etc/livechat/livechatd.env", "-rw-------"),
        // read by the daemon as the (dynamic) service user.
        ("/etc/livechat/livechatd.toml", "-rw-r--r--"),
    ] {
        let (m, owner) = files
            .get(path)
            .unwrap_or_else(|| panic!("{deb_s}: {path} is not in the package:\n{listing}"));
        assert_eq!(m, mode, "{deb_s}: mode of {path}");
        assert!(
            owner == "root/root" || owner == "0/0",
            "{deb_s}: owner of {path} is {owner}, not root"
        );
    }
    assert!(
        files.keys().all(|p| p.ends_with('/')
            || p.starts_with("/usr/")
            || p.starts_with("/lib/systemd/system/")
            || p.starts_with("/etc/livechat/")),
        "{deb_s}: files outside /usr, /lib/systemd/system and /etc/livechat:\n{listing}"
    );

    // Conffiles, and no maintainer scripts: the unit uses DynamicUser=, so there is no user
    // to create (if that changes, the package needs a postinst creating it).
    let info = output("dpkg-deb", &["-I", deb_s]);
    let conffiles = output("dpkg-deb", &["-I", deb_s, "conffiles"]);
    let mut conf: Vec<&str> = conffiles.lines().map(str::trim).collect();
    conf.sort_unstable();
    assert_eq!(
        conf,
        [
            "/etc/livechat/livechatd.env",
            "/etc/livechat/livechatd.toml"
        ],
        "{deb_s}: conffiles"
    );
    let unit = std::fs::read_to_string(repo_file("systemd/livechatd.service"))
        .expect("systemd/livechatd.service");
    assert!(
        unit.lines().any(|l| l.trim() == "DynamicUser=yes"),
        "the unit no longer says DynamicUser=yes: the package then needs a postinst that \
         creates the service user"
    );
    for script in ["preinst", "postinst", "prerm", "postrm"] {
        assert!(
            !info.contains(script),
            "{deb_s}: unexpected maintainer script {script}:\n{info}"
        );
    }

    // The packaged files are the repository's.
    let dir = std::env::temp_dir().join(format!(
        "livechat-deb-{}-{arch_name}-{}",
        std::process::id(),
        name.len()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    output("dpkg-deb", &["-x", deb_s, dir.to_str().expect("utf-8")]);
    for (inside, repo) in [
        (
            "lib/systemd/system/livechatd.service",
            "systemd/livechatd.service",
        ),
        ("etc/livechat/livechatd.env", "systemd/livechatd.env"),
        ("etc/livechat/livechatd.toml", "systemd/livechatd.toml"),
    ] {
        assert_eq!(
            std::fs::read(dir.join(inside)).expect("packaged file"),
            std::fs::read(repo_file(repo)).expect("repository file"),
            "{deb_s}: /{inside} differs from {repo}"
        );
    }
    assert!(
        unit.lines()
            .any(|l| l.trim() == "ExecStart=/usr/bin/livechatd"),
        "the unit starts /usr/bin/livechatd, where the package puts it"
    );
    for bin in ["livechatd", "lcadmin", "lctrace"] {
        check_binary(deb_s, &arch_name, &dir.join("usr/bin").join(bin));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs built packages in LIVECHAT_DEBS (cross/deb.sh); .ci/arm.sh runs it"]
fn packages_have_the_right_control_data_files_and_binary() {
    let debs = debs();
    for deb in &debs {
        check(deb);
        eprintln!("ok: {}", deb.display());
    }
    let arches: Vec<String> = debs
        .iter()
        .map(|d| field(d.to_str().expect("utf-8"), "Architecture"))
        .collect();
    for want in ["arm64", "armhf"] {
        assert!(
            arches.iter().any(|a| a == want),
            "no {want} package among {debs:?}"
        );
    }
}
