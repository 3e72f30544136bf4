//! The manifest decoders must return a typed error, never panic, on any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shale_engine::manifest::{LOG_FORMAT, LOG_MAGIC, decode_current, decode_log};

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.log");
    let _ = decode_current(path, data);
    let _ = decode_log(path, data);
    // Also behind a valid header, so the record decoder is reached often.
    let mut framed = LOG_MAGIC.to_vec();
    framed.extend_from_slice(&LOG_FORMAT.to_le_bytes());
    framed.extend_from_slice(data);
    let _ = decode_log(path, &framed);
});
