//! Small lookups on the emulators' JSON control answers.

use serde_json::Value;

/// The entry of `answer["windows"]` whose `current` is `true` (the emulator's `/windows`).
///
/// # Panics
/// When there is no `windows` array or no current window.
#[must_use]
pub fn current_window(answer: &Value) -> Value {
    answer["windows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["current"] == true)
        .unwrap()
        .clone()
}
