// The widget's side of the storefront iframe (templates/chat/widget.html): the launcher button,
// opening and closing the panel, the unread badge, the greeting next to the launcher, the shop's
// colour and side, full screen on small screens, and the postMessage bridge to the loader on the
// host page (static/supportbot/widget.js). chat.js, loaded after this file, runs the chat itself
// and talks to this one through window.supportbotFrame.
//
// Messages are {"supportbot": 1, "type": …}. From the host: open, close, context {product},
// identify {user_id, email, name, signature}, reset (forget the chat), viewport {width, height} (the host window's size,
// which decides full screen). To the host: ready {title}, state {state, fullscreen, width,
// height, position} (the loader sizes the iframe from it), unread {count}.
(() => {
  "use strict";

  const gettext = window.gettext || ((s) => s);
  const ngettext = window.ngettext || ((one, many, n) => (n === 1 ? one : many));
  const interpolate = window.interpolate || ((format, args) => {
    let i = 0;
    return format.replace(/%s/g, () => String(args[i++]));
  });

  const widget = document.getElementById("widget");
  if (!widget) return;
  const panel = document.getElementById("panel");
  const dock = document.getElementById("dock");
  const launcher = document.getElementById("launcher");
  const badge = document.getElementById("badge");
  const teaser = document.getElementById("teaser");
  const minimise = document.getElementById("minimise");

  const siteKey = widget.dataset.siteKey || "";
  // The server checked it against the site's allowed origins; CSP frame-ancestors makes sure
  // the page that really embeds us is one of them.
  const parentOrigin = widget.dataset.parentOrigin || "";
  const framed = window.parent !== window;
  const coarsePointer = matchMedia("(pointer: coarse)").matches;

  // Layout in CSS px; widget.css draws the same boxes from the iframe's size.
  const EDGE = 16;
  const LAUNCHER = 56;
  const GAP = 12;
  const PANEL_WIDTH = 376;
  const PANEL_HEIGHT = 640;
  // Below this the panel takes the whole screen (phones, small windows).
  const FULLSCREEN_WIDTH = 480;
  const FULLSCREEN_HEIGHT = 520;

  const listeners = { open: [], close: [], context: [], identify: [], reset: [] };
  const current = {
    open: false,
    fullscreen: false,
    unread: Number(sessionGet("unread")) || 0,
    context: null, // {product}
    identity: null, // {user_id, email, name, signature}
    viewport: null, // the host window: {width, height}
    lastState: "",
  };

  // --- Storage: this iframe's own (the host page cannot read it); may be unavailable ---

  function sessionGet(name) {
    try { return sessionStorage.getItem(`supportbot:${siteKey}:${name}`); } catch { return null; }
  }

  function sessionSet(name, value) {
    try { sessionStorage.setItem(`supportbot:${siteKey}:${name}`, String(value)); } catch { /* not essential */ }
  }

  // --- The host page ---

  function post(type, data = {}) {
    if (!framed || !parentOrigin) return;
    window.parent.postMessage({ supportbot: 1, type, ...data }, parentOrigin);
  }

  function emit(name, detail) {
    for (const listener of listeners[name]) listener(detail);
  }

  window.addEventListener("message", (event) => {
    // Only the page that embeds us, and only from the origin the server allowed.
    if (event.source !== window.parent || event.origin !== parentOrigin) return;
    const data = event.data;
    if (!data || typeof data !== "object" || data.supportbot !== 1) return;
    switch (data.type) {
      case "open": return open();
      case "close": return close();
      case "context": return setContext(data);
      case "identify": return setIdentity(data);
      case "viewport": return setViewport(data);
      case "reset": return reset();
      default: return undefined; // a newer loader: ignore
    }
  });

  function shortString(value, max) {
    return typeof value === "string" && value.length <= max ? value.trim() : null;
  }

  function setContext(data) {
    const product = shortString(data.product, 255);
    current.context = product ? { product } : null;
    emit("context", current.context);
  }

  function setIdentity(data) {
    const userId = shortString(data.user_id, 200);
    const signature = shortString(data.signature, 128);
    if (!userId || !signature || !/^[0-9a-fA-F]+$/.test(signature)) {
      console.warn("SupportBot.identify needs user_id and the shop server's hex signature.");
      return;
    }
    current.identity = {
      user_id: userId,
      email: shortString(data.email, 254) || "",
      name: shortString(data.name, 200) || "",
      signature,
    };
    emit("identify", current.identity);
  }

  // The shop's customer signed out: no identity, no unread count; chat.js forgets the chat.
  function reset() {
    current.identity = null;
    setUnread(0);
    emit("reset");
  }

  function setViewport(data) {
    const width = Number(data.width);
    const height = Number(data.height);
    if (!(width > 0 && height > 0)) return;
    current.viewport = { width, height };
    layout();
  }

  // --- Look: the shop's colour (CSSOM: the CSP allows no style attributes) and side ---

  function brandColours() {
    const colour = widget.dataset.brandColor || "";
    if (!/^#[0-9a-fA-F]{6}$/.test(colour)) return;
    const root = document.documentElement.style;
    root.setProperty("--brand", colour);
    root.setProperty("--brand-text", readableOn(colour));
  }

  // White or near-black, whichever reads better on `hex` (WCAG relative luminance).
  function readableOn(hex) {
    const channel = (i) => {
      const c = parseInt(hex.slice(i, i + 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    };
    const luminance = 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
    return (1.05 / (luminance + 0.05)) >= ((luminance + 0.05) / 0.05) ? "#ffffff" : "#111111";
  }

  // --- Size and place: the loader makes the iframe exactly this big ---

  function layout() {
    const viewport = current.viewport;
    const small = !framed || (viewport && (viewport.width <= FULLSCREEN_WIDTH || viewport.height <= FULLSCREEN_HEIGHT));
    current.fullscreen = Boolean(current.open && small);
    widget.dataset.fullscreen = current.fullscreen ? "true" : "false";
    sendState();
  }

  function size() {
    const viewport = current.viewport || { width: window.screen.width, height: window.screen.height };
    if (current.fullscreen) return { width: viewport.width, height: viewport.height };
    if (current.open) {
      return {
        width: Math.min(viewport.width, PANEL_WIDTH + 2 * EDGE),
        height: Math.min(viewport.height, PANEL_HEIGHT + LAUNCHER + GAP + 2 * EDGE),
      };
    }
    // Closed: the launcher and the greeting. The dock's size does not depend on the iframe's.
    const box = dock.getBoundingClientRect();
    return { width: Math.ceil(box.width) + 2 * EDGE, height: Math.ceil(box.height) + 2 * EDGE };
  }

  function sendState() {
    const { width, height } = size();
    const state = {
      state: current.open ? "open" : "closed",
      fullscreen: current.fullscreen,
      width,
      height,
      position: widget.dataset.position === "left" ? "left" : "right",
    };
    const key = JSON.stringify(state);
    if (key === current.lastState) return;
    current.lastState = key;
    post("state", state);
  }

  // --- Open and close ---

  function open({ focus = false, restored = false } = {}) {
    if (current.open) return;
    current.open = true;
    widget.dataset.open = "true";
    widget.dataset.restored = restored ? "true" : "false";
    panel.hidden = false;
    sessionSet("open", "1");
    hideTeaser({ forGood: true });
    setUnread(0);
    updateLauncher();
    layout();
    emit("open", { focus });
    // Only when the shopper asked here: a host page's SupportBot.open() must not pull the focus
    // into the iframe, and on phones the keyboard would cover the conversation.
    if (focus && !coarsePointer) document.getElementById("input")?.focus();
  }

  function close({ focus = false } = {}) {
    if (!current.open) return;
    const hadFocus = panel.contains(document.activeElement);
    current.open = false;
    widget.dataset.open = "false";
    panel.hidden = true;
    sessionSet("open", "0");
    updateLauncher();
    layout();
    emit("close");
    if (focus || hadFocus) launcher.focus();
  }

  launcher.addEventListener("click", () => (current.open ? close({ focus: true }) : open({ focus: true })));
  minimise?.addEventListener("click", () => close({ focus: true }));

  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || !current.open || event.defaultPrevented) return;
    // The photo lightbox and the end-chat question close first (they handle their own Escape).
    if (document.querySelector("dialog[open]")) return;
    event.preventDefault();
    close({ focus: true });
  });

  // --- Unread messages and the greeting ---

  function setUnread(count) {
    if (count === current.unread && badge.hidden === (count === 0)) return;
    current.unread = count;
    sessionSet("unread", count);
    badge.hidden = count === 0;
    badge.textContent = count > 9 ? "9+" : String(count);
    updateLauncher();
    post("unread", { count });
  }

  function updateLauncher() {
    launcher.setAttribute("aria-expanded", current.open ? "true" : "false");
    let label = gettext("Open the chat");
    if (current.open) label = gettext("Close the chat");
    else if (current.unread > 0) {
      label = interpolate(ngettext("Open the chat (%s new message)", "Open the chat (%s new messages)", current.unread), [current.unread]);
    }
    launcher.setAttribute("aria-label", label);
  }

  function showTeaser() {
    if (!teaser || current.open || sessionGet("teaser") === "dismissed") return;
    teaser.hidden = false;
  }

  function hideTeaser({ forGood = false } = {}) {
    if (!teaser) return;
    if (forGood) sessionSet("teaser", "dismissed");
    teaser.hidden = true;
  }

  document.getElementById("teaser-open")?.addEventListener("click", () => open({ focus: true }));
  document.getElementById("teaser-close")?.addEventListener("click", () => {
    hideTeaser({ forGood: true });
    launcher.focus();
    sendState();
  });

  // --- Start ---

  brandColours();
  widget.dataset.open = "false";
  badge.hidden = current.unread === 0;
  badge.textContent = current.unread > 9 ? "9+" : String(current.unread);
  updateLauncher();
  showTeaser();
  // The shopper had the chat open on the previous page of the shop: it stays open.
  if (sessionGet("open") === "1" || !framed) open({ restored: true });
  else layout();

  // The greeting's size may change once web fonts arrive: the iframe follows.
  if (window.ResizeObserver) new ResizeObserver(() => { if (!current.open) sendState(); }).observe(dock);

  // The bridge chat.js uses.
  window.supportbotFrame = {
    get open() { return current.open; },
    get context() { return current.context ? { ...current.context } : null; },
    get identity() { return current.identity ? { ...current.identity } : null; },
    /** name: "open" | "close" | "context" | "identify" | "reset". */
    on(name, listener) { listeners[name].push(listener); },
    /** A bot or staff message arrived: counted while the panel is closed. */
    messageArrived() {
      if (!current.open) setUnread(current.unread + 1);
    },
  };

  // Every deferred script (chat.js too) has run by now: the host may start sending.
  document.addEventListener("DOMContentLoaded", () => {
    post("ready", { title: document.title });
    current.lastState = "";
    sendState();
    if (current.unread) post("unread", { count: current.unread });
  });
})();
