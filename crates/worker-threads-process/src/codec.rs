//! Frame bodies: postcard (its wire format is frozen and documented).

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::IpcError;

/// Encodes a body.
///
/// # Errors
///
/// [`IpcError::Encode`] when serde refuses the value (a map with a non-string key is
/// fine; a `Serialize` impl that fails is not).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, IpcError> {
    postcard::to_stdvec(value).map_err(|e| IpcError::Encode(e.to_string()))
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
        Err(e) => Err(IpcError::Decode(e.to_string())),
    }
}
