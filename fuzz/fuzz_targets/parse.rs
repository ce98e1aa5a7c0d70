//! `parse` under all four profiles (utf8 on and off, groups on and off): the full
//! grammar's result checked, and the fast paths (`parse_fast`, `assess`) giving what it
//! gives. (`parse` is `parse_fast`, else `parse_full`: calling it would run the grammar
//! a second time on every value the fast path declines, most fuzzed values.)
#![no_main]

use fromguard::{Profile, assess, parse_fast, parse_full};
use fromguard_fuzz::check_parsed;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for utf8 in [true, false] {
        for groups in [false, true] {
            let profile = Profile { utf8, groups };
            let parsed = parse_full(data, profile);
            check_parsed(&parsed, data.len());
            let assessed = assess(data, profile);
            assert_eq!(
                (assessed.verdict, assessed.syntax),
                (parsed.verdict, parsed.syntax)
            );
            if let Some(fast) = parse_fast(data, profile) {
                assert_eq!(fast, parsed, "fast path and full grammar differ");
            }
        }
    }
});
