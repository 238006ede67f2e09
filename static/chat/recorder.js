// Voice notes: the mic button records with MediaRecorder, shows a running m:ss timer with Cancel
// and Done, stops by itself at the length limit and hands the recording over as a File.
(() => {
  "use strict";

  const media = (window.supportbotMedia = window.supportbotMedia || {});
  // From /jsi18n/<lang>.js when the page loads it (see render.js); English without it.
  const gettext = window.gettext || ((text) => text);
  const CANNOT_RECORD = gettext("This browser can't record voice notes. You can type your question instead.");

  // Chrome, Firefox and Edge record Opus in WebM; Safari only AAC in MP4.
  const TYPES = [
    ["audio/webm;codecs=opus", "webm"],
    ["audio/mp4", "m4a"],
    ["audio/webm", "webm"],
    ["audio/ogg;codecs=opus", "ogg"],
  ];

  function unsupportedReason() {
    if (!window.isSecureContext) return gettext("Voice notes need a secure (https) connection to this site.");
    if (!navigator.mediaDevices?.getUserMedia || !window.MediaRecorder) return CANNOT_RECORD;
    return "";
  }

  function micErrorMessage(error) {
    switch (error?.name) {
      case "NotAllowedError":
      case "SecurityError":
        return gettext(
          "The microphone is blocked for this site. Allow it in your browser's settings to record a voice note.",
        );
      case "NotFoundError":
      case "OverconstrainedError":
        return gettext("No microphone was found. Connect one and try again.");
      case "NotReadableError":
      case "AbortError":
        return gettext("The microphone is in use by another app. Close it and try again.");
      default:
        return gettext("The microphone could not be started. Please try again.");
    }
  }

  function pickType() {
    const supported = TYPES.find(([type]) => MediaRecorder.isTypeSupported?.(type));
    return supported || ["", "webm"];
  }

  /**
   * Elements: button (mic), panel (shown while recording), timer, limit, cancelButton, doneButton.
   * maxSeconds; beforeStart() returns words for the shopper when a note can't be added now;
   * onRecorded(file); notify(text) ("" clears); onChange().
   */
  media.createRecorder = function createRecorder({
    button, panel, timer, limit, cancelButton, doneButton, maxSeconds, beforeStart, onRecorded, notify, onChange,
  }) {
    let session = null; // {stream, recorder, chunks, cancelled, startedAt, ticker, type, extension}
    let starting = false;
    const streams = new Set(); // every microphone stream opened, to tell whether one is still live
    const reason = unsupportedReason();
    if (reason) {
      // Still focusable, so the reason can be read and heard; a click says it too.
      button.setAttribute("aria-disabled", "true");
      button.title = reason;
    }
    limit.textContent = `/ ${media.formatDuration(maxSeconds * 1000)}`;

    function elapsedMs() {
      return session ? performance.now() - session.startedAt : 0;
    }

    function tick() {
      const ms = elapsedMs();
      timer.textContent = media.formatDuration(ms);
      if (ms >= maxSeconds * 1000) stop(false);
    }

    function showPanel(show) {
      panel.hidden = !show;
      button.hidden = show;
      onChange();
    }

    async function start() {
      if (reason) return notify(reason);
      if (session || starting) return;
      const problem = beforeStart();
      if (problem) return notify(problem);
      notify("");
      starting = true;
      let stream;
      try {
        // The server trims and levels the note, and these filters garble speech for transcription.
        stream = await navigator.mediaDevices.getUserMedia({
          audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
        });
      } catch (error) {
        notify(micErrorMessage(error));
        return;
      } finally {
        starting = false;
      }
      streams.add(stream);
      const [type, extension] = pickType();
      let recorder;
      try {
        recorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
      } catch {
        stream.getTracks().forEach((t) => t.stop());
        notify(CANNOT_RECORD);
        return;
      }
      const current = { stream, recorder, chunks: [], cancelled: false, startedAt: 0, ticker: 0, type, extension };
      session = current;
      recorder.addEventListener("dataavailable", (event) => {
        if (event.data.size) current.chunks.push(event.data);
      });
      recorder.addEventListener("stop", () => finish(current));
      recorder.addEventListener("error", () => {
        current.cancelled = true;
        notify(gettext("Recording stopped because of a problem with the microphone. Please try again."));
        finish(current);
      });
      // A microphone unplugged (or taken away by the system) ends the note where it is.
      for (const track of stream.getTracks()) track.addEventListener("ended", () => stop(false));
      recorder.start(1000); // a chunk a second: a long note is not held in one piece
      current.startedAt = performance.now();
      current.ticker = setInterval(tick, 250);
      timer.textContent = media.formatDuration(0);
      showPanel(true);
      doneButton.focus();
    }

    function stop(cancel) {
      if (!session) return;
      session.cancelled = session.cancelled || cancel;
      if (session.recorder.state !== "inactive") session.recorder.stop(); // "stop" calls finish
      else finish(session);
    }

    function finish(current) {
      if (session !== current) return; // already finished
      session = null;
      clearInterval(current.ticker);
      current.stream.getTracks().forEach((t) => t.stop()); // the browser's mic indicator goes off
      showPanel(false);
      button.focus();
      if (current.cancelled) return;
      const type = (current.recorder.mimeType || current.type || "audio/webm").split(";")[0];
      const blob = new Blob(current.chunks, { type });
      if (blob.size === 0) {
        notify(gettext("Nothing was recorded. Check your microphone and try again."));
        return;
      }
      const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-");
      onRecorded(new File([blob], `voice-note-${stamp}.${current.extension}`, { type }));
    }

    button.addEventListener("click", start);
    doneButton.addEventListener("click", () => stop(false));
    cancelButton.addEventListener("click", () => stop(true));
    panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        stop(true);
      }
    });
    // Leaving the page must not leave the microphone on.
    window.addEventListener("pagehide", () => stop(true));

    return {
      get recording() { return Boolean(session) || starting; },
      get micOpen() { return [...streams].some((s) => s.getTracks().some((t) => t.readyState === "live")); },
      cancel() { stop(true); },
    };
  };
})();
