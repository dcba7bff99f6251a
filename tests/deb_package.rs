//! The Debian package (README, "Install the Debian package"), built by `cargo deb` and read
//! back with Debian's own tools: `dpkg-deb` for its files and control data, `lintian` for
//! Debian's rules, `systemd-analyze verify` for the unit in a scratch root holding the
//! unpacked package, the maintainer scripts run by hand in a mount namespace whose `/etc`
//! and `/var/lib` are throw-away overlays, and the packaged binary started from that root
//! with the packaged config and in `demo` mode.
//!
//! The package holds the binary `cargo test` built (unoptimised), copied into a scratch
//! target directory as `release/`, and `cargo deb --no-build` packs it. A release build
//! would cost CI minutes for a binary no other test runs, and cargo-deb refuses to package
//! from `target/debug`; what is checked here (paths, modes, control fields, maintainer
//! scripts, the unit, the config, the binary starting) is the same for either build.
//!
//! Needs `cargo-deb`, `dpkg-deb`, `lintian`, `systemd-analyze` and `man` (tests/run.sh
//! installs them) and root (the namespace's mounts); a missing one fails the test, naming
//! what to install.

#[path = "../examples/gen_assets/assets.rs"]
mod assets;
mod util;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const PACKAGE: &str = "mailauth-exporter";
const UNIT: &str = "usr/lib/systemd/system/mailauth-exporter.service";
const CONFFILE: &str = "/etc/mailauth-exporter/config.toml";

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `cmd`, failing the test with its output unless it exits 0; returns standard output.
/// A program that cannot be started fails with `install`, what provides it.
fn run(cmd: &mut Command, install: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?} ({e}): install {install} (tests/run.sh does)")
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Builds the package into `scratch` and returns its path: the assets generated into
/// `target/assets/` (where Cargo.toml's asset list reads them), the test's binary as the
/// release build of a scratch target directory.
fn build_package(scratch: &Path) -> PathBuf {
    let cargo_deb = cargo().args(["deb", "--version"]).output();
    assert!(
        cargo_deb.is_ok_and(|out| out.status.success()),
        "cargo-deb is missing: cargo install --locked cargo-deb --version 3.8.0 (tests/run.sh does)"
    );
    assets::generate(&assets::default_dir()).unwrap();
    let target = scratch.join("target");
    std::fs::create_dir_all(target.join("release")).unwrap();
    std::fs::copy(
        env!("CARGO_BIN_EXE_mailauth-exporter"),
        target.join("release").join(PACKAGE),
    )
    .unwrap();
    let deb = scratch.join("mailauth-exporter.deb");
    run(
        cargo()
            .current_dir(manifest_dir())
            .env("CARGO_TARGET_DIR", &target)
            .args(["deb", "--no-build", "--fast", "--output"])
            .arg(&deb),
        "cargo-deb",
    );
    deb
}

/// `dpkg-deb --contents`: each path (without the leading `.`) with its mode and owner.
fn contents(deb: &Path) -> BTreeMap<String, (String, String)> {
    let listing = run(Command::new("dpkg-deb").arg("--contents").arg(deb), "dpkg");
    listing
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // mode owner size date time path [-> target]
            let path = fields[5].trim_start_matches('.').to_string();
            (path, (fields[0].to_string(), fields[1].to_string()))
        })
        .collect()
}

fn field(deb: &Path, name: &str) -> String {
    run(
        Command::new("dpkg-deb").arg("--field").arg(deb).arg(name),
        "dpkg",
    )
    .trim()
    .to_string()
}

/// The file names in `dir` that end with `suffix`, sorted.
fn files_in(dir: &Path, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(suffix))
        .collect();
    names.sort();
    names
}

/// Every file the package must hold, with its mode: derived from the repository (every
/// rule file, dashboard and generated man page), so that a new one is checked too.
fn expected_files() -> Vec<(String, &'static str)> {
    let doc = format!("/usr/share/doc/{PACKAGE}");
    let mut files = vec![
        (format!("/usr/bin/{PACKAGE}"), "-rwxr-xr-x"),
        (CONFFILE.to_string(), "-rw-r--r--"),
        (format!("/{UNIT}"), "-rw-r--r--"),
        (format!("{doc}/copyright"), "-rw-r--r--"),
        (format!("{doc}/changelog.Debian.gz"), "-rw-r--r--"),
        (format!("{doc}/README.md"), "-rw-r--r--"),
        (format!("{doc}/examples/config.example.toml"), "-rw-r--r--"),
        (
            "/usr/share/mailauth-exporter/alerts/RUNBOOK.md".into(),
            "-rw-r--r--",
        ),
        (
            "/usr/share/bash-completion/completions/mailauth-exporter".into(),
            "-rw-r--r--",
        ),
        (
            "/usr/share/zsh/vendor-completions/_mailauth-exporter".into(),
            "-rw-r--r--",
        ),
        (
            "/usr/share/fish/vendor_completions.d/mailauth-exporter.fish".into(),
            "-rw-r--r--",
        ),
        (
            "/usr/share/lintian/overrides/mailauth-exporter".into(),
            "-rw-r--r--",
        ),
    ];
    let dir = manifest_dir();
    for rules in files_in(&dir.join("alerts"), ".rules.yml") {
        files.push((
            format!("/usr/share/mailauth-exporter/alerts/{rules}"),
            "-rw-r--r--",
        ));
    }
    for dashboard in files_in(&dir.join("dashboards"), ".json") {
        files.push((
            format!("/usr/share/mailauth-exporter/dashboards/{dashboard}"),
            "-rw-r--r--",
        ));
    }
    let pages = files_in(&assets::default_dir().join("man"), ".1");
    assert!(pages.contains(&assets::man_page_name(&[])), "{pages:?}");
    for page in pages {
        files.push((format!("/usr/share/man/man1/{page}.gz"), "-rw-r--r--"));
    }
    files
}

/// Kills the demo process when the test ends, passing or not.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The unit's value of `key` (the first line `key=...`).
fn unit_value<'a>(unit: &'a str, key: &str) -> &'a str {
    unit.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("the unit has no {key}="))
}

#[test]
fn package_builds_installs_and_starts() {
    let scratch = tempfile::tempdir().unwrap();
    let deb = build_package(scratch.path());

    // Files, modes and owners.
    let listed = contents(&deb);
    for (path, mode) in expected_files() {
        let Some((got_mode, owner)) = listed.get(&path) else {
            panic!("{path} is not in the package: {:#?}", listed.keys());
        };
        assert_eq!(got_mode, mode, "{path}");
        // cargo-deb writes numeric ids: 0/0 is root/root.
        assert!(owner == "0/0" || owner == "root/root", "{path}: {owner}");
    }
    assert!(
        !listed.keys().any(|p| p.contains("/alerts/tests")),
        "the rule tests are not for the package"
    );

    // Control fields.
    let version = format!("{}-1", env!("CARGO_PKG_VERSION"));
    assert_eq!(field(&deb, "Package"), PACKAGE);
    assert_eq!(field(&deb, "Version"), version);
    let arch = run(Command::new("dpkg").arg("--print-architecture"), "dpkg");
    assert_eq!(field(&deb, "Architecture"), arch.trim());
    assert_eq!(field(&deb, "Section"), "net");
    assert_eq!(field(&deb, "Priority"), "optional");
    let depends = field(&deb, "Depends");
    for dependency in ["libc6", "adduser", "procps"] {
        assert!(depends.contains(dependency), "Depends: {depends}");
    }
    // The synopsis is Cargo.toml's description, whole on its line: cargo-deb wraps a longer
    // one, cutting the synopsis `apt` shows mid-sentence.
    let description = field(&deb, "Description");
    let synopsis = description.lines().next().unwrap();
    assert_eq!(synopsis, env!("CARGO_PKG_DESCRIPTION"));
    assert!(synopsis.len() <= 80, "Debian's limit for a synopsis");
    // The changelog names the version packaged (lintian reads the packaged copy only).
    let changelog = std::fs::read_to_string(manifest_dir().join("debian/changelog")).unwrap();
    assert!(
        changelog.starts_with(&format!("{PACKAGE} ({version}) ")),
        "debian/changelog's first entry must be {version}"
    );

    // Conffiles and maintainer scripts.
    let control = scratch.path().join("control");
    run(
        Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control),
        "dpkg",
    );
    let conffiles = std::fs::read_to_string(control.join("conffiles")).unwrap();
    assert_eq!(conffiles.lines().collect::<Vec<_>>(), [CONFFILE]);
    let postinst = std::fs::read_to_string(control.join("postinst")).unwrap();
    assert!(postinst.contains("adduser --quiet --system --group"));
    assert!(
        postinst.contains("getent passwd mailauth-exporter"),
        "idempotent"
    );
    assert!(postinst.contains("deb-systemd-helper enable mailauth-exporter.service"));
    assert!(postinst.contains("deb-systemd-invoke $_dh_action mailauth-exporter.service"));
    let postrm = std::fs::read_to_string(control.join("postrm")).unwrap();
    assert!(postrm.contains("rm -rf /var/lib/mailauth-exporter"));
    for script in ["postinst", "prerm", "postrm"] {
        run(
            Command::new("sh").arg("-n").arg(control.join(script)),
            "dash",
        );
    }

    // Debian's rules: no error and no warning (overrides, each with its reason, in
    // debian/lintian-overrides).
    run(
        Command::new("lintian")
            .args(["--fail-on", "error,warning", "--tag-display-limit", "0"])
            .arg(&deb),
        "lintian",
    );

    // Unpacked into a scratch root.
    let root = scratch.path().join("root");
    run(
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root),
        "dpkg",
    );
    let unit = std::fs::read_to_string(root.join(UNIT)).unwrap();
    assert_eq!(
        unit,
        std::fs::read_to_string(manifest_dir().join("examples/mailauth-exporter.service")).unwrap(),
        "the packaged unit is examples/mailauth-exporter.service"
    );
    assert_eq!(
        unit_value(&unit, "User"),
        PACKAGE,
        "the user postinst makes"
    );
    let exec_start = unit_value(&unit, "ExecStart");
    assert_eq!(
        exec_start,
        format!("/usr/bin/{PACKAGE} --config {CONFFILE}")
    );
    // The packaged config is valid and keeps its state where systemd makes it.
    let binary = root.join("usr/bin").join(PACKAGE);
    let config = root.join(CONFFILE.trim_start_matches('/'));
    run(
        Command::new(&binary)
            .args(["config", "check", "--config"])
            .arg(&config),
        "nothing (the packaged binary)",
    );
    let parsed: toml::Table = toml::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    assert_eq!(
        parsed["exporter"]["state_dir"].as_str(),
        Some(format!("/var/lib/{}", unit_value(&unit, "StateDirectory")).as_str())
    );
    assert!(
        parsed.get("domain").is_none(),
        "a fresh install watches nothing until the operator says what"
    );

    verify_unit(&root);
    maintainer_scripts_in_a_namespace(&control, &root, scratch.path());
    serve_packaged_config(&binary, &config, scratch.path());
    demo_from_root(&binary);
}

/// Spawns the packaged binary with `args`, its standard error into `log`, and waits for
/// its `/metrics` on `listen` to hold `mailauth_build_info`; returns the process (killed
/// when dropped) and that page.
fn start_and_scrape(
    binary: &Path,
    args: &[&std::ffi::OsStr],
    listen: std::net::SocketAddr,
    log: &Path,
) -> (KillOnDrop, String) {
    let child = Command::new(binary)
        .args(args)
        .arg("--web.listen-address")
        .arg(listen.to_string())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let process = KillOnDrop(child);
    let metrics = util::wait_for(
        "the packaged binary to serve /metrics",
        Duration::from_secs(30),
        || {
            let (status, body) = util::http::get_blocking(&format!("http://{listen}/metrics"));
            (status == 200 && body.contains("mailauth_build_info")).then_some(body)
        },
        || std::fs::read_to_string(log).unwrap_or_default(),
    );
    (process, metrics)
}

/// What the service does right after install: the packaged config, unedited but for its
/// state_dir (moved into the scratch directory: this test does not write /var/lib),
/// starts, is ready and watches no domain.
fn serve_packaged_config(binary: &Path, config: &Path, scratch: &Path) {
    let text = std::fs::read_to_string(config).unwrap();
    let state = scratch.join("state");
    let moved = text.replace(
        r#"state_dir = "/var/lib/mailauth-exporter""#,
        &format!("state_dir = {:?}", state.display().to_string()),
    );
    assert_ne!(moved, text, "the packaged config sets state_dir");
    let copy = scratch.join("config.toml");
    std::fs::write(&copy, moved).unwrap();
    let listen = util::free_addr(98);
    let (_serve, metrics) = start_and_scrape(
        binary,
        &["--config".as_ref(), copy.as_os_str()],
        listen,
        &scratch.join("serve.log"),
    );
    assert!(
        metrics.lines().any(|l| l == "mailauth_domains 0"),
        "{metrics}"
    );
    let (status, _) = util::http::get_blocking(&format!("http://{listen}/-/ready"));
    assert_eq!(status, 200);
    assert!(
        state.join("state.sqlite3").exists(),
        "state kept in state_dir"
    );
}

/// `systemd-analyze verify` on the unpacked unit. The scratch root stands for a system the
/// package is installed on: besides the package's files it gets a copy of the host's
/// systemd units (the targets the unit is ordered against) and `kill` from procps (a dependency; the
/// unit's ExecReload). The man page of `Documentation=man:` is looked up in the root, so a
/// page missing from the package fails here too. Any word from verify fails the test:
/// it exits 0 on an unknown key, which it only prints.
fn verify_unit(root: &Path) {
    let units = root.join("usr/lib/systemd/system");
    // Copies, not links to the host's files: verify resolves links inside the root, and
    // refuses linked units of some types. Aliases (links) are kept as links; the `.wants`
    // directories are left out (soft dependencies).
    for host_unit in std::fs::read_dir("/usr/lib/systemd/system").unwrap() {
        let host_unit = host_unit.unwrap();
        let dest = units.join(host_unit.file_name());
        let kind = host_unit.file_type().unwrap();
        if dest.symlink_metadata().is_ok() || kind.is_dir() {
            continue;
        }
        if kind.is_symlink() {
            let target = std::fs::read_link(host_unit.path()).unwrap();
            std::os::unix::fs::symlink(target, dest).unwrap();
        } else {
            std::fs::copy(host_unit.path(), dest).unwrap();
        }
    }
    std::os::unix::fs::symlink("usr/bin", root.join("bin")).unwrap();
    std::fs::copy("/bin/kill", root.join("usr/bin/kill"))
        .expect("/bin/kill (Debian's procps) on this machine");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.display()))
        .arg("mailauth-exporter.service")
        .env("MANPATH", root.join("usr/share/man"))
        .output()
        .expect("systemd-analyze: install Debian's systemd (tests/run.sh does)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify ({}):\n{said}",
        out.status
    );
}

/// The packaged binary, run from the scratch root, serves the demo: `/metrics` with its
/// build info.
fn demo_from_root(binary: &Path) {
    let (_demo, metrics) = start_and_scrape(
        binary,
        &["demo".as_ref()],
        util::free_addr(97),
        &binary.with_file_name("demo.log"),
    );
    let wanted = format!(r#"version="{}""#, env!("CARGO_PKG_VERSION"));
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("mailauth_build_info{")
                && l.contains(&wanted)
                && l.ends_with(" 1")),
        "no mailauth_build_info with {wanted}: {metrics}"
    );
}

/// The maintainer scripts, run for real as dpkg would (install, then reconfigure as on an
/// upgrade, then purge), in a mount namespace of their own: `/etc` and `/var/lib` are
/// overlays whose changes land in the scratch directory, `/run` is empty (no systemd
/// running there, so nothing is started), and the packaged unit is visible in
/// `/usr/lib/systemd/system`. The real adduser and deb-systemd-helper do the work; this
/// machine's users and units are left as they were.
fn maintainer_scripts_in_a_namespace(control: &Path, root: &Path, scratch: &Path) {
    let ns = scratch.join("ns");
    for dir in ["etc-up", "etc-work", "var-up", "var-work"] {
        std::fs::create_dir_all(ns.join(dir)).unwrap();
    }
    let script = r#"
set -e
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$NS/etc-up,workdir=$NS/etc-work" /etc
mount -t overlay overlay -o "lowerdir=/var/lib,upperdir=$NS/var-up,workdir=$NS/var-work" /var/lib
mount -t tmpfs tmpfs /run
mount -t overlay overlay -o "lowerdir=$ROOT/usr/lib/systemd/system:/usr/lib/systemd/system" /usr/lib/systemd/system
# What dpkg tells a maintainer script (deb-systemd-helper does nothing without it).
export DPKG_MAINTSCRIPT_PACKAGE=mailauth-exporter
DPKG_MAINTSCRIPT_NAME=postinst "$CONTROL/postinst" configure
getent passwd mailauth-exporter > "$NS/user-after-install"
getent group mailauth-exporter > "$NS/group-after-install"
DPKG_MAINTSCRIPT_NAME=postinst "$CONTROL/postinst" configure 0.1.0-1
getent passwd mailauth-exporter > "$NS/user-after-upgrade"
if [ -L /etc/systemd/system/multi-user.target.wants/mailauth-exporter.service ]; then touch "$NS/enabled"; fi
mkdir -p /var/lib/mailauth-exporter
touch /var/lib/mailauth-exporter/state.sqlite3
DPKG_MAINTSCRIPT_NAME=prerm "$CONTROL/prerm" remove
DPKG_MAINTSCRIPT_NAME=postrm "$CONTROL/postrm" remove
DPKG_MAINTSCRIPT_NAME=postrm "$CONTROL/postrm" purge
if [ -L /etc/systemd/system/multi-user.target.wants/mailauth-exporter.service ]; then touch "$NS/enabled-after-purge"; fi
if [ -e /var/lib/mailauth-exporter ]; then touch "$NS/state-left"; fi
getent passwd mailauth-exporter > "$NS/user-after-purge"
"#;
    let host_user_before = Command::new("getent")
        .args(["passwd", PACKAGE])
        .output()
        .unwrap()
        .stdout;
    run(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", script])
            .env("NS", &ns)
            .env("ROOT", root)
            .env("CONTROL", control),
        "util-linux, and run as root (tests/run.sh must)",
    );
    let read = |name: &str| std::fs::read_to_string(ns.join(name)).unwrap();
    let user = read("user-after-install");
    assert!(
        user.starts_with("mailauth-exporter:x:")
            && user
                .trim_end()
                .ends_with(":/var/lib/mailauth-exporter:/usr/sbin/nologin"),
        "{user}"
    );
    assert!(read("group-after-install").starts_with("mailauth-exporter:x:"));
    assert_eq!(
        read("user-after-upgrade"),
        user,
        "the second run keeps the user"
    );
    assert!(
        ns.join("enabled").exists(),
        "the unit is enabled at install"
    );
    assert!(
        !ns.join("enabled-after-purge").exists(),
        "purge removes the unit's links"
    );
    assert!(!ns.join("state-left").exists(), "purge removes the state");
    assert_eq!(read("user-after-purge"), user, "purge keeps the user");
    let host_user_after = Command::new("getent")
        .args(["passwd", PACKAGE])
        .output()
        .unwrap()
        .stdout;
    assert_eq!(
        host_user_after, host_user_before,
        "the host's users are untouched"
    );
}
