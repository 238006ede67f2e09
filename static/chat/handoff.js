// Who the shopper is talking to, and the end of a chat: the "Talk to a person" button, the state
// line under the header, "Ana is typing…", "End chat" with its confirm step, and once the chat is
// closed the 1–5 star rating and "Start a new chat". The page's elements are in index.html.
(() => {
  "use strict";

  const byId = (id) => document.getElementById(id);
  // From /jsi18n/<lang>.js when the page loads it (see render.js); English without it.
  const gettext = window.gettext || ((text) => text);
  const interpolate = window.interpolate
    || ((fmt, values) => fmt.replace(/%\((\w+)\)s/g, (_, key) => String(values[key])));
  const NOT_CONNECTED = gettext("Not connected right now. Please try again in a moment.");

  /**
   * send(frame) returns false when the frame could not go out; notify(text) shows words for the
   * shopper ("" clears); onChange() runs when the status changes (the composer follows it).
   */
  function create({ send, notify, onChange }) {
    const el = {
      handoff: byId("handoff"),
      end: byId("end"),
      confirm: byId("end-confirm"),
      endYes: byId("end-yes"),
      endCancel: byId("end-cancel"),
      state: byId("conversation-state"),
      closing: byId("closing"),
      closingTitle: byId("closing-title"),
      ratingForm: byId("rating-form"),
      ratingSend: byId("rating-send"),
      ratingComment: byId("rating-comment"),
      thanks: byId("rating-thanks"),
      restart: byId("restart"),
    };
    const typing = window.supportbotRender.createTypingIndicator(byId("typing-line"));
    const current = { status: null, staffName: null, rating: null, handoffSent: false, endedHere: false };

    /** The conversation's state, from `conversation` and `conversation.state` frames. */
    function apply({ status, staff_name: name, rating }, { fresh = false } = {}) {
      const before = current.status;
      current.status = status || "bot";
      current.staffName = name || null;
      current.handoffSent = false;
      if (fresh || rating !== undefined) current.rating = rating ?? null;
      if (current.status !== "staff") typing.clear();
      showState();
      if (current.status === "closed" && (before !== "closed" || fresh)) showClosing();
      if (current.status !== "closed") el.closing.hidden = true;
      onChange();
    }

    function showState() {
      const texts = {
        waiting: gettext("Waiting for a person — the assistant keeps helping meanwhile"),
        staff: current.staffName
          ? interpolate(gettext("You're chatting with %(name)s"), { name: current.staffName }, true)
          : gettext("You're chatting with someone from our team"),
        closed: gettext("This chat has ended"),
      };
      const text = texts[current.status] || "";
      el.state.dataset.status = current.status;
      el.state.textContent = text;
      el.state.hidden = !text;
      el.handoff.hidden = current.status !== "bot";
      el.handoff.disabled = current.handoffSent;
      el.end.hidden = current.status === "closed";
      if (current.status === "closed") hideConfirm({ focus: false });
    }

    // --- Closed: rating, thank-you, a new chat ---

    function showClosing() {
      el.closing.hidden = false;
      el.restart.disabled = false;
      el.ratingForm.reset();
      markStars(0);
      el.ratingSend.disabled = true;
      if (current.rating) showThanks(current.rating);
      else {
        el.ratingForm.hidden = false;
        el.thanks.hidden = true;
      }
      // The shopper who pressed End goes straight on to the rating; a close by staff is
      // announced by the state line instead of moving their focus.
      if (current.endedHere) el.closingTitle.focus();
      current.endedHere = false;
      el.closing.scrollIntoView?.({ block: "nearest" });
    }

    function markStars(value) {
      for (const star of el.ratingForm.querySelectorAll(".star")) {
        star.dataset.filled = Number(star.dataset.value) <= value ? "true" : "false";
      }
    }

    function chosenRating() {
      return Number(el.ratingForm.querySelector("input[name=rating]:checked")?.value) || 0;
    }

    function showThanks(value) {
      el.ratingForm.hidden = true;
      el.thanks.hidden = false;
      const thanks = gettext("Thank you! You rated this chat %(value)s out of 5.");
      el.thanks.textContent = interpolate(thanks, { value }, true);
    }

    el.ratingForm.addEventListener("change", () => {
      const value = chosenRating();
      markStars(value);
      el.ratingSend.disabled = value === 0;
    });

    el.ratingForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const value = chosenRating();
      if (!value) return;
      const frame = { type: "rating", value };
      const comment = el.ratingComment.value.trim();
      if (comment) frame.comment = comment;
      if (send(frame)) el.ratingSend.disabled = true; // until rating.ack (or an error)
      else notify(NOT_CONNECTED);
    });

    el.restart.addEventListener("click", () => {
      // The server answers with a fresh `conversation` frame, which resets the page.
      if (send({ type: "restart" })) el.restart.disabled = true;
      else notify(NOT_CONNECTED);
    });

    // --- Asking for a person, ending the chat ---

    el.handoff.addEventListener("click", () => {
      if (!send({ type: "handoff" })) {
        notify(NOT_CONNECTED);
        return;
      }
      current.handoffSent = true; // until the state changes (or an error says why not)
      el.handoff.disabled = true;
    });

    function showConfirm() {
      el.confirm.hidden = false;
      el.end.setAttribute("aria-expanded", "true");
      el.endYes.focus();
    }

    function hideConfirm({ focus = true } = {}) {
      if (el.confirm.hidden) return;
      el.confirm.hidden = true;
      el.end.setAttribute("aria-expanded", "false");
      if (focus && !el.end.hidden) el.end.focus();
    }

    el.end.addEventListener("click", () => (el.confirm.hidden ? showConfirm() : hideConfirm()));
    el.endCancel.addEventListener("click", () => hideConfirm());
    el.confirm.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        hideConfirm();
      }
    });
    el.endYes.addEventListener("click", () => {
      if (!send({ type: "end" })) {
        notify(NOT_CONNECTED);
        return;
      }
      current.endedHere = true;
      hideConfirm({ focus: false });
    });

    return {
      apply,
      get status() { return current.status; },
      get closed() { return current.status === "closed"; },
      /** `typing` from staff: "Ana is typing…" until active:false, their message, or 6 s. */
      typing(frame) {
        if (frame.who !== "staff") return;
        if (!frame.active) return typing.clear();
        const name = frame.name || current.staffName;
        typing.show(name
          ? interpolate(gettext("%(name)s is typing…"), { name }, true)
          : gettext("Someone from our team is typing…"));
      },
      messageArrived(message) {
        if (message.author === "staff") typing.clear();
      },
      ratingAck(frame) {
        current.rating = frame.value;
        showThanks(frame.value);
      },
      /** An error answered one of our frames: let the shopper press the buttons again. */
      refused() {
        current.handoffSent = false;
        el.handoff.disabled = false;
        el.restart.disabled = false;
        el.ratingSend.disabled = chosenRating() === 0;
      },
      ready(isReady) {
        el.handoff.disabled = !isReady || current.handoffSent;
        el.end.disabled = !isReady;
        el.restart.disabled = !isReady;
      },
    };
  }

  window.supportbotHandoff = { create };
})();
