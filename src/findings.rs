//! Every problem the exporter can report, as one enum of stable codes (the contract of
//! DESIGN.md: users' alert rules match on these strings). Each code carries its check,
//! severity, a one-line explanation and the fix, in one place, so that `check`'s text
//! output, the JSON, the metrics and the landing page all say the same thing.

use serde::Serialize;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The checks a domain goes through; the `check` label of the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    Spf,
    Dkim,
    Dmarc,
    Mx,
    Ptr,
    Parked,
    MtaSts,
    TlsRpt,
    Bimi,
    Dnsbl,
    Dane,
}

impl Check {
    pub const ALL: [Check; 11] = [
        Check::Spf,
        Check::Dkim,
        Check::Dmarc,
        Check::Mx,
        Check::Ptr,
        Check::Parked,
        Check::MtaSts,
        Check::TlsRpt,
        Check::Bimi,
        Check::Dnsbl,
        Check::Dane,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Check::Spf => "spf",
            Check::Dkim => "dkim",
            Check::Dmarc => "dmarc",
            Check::Mx => "mx",
            Check::Ptr => "ptr",
            Check::Parked => "parked",
            Check::MtaSts => "mta_sts",
            Check::TlsRpt => "tls_rpt",
            Check::Bimi => "bimi",
            Check::Dnsbl => "dnsbl",
            Check::Dane => "dane",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! codes {
    ($( $variant:ident => $code:literal, $check:ident, $sev:ident, $explain:literal, $fix:literal; )*) => {
        /// A finding code. The string form (`spf.too_many_lookups`) is the stable contract.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code { $( $variant ),* }

        impl Code {
            pub const ALL: &'static [Code] = &[ $( Code::$variant ),* ];

            pub fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $code ),* }
            }
            pub fn check(self) -> Check {
                match self { $( Code::$variant => Check::$check ),* }
            }
            pub fn severity(self) -> Severity {
                match self { $( Code::$variant => Severity::$sev ),* }
            }
            /// What the finding means for mail, in one sentence.
            pub fn explanation(self) -> &'static str {
                match self { $( Code::$variant => $explain ),* }
            }
            /// What to change to make it go away.
            pub fn fix(self) -> &'static str {
                match self { $( Code::$variant => $fix ),* }
            }
        }
    };
}

codes! {
    SpfMissing => "spf.missing", Spf, Error,
        "The domain publishes no SPF record, so receivers cannot tell its servers from forgers.",
        "Publish one TXT record \"v=spf1 <your senders> -all\" at the domain.";
    SpfMultipleRecords => "spf.multiple_records", Spf, Error,
        "More than one v=spf1 record: receivers return permerror (RFC 7208 §4.5) and SPF fails for every message.",
        "Merge the records into a single v=spf1 TXT record.";
    SpfSyntax => "spf.syntax", Spf, Error,
        "The SPF record does not parse; receivers return permerror.",
        "Correct the term named in the message (RFC 7208 §12 grammar).";
    SpfTooManyLookups => "spf.too_many_lookups", Spf, Error,
        "More than 10 DNS-querying terms: receivers stop with permerror (RFC 7208 §4.6.4).",
        "Flatten includes, drop unused ones, or replace a/mx/ptr terms with ip4/ip6 ranges.";
    SpfTooManyVoidLookups => "spf.too_many_void_lookups", Spf, Error,
        "More than 2 terms point at names that do not exist or have no records: receivers may return permerror (RFC 7208 §4.6.4).",
        "Remove includes and a/mx terms whose targets are gone.";
    SpfTooManyMxHosts => "spf.too_many_mx_hosts", Spf, Error,
        "An mx term names a domain with more than 10 MX hosts: the term is a permerror (RFC 7208 §4.6.4).",
        "Replace the mx term with ip4/ip6 ranges of the sending hosts.";
    SpfLoop => "spf.loop", Spf, Error,
        "An include/redirect chain returns to a domain already being evaluated; receivers return permerror.",
        "Break the cycle between the records named in the message.";
    SpfIncludeMissing => "spf.include_missing", Spf, Error,
        "An include:/redirect= target publishes no SPF record: include gives permerror (RFC 7208 §5.2).",
        "Remove the include or fix the provider's name.";
    SpfAllPass => "spf.all_pass", Spf, Error,
        "\"+all\" authorises every host on the Internet to send as this domain.",
        "End the record with -all (or ~all while migrating).";
    SpfAllNeutral => "spf.all_neutral", Spf, Warning,
        "\"?all\" asserts nothing about unlisted hosts, so forged mail is not rejected.",
        "End the record with -all or ~all.";
    SpfNoAll => "spf.no_all", Spf, Warning,
        "No all term and no redirect: unlisted hosts get neutral.",
        "End the record with -all.";
    SpfRedirectIgnored => "spf.redirect_ignored", Spf, Warning,
        "A redirect= modifier beside an all term is never used (RFC 7208 §6.1).",
        "Remove either the redirect= or the all term.";
    SpfPtrUsed => "spf.ptr_used", Spf, Warning,
        "The ptr mechanism is slow, unreliable and deprecated (RFC 7208 §5.5); some receivers ignore it.",
        "Replace ptr with ip4/ip6 or a terms.";
    SpfDeprecatedSenderId => "spf.deprecated_sender_id", Spf, Warning,
        "A Sender ID (spf2.0) record is published; Sender ID is historic (RFC 6686).",
        "Remove the spf2.0 record; keep only the v=spf1 record.";
    SpfIpNotAuthorized => "spf.ip_not_authorized", Spf, Error,
        "A configured sending IP does not get SPF pass: mail from it fails SPF (and DMARC unless DKIM aligns).",
        "Add the IP (ip4:/ip6:) or its provider's include to the SPF record.";
    DkimMissing => "dkim.missing", Dkim, Error,
        "No key at <selector>._domainkey: signatures with this selector cannot be verified.",
        "Publish the selector's public key TXT record (v=DKIM1; k=rsa; p=...).";
    DkimSyntax => "dkim.syntax", Dkim, Error,
        "The key record does not parse or names an unknown key type; verifiers treat the signature as failing.",
        "Republish the record exactly as the signing system generated it.";
    DkimRevoked => "dkim.revoked", Dkim, Error,
        "The selector's key is revoked (empty p=): every signature with it fails.",
        "Publish the current public key, or stop monitoring a retired selector.";
    DkimTesting => "dkim.testing", Dkim, Warning,
        "t=y marks the key as in testing: verifiers may treat failures as if unsigned.",
        "Remove t=y once signing works.";
    DkimWeakKey => "dkim.weak_key", Dkim, Error,
        "RSA key under 1024 bits: verifiers must not accept it (RFC 8301 §3.2).",
        "Generate a 2048-bit key and rotate the selector.";
    DkimShortKey => "dkim.short_key", Dkim, Warning,
        "RSA key under 2048 bits: accepted today but below the recommended size (RFC 8301).",
        "Generate a 2048-bit key and rotate the selector.";
    DkimSha1Only => "dkim.sha1_only", Dkim, Warning,
        "h=sha1 only: SHA-1 signatures must not be accepted by verifiers (RFC 8301 §3.1).",
        "Remove h= or set h=sha256.";
    DkimDomainKeysPolicy => "dkim.domainkeys_policy", Dkim, Info,
        "A DomainKeys policy record (o=/t=/r=/n= at _domainkey) is published; DomainKeys is historic (RFC 4870, obsoleted by DKIM) and no receiver reads it, but people reading the zone take it for live policy.",
        "Delete the TXT record at _domainkey.<domain>; DMARC at _dmarc is the policy receivers apply.";
    DkimAdspRecord => "dkim.adsp_record", Dkim, Info,
        "An ADSP record (_adsp._domainkey) is published; ADSP (RFC 5617) is historic since 2013 and ignored by receivers, so the policy it states is not applied.",
        "Delete the TXT record at _adsp._domainkey.<domain>; state the policy in DMARC instead.";
    DmarcMissing => "dmarc.missing", Dmarc, Error,
        "No DMARC record at the domain or its organisational domain: receivers apply no policy and send no reports.",
        "Publish \"v=DMARC1; p=none; rua=mailto:...\" at _dmarc, then tighten the policy.";
    DmarcMultipleRecords => "dmarc.multiple_records", Dmarc, Error,
        "More than one v=DMARC1 record: receivers ignore DMARC for the domain (RFC 7489 §6.6.3).",
        "Keep exactly one v=DMARC1 record at _dmarc.";
    DmarcSyntax => "dmarc.syntax", Dmarc, Error,
        "The DMARC record is invalid: receivers ignore it.",
        "Start with v=DMARC1, give a valid p=, and fix the tag named in the message.";
    DmarcPolicyNone => "dmarc.policy_none", Dmarc, Warning,
        "p=none only monitors: forged mail is delivered.",
        "Move to p=quarantine, then p=reject, once reports show legitimate mail aligned.";
    DmarcSubdomainPolicyWeaker => "dmarc.subdomain_policy_weaker", Dmarc, Warning,
        "sp= is weaker than p=: subdomains can be forged more easily than the domain.",
        "Remove sp= or set it to the same policy as p=.";
    DmarcPctPartial => "dmarc.pct_partial", Dmarc, Warning,
        "pct below 100: the policy applies to only part of the failing mail.",
        "Raise pct to 100 (or remove it).";
    DmarcNoRua => "dmarc.no_rua", Dmarc, Warning,
        "No rua=: you receive no aggregate reports and cannot see who sends as you.",
        "Add rua=mailto:dmarc-reports@<your domain>.";
    DmarcInvalidUri => "dmarc.invalid_uri", Dmarc, Error,
        "A rua/ruf entry is not a valid mailto: URI: reports for it are not sent.",
        "Write each report address as mailto:user@domain (optionally !size).";
    DmarcExternalReportUnauthorized => "dmarc.external_report_unauthorized", Dmarc, Warning,
        "Reports go to another domain that has not authorised them (RFC 7489 §7.1): receivers drop them.",
        "Ask the report domain to publish <your domain>._report._dmarc.<their domain> TXT \"v=DMARC1\".";
    DmarcOrgDomainFallback => "dmarc.org_domain_fallback", Dmarc, Info,
        "No record at the domain itself; the organisational domain's record applies.",
        "Nothing to do unless this domain needs its own policy.";
    DmarcPolicyBelowExpected => "dmarc.policy_below_expected", Dmarc, Error,
        "The effective DMARC policy is weaker than the policy this domain is expected to have.",
        "Restore the DMARC record's p= to the expected policy.";
    MxMissing => "mx.missing", Mx, Warning,
        "No MX records: senders fall back to the domain's A/AAAA address (RFC 5321 §5.1).",
        "Publish MX records, or a null MX (0 .) if the domain receives no mail.";
    MxNull => "mx.null", Mx, Info,
        "Null MX (RFC 7505): the domain accepts no mail.",
        "Nothing to do if the domain is not meant to receive mail.";
    MxHostUnresolvable => "mx.host_unresolvable", Mx, Error,
        "An MX host has no A or AAAA record: mail to it cannot be delivered.",
        "Fix the MX host's address records or remove the MX.";
    MxHostIsCname => "mx.host_is_cname", Mx, Warning,
        "An MX target is a CNAME, which RFC 2181 §10.3 forbids; some senders refuse it.",
        "Point the MX at the canonical host name.";
    PtrMissing => "ptr.missing", Ptr, Error,
        "A sending IP has no PTR record: many receivers reject or penalise such mail.",
        "Ask the IP's owner (hosting provider) to set the PTR to the HELO name.";
    PtrNotForwardConfirmed => "ptr.not_forward_confirmed", Ptr, Error,
        "No PTR name of the IP resolves back to it (no forward-confirmed reverse DNS).",
        "Give the PTR name an A/AAAA record with this IP.";
    HeloMismatch => "helo.mismatch", Ptr, Warning,
        "The HELO name does not resolve to the sending IP or differs from its reverse DNS name.",
        "Make the HELO name the IP's forward-confirmed PTR name.";
    ParkedSpfNotFailAll => "parked.spf_not_fail_all", Parked, Error,
        "A parked domain must publish exactly \"v=spf1 -all\" so that nobody can send as it.",
        "Set the SPF record to v=spf1 -all.";
    ParkedDmarcNotReject => "parked.dmarc_not_reject", Parked, Error,
        "A parked domain must publish DMARC p=reject so that forged mail is refused.",
        "Publish \"v=DMARC1; p=reject;\" at _dmarc.";
    ParkedMxNotNull => "parked.mx_not_null", Parked, Warning,
        "A parked domain should publish a null MX (0 .) so that senders fail fast instead of queueing mail for it (RFC 7505).",
        "Replace the MX records with a single \"0 .\" MX.";
    MtaStsSyntax => "mta_sts.syntax", MtaSts, Error,
        "The MTA-STS record or policy does not parse (RFC 8461).",
        "Fix the _mta-sts TXT record (v=STSv1; id=...) or the policy file.";
    MtaStsPolicyUnreachable => "mta_sts.policy_unreachable", MtaSts, Error,
        "The MTA-STS policy cannot be fetched over HTTPS.",
        "Serve https://mta-sts.<domain>/.well-known/mta-sts.txt with a valid certificate.";
    MtaStsDestinationRefused => "mta_sts.destination_refused", MtaSts, Warning,
        "The MTA-STS policy host resolves only to loopback, private, link-local, shared, multicast or documentation addresses, and this on-demand probe of an unwatched domain does not connect there (the exporter is not a scanner of its own network). The policy is unknown, not absent.",
        "Publish public addresses for mta-sts.<domain>, or watch the domain in the config ([[domain]]), where any address is fetched.";
    MtaStsMxNotCovered => "mta_sts.mx_not_covered", MtaSts, Error,
        "An MX host matches no mx: line of the MTA-STS policy: senders enforcing it refuse delivery.",
        "Add the MX host (or a wildcard) to the policy and change its id.";
    MtaStsTesting => "mta_sts.testing", MtaSts, Warning,
        "The MTA-STS policy is in mode testing: senders report TLS failures but still deliver without TLS.",
        "Switch the policy to mode: enforce (and change its id) once TLS reports are clean.";
    TlsRptSyntax => "tls_rpt.syntax", TlsRpt, Warning,
        "The TLS-RPT record does not parse (RFC 8460).",
        "Publish \"v=TLSRPTv1; rua=mailto:...\" at _smtp._tls.";
    BimiSyntax => "bimi.syntax", Bimi, Warning,
        "The BIMI record does not parse.",
        "Publish \"v=BIMI1; l=https://...svg; a=...\" at default._bimi.";
    BimiDmarcNotEnforced => "bimi.dmarc_not_enforced", Bimi, Warning,
        "BIMI needs DMARC at quarantine or reject with pct=100; logos will not show.",
        "Enforce DMARC (p=quarantine or reject, pct=100).";
    BimiNoCertificate => "bimi.no_certificate", Bimi, Info,
        "The BIMI record names no mark certificate (a=): most mailbox providers show the logo only with a VMC or CMC.",
        "Obtain a Verified Mark Certificate and publish its URL in a=.";
    DnsblListed => "dnsbl.listed", Dnsbl, Error,
        "A sending IP is listed on a DNS blocklist: receivers that use the list reject or junk its mail.",
        "Find and stop the cause (compromised account, open relay, bad list hygiene), then request delisting from the list.";
    DaneMismatch => "dane.mismatch", Dane, Error,
        "No TLSA record matches the certificate the MX presents: DANE-validating senders will not deliver to it (RFC 7672).",
        "Publish TLSA records for the current certificate (or key) before rotating it, then remove the old ones.";
    DaneStarttlsFailed => "dane.starttls_failed", Dane, Error,
        "The MX publishes TLSA records but its certificate could not be read over STARTTLS on port 25.",
        "Check that the MX accepts connections on port 25 and offers STARTTLS.";
    DaneDestinationRefused => "dane.destination_refused", Dane, Warning,
        "The MX host resolves only to loopback, private, link-local, shared, multicast or documentation addresses, and this on-demand probe of an unwatched domain does not connect there (the exporter is not a scanner of its own network). The certificate was not checked against the TLSA records.",
        "Give the MX public addresses, or watch the domain in the config ([[domain]]), where any address is connected to.";
    DaneUnusable => "dane.unusable", Dane, Warning,
        "The TLSA records use only PKIX usages (0/1), which DANE for SMTP ignores (RFC 7672 §3.1.3).",
        "Publish DANE-EE (3 1 1) or DANE-TA (2 1 1) records.";
    DaneNotDnssecValidated => "dane.not_dnssec_validated", Dane, Warning,
        "The resolver did not vouch for the TLSA records (or the MX records leading to them) with DNSSEC: senders treat TLSA records that are not DNSSEC-secure as absent (RFC 7672 §2.2), so DANE does not protect this MX and mail goes over unauthenticated TLS.",
        "Sign the zones of the domain and of the MX host (with a DS record in each parent), or, if they are signed, point the exporter at a validating resolver ([dns] nameservers).";
    DnsError => "dns.error", Spf, Error,
        "The check could not be answered: DNS timed out, failed or refused. The result is unknown, not absent.",
        "Check the authoritative servers of the name in the message and the resolver in [dns].";
    CheckFailed => "check.failed", Spf, Error,
        "The check did not finish: it overran its deadline or failed inside the exporter. The result is unknown, not absent; the domain is checked again on its next run.",
        "A timeout: look at the DNS servers and the hosts the check connects to (MTA-STS over HTTPS, DANE over SMTP). A failure inside the exporter: report the log line that names the check.";
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One problem found by a check. `check` is stored (not derived from the code) because
/// `dns.error` belongs to whichever check could not be answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub check: Check,
    pub code: Code,
    pub severity: Severity,
    pub message: String,
}

impl Finding {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            check: code.check(),
            code,
            severity: code.severity(),
            message: message.into(),
        }
    }

    /// `check.failed` for `check`: it panicked or overran its deadline.
    pub fn check_failed(check: Check, message: impl Into<String>) -> Self {
        Self {
            check,
            code: Code::CheckFailed,
            severity: Severity::Error,
            message: message.into(),
        }
    }

    /// `dns.error` for `check`.
    pub fn dns_error(check: Check, message: impl Into<String>) -> Self {
        Self {
            check,
            code: Code::DnsError,
            severity: Severity::Error,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_prefixed_by_their_check() {
        let mut seen = HashSet::new();
        for code in Code::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {code}");
            if ![Code::DnsError, Code::CheckFailed, Code::HeloMismatch].contains(code) {
                assert!(code.as_str().starts_with(code.check().as_str()), "{code}");
            }
            assert!(!code.explanation().is_empty() && !code.fix().is_empty());
        }
    }
}
