//! What the integration tests share: reading a JSON Lines case file.

use serde_json::Value;

/// One JSON value per non-blank line of `text`; a line that is not JSON fails the test
/// with its line number.
pub fn jsonl(text: &str) -> Vec<Value> {
    text.split('\n')
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(number, line)| {
            serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("line {}: {error}", number + 1))
        })
        .collect()
}
