//! Any bytes handed to the object decoder: it returns an object or an
//! error, never panics, and what it decodes encodes back to the same bytes
//! (the encoding is canonical, so ids are stable). `check_object`, which
//! checks without building, agrees with it on every input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use migsnap_store::codec;

fuzz_target!(|data: &[u8]| {
    let decoded = codec::decode_object(data);
    if let Ok(object) = &decoded {
        assert_eq!(codec::encode_object(object), data, "decode/encode is not canonical");
    }
    assert_eq!(
        codec::check_object(data).ok(),
        decoded.map(|object| object.kind()).ok(),
        "check_object disagrees with decode_object"
    );
});
