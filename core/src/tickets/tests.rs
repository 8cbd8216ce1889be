use std::string::String;
use std::vec::Vec;

use proptest::prelude::*;

use super::*;

// A minimal protobuf and base64 writer, independent of the reader under test.

fn varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

fn field(number: u64, wire: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = varint(number << 3 | u64::from(wire));
    if wire == LEN {
        out.extend(varint(payload.len() as u64));
    }
    out.extend_from_slice(payload);
    out
}

fn base64(bytes: &[u8], url_safe: bool, pad: bool) -> String {
    let table: &[u8] = if url_safe {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0_u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(table[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        if pad {
            for _ in chunk.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

struct Payment {
    face: Vec<u8>,
    win_prob: Vec<u8>,
    tickets: u64,
    price: Option<(u64, u64)>,
}

impl Payment {
    fn always_wins(face: u128, tickets: u64) -> Self {
        Self {
            face: face.to_be_bytes().to_vec(),
            win_prob: [0xff; 32].to_vec(),
            tickets,
            price: Some((1, 1)),
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut params = field(1, LEN, &[0xaa; 20]);
        params.extend(field(2, LEN, &self.face));
        params.extend(field(3, LEN, &self.win_prob));
        params.extend(field(4, LEN, &[0xbb; 32]));
        params.extend(field(6, LEN, &[0x01, 0x02]));
        let mut msg = field(1, LEN, &params);
        msg.extend(field(2, LEN, &[0x11; 20]));
        msg.extend(field(3, LEN, &field(1, VARINT, &varint(7))));
        for nonce in 0..self.tickets {
            let mut sender = field(1, VARINT, &varint(nonce + 1));
            sender.extend(field(2, LEN, &[0x5a; 65]));
            msg.extend(field(4, LEN, &sender));
        }
        if let Some((per_unit, pixels)) = self.price {
            let mut price = field(1, VARINT, &varint(per_unit));
            price.extend(field(2, VARINT, &varint(pixels)));
            price.extend(field(3, VARINT, &varint(35)));
            msg.extend(field(5, LEN, &price));
        }
        msg
    }

    fn header(&self) -> String {
        base64(&self.encode(), false, true)
    }
}

#[test]
fn a_payment_reads_as_its_tickets_value_and_price() {
    let payment = Payment {
        price: Some((2_000_000_000, 1)),
        ..Payment::always_wins(10_000_000_000, 4)
    };
    let tickets = MintedTickets::read(&payment.header()).unwrap();
    assert_eq!(tickets.count, 4);
    assert_eq!(tickets.ticket_value, 10_000_000_000);
    let price = tickets.price.unwrap();
    assert_eq!(
        price,
        UnitPrice {
            per_unit: 2_000_000_000,
            pixels_per_unit: 1
        }
    );
    let value = tickets.value_at(price).unwrap();
    assert_eq!(value.each, Duration::from_secs(5));
    assert_eq!(value.total(), Duration::from_secs(20));
}

#[test]
fn every_base64_spelling_reads_the_same() {
    let bytes = Payment::always_wins(12_345, 3).encode();
    for (url, pad) in [(false, true), (false, false), (true, true), (true, false)] {
        let tickets = MintedTickets::read(&base64(&bytes, url, pad)).unwrap();
        assert_eq!(
            (tickets.count, tickets.ticket_value),
            (3, 12_345),
            "url {url} pad {pad}"
        );
    }
}

#[test]
fn expected_values_match_exact_rationals() {
    // floor(face × win_prob / (2^256 − 1)), computed with arbitrary precision elsewhere.
    let m = [0xff_u8; 32];
    let mut third = [0x55_u8; 32];
    let cases: [(u128, [u8; 32], u128); 6] = [
        (1000, m, 1000),
        (0, m, 0),
        (1000, [0; 32], 0),
        (
            123_456_789_012_345_678_901_234_567_890,
            third,
            41_152_263_004_115_226_300_411_522_630,
        ),
        (
            u128::MAX,
            {
                let mut w = m;
                w[31] = 0xfa;
                w
            },
            u128::MAX - 1,
        ),
        (
            1,
            {
                let mut w = [0; 32];
                w[31] = 1;
                w
            },
            0,
        ),
    ];
    for (face, win_prob, ev) in cases {
        let payment = Payment {
            face: face.to_be_bytes().to_vec(),
            win_prob: win_prob.to_vec(),
            tickets: 1,
            price: None,
        };
        assert_eq!(
            MintedTickets::read(&payment.header()).unwrap().ticket_value,
            ev,
            "face {face}"
        );
    }
    // go-livepeer's own scale: a 1e13 face value winning with probability ~1/1000.
    // M / 1000, big-endian.
    let hex = "004189374bc6a7ef9db22d0e5604189374bc6a7ef9db22d0e5604189374bc6a7";
    for (i, byte) in third.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    let payment = Payment {
        face: 10_000_000_000_000_u128.to_be_bytes().to_vec(),
        win_prob: third.to_vec(),
        tickets: 1,
        price: None,
    };
    assert_eq!(
        MintedTickets::read(&payment.header()).unwrap().ticket_value,
        9_999_999_999
    );
}

#[test]
fn a_face_value_beyond_u128_saturates() {
    let mut face = [0_u8; 32];
    face[0] = 0x80;
    let payment = Payment {
        face: face.to_vec(),
        win_prob: [0xff; 32].to_vec(),
        tickets: 1,
        price: None,
    };
    assert_eq!(
        MintedTickets::read(&payment.header()).unwrap().ticket_value,
        u128::MAX
    );
}

#[test]
fn a_payment_without_tickets_or_params_has_no_known_value() {
    let none = Payment::always_wins(5, 0);
    assert_eq!(MintedTickets::read(&none.header()), Err(TicketsError::NoTickets));
    let mut no_params = Vec::new();
    no_params.extend(field(2, LEN, &[0x11; 20]));
    no_params.extend(field(4, LEN, &[]));
    assert_eq!(
        MintedTickets::read(&base64(&no_params, false, true)),
        Err(TicketsError::NoTickets)
    );
    assert_eq!(MintedTickets::read(""), Err(TicketsError::NoTickets));
}

#[test]
fn an_unusable_price_is_none() {
    for price in [(0, 1), (1, 0), (u64::MAX, 1)] {
        let payment = Payment {
            price: Some(price),
            ..Payment::always_wins(5, 1)
        };
        assert_eq!(
            MintedTickets::read(&payment.header()).unwrap().price,
            None,
            "{price:?}"
        );
    }
    let payment = Payment {
        price: None,
        ..Payment::always_wins(5, 1)
    };
    assert_eq!(MintedTickets::read(&payment.header()).unwrap().price, None);
}

#[test]
fn malformed_values_are_typed_errors() {
    let good = Payment::always_wins(5, 2).encode();
    assert_eq!(MintedTickets::read("not base64!"), Err(TicketsError::Base64));
    assert_eq!(MintedTickets::read("QQ=A"), Err(TicketsError::Base64));
    // Truncated: an error inside a field, or (protobuf has no end marker) a smaller payment.
    let full = MintedTickets::read(&base64(&good, false, true));
    for cut in 1..good.len() {
        let header = base64(&good[..cut], false, true);
        assert_ne!(MintedTickets::read(&header), full, "cut at {cut}");
    }
    // The ticket params field: a one-byte key, a one-byte length, the message.
    let params_end = usize::from(good[1]) + 2;
    for cut in 1..params_end {
        assert!(
            MintedTickets::read(&base64(&good[..cut], false, true)).is_err(),
            "cut at {cut}"
        );
    }
    // A group (wire type 3), an oversized length, a 33-byte integer, an endless varint.
    assert_eq!(
        MintedTickets::read(&base64(&[0x0b], false, true)),
        Err(TicketsError::Protobuf)
    );
    assert_eq!(
        MintedTickets::read(&base64(&[0x0a, 0x7f, 0x00], false, true)),
        Err(TicketsError::Protobuf)
    );
    let long = field(1, LEN, &field(2, LEN, &[1; 33]));
    assert_eq!(
        MintedTickets::read(&base64(&long, false, true)),
        Err(TicketsError::Protobuf)
    );
    assert_eq!(
        MintedTickets::read(&base64(
            &[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
            ],
            false,
            true
        )),
        Err(TicketsError::Protobuf)
    );
    // A nested message whose inner field runs past its end.
    let overrun = [0x0a, 0x02, 0x12, 0x05, 1, 2, 3, 4, 5];
    assert_eq!(
        MintedTickets::read(&base64(&overrun, false, true)),
        Err(TicketsError::Protobuf)
    );
}

#[test]
fn value_at_rounds_down_and_saturates() {
    let tickets = MintedTickets {
        count: 2,
        ticket_value: 10,
        price: None,
    };
    let third = tickets
        .value_at(UnitPrice {
            per_unit: 3,
            pixels_per_unit: 1,
        })
        .unwrap();
    assert_eq!(third.each, Duration::from_micros(3_333_333));
    assert_eq!(
        tickets.value_at(UnitPrice {
            per_unit: u64::MAX,
            pixels_per_unit: 1
        }),
        None
    );
    let huge = MintedTickets {
        count: u32::MAX,
        ticket_value: u128::MAX,
        price: None,
    };
    let value = huge
        .value_at(UnitPrice {
            per_unit: 1,
            pixels_per_unit: 1,
        })
        .unwrap();
    assert!(value.total() >= value.each);
}

proptest! {
    #[test]
    fn reading_never_panics(text in "[A-Za-z0-9+/=_-]{0,200}") {
        let _ = MintedTickets::read(&text);
    }

    #[test]
    fn any_payment_reads_back(face in any::<u128>(), tickets in 1_u64..120, per_unit in 1_u64..1 << 40, pixels in 1_u64..1 << 20) {
        let payment = Payment { price: Some((per_unit, pixels)), ..Payment::always_wins(face, tickets) };
        let read = MintedTickets::read(&payment.header()).unwrap();
        prop_assert_eq!(u64::from(read.count), tickets);
        prop_assert_eq!(read.ticket_value, face);
        prop_assert_eq!(read.price, Some(UnitPrice { per_unit, pixels_per_unit: pixels }));
    }

    #[test]
    fn the_expected_value_never_exceeds_the_face(face in any::<u128>(), win in any::<[u8; 32]>()) {
        let payment = Payment { face: face.to_be_bytes().to_vec(), win_prob: win.to_vec(), tickets: 1, price: None };
        prop_assert!(MintedTickets::read(&payment.header()).unwrap().ticket_value <= face);
    }
}
