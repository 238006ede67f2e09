// The transcript as both pages show it (the shopper's chat page and the staff live page): message
// bubbles built from MESSAGE objects (docs/protocol.md), markdown without raw HTML, product cards
// and the streaming of a bot reply. Untrusted strings go in as text or sanitized markup, never
// as raw HTML. Loaded after markdown-it, DOMPurify and media-view.js (defer keeps the order).
(() => {
  "use strict";

  const render = (window.supportbotRender = window.supportbotRender || {});

  // Words come from the catalog at /jsi18n/<lang>.js when the page loads it first (the chat
  // page does); without it (the staff page) they stay English.
  const gettext = window.gettext || ((text) => text);
  const pgettext = window.pgettext || ((context, text) => text);
  const interpolate = window.interpolate
    || ((fmt, values) => fmt.replace(/%\((\w+)\)s/g, (_, key) => String(values[key])));

  const LABELS = {
    pending: gettext("Sending…"),
    stopped: gettext("Stopped"),
    incomplete: gettext("Reply cut off"),
    failed: gettext("No reply — please try again"),
    failedUser: gettext("Not sent"),
  };
  const AUTHORS = {
    shopper: pgettext("message author", "You"),
    bot: pgettext("message author", "Assistant"),
    staff: pgettext("message author", "Staff"),
    system: pgettext("message author", "Notice"),
  };
  const STOCK_LABELS = {
    in_stock: gettext("In stock"), low_stock: gettext("Only a few left"), out_of_stock: gettext("Out of stock"),
  };

  // --- Markdown ---

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
    // reader: show them as links instead.
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

  // --- Bubbles ---

  /**
   * A bubble for `message` (MESSAGE, or the parts of one a page knows so far). Options:
   * authors ({shopper, bot, staff, system} labels), staffLabel(name) for a staff member's name.
   */
  function createBubble(message, { authors = AUTHORS, staffLabel = (name) => name } = {}) {
    const { id, role, author, status, text, products, attachments } = message;
    const el = document.createElement("div");
    el.className = "msg";
    el.dataset.role = role;
    el.dataset.author = author;
    el.dataset.kind = message.kind || "chat";
    if (message.notice_code) el.dataset.noticeCode = message.notice_code;
    const who = document.createElement("span");
    who.className = "msg-author";
    who.textContent = author === "staff" && message.author_name
      ? staffLabel(message.author_name)
      : authors[author] || author;
    const body = document.createElement("div");
    body.className = "msg-body";
    el.append(who, body);
    if (id) el.dataset.messageId = id;
    if (message.client_msg_id) el.dataset.clientMsgId = message.client_msg_id;
    renderBody(body, role, text || "");
    window.supportbotMedia?.renderAttachments(el, attachments);
    setStatus(el, status);
    renderCards(el, products);
    return el;
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
      // Before the feedback buttons, which belong below everything else.
      const feedback = el.querySelector(".msg-feedback");
      if (feedback) feedback.before(span);
      else el.append(span);
    }
    // Screen readers hear the reply once it is finished, not token by token.
    if (status === "streaming") el.setAttribute("aria-busy", "true");
    else el.removeAttribute("aria-busy");
  }

  function findMessage(list, id) {
    return id ? list.querySelector(`.msg[data-message-id="${CSS.escape(id)}"]`) : null;
  }

  // --- Product cards: structured data from the server, built with DOM calls, never HTML ---

  function safeUrl(url, { sameOriginOnly = false } = {}) {
    if (!url) return null;
    try {
      const parsed = new URL(url, location.href);
      if (parsed.protocol !== "https:" && parsed.protocol !== "http:") return null;
      // Images from elsewhere are refused by the page's CSP (and could track the reader).
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
    wrap.setAttribute("aria-label", gettext("Products mentioned"));
    for (const card of cards) wrap.append(createCard(card));
    const after = el.querySelector(".msg-label, .msg-feedback");
    if (after) after.before(wrap);
    else el.append(wrap);
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
      was.setAttribute("aria-label", interpolate(gettext("was %(price)s"), { price: card.compare_at_price }, true));
      price.append(" ", was);
    }
    const stock = document.createElement("span");
    stock.className = "product-card-stock";
    stock.dataset.stock = card.stock || "";
    stock.textContent = STOCK_LABELS[card.stock] || "";
    item.append(title, price, stock);
    return item;
  }

  // --- A bot reply streaming in (reply.start / notice / delta / products / end) ---

  /**
   * The reply streaming into `list`. Options: bubble(message) makes a bubble, scroll() keeps the
   * end in view, onChange() runs when a reply starts or ends, onEnd(el, status) after reply.end.
   */
  function createReplyStream({ list, bubble, scroll, onChange = () => {}, onEnd = () => {} }) {
    let current = null; // {id, text, el}
    let queued = false;

    function start(id) {
      let el = findMessage(list, id);
      if (el) {
        el.querySelector(".msg-body").replaceChildren();
      } else {
        el = bubble({ id, role: "assistant", author: "bot", status: "streaming", text: "" });
        list.append(el);
      }
      setStatus(el, "streaming");
      const dots = document.createElement("span");
      dots.className = "typing";
      dots.setAttribute("aria-hidden", "true");
      dots.append(document.createElement("span"), document.createElement("span"), document.createElement("span"));
      el.querySelector(".msg-body").append(dots);
      current = { id, text: "", el };
      scroll();
      onChange();
      return current;
    }

    // A notice or delta without its start (e.g. a replay cut short) still gets a bubble.
    function ensure(id) {
      return current && current.id === id ? current : start(id);
    }

    function setNotice(el, text) {
      let note = el.querySelector(".msg-notice");
      if (!text) return note?.remove();
      if (!note) {
        note = document.createElement("span");
        note.className = "msg-notice";
        el.append(note);
      }
      note.textContent = text;
    }

    // One re-render per animation frame however many deltas arrive in between.
    function queueRender() {
      if (queued) return;
      queued = true;
      requestAnimationFrame(() => {
        queued = false;
        if (!current || !current.text) return; // keep the typing dots until there is text
        setNotice(current.el, "");
        renderBody(current.el.querySelector(".msg-body"), "assistant", current.text);
        scroll();
      });
    }

    function end(id, status) {
      const reply = current && current.id === id ? current : null;
      const el = reply ? reply.el : findMessage(list, id);
      if (el) {
        if (reply) renderBody(el.querySelector(".msg-body"), "assistant", reply.text);
        el.querySelector(".typing")?.remove();
        setNotice(el, "");
        setStatus(el, status || "complete");
      }
      if (reply) current = null;
      scroll();
      onChange();
      if (el) onEnd(el, status || "complete");
    }

    return {
      get current() { return current; },
      start,
      notice(id, text) { setNotice(ensure(id).el, text || ""); },
      delta(id, text) {
        ensure(id).text += text || "";
        queueRender();
      },
      products(id, cards) {
        const el = current?.id === id ? current.el : findMessage(list, id);
        if (el) renderCards(el, cards);
        scroll();
      },
      end,
      reset() { current = null; },
    };
  }

  // --- Typing, both ways (frames without seq: never stored) ---

  const TYPING_EVERY_MS = 3000; // the protocol's "at most every 3 s"
  const TYPING_SHOWN_MS = 6000; // an indicator not repeated within this goes away

  /**
   * Sends {"type":"typing","active":…} for `input`: true at most every 3 s while there is text
   * (and allowed() says the other side is watching), false once on blur, on an emptied box, or
   * when stop() is called (the message went out).
   */
  function createTypingSender({ input, send, allowed = () => true }) {
    let active = false;
    let lastSent = 0;

    function stop() {
      if (!active) return;
      active = false;
      lastSent = 0;
      send({ type: "typing", active: false });
    }

    input.addEventListener("input", () => {
      if (!input.value.trim() || !allowed()) return stop();
      const now = Date.now();
      if (active && now - lastSent < TYPING_EVERY_MS) return;
      if (send({ type: "typing", active: true })) {
        active = true;
        lastSent = now;
      }
    });
    input.addEventListener("blur", stop);
    return { stop, get active() { return active; } };
  }

  /** "Ana is typing…" in `line`, from `typing` frames; gone after 6 s unless repeated. */
  function createTypingIndicator(line) {
    let timer = null;

    function clear() {
      clearTimeout(timer);
      timer = null;
      line.textContent = "";
      line.hidden = true;
    }

    function show(text) {
      clearTimeout(timer);
      line.textContent = text;
      line.hidden = false;
      timer = setTimeout(clear, TYPING_SHOWN_MS);
    }

    clear();
    return { show, clear, get shown() { return !line.hidden; } };
  }

  function newClientId() {
    if (crypto.randomUUID) return crypto.randomUUID();
    // randomUUID needs a secure context; plain http on a LAN address still deserves a chat.
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  Object.assign(render, {
    AUTHORS, renderBody, createBubble, setStatus, findMessage, renderCards, safeUrl, createReplyStream, newClientId,
    createTypingSender, createTypingIndicator,
  });
})();
