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
    /// The reason as one of a fixed set of codes ([`REASON_CODES`]), for metric labels.
    pub reason_code: Option<&'static str>,
}

/// Every value `reason_code` can take: a bounded label set for metrics.
pub const REASON_CODES: &[&str] = &[
    "body_hash_mismatch",
    "signature_mismatch",
    "key_not_found",
    "key_revoked",
    "key_invalid",
    "signature_expired",
    "dns_error",
    "unsupported",
    "other",
];

/// Why a signature did not pass, as a stable code.
fn reason_code(e: &mail_auth::Error) -> &'static str {
    use mail_auth::common::crypto::CryptoError;
    use mail_auth::Error;
    match e {
        Error::Dkim(DkimError::FailedBodyHashMatch) => "body_hash_mismatch",
        Error::Crypto(CryptoError::FailedVerification) => "signature_mismatch",
        Error::Dkim(DkimError::RevokedPublicKey) => "key_revoked",
        Error::Dkim(DkimError::SignatureExpired) => "signature_expired",
        Error::Dkim(
            DkimError::UnsupportedVersion
            | DkimError::UnsupportedAlgorithm
            | DkimError::UnsupportedCanonicalization
            | DkimError::UnsupportedKeyType,
        )
        | Error::Crypto(CryptoError::IncompatibleAlgorithms) => "unsupported",
        Error::Dns(mail_auth::DnsError::RecordNotFound(_)) => "key_not_found",
        Error::Dns(_) => "dns_error",
        Error::Base64 | Error::ParseError | Error::Crypto(CryptoError::Library(_)) => "key_invalid",
        _ => "other",
    }
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
                let (result, error) = match o.result() {
                    DkimResult::Pass => ("pass", None),
                    // RFC 8601 §2.7.1: a signature that fails verification is "fail"; mail-auth
                    // files a body-hash mismatch under neutral.
                    DkimResult::Neutral(
                        e @ mail_auth::Error::Dkim(DkimError::FailedBodyHashMatch),
                    ) => ("fail", Some(e)),
                    DkimResult::Neutral(e) => ("neutral", Some(e)),
                    DkimResult::Fail(e) => ("fail", Some(e)),
                    DkimResult::PermError(e) => ("permerror", Some(e)),
                    DkimResult::TempError(e) => ("temperror", Some(e)),
                    DkimResult::None => ("none", None),
                };
                DkimVerification {
                    domain: o.signature().map(|s| s.d.clone()),
                    selector: o.signature().map(|s| s.s.clone()),
                    result: result.to_string(),
                    reason: error.map(ToString::to_string),
                    reason_code: error.map(reason_code),
                }
            })
            .collect(),
    )
}
