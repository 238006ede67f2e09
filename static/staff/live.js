// The staff live page: speaks /ws/staff/ (docs/protocol.md, "The staff live page"). The lobby on
// the left (lobby.js), the open conversation on the right, followed live with the same seq rules
// as the shopper's page, and the hand-off controls: take over, reply, return to bot, close.
// Whether an action is allowed is the server's decision; the page only disables what can't apply.
(() => {
  "use strict";

  const byId = (id) => document.getElementById(id);
  const root = byId("live");
  const list = byId("messages");
  const input = byId("input");
  const form = byId("composer");
  const el = {
    connection: byId("connection"),
    empty: byId("conversation-empty"),
    view: byId("conversation-view"),
    title: byId("conversation-title"),
    status: byId("conversation-status"),
    owner: byId("conversation-owner"),
    take: byId("take"),
    release: byId("release"),
    close: byId("close"),
    closeConfirm: byId("close-confirm"),
    closeYes: byId("close-yes"),
    closeCancel: byId("close-cancel"),
    notice: byId("notice"),
    hint: byId("composer-hint"),
    send: byId("send"),
    meName: byId("me-name"),
  };
  const render = window.supportbotRender;
  const media = window.supportbotMedia;
  const reasonWords = new Map(window.supportbotFeedback?.REASONS || []);
  const wsPath = root.dataset.wsPath || "/ws/staff/";
  const FORBIDDEN = 4403;
  // Frame errors that answer a staff message: it was not stored, so it goes back to the box.
  const REFUSED_MESSAGE_CODES = new Set([
    "message_empty", "message_too_long", "frame_too_large", "rate_limited", "not_owner",
    "conversation_closed", "invalid_frame",
  ]);

  const state = {
    socket: null,
    me: { id: null, name: root.dataset.meName || "" },
    openId: null, // the conversation asked for with `open`
    viewing: null, // the conversation whose `conversation` frame arrived (frames before it are the old one's)
    status: null,
    staffName: null,
    lastSeq: 0,
    pending: new Map(), // client_msg_id -> {text, el}
    busy: false, // take/release/close sent, its answer not here yet
    retries: 0,
    retryTimer: null,
    stickToBottom: true,
  };

  const bubbleOptions = {
    authors: { shopper: "Shopper", bot: "Assistant", staff: "Staff", system: "Notice" },
    staffLabel: (name) => (name === state.me.name ? `${name} (you)` : name),
  };

  function createBubble(message) {
    const bubble = render.createBubble(message, bubbleOptions);
    showFeedback(bubble, message.feedback);
    return bubble;
  }

  // What the shopper thought of a bot reply: read-only here.
  function showFeedback(bubble, feedback) {
    if (!feedback) return;
    const line = document.createElement("span");
    line.className = "msg-feedback-view";
    line.dataset.value = feedback.value;
    const reasons = (feedback.reasons || []).map((r) => reasonWords.get(r) || r);
    const words = [feedback.value === "up" ? "Shopper: 👍 helpful" : "Shopper: 👎 not helpful", ...reasons];
    line.textContent = words.join(" · ") + (feedback.comment ? ` — “${feedback.comment}”` : "");
    bubble.append(line);
  }

  function scrollIfSticky() {
    if (state.stickToBottom) list.scrollTop = list.scrollHeight;
  }

  function append(bubble) {
    list.append(bubble);
    scrollIfSticky();
  }

  const replies = render.createReplyStream({ list, bubble: createBubble, scroll: scrollIfSticky });
  const typingIn = render.createTypingIndicator(byId("typing-line"));
  const typingOut = render.createTypingSender({ input, send: sendFrame, allowed: () => mine() });
  const lobby = window.supportbotLobby.create({
    list: byId("lobby-list"),
    empty: byId("lobby-empty"),
    count: byId("lobby-count"),
    meName: () => state.me.name,
    onOpen: open,
  });

  // --- The open conversation ---

  function open(id) {
    if (id !== state.openId) {
      state.openId = id;
      state.viewing = null;
      state.pending.clear();
      replies.reset();
      typingIn.clear();
      list.replaceChildren();
      showNotice("");
      hideCloseConfirm();
      el.title.textContent = `Conversation ${id.slice(0, 8)}`;
      applyState({ status: lobby.get(id)?.status || null, staff_name: lobby.get(id)?.staff_name || null });
    }
    lobby.select(id);
    el.empty.hidden = true;
    el.view.hidden = false;
    sendFrame({ type: "open", conversation: id });
  }

  function mine() {
    return state.status === "staff" && Boolean(state.staffName) && state.staffName === state.me.name;
  }

  function applyState({ status, staff_name: staffName }) {
    state.status = status;
    state.staffName = staffName || null;
    state.busy = false;
    if (status === "closed") hideCloseConfirm();
    updateControls();
  }

  function updateControls() {
    const ready = Boolean(state.socket?.readyState === WebSocket.OPEN && state.viewing === state.openId && state.openId);
    const status = state.status;
    const mineNow = mine();
    const other = status === "staff" && !mineNow;
    el.status.dataset.status = status || "";
    const summary = { ...(lobby.get(state.openId) || {}), status, staff_name: state.staffName };
    el.status.textContent = status ? window.supportbotLobby.statusText(summary, state.me.name, Date.now()) : "…";
    el.owner.textContent = ownerText(status, mineNow, other);
    el.take.disabled = !ready || state.busy || !(status === "bot" || status === "waiting");
    el.release.disabled = !ready || state.busy || !mineNow;
    el.close.disabled = !ready || state.busy || status === "closed" || other || !status;
    input.disabled = !ready || !mineNow;
    el.send.disabled = !ready || !mineNow || !input.value.trim() || state.pending.size > 0;
    el.hint.textContent = composerHint(status, mineNow);
    el.hint.hidden = !el.hint.textContent;
  }

  function ownerText(status, mineNow, other) {
    if (mineNow) return "You're handling this conversation.";
    if (other) return `${state.staffName || "Someone else"} is handling this conversation.`;
    if (status === "waiting") return "The shopper asked for a person. The assistant keeps answering until you take over.";
    if (status === "bot") return "The assistant is answering.";
    if (status === "closed") return "This conversation has ended.";
    return "";
  }

  function composerHint(status, mineNow) {
    if (mineNow) return "";
    if (status === "closed") return "This conversation has ended.";
    if (status === "staff") return `${state.staffName || "Someone else"} is handling this conversation.`;
    return "Take over to reply to the shopper.";
  }

  function showNotice(text) {
    el.notice.textContent = text;
  }

  // --- Frames from the server ---

  const handlers = {
    lobby(frame) {
      state.me = { id: frame.me?.id ?? null, name: frame.me?.name || state.me.name };
      el.meName.textContent = state.me.name;
      state.retries = 0;
      setConnection("connected");
      lobby.replace(frame.conversations);
      // After a reconnect: follow the conversation that was open again.
      if (state.openId) sendFrame({ type: "open", conversation: state.openId });
      updateControls();
    },

    "lobby.update"(frame) {
      lobby.update(frame.conversation);
      if (frame.conversation?.id === state.openId) updateControls(); // "waiting 3 min" in the header
    },

    conversation(frame) {
      if (frame.id !== state.openId) return; // an answer to an earlier `open`
      state.viewing = frame.id;
      state.lastSeq = Number(frame.seq) || 0;
      replies.reset();
      typingIn.clear();
      const history = (frame.messages || []).map(createBubble);
      // Our messages the server already stored need no resend (their answer may have been lost).
      for (const m of frame.messages || []) {
        if (m.client_msg_id && state.pending.has(m.client_msg_id)) {
          state.pending.get(m.client_msg_id).el.remove();
          state.pending.delete(m.client_msg_id);
        }
      }
      list.replaceChildren(...history, ...[...state.pending.values()].map((p) => p.el));
      state.stickToBottom = true;
      scrollIfSticky();
      applyState(frame);
      for (const [clientId, p] of state.pending) sendFrame({ type: "message", client_msg_id: clientId, text: p.text });
    },

    "message.ack"(frame) {
      // The shopper said something.
      typingIn.clear();
      const message = frame.message;
      if (message && !render.findMessage(list, message.id)) append(createBubble(message));
    },

    "message.new"(frame) {
      const message = frame.message;
      if (!message) return;
      // Our own message comes back this way: it replaces the "Sending…" bubble.
      const own = message.client_msg_id && state.pending.get(message.client_msg_id);
      if (own) {
        state.pending.delete(message.client_msg_id);
        own.el.replaceWith(createBubble(message));
        updateControls();
      } else if (!render.findMessage(list, message.id)) {
        append(createBubble(message));
      }
    },

    "conversation.state"(frame) {
      applyState(frame);
    },

    typing(frame) {
      if (frame.who !== "shopper") return;
      if (frame.active) typingIn.show("The shopper is typing…");
      else typingIn.clear();
    },

    "reply.start"(frame) { replies.start(frame.message_id); },
    "reply.notice"(frame) { replies.notice(frame.message_id, frame.message); },
    "reply.delta"(frame) { replies.delta(frame.message_id, frame.text); },
    "reply.products"(frame) { replies.products(frame.message_id, frame.products); },
    "reply.end"(frame) { replies.end(frame.message_id, frame.status); },

    error(frame) {
      showNotice(frame.message || "Something went wrong. Please try again.");
      if (typeof frame.seq === "number") return; // about a reply, not a frame of ours
      state.busy = false;
      if (REFUSED_MESSAGE_CODES.has(frame.code) && state.pending.size) refuseOldestPending();
      if (frame.code === "no_conversation" && state.openId && !state.viewing) closeView();
      updateControls();
    },
  };

  // The server answers frames in order, so a refusal belongs to the oldest unanswered message.
  function refuseOldestPending() {
    const [clientId, p] = state.pending.entries().next().value;
    state.pending.delete(clientId);
    render.setStatus(p.el, "failed");
    p.el.querySelector(".msg-label").textContent = "Not sent";
    input.value = input.value.trim() ? `${p.text}\n${input.value}` : p.text;
  }

  function closeView() {
    state.openId = null;
    state.viewing = null;
    lobby.select(null);
    el.view.hidden = true;
    el.empty.hidden = false;
  }

  function isStale(frame) {
    if (typeof frame.seq !== "number") return false;
    return frame.seq <= state.lastSeq;
  }

  // Frames of a conversation (seq'd ones, typing) count only once its snapshot is here.
  const CONVERSATION_FRAMES = new Set([
    "message.ack", "message.new", "conversation.state", "typing",
    "reply.start", "reply.notice", "reply.delta", "reply.products", "reply.end",
  ]);

  // Returns the frame, parsed (or null), for the acker.
  function onFrame(event) {
    let frame;
    try { frame = JSON.parse(event.data); } catch { return null; }
    const handler = frame && handlers[frame.type];
    if (!handler) return frame; // a newer server: ignore
    if (CONVERSATION_FRAMES.has(frame.type) && (!state.viewing || state.viewing !== state.openId)) return frame;
    if (frame.type !== "conversation" && isStale(frame)) return frame;
    handler(frame);
    if (frame.type !== "conversation" && typeof frame.seq === "number" && frame.seq > state.lastSeq) {
      state.lastSeq = frame.seq;
    }
    return frame;
  }

  // --- Connection ---

  function connect() {
    clearTimeout(state.retryTimer);
    state.retryTimer = null;
    if (state.socket) return;
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + wsPath);
    state.socket = socket;
    const ack = window.supportbotAcks.create(socket);
    socket.addEventListener("message", (event) => {
      let frame = null;
      try { frame = onFrame(event); } finally { ack(event, frame); }
    });
    socket.addEventListener("close", (event) => {
      if (state.socket !== socket) return;
      state.socket = null;
      state.viewing = null; // the next `conversation` frame rebuilds the transcript
      replies.reset();
      typingIn.clear();
      updateControls();
      if (event.code === FORBIDDEN) return signedOut();
      scheduleReconnect();
    });
  }

  function scheduleReconnect() {
    setConnection(navigator.onLine === false ? "offline" : "reconnecting");
    const delay = Math.min(10000, 500 * 2 ** state.retries);
    state.retries += 1;
    state.retryTimer = setTimeout(connect, delay * (0.75 + Math.random() * 0.5));
  }

  function signedOut() {
    setConnection("forbidden");
    const link = document.createElement("a");
    link.href = `/admin/login/?next=${encodeURIComponent(location.pathname)}`;
    link.textContent = "Sign in again";
    el.connection.append(" ", link);
  }

  function sendFrame(frame) {
    const socket = state.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(JSON.stringify(frame));
    return true;
  }

  function setConnection(kind) {
    const texts = {
      connecting: "Connecting…",
      connected: "Connected",
      reconnecting: "Reconnecting…",
      offline: "Offline: we'll reconnect when the connection is back",
      forbidden: "Signed out, or not allowed to handle conversations.",
    };
    el.connection.dataset.state = kind;
    el.connection.textContent = texts[kind];
  }

  // --- Controls ---

  function action(type) {
    if (!sendFrame({ type })) return showNotice("Not connected right now. Please try again in a moment.");
    showNotice("");
    state.busy = true; // until conversation.state (or an error) answers
    updateControls();
  }

  function submit() {
    const text = input.value.trim();
    if (!text || !mine() || state.pending.size > 0) return;
    const clientId = render.newClientId();
    const bubble = createBubble({
      role: "assistant", author: "staff", author_name: state.me.name, status: "pending", text, client_msg_id: clientId,
    });
    state.pending.set(clientId, { text, el: bubble });
    state.stickToBottom = true;
    append(bubble);
    sendFrame({ type: "message", client_msg_id: clientId, text }); // or again after a reconnect
    typingOut.stop();
    input.value = "";
    showNotice("");
    updateControls();
    input.focus();
  }

  function hideCloseConfirm({ focus = false } = {}) {
    if (el.closeConfirm.hidden) return;
    el.closeConfirm.hidden = true;
    el.close.setAttribute("aria-expanded", "false");
    if (focus) el.close.focus();
  }

  el.take.addEventListener("click", () => action("take"));
  el.release.addEventListener("click", () => action("release"));
  el.close.setAttribute("aria-expanded", "false");
  el.close.setAttribute("aria-controls", "close-confirm");
  el.close.addEventListener("click", () => {
    if (!el.closeConfirm.hidden) return hideCloseConfirm({ focus: true });
    el.closeConfirm.hidden = false;
    el.close.setAttribute("aria-expanded", "true");
    el.closeYes.focus();
  });
  el.closeCancel.addEventListener("click", () => hideCloseConfirm({ focus: true }));
  el.closeYes.addEventListener("click", () => {
    hideCloseConfirm();
    action("close");
  });
  el.closeConfirm.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      hideCloseConfirm({ focus: true });
    }
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  input.addEventListener("input", updateControls);
  list.addEventListener("scroll", () => {
    state.stickToBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  }, { passive: true });
  media?.enableLightbox(list);

  window.addEventListener("online", () => { if (!state.socket && el.connection.dataset.state !== "forbidden") connect(); });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && !state.socket && el.connection.dataset.state !== "forbidden") connect();
  });

  setConnection("connecting");
  updateControls();
  setInterval(updateControls, 30_000); // "Waiting 3 min" in the header moves on too
  connect();

  // For debugging from the console and for browser tests.
  window.supportbotStaff = {
    get connected() { return state.socket?.readyState === WebSocket.OPEN; },
    get openId() { return state.openId; },
    get status() { return state.status; },
    get lastSeq() { return state.lastSeq; },
    disconnect() { state.socket?.close(); },
  };
})();
