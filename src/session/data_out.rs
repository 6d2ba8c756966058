//! Data channel messages out of a [`PeerSession`]. str0m's SCTP takes a message only
//! while the unacknowledged data of the whole connection stays under its buffer
//! (128 KiB): a burst bigger than that, or a slow receiver, used to lose reliable
//! messages silently. Reliable messages it cannot take now wait here, in order, and go
//! out as acknowledgements make room (every drive of the session tries). The wait is
//! bounded; past the bound the caller is told, and closes the participant. Lossy
//! messages that do not fit are dropped, as their name says.

use std::collections::VecDeque;

use str0m::channel::ChannelId;

use super::{PeerSession, SessionError};

/// Reliable bytes one session may hold back before its receiver counts as too slow.
pub const MAX_QUEUED_BYTES: usize = 1 << 20;

/// Messages waiting for room in the SCTP buffer, oldest first.
#[derive(Debug, Default)]
pub struct DataQueue {
    messages: VecDeque<(ChannelId, Vec<u8>)>,
    bytes: usize,
}

impl DataQueue {
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

/// What became of a message given to [`PeerSession::send_data`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataSent {
    /// Taken by SCTP.
    Sent,
    /// Reliable, waiting for room (sent in order later).
    Queued,
    /// Lossy and no room: dropped.
    Dropped,
}

impl PeerSession {
    /// Sends one binary message on the open channel `label`; see the module docs.
    /// `Err(DataOverflow)` when a reliable message would take the queue past
    /// [`MAX_QUEUED_BYTES`] (the message is not queued).
    pub fn send_data(
        &mut self,
        label: &str,
        reliable: bool,
        data: &[u8],
    ) -> Result<DataSent, SessionError> {
        self.guarded(|s| {
            let id = s
                .channels
                .iter()
                .find(|(_, l)| l == label)
                .map(|(id, _)| *id)
                .ok_or_else(|| SessionError::NoChannel(label.to_string()))?;
            // Behind queued messages a reliable one waits its turn, to keep the order.
            if !reliable || s.data_queue.messages.is_empty() {
                let written = s
                    .write_data(id, data)?
                    .ok_or_else(|| SessionError::NoChannel(label.to_string()))?;
                if written {
                    return Ok(DataSent::Sent);
                }
            }
            if !reliable {
                return Ok(DataSent::Dropped);
            }
            if s.data_queue.bytes + data.len() > MAX_QUEUED_BYTES {
                return Err(SessionError::DataOverflow(s.data_queue.bytes));
            }
            s.data_queue.bytes += data.len();
            s.data_queue.messages.push_back((id, data.to_vec()));
            Ok(DataSent::Queued)
        })
    }

    /// Reliable bytes waiting for room.
    pub fn queued_data_bytes(&self) -> usize {
        self.data_queue.bytes
    }

    /// Hands queued messages to SCTP while it takes them.
    pub(super) fn flush_data(&mut self) -> Result<(), SessionError> {
        while let Some((id, data)) = self.data_queue.messages.pop_front() {
            // A channel that closed meanwhile takes nothing any more: drop its message.
            if self.write_data(id, &data)? == Some(false) {
                self.data_queue.messages.push_front((id, data));
                return Ok(());
            }
            self.data_queue.bytes -= data.len();
        }
        Ok(())
    }

    /// Whether SCTP took the message; `None` when the channel is gone.
    fn write_data(&mut self, id: ChannelId, data: &[u8]) -> Result<Option<bool>, SessionError> {
        match self.rtc.channel(id) {
            Some(mut channel) => Ok(Some(channel.write(true, data)?)),
            None => Ok(None),
        }
    }
}
