// Helpers for browser.test.mjs and simulcast.test.mjs, run inside the page. Plain script (no module):
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
    encryptionErrors: 0, // RoomEvent.EncryptionError (e.g. frames that fail to decrypt)
    connection: { reconnecting: 0, reconnected: 0, signalReconnecting: 0 }, // RoomEvent counts
    speakers: [], // identities ever in an ActiveSpeakersChanged list
    quality: {}, // identity -> last ConnectionQualityChanged quality
  };
  const t0 = performance.now();
  const log = (msg) => {
    state.events.push(`${(performance.now() - t0).toFixed(0)}ms ${msg}`);
    console.log(`[page] ${msg}`);
  };

  window.lkSetLogLevel = (level) => LK.setLogLevel(level);

  // roomOptions (optional): livekit-client RoomOptions, e.g. {adaptiveStream: true};
  // its `connectOptions` key, if any, goes to room.connect (e.g. {rtcConfig: ...}).
  // `before(room)` (optional) runs before connecting.
  window.lkConnect = async (url, token, roomOptions, before) => {
    const { connectOptions, ...options } = roomOptions ?? {};
    const room = new Room(options);
    if (before) await before(room);
    state.room = room;
    room
      .on(RoomEvent.ConnectionStateChanged, (s) => log(`connection state ${s}`))
      .on(RoomEvent.Reconnecting, () => {
        state.connection.reconnecting += 1;
        log('reconnecting');
      })
      .on(RoomEvent.SignalReconnecting, () => {
        state.connection.signalReconnecting += 1;
        log('signal reconnecting');
      })
      .on(RoomEvent.Reconnected, () => {
        state.connection.reconnected += 1;
        log('reconnected');
      })
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
        } else if (track.kind === Track.Kind.Audio) {
          // Rendered (muted) so that Chrome decodes it and counts the samples.
          const el = track.attach();
          el.muted = true;
          el.autoplay = true;
          document.getElementById('remote').appendChild(el);
          el.play().catch((e) => log(`audio play() rejected: ${e}`));
          entry.audioEl = el;
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
      .on(RoomEvent.EncryptionError, (e) => {
        state.encryptionErrors += 1;
        log(`encryption error ${e?.message ?? e}`);
      })
      .on(RoomEvent.ActiveSpeakersChanged, (speakers) => {
        for (const p of speakers) if (!state.speakers.includes(p.identity)) state.speakers.push(p.identity);
      })
      .on(RoomEvent.ConnectionQualityChanged, (quality, p) => {
        state.quality[p.identity] = quality;
      })
      .on(RoomEvent.DataReceived, (payload, participant, kind, topic) => {
        const text = new TextDecoder().decode(payload);
        log(`data from ${participant?.identity} topic=${topic} ${text}`);
        state.data.push({ from: participant?.identity ?? null, topic: topic ?? null, text });
      });
    const started = performance.now();
    await room.connect(url, token, connectOptions);
    log(`connected in ${(performance.now() - started).toFixed(0)}ms as ${room.localParticipant.identity}`);
    return {
      identity: room.localParticipant.identity,
      room: room.name,
      engineUrl: room.engine?.url ?? null,
    };
  };

  // E2EE as an app sets it up: the SDK's module worker, an ExternalE2EEKeyProvider with
  // one shared key (a string, as apps pass passphrases), encryption enabled at connect.
  window.lkConnectE2EE = async (url, token, key) => {
    const keyProvider = new LK.ExternalE2EEKeyProvider();
    await keyProvider.setKey(key);
    const worker = new Worker('/node_modules/livekit-client/dist/livekit-client.e2ee.worker.mjs', { type: 'module' });
    return window.lkConnect(url, token, { e2ee: { keyProvider, worker } }, (room) => room.setE2EEEnabled(true));
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

  // The SDK's own test hook: 'signal-reconnect' (optionally with a delay in ms before
  // the client reconnects), 'resume-reconnect', 'full-reconnect', ...
  window.lkSimulate = (scenario, arg) => state.room.simulateScenario(scenario, arg);
  window.lkSession = () => ({
    sid: state.room.localParticipant.sid,
    state: state.room.state,
    connection: { ...state.connection },
    data: [...state.data],
    speakers: [...state.speakers],
    quality: { ...state.quality },
  });

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
      let frameWidth = null;
      let frameHeight = null;
      let ssrc = null;
      let headerBytesReceived = null;
      let retransmittedBytesReceived = null;
      let packetsLost = null;
      let framesDropped = null;
      let freezeCount = null;
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
            frameWidth = s.frameWidth ?? frameWidth;
            frameHeight = s.frameHeight ?? frameHeight;
            ssrc = s.ssrc ?? ssrc;
            headerBytesReceived = s.headerBytesReceived ?? headerBytesReceived;
            retransmittedBytesReceived = s.retransmittedBytesReceived ?? retransmittedBytesReceived;
            packetsLost = s.packetsLost ?? packetsLost;
            framesDropped = s.framesDropped ?? framesDropped;
            freezeCount = s.freezeCount ?? freezeCount;
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
        frameWidth,
        frameHeight,
        ssrc,
        headerBytesReceived,
        retransmittedBytesReceived,
        packetsLost,
        framesDropped,
        freezeCount,
        codec,
      });
    }
    // Decoded audio: samples received and concealed, and the codec on the wire
    // (audio/red when the publisher's RED is passed through).
    const audios = [];
    for (const [sid, entry] of state.remote) {
      if (entry.kind !== 'audio') continue;
      const a = { sid, identity: entry.identity, codec: null, packetsReceived: null, totalSamplesReceived: null, concealedSamples: null };
      try {
        const report = await entry.track.getRTCStatsReport();
        report?.forEach((s) => {
          if (s.type === 'inbound-rtp' && s.kind === 'audio') {
            a.packetsReceived = s.packetsReceived ?? null;
            a.totalSamplesReceived = s.totalSamplesReceived ?? null;
            a.concealedSamples = s.concealedSamples ?? null;
            if (s.codecId && report.get(s.codecId)) a.codec = report.get(s.codecId).mimeType;
          }
        });
      } catch (e) {
        log(`audio getRTCStatsReport failed: ${e}`);
      }
      audios.push(a);
    }
    return {
      state: room ? room.state : 'none',
      identities: room ? [...room.remoteParticipants.values()].map((p) => p.identity) : [],
      videos,
      audios,
      data: state.data,
      errors: state.errors,
      encryptionErrors: state.encryptionErrors,
      e2ee: room ? room.isE2EEEnabled : false,
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

  // --- simulcast.test.mjs ------------------------------------------------------
  const preset = (name) => {
    const p = LK.VideoPresets[name] ?? LK.VideoPresets43[name];
    if (!p) throw new Error(`unknown video preset ${name}`);
    return p;
  };

  // Publishes the (fake) camera. opts: {resolution: 'h720' | {width, height},
  // simulcast: bool, layers: ['h180', 'h360'] (preset names for videoSimulcastLayers)}.
  window.lkPublishCamera = async (opts = {}) => {
    const lp = state.room.localParticipant;
    const capture = {};
    if (opts.resolution) {
      capture.resolution = typeof opts.resolution === 'string' ? preset(opts.resolution).resolution : opts.resolution;
    }
    const publish = {};
    if (opts.simulcast !== undefined) publish.simulcast = opts.simulcast;
    if (opts.layers) publish.videoSimulcastLayers = opts.layers.map(preset);
    // SVC: e.g. {videoCodec: 'vp9', scalabilityMode: 'L3T3_KEY'}
    if (opts.videoCodec) publish.videoCodec = opts.videoCodec;
    if (opts.scalabilityMode) publish.scalabilityMode = opts.scalabilityMode;
    if (opts.backupCodec !== undefined) publish.backupCodec = opts.backupCodec;
    const pub = await lp.setCameraEnabled(true, capture, publish);
    const settings = pub?.track?.mediaStreamTrack?.getSettings?.() ?? {};
    const out = {
      sid: pub?.trackSid ?? null,
      simulcasted: pub?.simulcasted ?? null,
      capture: { width: settings.width ?? null, height: settings.height ?? null, frameRate: settings.frameRate ?? null },
      layers: (pub?.trackInfo?.layers ?? []).map((l) => ({ quality: l.quality, width: l.width, height: l.height, bitrate: l.bitrate })),
    };
    log(`published camera ${JSON.stringify(out)}`);
    return out;
  };

  const remoteVideoPublication = (identity) => {
    const p = [...(state.room?.remoteParticipants.values() ?? [])].find((x) => x.identity === identity);
    if (!p) throw new Error(`no remote participant ${identity}`);
    const pub = [...p.trackPublications.values()].find((x) => x.kind === Track.Kind.Video);
    if (!pub) throw new Error(`${identity} has no video publication`);
    return pub;
  };

  // quality: 'LOW' | 'MEDIUM' | 'HIGH' (sends UpdateTrackSettings.quality).
  window.lkSetVideoQuality = (identity, quality) => {
    const pub = remoteVideoPublication(identity);
    const q = LK.VideoQuality[quality];
    if (q === undefined) throw new Error(`unknown VideoQuality ${quality}`);
    pub.setVideoQuality(q);
    log(`setVideoQuality(${quality}) on ${identity}'s ${pub.trackSid}`);
    return { sid: pub.trackSid, requested: quality, videoQuality: pub.videoQuality };
  };

  // Sends UpdateTrackSettings.fps (SVC temporal layers).
  window.lkSetVideoFPS = (identity, fps) => {
    const pub = remoteVideoPublication(identity);
    pub.setVideoFPS(fps);
    log(`setVideoFPS(${fps}) on ${identity}'s ${pub.trackSid}`);
    return { sid: pub.trackSid, fps };
  };

  // Sends UpdateTrackSettings.disabled = !enabled.
  window.lkSetEnabled = (identity, enabled) => {
    const pub = remoteVideoPublication(identity);
    pub.setEnabled(enabled);
    log(`setEnabled(${enabled}) on ${identity}'s ${pub.trackSid}`);
    return { sid: pub.trackSid, isEnabled: pub.isEnabled };
  };

  // The publisher PC's video outbound-rtp streams (one per simulcast rid) and the
  // sender's bandwidth view, to tell which layers the browser actually sends.
  window.lkPublisherLayers = async () => {
    const pc = state.room?.engine?.pcManager?.publisher?._pc;
    if (!pc) return null;
    const report = await pc.getStats();
    const layers = [];
    let pair = null;
    report.forEach((s) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video') {
        layers.push({
          rid: s.rid ?? null,
          ssrc: s.ssrc,
          active: s.active ?? null,
          bytesSent: s.bytesSent,
          packetsSent: s.packetsSent,
          framesEncoded: s.framesEncoded ?? null,
          keyFramesEncoded: s.keyFramesEncoded ?? null,
          frameWidth: s.frameWidth ?? null,
          frameHeight: s.frameHeight ?? null,
          framesPerSecond: s.framesPerSecond ?? null,
          targetBitrate: s.targetBitrate ?? null,
          qualityLimitationReason: s.qualityLimitationReason ?? null,
          qualityLimitationDurations: s.qualityLimitationDurations ?? null,
          encoderImplementation: s.encoderImplementation ?? null,
          scalabilityMode: s.scalabilityMode ?? null,
          pliCount: s.pliCount ?? null,
          firCount: s.firCount ?? null,
          nackCount: s.nackCount ?? null,
        });
      }
      if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
        pair = {
          availableOutgoingBitrate: s.availableOutgoingBitrate ?? null,
          currentRoundTripTime: s.currentRoundTripTime ?? null,
          bytesSent: s.bytesSent,
          bytesReceived: s.bytesReceived,
        };
      }
    });
    layers.sort((a, b) => String(a.rid).localeCompare(String(b.rid)));
    return { layers, pair };
  };

  window.lkDisconnect = async () => {
    if (state.room) await state.room.disconnect();
  };

  window.lkReady = true;
})();
