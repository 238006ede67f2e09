// The shopper's chat page: speaks the websocket protocol of docs/protocol.md.
// Plain ES2020, no build step. Loaded last (defer keeps the order), after markdown-it, DOMPurify,
// the media scripts (media-view.js, attachments.js, recorder.js: window.supportbotMedia), the
// transcript renderers (render.js), the thumbs (feedback.js) and the hand-off controls (handoff.js).
(() => {
  "use strict";

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
  const STORE_CONVERSATION = "supportbot.conversation";
  const STORE_SEQ = "supportbot.lastSeq";
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

  function setLastSeq(seq) {
    state.lastSeq = seq;
    storageSet(STORE_SEQ, seq);
  }

  // --- Rendering (static/chat/render.js) ---

  const render = window.supportbotRender;
  const shopName = root.dataset.shopName || "";
  const bubbleOptions = {
    staffLabel: (name) => (shopName ? `${name} · ${shopName} team` : name),
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
    onEnd: (el, status) => feedback.decorate(el, { id: el.dataset.messageId, author: "bot", kind: "chat", status }),
  });

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
      if (!findMessage(message.id)) appendMessage(createBubble(message));
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
      showNotice(frame.message || "Something went wrong. Please try again.");
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

  function onFrame(event) {
    let frame;
    try { frame = JSON.parse(event.data); } catch { return; }
    const handler = frame && handlers[frame.type];
    if (!handler || isStale(frame)) return; // unknown types: a newer server, ignore
    handler(frame);
    if (typeof frame.seq === "number" && frame.seq > state.lastSeq) setLastSeq(frame.seq);
  }

  // --- Connection ---

  function connect() {
    clearTimeout(state.retryTimer);
    state.retryTimer = null;
    if (state.socket) return; // open or still connecting
    state.ready = false;
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + wsPath);
    state.socket = socket;
    socket.addEventListener("message", onFrame);
    socket.addEventListener("close", () => {
      if (state.socket !== socket) return;
      state.socket = null;
      state.ready = false;
      scheduleReconnect();
    });
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
    if (!state.socket) connect();
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
      connecting: "Connecting…",
      connected: "Connected",
      reconnecting: "Reconnecting…",
      offline: "Offline: we'll reconnect when your connection is back",
    };
    statusLine.dataset.state = kind;
    statusLine.textContent = texts[kind];
  }

  // --- Composer ---

  // The server counts characters as code points (Python len), not UTF-16 units.
  function charCount(text) {
    return [...text].length;
  }

  function messageFrame(clientId, { text, attachments }) {
    const frame = { type: "message", text, client_msg_id: clientId };
    if (attachments.length) frame.attachments = attachments.map((a) => a.id);
    return frame;
  }

  function submit() {
    const text = input.value.trim();
    const attachments = tray ? tray.ready() : [];
    if ((!text && attachments.length === 0) || !canSend()) return;
    const count = charCount(text);
    if (count > maxChars) {
      showNotice(`Your message is ${count} characters long; the limit is ${maxChars}. Please shorten it.`);
      return;
    }
    const clientId = render.newClientId();
    const el = createBubble({ role: "user", author: "shopper", status: "pending", text, attachments });
    const pending = { text, attachments, el };
    state.pending.set(clientId, pending);
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

  if (media && limits.maxAttachments > 0) {
    tray = createTray();
    recorder = createRecorder();
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
    });
    media.wireFilePicking({
      button: photoButton, fileInput: document.getElementById("photo-input"), input, dropZone: root, tray: created,
      notify: showNotice,
    });
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
  window.addEventListener("offline", () => { if (!state.socket) setConnection("offline"); });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") reconnectNow();
  });

  showNotice("");
  setConnection("connecting");
  inputChanged();
  updateControls();
  connect();
  // On phones, focusing on load would throw the keyboard over the conversation.
  if (!matchMedia("(pointer: coarse)").matches) input.focus();

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
  };
})();
