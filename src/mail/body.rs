//! The text of a message's body, as a person reading the mail would see it: what the
//! verifier's report (`verifier_report`) is parsed from, both when a probe reads its
//! reply (`probe`) and when `inspect` is given a saved message. It lives with the other
//! message parsers so that the probe needs nothing of the `inspect` command.

/// The text of the message body (decoded when MIME says so: a verifier's reply is often
/// quoted-printable or base64); the raw body after the header when the message cannot be
/// parsed, so that a malformed reply is still read rather than dropped.
pub fn body_text(raw: &[u8]) -> String {
    if let Some(message) = mail_parser::MessageParser::default().parse(raw) {
        if let Some(text) = message.body_text(0) {
            return text.into_owned();
        }
    }
    String::from_utf8_lossy(super::header::split_message(raw).1).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_mime_encodes() {
        let raw = b"From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nSPF check: pass=0A=\r\nDKIM check: pass\r\n";
        assert_eq!(body_text(raw), "SPF check: pass\nDKIM check: pass\r\n");
    }

    #[test]
    fn unparsable_messages_give_the_raw_body() {
        assert_eq!(body_text(b""), "");
        assert!(body_text(b"Subject: x\r\n\r\nhello").contains("hello"));
    }
}
