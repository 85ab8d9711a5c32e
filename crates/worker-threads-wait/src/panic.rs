//! The message of a panic payload.

use std::any::Any;

/// The message a panic was raised with (`panic!("...")` gives a `&str` or a `String`);
/// a fixed text for any other payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "<non-string panic payload>".to_owned())
}

#[cfg(all(test, not(worker_threads_loom)))]
mod tests {
    use super::*;

    #[test]
    fn literal_formatted_and_other_payloads() {
        let literal = std::panic::catch_unwind(|| panic!("plain")).unwrap_err();
        assert_eq!(panic_message(&*literal), "plain");
        let n = 7;
        let formatted = std::panic::catch_unwind(|| panic!("n = {n}")).unwrap_err();
        assert_eq!(panic_message(&*formatted), "n = 7");
        let other = std::panic::catch_unwind(|| std::panic::panic_any(7_u8)).unwrap_err();
        assert_eq!(panic_message(&*other), "<non-string panic payload>");
    }
}
