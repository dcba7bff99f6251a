//! mailauth-exporter: watches a domain's email authentication (SPF, DKIM, DMARC and the
//! records around them) and exposes what it finds to Prometheus.

pub mod app;
pub mod batch;
pub mod checks;
pub mod cli;
pub mod config;
pub mod demo;
pub mod der;
pub mod dns;
pub mod findings;
pub mod inspect;
pub mod mail;
pub mod metrics;
pub mod output;
pub mod scheduler;
pub mod server;
pub mod zone_server;
