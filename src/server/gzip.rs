//! `Content-Encoding: gzip` for `/metrics`: whether a client accepts it (a pure parse of
//! `Accept-Encoding`), and a body that compresses another body's chunks as they stream.
//!
//! Prometheus always sends `Accept-Encoding: gzip`; with 10,000 domains the text is some
//! 15 MB and compresses to a small fraction of that, since the series repeat their names
//! and labels. The compressed body streams like the plain one (one chunk in memory at a
//! time), so its length is not known in advance and it goes out chunked.

use std::convert::Infallible;
use std::io::Write as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use http_body::{Body, Frame};

/// The deflate level: 1, the fastest. A scrape is served on the request path and its
/// latency is a target (issue 18); exposition text is so repetitive that level 1 already
/// takes away most of its size, and the higher levels buy a few per cent more for several
/// times the CPU. (Prometheus' own client libraries pick the fast end too.)
pub const LEVEL: u32 = 1;

/// Whether an `Accept-Encoding` field value (several fields joined with `,`) accepts
/// gzip, after RFC 9110 12.5.3:
///
/// ```text
/// Accept-Encoding  = #( codings [ weight ] )
/// codings          = content-coding / "identity" / "*"
/// weight           = OWS ";" OWS "q=" qvalue
/// ```
///
/// Codings are case-insensitive; `x-gzip` is gzip (RFC 9110 8.4.1.3). A coding with
/// `q=0` is refused; `*` stands for every coding not named. A weight that does not parse
/// counts as a refusal: the plain body is always understood, a wrong guess is not.
pub fn accepts_gzip(accept_encoding: &str) -> bool {
    let mut named = None;
    let mut any = None;
    for element in accept_encoding.split(',') {
        let mut parts = element.split(';');
        let coding = parts.next().unwrap_or("").trim();
        if coding.is_empty() {
            continue;
        }
        let mut acceptable = true;
        for param in parts {
            let Some((key, value)) = param.split_once('=') else {
                acceptable = false;
                continue;
            };
            if key.trim().eq_ignore_ascii_case("q") {
                acceptable = qvalue_above_zero(value.trim()).unwrap_or(false);
            }
        }
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            // The most favourable of repeated entries counts.
            named = Some(named.unwrap_or(false) || acceptable);
        } else if coding == "*" {
            any = Some(any.unwrap_or(false) || acceptable);
        }
    }
    named.or(any).unwrap_or(false)
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`: whether it is above
/// zero, `None` when it is not a qvalue.
fn qvalue_above_zero(q: &str) -> Option<bool> {
    let (int, frac) = q.split_once('.').unwrap_or((q, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match int {
        "0" => Some(frac.bytes().any(|b| b != b'0')),
        "1" if frac.bytes().all(|b| b == b'0') => Some(true),
        _ => None,
    }
}

/// `inner`'s bytes, gzip-compressed chunk by chunk as the client reads.
pub struct GzipBody<B> {
    inner: B,
    /// `None` once the trailer has been written.
    encoder: Option<GzEncoder<Vec<u8>>>,
}

impl<B> GzipBody<B> {
    pub fn new(inner: B) -> Self {
        GzipBody {
            inner,
            encoder: Some(GzEncoder::new(Vec::new(), Compression::new(LEVEL))),
        }
    }
}

impl<B> Body for GzipBody<B>
where
    B: Body<Data = Bytes, Error = Infallible> + Unpin,
{
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        loop {
            let Some(encoder) = this.encoder.as_mut() else {
                return Poll::Ready(None);
            };
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue; // trailers: none are sent for /metrics
                    };
                    // Writing into a Vec cannot fail.
                    let _ = encoder.write_all(&data);
                    let out = std::mem::take(encoder.get_mut());
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                    }
                    // deflate kept it all for now: read on.
                }
                Poll::Ready(None) => {
                    let mut encoder = this.encoder.take().expect("checked above");
                    let _ = encoder.try_finish();
                    let out = std::mem::take(encoder.get_mut());
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.encoder.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_accepted_when_named_or_covered_by_a_star() {
        for yes in [
            "gzip",
            "GZIP",
            "x-gzip",
            "deflate, gzip",
            "gzip;q=1.0, identity; q=0.5, *;q=0",
            "gzip;q=0.001",
            "gzip ; Q=0.5",
            "*",
            "br, *;q=0.1",
            "identity, gzip;q=0, gzip",
            ",,gzip,",
        ] {
            assert!(accepts_gzip(yes), "{yes:?}");
        }
    }

    #[test]
    fn gzip_is_refused_when_weighted_zero_or_not_named() {
        for no in [
            "",
            "identity",
            "deflate, br",
            "gzip;q=0",
            "gzip;q=0.000",
            "gzip; q=0, *",
            "*;q=0",
            "gzip;q=2",
            "gzip;q=0.5000",
            "gzip;q=abc",
            "gzip;q",
            "gzipped",
            "x-gzip2",
        ] {
            assert!(!accepts_gzip(no), "{no:?}");
        }
    }

    #[test]
    fn qvalues_follow_the_grammar() {
        assert_eq!(qvalue_above_zero("1"), Some(true));
        assert_eq!(qvalue_above_zero("1.000"), Some(true));
        assert_eq!(qvalue_above_zero("1.001"), None);
        assert_eq!(qvalue_above_zero("0."), Some(false));
        assert_eq!(qvalue_above_zero("0.010"), Some(true));
        assert_eq!(qvalue_above_zero(".5"), None);
        assert_eq!(qvalue_above_zero("-0"), None);
    }

    /// Chunks as a streaming body yields them.
    struct Chunks(std::collections::VecDeque<Bytes>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            Poll::Ready(self.get_mut().0.pop_front().map(|b| Ok(Frame::data(b))))
        }
    }

    fn drain(mut body: GzipBody<Chunks>) -> (Vec<u8>, usize) {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let (mut out, mut frames) = (Vec::new(), 0);
        while let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut body).poll_frame(&mut cx) {
            out.extend_from_slice(&frame.into_data().unwrap());
            frames += 1;
        }
        assert!(body.is_end_stream());
        (out, frames)
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Read;
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut text)
            .unwrap();
        text
    }

    #[test]
    fn the_compressed_stream_decompresses_to_the_chunks_in_order() {
        let chunks: Vec<Bytes> = (0..200)
            .map(|i| Bytes::from(format!("series{{domain=\"d{i}.test\"}} {i}\n").repeat(500)))
            .collect();
        let plain: Vec<u8> = chunks.iter().flat_map(|c| c.to_vec()).collect();
        let (compressed, frames) = drain(GzipBody::new(Chunks(chunks.into())));
        assert_eq!(gunzip(&compressed), plain);
        assert!(frames > 1, "streamed in {frames} frames");
        assert!(
            compressed.len() * 5 < plain.len(),
            "{} of {}",
            compressed.len(),
            plain.len()
        );
    }

    #[test]
    fn an_empty_body_is_a_valid_empty_gzip_stream() {
        let (compressed, _) = drain(GzipBody::new(Chunks(Default::default())));
        assert!(gunzip(&compressed).is_empty());
    }
}
