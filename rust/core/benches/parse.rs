//! Throughput of the core alone, in bytes and in values per second: `cargo bench -p
//! fromguard` (the README's performance section quotes these figures).
//!
//! - `benign`: the 2,247 Debian maintainer values (`tests/corpus/`), real honest From
//!   values; most take the fast path.
//! - `adversarial`: the adversarial mix, long quoted strings full of
//!   quoted-pairs, deep comments and names of many encoded-words, 200 to 4,000 bytes,
//!   folded as a sender would fold them.
//! - `attacks`: the attack cases of `tests/cases/attacks.jsonl`, short values (44 bytes
//!   on average) crafted to show another sender; nearly all take the full grammar and
//!   its deception passes, so their figure is in values per second.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fromguard::{Profile, assess, parse, parse_full};

const DEBIAN: &str = include_str!("../../../tests/corpus/debian-maintainers.txt");
const ATTACKS: &str = include_str!("../../../tests/cases/attacks.jsonl");

fn benign() -> Vec<Vec<u8>> {
    DEBIAN
        .lines()
        .map(|line| line.as_bytes().to_vec())
        .collect()
}

fn attacks() -> Vec<Vec<u8>> {
    ATTACKS
        .lines()
        .filter(|line| !line.trim().is_empty())
        .filter_map(|line| {
            let case: serde_json::Value = serde_json::from_str(line).ok()?;
            Some(case.get("input")?.as_str()?.as_bytes().to_vec())
        })
        .collect()
}

fn adversarial() -> Vec<Vec<u8>> {
    let mut values = Vec::new();
    for size in [200, 900, 4000] {
        let name = "x\\\"y, ".repeat(size / 6);
        values.push(folded(&format!("\"{name}\" <a@b.example>")));
        let depth = size / 10;
        let comment = format!("{}c@d.example{}", "( ".repeat(depth), ")".repeat(depth));
        values.push(folded(&format!("a@b.example {comment}")));
        let words = "=?utf-8?q?J=C3=B6rg?= =?iso-8859-1?b?TfxsbGVy?= ".repeat(size / 48);
        values.push(folded(&format!("{words}<j@x.example>")));
    }
    values
}

/// `value` folded (CRLF before a space) into lines of at most 78 octets, as a sender
/// would: an unfolded long value is invalid at its first 998 octets, which `assess`
/// settles without reading the rest.
fn folded(value: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + value.len() / 32);
    let mut line = 0;
    for word in value.split_inclusive(' ') {
        if line > 0 && line + word.len() > 78 {
            out.extend_from_slice(b"\r\n ");
            line = 1;
        }
        out.extend_from_slice(word.as_bytes());
        line += word.len();
    }
    out
}

fn bench_corpus(c: &mut Criterion, name: &str, values: &[Vec<u8>]) {
    let bytes: usize = values.iter().map(Vec::len).sum();
    let profile = Profile::default();
    for (unit, throughput) in [
        ("bytes", Throughput::Bytes(bytes as u64)),
        ("values", Throughput::Elements(values.len() as u64)),
    ] {
        let mut group = c.benchmark_group(format!("{name}/{unit}"));
        group.throughput(throughput);
        group.bench_function("parse", |b| {
            b.iter(|| {
                for value in values {
                    black_box(parse(black_box(value), profile));
                }
            })
        });
        group.bench_function("assess", |b| {
            b.iter(|| {
                for value in values {
                    black_box(assess(black_box(value), profile));
                }
            })
        });
        group.bench_function("parse_full", |b| {
            b.iter(|| {
                for value in values {
                    black_box(parse_full(black_box(value), profile));
                }
            })
        });
        group.finish();
    }
}

fn benches(c: &mut Criterion) {
    bench_corpus(c, "benign", &benign());
    bench_corpus(c, "adversarial", &adversarial());
    bench_corpus(c, "attacks", &attacks());
}

criterion_group! {
    name = throughput;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = benches
}
criterion_main!(throughput);
