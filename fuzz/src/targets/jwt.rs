//! Access token verification (header, claims, signature, times).

use corelay::auth::KeyStore;

pub fn verify(data: &[u8]) {
    let Some(token) = super::text(data) else {
        return;
    };
    let keys = KeyStore::new([(
        "APIfuzz".to_string(),
        "a-secret-of-at-least-32-bytes-long".to_string(),
    )]);
    let _ = keys.verify(token, 1_700_000_000);
}
