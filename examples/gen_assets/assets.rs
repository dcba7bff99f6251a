//! The man pages and shell completions of `mailauth-exporter`, generated from its clap
//! definition (`mailauth_exporter::cli::Cli`) so that they cannot drift from the real
//! flags. The Debian package ships what this writes (Cargo.toml, `[package.metadata.deb]`
//! assets under `target/assets/`); `tests/deb_package.rs` includes this file to write them
//! before it builds the package, and runs the tests at its foot.
//!
//! Not a build script: the pages are needed only when packaging, and a `build.rs` would
//! make every build pay for them. `clap_mangen` and `clap_complete` are dev-dependencies,
//! so the exporter's own binary carries neither.

use std::io;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;
use mailauth_exporter::cli::Cli;

/// The installed command's name, as the completions must call it.
pub const BIN: &str = "mailauth-exporter";

/// Each shell's completion script: the file name its shell looks for, under a directory
/// named after the shell (Cargo.toml maps each to where Debian's shell packages look).
pub const COMPLETIONS: [(Shell, &str); 3] = [
    (Shell::Bash, "bash/mailauth-exporter"),
    (Shell::Zsh, "zsh/_mailauth-exporter"),
    (Shell::Fish, "fish/mailauth-exporter.fish"),
];

/// Where the package's asset list expects the generated files: `target/assets/` of this
/// checkout (not the cargo target directory, which `CARGO_TARGET_DIR` may move: the asset
/// paths in Cargo.toml are relative to the checkout).
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/assets")
}

/// Writes `man/*.1` (one page for the command and one per subcommand, as git does:
/// `mailauth-exporter-check.1` ...) and the completion scripts into `dir`, and returns the
/// paths written. Pages of subcommands that no longer exist are removed first, so the
/// package's `man/*.1` glob takes exactly the current ones.
pub fn generate(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let man_dir = dir.join("man");
    match std::fs::remove_dir_all(&man_dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::create_dir_all(&man_dir)?;
    clap_mangen::generate_to(Cli::command(), &man_dir)?;
    let mut written = Vec::new();
    for entry in std::fs::read_dir(&man_dir)? {
        written.push(entry?.path());
    }
    written.sort();
    for (shell, file) in COMPLETIONS {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), BIN, &mut script);
        std::fs::write(&path, script)?;
        written.push(path);
    }
    Ok(written)
}

/// The man page file of a command given by its path of names from the top
/// (`["config", "check"]` → `mailauth-exporter-config-check.1`), as `clap_mangen` names it.
#[allow(dead_code)] // the example's main does not need it; the tests do
pub fn man_page_name(path: &[&str]) -> String {
    let mut name = BIN.to_string();
    for part in path {
        name.push('-');
        name.push_str(part);
    }
    name + ".1"
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command of the tree as (path of names, command), `help` left out (clap adds
    /// it; its page is not generated).
    fn commands() -> Vec<(Vec<String>, clap::Command)> {
        fn walk(
            path: Vec<String>,
            cmd: &clap::Command,
            out: &mut Vec<(Vec<String>, clap::Command)>,
        ) {
            out.push((path.clone(), cmd.clone()));
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                let mut p = path.clone();
                p.push(sub.get_name().to_string());
                walk(p, sub, out);
            }
        }
        let mut out = Vec::new();
        walk(Vec::new(), &Cli::command(), &mut out);
        out
    }

    /// A page as a reader sees the text: roff writes `-` as `\-`.
    fn read_page(dir: &Path, path: &[String]) -> String {
        let parts: Vec<&str> = path.iter().map(String::as_str).collect();
        let file = dir.join("man").join(man_page_name(&parts));
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .replace("\\-", "-")
    }

    #[test]
    fn man_pages_name_every_subcommand_and_flag() {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path()).unwrap();
        let tree = commands();
        // The tree itself, so that a walk that finds nothing cannot pass.
        let names: Vec<String> = tree.iter().map(|(p, _)| p.join(" ")).collect();
        for expected in [
            "",
            "serve",
            "check",
            "inspect",
            "report",
            "demo",
            "config",
            "config check",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected:?} not in {names:?}"
            );
        }
        for (path, cmd) in &tree {
            let page = read_page(dir.path(), path);
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                let page_ref = format!(
                    "{BIN}-{}",
                    path.iter()
                        .chain([&sub.get_name().to_string()])
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("-")
                );
                assert!(
                    page.contains(&page_ref),
                    "page of {path:?} does not name {page_ref}"
                );
            }
            for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
                if let Some(long) = arg.get_long() {
                    assert!(
                        page.contains(&format!("--{long}")),
                        "page of {path:?} lacks --{long}"
                    );
                } else if arg.is_positional() {
                    let value = arg
                        .get_value_names()
                        .and_then(|v| v.first())
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| arg.get_id().to_string().to_uppercase());
                    assert!(page.contains(&value), "page of {path:?} lacks {value}");
                }
            }
        }
        // Literal spot checks against the definition in src/cli.rs.
        assert!(read_page(dir.path(), &["demo".into()]).contains("--web.listen-address"));
        assert!(read_page(dir.path(), &[]).contains("--web.probe-any-domain"));
        assert!(read_page(dir.path(), &["config".into(), "check".into()]).contains("--config"));
        // No page for anything that is not a command (clap's help included).
        let pages = std::fs::read_dir(dir.path().join("man")).unwrap().count();
        assert_eq!(pages, tree.len(), "{names:?}");
    }

    #[test]
    fn completions_for_bash_zsh_and_fish_know_every_subcommand() {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path()).unwrap();
        for (shell, file) in COMPLETIONS {
            let script = std::fs::read_to_string(dir.path().join(file)).unwrap();
            for sub in ["serve", "check", "inspect", "report", "demo", "config"] {
                assert!(script.contains(sub), "{shell}: no {sub}");
            }
            for flag in ["web.listen-address", "trusted-authserv-id", "dkim-selector"] {
                assert!(script.contains(flag), "{shell}: no {flag}");
            }
        }
        // bash reads its script without a syntax error (bash is on every Debian machine).
        let status = std::process::Command::new("bash")
            .arg("-n")
            .arg(dir.path().join(COMPLETIONS[0].1))
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[test]
    fn stale_pages_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join("man").join(man_page_name(&["gone"]));
        std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
        std::fs::write(&stale, "old").unwrap();
        generate(dir.path()).unwrap();
        assert!(!stale.exists());
        assert!(dir.path().join("man").join(man_page_name(&[])).exists());
    }

    #[test]
    fn man_page_names() {
        assert_eq!(man_page_name(&[]), "mailauth-exporter.1");
        assert_eq!(
            man_page_name(&["config", "check"]),
            "mailauth-exporter-config-check.1"
        );
    }
}
