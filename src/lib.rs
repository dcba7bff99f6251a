//! mailauth-exporter: watches a domain's email authentication (SPF, DKIM, DMARC and the
//! records around them) and exposes what it finds to Prometheus.

pub mod checks;
pub mod cli;
pub mod commands;
pub mod config;
pub mod der;
mod evict;
pub mod findings;
pub mod ip_range;
pub mod mail;
pub mod metrics;
pub mod name;
pub mod output;
pub mod reports;
pub mod resolver;
pub mod server;
pub mod service;
pub mod state;
pub mod tls;
pub mod zone_server;
