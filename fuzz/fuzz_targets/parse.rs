//! `parse` under all four profiles (utf8 on and off, groups on and off).
#![no_main]

use fromguard::{Profile, parse};
use fromguard_fuzz::check_parsed;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for utf8 in [true, false] {
        for groups in [false, true] {
            check_parsed(&parse(data, Profile { utf8, groups }), data.len());
        }
    }
});
