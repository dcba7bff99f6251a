//! The records of a cached answer packed into one buffer. With 10,000 domains the cache
//! keeps some 107,000 answers for their TTL; as an `Answer` each record list cost an `Arc`
//! (64 bytes), the record vector (32 bytes a record) and for TXT a vector of strings plus
//! one allocation per string, several times the record's own bytes. Packed, an answer is
//! one allocation of about its wire size, unpacked again when a check reads it (a cache
//! hit, far rarer than the answer's keeping: a domain's names are read once per run).
//!
//! The format is private to the cache and only ever read back by this process:
//! `u16` count of aliases, each alias as text, then the records, each a tag byte and its
//! fields; texts and byte strings as a `u16` length and the bytes, integers little-endian.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::resolver::{Answer, RData};

const A: u8 = 1;
const AAAA: u8 = 2;
const MX: u8 = 3;
const TXT: u8 = 4;
const PTR: u8 = 5;
const CNAME: u8 = 6;
const TLSA: u8 = 7;

/// `records` and `cname_chain` packed, or `None` when a field is longer than a `u16`
/// counts (never from the wire, whose messages are at most 64 KiB; the cache then keeps
/// the answer as it is).
pub(super) fn pack(records: &[RData], cname_chain: &[String]) -> Option<Box<[u8]>> {
    let mut out = Vec::with_capacity(packed_size_hint(records, cname_chain));
    put_len(&mut out, cname_chain.len())?;
    for alias in cname_chain {
        put_bytes(&mut out, alias.as_bytes())?;
    }
    for record in records {
        match record {
            RData::A(ip) => {
                out.push(A);
                out.extend_from_slice(&ip.octets());
            }
            RData::Aaaa(ip) => {
                out.push(AAAA);
                out.extend_from_slice(&ip.octets());
            }
            RData::Mx {
                preference,
                exchange,
            } => {
                out.push(MX);
                out.extend_from_slice(&preference.to_le_bytes());
                put_bytes(&mut out, exchange.as_bytes())?;
            }
            RData::Txt(parts) => {
                out.push(TXT);
                put_len(&mut out, parts.len())?;
                for part in parts {
                    put_bytes(&mut out, part)?;
                }
            }
            RData::Ptr(name) => {
                out.push(PTR);
                put_bytes(&mut out, name.as_bytes())?;
            }
            RData::Cname(name) => {
                out.push(CNAME);
                put_bytes(&mut out, name.as_bytes())?;
            }
            RData::Tlsa {
                usage,
                selector,
                matching,
                data,
            } => {
                out.extend_from_slice(&[TLSA, *usage, *selector, *matching]);
                put_bytes(&mut out, data)?;
            }
        }
    }
    Some(out.into_boxed_slice())
}

/// The answer `pack` was given, or `None` for bytes it did not write.
pub(super) fn unpack(bytes: &[u8]) -> Option<Answer> {
    let mut input = Reader(bytes);
    let aliases = input.len()?;
    let mut cname_chain = Vec::with_capacity(aliases);
    for _ in 0..aliases {
        cname_chain.push(input.text()?);
    }
    let mut records = Vec::new();
    while let Some(tag) = input.byte() {
        records.push(match tag {
            A => RData::A(Ipv4Addr::from(<[u8; 4]>::try_from(input.take(4)?).ok()?)),
            AAAA => RData::Aaaa(Ipv6Addr::from(<[u8; 16]>::try_from(input.take(16)?).ok()?)),
            MX => RData::Mx {
                preference: input.u16()?,
                exchange: input.text()?,
            },
            TXT => {
                let count = input.len()?;
                let mut parts = Vec::with_capacity(count);
                for _ in 0..count {
                    parts.push(input.bytes()?.to_vec());
                }
                RData::Txt(parts)
            }
            PTR => RData::Ptr(input.text()?),
            CNAME => RData::Cname(input.text()?),
            TLSA => RData::Tlsa {
                usage: input.byte()?,
                selector: input.byte()?,
                matching: input.byte()?,
                data: input.bytes()?.to_vec(),
            },
            _ => return None,
        });
    }
    Some(Answer::Records {
        records,
        cname_chain,
    })
}

/// The packed size when every length fits (one allocation, no growing).
fn packed_size_hint(records: &[RData], cname_chain: &[String]) -> usize {
    let record = |r: &RData| match r {
        RData::A(_) => 5,
        RData::Aaaa(_) => 17,
        RData::Mx { exchange, .. } => 5 + exchange.len(),
        RData::Txt(parts) => 3 + parts.iter().map(|p| 2 + p.len()).sum::<usize>(),
        RData::Ptr(name) | RData::Cname(name) => 3 + name.len(),
        RData::Tlsa { data, .. } => 6 + data.len(),
    };
    2 + cname_chain.iter().map(|a| 2 + a.len()).sum::<usize>()
        + records.iter().map(record).sum::<usize>()
}

fn put_len(out: &mut Vec<u8>, len: usize) -> Option<()> {
    out.extend_from_slice(&u16::try_from(len).ok()?.to_le_bytes());
    Some(())
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) -> Option<()> {
    put_len(out, bytes.len())?;
    out.extend_from_slice(bytes);
    Some(())
}

/// The unread rest of a packed answer.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }

    fn len(&mut self) -> Option<usize> {
        self.u16().map(usize::from)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = self.len()?;
        self.take(len)
    }

    fn text(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(records: Vec<RData>, cname_chain: Vec<String>) -> Box<[u8]> {
        let packed = pack(&records, &cname_chain).expect("packs");
        assert_eq!(
            unpack(&packed),
            Some(Answer::Records {
                records,
                cname_chain
            })
        );
        packed
    }

    #[test]
    fn every_record_type_comes_back_as_it_went_in() {
        round_trip(
            vec![
                RData::A(Ipv4Addr::new(192, 0, 2, 1)),
                RData::Aaaa("2001:db8::25".parse().unwrap()),
                RData::Mx {
                    preference: 10,
                    exchange: "mx1.example.com".into(),
                },
                RData::Mx {
                    preference: 0,
                    exchange: String::new(),
                },
                RData::Txt(vec![b"v=spf1 ".to_vec(), b"-all".to_vec(), Vec::new()]),
                RData::Txt(Vec::new()),
                RData::Ptr("host.example.net".into()),
                RData::Cname("alias.example.org".into()),
                RData::Tlsa {
                    usage: 3,
                    selector: 1,
                    matching: 1,
                    data: vec![0xab; 32],
                },
            ],
            vec!["www.example.com".into(), "cdn.example.net".into()],
        );
        round_trip(Vec::new(), Vec::new());
    }

    #[test]
    fn a_txt_record_packs_to_its_bytes_and_a_few_more() {
        let text = b"v=DMARC1; p=reject; rua=mailto:dmarc@example.com".to_vec();
        let packed = round_trip(vec![RData::Txt(vec![text.clone()])], Vec::new());
        // alias count, tag, string count, string length: 7 bytes around the text.
        assert_eq!(packed.len(), text.len() + 7);
        assert_eq!(&packed[..7], &[0, 0, TXT, 1, 0, text.len() as u8, 0]);
    }

    #[test]
    fn a_field_longer_than_a_u16_counts_is_not_packed() {
        let long = RData::Txt(vec![vec![b'a'; 70_000]]);
        assert_eq!(pack(&[long], &[]), None);
    }

    #[test]
    fn bytes_it_did_not_write_are_refused() {
        assert_eq!(unpack(&[]), None, "no alias count");
        assert_eq!(unpack(&[1, 0]), None, "an alias missing");
        assert_eq!(unpack(&[0, 0, 99]), None, "an unknown tag");
        assert_eq!(unpack(&[0, 0, A, 192, 0, 2]), None, "a short address");
        assert_eq!(unpack(&[0, 0, PTR, 5, 0, b'a']), None, "a short name");
        assert_eq!(unpack(&[0, 0, PTR, 1, 0, 0xff]), None, "a name not UTF-8");
    }
}
