//! Data channel messages from a publisher (`lk::DataPacket`), relayed in a room of two.

use std::cell::RefCell;

use corelay::room::fuzzing::{relay_data, two_joined};
use corelay::room::rooms::Rooms;

thread_local! {
    /// One room for the whole run: only the reliable sequence numbers it has seen
    /// change, as they do on a long-lived connection.
    static ROOMS: RefCell<Rooms> = RefCell::new(two_joined(corelay::clock::mono()));
}

/// The first byte picks the channel, the rest is the message.
pub fn packet(data: &[u8]) {
    let Some((&pick, message)) = data.split_first() else {
        return;
    };
    let label = if pick & 1 == 0 { "_reliable" } else { "_lossy" };
    ROOMS.with_borrow_mut(|rooms| relay_data(rooms, 1, label, message));
}
