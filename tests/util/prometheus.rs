//! A real Prometheus server (Debian's `prometheus` package) for the rule and dashboard
//! tests: started on a free loopback port with a temporary TSDB, stopped on drop.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;
use super::http::get;

pub struct Prometheus {
    child: Child,
    pub base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Scrapes `target` (host:port) every second and evaluates `rules` (file contents) every second.
    pub async fn start(target: &str, rules: &str) -> Prometheus {
        let scrape =
            format!("  - job_name: mailauth\n    static_configs:\n      - targets: ['{target}']\n");
        Self::start_with(&scrape, rules).await
    }

    /// Runs with the given `scrape_configs` entries (YAML, indented two spaces).
    pub async fn start_with(scrape_configs: &str, rules: &str) -> Prometheus {
        Self::start_backfilled(scrape_configs, rules, None).await
    }

    /// As [`Prometheus::start_with`], its TSDB first filled with `history` (OpenMetrics text
    /// with timestamps, ending in `# EOF`) by `promtool tsdb create-blocks-from openmetrics`,
    /// the backfill Prometheus documents: samples from days before the test, for rules that
    /// compare with the past (`offset 3d`), which no test can wait for.
    pub async fn start_backfilled(
        scrape_configs: &str,
        rules: &str,
        history: Option<&str>,
    ) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        if let Some(history) = history {
            let input = dir.path().join("history.om");
            std::fs::write(&input, history).unwrap();
            let out = Command::new("promtool")
                .args(["tsdb", "create-blocks-from", "openmetrics"])
                .arg(&input)
                .arg(dir.path().join("data"))
                .output()
                .expect("promtool not found: run tests/run.sh, which installs Debian's prometheus package");
            assert!(
                out.status.success(),
                "promtool refused the backfill: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::fs::write(dir.path().join("rules.yml"), rules).unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [rules.yml]\nscrape_configs:\n{scrape_configs}"
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus not found: run tests/run.sh, which installs Debian's prometheus package");
        let p = Prometheus {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
                && get(&format!("{}/-/ready", p.base)).await.0 == 200
            {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus did not become ready: {}",
                p.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// `/api/v1/query` result as JSON.
    pub async fn query(&self, promql: &str) -> serde_json::Value {
        let url = format!("{}/api/v1/query?query={}", self.base, urlencode(promql));
        let (status, body) = get(&url).await;
        let v: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|_| panic!("{status}: {body}"));
        assert_eq!(v["status"], "success", "query {promql:?} failed: {body}");
        v
    }

    /// Firing alerts as (alertname, labels) pairs.
    pub async fn firing(&self) -> Vec<serde_json::Value> {
        let (_, body) = get(&format!("{}/api/v1/alerts", self.base)).await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["data"]["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a["state"] == "firing")
            .collect()
    }
}

pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Rule text with every `for:` shortened, so that the test sees in seconds what production
/// waits minutes for; the expressions themselves are unchanged.
pub fn with_short_for(rules: &str) -> String {
    rules
        .lines()
        .map(|l| {
            let t = l.trim_start();
            if t.starts_with("for:") {
                format!("{}for: 1s", &l[..l.len() - t.len()])
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn repo_file(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}
