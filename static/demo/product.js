// The demo store's product page tells the chat which product the shopper is looking at. This is
// the snippet a shop adds to its product template (from a file: a strict CSP forbids inline
// script). The stubs queue calls made before the loader has run; the loader replays them.
(() => {
  "use strict";

  const handle = document.querySelector("[data-product-handle]")?.dataset.productHandle;
  if (!handle) return;
  const SupportBot = (window.SupportBot = window.SupportBot || { q: [] });
  for (const name of ["open", "close", "setContext", "identify"]) {
    SupportBot[name] = SupportBot[name] || ((...args) => SupportBot.q.push([name, ...args]));
  }
  SupportBot.setContext({ product: handle });
})();
