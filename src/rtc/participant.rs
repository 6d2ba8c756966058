//! A participant as its room sees it: its public info, what its token allows, and the
//! signal connection that reaches it.

use std::collections::HashMap;

use livekit_protocol as lk;

/// Identifies one signal connection, so the control thread can route answers to it.
pub type ConnId = u64;

/// Everything a join needs, taken from the token and the `/rtc` query by the control
/// thread. The shard never sees the raw token.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JoinParams {
    pub room: String,
    pub identity: String,
    pub name: String,
    pub metadata: String,
    pub attributes: HashMap<String, String>,
    pub kind: i32,
    pub permission: lk::ParticipantPermission,
    pub auto_subscribe: bool,
    pub client: lk::ClientInfo,
    /// May the join create the room (`room.auto_create`)?
    pub auto_create: bool,
}

#[derive(Debug, Clone)]
pub struct Participant {
    pub info: lk::ParticipantInfo,
    pub conn: ConnId,
    pub auto_subscribe: bool,
}

impl Participant {
    pub fn hidden(&self) -> bool {
        self.info.permission.as_ref().is_some_and(|p| p.hidden)
    }

    pub fn can_update_metadata(&self) -> bool {
        self.info
            .permission
            .as_ref()
            .is_some_and(|p| p.can_update_metadata)
    }

    /// Records a change: LiveKit clients ignore updates whose version is not newer.
    pub fn bump(&mut self) {
        self.info.version = self.info.version.wrapping_add(1);
    }
}

/// Maps a grant's source names to LiveKit's TrackSource numbers.
pub fn source_numbers(names: &[String]) -> Vec<i32> {
    names
        .iter()
        .filter_map(|n| match n.to_ascii_lowercase().as_str() {
            "camera" => Some(lk::TrackSource::Camera as i32),
            "microphone" => Some(lk::TrackSource::Microphone as i32),
            "screen_share" => Some(lk::TrackSource::ScreenShare as i32),
            "screen_share_audio" => Some(lk::TrackSource::ScreenShareAudio as i32),
            _ => None,
        })
        .collect()
}

pub fn leave(reason: lk::DisconnectReason, action: lk::leave_request::Action) -> lk::LeaveRequest {
    lk::LeaveRequest {
        can_reconnect: action != lk::leave_request::Action::Disconnect,
        reason: reason as i32,
        action: action as i32,
        regions: None,
    }
}
