// Thumbs up / down under each finished bot reply. Thumbs down opens a small form with reasons and
// a comment; the choice shows as selected once the server acknowledges it (feedback.ack).
(() => {
  "use strict";

  // From /jsi18n/<lang>.js when the page loads it (see render.js); English without it.
  const gettext = window.gettext || ((text) => text);

  const REASONS = [
    ["wrong_product", gettext("Wrong product")],
    ["wrong_price", gettext("Wrong price or stock")],
    ["misunderstood_media", gettext("Didn't understand my photo or voice note")],
    ["rude", gettext("Rude or unhelpful")],
    ["other", gettext("Other")],
  ];
  const NOT_CONNECTED = gettext("Not connected right now. Please try again in a moment.");
  // Replies worth judging: a failed one has no words to judge.
  const FINISHED = new Set(["complete", "stopped", "incomplete"]);
  let formCount = 0; // unique ids for labels
  // A thumb outline (an icon, not an emoji: not every system has an emoji font).
  const THUMB_PATH = "M7 10v11H3V10zM7 10l4-7a2 2 0 0 1 3 1.7V9h5.3a2 2 0 0 1 2 2.3l-1.4 8A2 2 0 0 1 18 21H7";

  function thumbIcon(down) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    for (const [name, value] of Object.entries({
      viewBox: "0 0 24 24", width: "18", height: "18", "aria-hidden": "true", focusable: "false", fill: "none",
      stroke: "currentColor", "stroke-width": "2", "stroke-linecap": "round", "stroke-linejoin": "round",
    })) svg.setAttribute(name, value);
    // Thumbs down is thumbs up turned over (a class, not a style attribute: the CSP refuses those).
    if (down) svg.classList.add("thumb-down");
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", THUMB_PATH);
    svg.append(path);
    return svg;
  }

  /**
   * send(frame) returns false when the frame could not go out; notify(text) shows words for the
   * shopper. Returns {decorate(el, message), ack(frame), findBubble}.
   */
  function create({ list, send, notify }) {
    function eligible(message) {
      return message.author === "bot" && (message.kind || "chat") === "chat" && message.id
        && FINISHED.has(message.status);
    }

    /** Add the thumbs to a bot reply's bubble, showing `message.feedback` if it has some. */
    function decorate(el, message) {
      el.querySelector(".msg-feedback")?.remove();
      if (!eligible(message)) return;
      const wrap = document.createElement("div");
      wrap.className = "msg-feedback";
      wrap.setAttribute("role", "group");
      wrap.setAttribute("aria-label", gettext("Was this answer helpful?"));
      const up = thumb("up", gettext("Helpful answer"));
      const down = thumb("down", gettext("Not helpful"));
      const thanks = document.createElement("span");
      thanks.className = "feedback-thanks";
      thanks.setAttribute("role", "status");
      wrap.append(up, down, thanks);
      up.addEventListener("click", () => submit(el, { value: "up" }));
      down.addEventListener("click", () => toggleForm(el));
      el.append(wrap);
      if (message.feedback) showSelected(el, message.feedback.value, false);
    }

    function thumb(value, label) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "feedback-thumb";
      button.dataset.value = value;
      button.setAttribute("aria-label", label);
      button.setAttribute("aria-pressed", "false");
      button.title = label;
      button.append(thumbIcon(value === "down"));
      return button;
    }

    function toggleForm(el) {
      const open = el.querySelector(".feedback-form");
      if (open) {
        closeForm(el);
        return;
      }
      const form = buildForm(el);
      el.querySelector(".msg-feedback").after(form);
      el.querySelector(".feedback-thumb[data-value=down]").setAttribute("aria-expanded", "true");
      form.querySelector("input").focus();
    }

    function closeForm(el, { focus = true } = {}) {
      el.querySelector(".feedback-form")?.remove();
      const down = el.querySelector(".feedback-thumb[data-value=down]");
      down?.setAttribute("aria-expanded", "false");
      if (focus) down?.focus();
    }

    function buildForm(el) {
      formCount += 1;
      const prefix = `feedback-${formCount}`;
      const form = document.createElement("form");
      form.className = "feedback-form";
      form.noValidate = true;
      const fieldset = document.createElement("fieldset");
      const legend = document.createElement("legend");
      legend.textContent = gettext("What went wrong?");
      fieldset.append(legend);
      for (const [value, text] of REASONS) {
        const id = `${prefix}-${value}`;
        const box = document.createElement("input");
        box.type = "checkbox";
        box.name = "reason";
        box.value = value;
        box.id = id;
        const label = document.createElement("label");
        label.htmlFor = id;
        label.className = "feedback-reason";
        label.append(box, " ", text);
        fieldset.append(label);
      }
      const commentLabel = document.createElement("label");
      commentLabel.htmlFor = `${prefix}-comment`;
      commentLabel.className = "feedback-comment-label";
      commentLabel.textContent = gettext("Anything else? (optional)");
      const comment = document.createElement("textarea");
      comment.id = `${prefix}-comment`;
      comment.className = "feedback-comment";
      comment.rows = 2;
      comment.maxLength = 1000;
      const actions = document.createElement("div");
      actions.className = "feedback-actions";
      const sendButton = document.createElement("button");
      sendButton.type = "submit";
      sendButton.className = "button button-primary feedback-send";
      sendButton.textContent = gettext("Send");
      const cancel = document.createElement("button");
      cancel.type = "button";
      cancel.className = "button button-secondary";
      cancel.textContent = gettext("Cancel");
      cancel.addEventListener("click", () => closeForm(el));
      actions.append(sendButton, cancel);
      fieldset.append(commentLabel, comment);
      form.append(fieldset, actions);
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        const reasons = [...form.querySelectorAll("input[name=reason]:checked")].map((box) => box.value);
        submit(el, { value: "down", reasons, comment: comment.value.trim() });
      });
      form.addEventListener("keydown", (event) => {
        if (event.key === "Escape") {
          event.preventDefault();
          closeForm(el);
        }
      });
      return form;
    }

    function submit(el, choice) {
      const frame = { type: "feedback", message_id: el.dataset.messageId, ...choice };
      if (!send(frame)) {
        notify(NOT_CONNECTED);
        return;
      }
      el.querySelector(".msg-feedback").dataset.state = "sending";
    }

    function showSelected(el, value, thank) {
      const wrap = el.querySelector(".msg-feedback");
      if (!wrap) return;
      delete wrap.dataset.state;
      wrap.dataset.value = value;
      for (const button of wrap.querySelectorAll(".feedback-thumb")) {
        button.setAttribute("aria-pressed", button.dataset.value === value ? "true" : "false");
      }
      if (thank) wrap.querySelector(".feedback-thanks").textContent = gettext("Thanks for your feedback");
    }

    /** feedback.ack: the choice is stored. */
    function ack(frame) {
      const el = window.supportbotRender.findMessage(list, frame.message_id);
      if (!el) return;
      const hadForm = Boolean(el.querySelector(".feedback-form"));
      closeForm(el, { focus: hadForm });
      showSelected(el, frame.value, true);
    }

    /** An error answered a feedback frame: let the shopper try again. */
    function refused() {
      for (const wrap of list.querySelectorAll(".msg-feedback[data-state=sending]")) delete wrap.dataset.state;
    }

    return { decorate, ack, refused };
  }

  window.supportbotFeedback = { create, REASONS };
})();
