//! Any bytes handed to the object decoder: it returns an object or an
//! error, never panics, and what it decodes encodes back to the same bytes
//! (the encoding is canonical, so ids are stable).
#![no_main]

use libfuzzer_sys::fuzz_target;
use migsnap_store::codec;

fuzz_target!(|data: &[u8]| {
    if let Ok(object) = codec::decode_object(data) {
        assert_eq!(codec::encode_object(&object), data, "decode/encode is not canonical");
    }
});
