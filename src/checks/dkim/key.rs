//! The DKIM key record (RFC 6376 §3.6.1) and the size of the key in it.
//!
//! ```text
//! key-v-tag = %x76 [FWS] "=" [FWS] %x44.4B.49.4D.31        ; "v=DKIM1", first if present
//! key-k-tag = %x6b [FWS] "=" [FWS] key-k-tag-type          ; rsa (default), ed25519 (RFC 8463)
//! key-h-tag = %x68 [FWS] "=" [FWS] key-h-tag-alg *( ":" key-h-tag-alg )
//! key-p-tag = %x70 [FWS] "=" [ [FWS] base64string ]        ; empty: revoked
//! key-t-tag = %x74 [FWS] "=" [FWS] key-t-tag-flag *( ":" key-t-tag-flag )   ; y, s
//! ```
//! Key sizes are read from the key itself, never from what a tool printed beside it.

use base64::Engine;

use crate::checks::taglist;

/// `k=` (RFC 6376 §3.6.1, RFC 8463): the key's algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    Rsa,
    Ed25519,
}

impl std::fmt::Display for KeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl KeyType {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Rsa => "rsa",
            KeyType::Ed25519 => "ed25519",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    pub key_type: KeyType,
    /// None when the key is revoked (empty `p=`).
    pub bits: Option<u32>,
    pub testing: bool,
    pub hashes: Option<Vec<String>>,
    pub revoked: bool,
}

/// Why a key record is refused (finding `dkim.syntax`); each message names the tag at
/// fault, since that is what a person fixing the zone looks for.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyRecordError {
    #[error(transparent)]
    Tags(#[from] taglist::TagError),
    /// `v=` with another value than `DKIM1` (§3.6.1: the only version defined).
    #[error("v={0:?}: only DKIM1 is defined")]
    UnknownVersion(String),
    /// `v=` after another tag (§3.6.1: "if present, it MUST be the first tag").
    #[error("v= must be the first tag")]
    VersionNotFirst,
    /// `k=` naming an algorithm verifiers do not know.
    #[error("k={0:?} is not a known key type (rsa, ed25519)")]
    UnknownKeyType(String),
    /// No `p=` at all (an empty one is a revocation, not this).
    #[error("the required p= tag is missing")]
    MissingPublicKey,
    #[error("p= is not valid base64: {0}")]
    PublicKeyNotBase64(String),
    /// An ed25519 key is the 32 raw bytes of the point (RFC 8463 §4.2).
    #[error("p= holds {0} bytes; an ed25519 key has 32")]
    Ed25519Length(usize),
    #[error("p= is not an RSA public key (SubjectPublicKeyInfo or RSAPublicKey DER)")]
    NotRsaKey,
}

/// Parses a key record; the error names the tag at fault.
pub fn parse(text: &str) -> Result<KeyRecord, KeyRecordError> {
    let mut key_type = KeyType::Rsa;
    let mut p: Option<String> = None;
    let mut testing = false;
    let mut hashes = None;
    // Tag names are case-sensitive here (RFC 6376 §3.2), so they are not folded.
    let mut seen = taglist::Seen::default();
    for (i, tag) in taglist::split(text).enumerate() {
        let tag = tag?;
        let name = tag.name;
        let value: String = tag.value.split_whitespace().collect::<Vec<_>>().join(" ");
        seen.first(name)?;
        match name {
            "v" if i == 0 && value != "DKIM1" => {
                return Err(KeyRecordError::UnknownVersion(value));
            }
            "v" if i == 0 => {}
            "v" => return Err(KeyRecordError::VersionNotFirst),
            "k" => {
                key_type = match value.to_ascii_lowercase().as_str() {
                    "rsa" => KeyType::Rsa,
                    "ed25519" => KeyType::Ed25519,
                    other => return Err(KeyRecordError::UnknownKeyType(other.to_string())),
                }
            }
            // FWS may fold inside a value ("sha 256"): whitespace carries no meaning in h=.
            "h" => {
                let algs = value
                    .split(':')
                    .map(|h| h.replace(' ', "").to_ascii_lowercase());
                hashes = Some(algs.collect())
            }
            "t" => testing = value.split(':').any(|f| f.trim().eq_ignore_ascii_case("y")),
            "p" => p = Some(value.replace(' ', "")),
            _ => {} // s=, n= and unknown tags (§3.6.1: ignored)
        }
    }
    let p = p.ok_or(KeyRecordError::MissingPublicKey)?;
    if p.is_empty() {
        return Ok(KeyRecord {
            key_type,
            bits: None,
            testing,
            hashes,
            revoked: true,
        });
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(p.as_bytes())
        .map_err(|e| KeyRecordError::PublicKeyNotBase64(e.to_string()))?;
    let bits = match key_type {
        KeyType::Ed25519 if der.len() == 32 => 256,
        KeyType::Ed25519 => return Err(KeyRecordError::Ed25519Length(der.len())),
        KeyType::Rsa => rsa_modulus_bits(&der).ok_or(KeyRecordError::NotRsaKey)?,
    };
    Ok(KeyRecord {
        key_type,
        bits: Some(bits),
        testing,
        hashes,
        revoked: false,
    })
}

use crate::der::tlv;

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
/// 1.2.840.113549.1.1.1
const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// Modulus size of an RSA key given as SubjectPublicKeyInfo (RFC 5280 §4.1, what RFC 6376
/// asks for) or as a bare PKCS#1 RSAPublicKey (which some publish and verifiers accept).
fn rsa_modulus_bits(der: &[u8]) -> Option<u32> {
    let (tag, body, _) = tlv(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (first_tag, first, rest) = tlv(body)?;
    let rsa_public_key = match first_tag {
        SEQUENCE => {
            // AlgorithmIdentifier, then BIT STRING { RSAPublicKey }
            let (oid_tag, oid, _) = tlv(first)?;
            if oid_tag != 0x06 || oid != RSA_ENCRYPTION {
                return None;
            }
            let (bs_tag, bits, _) = tlv(rest)?;
            if bs_tag != BIT_STRING || bits.first() != Some(&0) {
                return None;
            }
            let (t, inner, _) = tlv(&bits[1..])?;
            (t == SEQUENCE).then_some(inner)?
        }
        INTEGER => body,
        _ => return None,
    };
    let (t, modulus, _) = tlv(rsa_public_key)?;
    if t != INTEGER {
        return None;
    }
    let significant: &[u8] = {
        let start = modulus.iter().position(|&b| b != 0)?;
        &modulus[start..]
    };
    let bits = significant.len() as u32 * 8 - significant[0].leading_zeros();
    Some(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real keys generated on this machine with `openssl genrsa N | openssl rsa -pubout -outform DER | base64 -w0`.
    const RSA_1024: &str = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDoK35svDpaaUUzrBLCwLJY+XalAUBg0Mpv4sMXeSJ14a21J5l1eSYriza37eZKG/2bHEki5zSLxNo5lZEP2EJi65nUx8R9yvPFMYYKOEjwvakcUSC64H76dE5AhsOvcPoSGx4AAwQJ7ZjHjoCkiiud2mgLJwshqsItKT8/c2jPlQIDAQAB";
    const RSA_512: &str = "MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAL1t3zHEQfB9jkhbEdTG7uJoQQRoFBgPD8oPa3VreSsluwOLS47T6jzH4pjDJLsFE6Zf+WfYrpq7vlaQyfeFfvsCAwEAAQ==";
    const RSA_4096_PKCS1: &str = "MIICCgKCAgEAthvek3FW2YuT0qExH14F58sFem/hkslw/Ea4Rm9xf29LiruM/sxo1LgP/DWetzVq24opT54D24aQZDgbwQu7+hKCTBxKybLrfWvJvsiC073KgOw2rh+JATRVx53FDBHkmEZVnBSCyaqp/sEQ4tJsJ52dV6h+daLcx6h9L8UEQEKuzR/lPTU+avTOhzMfiTYtc/6nVHmAPiHPEncOl6HOuF1H2OZUUWrmyv1cs82cBjRCQOo9E2epsB9stfNgwoMyIieZF3AZX54rBaPCGCqCA8iMmi7rA3QZyrmapsBLdVB51cebQAIhYpD8UQJ5YR46y4rKGWLqWp7MK+olhykhb9HMkD304YpjV1MNLrv1LbZefm2xgrvCW7SsJz8I/XghAhS7nojub2MJKqrs1UqpNCerDJYCt/Y+OssmaNXx1LvJhwpHoooSUG1pmtgHK9a95O1r0F1tbvzznY39BVvqwaFsBSUtnGQXnNfvWUYkRMKiI9jJvfUUrtDhQXnkKPER2u+foR1m0yQXXc5kgE5fzrBrExcW0CAd8+QFKo4T/a1uvitQH0OK2kVOZifj8tZRm9jM6yUwCFHibpk1T6LUfFNcsfQqoBuK3vVZTipXm1hdo2Gq4aeyG5mVytFZ0ZDMMLrguV20UcuBZdKfFjgiycZWO6IefotuAaLGupvv5LsCAwEAAQ==";

    #[test]
    fn rsa_key_sizes_from_the_key() {
        let r = parse(&format!("v=DKIM1; k=rsa; p={RSA_1024}")).unwrap();
        assert_eq!(
            (r.key_type, r.bits, r.testing, r.revoked),
            (KeyType::Rsa, Some(1024), false, false)
        );
        // Whitespace inside p= (folded records) is allowed.
        let spaced = format!("p={} {}", &RSA_1024[..40], &RSA_1024[40..]);
        assert_eq!(parse(&spaced).unwrap().bits, Some(1024));
        assert_eq!(parse(&format!("p={RSA_512}")).unwrap().bits, Some(512));
        assert_eq!(
            parse(&format!("k=rsa; p={RSA_4096_PKCS1}")).unwrap().bits,
            Some(4096)
        );
    }

    #[test]
    fn flags_and_hashes() {
        let r = parse(&format!("v=DKIM1; t=y:s; h=sha1; p={RSA_1024}")).unwrap();
        assert!(r.testing);
        assert_eq!(r.hashes, Some(vec!["sha1".to_string()]));
        let r = parse(&format!("t=s; p={RSA_1024}")).unwrap();
        assert!(!r.testing);
    }

    #[test]
    fn ed25519_and_revoked() {
        let ed = "8LG20Oes8YbLwMLn5S8O+mZ9snEd3THdVdDceOlzTPk=";
        let r = parse(&format!("v=DKIM1; k=ed25519; p={ed}")).unwrap();
        assert_eq!((r.key_type, r.bits), (KeyType::Ed25519, Some(256)));
        let r = parse("v=DKIM1; p=").unwrap();
        assert!(r.revoked && r.bits.is_none());
    }

    #[test]
    fn errors_name_the_condition_and_the_tag() {
        use KeyRecordError::*;
        let cases: [(&str, KeyRecordError, &str); 7] = [
            (
                "v=DKIM1; k=dsa; p=AAAA",
                UnknownKeyType("dsa".into()),
                "k=\"dsa\"",
            ),
            (
                "k=rsa; v=DKIM1; p=AAAA",
                VersionNotFirst,
                "v= must be the first",
            ),
            (
                "v=DKIM2; p=AAAA",
                UnknownVersion("DKIM2".into()),
                "only DKIM1",
            ),
            ("v=DKIM1; k=rsa", MissingPublicKey, "p= tag is missing"),
            ("v=DKIM1; p=AAAA", NotRsaKey, "not an RSA public key"),
            (
                "v=DKIM1; k=ed25519; p=AAAA",
                Ed25519Length(3),
                "holds 3 bytes",
            ),
            (
                "v=DKIM1; p=A; p=B",
                Tags(taglist::TagError::Repeated("p".into())),
                "p= appears more than once",
            ),
        ];
        for (text, want, message) in cases {
            let got = parse(text).unwrap_err();
            assert_eq!(got, want, "{text}");
            assert!(got.to_string().contains(message), "{text}: {got}");
        }
        assert!(matches!(
            parse("v=DKIM1; p=!!!"),
            Err(PublicKeyNotBase64(e)) if !e.is_empty()
        ));
        assert!(matches!(parse("garbage"), Err(Tags(_))));
    }

    #[test]
    fn der_reader_never_panics_on_truncation() {
        let der = base64::engine::general_purpose::STANDARD
            .decode(RSA_1024)
            .unwrap();
        assert_eq!(rsa_modulus_bits(&der), Some(1024));
        // Every strict prefix is refused (no panic, no size read from a partial key).
        for n in 0..der.len() {
            assert_eq!(rsa_modulus_bits(&der[..n]), None, "prefix of {n} bytes");
        }
    }
}
