//! Verifying a received message's DKIM signatures afresh (mail-auth), so that `inspect`
//! and the probe can say *why* DKIM failed (body hash mismatch, key missing, revoked...)
//! independently of what the receiver wrote.

use mail_auth::dkim::DkimError;
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DkimVerification {
    pub domain: Option<String>,
    pub selector: Option<String>,
    /// pass, fail, neutral, temperror, permerror, none.
    pub result: String,
    pub reason: Option<String>,
}

/// Verifies every DKIM-Signature of `raw` with `resolver`; `None` when the message cannot
/// be parsed at all.
pub async fn verify(
    raw: &[u8],
    resolver: hickory_resolver::TokioResolver,
) -> Option<Vec<DkimVerification>> {
    let message = AuthenticatedMessage::parse(raw)?;
    let authenticator = MessageAuthenticator(resolver);
    let outputs = authenticator.verify_dkim(&message).await;
    Some(
        outputs
            .iter()
            .map(|o| {
                let (result, reason) = match o.result() {
                    DkimResult::Pass => ("pass", None),
                    // RFC 8601 §2.7.1: a signature that fails verification is "fail"; mail-auth
                    // files a body-hash mismatch under neutral.
                    DkimResult::Neutral(
                        e @ mail_auth::Error::Dkim(DkimError::FailedBodyHashMatch),
                    ) => ("fail", Some(e.to_string())),
                    DkimResult::Neutral(e) => ("neutral", Some(e.to_string())),
                    DkimResult::Fail(e) => ("fail", Some(e.to_string())),
                    DkimResult::PermError(e) => ("permerror", Some(e.to_string())),
                    DkimResult::TempError(e) => ("temperror", Some(e.to_string())),
                    DkimResult::None => ("none", None),
                };
                DkimVerification {
                    domain: o.signature().map(|s| s.d.clone()),
                    selector: o.signature().map(|s| s.s.clone()),
                    result: result.to_string(),
                    reason,
                }
            })
            .collect(),
    )
}
