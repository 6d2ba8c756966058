// Helpers for browser.test.mjs, run inside the page. Plain script (no module):
// livekit-client comes from the UMD bundle as window.LivekitClient.
/* global LivekitClient */
(() => {
  const LK = LivekitClient;
  const { Room, RoomEvent, Track } = LK;

  const state = {
    room: null,
    events: [], // [ms since load, text]
    errors: [],
    data: [], // {from, topic, text}
    remote: new Map(), // trackSid -> {identity, kind, track, el}
  };
  const t0 = performance.now();
  const log = (msg) => {
    state.events.push(`${(performance.now() - t0).toFixed(0)}ms ${msg}`);
    console.log(`[page] ${msg}`);
  };

  window.lkSetLogLevel = (level) => LK.setLogLevel(level);

  window.lkConnect = async (url, token) => {
    const room = new Room();
    state.room = room;
    room
      .on(RoomEvent.ConnectionStateChanged, (s) => log(`connection state ${s}`))
      .on(RoomEvent.ParticipantConnected, (p) => log(`participant connected ${p.identity}`))
      .on(RoomEvent.ParticipantDisconnected, (p) => log(`participant disconnected ${p.identity}`))
      .on(RoomEvent.Disconnected, (reason) => log(`disconnected reason=${reason}`))
      .on(RoomEvent.MediaDevicesError, (e) => {
        state.errors.push(`media devices: ${e}`);
        log(`media devices error ${e}`);
      })
      .on(RoomEvent.TrackSubscriptionFailed, (sid, p, reason) => {
        state.errors.push(`subscription failed ${sid} from ${p?.identity}: ${reason}`);
        log(`track subscription failed ${sid} ${reason}`);
      })
      .on(RoomEvent.TrackSubscribed, (track, pub, participant) => {
        log(`track subscribed ${track.kind} ${pub.trackSid} from ${participant.identity}`);
        const entry = { identity: participant.identity, kind: track.kind, track, el: null };
        if (track.kind === Track.Kind.Video) {
          const el = track.attach();
          el.muted = true;
          el.autoplay = true;
          el.playsInline = true;
          el.dataset.identity = participant.identity;
          el.dataset.sid = pub.trackSid;
          document.getElementById('remote').appendChild(el);
          el.play().catch((e) => log(`video play() rejected: ${e}`));
          entry.el = el;
        }
        state.remote.set(pub.trackSid, entry);
      })
      .on(RoomEvent.TrackUnsubscribed, (track, pub, participant) => {
        log(`track unsubscribed ${track.kind} ${pub.trackSid} from ${participant.identity}`);
        const entry = state.remote.get(pub.trackSid);
        if (entry?.el) {
          track.detach(entry.el);
          entry.el.remove();
        }
        state.remote.delete(pub.trackSid);
      })
      .on(RoomEvent.DataReceived, (payload, participant, kind, topic) => {
        const text = new TextDecoder().decode(payload);
        log(`data from ${participant?.identity} topic=${topic} ${text}`);
        state.data.push({ from: participant?.identity ?? null, topic: topic ?? null, text });
      });
    const started = performance.now();
    await room.connect(url, token);
    log(`connected in ${(performance.now() - started).toFixed(0)}ms as ${room.localParticipant.identity}`);
    return {
      identity: room.localParticipant.identity,
      room: room.name,
      engineUrl: room.engine?.url ?? null,
    };
  };

  // opts: {camera: bool, mic: bool}
  window.lkPublish = async (opts) => {
    const lp = state.room.localParticipant;
    if (opts.camera) await lp.setCameraEnabled(true);
    if (opts.mic) await lp.setMicrophoneEnabled(true);
    const pubs = [...lp.trackPublications.values()].map((p) => ({
      sid: p.trackSid,
      kind: p.kind,
      source: p.source,
      simulcasted: p.simulcasted ?? null,
    }));
    log(`published ${JSON.stringify(pubs)}`);
    return pubs;
  };

  window.lkSendData = async (text, topic) => {
    await state.room.localParticipant.publishData(new TextEncoder().encode(text), {
      reliable: true,
      topic,
    });
  };

  window.lkStats = async () => {
    const room = state.room;
    const videos = [];
    for (const [sid, entry] of state.remote) {
      if (entry.kind !== 'video' || !entry.el) continue;
      const el = entry.el;
      const q = el.getVideoPlaybackQuality ? el.getVideoPlaybackQuality() : null;
      let framesDecoded = null;
      let framesReceived = null;
      let bytesReceived = null;
      let packetsReceived = null;
      let codec = null;
      let keyFramesDecoded = null;
      let retransmittedPacketsReceived = null;
      let nackCount = null;
      let pliCount = null;
      try {
        const report = await entry.track.getRTCStatsReport();
        report?.forEach((s) => {
          if (s.type === 'inbound-rtp' && s.kind === 'video') {
            framesDecoded = s.framesDecoded ?? framesDecoded;
            framesReceived = s.framesReceived ?? framesReceived;
            bytesReceived = s.bytesReceived ?? bytesReceived;
            packetsReceived = s.packetsReceived ?? packetsReceived;
            keyFramesDecoded = s.keyFramesDecoded ?? keyFramesDecoded;
            retransmittedPacketsReceived = s.retransmittedPacketsReceived ?? retransmittedPacketsReceived;
            nackCount = s.nackCount ?? nackCount;
            pliCount = s.pliCount ?? pliCount;
            if (s.codecId && report.get(s.codecId)) codec = report.get(s.codecId).mimeType;
          }
        });
      } catch (e) {
        log(`getRTCStatsReport failed: ${e}`);
      }
      videos.push({
        sid,
        identity: entry.identity,
        videoWidth: el.videoWidth,
        videoHeight: el.videoHeight,
        readyState: el.readyState,
        paused: el.paused,
        totalVideoFrames: q ? q.totalVideoFrames : null,
        framesDecoded,
        keyFramesDecoded,
        framesReceived,
        packetsReceived,
        retransmittedPacketsReceived,
        bytesReceived,
        nackCount,
        pliCount,
        codec,
      });
    }
    return {
      state: room ? room.state : 'none',
      identities: room ? [...room.remoteParticipants.values()].map((p) => p.identity) : [],
      videos,
      data: state.data,
      errors: state.errors,
    };
  };

  window.lkEvents = () => state.events;

  // Raw getStats() of both peer connections, summarised for failure reports.
  window.lkTransportStats = async () => {
    const out = {};
    const engine = state.room?.engine;
    const pcm = engine?.pcManager;
    const pcs = {
      publisher: pcm?.publisher?._pc,
      subscriber: pcm?.subscriber?._pc,
    };
    for (const [name, pc] of Object.entries(pcs)) {
      if (!pc) continue;
      const rows = [];
      try {
        (await pc.getStats()).forEach((s) => {
          if (['transport', 'candidate-pair', 'inbound-rtp', 'outbound-rtp', 'local-candidate', 'remote-candidate'].includes(s.type)) {
            const pick = {};
            for (const k of ['type', 'kind', 'state', 'nominated', 'iceState', 'dtlsState', 'address', 'port', 'candidateType', 'protocol', 'bytesSent', 'bytesReceived', 'packetsReceived', 'packetsSent', 'framesDecoded', 'framesEncoded', 'rid', 'qualityLimitationReason', 'frameWidth', 'frameHeight']) {
              if (s[k] !== undefined) pick[k] = s[k];
            }
            rows.push(pick);
          }
        });
      } catch (e) {
        rows.push({ error: String(e) });
      }
      out[name] = { connectionState: pc.connectionState, iceConnectionState: pc.iceConnectionState, stats: rows };
    }
    return out;
  };

  // Every getStats() entry of one peer connection ('publisher' | 'subscriber'), for ad-hoc digging.
  window.lkRawStats = async (name) => {
    const pc = state.room?.engine?.pcManager?.[name]?._pc;
    if (!pc) return null;
    const rows = [];
    (await pc.getStats()).forEach((s) => rows.push(s));
    return rows;
  };

  window.lkDisconnect = async () => {
    if (state.room) await state.room.disconnect();
  };

  window.lkReady = true;
})();
