//! Mail probes and the parsers of what receivers say about a message.

pub mod auth_results;
pub mod received_spf;
pub mod verifier_report;
