//! Webhooks: LiveKit's `WebhookEvent`s POSTed to `webhook.urls`, signed so the SDKs'
//! `WebhookReceiver` accepts them (livekit-protocol.md §9).
//!
//! * [`event`] builders (`room_started`, `participant_joined`, …) fill `event`, an `EV_` id
//!   and `created_at`; the caller passes the clock.
//! * [`encode`] turns one event into the exact body bytes (protojson, camelCase, defaults
//!   omitted, int64 as JSON strings) and the `Authorization` value: a raw HS256 JWT (no
//!   `Bearer`) issued by the API key, valid 5 minutes, whose `sha256` claim is the std-base64
//!   SHA-256 of the body.
//! * [`WebhookSender`] delivers off the caller's thread: [`WebhookSender::send`] never blocks
//!   (a bounded queue per URL; when full the event is dropped and counted), one plain std
//!   thread per URL POSTs events in order with retries and backoff, each request bounded
//!   by a timeout, so a slow or dead endpoint delays only its own queue.

mod event;
mod sender;
mod sign;

pub use event::{
    participant_joined, participant_left, room_finished, room_started, track_published,
    track_unpublished, EVENT_ID_PREFIX, PARTICIPANT_JOINED, PARTICIPANT_LEFT, ROOM_FINISHED,
    ROOM_STARTED, TRACK_PUBLISHED, TRACK_UNPUBLISHED,
};
pub use sender::{SenderConfig, WebhookSender};
pub use sign::{encode, WebhookError, CONTENT_TYPE, TOKEN_TTL_SECS, USER_AGENT};
