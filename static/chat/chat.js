// The shopper's chat page: speaks the websocket protocol of docs/protocol.md.
// Plain ES2020, no build step. Loaded last (defer keeps the order), after markdown-it, DOMPurify,
// the media scripts (media-view.js, attachments.js, recorder.js: window.supportbotMedia), the
// transcript renderers (render.js), the thumbs (feedback.js) and the hand-off controls (handoff.js).
//
// Widget mode (data-mode="widget", the storefront iframe of templates/chat/widget.html, with
// frame.js): the conversation belongs to a token kept in this iframe's localStorage, sent as a
// websocket subprotocol and as a Bearer token on uploads (no cookies: browsers withhold them in
// third-party iframes); the socket opens only once the shopper opens the panel or already has a
// conversation; a heartbeat watchdog and probes on `online` / tab shown replace dead sockets.
(() => {
  "use strict";

  const gettext = window.gettext || ((s) => s);
  const interpolate = window.interpolate || ((format, data, named) => {
    if (named) return format.replace(/%\((\w+)\)s/g, (_, name) => String(data[name]));
    let i = 0;
    return format.replace(/%s/g, () => String(data[i++]));
  });

  const root = document.getElementById("chat");
  const list = document.getElementById("messages");
  const form = document.getElementById("composer");
  const input = document.getElementById("input");
  const sendButton = document.getElementById("send");
  const stopButton = document.getElementById("stop");
  const counter = document.getElementById("counter");
  const notice = document.getElementById("notice");
  const statusLine = document.getElementById("status");
  const photoButton = document.getElementById("photo");
  const micButton = document.getElementById("mic");
  const closedHint = document.getElementById("closed-hint");
  const media = window.supportbotMedia;
  const widgetMode = root.dataset.mode === "widget";
  const bridge = widgetMode ? window.supportbotFrame || null : null; // frame.js
  const siteKey = root.dataset.siteKey || "";
  const language = root.dataset.language || "";
  const greeting = widgetMode ? root.dataset.greeting || "" : "";
  const features = { photos: root.dataset.photos !== "false", voice: root.dataset.voice !== "false" };
  // The server pings an idle socket this often; nothing for 2.5 times that means it is dead.
  const heartbeatMs = widgetMode ? (Number(root.dataset.heartbeatSeconds) || 0) * 1000 : 0;
  // A probe (our ping) unanswered this long after the network came back: replace the socket.
  const PROBE_MS = 4000;
  const announcer = widgetMode ? document.getElementById("announcer") : null;
  let tray = null; // the photos and voice notes waiting in the composer (attachments.js)
  let recorder = null; // the mic button (recorder.js)

  const wsPath = root.dataset.wsPath || "/ws/chat/";
  const maxChars = Number(root.dataset.maxChars) || 4000;
  const limits = {
    maxAttachments: intData("maxAttachments", 4),
    imageMaxBytes: intData("imageMaxBytes", 10 * 1024 * 1024),
    audioMaxBytes: intData("audioMaxBytes", 10 * 1024 * 1024),
    audioMaxSeconds: intData("audioMaxSeconds", 120),
  };
  const STORE_CONVERSATION = widgetMode ? `supportbot:${siteKey}:conversation` : "supportbot.conversation";
  const STORE_SEQ = widgetMode ? `supportbot:${siteKey}:lastSeq` : "supportbot.lastSeq";
  // Widget: the owner token, and whether it has a conversation worth a socket on page load.
  const STORE_OWNER = `supportbot:${siteKey}:owner`;
  const STORE_STARTED = `supportbot:${siteKey}:started`;
  // Frame errors that answer the message we just sent: it was not stored, so hand it back.
  const REFUSED_MESSAGE_CODES = new Set([
    "message_empty", "message_too_long", "frame_too_large", "rate_limited",
    "reply_in_progress", "invalid_frame", "invalid_json", "too_many_attachments", "attachment_not_found",
    "conversation_closed",
  ]);

  const state = {
    socket: null,
    ready: false, // the server sent `conversation`: safe to send messages
    conversationId: storageGet(STORE_CONVERSATION),
    // The id the server gave on this page (the stored one may be stale): uploads go there.
    uploadConversationId: null,
    lastSeq: Number(storageGet(STORE_SEQ)) || 0,
    // client_msg_id -> {text, attachments, el}, in the order they were sent (Map keeps insertion order).
    pending: new Map(),
    retries: 0,
    retryTimer: null,
    stickToBottom: true,
    token: null, // widget: the owner token (kept here too when localStorage is unavailable)
    watchdog: null, // widget: fires when the server has been silent too long
    probe: null, // widget: fires when our ping went unanswered
    wentOffline: false, // widget: the browser said it lost the network since the socket opened
    refused: false, // widget: the server refused this site (unknown, switched off): stop trying
    connections: 0, // sockets opened by this page (for tests and debugging)
  };

  // Limits the server put on the page (data-*); a missing one falls back to the server's default.
  function intData(name, fallback) {
    const value = root.dataset[name];
    return value && Number.isFinite(Number(value)) ? Number(value) : fallback;
  }

  // --- Storage (may be unavailable, e.g. blocked cookies: the chat still works without it) ---

  function storageGet(key) {
    try { return sessionStorage.getItem(key); } catch { return null; }
  }

  function storageSet(key, value) {
    try { sessionStorage.setItem(key, String(value)); } catch { /* not essential */ }
  }

  function localGet(key) {
    try { return localStorage.getItem(key); } catch { return null; }
  }

  function localSet(key, value) {
    try { localStorage.setItem(key, String(value)); } catch { /* then it lasts as long as the page */ }
  }

  function forgetStored() {
    for (const key of [STORE_OWNER, STORE_STARTED]) {
      try { localStorage.removeItem(key); } catch { /* nothing was kept */ }
    }
    for (const key of [STORE_CONVERSATION, STORE_SEQ]) {
      try { sessionStorage.removeItem(key); } catch { /* nothing was kept */ }
    }
  }

  // 32 random bytes, base64url (43 characters): whoever holds it owns the conversation.
  function ownerToken() {
    if (state.token) return state.token;
    let token = localGet(STORE_OWNER);
    if (!/^[A-Za-z0-9_-]{43}$/.test(token || "")) {
      const bytes = crypto.getRandomValues(new Uint8Array(32));
      token = btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
      localSet(STORE_OWNER, token);
    }
    state.token = token;
    return token;
  }

  function setLastSeq(seq) {
    state.lastSeq = seq;
    storageSet(STORE_SEQ, seq);
  }

  // --- Rendering (static/chat/render.js) ---

  const render = window.supportbotRender;
  const shopName = root.dataset.shopName || "";
  const bubbleOptions = {
    staffLabel: (name) => (shopName ? interpolate(gettext("%(name)s · %(shop)s team"), { name, shop: shopName }, true) : name),
  };

  function createBubble(message) {
    const el = render.createBubble(message, bubbleOptions);
    feedback.decorate(el, message);
    return el;
  }

  function findMessage(id) {
    return render.findMessage(list, id);
  }

  function appendMessage(el) {
    list.append(el);
    scrollIfSticky();
  }

  function scrollIfSticky() {
    if (state.stickToBottom) list.scrollTop = list.scrollHeight;
  }

  const feedback = window.supportbotFeedback.create({ list, send: sendFrame, notify: showNotice });
  const handoff = window.supportbotHandoff.create({ send: sendFrame, notify: showNotice, onChange: updateControls });
  const typingOut = render.createTypingSender({ input, send: sendFrame, allowed: () => handoff.status === "staff" });

  const replies = render.createReplyStream({
    list,
    bubble: createBubble,
    scroll: scrollIfSticky,
    onChange: () => {
      if (!replies.current) stopButton.disabled = false; // a reply ended: Stop works again next time
      updateControls();
    },
    onEnd: (el, status) => {
      feedback.decorate(el, { id: el.dataset.messageId, author: "bot", kind: "chat", status });
      if (widgetMode) messageArrived(el, { counts: true });
    },
  });

  // --- Widget: unread count and one announcement per finished message ---

  function messageArrived(el, { counts }) {
    if (counts) bridge?.messageArrived();
    if (!announcer) return;
    let text;
    if (bridge && !bridge.open) {
      if (!counts) return;
      text = gettext("New message in the chat");
    } else {
      const author = el.querySelector(".msg-author")?.textContent || "";
      const body = el.querySelector(".msg-body")?.textContent.trim() || "";
      text = author ? interpolate(gettext("%(author)s: %(text)s"), { author, text: body }, true) : body;
    }
    // Emptied first, so the same words twice are read twice.
    announcer.textContent = "";
    setTimeout(() => { announcer.textContent = text; }, 50);
  }

  // A new chat opens with the shop's greeting (shown only, never stored).
  function greetingBubble() {
    const el = render.createBubble({ role: "assistant", author: "bot", kind: "chat", status: "complete", text: greeting }, bubbleOptions);
    el.dataset.greeting = "true";
    return el;
  }

  // --- Frames from the server ---

  const handlers = {
    conversation(frame) {
      // Uploads belong to one conversation: a different one (a new session, a new chat) can't use them.
      if (state.uploadConversationId && state.uploadConversationId !== frame.id) tray?.clear();
      state.uploadConversationId = frame.id;
      state.conversationId = frame.id;
      storageSet(STORE_CONVERSATION, frame.id);
      setLastSeq(Number(frame.seq) || 0);
      replies.reset();
      state.ready = true;
      stopButton.disabled = false;
      state.retries = 0; // the server answered: the next outage starts from a short delay again
      const history = (frame.messages || []).map((m) => createBubble(m));
      if (widgetMode) {
        if (greeting && history.length === 0) history.unshift(greetingBubble());
        // Someone who has chatted gets a socket on the next page at once (for replies and staff).
        localSet(STORE_STARTED, (frame.messages || []).length > 0 ? "1" : "0");
      }
      // Messages the server already stored need no resend (their ack may have been lost).
      for (const m of frame.messages || []) {
        if (m.client_msg_id && state.pending.has(m.client_msg_id)) {
          state.pending.get(m.client_msg_id).el.remove();
          state.pending.delete(m.client_msg_id);
        }
      }
      // Unacknowledged messages stay at the end and go out again with the same client_msg_id;
      // the server stores each once and acks it again.
      const pendingEls = [...state.pending.values()].map((p) => p.el);
      list.replaceChildren(...history, ...pendingEls);
      state.stickToBottom = true;
      scrollIfSticky();
      setConnection("connected");
      handoff.apply(frame, { fresh: true });
      handoff.ready(true);
      sendIdentity(); // on every new socket: the server knows the shopper per connection
      for (const [clientId, p] of state.pending) sendFrame(messageFrame(clientId, p));
      updateControls();
    },

    "message.ack"(frame) {
      const id = frame.message_id || frame.message?.id;
      const mine = state.pending.get(frame.client_msg_id);
      if (mine) {
        state.pending.delete(frame.client_msg_id);
        // After a reconnect the history may already show it: keep one copy.
        if (findMessage(id)) {
          mine.el.remove();
        } else {
          mine.el.dataset.messageId = id;
          if (media && Array.isArray(frame.message?.attachments)) media.renderAttachments(mine.el, frame.message.attachments);
          render.setStatus(mine.el, "complete");
        }
      } else if (frame.message && !findMessage(id)) {
        appendMessage(createBubble(frame.message)); // sent from another tab
      }
      updateControls();
    },

    "message.new"(frame) {
      // A staff member's message or a notice ("Ana joined the chat").
      const message = frame.message;
      if (!message) return;
      handoff.messageArrived(message);
      if (findMessage(message.id)) return;
      const el = createBubble(message);
      appendMessage(el);
      if (widgetMode) messageArrived(el, { counts: message.author === "staff" });
    },

    "conversation.state"(frame) {
      handoff.apply(frame);
    },

    typing(frame) {
      handoff.typing(frame);
    },

    "feedback.ack"(frame) {
      feedback.ack(frame);
    },

    "rating.ack"(frame) {
      handoff.ratingAck(frame);
    },

    "reply.start"(frame) {
      replies.start(frame.message_id);
    },

    "reply.notice"(frame) {
      // "You're number 3 in line" / "Still working…": shown in the waiting bubble until text comes.
      replies.notice(frame.message_id, frame.message);
    },

    "reply.delta"(frame) {
      replies.delta(frame.message_id, frame.text);
    },

    "reply.products"(frame) {
      replies.products(frame.message_id, frame.products);
    },

    "reply.end"(frame) {
      replies.end(frame.message_id, frame.status);
    },

    error(frame) {
      if (frame.code === "identify_invalid") {
        // The shop's signature is wrong: its developers need to know, the shopper does not.
        console.warn("SupportBot.identify was refused:", frame.message);
        return;
      }
      showNotice(frame.message || gettext("Something went wrong. Please try again."));
      const frameError = typeof frame.seq !== "number";
      if (!frameError) return;
      if (frame.code === "invalid_feedback") feedback.refused();
      handoff.refused();
      const refused = REFUSED_MESSAGE_CODES.has(frame.code);
      // Attachments that were not found can't be sent again: the shopper attaches them anew.
      if (refused && state.pending.size) refuseOldestPending({ keepAttachments: frame.code !== "attachment_not_found" });
    },
  };

  // The server answers frames in order, so a refusal belongs to the oldest unacked message.
  function refuseOldestPending({ keepAttachments }) {
    const [clientId, p] = state.pending.entries().next().value;
    state.pending.delete(clientId);
    render.setStatus(p.el, "failed");
    if (keepAttachments && tray) tray.restore(p.attachments);
    input.value = input.value.trim() ? `${p.text}\n${input.value}` : p.text;
    inputChanged();
    updateControls();
    input.focus();
  }

  // Replays and the live stream can overlap; a frame already handled is skipped. Acks of our
  // own pending messages are idempotent, so they count whatever their seq.
  function isStale(frame) {
    if (frame.type === "conversation" || typeof frame.seq !== "number") return false;
    if (frame.type === "message.ack" && state.pending.has(frame.client_msg_id)) return false;
    return frame.seq <= state.lastSeq;
  }

  // Returns the frame, parsed (or null), for the acker.
  function onFrame(event) {
    alive(); // any frame, pings included, shows the connection works
    let frame;
    try { frame = JSON.parse(event.data); } catch { return null; }
    const handler = frame && handlers[frame.type];
    if (!handler || isStale(frame)) return frame; // unknown types: a newer server, ignore
    handler(frame);
    if (typeof frame.seq === "number" && frame.seq > state.lastSeq) setLastSeq(frame.seq);
    return frame;
  }

  // --- Connection ---

  function connect() {
    clearTimeout(state.retryTimer);
    state.retryTimer = null;
    if (state.socket || state.refused) return; // open or still connecting
    state.ready = false;
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    let socket;
    if (widgetMode) {
      const query = new URLSearchParams({ site: siteKey });
      if (language) query.set("lang", language);
      // The token travels as a subprotocol (a header): out of URLs and logs, no cookie needed.
      socket = new WebSocket(`${scheme}${location.host}${wsPath}?${query}`, ["supportbot.v1", `supportbot.token.${ownerToken()}`]);
    } else {
      socket = new WebSocket(scheme + location.host + wsPath);
    }
    state.socket = socket;
    state.connections += 1;
    state.wentOffline = false;
    socket.addEventListener("open", alive);
    const ack = window.supportbotAcks.create(socket);
    socket.addEventListener("message", (event) => {
      let frame = null;
      try { frame = onFrame(event); } finally { ack(event, frame); }
    });
    socket.addEventListener("close", (event) => {
      if (state.socket !== socket) return;
      state.socket = null;
      state.ready = false;
      quiet();
      if (widgetMode && (event.code === 4404 || event.code === 4403)) {
        // Unknown or switched-off site: the server's error frame said so; retrying won't help.
        state.refused = true;
        replies.reset();
        handoff.ready(false);
        setConnection("unavailable");
        updateControls();
        return;
      }
      scheduleReconnect();
    });
  }

  // --- Widget: telling a dead socket from a quiet one ---

  // A frame arrived (or the socket opened): restart the watchdog, the probe is answered.
  function alive() {
    clearTimeout(state.probe);
    state.probe = null;
    if (!heartbeatMs) return;
    clearTimeout(state.watchdog);
    state.watchdog = setTimeout(replaceSocket, heartbeatMs * 2.5);
  }

  function quiet() {
    clearTimeout(state.watchdog);
    clearTimeout(state.probe);
    state.watchdog = state.probe = null;
  }

  // Drop the socket without waiting for its close handshake (a dead one never completes it) and
  // connect again now: the server's `conversation` frame and replay bring the rest of a reply.
  function replaceSocket() {
    const socket = state.socket;
    if (!socket) return connect();
    state.socket = null;
    state.ready = false;
    quiet();
    try { socket.close(); } catch { /* already closing */ }
    replies.reset();
    handoff.ready(false);
    setConnection("reconnecting");
    connect();
    updateControls();
  }

  // The network is back or the tab is shown again: is the socket still alive?
  function checkConnection() {
    if (state.refused) return;
    if (!state.socket) {
      if (wanted()) connect();
      return;
    }
    if (state.wentOffline) return replaceSocket(); // the old connection died with the network
    if (state.socket.readyState !== WebSocket.OPEN || state.probe) return;
    try { state.socket.send(JSON.stringify({ type: "ping" })); } catch { return replaceSocket(); }
    state.probe = setTimeout(replaceSocket, PROBE_MS);
  }

  // Widget: a socket is worth opening once the shopper opened the chat or has a conversation.
  function wanted() {
    return !widgetMode || Boolean(bridge?.open) || localGet(STORE_STARTED) === "1";
  }

  // SupportBot.reset(): the shop's customer signed out. Forget the token (so this browser can no
  // longer open their conversation), drop the socket and the transcript, and start afresh if the
  // panel is open. The conversation itself stays with the shop for staff.
  function forget() {
    forgetStored();
    state.token = null;
    state.conversationId = null;
    state.uploadConversationId = null;
    state.lastSeq = 0;
    state.pending.clear();
    state.refused = false;
    const socket = state.socket;
    state.socket = null;
    state.ready = false;
    quiet();
    clearTimeout(state.retryTimer);
    if (socket) {
      try { socket.close(); } catch { /* already closing */ }
    }
    tray?.clear();
    replies.reset();
    handoff.ready(false);
    list.replaceChildren(...(greeting ? [greetingBubble()] : []));
    input.value = "";
    inputChanged();
    setConnection("connecting");
    if (bridge?.open) connect();
    updateControls();
  }

  function sendIdentity() {
    const identity = bridge?.identity;
    if (identity) sendFrame({ type: "identify", ...identity });
  }

  function scheduleReconnect() {
    replies.reset(); // the next `conversation` frame rebuilds the list, replay included
    handoff.ready(false);
    setConnection(navigator.onLine === false ? "offline" : "reconnecting");
    const delay = Math.min(10000, 500 * 2 ** state.retries);
    state.retries += 1;
    // Jitter, so a server restart is not met by every tab at the same instant.
    state.retryTimer = setTimeout(connect, delay * (0.75 + Math.random() * 0.5));
    updateControls();
  }

  function reconnectNow() {
    if (widgetMode) checkConnection();
    else if (!state.socket) connect();
  }

  function sendFrame(frame) {
    const socket = state.socket;
    // Before `conversation` a message would be sent twice: now and again from the pending list.
    if (!state.ready || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(JSON.stringify(frame));
    return true;
  }

  function setConnection(kind) {
    const texts = {
      connecting: gettext("Connecting…"),
      connected: gettext("Connected"),
      reconnecting: gettext("Reconnecting…"),
      offline: gettext("Offline: we'll reconnect when your connection is back"),
      unavailable: gettext("This chat is not available"),
    };
    statusLine.dataset.state = kind;
    statusLine.textContent = texts[kind];
  }

  // --- Composer ---

  // The server counts characters as code points (Python len), not UTF-16 units.
  function charCount(text) {
    return [...text].length;
  }

  function messageFrame(clientId, { text, attachments, context }) {
    const frame = { type: "message", text, client_msg_id: clientId };
    if (attachments.length) frame.attachments = attachments.map((a) => a.id);
    // The product page the shopper was on when they wrote it (the host's setContext).
    if (context) frame.context = context;
    return frame;
  }

  function submit() {
    const text = input.value.trim();
    const attachments = tray ? tray.ready() : [];
    if ((!text && attachments.length === 0) || !canSend()) return;
    const count = charCount(text);
    if (count > maxChars) {
      showNotice(interpolate(
        gettext("Your message is %(count)s characters long; the limit is %(limit)s. Please shorten it."),
        { count, limit: maxChars }, true,
      ));
      return;
    }
    const clientId = render.newClientId();
    const el = createBubble({ role: "user", author: "shopper", status: "pending", text, attachments });
    const pending = { text, attachments, el, context: bridge?.context || null };
    state.pending.set(clientId, pending);
    if (widgetMode) localSet(STORE_STARTED, "1");
    state.stickToBottom = true;
    appendMessage(el);
    // If the socket is down the message waits, visibly pending, and goes out on reconnect.
    sendFrame(messageFrame(clientId, pending));
    typingOut.stop();
    // The files now show in the pending bubble; a refusal puts them back into the composer.
    tray?.clear();
    input.value = "";
    inputChanged();
    showNotice("");
    updateControls();
    input.focus();
  }

  function canSend() {
    // A message waits for its uploads (and a recording in progress) so none is left behind.
    const mediaBusy = Boolean(tray?.uploading() || recorder?.recording);
    return !replies.current && state.pending.size === 0 && !mediaBusy && !handoff.closed;
  }

  function updateControls() {
    const closed = handoff.closed;
    sendButton.disabled = !canSend();
    stopButton.hidden = !replies.current || !state.socket;
    root.dataset.busy = replies.current ? "true" : "false";
    root.dataset.conversationStatus = handoff.status || "";
    // A closed chat takes no more messages: the hint points to "Start a new chat".
    input.disabled = closed;
    closedHint.hidden = !closed;
    for (const button of [photoButton, micButton]) if (button) button.disabled = closed;
  }

  function inputChanged() {
    const count = charCount(input.value.trim());
    // Only worth the shopper's attention near the limit.
    counter.hidden = count < maxChars * 0.8;
    counter.textContent = `${count} / ${maxChars}`;
    counter.classList.toggle("over", count > maxChars);
    autoresize();
  }

  const nativeAutosize = window.CSS?.supports?.("field-sizing", "content");

  function autoresize() {
    if (nativeAutosize) return; // the CSS grows the box by itself
    // CSSOM writes from a same-origin script are allowed by the CSP (unlike style attributes).
    input.style.height = "auto";
    input.style.height = `${input.scrollHeight}px`; // max-height in the CSS caps it
  }

  function showNotice(text) {
    notice.textContent = text;
  }

  // --- Photos and voice notes (static/chat/attachments.js, recorder.js) ---

  if (media && limits.maxAttachments > 0 && (features.photos || features.voice)) {
    tray = createTray();
    recorder = features.voice ? createRecorder() : null;
    // A site may switch photos or voice notes off (the server refuses them too).
    if (!features.photos) document.getElementById("photo")?.remove();
    if (!features.voice) document.getElementById("mic")?.remove();
  } else {
    // Attachments switched off (CHAT_MAX_ATTACHMENTS=0) or their scripts missing: text only.
    document.getElementById("photo")?.remove();
    document.getElementById("mic")?.remove();
  }

  function createTray() {
    const created = media.createTray({
      root,
      tray: document.getElementById("attachments"),
      limits,
      conversationId: () => state.uploadConversationId,
      onChange: updateControls,
      notify: showNotice,
      // The widget has no cookies: its token and site key stand in for session and CSRF token.
      auth: widgetMode ? () => ({ Authorization: `Bearer ${ownerToken()}`, "X-Supportbot-Site": siteKey }) : null,
    });
    if (features.photos) {
      media.wireFilePicking({
        button: photoButton, fileInput: document.getElementById("photo-input"), input, dropZone: root, tray: created,
        notify: showNotice,
      });
    }
    media.enableLightbox(list);
    return created;
  }

  function createRecorder() {
    return media.createRecorder({
      button: document.getElementById("mic"),
      panel: document.getElementById("recorder"),
      timer: document.getElementById("recorder-time"),
      limit: document.getElementById("recorder-limit"),
      cancelButton: document.getElementById("recorder-cancel"),
      doneButton: document.getElementById("recorder-done"),
      maxSeconds: limits.audioMaxSeconds,
      beforeStart: () => tray.roomProblem(),
      onRecorded: (file) => tray.addFile(file),
      notify: showNotice,
      onChange: updateControls,
    });
  }

  // --- Wiring ---

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });

  input.addEventListener("keydown", (event) => {
    // isComposing: Enter that confirms an IME candidate must not send.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });

  input.addEventListener("input", inputChanged);

  stopButton.addEventListener("click", () => {
    if (sendFrame({ type: "stop" })) stopButton.disabled = true; // until reply.end
    input.focus();
  });

  list.addEventListener("scroll", () => {
    // Follow new text only while the shopper is at the bottom; reading back stops it.
    state.stickToBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  }, { passive: true });
  // A phone keyboard or a rotation shrinks the log without a scroll event: keep the end in view.
  if (window.ResizeObserver) new ResizeObserver(scrollIfSticky).observe(list);

  window.addEventListener("online", reconnectNow);
  window.addEventListener("offline", () => {
    state.wentOffline = true;
    if (!state.socket || widgetMode) setConnection("offline");
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") reconnectNow();
  });

  showNotice("");
  setConnection("connecting");
  inputChanged();
  updateControls();
  if (widgetMode) {
    if (greeting) list.replaceChildren(greetingBubble());
    bridge?.on("open", () => {
      scrollIfSticky();
      if (!state.socket) connect(); // the first time the shopper opens the chat
    });
    bridge?.on("identify", sendIdentity);
    bridge?.on("reset", forget);
  }
  if (wanted()) connect();
  // On phones, focusing on load would throw the keyboard over the conversation; in the widget
  // it would take the focus away from the shop's page.
  if (!widgetMode && !matchMedia("(pointer: coarse)").matches) input.focus();

  // For debugging from the console and for browser tests.
  window.supportbotChat = {
    get conversationId() { return state.conversationId; },
    get status() { return handoff.status; },
    get lastSeq() { return state.lastSeq; },
    get connected() { return state.socket?.readyState === WebSocket.OPEN; },
    get pending() { return state.pending.size; },
    get attachments() { return tray ? tray.count : 0; },
    get micOpen() { return Boolean(recorder?.micOpen); },
    disconnect() { state.socket?.close(); },
    get socketOpen() { return Boolean(state.socket); },
    get connections() { return state.connections; },
  };
})();
