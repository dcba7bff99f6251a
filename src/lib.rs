//! mailauth-exporter: watches a domain's email authentication (SPF, DKIM, DMARC and the
//! records around them) and exposes what it finds to Prometheus.

pub mod dns;
pub mod findings;
pub mod zone_server;
pub mod mail;
pub mod config;
