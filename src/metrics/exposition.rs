//! The per-domain series as they are stored, and a scrape's body made from them.
//!
//! With 10,000 domains the text is some 15 MB. Building it whole for every scrape cost a
//! second copy of that size in memory and made the scrape wait for the copy before the
//! first byte; the body is instead written out in chunks from the stored fragments while
//! the client reads, so a scrape holds one chunk at a time. Its length is known in
//! advance, so the response still carries a `Content-Length`.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// How much text one chunk of the body carries (the last one of a family may be larger by
/// one domain's lines).
const CHUNK: usize = 64 * 1024;

/// How many per-domain families there are.
const FAMILY_COUNT: usize = super::FAMILIES.len();

/// A domain's pre-rendered series, every family in one buffer (`ends[i]` is where family
/// `i`'s lines end). One allocation per domain instead of one per family, and the ends
/// kept by value: a scrape copies each domain's ends into its snapshot once and then
/// walks that flat snapshot once per family, touching a domain's text only to copy it.
/// (With the ends behind a pointer, the pointer chasing across 10,000 domains for each of
/// 20 families was most of a scrape's time.)
#[derive(Clone)]
pub(super) struct Fragments {
    text: Arc<str>,
    ends: [u32; FAMILY_COUNT],
}

impl Fragments {
    /// `parts[i]` is family `i`'s lines; missing trailing parts are empty.
    pub(super) fn new(parts: Vec<String>) -> Fragments {
        assert!(parts.len() <= FAMILY_COUNT, "more parts than families");
        let mut text = String::with_capacity(parts.iter().map(String::len).sum());
        let mut ends = [0u32; FAMILY_COUNT];
        for (i, end) in ends.iter_mut().enumerate() {
            if let Some(part) = parts.get(i) {
                text.push_str(part);
            }
            *end = u32::try_from(text.len()).expect("a domain's series are far below 4 GB");
        }
        Fragments {
            text: Arc::from(text),
            ends,
        }
    }

    fn family(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text.as_bytes()[start..self.ends[i] as usize]
    }

    fn len(&self) -> usize {
        self.text.len()
    }

    /// Whether both are the one text rendered once (not two renderings of it).
    #[cfg(test)]
    pub(super) fn same_rendering(&self, other: &Fragments) -> bool {
        Arc::ptr_eq(&self.text, &other.text)
    }
}

/// A scrape's body: the registry's text, then each per-domain family's `# HELP`/`# TYPE`
/// header followed by that family's lines from every domain, in chunks of about
/// [`CHUNK`] bytes. It owns a snapshot of the fragments taken when the scrape began, so
/// domains updated while it is sent do not tear it, and the store's lock is not held.
pub struct Exposition {
    head: Option<Bytes>,
    headers: Vec<String>,
    fragments: Vec<Fragments>,
    /// The family being written and the next domain in it; `domain == None` means its
    /// header has not been written yet.
    family: usize,
    domain: Option<usize>,
    remaining: u64,
}

impl Exposition {
    /// `families` are (name, type, help) in the order of the fragments' parts.
    pub(super) fn new(
        head: Vec<u8>,
        fragments: Vec<Fragments>,
        families: &[(&str, &str, &str)],
    ) -> Exposition {
        assert!(
            families.len() <= FAMILY_COUNT,
            "more families than fragments hold"
        );
        let headers: Vec<String> = families
            .iter()
            .map(|(name, kind, help)| format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"))
            .collect();
        let remaining = head.len()
            + headers.iter().map(String::len).sum::<usize>()
            + fragments.iter().map(|f| f.len()).sum::<usize>();
        Exposition {
            head: (!head.is_empty()).then(|| Bytes::from(head)),
            headers,
            fragments,
            family: 0,
            domain: None,
            remaining: remaining as u64,
        }
    }

    /// Bytes still to come.
    pub fn len(&self) -> u64 {
        self.remaining
    }

    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }

    /// The next piece of the body, `None` at the end.
    fn next_chunk(&mut self) -> Option<Bytes> {
        if let Some(head) = self.head.take() {
            self.remaining -= head.len() as u64;
            return Some(head);
        }
        let mut chunk = Vec::with_capacity(CHUNK + 1024);
        while self.family < self.headers.len() && chunk.len() < CHUNK {
            let next = match self.domain {
                None => {
                    chunk.extend_from_slice(self.headers[self.family].as_bytes());
                    0
                }
                Some(d) => {
                    chunk.extend_from_slice(self.fragments[d].family(self.family));
                    d + 1
                }
            };
            if next < self.fragments.len() {
                self.domain = Some(next);
            } else {
                self.family += 1;
                self.domain = None;
            }
        }
        if chunk.is_empty() {
            return None;
        }
        self.remaining = self.remaining.saturating_sub(chunk.len() as u64);
        Some(Bytes::from(chunk))
    }

    /// The whole body as one string.
    pub fn into_string(mut self) -> String {
        let mut text = Vec::with_capacity(usize::try_from(self.remaining).unwrap_or(0));
        while let Some(chunk) = self.next_chunk() {
            text.extend_from_slice(&chunk);
        }
        String::from_utf8(text).unwrap_or_default()
    }
}

impl Body for Exposition {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.get_mut().next_chunk().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fragments(parts: &[&str]) -> Fragments {
        Fragments::new(parts.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn fragments_keep_each_family_apart() {
        let f = Fragments::new(vec!["a 1\n".into(), String::new(), "c 3\nc 4\n".into()]);
        assert_eq!(f.family(0), b"a 1\n");
        assert_eq!(f.family(1), b"");
        assert_eq!(f.family(2), b"c 3\nc 4\n");
        assert_eq!(f.len(), 12);
        assert_eq!(f.family(3), b"", "a family the domain never had is empty");
    }

    const FAMILIES: &[(&str, &str, &str)] = &[("a", "gauge", "A."), ("b", "gauge", "B.")];

    #[test]
    fn the_body_groups_each_family_across_domains() {
        let body = Exposition::new(
            b"head 1\n".to_vec(),
            vec![
                fragments(&["a{d=\"x\"} 1\n", ""]),
                fragments(&["a{d=\"y\"} 2\n", "b{d=\"y\"} 3\n"]),
            ],
            FAMILIES,
        );
        assert_eq!(
            body.into_string(),
            "head 1\n\
             # HELP a A.\n# TYPE a gauge\na{d=\"x\"} 1\na{d=\"y\"} 2\n\
             # HELP b B.\n# TYPE b gauge\nb{d=\"y\"} 3\n"
        );
    }

    #[test]
    fn the_announced_length_is_the_length_sent_in_chunks() {
        let line = "a{domain=\"c00000.test\",check=\"spf\"} 1\n";
        let many: Vec<Fragments> = (0..5_000).map(|_| fragments(&[line, "b 2\n"])).collect();
        let mut body = Exposition::new(b"head 1\n".to_vec(), many, FAMILIES);
        let announced = body.len();
        let (mut sent, mut chunks) = (0u64, 0);
        while let Some(chunk) = body.next_chunk() {
            assert!(
                chunk.len() <= CHUNK + line.len() + 64,
                "chunk of {}",
                chunk.len()
            );
            sent += chunk.len() as u64;
            chunks += 1;
            assert_eq!(body.len(), announced - sent);
        }
        assert_eq!(sent, announced);
        assert!(chunks > 3, "sent in {chunks} chunks");
        assert!(body.is_empty() && body.is_end_stream());
    }

    #[test]
    fn no_domains_still_announce_every_family() {
        let body = Exposition::new(Vec::new(), Vec::new(), FAMILIES);
        assert_eq!(
            body.into_string(),
            "# HELP a A.\n# TYPE a gauge\n# HELP b B.\n# TYPE b gauge\n"
        );
    }
}
