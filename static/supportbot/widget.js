/*! supportbot widget loader. A shop adds, anywhere in its pages:
 *
 *   <script src="https://BOT/static/supportbot/widget.js" data-site="pk_…" async></script>
 *
 * It adds one iframe, served by the chat app, holding the launcher and the chat: the shop's CSS
 * cannot reach inside, and the shop's page cannot read the conversation. The loader injects no
 * inline script or style (sizes are set through the CSSOM, which strict CSPs allow) and reads no
 * cookies. A page with a Content-Security-Policy must allow https://BOT in script-src and
 * frame-src; the site's allowed origins (in the chat admin) must list the shop's origin.
 *
 * Page API, usable before the loader has run (calls are queued and replayed):
 *
 *   window.SupportBot = window.SupportBot || { q: [] };
 *   SupportBot.q.push(["setContext", { product: "cascade-rain-jacket" }]);  // always works
 *   SupportBot.setContext({ product: "…" });   // once loaded (or after defining stubs that push)
 *   SupportBot.open(); SupportBot.close();
 *   SupportBot.identify({ user_id, email, name, signature });  // signature: hex HMAC-SHA256 of
 *     user_id + "\n" + email with the site's identify secret, computed on the shop's server
 *   SupportBot.reset();   // the customer signed out: forget the chat in this browser
 *   window.addEventListener("supportbot:unread", (e) => e.detail.count);
 */
(() => {
  "use strict";

  const METHODS = ["open", "close", "setContext", "identify", "reset"];
  const script = document.currentScript || document.querySelector("script[data-site][src*='/supportbot/widget.js']");
  const previous = window.SupportBot;
  if (!script || (previous && previous.loaded)) return; // loaded twice: one chat is enough
  const key = script.dataset.site || "";
  if (!/^pk_[A-Za-z0-9_-]{1,60}$/.test(key)) {
    console.warn("SupportBot: the widget's <script> tag needs data-site=\"pk_…\" (the site's key).");
    return;
  }
  const appOrigin = new URL(script.src, location.href).origin;
  const frameUrl = new URL(`/widget/${encodeURIComponent(key)}/`, appOrigin);
  frameUrl.searchParams.set("parent", location.origin);

  const iframe = document.createElement("iframe");
  let ready = false;
  let unread = 0;
  const outbox = []; // messages for the iframe until it says it is ready
  const last = { context: null, identity: null };

  function css(name, value) {
    // !important on the element itself: the shop's stylesheets cannot move or hide the chat.
    iframe.style.setProperty(name, value, "important");
  }

  function post(message) {
    const data = { supportbot: 1, ...message };
    if (ready && iframe.contentWindow) iframe.contentWindow.postMessage(data, appOrigin);
    else outbox.push(data);
  }

  function postViewport() {
    post({ type: "viewport", width: window.innerWidth, height: window.innerHeight });
  }

  function px(value, max) {
    const n = Number(value);
    return `${Math.max(0, Math.min(Number.isFinite(n) ? n : 0, max))}px`;
  }

  function applyState(data) {
    const left = data.position === "left";
    css(left ? "left" : "right", "0");
    css(left ? "right" : "left", "auto");
    if (data.state === "open" && data.fullscreen === true) {
      css("top", "0");
      css("width", "100%");
      css("height", "100%");
    } else {
      css("top", "auto");
      css("width", px(data.width, window.innerWidth));
      css("height", px(data.height, window.innerHeight));
    }
    css("visibility", "visible");
  }

  window.addEventListener("message", (event) => {
    // Only our iframe, from the app's origin.
    if (event.origin !== appOrigin || event.source !== iframe.contentWindow) return;
    const data = event.data;
    if (!data || typeof data !== "object" || data.supportbot !== 1) return;
    if (data.type === "ready") {
      ready = true;
      if (typeof data.title === "string" && data.title) iframe.title = data.title.slice(0, 200);
      // A reloaded iframe starts blank: tell it the page's context and shopper again.
      const queued = outbox.splice(0).filter((m) => m.type === "open" || m.type === "close");
      postViewport();
      if (last.context) post({ type: "context", ...last.context });
      if (last.identity) post({ type: "identify", ...last.identity });
      for (const message of queued) post(message);
    } else if (data.type === "state") {
      applyState(data);
    } else if (data.type === "unread") {
      unread = Math.max(0, Number(data.count) || 0);
      window.dispatchEvent(new CustomEvent("supportbot:unread", { detail: { count: unread } }));
    }
  });

  let resizeQueued = false;
  window.addEventListener("resize", () => {
    if (resizeQueued) return;
    resizeQueued = true;
    requestAnimationFrame(() => {
      resizeQueued = false;
      postViewport();
    });
  });

  function text(value, max) {
    return typeof value === "string" ? value.slice(0, max) : "";
  }

  const api = {
    loaded: true,
    open() { post({ type: "open" }); },
    close() { post({ type: "close" }); },
    /** The page the shopper is on; {product: handle} grounds answers in that product. */
    setContext(context) {
      const product = context && typeof context.product === "string" ? context.product.slice(0, 255) : null;
      last.context = { product };
      post({ type: "context", product });
    },
    /** The signed-in customer, signed by the shop's server (see the identify docs). */
    identify(identity) {
      if (!identity || typeof identity.user_id !== "string" || typeof identity.signature !== "string") {
        console.warn("SupportBot.identify needs {user_id, email, name, signature}.");
        return;
      }
      last.identity = {
        user_id: text(identity.user_id, 200),
        email: text(identity.email, 254),
        name: text(identity.name, 200),
        signature: text(identity.signature, 128),
      };
      post({ type: "identify", ...last.identity });
    },
    /** The customer signed out: forget their chat in this browser (a shared computer must not
     * show it to the next person) and start afresh. The conversation stays with the shop. */
    reset() {
      last.identity = null;
      post({ type: "reset" });
    },
    get unread() { return unread; },
  };

  function run(call) {
    if (!Array.isArray(call) || !METHODS.includes(call[0])) return;
    api[call[0]](...call.slice(1));
  }

  // Calls made before we ran, then a queue that runs calls at once. The page's own object is
  // kept (and its stubs replaced), in case its code holds on to it.
  const target = previous && typeof previous === "object" ? previous : {};
  const queued = Array.isArray(target.q) ? target.q : [];
  Object.defineProperties(target, Object.getOwnPropertyDescriptors(api));
  target.q = { push: (...calls) => calls.forEach(run) };
  window.SupportBot = target;
  queued.forEach(run);

  function mount() {
    iframe.src = frameUrl.href;
    iframe.title = "Chat";
    iframe.setAttribute("allow", "microphone; clipboard-write");
    iframe.setAttribute("referrerpolicy", "origin");
    const initial = {
      position: "fixed", bottom: "0", right: "0", top: "auto", left: "auto", width: "96px", height: "96px",
      "max-width": "100%", "max-height": "100%", margin: "0", padding: "0", border: "0", display: "block",
      background: "transparent", opacity: "1", transform: "none", "z-index": "2147483000",
      // Matches the chat's own scheme, so the frame stays transparent around the launcher.
      "color-scheme": "light dark",
      // Hidden until the chat says how big it is.
      visibility: "hidden",
    };
    for (const [name, value] of Object.entries(initial)) css(name, value);
    document.body.append(iframe);
  }

  // A refused page (unknown key, switched off, this origin not allowed) never says it is ready:
  // the shopper sees nothing, the shop's developer gets a pointer.
  setTimeout(() => {
    if (!ready) console.warn(`SupportBot: the chat did not start. Open ${frameUrl.href} to see why.`);
  }, 15000);

  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount, { once: true });
})();
