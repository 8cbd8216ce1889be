//! Every no-alloc JSON parser of `livepay_core::wire` on arbitrary bytes: no panic, and whatever
//! parses writes back out and parses again to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livepay_core::wire::{
    Challenge, OrchestratorInfoSignature, PaymentRequest, PaymentResponse, RefreshRequest, Reservation,
    error_message,
};

fuzz_target!(|data: &[u8]| {
    let mut scratch = vec![0u8; data.len()];
    let mut out = vec![0u8; data.len() * 2 + 256];
    if let Ok(c) = Challenge::parse(data, &mut scratch) {
        let n = c
            .write(&mut out)
            .expect("a parsed challenge fits twice its input");
        let mut again = vec![0u8; n];
        assert_eq!(Challenge::parse(&out[..n], &mut again), Ok(c));
    }
    let _ = PaymentResponse::parse(data, &mut vec![0u8; data.len()]);
    let _ = PaymentRequest::parse(data, &mut vec![0u8; data.len()]);
    let _ = Reservation::parse(data, &mut vec![0u8; data.len()]);
    let _ = RefreshRequest::parse(data, &mut vec![0u8; data.len()]);
    let _ = OrchestratorInfoSignature::parse(data, &mut vec![0u8; data.len()]);
    let message = error_message(data);
    assert!(message.len() <= livepay_core::wire::MAX_ERROR_MESSAGE_LEN);
});
