// Photos and voice notes as shown in the transcript, built from ATTACHMENT objects
// (docs/protocol.md) with DOM calls: a file name or transcript is shopper-provided and goes in
// as text or an attribute, never as HTML. Loaded before chat.js (defer keeps the order).
(() => {
  "use strict";

  const media = (window.supportbotMedia = window.supportbotMedia || {});
  // From /jsi18n/<lang>.js when the page loads it (see render.js); English without it.
  const gettext = window.gettext || ((text) => text);
  const interpolate = window.interpolate
    || ((fmt, values) => fmt.replace(/%\((\w+)\)s/g, (_, key) => String(values[key])));

  // Attachment files are served by this origin; anything else is refused by the CSP anyway.
  function localUrl(url) {
    if (!url) return null;
    try {
      const parsed = new URL(url, location.href);
      return parsed.origin === location.origin ? parsed.href : null;
    } catch {
      return null;
    }
  }

  function formatDuration(ms) {
    const seconds = Math.max(0, Math.floor((Number(ms) || 0) / 1000));
    return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
  }

  function formatMegabytes(bytes) {
    const mb = bytes / (1024 * 1024);
    const digits = mb >= 10 ? 0 : 1;
    // 1.5 MB in English, 1,5 MB in German and Spanish: the page's language decides.
    const number = new Intl.NumberFormat(document.documentElement.lang || undefined, {
      minimumFractionDigits: digits, maximumFractionDigits: digits,
    });
    return `${number.format(mb)} MB`;
  }

  function photoLabel(name) {
    return name ? interpolate(gettext("Photo: %(name)s"), { name }, true) : gettext("Photo");
  }

  // "Transcript: …" under a voice note; `text` null means the upload is still running.
  function transcriptElement(text, tag = "p") {
    const el = document.createElement(tag);
    el.className = "att-transcript";
    if (text === null) {
      el.dataset.state = "pending";
      const spinner = document.createElement("span");
      spinner.className = "spinner";
      spinner.setAttribute("aria-hidden", "true");
      el.append(spinner, gettext("Transcribing…"));
      return el;
    }
    if (!text.trim()) {
      el.dataset.state = "empty";
      el.textContent = gettext("No transcript");
      return el;
    }
    const label = document.createElement("span");
    label.className = "att-transcript-label";
    label.textContent = gettext("Transcript:");
    el.append(label, " ", text.trim());
    return el;
  }

  function createPhoto(att) {
    const full = localUrl(att.url);
    const thumb = localUrl(att.thumb_url) || full;
    const link = document.createElement(full ? "a" : "span");
    link.className = "att-photo";
    if (full) {
      link.href = full;
      link.target = "_blank";
      link.rel = "noopener";
      link.title = gettext("Open the full-size photo");
    }
    const img = document.createElement("img");
    img.className = "att-photo-img";
    img.alt = photoLabel(att.name);
    img.loading = "lazy";
    img.decoding = "async";
    // The real proportions reserve the space before the thumbnail arrives (no jump in the log).
    if (att.width && att.height) {
      img.width = att.width;
      img.height = att.height;
    }
    if (thumb) img.src = thumb;
    link.append(img);
    return link;
  }

  function createVoice(att) {
    const figure = document.createElement("figure");
    figure.className = "att-voice";
    const audio = document.createElement("audio");
    audio.controls = true;
    audio.preload = "none"; // a history full of voice notes downloads nothing until played
    const src = localUrl(att.url);
    if (src) audio.src = src;
    audio.setAttribute("aria-label", att.duration_ms
      ? interpolate(gettext("Voice note (%(duration)s)"), { duration: formatDuration(att.duration_ms) }, true)
      : gettext("Voice note"));
    figure.append(audio, transcriptElement(att.transcript || "", "figcaption"));
    return figure;
  }

  function createAttachment(att) {
    const item = att.kind === "audio" ? createVoice(att) : createPhoto(att);
    item.dataset.attachmentId = att.id || "";
    return item;
  }

  /** Put the message's attachments in `bubble` (replacing any shown), before its text. */
  function renderAttachments(bubble, attachments) {
    bubble.querySelector(".msg-attachments")?.remove();
    const list = Array.isArray(attachments) ? attachments : [];
    if (list.length === 0) {
      delete bubble.dataset.hasAttachments;
      return;
    }
    bubble.dataset.hasAttachments = "true";
    const wrap = document.createElement("div");
    wrap.className = "msg-attachments";
    for (const att of list) wrap.append(createAttachment(att));
    bubble.querySelector(".msg-body").before(wrap);
  }

  // --- Lightbox: a photo opens full size over the chat; Esc, ✕ or a click outside closes it ---

  let lightbox = null;

  function createLightbox() {
    const dialog = document.createElement("dialog");
    dialog.className = "lightbox";
    dialog.setAttribute("aria-label", gettext("Photo"));
    const close = document.createElement("button");
    close.type = "button";
    close.className = "lightbox-close";
    close.setAttribute("aria-label", gettext("Close the photo"));
    close.textContent = "✕";
    close.addEventListener("click", () => dialog.close());
    const img = document.createElement("img");
    img.className = "lightbox-img";
    dialog.append(close, img);
    // A click on the backdrop reaches the dialog itself.
    dialog.addEventListener("click", (event) => {
      if (event.target === dialog) dialog.close();
    });
    dialog.addEventListener("close", () => img.removeAttribute("src"));
    document.body.append(dialog);
    return dialog;
  }

  /** Photos in `container` open in the lightbox; new-tab clicks keep the plain link. */
  function enableLightbox(container) {
    if (typeof HTMLDialogElement !== "function") return; // the link opens a new tab instead
    container.addEventListener("click", (event) => {
      const link = event.target.closest("a.att-photo");
      if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      lightbox = lightbox || createLightbox();
      const img = lightbox.querySelector(".lightbox-img");
      img.alt = link.querySelector("img")?.alt || gettext("Photo");
      img.src = link.href;
      lightbox.showModal();
    });
  }

  Object.assign(media, {
    localUrl, formatDuration, formatMegabytes, photoLabel, transcriptElement, renderAttachments, enableLightbox,
  });
})();
