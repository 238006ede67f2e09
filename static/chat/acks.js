// Flow control (docs/protocol.md, "Flow control"): every page with a chat socket acknowledges
// what it has read, so the server never buffers more than CHAT_UNACKED_BYTES for a client that
// has stalled. Shared by the chat page, the widget (chat.js) and the staff live page (live.js).
(() => {
  "use strict";

  // Ack after each reply and at least every this many characters received.
  const ACK_EVERY = 32 * 1024;

  window.supportbotAcks = {
    /** A function to call with (event, frame) for every message `socket` receives, once it has
     * been handled. Acks count every frame received, ignored ones too. */
    create(socket) {
      let frames = 0;
      let unacked = 0; // characters since the last ack (about bytes: frames are mostly ASCII)
      return (event, frame) => {
        frames += 1;
        unacked += typeof event.data === "string" ? event.data.length : 0;
        if (frame?.type !== "reply.end" && unacked < ACK_EVERY) return;
        if (socket.readyState !== WebSocket.OPEN) return;
        socket.send(JSON.stringify({ type: "ack", frames }));
        unacked = 0;
      };
    },
  };
})();
