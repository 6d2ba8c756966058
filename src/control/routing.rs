//! Where a room operation goes: a join to the shard chosen for it (opening the room's
//! copy there first), what changes a room to every shard hosting it, a participant's
//! operations to its own shard, the rest to the room's home.

use super::{CallError, Control};
use crate::room::{RoomError, RoomOp, RoomReply};

impl Control {
    /// Routes a room operation to the shard that owns the room (or to every shard for a
    /// listing) and waits for the answer.
    pub async fn room_op(&self, op: RoomOp) -> Result<RoomReply, CallError> {
        match &op {
            RoomOp::List { .. } => {
                let mut all = Vec::new();
                for shard in 0..self.shards.len() {
                    if let RoomReply::Rooms(rooms) = self.call(shard, op.clone()).await? {
                        all.extend(rooms);
                    }
                }
                all.sort_by(|a, b| a.name.cmp(&b.name));
                Ok(RoomReply::Rooms(all))
            }
            RoomOp::Join { conn, params } => {
                let (conn, name) = (*conn, params.room.clone());
                let identity = params.identity.clone();
                let known = self.directory.borrow().lookup(&name);
                let (home, placed) = match known {
                    Some(home) => (home, false),
                    None if params.auto_create => self.directory.borrow_mut().place(&name),
                    None => return Err(RoomError::RoomNotFound.into()),
                };
                let shard = match placed {
                    true => home,
                    false => self.choose_join_shard(&name, &identity, home),
                };
                self.place_conn(conn, &name, &identity, shard);
                if shard != home {
                    self.open_copy(&name, shard).await?;
                }
                let result = self.call(shard, op).await;
                if placed && result.is_err() {
                    self.directory.borrow_mut().remove(&name, shard);
                }
                result
            }
            RoomOp::Create(_) => {
                let name = op.room().unwrap_or_default().to_string();
                let (shard, placed) = self.directory.borrow_mut().place(&name);
                let result = self.call(shard, op).await;
                if placed && result.is_err() {
                    self.directory.borrow_mut().remove(&name, shard);
                }
                result
            }
            // What changes the room itself reaches every shard hosting it; the home's
            // answer is the answer.
            RoomOp::Delete { .. } | RoomOp::UpdateMetadata { .. } | RoomOp::SendData(_) => {
                let room = op.room().unwrap_or_default().to_string();
                let home = (self.directory.borrow())
                    .lookup(&room)
                    .ok_or(RoomError::RoomNotFound)?;
                let hosts = self.directory.borrow().hosts(&room);
                for host in hosts {
                    if host != home {
                        let _ = self.call(host, op.clone()).await;
                    }
                }
                let deleting = matches!(op, RoomOp::Delete { .. });
                let result = self.call(home, op).await;
                if deleting && result.is_ok() {
                    self.directory.borrow_mut().forget(&room);
                    self.release_room(&room);
                }
                result
            }
            _ => {
                let room = op.room().unwrap_or_default().to_string();
                let home = (self.directory.borrow())
                    .lookup(&room)
                    .ok_or(RoomError::RoomNotFound)?;
                // A participant's own shard acts on it (the others hold its proxy).
                let shard = participant_of(&op)
                    .and_then(|identity| self.shard_of(&room, identity))
                    .unwrap_or(home);
                self.call(shard, op).await
            }
        }
    }

    /// `core-affinity.toml` `spread_after` (see the field).
    pub fn set_spread_after(&self, participants: usize) {
        self.spread_after.set(participants);
    }
}

/// The participant a RoomService call or resume acts on.
fn participant_of(op: &RoomOp) -> Option<&str> {
    match op {
        RoomOp::GetParticipant { identity, .. }
        | RoomOp::RemoveParticipant { identity, .. }
        | RoomOp::RequireParticipant { identity, .. }
        | RoomOp::Resume { identity, .. } => Some(identity),
        RoomOp::MutePublishedTrack(r) => Some(&r.identity),
        RoomOp::UpdateParticipant(r) => Some(&r.identity),
        RoomOp::UpdateSubscriptions(r) => Some(&r.identity),
        _ => None,
    }
}
