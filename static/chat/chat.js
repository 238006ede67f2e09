// The shopper's chat page: speaks the websocket protocol of docs/protocol.md.
// Plain ES2020, no build step. markdown-it, DOMPurify and the media scripts (media-view.js,
// attachments.js, recorder.js: window.supportbotMedia) are loaded before this file (defer).
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
  ]);
  const LABELS = {
    pending: "Sending…",
    stopped: "Stopped",
    incomplete: "Reply cut off",
    failed: "No reply — please try again",
    failedUser: "Not sent",
  };

  const state = {
    socket: null,
    ready: false, // the server sent `conversation`: safe to send messages
    conversationId: storageGet(STORE_CONVERSATION),
    // The id the server gave on this page (the stored one may be stale): uploads go there.
    uploadConversationId: null,
    lastSeq: Number(storageGet(STORE_SEQ)) || 0,
    // client_msg_id -> {text, attachments, el}, in the order they were sent (Map keeps insertion order).
    pending: new Map(),
    streaming: null, // {id, text, el}
    renderQueued: false,
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

  // --- Rendering ---

  const markdown = createMarkdown();

  function createMarkdown() {
    if (!window.markdownit || !window.DOMPurify) return null; // fall back to plain text
    const md = window.markdownit({ html: false, linkify: true, breaks: true });
    // Table alignment comes out as style="text-align:…", which the CSP refuses (and logs).
    for (const rule of ["th_open", "td_open"]) {
      md.renderer.rules[rule] = (tokens, idx, options, env, self) => {
        const token = tokens[idx];
        const align = /text-align:(left|right|center)/.exec(token.attrGet("style") || "");
        token.attrs = (token.attrs || []).filter(([name]) => name !== "style");
        if (align) token.attrJoin("class", `align-${align[1]}`);
        return self.renderToken(tokens, idx, options);
      };
    }
    // Other origins' images are blocked by the CSP (img-src 'self') and could track the
    // shopper: show them as links instead.
    const renderImage = md.renderer.rules.image;
    md.renderer.rules.image = (tokens, idx, options, env, self) => {
      const src = tokens[idx].attrGet("src") || "";
      if (isSameOrigin(src)) return renderImage(tokens, idx, options, env, self);
      const alt = self.renderInlineAsText(tokens[idx].children || [], options, env) || src;
      return `<a href="${md.utils.escapeHtml(src)}">${md.utils.escapeHtml(alt)}</a>`;
    };
    window.DOMPurify.addHook("afterSanitizeAttributes", (node) => {
      if (node.tagName === "A" && node.hasAttribute("href")) {
        node.setAttribute("target", "_blank");
        node.setAttribute("rel", "noopener noreferrer nofollow");
      }
    });
    return md;
  }

  function isSameOrigin(url) {
    try { return new URL(url, location.href).origin === location.origin; } catch { return false; }
  }

  function renderBody(body, role, text) {
    if (role === "assistant" && markdown) {
      // Markdown without raw HTML, then sanitized anyway: the text is untrusted.
      const html = markdown.render(text);
      body.innerHTML = window.DOMPurify.sanitize(html, {
        FORBID_ATTR: ["style"], FORBID_TAGS: ["style", "form", "input", "button"],
      });
    } else {
      body.textContent = text;
    }
  }

  function createBubble({ id, role, author, status, text, products, attachments }) {
    const el = document.createElement("div");
    el.className = "msg";
    el.dataset.role = role;
    el.dataset.author = author;
    const who = document.createElement("span");
    who.className = "msg-author";
    who.textContent = { shopper: "You", bot: "Assistant", staff: "Staff", system: "Notice" }[author] || author;
    const body = document.createElement("div");
    body.className = "msg-body";
    el.append(who, body);
    if (id) el.dataset.messageId = id;
    renderBody(body, role, text || "");
    if (media) media.renderAttachments(el, attachments);
    setStatus(el, status);
    renderCards(el, products);
    return el;
  }

  // --- Product cards: structured data from the server, built with DOM calls, never HTML ---

  const STOCK_LABELS = { in_stock: "In stock", low_stock: "Only a few left", out_of_stock: "Out of stock" };

  function safeUrl(url, { sameOriginOnly = false } = {}) {
    if (!url) return null;
    try {
      const parsed = new URL(url, location.href);
      if (parsed.protocol !== "https:" && parsed.protocol !== "http:") return null;
      // Images from elsewhere are refused by the page's CSP (and could track the shopper).
      if (sameOriginOnly && parsed.origin !== location.origin) return null;
      return parsed.href;
    } catch {
      return null;
    }
  }

  function renderCards(el, cards) {
    el.querySelector(".msg-products")?.remove();
    if (!Array.isArray(cards) || cards.length === 0) return;
    const wrap = document.createElement("div");
    wrap.className = "msg-products";
    wrap.setAttribute("role", "list");
    wrap.setAttribute("aria-label", "Products mentioned");
    for (const card of cards) wrap.append(createCard(card));
    el.append(wrap);
  }

  function createCard(card) {
    const link = safeUrl(card.url);
    const item = document.createElement(link ? "a" : "div");
    item.className = "product-card";
    item.setAttribute("role", "listitem");
    item.dataset.handle = card.handle || "";
    if (link) {
      item.href = link;
      item.target = "_blank";
      item.rel = "noopener noreferrer";
    }
    const image = safeUrl(card.image, { sameOriginOnly: true });
    if (image) {
      const img = document.createElement("img");
      img.className = "product-card-image";
      img.src = image;
      img.alt = "";
      img.loading = "lazy";
      item.append(img);
    }
    const title = document.createElement("span");
    title.className = "product-card-title";
    title.textContent = card.title || "";
    const price = document.createElement("span");
    price.className = "product-card-price";
    const range = card.price_max ? `${card.price}–${card.price_max}` : card.price;
    price.textContent = range ? `${range} ${card.currency || ""}`.trim() : "";
    if (card.compare_at_price) {
      const was = document.createElement("s");
      was.textContent = card.compare_at_price;
      was.setAttribute("aria-label", `was ${card.compare_at_price}`);
      price.append(" ", was);
    }
    const stock = document.createElement("span");
    stock.className = "product-card-stock";
    stock.dataset.stock = card.stock || "";
    stock.textContent = STOCK_LABELS[card.stock] || "";
    item.append(title, price, stock);
    return item;
  }

  // Sets data-status and the small plain label shown under unfinished messages.
  function setStatus(el, status) {
    el.dataset.status = status;
    el.querySelector(".msg-label")?.remove();
    let label = LABELS[status];
    if (status === "failed" && el.dataset.role === "user") label = LABELS.failedUser;
    if (label) {
      const span = document.createElement("span");
      span.className = "msg-label";
      span.textContent = label;
      el.append(span);
    }
    // Screen readers hear the reply once it is finished, not token by token.
    if (status === "streaming") el.setAttribute("aria-busy", "true");
    else el.removeAttribute("aria-busy");
  }

  function findMessage(id) {
    return id ? list.querySelector(`.msg[data-message-id="${CSS.escape(id)}"]`) : null;
  }

  function appendMessage(el) {
    list.append(el);
    scrollIfSticky();
  }

  function scrollIfSticky() {
    if (state.stickToBottom) list.scrollTop = list.scrollHeight;
  }

  // --- Streaming replies ---

  function startReply(id) {
    let el = findMessage(id);
    if (el) {
      el.querySelector(".msg-body").replaceChildren();
    } else {
      el = createBubble({ id, role: "assistant", author: "bot", status: "streaming", text: "" });
      list.append(el);
    }
    setStatus(el, "streaming");
    const typing = document.createElement("span");
    typing.className = "typing";
    typing.setAttribute("aria-hidden", "true");
    typing.append(document.createElement("span"), document.createElement("span"), document.createElement("span"));
    el.querySelector(".msg-body").append(typing);
    state.streaming = { id, text: "", el };
    scrollIfSticky();
    updateControls();
  }

  // One re-render per animation frame however many deltas arrive in between.
  function queueRender() {
    if (state.renderQueued) return;
    state.renderQueued = true;
    requestAnimationFrame(() => {
      state.renderQueued = false;
      renderStreaming();
    });
  }

  function setReplyNotice(el, text) {
    let note = el.querySelector(".msg-notice");
    if (!text) return note?.remove();
    if (!note) {
      note = document.createElement("span");
      note.className = "msg-notice";
      el.append(note);
    }
    note.textContent = text;
  }

  function renderStreaming() {
    const reply = state.streaming;
    if (!reply || !reply.text) return; // keep the typing indicator until there is text
    setReplyNotice(reply.el, "");
    renderBody(reply.el.querySelector(".msg-body"), "assistant", reply.text);
    scrollIfSticky();
  }

  function finishReply(id, status) {
    const reply = state.streaming && state.streaming.id === id ? state.streaming : null;
    const el = reply ? reply.el : findMessage(id);
    if (el) {
      if (reply) renderBody(el.querySelector(".msg-body"), "assistant", reply.text);
      el.querySelector(".typing")?.remove();
      setReplyNotice(el, "");
      setStatus(el, status || "complete");
    }
    if (reply) state.streaming = null;
    stopButton.disabled = false;
    scrollIfSticky();
    updateControls();
  }

  // --- Frames from the server ---

  const handlers = {
    conversation(frame) {
      // Uploads belong to one conversation: a different one (a new session) can't use them.
      if (state.uploadConversationId && state.uploadConversationId !== frame.id) tray?.clear();
      state.uploadConversationId = frame.id;
      state.conversationId = frame.id;
      storageSet(STORE_CONVERSATION, frame.id);
      setLastSeq(Number(frame.seq) || 0);
      state.streaming = null;
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
          setStatus(mine.el, "complete");
        }
      } else if (frame.message && !findMessage(id)) {
        appendMessage(createBubble(frame.message)); // sent from another tab
      }
      updateControls();
    },

    "reply.start"(frame) {
      startReply(frame.message_id);
    },

    "reply.notice"(frame) {
      // "You're number 3 in line" / "Still working…": shown in the waiting bubble until text comes.
      if (!state.streaming || state.streaming.id !== frame.message_id) startReply(frame.message_id);
      setReplyNotice(state.streaming.el, frame.message || "");
    },
    "reply.delta"(frame) {
      // A delta without its start (e.g. a replay cut short) still gets a bubble.
      if (!state.streaming || state.streaming.id !== frame.message_id) startReply(frame.message_id);
      state.streaming.text += frame.text || "";
      queueRender();
    },

    "reply.products"(frame) {
      const el = state.streaming?.id === frame.message_id ? state.streaming.el : findMessage(frame.message_id);
      if (el) renderCards(el, frame.products);
      scrollIfSticky();
    },

    "reply.end"(frame) {
      finishReply(frame.message_id, frame.status);
    },

    error(frame) {
      showNotice(frame.message || "Something went wrong. Please try again.");
      const refused = typeof frame.seq !== "number" && REFUSED_MESSAGE_CODES.has(frame.code);
      // Attachments that were not found can't be sent again: the shopper attaches them anew.
      if (refused && state.pending.size) refuseOldestPending({ keepAttachments: frame.code !== "attachment_not_found" });
    },
  };

  // The server answers frames in order, so a refusal belongs to the oldest unacked message.
  function refuseOldestPending({ keepAttachments }) {
    const [clientId, p] = state.pending.entries().next().value;
    state.pending.delete(clientId);
    setStatus(p.el, "failed");
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
    state.streaming = null; // the next `conversation` frame rebuilds the list, replay included
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

  function newClientId() {
    if (crypto.randomUUID) return crypto.randomUUID();
    // randomUUID needs a secure context; plain http on a LAN address still deserves a chat.
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

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
    const clientId = newClientId();
    const el = createBubble({ role: "user", author: "shopper", status: "pending", text, attachments });
    const pending = { text, attachments, el };
    state.pending.set(clientId, pending);
    state.stickToBottom = true;
    appendMessage(el);
    // If the socket is down the message waits, visibly pending, and goes out on reconnect.
    sendFrame(messageFrame(clientId, pending));
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
    return !state.streaming && state.pending.size === 0 && !mediaBusy;
  }

  function updateControls() {
    sendButton.disabled = !canSend();
    stopButton.hidden = !state.streaming || !state.socket;
    root.dataset.busy = state.streaming ? "true" : "false";
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

  // For debugging from the console and for browser tests; nothing else is global.
  window.supportbotChat = {
    get conversationId() { return state.conversationId; },
    get lastSeq() { return state.lastSeq; },
    get connected() { return state.socket?.readyState === WebSocket.OPEN; },
    get pending() { return state.pending.size; },
    get attachments() { return tray ? tray.count : 0; },
    get micOpen() { return Boolean(recorder?.micOpen); },
    disconnect() { state.socket?.close(); },
  };
})();
