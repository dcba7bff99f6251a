//! Command-line shape (DESIGN.md): serve (default), check, inspect, report, demo, config check.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::checks::dmarc::Policy;

#[derive(Parser, Debug)]
#[command(
    name = "mailauth-exporter",
    version,
    about = "Prometheus exporter that watches SPF, DKIM, DMARC and the records around them",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the exporter (the default).
    Serve(ServeArgs),
    /// One-shot DNS lint of one or more domains; no config needed.
    Check(CheckArgs),
    /// Parse a received message: Authentication-Results, Received-SPF, verifier report.
    Inspect(InspectArgs),
    /// Read DMARC aggregate, DMARC failure and TLS-RPT reports (XML, JSON, gzip, zip or
    /// whole messages) and print them.
    Report(ReportArgs),
    /// The exporter against an embedded loopback DNS server with sample domains.
    Demo(DemoArgs),
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Validate a config and print what would be checked and probed.
    Check {
        #[arg(long, default_value = "mailauth-exporter.toml")]
        config: PathBuf,
    },
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Configuration file.
    #[arg(long, default_value = "mailauth-exporter.toml")]
    pub config: PathBuf,
    /// Address to listen on (overrides [exporter] listen_address).
    #[arg(long = "web.listen-address")]
    pub listen_address: Option<String>,
    /// Allow POST /-/reload.
    #[arg(long = "web.enable-lifecycle")]
    pub enable_lifecycle: bool,
    /// Web config file (YAML, as Prometheus exporter-toolkit): TLS and basic auth.
    #[arg(long = "web.config.file")]
    pub web_config_file: Option<PathBuf>,
    /// Let /probe?domain= check any domain, not only the watched ones (as
    /// [exporter] probe_any_domain = true).
    #[arg(long = "web.probe-any-domain")]
    pub probe_any_domain: bool,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Args, Debug, Clone)]
pub struct LogArgs {
    /// Log level: error, warn, info, debug, trace.
    #[arg(long = "log.level", default_value = "info")]
    pub level: String,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Domains to check.
    #[arg(required_unless_present = "domains_file")]
    pub domains: Vec<String>,
    /// More domains from a file: one per line (`#` comments) or Prometheus file_sd JSON.
    #[arg(long = "domains-file")]
    pub domains_file: Option<PathBuf>,
    /// How many domains are checked at once.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,
    /// Print a summary of the run to standard error: domains, time, DNS queries sent by
    /// outcome and distinct names asked.
    #[arg(long)]
    pub stats: bool,
    /// DKIM selector to check (repeatable).
    #[arg(long = "dkim-selector", value_parser = crate::name::Selector::new)]
    pub dkim_selectors: Vec<crate::name::Selector>,
    /// Sending IP that SPF must authorise and that needs PTR/FCrDNS (repeatable).
    #[arg(long = "sending-ip")]
    pub sending_ips: Vec<IpAddr>,
    /// HELO name of the sending servers.
    #[arg(long)]
    pub helo: Option<String>,
    /// DNS server to ask, IP or IP:PORT (repeatable); default: /etc/resolv.conf.
    #[arg(long = "nameserver", value_parser = crate::config::parse_nameserver)]
    pub nameservers: Vec<std::net::SocketAddr>,
    /// Expected DMARC policy (none, quarantine, reject).
    #[arg(long = "expect-dmarc-policy", value_parser = parse_policy)]
    pub expect_dmarc_policy: Option<Policy>,
    /// Check the domains against the parked-domain profile.
    #[arg(long)]
    pub parked: bool,
    /// DNS blocklist zone to look the sending IPs up in (repeatable).
    #[arg(long = "blocklist")]
    pub blocklists: Vec<String>,
    /// Per-query timeout.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

/// `--expect-dmarc-policy` given a word that is not one of DMARC's `p=` values.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a DMARC policy (none, quarantine, reject)")]
pub struct NotAPolicy(String);

fn parse_policy(s: &str) -> Result<Policy, NotAPolicy> {
    Policy::parse(s).ok_or_else(|| NotAPolicy(s.to_string()))
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The message file (.eml), or - for standard input.
    pub file: PathBuf,
    /// authserv-id whose Authentication-Results are trusted (repeatable).
    #[arg(long = "trusted-authserv-id")]
    pub trusted_authserv_ids: Vec<String>,
    /// DNS server for DKIM verification, IP or IP:PORT (repeatable).
    #[arg(long = "nameserver", value_parser = crate::config::parse_nameserver)]
    pub nameservers: Vec<std::net::SocketAddr>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Report files (.xml, .json, .gz, .zip, .eml), or - for standard input.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// A config file: each aggregate record's `source` is classified by its `[[sender]]`
    /// entries (SPF terms asked through its `[dns]` resolvers).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Address to listen on.
    #[arg(long = "web.listen-address", default_value = crate::config::DEFAULT_LISTEN_ADDRESS)]
    pub listen_address: String,
    /// Web config file (YAML, as Prometheus exporter-toolkit): TLS and basic auth.
    #[arg(long = "web.config.file")]
    pub web_config_file: Option<PathBuf>,
    #[command(flatten)]
    pub log: LogArgs,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dmarc_policy_word_or_the_reason() {
        assert_eq!(parse_policy("reject").ok(), Some(Policy::Reject));
        assert_eq!(
            parse_policy("block").unwrap_err().to_string(),
            "\"block\" is not a DMARC policy (none, quarantine, reject)"
        );
    }
}
