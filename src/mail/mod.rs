//! Mail probes and the parsers of what receivers say about a message.

pub mod auth_results;
pub mod body;
pub mod dkim_verify;
pub mod header;
pub mod ledger;
pub mod mailbox;
pub mod oauth2;
pub mod probe;
pub mod received;
pub mod received_spf;
pub mod reply;
pub mod results;
pub mod send;
pub mod spam;
pub mod trust;
pub mod verifier_report;
