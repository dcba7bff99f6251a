//! Just enough DER to read keys and certificates: a length-aware TLV reader, the
//! SubjectPublicKeyInfo and the expiry of an X.509 certificate (RFC 5280 §4.1). Every
//! function returns `None` on malformed input; nothing here panics.

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

/// The whole TLV (header included) at the start of `input`, and the rest.
fn element(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (_, contents, rest) = tlv(input)?;
    let header = input.len() - rest.len() - contents.len();
    Some((&input[..header + contents.len()], rest))
}

/// The fields of tbsCertificate in order, skipping the optional `[0]` version.
fn tbs_fields(cert: &[u8]) -> Option<Vec<&[u8]>> {
    let (tag, body, _) = tlv(cert)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, tbs, _) = tlv(body)?;
    if tag != 0x30 {
        return None;
    }
    let mut fields = Vec::new();
    let mut rest = tbs;
    while !rest.is_empty() {
        let (el, r) = element(rest)?;
        if !(fields.is_empty() && el.first() == Some(&0xa0)) {
            fields.push(el);
        }
        rest = r;
    }
    Some(fields)
}

/// SubjectPublicKeyInfo, DER-encoded (TLSA selector 1).
pub fn spki(cert: &[u8]) -> Option<&[u8]> {
    // serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
    tbs_fields(cert)?.get(5).copied()
}

/// notAfter as Unix seconds.
pub fn not_after(cert: &[u8]) -> Option<i64> {
    let validity = *tbs_fields(cert)?.get(3)?;
    let (_, body, _) = tlv(validity)?;
    let (_, _not_before, rest) = tlv(body)?;
    let (tag, time, _) = tlv(rest)?;
    parse_time(tag, std::str::from_utf8(time).ok()?)
}

/// UTCTime (`YYMMDDHHMMSSZ`, 0x17) or GeneralizedTime (`YYYYMMDDHHMMSSZ`, 0x18).
fn parse_time(tag: u8, s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 if s.len() == 12 => {
            let yy: i64 = s[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &s[2..])
        }
        0x18 if s.len() == 14 => (s[..4].parse().ok()?, &s[4..]),
        _ => return None,
    };
    let n = |i: usize| -> Option<i64> { rest.get(i..i + 2)?.parse().ok() };
    let (month, day, hour, min, sec) = (n(0)?, n(2)?, n(4)?, n(6)?, n(8)?);
    // Days from the civil date (proleptic Gregorian), after Howard Hinnant's algorithm.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + min * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time(0x17, "700101000000Z"), Some(0));
        assert_eq!(parse_time(0x17, "240229120000Z"), Some(1_709_208_000));
        assert_eq!(parse_time(0x18, "20380119031408Z"), Some(2_147_483_648));
        assert_eq!(parse_time(0x17, "garbage"), None);
    }

    #[test]
    fn truncated_input_is_none() {
        assert_eq!(tlv(&[0x30]), None);
        assert_eq!(tlv(&[0x30, 0x85, 1, 2, 3, 4, 5]), None);
        assert_eq!(spki(&[0x30, 0x03, 0x30, 0x01, 0x02]), None);
        assert_eq!(not_after(&[]), None);
    }
}
