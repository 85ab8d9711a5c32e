//! Frame bodies: postcard (its wire format is frozen and documented).

use std::cell::RefCell;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::IpcError;

thread_local! {
    /// The message of a custom serde error, which postcard's error drops.
    static NOTE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Records why a `Serialize` or `Deserialize` impl is about to fail with a custom error:
/// postcard reports only "custom error", and [`encode`] / [`decode`] put this message in
/// their error instead.
pub fn note(message: impl Into<String>) {
    NOTE.with(|note| *note.borrow_mut() = Some(message.into()));
}

/// [`note`]s `message` and returns it: for `Error::custom(noted(..))` in a `Serialize` or
/// `Deserialize` impl that fails.
pub fn noted(message: impl std::fmt::Display) -> String {
    let message = message.to_string();
    note(message.clone());
    message
}

/// The noted message if there is one, else postcard's.
fn explain(error: postcard::Error) -> String {
    let noted = NOTE.with(|note| note.borrow_mut().take());
    match error {
        postcard::Error::SerdeSerCustom | postcard::Error::SerdeDeCustom => {
            noted.unwrap_or_else(|| error.to_string())
        }
        other => other.to_string(),
    }
}

/// Encodes a body.
///
/// # Errors
///
/// [`IpcError::Encode`] when serde refuses the value (a map with a non-string key is
/// fine; a `Serialize` impl that fails is not).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, IpcError> {
    postcard::to_stdvec(value).map_err(|e| IpcError::Encode(explain(e)))
}

/// Decodes a body; trailing bytes are an error (a frame is exactly one value).
///
/// # Errors
///
/// [`IpcError::Decode`] for anything that is not exactly one `T`.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, IpcError> {
    match postcard::take_from_bytes(body) {
        Ok((value, [])) => Ok(value),
        Ok(_) => Err(IpcError::Decode("trailing bytes after the value".into())),
        Err(e) => Err(IpcError::Decode(explain(e))),
    }
}

/// Encodes a body at the end of `out` (after a header the caller wrote).
///
/// # Errors
///
/// As [`encode`]; `out` is then empty.
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), IpcError> {
    let taken = std::mem::take(out);
    match postcard::to_extend(value, taken) {
        Ok(full) => {
            *out = full;
            Ok(())
        }
        Err(e) => Err(IpcError::Encode(explain(e))),
    }
}
