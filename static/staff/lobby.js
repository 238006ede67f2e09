// The staff live page's list of conversations, from `lobby` and `lobby.update` frames (SUMMARY in
// docs/protocol.md): waiting ones first, then the newest activity; how long a shopper has been
// waiting; who has a conversation. Previews are the shopper's (or the bot's) words: text only.
(() => {
  "use strict";

  const STATUS_ORDER = { waiting: 0, staff: 1, bot: 2, closed: 3 };
  const REFRESH_MS = 30_000; // "waiting 3 min" and "5 min ago" move on by themselves

  function minutesSince(iso, now) {
    const then = Date.parse(iso || "");
    return Number.isFinite(then) ? Math.max(0, Math.floor((now - then) / 60_000)) : null;
  }

  /** "3 min", "1 h 5 min", "under a minute". */
  function duration(minutes) {
    if (minutes < 1) return "under a minute";
    if (minutes < 60) return `${minutes} min`;
    const hours = Math.floor(minutes / 60);
    const rest = minutes % 60;
    return rest ? `${hours} h ${rest} min` : `${hours} h`;
  }

  function ago(iso, now) {
    const minutes = minutesSince(iso, now);
    if (minutes === null) return "";
    if (minutes < 1) return "just now";
    if (minutes < 60 * 24) return `${duration(minutes)} ago`;
    return new Date(Date.parse(iso)).toLocaleDateString(undefined, { month: "short", day: "numeric" });
  }

  function activity(summary) {
    return Date.parse(summary.last_message_at || summary.created_at || "") || 0;
  }

  /** Words for a conversation's status: "Waiting 3 min", "With Ana", "With you", "Bot", "Closed". */
  function statusText(summary, meName, now) {
    switch (summary.status) {
      case "waiting": {
        const minutes = minutesSince(summary.handoff_requested_at, now);
        return minutes === null ? "Waiting" : `Waiting ${duration(minutes)}`;
      }
      case "staff":
        if (!summary.staff_name) return "With staff";
        return summary.staff_name === meName ? "With you" : `With ${summary.staff_name}`;
      case "closed":
        return "Closed";
      default:
        return "Bot";
    }
  }

  /**
   * list (<ul>), empty (shown when there is nothing), count (a number next to the title),
   * meName() (who "you" are), onOpen(id) (a conversation was chosen).
   */
  function create({ list, empty, count, meName, onOpen }) {
    const entries = new Map(); // id -> SUMMARY
    let selected = null;

    function sorted() {
      return [...entries.values()].sort((a, b) => {
        const waitingA = a.status === "waiting" ? 0 : 1;
        const waitingB = b.status === "waiting" ? 0 : 1;
        return waitingA - waitingB || activity(b) - activity(a)
          || (STATUS_ORDER[a.status] ?? 9) - (STATUS_ORDER[b.status] ?? 9);
      });
    }

    function item(summary, now) {
      const li = document.createElement("li");
      li.className = "lobby-entry";
      li.dataset.id = summary.id;
      li.dataset.status = summary.status;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "lobby-item";
      button.setAttribute("aria-current", summary.id === selected ? "true" : "false");
      button.addEventListener("click", () => onOpen(summary.id));

      const top = document.createElement("span");
      top.className = "lobby-row";
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.dataset.status = summary.status;
      badge.textContent = statusText(summary, meName(), now);
      const when = document.createElement("span");
      when.className = "lobby-time";
      const last = summary.last_message_at || summary.created_at;
      when.textContent = ago(last, now);
      if (last) when.title = new Date(Date.parse(last)).toLocaleString();
      top.append(badge, when);

      const preview = document.createElement("span");
      preview.className = "lobby-preview";
      preview.textContent = summary.preview || "No messages yet";

      const meta = document.createElement("span");
      meta.className = "lobby-meta";
      const n = Number(summary.messages) || 0;
      meta.textContent = `${n} message${n === 1 ? "" : "s"} · started ${ago(summary.created_at, now)}`;

      button.append(top, preview, meta);
      li.append(button);
      return li;
    }

    function draw() {
      // Keep the keyboard where it was: the list is rebuilt, the focused entry comes back.
      const focused = document.activeElement?.closest?.(".lobby-entry")?.dataset.id;
      const now = Date.now();
      const items = sorted().map((summary) => item(summary, now));
      list.replaceChildren(...items);
      empty.hidden = items.length > 0;
      const waiting = items.filter((li) => li.dataset.status === "waiting").length;
      count.textContent = waiting ? `(${items.length}, ${waiting} waiting)` : `(${items.length})`;
      if (focused) list.querySelector(`.lobby-entry[data-id="${CSS.escape(focused)}"] .lobby-item`)?.focus();
    }

    setInterval(draw, REFRESH_MS);
    draw();

    return {
      /** The `lobby` frame: the whole list. */
      replace(summaries) {
        entries.clear();
        for (const summary of summaries || []) entries.set(summary.id, summary);
        draw();
      },
      /** A `lobby.update` frame: one entry replaced or added. */
      update(summary) {
        if (!summary?.id) return;
        entries.set(summary.id, summary);
        draw();
      },
      select(id) {
        selected = id;
        draw();
      },
      get(id) {
        return entries.get(id) || null;
      },
      redraw: draw,
    };
  }

  window.supportbotLobby = { create, duration, statusText };
})();
