// Photos and voice notes waiting in the composer: each file uploads as soon as it is chosen
// (POST /api/conversations/<id>/attachments) and shows as a chip with a local preview until the
// server's answer replaces it. The server is the authority; the checks here only answer sooner.
(() => {
  "use strict";

  const media = (window.supportbotMedia = window.supportbotMedia || {});
  const gettext = window.gettext || ((s) => s);
  const interpolate = window.interpolate || ((format, data) => format.replace(/%\((\w+)\)s/g, (_, name) => String(data[name])));

  const FALLBACK_ERRORS = {
    400: gettext("That file could not be read. Please try another photo or record the voice note again."),
    403: gettext("Your session has expired. Reload the page and try again."),
    404: gettext("This conversation is not available any more. Reload the page and try again."),
    413: gettext("That file is too big."),
    415: gettext("That kind of file can't be sent. Please send a photo or a voice note."),
    429: gettext("You're sending files too quickly. Please wait a moment and try again."),
  };

  function csrfToken(root) {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : root.dataset.csrfToken || "";
  }

  // The chat page proves who it is with its session cookie and CSRF token; the widget (no
  // cookies in a third-party iframe) with the headers auth() gives: its token and site key.
  function requestOptions(root, auth) {
    if (auth) return { headers: auth(), credentials: "omit" };
    return { headers: { "X-CSRFToken": csrfToken(root) }, credentials: "same-origin" };
  }

  function attachmentsPath(conversationId) {
    return `/api/conversations/${encodeURIComponent(conversationId)}/attachments`;
  }

  async function uploadFile({ root, conversationId, file, signal, auth }) {
    const body = new FormData();
    body.append("file", file, file.name || "file");
    let response;
    try {
      response = await fetch(attachmentsPath(conversationId), {
        method: "POST",
        body,
        ...requestOptions(root, auth),
        signal,
      });
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new Error(gettext("The file could not be uploaded. Check your connection and try again."));
    }
    let data = null;
    try { data = await response.json(); } catch { /* not JSON: a proxy's error page */ }
    if (response.status === 201 && data && data.id) return data;
    throw new Error(data?.error?.message || FALLBACK_ERRORS[response.status]
      || gettext("The file could not be uploaded because of a problem on our side. Please try again."));
  }

  /** Delete an upload the shopper removed before sending (best effort: the server also
   * drops unsent uploads after a while). */
  function deleteUpload({ root, attachment, conversationId, auth }) {
    // The widget's file URLs are signed for reading; deleting goes to the plain API path.
    const url = auth && conversationId
      ? `${attachmentsPath(conversationId)}/${encodeURIComponent(attachment.id)}`
      : attachment.url;
    fetch(url, { method: "DELETE", ...requestOptions(root, auth) }).catch(() => {});
  }

  /**
   * The chips in `tray`. Options: root (the #chat element), limits {maxAttachments,
   * imageMaxBytes, audioMaxBytes}, conversationId() (null until the server named it),
   * onChange(), notify(text) (shows words for the shopper; "" clears them), auth() (the
   * widget's request headers; null on the chat page, which uses its cookies).
   */
  media.createTray = function createTray({ root, tray, limits, conversationId, onChange, notify, auth = null }) {
    const chips = []; // {kind, name, state: "uploading"|"ready", attachment, controller, preview, el}

    function kindOf(file) {
      if (file.type.startsWith("audio/")) return "audio";
      if (file.type.startsWith("image/") || !file.type) return "image"; // HEIC often has no type
      return null;
    }

    // Words for the shopper when nothing more can be attached now, else "".
    function roomProblem() {
      if (chips.length >= limits.maxAttachments) {
        return interpolate(
          gettext("You can attach up to %(count)s photos or voice notes to one message."),
          { count: limits.maxAttachments }, true,
        );
      }
      if (!conversationId()) return gettext("Still connecting. Please try again in a moment.");
      return "";
    }

    // Returns words for the shopper, or "" when the file may go to the server.
    function precheck(file, kind) {
      if (!kind) return gettext("Only photos and voice notes can be attached.");
      const room = roomProblem();
      if (room) return room;
      if (file.size === 0) return gettext("That file is empty.");
      const limit = kind === "audio" ? limits.audioMaxBytes : limits.imageMaxBytes;
      if (file.size > limit) {
        const format = kind === "audio"
          ? gettext("Voice notes can be at most %(limit)s; this file is %(size)s.")
          : gettext("Photos can be at most %(limit)s; this file is %(size)s.");
        return interpolate(format, { limit: media.formatMegabytes(limit), size: media.formatMegabytes(file.size) }, true);
      }
      return "";
    }

    function changed() {
      tray.hidden = chips.length === 0;
      root.dataset.uploading = uploading() ? "true" : "false";
      onChange();
    }

    function buildChip(chip) {
      const el = document.createElement("li");
      el.className = "chip";
      el.dataset.kind = chip.kind;
      if (chip.kind === "audio") {
        const audio = document.createElement("audio");
        audio.className = "chip-audio";
        audio.controls = true;
        audio.preload = "metadata";
        audio.src = chip.preview;
        audio.setAttribute("aria-label", gettext("Your voice note"));
        el.append(audio);
      } else {
        const img = document.createElement("img");
        img.className = "chip-preview";
        img.alt = media.photoLabel(chip.name);
        // A format this browser can't show (HEIC on a desktop) leaves a plain tile instead.
        img.addEventListener("error", () => { img.hidden = true; }, { once: true });
        img.src = chip.preview;
        const status = document.createElement("span");
        status.className = "chip-status";
        el.append(img, status);
      }
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "chip-remove";
      remove.textContent = "✕";
      remove.setAttribute("aria-label", chip.kind === "audio"
        ? gettext("Remove the voice note")
        : interpolate(gettext("Remove %(photo)s"), { photo: media.photoLabel(chip.name) }, true));
      remove.addEventListener("click", () => {
        const next = chips[chips.indexOf(chip) + 1] || chips[chips.indexOf(chip) - 1];
        if (chip.attachment) deleteUpload({ root, attachment: chip.attachment, conversationId: chip.conversationId, auth });
        removeChip(chip);
        // Keep the keyboard in the tray while it has chips, else hand it back to the textbox.
        (next?.el.querySelector(".chip-remove") || root.querySelector("#input"))?.focus();
      });
      el.append(remove);
      chip.el = el;
      showState(chip);
    }

    function showState(chip) {
      const el = chip.el;
      el.dataset.state = chip.state;
      el.setAttribute("aria-busy", chip.state === "uploading" ? "true" : "false");
      if (chip.kind === "audio") {
        el.querySelector(".att-transcript")?.remove();
        const text = chip.state === "uploading" ? null : chip.attachment.transcript || "";
        el.querySelector(".chip-audio").after(media.transcriptElement(text));
        return;
      }
      const status = el.querySelector(".chip-status");
      if (chip.state === "uploading") {
        const spinner = document.createElement("span");
        spinner.className = "spinner";
        spinner.setAttribute("aria-hidden", "true");
        const words = document.createElement("span");
        words.className = "visually-hidden";
        words.textContent = gettext("Uploading…");
        status.replaceChildren(spinner, words);
      } else {
        status.replaceChildren();
        // The server's thumbnail is what the message will show (oriented, also for HEIC).
        const thumb = media.localUrl(chip.attachment.thumb_url || chip.attachment.url);
        const img = el.querySelector(".chip-preview");
        if (thumb) {
          img.hidden = false;
          img.src = thumb;
        }
      }
    }

    function addChip(chip) {
      buildChip(chip);
      chips.push(chip);
      tray.append(chip.el);
      changed();
    }

    async function addFile(file) {
      const kind = kindOf(file);
      const problem = precheck(file, kind);
      if (problem) return notify(problem);
      notify(""); // an earlier file's refusal is old news
      const chip = {
        kind, name: file.name, state: "uploading", attachment: null, conversationId: conversationId(),
        controller: new AbortController(), preview: URL.createObjectURL(file), el: null,
      };
      addChip(chip);
      try {
        chip.attachment = await uploadFile({
          root, conversationId: chip.conversationId, file, signal: chip.controller.signal, auth,
        });
      } catch (error) {
        if (!chips.includes(chip)) return; // removed (and aborted) meanwhile
        removeChip(chip);
        notify(error.message);
        return;
      }
      if (!chips.includes(chip)) return;
      chip.state = "ready";
      showState(chip);
      changed();
    }

    function addFiles(files) {
      for (const file of files) addFile(file);
    }

    function removeChip(chip) {
      const index = chips.indexOf(chip);
      if (index === -1) return;
      chips.splice(index, 1);
      // Sending also clears the tray: only the ✕ button deletes a stored upload.
      chip.controller?.abort();
      if (chip.preview.startsWith("blob:")) URL.revokeObjectURL(chip.preview);
      chip.el.remove();
      changed();
    }

    function uploading() {
      return chips.some((c) => c.state === "uploading");
    }

    /** The uploaded attachments (ATTACHMENT objects), in the order they were added. */
    function ready() {
      return chips.filter((c) => c.state === "ready").map((c) => c.attachment);
    }

    function clear() {
      for (const chip of [...chips]) removeChip(chip);
    }

    /** Chips again for attachments already uploaded (a message that was refused comes back). */
    function restore(attachments) {
      for (const att of attachments) {
        if (chips.length >= limits.maxAttachments) break;
        const preview = att.kind === "audio" ? media.localUrl(att.url) : media.localUrl(att.thumb_url || att.url);
        addChip({
          kind: att.kind, name: att.name, state: "ready", attachment: att, conversationId: conversationId(),
          controller: null, preview: preview || "", el: null,
        });
      }
    }

    changed();
    return {
      addFile, addFiles, clear, restore, ready, uploading, roomProblem,
      get count() { return chips.length; },
    };
  };

  /** The photo button, paste into `input` and drag-and-drop onto `dropZone` feed `tray`. */
  media.wireFilePicking = function wireFilePicking({ button, fileInput, input, dropZone, tray, notify }) {
    button.addEventListener("click", () => {
      const problem = tray.roomProblem(); // say so now, not after the shopper picked a photo
      if (problem) notify(problem);
      else fileInput.click();
    });
    fileInput.addEventListener("change", () => {
      tray.addFiles([...fileInput.files]);
      fileInput.value = ""; // the same photo can be chosen again after removing it
    });

    input.addEventListener("paste", (event) => {
      const files = [...(event.clipboardData?.files || [])].filter((f) => f.type.startsWith("image/"));
      if (files.length === 0) return; // plain text pastes as usual
      event.preventDefault();
      tray.addFiles(files);
    });

    const hasFiles = (event) => [...(event.dataTransfer?.types || [])].includes("Files");
    let depth = 0; // dragenter/dragleave fire for every child crossed
    dropZone.addEventListener("dragenter", (event) => {
      if (!hasFiles(event)) return;
      depth += 1;
      dropZone.dataset.dragging = "true";
    });
    dropZone.addEventListener("dragover", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault(); // allows the drop
      event.dataTransfer.dropEffect = "copy";
    });
    dropZone.addEventListener("dragleave", (event) => {
      if (!hasFiles(event)) return;
      depth = Math.max(0, depth - 1);
      if (depth === 0) delete dropZone.dataset.dragging;
    });
    dropZone.addEventListener("drop", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault(); // else the browser navigates to the file
      depth = 0;
      delete dropZone.dataset.dragging;
      tray.addFiles([...event.dataTransfer.files]);
    });
  };
})();
