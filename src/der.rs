//! Just enough DER for what the checks read: a length-aware TLV reader (DKIM's RSA keys),
//! and, through the maintained `x509-parser`, the SubjectPublicKeyInfo and the expiry of an
//! X.509 certificate (RFC 5280 §4.1). Certificates come from any MX the DANE check reaches,
//! so they are hostile input: every function returns `None` on malformed input and nothing
//! here panics (a hand-written time parser once sliced a notAfter by bytes and panicked on
//! a multi-byte character).

/// One TLV: (tag, contents, rest).
pub fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = (len << 8) | usize::from(b);
        }
        rest = &rest[n..];
        len
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

fn certificate(der: &[u8]) -> Option<x509_parser::certificate::X509Certificate<'_>> {
    x509_parser::parse_x509_certificate(der)
        .ok()
        .map(|(_, cert)| cert)
}

/// SubjectPublicKeyInfo, DER-encoded (TLSA selector 1).
pub fn spki(cert: &[u8]) -> Option<&[u8]> {
    certificate(cert).map(|c| c.tbs_certificate.subject_pki.raw)
}

/// notAfter as Unix seconds.
pub fn not_after(cert: &[u8]) -> Option<i64> {
    certificate(cert).map(|c| c.validity().not_after.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed P-256 certificate for mx.example.test made with `openssl req -x509`,
    /// notAfter 361129032744Z.
    const CERT_HEX: &[&str] = &[
        "3082018a3082012fa0030201020214256fae1627ca058f65127051c6948fb59c529491300a06082a8648ce3d",
        "040302301a3118301606035504030c0f6d782e6578616d706c652e74657374301e170d323631323032303332",
        "3734345a170d3336313132393033323734345a301a3118301606035504030c0f6d782e6578616d706c652e74",
        "6573743059301306072a8648ce3d020106082a8648ce3d03010703420004a7cf717dbde8d512c852698ba7bd",
        "365e76fd7a04dc26386d213b20634f4f4d85e2a28ab27679ae3c45260718d7fc52654e1ea73434f4c2c18240",
        "797a08fb78d8a3533051301d0603551d0e04160414881c001848d00d974fb7391db3c4f7b311af81cf301f06",
        "03551d23041830168014881c001848d00d974fb7391db3c4f7b311af81cf300f0603551d130101ff04053003",
        "0101ff300a06082a8648ce3d04030203490030460221009c4f1e27e56ec61e9af3728134d1c02ad16fe9aa24",
        "54de5c63c0537da8216da2022100d9d02d6f0d2c71b4008e553ba751c0a3d60f3aa992569c7983f20935d5b8",
        "766a",
    ];
    const SPKI_HEX: &str = "3059301306072a8648ce3d020106082a8648ce3d03010703420004a7cf717dbde8d512c852698ba7bd365e76fd7a04dc26386d213b20634f4f4d85e2a28ab27679ae3c45260718d7fc52654e1ea73434f4c2c18240797a08fb78d8";

    fn unhex(h: &str) -> Vec<u8> {
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect()
    }

    fn cert() -> Vec<u8> {
        unhex(&CERT_HEX.concat())
    }

    #[test]
    fn reads_a_real_certificate() {
        let der = cert();
        assert_eq!(not_after(&der), Some(2_111_542_064));
        assert_eq!(spki(&der), Some(unhex(SPKI_HEX).as_slice()));
    }

    /// A hostile MX's certificate whose notAfter holds a multi-byte character where a
    /// digit belongs (same length in bytes): no expiry, and no panic.
    #[test]
    fn a_multi_byte_character_in_not_after_is_no_expiry() {
        let mut der = cert();
        let at = der
            .windows(13)
            .position(|w| w == b"361129032744Z")
            .expect("the notAfter of the sample");
        der[at..at + 13].copy_from_slice("1€29032744Z".as_bytes());
        assert_eq!("1€29032744Z".len(), 13);
        assert_eq!(not_after(&der), None);
    }

    #[test]
    fn truncated_input_is_none() {
        assert_eq!(tlv(&[0x30]), None);
        assert_eq!(tlv(&[0x30, 0x85, 1, 2, 3, 4, 5]), None);
        assert_eq!(spki(&[0x30, 0x03, 0x30, 0x01, 0x02]), None);
        assert_eq!(not_after(&[]), None);
        let der = cert();
        for cut in [1, 10, 100, der.len() - 1] {
            assert_eq!(not_after(&der[..cut]), None);
        }
    }
}
