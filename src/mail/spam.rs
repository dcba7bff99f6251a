//! The receiving side's spam verdict on a probe, from the header fields its filter wrote.
//!
//! Only the trusted receiver's own part of the header counts: [`crate::mail::trust`] finds
//! it, exactly as for `Authentication-Results`, and hands the fields over in
//! [`crate::mail::trust::ReceiverView::spam_fields`]. Everything here is a pure function of
//! those fields; anything the sender wrote into its message (a forged `X-Spam-Flag: NO`)
//! never reaches it. Not for: deciding where a message was filed (the junk folder search
//! in `mail::probe` does that) or judging spam ourselves.
//!
//! No RFC defines these fields; they are what SpamAssassin and rspamd write. The shapes
//! accepted, in ABNF (RFC 5234) over the unfolded field value:
//!
//! ```text
//! x-spam-flag     = *WSP ( "YES" / "NO" ) *WSP        ; SpamAssassin, case-insensitive
//! x-spam          = *WSP ( "YES" / "NO" ) *WSP        ; rspamd's proxy and spam-header
//! x-spam-status   = *WSP ( "Yes" / "No" ) *WSP [ "," *( WSP / param ) ]
//! param           = name "=" *VCHAR                   ; score=5.3 required=5.0 tests=...
//! x-spam-score    = *WSP score *WSP
//! x-rspamd-score  = *WSP score *WSP
//! x-rspamd-action = *WSP action *WSP
//! action          = "no action" / "greylist" / "add header" / "rewrite subject"
//!                 / "soft reject" / "reject"          ; case-insensitive, one space or more
//! score           = [ "+" / "-" ] 1*DIGIT [ "." *DIGIT ]   ; finite, at most 32 characters
//! ```
//!
//! A score is never `NaN`, `inf` or an exponent (`1e999` would be infinite): Rust's
//! float parser accepts all of those, so the grammar is checked before parsing.

use crate::mail::header::Field;

/// The names of the fields this module reads, lower case.
pub const FIELD_NAMES: [&str; 6] = [
    "x-spam-flag",
    "x-spam",
    "x-spam-status",
    "x-spam-score",
    "x-rspamd-score",
    "x-rspamd-action",
];

/// Whether `name` is one of [`FIELD_NAMES`].
pub fn is_spam_field(name: &str) -> bool {
    FIELD_NAMES.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// Why one field's value was not understood; the field is then skipped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpamFieldError {
    #[error("not YES or NO: {0:?}")]
    NotAFlag(String),
    #[error("not a decimal score: {0:?}")]
    NotAScore(String),
    #[error("unknown rspamd action {0:?}")]
    UnknownAction(String),
}

/// What an rspamd `X-Rspamd-Action` says (the actions of rspamd's `actions` module).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RspamdAction {
    NoAction,
    Greylist,
    AddHeader,
    RewriteSubject,
    SoftReject,
    Reject,
}

impl RspamdAction {
    /// Whether the action means "this is spam". Greylisting and a soft reject are
    /// temporary deferrals, not a verdict on the message (a delivered probe passed them).
    pub fn is_spam(self) -> bool {
        matches!(
            self,
            RspamdAction::AddHeader | RspamdAction::RewriteSubject | RspamdAction::Reject
        )
    }
}

/// `X-Spam-Status` split into what matters here.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpamStatus {
    pub spam: bool,
    /// `score=`, when present and well formed.
    pub score: Option<f64>,
    /// `required=`, when present and well formed.
    pub required: Option<f64>,
}

/// The receiver's verdict from all its spam fields.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SpamVerdict {
    /// `Some(true)` when any field marks the message as spam, `Some(false)` when fields
    /// speak and none does, `None` when the receiver wrote nothing readable.
    pub spam: Option<bool>,
    /// The score of the top-most field that carries one.
    pub score: Option<f64>,
}

fn trimmed(value: &str) -> &str {
    value.trim_matches([' ', '\t', '\r', '\n'])
}

/// `X-Spam-Flag` and `X-Spam`: YES or NO, any case.
pub fn parse_flag(value: &str) -> Result<bool, SpamFieldError> {
    let v = trimmed(value);
    if v.eq_ignore_ascii_case("yes") {
        Ok(true)
    } else if v.eq_ignore_ascii_case("no") {
        Ok(false)
    } else {
        Err(SpamFieldError::NotAFlag(v.chars().take(64).collect()))
    }
}

/// A score per the grammar above; finite by construction.
pub fn parse_score(value: &str) -> Result<f64, SpamFieldError> {
    let v = trimmed(value);
    let refuse = || SpamFieldError::NotAScore(v.chars().take(64).collect());
    if v.is_empty() || v.len() > 32 {
        return Err(refuse());
    }
    let unsigned = v.strip_prefix(['+', '-']).unwrap_or(v);
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(refuse());
    }
    let score: f64 = v.parse().map_err(|_| refuse())?;
    if score.is_finite() {
        Ok(score)
    } else {
        Err(refuse())
    }
}

/// `X-Spam-Status: Yes, score=5.3 required=5.0 tests=... autolearn=no`.
pub fn parse_status(value: &str) -> Result<SpamStatus, SpamFieldError> {
    let v = trimmed(value);
    let (flag, rest) = v.split_once(',').unwrap_or((v, ""));
    let spam = parse_flag(flag)?;
    let mut status = SpamStatus {
        spam,
        score: None,
        required: None,
    };
    for param in rest.split_ascii_whitespace() {
        let Some((name, val)) = param.split_once('=') else {
            continue;
        };
        if name.eq_ignore_ascii_case("score") && status.score.is_none() {
            status.score = parse_score(val).ok();
        } else if name.eq_ignore_ascii_case("required") && status.required.is_none() {
            status.required = parse_score(val).ok();
        }
    }
    Ok(status)
}

/// `X-Rspamd-Action`: one of rspamd's action names, any case and spacing.
pub fn parse_rspamd_action(value: &str) -> Result<RspamdAction, SpamFieldError> {
    let words: Vec<String> = value
        .split_ascii_whitespace()
        .map(str::to_ascii_lowercase)
        .collect();
    let joined = words.join(" ");
    Ok(match joined.as_str() {
        "no action" => RspamdAction::NoAction,
        "greylist" => RspamdAction::Greylist,
        "add header" => RspamdAction::AddHeader,
        "rewrite subject" => RspamdAction::RewriteSubject,
        "soft reject" => RspamdAction::SoftReject,
        "reject" => RspamdAction::Reject,
        _ => {
            return Err(SpamFieldError::UnknownAction(
                trimmed(value).chars().take(64).collect(),
            ))
        }
    })
}

/// What one field says: spam or not (when it says), and a score (when it has one).
type FieldSay = (Option<bool>, Option<f64>);

/// One field's say, `None` for a field this module does not read.
fn read_field(f: &Field) -> Option<Result<FieldSay, SpamFieldError>> {
    let name = f.name.to_ascii_lowercase();
    Some(match name.as_str() {
        "x-spam-flag" | "x-spam" => parse_flag(&f.value).map(|s| (Some(s), None)),
        "x-spam-status" => parse_status(&f.value).map(|s| (Some(s.spam), s.score)),
        "x-spam-score" | "x-rspamd-score" => parse_score(&f.value).map(|s| (None, Some(s))),
        "x-rspamd-action" => parse_rspamd_action(&f.value).map(|a| (Some(a.is_spam()), None)),
        _ => return None,
    })
}

/// The verdict of the receiver's spam fields, `fields` top first (as
/// [`crate::mail::trust::ReceiverView::spam_fields`] gives them). Any readable field
/// saying spam makes it spam (they all come from the receiver); the score is the top-most
/// readable one. Unreadable fields are skipped, never guessed at.
pub fn verdict(fields: &[Field]) -> SpamVerdict {
    let mut out = SpamVerdict::default();
    for f in fields {
        let Some(Ok((spam, score))) = read_field(f) else {
            continue;
        };
        if let Some(s) = spam {
            out.spam = Some(out.spam.unwrap_or(false) || s);
        }
        if out.score.is_none() {
            out.score = score;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, value: &str) -> Field {
        Field {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn flag_in_any_case_and_spacing() {
        assert_eq!(parse_flag("YES"), Ok(true));
        assert_eq!(parse_flag(" yes "), Ok(true));
        assert_eq!(parse_flag("\tYes\r\n"), Ok(true));
        assert_eq!(parse_flag("NO"), Ok(false));
        assert_eq!(parse_flag("no"), Ok(false));
    }

    #[test]
    fn flag_garbage_is_refused() {
        for v in ["", "Y", "true", "1", "YES please", "N O", "yes;", "ＹＥＳ"] {
            assert!(
                matches!(parse_flag(v), Err(SpamFieldError::NotAFlag(_))),
                "{v:?}"
            );
        }
    }

    #[test]
    fn scores_positive_negative_and_plain() {
        assert_eq!(parse_score("5.3"), Ok(5.3));
        assert_eq!(parse_score(" 7.1 "), Ok(7.1));
        assert_eq!(parse_score("-2.5"), Ok(-2.5));
        assert_eq!(parse_score("+1.0"), Ok(1.0));
        assert_eq!(parse_score("0"), Ok(0.0));
        assert_eq!(parse_score("12."), Ok(12.0));
        assert_eq!(parse_score("-0.00"), Ok(0.0));
    }

    #[test]
    fn nan_inf_exponents_and_garbage_scores_are_refused() {
        for v in [
            "NaN",
            "nan",
            "inf",
            "-inf",
            "+infinity",
            "1e999",
            "1e3",
            "",
            "-",
            ".5",
            "5,3",
            "5.3.1",
            "0x10",
            "5 .3",
            "five",
            "1234567890123456789012345678901234",
            "٣",
        ] {
            assert!(
                matches!(parse_score(v), Err(SpamFieldError::NotAScore(_))),
                "{v:?}"
            );
        }
    }

    #[test]
    fn spamassassin_status_line() {
        let s = parse_status(
            "Yes, score=5.3 required=5.0 tests=BAYES_99,HTML_MESSAGE autolearn=no\r\n\tautolearn_force=no version=3.4.6",
        )
        .unwrap();
        assert_eq!(
            s,
            SpamStatus {
                spam: true,
                score: Some(5.3),
                required: Some(5.0)
            }
        );
        let s = parse_status("No, score=-0.1 required=5.0 tests=none").unwrap();
        assert!(!s.spam);
        assert_eq!(s.score, Some(-0.1));
    }

    #[test]
    fn rspamd_status_line_and_bare_flag() {
        assert_eq!(
            parse_status("Yes, score=7.10").unwrap(),
            SpamStatus {
                spam: true,
                score: Some(7.1),
                required: None
            }
        );
        assert_eq!(
            parse_status("no").unwrap(),
            SpamStatus {
                spam: false,
                score: None,
                required: None
            }
        );
    }

    #[test]
    fn status_with_a_bad_score_keeps_the_flag_only() {
        let s = parse_status("Yes, score=nan required=inf").unwrap();
        assert!(s.spam);
        assert_eq!(s.score, None);
        assert_eq!(s.required, None);
        assert!(parse_status("Maybe, score=3").is_err());
        assert!(parse_status(", score=3").is_err());
    }

    #[test]
    fn every_rspamd_action() {
        let cases = [
            ("no action", RspamdAction::NoAction, false),
            ("greylist", RspamdAction::Greylist, false),
            ("add header", RspamdAction::AddHeader, true),
            ("rewrite subject", RspamdAction::RewriteSubject, true),
            ("soft reject", RspamdAction::SoftReject, false),
            ("reject", RspamdAction::Reject, true),
        ];
        for (v, action, spam) in cases {
            assert_eq!(parse_rspamd_action(v), Ok(action), "{v}");
            assert_eq!(action.is_spam(), spam, "{v}");
        }
        assert_eq!(
            parse_rspamd_action("  Add   Header \t"),
            Ok(RspamdAction::AddHeader)
        );
        assert_eq!(
            parse_rspamd_action("REWRITE SUBJECT"),
            Ok(RspamdAction::RewriteSubject)
        );
        for v in ["", "add-header", "addheader", "discard", "no", "reject now"] {
            assert!(
                matches!(
                    parse_rspamd_action(v),
                    Err(SpamFieldError::UnknownAction(_))
                ),
                "{v:?}"
            );
        }
    }

    #[test]
    fn verdict_combines_fields_top_first() {
        let v = verdict(&[
            f("X-Rspamd-Score", "7.1"),
            f("X-Rspamd-Action", "add header"),
            f("X-Spam-Status", "Yes, score=9.9"),
        ]);
        assert_eq!(v.spam, Some(true));
        assert_eq!(v.score, Some(7.1), "the top-most score counts");
        let v = verdict(&[f("x-spam-flag", "NO"), f("X-Spam-Score", "-1.2")]);
        assert_eq!(v.spam, Some(false));
        assert_eq!(v.score, Some(-1.2));
    }

    #[test]
    fn any_spam_field_of_the_receiver_makes_it_spam() {
        let v = verdict(&[f("X-Spam-Flag", "NO"), f("X-Spam", "Yes")]);
        assert_eq!(v.spam, Some(true));
        let v = verdict(&[f("X-Rspamd-Action", "no action"), f("X-Spam-Flag", "YES")]);
        assert_eq!(v.spam, Some(true));
    }

    #[test]
    fn unreadable_fields_are_skipped_not_guessed() {
        let v = verdict(&[
            f("X-Spam-Flag", "probably"),
            f("X-Spam-Score", "inf"),
            f("X-Rspamd-Score", "NaN"),
            f("X-Rspamd-Action", "quarantine"),
        ]);
        assert_eq!(v, SpamVerdict::default());
        let v = verdict(&[f("X-Spam-Score", "garbage"), f("X-Rspamd-Score", "3.5")]);
        assert_eq!(v.score, Some(3.5));
        assert_eq!(v.spam, None, "a score alone is no verdict");
    }

    #[test]
    fn other_fields_are_ignored() {
        let v = verdict(&[
            f("Subject", "YES"),
            f("X-Spam-Level", "*******"),
            f("X-Spamd-Result", "default: True [7.10 / 15.00]"),
        ]);
        assert_eq!(v, SpamVerdict::default());
        assert!(is_spam_field("X-SPAM-FLAG"));
        assert!(!is_spam_field("X-Spam-Level"));
    }

    #[test]
    fn nothing_is_no_verdict() {
        assert_eq!(verdict(&[]), SpamVerdict::default());
    }
}
