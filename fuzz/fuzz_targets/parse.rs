//! `parse` under all four profiles (utf8 on and off, groups on and off); the fast paths
//! (`parse`, `assess`) give what the full grammar gives.
#![no_main]

use fromguard::{Profile, assess, parse, parse_full};
use fromguard_fuzz::check_parsed;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for utf8 in [true, false] {
        for groups in [false, true] {
            let profile = Profile { utf8, groups };
            let parsed = parse(data, profile);
            check_parsed(&parsed, data.len());
            let assessed = assess(data, profile);
            assert_eq!(
                (assessed.verdict, assessed.syntax),
                (parsed.verdict, parsed.syntax)
            );
            assert_eq!(
                parsed,
                parse_full(data, profile),
                "fast path and full grammar differ"
            );
        }
    }
});
